// tls-auth unwrap (tls-auth.ts): outside bytes are refused typed; an authentic packet made from the
// input unwraps to it, passes the replay window once, and any change to it is refused.
import { PacketIdRec, PacketIdSend } from '../../../src/shared/protocol/packet-id';
import { tlsAuthKeys, tlsAuthUnwrap, tlsAuthWrap } from '../../../src/shared/protocol/tls-auth';
import { Finding, typed } from '../finding';
import { fixedKey2 } from '../keys';

const REJECTS = ['truncated', 'bad-hmac', 'replay'];
const server = tlsAuthKeys(fixedKey2(1), 'normal', 'SHA256');
const client = tlsAuthKeys(fixedKey2(1), 'inverse', 'SHA256');
const serverSha1 = tlsAuthKeys(fixedKey2(2), 'bidirectional');

export function fuzz(data: Buffer): void {
  typed(tlsAuthUnwrap(server, null, data), REJECTS, 'tlsAuthUnwrap');
  typed(tlsAuthUnwrap(serverSha1, new PacketIdRec(), data, 1000), REJECTS, 'tlsAuthUnwrap+replay');
  if (data.length < 9) return;
  // The input as the plain packet (opcode, session id, rest), wrapped as the peer would.
  const wire = tlsAuthWrap(client, new PacketIdSend(true), data, 1000);
  if (wire === null) throw new Finding('tlsAuthWrap refused a fresh packet-id');
  const replay = new PacketIdRec();
  const r = tlsAuthUnwrap(server, replay, wire, 1000);
  if (!r.ok || !r.packet.equals(data)) throw new Finding(`tlsAuthUnwrap: an authentic packet was ${r.ok ? 'changed' : r.reason}`);
  const again = tlsAuthUnwrap(server, replay, wire, 1000);
  if (again.ok || again.reason !== 'replay') throw new Finding('tlsAuthUnwrap: a replayed packet was not refused as a replay');
  const bad = Buffer.from(wire);
  bad[data[0]! % bad.length]! ^= 1 << (data[1]! & 7);
  const b = tlsAuthUnwrap(server, null, bad);
  if (b.ok) throw new Finding('tlsAuthUnwrap: a changed packet was accepted');
}
