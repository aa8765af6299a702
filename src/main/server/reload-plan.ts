// What a hitless SIGHUP can apply to a running server, and what needs OpenVPN's full restart.
// The settings below reach a running server without touching its sockets, TUN device, pool or
// shards: new clients get them at their handshake, the connected ones keep theirs unless their
// own settings changed (reload.ts). A change to anything else (the port, the device, the pool,
// the tls-auth key, the management interface, ...) restarts the server as OpenVPN does.
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';

import type { Options } from '../../shared/config';

/** Options fields a running server takes over in place. */
const APPLIED_IN_PLACE: ReadonlySet<keyof Options> = new Set<keyof Options>([
  // What clients are given: the push list, client-config-dir, iroutes, scripts.
  'push',
  'clientConfigDir',
  'ccdExclusive',
  'clientConnect',
  'clientDisconnect',
  'learnAddress',
  'authUserPassVerify',
  'usernameAsCommonName',
  'authUserPassOptional',
  'duplicateCn',
  // Timers of new sessions (and what keepalive adds to the push list).
  'keepalive',
  'ping',
  'pingRecTimeout',
  'pingRecAction',
  'renegSec',
  'renegSecMin',
  'renegBytes',
  'renegPkts',
  'tranWindow',
  'tlsTimeout',
  'inactive',
  'sessionTimeout',
  // The TLS material and peer checks of new handshakes.
  'ca',
  'cert',
  'key',
  'dh',
  'extraCerts',
  'pkcs12',
  'crlVerify',
  'remoteCertTls',
  'remoteCertEku',
  'remoteCertKu',
  'nsCertType',
  'verifyHash',
  'verifyX509Name',
  'verifyClientCert',
  'tlsVersionMin',
  'tlsVersionMinOrHighest',
  'tlsVersionMax',
  'tlsCipher',
  'tlsCiphersuites',
  'tlsCertProfile',
  'tlsGroups',
  'ecdhCurve',
  // The data channel of new sessions.
  'auth',
  'cipher',
  'dataCiphers',
  'dataCiphersFallback',
  'replayWindow',
  'replayTime',
  'mssfix',
  'explicitExitNotify',
  // Logging.
  'verb',
  'mute',
  // The reload settings themselves, and bookkeeping of where each directive was written.
  'reloadMode',
  'reloadChangedClients',
  'positions',
  'source',
  'unsupported',
]);

/**
 * Not compared: where directives were written, and a client's remote list (`connections` also
 * mirrors the top-level link fields, which are compared themselves). `...Defined` fields only
 * say whether a directive was written, not what it sets.
 */
const IGNORED: ReadonlySet<keyof Options> = new Set<keyof Options>(['positions', 'source', 'connections', 'remotes']);

export interface ReloadPlan {
  /** Directives whose change needs a full restart; empty: the reload is hitless. */
  readonly restartFor: string[];
  /** Directives applied in place. */
  readonly applied: string[];
}

/**
 * A configuration as comparable text per field, taken when it is loaded, and the digest of each
 * file it names (by path) as read then.
 */
export interface OptionsFingerprint {
  readonly fields: ReadonlyMap<keyof Options, string>;
  readonly files: ReadonlyMap<string, string>;
}

/**
 * `previous`: the running configuration's fingerprint. A file this process can no longer read
 * (it dropped root with `user`) keeps the digest it had then: it counts as unchanged, as
 * persist-key keeps what was read.
 */
export function fingerprintOptions(options: Options, previous?: OptionsFingerprint): OptionsFingerprint {
  const fields = new Map<keyof Options, string>();
  const files = new Map<string, string>();
  const digest = (file: string): string => {
    const text = fileDigest(file) ?? previous?.files.get(file) ?? 'unreadable';
    files.set(file, text);
    return text;
  };
  for (const key of Object.keys(options) as (keyof Options)[]) {
    if (IGNORED.has(key) || key.endsWith('Defined')) continue;
    fields.set(key, fingerprint(options[key], digest));
  }
  return { fields, files };
}

/** Compares two configurations field by field (file:line bookkeeping and comments do not count). */
export function planReload(running: OptionsFingerprint, next: OptionsFingerprint): ReloadPlan {
  const restartFor: string[] = [];
  const applied: string[] = [];
  for (const key of new Set([...running.fields.keys(), ...next.fields.keys()])) {
    if (running.fields.get(key) === next.fields.get(key)) continue;
    (APPLIED_IN_PLACE.has(key) ? applied : restartFor).push(directiveName(key));
  }
  return { restartFor: restartFor.sort(), applied: applied.sort() };
}

/** Whether every one of `keys` is the same in both. */
export function unchanged(running: OptionsFingerprint, next: OptionsFingerprint, keys: readonly (keyof Options)[]): boolean {
  return keys.every((key) => running.fields.get(key) === next.fields.get(key));
}

/** The directive an Options field comes from, as the config spells it (dataCiphers: data-ciphers). */
function directiveName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/**
 * A value as text, without where it was written (`file`, `line` of a FileRef or a Where) and
 * with a named file's contents hashed, so a renewed key file at the same path counts as a change.
 */
function fingerprint(value: unknown, digest: (file: string) => string): string {
  return JSON.stringify(value, (_key: string, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const o = v as Record<string, unknown>;
    if (!('file' in o && 'line' in o)) return v;
    const rest = Object.fromEntries(Object.entries(o).filter(([k]) => k !== 'file' && k !== 'line'));
    if (o.kind === 'file' && typeof o.resolved === 'string') rest.contents = digest(o.resolved);
    return rest;
  });
}

/** The file's SHA-256; null when it cannot be read. */
function fileDigest(file: string): string | null {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch {
    return null;
  }
}
