// tls-crypt unwrap (tls-crypt.ts): outside bytes are refused typed; an authentic packet made from
// the input unwraps to it, passes the replay window once, and any change to it is refused.
import { PacketIdRec, PacketIdSend } from '../../../src/shared/protocol/packet-id';
import { tlsCryptKeys, tlsCryptUnwrap, tlsCryptWrap } from '../../../src/shared/protocol/tls-crypt';
import { Finding, typed } from '../finding';
import { fixedKey2 } from '../keys';

const REJECTS = ['truncated', 'bad-hmac', 'replay'];
const server = tlsCryptKeys(fixedKey2(3), 'server');
const client = tlsCryptKeys(fixedKey2(3), 'client');

export function fuzz(data: Buffer): void {
  typed(tlsCryptUnwrap(server, null, data), REJECTS, 'tlsCryptUnwrap');
  typed(tlsCryptUnwrap(server, new PacketIdRec(), data, 1000), REJECTS, 'tlsCryptUnwrap+replay');
  if (data.length < 9) return;
  const wire = tlsCryptWrap(client, new PacketIdSend(true), data, 1000);
  if (wire === null) throw new Finding('tlsCryptWrap refused a fresh packet-id');
  const replay = new PacketIdRec();
  const r = tlsCryptUnwrap(server, replay, wire, 1000);
  if (!r.ok || !r.packet.equals(data)) throw new Finding(`tlsCryptUnwrap: an authentic packet was ${r.ok ? 'changed' : r.reason}`);
  const again = tlsCryptUnwrap(server, replay, wire, 1000);
  if (again.ok || again.reason !== 'replay') throw new Finding('tlsCryptUnwrap: a replayed packet was not refused as a replay');
  const bad = Buffer.from(wire);
  bad[data[0]! % bad.length]! ^= 1 << (data[1]! & 7);
  if (tlsCryptUnwrap(server, null, bad).ok) throw new Finding('tlsCryptUnwrap: a changed packet was accepted');
}
