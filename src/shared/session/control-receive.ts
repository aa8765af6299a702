// The receive side of a control session (ssl.c tls_pre_decrypt): a control datagram is checked
// (direction, wrap, session ids, key_id) and routed to its key state, or dropped with a reason;
// the in-order messages then go to that key's TLS session.

import {
  P_CONTROL_HARD_RESET_CLIENT_V2,
  P_CONTROL_HARD_RESET_CLIENT_V3,
  P_CONTROL_HARD_RESET_SERVER_V2,
  P_CONTROL_SOFT_RESET_V1,
  P_CONTROL_WKC_V1,
  isHardReset,
  type ControlOpcode,
} from '../protocol/opcodes';
import {
  CONTROL_HEADER_SIZE,
  EARLY_NEG_FLAG_RESEND_WKC,
  isSessionIdDefined,
  parseControlBody,
  parseControlHeader,
  parseEarlyNegotiation,
  type ControlBody,
} from '../protocol/packet';
import { startRenegotiation } from './key-lifecycle';
import { nextKeyId, type KeyState } from './key-state';
import type { SessionCore } from './session-core';
import type { DropReason } from './types';

/** A datagram that passed the checks: its key state, opcode and parsed body. */
export interface RoutedPacket {
  readonly ks: KeyState;
  readonly opcode: ControlOpcode;
  readonly body: ControlBody;
}

/**
 * Unwraps and checks one control datagram and finds its key state: a first hard reset makes
 * the stateful server's key 0, a soft reset to the next key_id starts a renegotiation. Null
 * after a 'drop' event.
 */
export function routeControlPacket(core: SessionCore, wire: Buffer, now: number): RoutedPacket | null {
  const h = parseControlHeader(wire);
  if (!h.ok) return drop(core, 'parse', h.reason);
  const op = h.value.opcode;
  const keyId = h.value.keyId;
  const fromServer = op === P_CONTROL_HARD_RESET_SERVER_V2;
  const fromClient = op === P_CONTROL_HARD_RESET_CLIENT_V2 || op === P_CONTROL_HARD_RESET_CLIENT_V3;
  if ((core.role === 'client' && fromClient) || (core.role === 'server' && fromServer)) {
    return drop(core, 'wrong-direction', `hard reset ${op} in the wrong direction`);
  }
  if (core.role === 'client' && op === P_CONTROL_WKC_V1) return drop(core, 'wrong-direction', 'P_CONTROL_WKC_V1 at a client');
  const u = core.wrap.unwrap(wire, now);
  if (!u.ok) {
    const r: DropReason =
      u.reason === 'replay'
        ? 'replay'
        : u.reason === 'bad-wkc' || u.reason === 'no-client-key'
          ? 'bad-wkc'
          : u.reason === 'truncated'
            ? 'parse'
            : 'bad-hmac';
    return drop(core, r, u.reason);
  }
  const b = parseControlBody(op, u.packet.subarray(CONTROL_HEADER_SIZE));
  if (!b.ok) return drop(core, 'parse', b.reason);
  const body = b.value;
  const sid = u.packet.subarray(1, CONTROL_HEADER_SIZE);
  if (!isSessionIdDefined(sid)) return drop(core, 'parse', 'zero session id');
  if (body.remoteSessionId !== null && !body.remoteSessionId.equals(core.sessionId)) {
    return drop(core, 'wrong-session', 'ACK for another session id of ours');
  }

  let ks: KeyState | null;
  if (isHardReset(op)) {
    if (keyId !== 0) return drop(core, 'bad-hard-reset', 'hard reset with key_id != 0');
    if (body.kind !== 'message' || body.messageId !== 0) return drop(core, 'bad-hard-reset', 'hard reset with message id != 0');
    if (core.peerSid === null) core.peerSid = Buffer.from(sid);
    else if (!sid.equals(core.peerSid)) return drop(core, 'wrong-session', 'hard reset from another session (new session)');
    if (core.role === 'server' && core.primary === null) {
      // Stateful path (pre-2.6 tls-crypt-v2 client, TCP, or a host without a StatelessResponder).
      const nks = core.newKeyState(0, now);
      nks.send.enqueue(P_CONTROL_HARD_RESET_SERVER_V2, Buffer.alloc(0));
      core.primary = nks;
    }
    ks = core.primary !== null && core.primary.keyId === 0 ? core.primary : null;
    if (ks === null) return drop(core, 'wrong-key-id', 'hard reset after the first key');
  } else {
    if (core.peerSid === null || !sid.equals(core.peerSid)) return drop(core, 'wrong-session', 'unknown peer session id');
    const p = core.primary;
    if (p === null) return drop(core, 'wrong-key-id', 'no key state yet');
    if (op === P_CONTROL_SOFT_RESET_V1 && keyId !== p.keyId) {
      if (p.state === 'keys' && keyId === nextKeyId(p.keyId)) {
        startRenegotiation(core, 'peer', now);
        ks = core.primary;
      } else {
        return drop(core, 'wrong-key-id', `soft reset to key_id ${keyId} while primary is ${p.keyId} (${p.state})`);
      }
    } else if (keyId === p.keyId) {
      ks = p;
    } else if (core.lameDuck !== null && keyId === core.lameDuck.keyId) {
      ks = core.lameDuck;
    } else {
      return drop(core, 'wrong-key-id', `local/remote key IDs out of sync (${keyId})`);
    }
  }
  if (ks === null || ks.state === 'failed') return drop(core, 'wrong-key-id', 'key state failed');
  return { ks, opcode: op, body };
}

/**
 * Moves a key state on after packets arrived: in-order payloads go to TLS (or wait for it),
 * and once our id 0 is acked, `startTls` runs.
 */
export function deliverMessages(core: SessionCore, ks: KeyState, startTls: (ks: KeyState) => void): void {
  // Drain first: the server's reset may carry RESEND_WKC, which must be known before TLS
  // produces its first bytes (node may emit the ClientHello synchronously).
  for (const m of ks.recv.drain()) {
    if (m.packetId === 0 && (isHardReset(m.opcode) || m.opcode === P_CONTROL_SOFT_RESET_V1)) {
      if (m.opcode === P_CONTROL_HARD_RESET_SERVER_V2 && m.payload.length > 0) {
        const tlv = parseEarlyNegotiation(m.payload);
        if (tlv.ok && (tlv.value.flags & EARLY_NEG_FLAG_RESEND_WKC) !== 0 && core.config.wrap.mode === 'tls-crypt-v2-client') {
          core.needWkc = true;
        }
      }
      continue;
    }
    if (m.payload.length === 0) continue;
    if (ks.tls !== null) ks.tls.feed(m.payload);
    else if (!ks.tlsReleased) ks.early.push(Buffer.from(m.payload));
  }
  if (ks.state === 'pre-start' && ks.send.isEmpty() && ks.send.nextPacketId > 0) startTls(ks);
}

function drop(core: SessionCore, reason: DropReason, detail: string): null {
  core.drop(reason, detail);
  return null;
}
