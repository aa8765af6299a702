// tls-crypt-v2 on the server (tls-crypt.ts): the WKc cut off a client's first packet and unwrapped
// with the server key, and its metadata. Outside bytes are refused typed; a WKc wrapped from the
// input's metadata unwraps to the same client key and metadata, and any change to it is refused.
import {
  parseTlsCryptV2Metadata,
  tlsCryptV2ExtractClientKey,
  tlsCryptV2StripWkc,
  tlsCryptV2UnwrapClientKey,
  tlsCryptV2WrapClientKey,
  TLS_CRYPT_V2_MAX_METADATA_LEN,
} from '../../../src/shared/protocol/tls-crypt';
import { Finding, typed } from '../finding';
import { fixedKey2, fixedServerKey } from '../keys';

const REJECTS = ['no-wkc', 'bad-length', 'too-big', 'bad-tag', 'too-short'];
const serverKey = fixedServerKey();
const clientKey2 = fixedKey2(4);

export function fuzz(data: Buffer): void {
  typed(tlsCryptV2ExtractClientKey(serverKey, data), REJECTS, 'tlsCryptV2ExtractClientKey');
  typed(tlsCryptV2UnwrapClientKey(serverKey, data), REJECTS, 'tlsCryptV2UnwrapClientKey');
  const stripped = tlsCryptV2StripWkc(data);
  if (stripped !== null && stripped.length > data.length) throw new Finding('tlsCryptV2StripWkc grew the packet');
  parseTlsCryptV2Metadata(data);

  // The input as metadata, in a WKc appended to a packet as a client sends it.
  const metadata = data.subarray(0, TLS_CRYPT_V2_MAX_METADATA_LEN);
  const wkc = tlsCryptV2WrapClientKey(serverKey, clientKey2, metadata);
  const packet = Buffer.concat([Buffer.from([0x50]), data.subarray(0, 40), wkc]);
  const r = tlsCryptV2ExtractClientKey(serverKey, packet);
  if (!r.ok) throw new Finding(`tlsCryptV2ExtractClientKey refused an authentic WKc: ${r.reason}`);
  if (!r.key2.equals(clientKey2) || !r.metadata.equals(metadata)) throw new Finding('tlsCryptV2ExtractClientKey: wrong key or metadata');
  const meta = parseTlsCryptV2Metadata(r.metadata);
  if ((meta === null) !== (metadata.length === 0)) throw new Finding('parseTlsCryptV2Metadata: null only for empty metadata');
  const bad = Buffer.from(wkc);
  bad[(data[0] ?? 0) % (bad.length - 2)]! ^= 1 << ((data[1] ?? 0) & 7);
  if (tlsCryptV2UnwrapClientKey(serverKey, bad).ok) throw new Finding('tlsCryptV2UnwrapClientKey: a changed WKc was accepted');
}
