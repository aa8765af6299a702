// Key files (static-key.ts): the OpenVPN Static key V1 format (tls-auth, tls-crypt, secret),
// the tls-crypt-v2 server and client key PEMs and the auth-gen-token secret (auth-token.ts). A bad file is refused with an Error naming it;
// a client key that parses has a 256-byte Kc and a WKc whose length field matches.
import { parseStaticKey, parseTlsCryptV2ClientKey, parseTlsCryptV2ServerKey, KEY2_SIZE } from '../../../src/shared/protocol/static-key';
import { parseAuthTokenSecret } from '../../../src/shared/protocol/auth-token';
import { Finding, refusing } from '../finding';

const SOURCE = 'fuzz.key';
const namesFile = (e: unknown): boolean =>
  e instanceof Error && !(e instanceof TypeError) && !(e instanceof RangeError) && e.message.startsWith(`${SOURCE}: `);

export function fuzz(data: Buffer): void {
  const text = data.toString('latin1');
  const key2 = refusing(() => parseStaticKey(text, SOURCE), namesFile);
  if (key2 !== undefined && key2.length !== KEY2_SIZE) throw new Finding(`parseStaticKey: ${key2.length}-byte key`);
  refusing(() => parseTlsCryptV2ServerKey(text, SOURCE), namesFile);
  const tokenKey = refusing(() => parseAuthTokenSecret(text, SOURCE), namesFile);
  if (tokenKey !== undefined && tokenKey.length !== 32) throw new Finding(`parseAuthTokenSecret: ${tokenKey.length}-byte key`);
  const client = refusing(() => parseTlsCryptV2ClientKey(text, SOURCE), namesFile);
  if (client !== undefined) {
    if (client.key2.length !== KEY2_SIZE) throw new Finding('parseTlsCryptV2ClientKey: Kc is not 256 bytes');
    if (client.wkc.readUInt16BE(client.wkc.length - 2) !== client.wkc.length)
      throw new Finding('parseTlsCryptV2ClientKey: WKc length field');
  }
}
