// What the parts of one control session share (tls_multi): the session ids, the control-channel
// wrap, the primary and lame duck key states, and the way out to the host. ControlSession owns
// one; control-receive.ts, control-send.ts, key-lifecycle.ts and key-negotiation.ts work on it.

import type { ControlWrap } from './control-wrap';
import { KeyState } from './key-state';
import type { ControlSessionConfig, DropReason, KeyDerivationMethod, SessionErrorReason, SessionEvent, SessionHost } from './types';

const DEFAULT_HAND_WINDOW_MS = 60_000;
const DEFAULT_TLS_TIMEOUT_MS = 2_000;
const DEFAULT_RENEG_MS = 3_600_000;
const DEFAULT_TRAN_WINDOW_MS = 3_600_000;

export class SessionCore {
  readonly role: 'client' | 'server';
  readonly handWindowMs: number;
  readonly tlsTimeoutMs: number;
  readonly renegMs: number;
  /** reneg-sec's min; null: OpenVPN's default spread (renegotiationDelay). */
  readonly renegMinMs: number | null;
  readonly tranWindowMs: number;
  /** null: 'auto' and not chosen yet (the server learns it from IV_PROTO, the client from the push). */
  keyDerivation: KeyDerivationMethod | null;
  peerSid: Buffer | null = null;
  primary: KeyState | null = null;
  lameDuck: KeyState | null = null;
  /** The server asked for the WKc again (tls-crypt-v2 early negotiation). */
  needWkc = false;
  started = false;
  closed = false;

  constructor(
    readonly config: ControlSessionConfig,
    readonly host: SessionHost,
    /** Our own session id (a 2.6 server's is the cookie). */
    readonly sessionId: Buffer,
    readonly wrap: ControlWrap,
    /** Most TLS bytes one control packet carries (tls-mtu less headers and wrap). */
    readonly maxPayload: number,
  ) {
    this.role = config.role;
    const t = config.timing ?? {};
    this.handWindowMs = t.handWindowMs ?? DEFAULT_HAND_WINDOW_MS;
    this.tlsTimeoutMs = t.tlsTimeoutMs ?? DEFAULT_TLS_TIMEOUT_MS;
    this.renegMs = t.renegMs ?? DEFAULT_RENEG_MS;
    this.renegMinMs = t.renegMinMs ?? null;
    this.tranWindowMs = t.tranWindowMs ?? DEFAULT_TRAN_WINDOW_MS;
    const kd = config.keyDerivation ?? 'auto';
    this.keyDerivation = kd === 'auto' ? null : kd;
  }

  newKeyState(keyId: number, now: number, firstPacketId = 0): KeyState {
    return new KeyState(keyId, this.role, now, this.handWindowMs, this.tlsTimeoutMs, firstPacketId, !this.config.stream);
  }

  /** The first key of the session: its failure ends the session. */
  isFirstKey(ks: KeyState): boolean {
    return ks === this.primary && this.lameDuck === null && ks.keyId === 0;
  }

  failKey(ks: KeyState, reason: SessionErrorReason, detail: string, fatal: boolean): void {
    if (ks.state === 'failed') return;
    ks.state = 'failed';
    ks.dispose();
    this.emit({ type: 'error', reason, fatal, keyId: ks.keyId, detail });
  }

  /** Stops TLS, forgets keys; emits 'closed' once. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.primary?.dispose();
    this.lameDuck?.dispose();
    this.primary = null;
    this.lameDuck = null;
    this.emit({ type: 'closed' });
  }

  drop(reason: DropReason, detail: string): void {
    this.emit({ type: 'drop', reason, detail });
  }

  emit(e: SessionEvent): void {
    this.host.onEvent(e);
  }
}
