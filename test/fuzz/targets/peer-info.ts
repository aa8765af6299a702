// The key method 2 message a peer sends over TLS and its peer-info (key-method2.ts), what the
// server makes of it: NCP's cipher choice (ncp.ts), the IV_ variables given to scripts
// (client-scripts.ts). Refusals are typed; nothing throws.
import { decodeKeyMethod2, parsePeerInfo, peerInfoFields, peerInfoProto } from '../../../src/shared/protocol/key-method2';
import { occStringCipher, peerNcpList, selectServerCipher } from '../../../src/shared/protocol/ncp';
import { peerInfoEnvironment } from '../../../src/main/server/client-scripts';
import { Finding, typed } from '../finding';

const KM2_REJECTS = ['truncated', 'bad-key-method', 'bad-options'];
const NCP_REJECTS = ['no-shared-cipher', 'no-cipher-info'];

function peerInfo(s: string): void {
  parsePeerInfo(s);
  peerInfoFields(s);
  const proto = peerInfoProto(s);
  if (!Number.isInteger(proto) || proto < 0) throw new Finding(`peerInfoProto: ${proto}`);
  peerNcpList(s);
  typed(selectServerCipher({ dataCiphers: ['AES-256-GCM', 'CHACHA20-POLY1305'], peerInfo: s }), NCP_REJECTS, 'selectServerCipher');
  for (const [k, v] of Object.entries(peerInfoEnvironment(s))) {
    if (!/^IV_[A-Za-z0-9_]+$/.test(k) || v.includes('\n')) throw new Finding(`peerInfoEnvironment: ${JSON.stringify([k, v])}`);
  }
}

export function fuzz(data: Buffer): void {
  for (const fromClient of [true, false]) {
    for (const peerInfoOptional of [true, false]) {
      const d = decodeKeyMethod2(data, fromClient, { peerInfoOptional });
      typed(d, KM2_REJECTS, 'decodeKeyMethod2');
      if (!d.ok) continue;
      if (d.message.peerInfo !== null) peerInfo(d.message.peerInfo);
      // A peer without IV_CIPHERS is matched on the cipher of its OCC options string.
      const occCipher = occStringCipher(d.message.options);
      typed(
        selectServerCipher({ dataCiphers: ['AES-256-GCM'], peerInfo: d.message.peerInfo, occCipher }),
        NCP_REJECTS,
        'selectServerCipher(occ)',
      );
    }
  }
  peerInfo(data.toString('latin1'));
}
