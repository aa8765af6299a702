// How key states come and go (ssl.c tls_multi_process, key_state_soft_reset): a soft reset
// makes the primary the lame duck for tran-window, a key without keys at hand-window fails,
// reneg-sec starts the next key; and when the session next has timed work.

import { P_CONTROL_SOFT_RESET_V1 } from '../protocol/opcodes';
import { nextKeyId, type KeyState } from './key-state';
import type { SessionCore } from './session-core';

/** A soft reset to the next key_id; the old primary lives on as the lame duck. */
export function startRenegotiation(core: SessionCore, by: 'local' | 'peer', now: number): void {
  const old = core.primary;
  if (old === null) return;
  if (core.lameDuck !== null) retireKey(core, core.lameDuck);
  old.mustDie = now + core.tranWindowMs;
  core.lameDuck = old;
  const ks = core.newKeyState(nextKeyId(old.keyId), now);
  ks.send.enqueue(P_CONTROL_SOFT_RESET_V1, Buffer.alloc(0));
  core.primary = ks;
  core.emit({ type: 'renegotiating', keyId: ks.keyId, initiatedBy: by });
}

export function retireKey(core: SessionCore, ks: KeyState): void {
  ks.dispose();
  if (core.lameDuck === ks) core.lameDuck = null;
  core.emit({ type: 'key-retired', keyId: ks.keyId });
}

/** tick()'s key work: hand-window timeouts, lame duck expiry, reneg-sec. */
export function expireKeys(core: SessionCore, now: number): void {
  const p = core.primary;
  if (p !== null && p.state !== 'keys' && now >= p.handDeadline) {
    const fallback = core.lameDuck;
    core.failKey(
      p,
      'handshake-timeout',
      `TLS key negotiation failed to occur within ${Math.round(core.handWindowMs / 1000)} seconds`,
      fallback === null,
    );
    if (fallback !== null && !core.closed) {
      // OpenVPN keeps using the lame duck when a renegotiation fails.
      core.primary = fallback;
      core.lameDuck = null;
    }
  }
  const ld = core.lameDuck;
  if (ld !== null && ld.mustDie !== null && now >= ld.mustDie) retireKey(core, ld);
  const q = core.primary;
  if (q !== null && q.state === 'keys' && q.renegAfterMs > 0 && now >= q.established + q.renegAfterMs) {
    startRenegotiation(core, 'local', now);
  }
}

/** The earliest retransmission, pending ACK, hand-window, lame duck or reneg-sec deadline. */
export function nextKeyTimeout(core: SessionCore, now: number): number | null {
  let t = Infinity;
  for (const ks of [core.primary, core.lameDuck]) {
    if (ks === null) continue;
    const d = ks.send.timeUntilDue(now);
    if (d !== null) t = Math.min(t, now + d);
    if (ks.recv.hasPendingAcks()) t = Math.min(t, now);
    if (ks.state !== 'keys' && ks.state !== 'failed') t = Math.min(t, ks.handDeadline);
    if (ks.mustDie !== null) t = Math.min(t, ks.mustDie);
    if (ks === core.primary && ks.state === 'keys' && ks.renegAfterMs > 0) t = Math.min(t, ks.established + ks.renegAfterMs);
  }
  return t === Infinity ? null : t;
}
