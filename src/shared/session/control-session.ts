// The OpenVPN 2.6 control session of one peer (tls_multi / tls_session in ssl.c), for both
// roles, as a state machine without sockets: the host hands in datagrams (receivePacket),
// calls tick() at nextTimeout(), and gets datagrams and events through SessionHost.
// node:tls runs on the event loop, so sendPacket/onEvent may also be called between calls,
// when TLS produced output; the host must keep the event loop running.
// The parts: session-core.ts (shared state), control-receive.ts, control-send.ts,
// key-lifecycle.ts (soft reset, lame duck, timers), key-negotiation.ts (TLS, key method 2).

import { randomBytes } from 'node:crypto';
import { maxControlPayload } from '../protocol/fragment-tls';
import { P_CONTROL_HARD_RESET_CLIENT_V2, P_CONTROL_HARD_RESET_CLIENT_V3, SID_SIZE, type ReliableOpcode } from '../protocol/opcodes';
import { isSessionIdDefined } from '../protocol/packet';
import { deliverMessages, routeControlPacket } from './control-receive';
import { flushControl } from './control-send';
import { ControlWrap } from './control-wrap';
import { expireKeys, nextKeyTimeout, startRenegotiation } from './key-lifecycle';
import { KeyNegotiation } from './key-negotiation';
import { preparedTls } from './prepared-tls';
import { SessionCore } from './session-core';
import type { ControlSessionConfig, KeyDerivationMethod, SessionHost } from './types';

export class ControlSession {
  readonly role: 'client' | 'server';
  /** Our own session id (a 2.6 server's is the cookie). */
  readonly sessionId: Buffer;
  private readonly core: SessionCore;
  private readonly negotiation: KeyNegotiation;

  constructor(
    private readonly config: ControlSessionConfig,
    private readonly host: SessionHost,
  ) {
    this.role = config.role;
    const st = config.stateless;
    if (st !== undefined && config.role !== 'server') throw new Error('only a server session starts from a stateless reset');
    this.sessionId = Buffer.from(st?.ownSessionId ?? config.sessionId ?? randomSessionId());
    if (this.sessionId.length !== SID_SIZE || !isSessionIdDefined(this.sessionId)) throw new Error('session id must be 8 non-zero bytes');
    const wrap = new ControlWrap(config.wrap, config.role, {
      ...(st !== undefined ? { sendStart: 1 } : {}),
      ...(st?.tlsCryptV2ClientKey !== undefined ? { clientKey: st.tlsCryptV2ClientKey } : {}),
    });
    // Material that cannot work fails here, at once, not at the first negotiation.
    preparedTls(config.tls);
    const maxPayload = maxControlPayload({
      wrap: wrap.frameMode(),
      ...(config.tlsMtu !== undefined ? { tlsMtu: config.tlsMtu } : {}),
      ...(config.ipv6 !== undefined ? { ipv6: config.ipv6 } : {}),
    });
    this.core = new SessionCore(config, host, this.sessionId, wrap, maxPayload);
    this.negotiation = new KeyNegotiation(this.core, () => this.flush());
    if (st !== undefined) this.core.peerSid = Buffer.from(st.peerSessionId);
  }

  /**
   * Client: sends the hard reset (V3 with tls-crypt-v2). Server from a StatelessResponder:
   * takes the state session_skip_to_pre_start describes (our reset id 0 counts as acked).
   * A stateful server needs no start(); it waits for the client's reset.
   */
  start(): void {
    const core = this.core;
    if (core.started || core.closed) return;
    core.started = true;
    const now = this.host.now();
    if (this.role === 'client') {
      const ks = core.newKeyState(0, now);
      const op = this.config.wrap.mode === 'tls-crypt-v2-client' ? P_CONTROL_HARD_RESET_CLIENT_V3 : P_CONTROL_HARD_RESET_CLIENT_V2;
      ks.send.enqueue(op, Buffer.alloc(0));
      core.primary = ks;
      this.flush();
    } else if (this.config.stateless !== undefined) {
      const ks = core.newKeyState(0, now, 1);
      core.primary = ks;
      this.negotiation.startTls(ks);
    }
  }

  /** One control datagram from the peer (any control opcode; data packets are the host's). */
  receivePacket(wire: Buffer): void {
    if (this.core.closed) return this.core.drop('closed', 'session closed');
    if (!this.core.started) this.start();
    const now = this.host.now();
    const routed = routeControlPacket(this.core, wire, now);
    if (routed === null) return;
    const { ks, opcode, body } = routed;
    if (body.acks.length > 0) ks.send.onAcks(body.acks);
    if (body.kind === 'message') {
      const v = ks.recv.receive(body.messageId, opcode as ReliableOpcode, body.payload);
      if (v === 'out-of-window' || v === 'full') this.core.drop('out-of-window', `message id ${body.messageId} ${v}`);
    }
    deliverMessages(this.core, ks, (k) => this.negotiation.startTls(k));
    this.flush();
    if (body.acks.length > 0) this.negotiation.announceActive(ks);
  }

  /** Retransmissions, hand-window timeouts, lame duck expiry, reneg-sec. Call at nextTimeout(). */
  tick(): void {
    if (this.core.closed || !this.core.started) return;
    expireKeys(this.core, this.host.now());
    this.flush();
  }

  /**
   * Absolute time (host clock, ms) at which tick() has work; null when nothing is scheduled.
   * Pass the `now` the caller compares against: overdue work is reported as that `now`.
   */
  nextTimeout(now: number = this.host.now()): number | null {
    if (this.core.closed || !this.core.started) return null;
    return nextKeyTimeout(this.core, now);
  }

  /**
   * A text message over TLS (PUSH_REQUEST, PUSH_REPLY, AUTH_FAILED, ...): written with its NUL
   * as one TLS record on the newest active key, or queued until a key is active.
   */
  sendControlMessage(text: string): void {
    if (this.core.closed) return;
    const p = this.core.primary;
    if (p === null) return;
    const ld = this.core.lameDuck;
    const target = p.state === 'active' || p.state === 'keys' ? p : ld !== null && ld.state === 'keys' ? ld : p;
    if (target.state === 'active' || target.state === 'keys') this.negotiation.writeMessage(target, text);
    else target.pendingMessages.push(text);
  }

  /**
   * Client with keyDerivation 'auto': the pushed choice (key-derivation tls-ekm /
   * protocol-flags tls-ekm, else prf). Keys of keys already active are announced now.
   */
  setKeyDerivation(method: KeyDerivationMethod): void {
    const core = this.core;
    if (core.keyDerivation !== null) return; // sticky, as crypto_flags
    core.keyDerivation = method;
    for (const ks of [core.lameDuck, core.primary]) if (ks !== null && ks.state === 'active') this.negotiation.generateKeys(ks);
  }

  /** Starts a soft reset now (false if the current key has no keys yet). */
  renegotiate(): boolean {
    const core = this.core;
    if (core.closed || core.primary === null || core.primary.state !== 'keys') return false;
    startRenegotiation(core, 'local', this.host.now());
    this.flush();
    return true;
  }

  /** Key id of the newest key with data keys, or null. */
  get activeKeyId(): number | null {
    const { primary, lameDuck } = this.core;
    if (primary !== null && primary.state === 'keys') return primary.keyId;
    if (lameDuck !== null && lameDuck.state === 'keys') return lameDuck.keyId;
    return null;
  }

  /** The peer's session id once known. */
  get peerSessionId(): Buffer | null {
    return this.core.peerSid;
  }

  /** TLS sessions held: the primary key's, and the lame duck's until its successor is active. */
  get tlsSessions(): number {
    return (this.core.primary?.tls != null ? 1 : 0) + (this.core.lameDuck?.tls != null ? 1 : 0);
  }

  get isClosed(): boolean {
    return this.core.closed;
  }

  /** Stops TLS, forgets keys; emits 'closed' once. */
  close(): void {
    this.core.close();
  }

  private flush(): void {
    flushControl(this.core);
  }
}

function randomSessionId(): Buffer {
  for (;;) {
    const b = randomBytes(SID_SIZE);
    if (isSessionIdDefined(b)) return b;
  }
}
