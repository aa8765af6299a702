// The reliability layer (reliable.ts) fed with parsed control packets: each 0xff-separated part of
// the input is a control packet; its ACKs go to a ReliableSend holding messages of ours, its
// message to a ReliableRecv. The windows must stay bounded, messages come out in order, each once,
// and ACK lists stay within their limits.
import { parseControlPacket, CONTROL_SEND_ACK_MAX, RELIABLE_ACK_SIZE } from '../../../src/shared/protocol/packet';
import { P_CONTROL_V1 } from '../../../src/shared/protocol/opcodes';
import { ReliableRecv, ReliableSend, TLS_RELIABLE_N_SEND_BUFFERS } from '../../../src/shared/protocol/reliable';
import { Finding, parts } from '../finding';

const VERDICTS = ['accepted', 'duplicate', 'out-of-window', 'full'];

export function fuzz(data: Buffer): void {
  const send = new ReliableSend({ firstPacketId: data[0] ?? 0 });
  for (let i = 0; i < TLS_RELIABLE_N_SEND_BUFFERS; i++) {
    if (send.enqueue(P_CONTROL_V1, Buffer.from([i])) === null) throw new Finding('ReliableSend: window full before it was used');
  }
  const recv = new ReliableRecv({ firstPacketId: data[1] ?? 0 });
  let expected = recv.expectedPacketId;
  let now = 0;
  for (const part of parts(data, 64)) {
    const p = parseControlPacket(part);
    if (!p.ok) continue;
    send.onAcks(p.value.acks);
    if (send.unacked > TLS_RELIABLE_N_SEND_BUFFERS) throw new Finding('ReliableSend: more unacknowledged than the window');
    if (p.value.kind === 'message') {
      const v = recv.receive(p.value.messageId, p.value.opcode, p.value.payload);
      if (!VERDICTS.includes(v)) throw new Finding(`ReliableRecv: verdict ${String(v)}`);
      for (const m of recv.drain()) {
        if (m.packetId !== expected) throw new Finding(`ReliableRecv: handed out ${m.packetId}, expected ${expected}`);
        expected = (expected + 1) >>> 0;
      }
    }
    const acks = recv.takeAcks(part.length & 1 ? RELIABLE_ACK_SIZE : CONTROL_SEND_ACK_MAX);
    if (acks.length > RELIABLE_ACK_SIZE) throw new Finding('ReliableRecv: too many ACKs for one packet');
    now += 500;
    for (const out of send.due(now)) if (out.payload.length !== 1) throw new Finding('ReliableSend: handed out a changed message');
    const wait = send.timeUntilDue(now);
    if (wait !== null && !(wait >= 0)) throw new Finding(`ReliableSend: timeUntilDue ${wait}`);
  }
  if (send.available() > TLS_RELIABLE_N_SEND_BUFFERS) throw new Finding('ReliableSend: available past the window');
  if (recv.expectedPacketId !== expected) throw new Finding('ReliableRecv: expected id moved without handing out');
}
