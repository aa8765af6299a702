// Where the management interface listens and its password (options.c for `management IP PORT
// [pw-file]` / `management PATH unix [pw-file]`, manage.c man_listen): the parsed directive as
// a listen spec, the pw-file's first line, and the stale unix socket OpenVPN unlinks first.
import { lstatSync, readFileSync, unlinkSync } from 'node:fs';

export type ManagementListen =
  { readonly kind: 'tcp'; readonly host: string; readonly port: number } | { readonly kind: 'unix'; readonly path: string };

/** The parsed `management` directive (options-types `management`) as a listen spec. */
export function managementListenFromOptions(m: {
  readonly address: string;
  readonly port: string;
  readonly unix: boolean;
  readonly passwordFile?: string;
}): { ok: true; listen: ManagementListen; passwordFile?: string } | { ok: false; reason: string } {
  const pw = m.passwordFile !== undefined ? { passwordFile: m.passwordFile } : {};
  if (m.unix) return { ok: true, listen: { kind: 'unix', path: m.address }, ...pw };
  if (!/^\d{1,5}$/.test(m.port) || Number(m.port) > 65535) {
    return { ok: false, reason: `management ${m.address} ${m.port}: the port must be a number from 0 to 65535` };
  }
  return { ok: true, listen: { kind: 'tcp', host: m.address, port: Number(m.port) }, ...pw };
}

/** The management password: the first line of pw-file, as OpenVPN reads it. Throws a clear Error. */
export function readManagementPassword(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`management password file ${path}: cannot read it: ${(error as Error).message}`, { cause: error });
  }
  const first = (text.split('\n')[0] ?? '').replace(/\r$/, '');
  if (first === '') throw new Error(`management password file ${path}: the first line must hold the password`);
  return first;
}

/** The directive as an operator wrote it, for error messages. */
export function describeListen(l: ManagementListen): string {
  return l.kind === 'tcp' ? `management ${l.host} ${l.port}` : `management ${l.path} unix`;
}

/** OpenVPN unlinks the socket path before binding; we do so only when it is a socket. */
export function removeStaleUnixSocket(path: string): { ok: true } | { ok: false; reason: string } {
  try {
    const st = lstatSync(path);
    if (!st.isSocket()) return { ok: false, reason: `${path} exists and is not a socket; refusing to replace it` };
    unlinkSync(path);
    return { ok: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { ok: true };
    return { ok: false, reason: `cannot replace ${path}: ${(error as Error).message}` };
  }
}
