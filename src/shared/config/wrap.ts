// The control-channel wrap (tls-auth, tls-crypt, tls-crypt-v2) a config asks for, with its key
// material loaded; errors name the directive's file and line.
import { parseKeyDirection, parseStaticKey, parseTlsCryptV2ClientKey, parseTlsCryptV2ServerKey } from '../protocol/static-key';
import type { WrapConfig } from '../session/control-wrap';
import { ConfigError } from './errors';
import { parseMaterial } from './material';
import type { ConnectionFields, Options } from './options-types';

/** `fields` is the connection entry in use (a `<connection>` block may carry its own keys). */
export function loadWrap(options: Options, fields: ConnectionFields, role: 'client' | 'server'): WrapConfig {
  const configured = [fields.tlsAuth, fields.tlsCrypt, fields.tlsCryptV2].filter((ref) => ref !== undefined);
  if (configured.length > 1) {
    const ref = configured[1]!;
    throw new ConfigError({ file: ref.file, line: ref.line }, 'tls-crypt', 'use only one of tls-auth, tls-crypt and tls-crypt-v2');
  }
  if (fields.tlsCrypt !== undefined) {
    return { mode: 'tls-crypt', key: parseMaterial(fields.tlsCrypt, 'tls-crypt', parseStaticKey) };
  }
  if (fields.tlsAuth !== undefined) {
    const direction = fields.keyDirection === undefined ? parseKeyDirection(undefined) : parseKeyDirection(String(fields.keyDirection));
    return { mode: 'tls-auth', key: parseMaterial(fields.tlsAuth, 'tls-auth', parseStaticKey), direction, digest: options.auth };
  }
  if (fields.tlsCryptV2 !== undefined) {
    if (role === 'server')
      return { mode: 'tls-crypt-v2-server', serverKey: parseMaterial(fields.tlsCryptV2, 'tls-crypt-v2', parseTlsCryptV2ServerKey) };
    const client = parseMaterial(fields.tlsCryptV2, 'tls-crypt-v2', parseTlsCryptV2ClientKey);
    return { mode: 'tls-crypt-v2-client', key: client.key2, wkc: client.wkc };
  }
  return { mode: 'none' };
}

/** A WrapConfig after structured cloning (worker data): Uint8Arrays back into Buffers. */
export function reviveWrap(wrap: WrapConfig): WrapConfig {
  const b = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (wrap.mode) {
    case 'none':
      return wrap;
    case 'tls-auth':
      return { ...wrap, key: b(wrap.key) };
    case 'tls-crypt':
      return { ...wrap, key: b(wrap.key) };
    case 'tls-crypt-v2-client':
      return { ...wrap, key: b(wrap.key), wkc: b(wrap.wkc) };
    case 'tls-crypt-v2-server':
      return { ...wrap, serverKey: b(wrap.serverKey) };
  }
}
