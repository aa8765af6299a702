// The send side of a control session (ssl.c tls_process's output, reliable_schedule): TLS
// bytes cut into P_CONTROL_V1 messages (P_CONTROL_WKC_V1 when the server asked for the WKc),
// retransmissions, ACKs carried on messages or sent bare, every packet wrapped on the way out.

import { P_ACK_V1, P_CONTROL_V1, P_CONTROL_WKC_V1 } from '../protocol/opcodes';
import { CONTROL_SEND_ACK_MAX, RELIABLE_ACK_SIZE, buildControlPacket } from '../protocol/packet';
import type { ReliableOutgoing } from '../protocol/reliable';
import type { KeyState } from './key-state';
import type { SessionCore } from './session-core';

// Sends what is due: TLS bytes as new messages, retransmissions, then a bare ACK if needed.
export function flushControl(core: SessionCore): void {
  if (core.closed) return;
  const now = core.host.now();
  for (const ks of [core.lameDuck, core.primary]) {
    if (ks === null || ks.state === 'failed') continue;
    while (ks.splitter.pending > 0 && ks.send.available() > 0) {
      const wkc = core.needWkc && ks.keyId === 0 && ks.send.nextPacketId === 1;
      const piece = ks.splitter.take(Math.max(16, core.maxPayload - (wkc ? core.wrap.wkcLength : 0)));
      if (piece === null) break;
      ks.send.enqueue(wkc ? P_CONTROL_WKC_V1 : P_CONTROL_V1, piece);
    }
    markKm2End(ks);
    // The server asked for the WKc: the packet with message id 1 must be a P_CONTROL_WKC_V1,
    // empty when no TLS bytes are ready (ssl.c control_packet_needs_wkc).
    if (core.needWkc && ks.keyId === 0 && ks.send.nextPacketId === 1 && ks.recv.hasPendingAcks() && ks.send.available() > 0) {
      ks.send.enqueue(P_CONTROL_WKC_V1, Buffer.alloc(0));
    }
    for (const m of ks.send.due(now)) {
      if (!sendMessage(core, ks, m, now)) return;
    }
    if (ks.recv.hasPendingAcks() && core.peerSid !== null) {
      const acks = ks.recv.takeAcks(RELIABLE_ACK_SIZE);
      const p = buildControlPacket({
        kind: 'ack',
        opcode: P_ACK_V1,
        keyId: ks.keyId,
        sessionId: core.sessionId,
        acks,
        remoteSessionId: core.peerSid,
      });
      if (!transmit(core, p, now)) return;
    }
  }
}

// Once the key method 2 bytes have all left the splitter for messages, the peer holds the
// keys when every message before the next packet-id is acknowledged.
export function markKm2End(ks: KeyState): void {
  if (ks.km2Written && ks.km2EndPacketId === null && ks.splitter.pending === 0) ks.km2EndPacketId = ks.send.nextPacketId;
}

function sendMessage(core: SessionCore, ks: KeyState, m: ReliableOutgoing, now: number): boolean {
  const acks = core.peerSid !== null ? ks.recv.takeAcks(CONTROL_SEND_ACK_MAX) : [];
  const p = buildControlPacket({
    kind: 'message',
    opcode: m.opcode,
    keyId: ks.keyId,
    sessionId: core.sessionId,
    acks,
    remoteSessionId: acks.length > 0 ? core.peerSid : null,
    messageId: m.packetId,
    payload: m.payload,
  });
  return transmit(core, p, now);
}

// Wraps and sends one packet; an exhausted replay counter ends the session.
function transmit(core: SessionCore, plain: Buffer, now: number): boolean {
  const wire = core.wrap.wrap(plain, now);
  if (wire === null) {
    const p = core.primary;
    core.emit({
      type: 'error',
      reason: 'replay-exhausted',
      fatal: true,
      keyId: p?.keyId ?? 0,
      detail: 'control channel replay counter exhausted',
    });
    core.close();
    return false;
  }
  core.host.sendPacket(wire);
  return true;
}
