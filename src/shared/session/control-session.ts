// The OpenVPN 2.6 control session of one peer (tls_multi / tls_session in ssl.c), for both
// roles, as a state machine without sockets: the host hands in datagrams (receivePacket),
// calls tick() at nextTimeout(), and gets datagrams and events through SessionHost.
// node:tls runs on the event loop, so sendPacket/onEvent may also be called between calls,
// when TLS produced output; the host must keep the event loop running.

import { randomBytes } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { maxControlPayload } from '../protocol/fragment-tls';
import { deriveKeyBlockEkm, deriveKeyBlockPrf, tlsSocketExporter } from '../protocol/key-derivation';
import { IV_PROTO_TLS_KEY_EXPORT, decodeKeyMethod2, encodeKeyMethod2, peerInfoProto } from '../protocol/key-method2';
import {
  P_ACK_V1,
  P_CONTROL_HARD_RESET_CLIENT_V2,
  P_CONTROL_HARD_RESET_CLIENT_V3,
  P_CONTROL_HARD_RESET_SERVER_V2,
  P_CONTROL_SOFT_RESET_V1,
  P_CONTROL_V1,
  P_CONTROL_WKC_V1,
  SID_SIZE,
  isHardReset,
  type ReliableOpcode,
} from '../protocol/opcodes';
import {
  CONTROL_HEADER_SIZE,
  CONTROL_SEND_ACK_MAX,
  EARLY_NEG_FLAG_RESEND_WKC,
  RELIABLE_ACK_SIZE,
  buildControlPacket,
  isSessionIdDefined,
  parseControlBody,
  parseControlHeader,
  parseEarlyNegotiation,
} from '../protocol/packet';
import type { ReliableOutgoing } from '../protocol/reliable';
import { ControlWrap } from './control-wrap';
import { KeyState, nextKeyId } from './key-state';
import { verifyPeer } from './peer-verify';
import { preparedTls, type PreparedTls } from './prepared-tls';
import { TlsChannel } from './tls-channel';
import type { ControlSessionConfig, DropReason, KeyDerivationMethod, SessionErrorReason, SessionEvent, SessionHost } from './types';

const DEFAULT_HAND_WINDOW_MS = 60_000;
const DEFAULT_TLS_TIMEOUT_MS = 2_000;
const DEFAULT_RENEG_MS = 3_600_000;
const DEFAULT_TRAN_WINDOW_MS = 3_600_000;

export class ControlSession {
  readonly role: 'client' | 'server';
  /** Our own session id (a 2.6 server's is the cookie). */
  readonly sessionId: Buffer;
  private peerSid: Buffer | null = null;
  private readonly wrap: ControlWrap;
  private readonly maxPayload: number;
  private readonly handWindowMs: number;
  private readonly tlsTimeoutMs: number;
  private readonly renegMs: number;
  private readonly tranWindowMs: number;
  private keyDerivation: KeyDerivationMethod | null;
  private primary: KeyState | null = null;
  private lameDuck: KeyState | null = null;
  /** The server asked for the WKc again (tls-crypt-v2 early negotiation). */
  private needWkc = false;
  private started = false;
  private closed = false;

  constructor(
    private readonly config: ControlSessionConfig,
    private readonly host: SessionHost,
  ) {
    this.role = config.role;
    const t = config.timing ?? {};
    this.handWindowMs = t.handWindowMs ?? DEFAULT_HAND_WINDOW_MS;
    this.tlsTimeoutMs = t.tlsTimeoutMs ?? DEFAULT_TLS_TIMEOUT_MS;
    this.renegMs = t.renegMs ?? DEFAULT_RENEG_MS;
    this.tranWindowMs = t.tranWindowMs ?? DEFAULT_TRAN_WINDOW_MS;
    const kd = config.keyDerivation ?? 'auto';
    this.keyDerivation = kd === 'auto' ? null : kd;
    const st = config.stateless;
    if (st !== undefined && config.role !== 'server') throw new Error('only a server session starts from a stateless reset');
    this.sessionId = Buffer.from(st?.ownSessionId ?? config.sessionId ?? randomSessionId());
    if (this.sessionId.length !== SID_SIZE || !isSessionIdDefined(this.sessionId)) throw new Error('session id must be 8 non-zero bytes');
    this.wrap = new ControlWrap(config.wrap, config.role, {
      ...(st !== undefined ? { sendStart: 1 } : {}),
      ...(st?.tlsCryptV2ClientKey !== undefined ? { clientKey: st.tlsCryptV2ClientKey } : {}),
    });
    // Material that cannot work fails here, at once, not at the first negotiation.
    preparedTls(config.tls);
    this.maxPayload = maxControlPayload({
      wrap: this.wrap.frameMode(),
      ...(config.tlsMtu !== undefined ? { tlsMtu: config.tlsMtu } : {}),
      ...(config.ipv6 !== undefined ? { ipv6: config.ipv6 } : {}),
    });
    if (st !== undefined) this.peerSid = Buffer.from(st.peerSessionId);
  }

  /**
   * Client: sends the hard reset (V3 with tls-crypt-v2). Server from a StatelessResponder:
   * takes the state session_skip_to_pre_start describes (our reset id 0 counts as acked).
   * A stateful server needs no start(); it waits for the client's reset.
   */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    const now = this.host.now();
    if (this.role === 'client') {
      const ks = this.newKeyState(0, now);
      const op = this.config.wrap.mode === 'tls-crypt-v2-client' ? P_CONTROL_HARD_RESET_CLIENT_V3 : P_CONTROL_HARD_RESET_CLIENT_V2;
      ks.send.enqueue(op, Buffer.alloc(0));
      this.primary = ks;
      this.flush();
    } else if (this.config.stateless !== undefined) {
      const ks = this.newKeyState(0, now, 1);
      this.primary = ks;
      this.startTls(ks);
    }
  }

  /** One control datagram from the peer (any control opcode; data packets are the host's). */
  receivePacket(wire: Buffer): void {
    if (this.closed) return this.drop('closed', 'session closed');
    if (!this.started) this.start();
    const now = this.host.now();
    const h = parseControlHeader(wire);
    if (!h.ok) return this.drop('parse', h.reason);
    const op = h.value.opcode;
    const keyId = h.value.keyId;
    const fromServer = op === P_CONTROL_HARD_RESET_SERVER_V2;
    const fromClient = op === P_CONTROL_HARD_RESET_CLIENT_V2 || op === P_CONTROL_HARD_RESET_CLIENT_V3;
    if ((this.role === 'client' && fromClient) || (this.role === 'server' && fromServer)) {
      return this.drop('wrong-direction', `hard reset ${op} in the wrong direction`);
    }
    if (this.role === 'client' && op === P_CONTROL_WKC_V1) return this.drop('wrong-direction', 'P_CONTROL_WKC_V1 at a client');
    const u = this.wrap.unwrap(wire, now);
    if (!u.ok) {
      const r: DropReason =
        u.reason === 'replay'
          ? 'replay'
          : u.reason === 'bad-wkc' || u.reason === 'no-client-key'
            ? 'bad-wkc'
            : u.reason === 'truncated'
              ? 'parse'
              : 'bad-hmac';
      return this.drop(r, u.reason);
    }
    const b = parseControlBody(op, u.packet.subarray(CONTROL_HEADER_SIZE));
    if (!b.ok) return this.drop('parse', b.reason);
    const body = b.value;
    const sid = u.packet.subarray(1, CONTROL_HEADER_SIZE);
    if (!isSessionIdDefined(sid)) return this.drop('parse', 'zero session id');
    if (body.remoteSessionId !== null && !body.remoteSessionId.equals(this.sessionId)) {
      return this.drop('wrong-session', 'ACK for another session id of ours');
    }

    let ks: KeyState | null;
    if (isHardReset(op)) {
      if (keyId !== 0) return this.drop('bad-hard-reset', 'hard reset with key_id != 0');
      if (body.kind !== 'message' || body.messageId !== 0) return this.drop('bad-hard-reset', 'hard reset with message id != 0');
      if (this.peerSid === null) this.peerSid = Buffer.from(sid);
      else if (!sid.equals(this.peerSid)) return this.drop('wrong-session', 'hard reset from another session (new session)');
      if (this.role === 'server' && this.primary === null) {
        // Stateful path (pre-2.6 tls-crypt-v2 client, TCP, or a host without a StatelessResponder).
        const nks = this.newKeyState(0, now);
        nks.send.enqueue(P_CONTROL_HARD_RESET_SERVER_V2, Buffer.alloc(0));
        this.primary = nks;
      }
      ks = this.primary !== null && this.primary.keyId === 0 ? this.primary : null;
      if (ks === null) return this.drop('wrong-key-id', 'hard reset after the first key');
    } else {
      if (this.peerSid === null || !sid.equals(this.peerSid)) return this.drop('wrong-session', 'unknown peer session id');
      const p = this.primary;
      if (p === null) return this.drop('wrong-key-id', 'no key state yet');
      if (op === P_CONTROL_SOFT_RESET_V1 && keyId !== p.keyId) {
        if (p.state === 'keys' && keyId === nextKeyId(p.keyId)) {
          this.startRenegotiation('peer', now);
          ks = this.primary;
        } else {
          return this.drop('wrong-key-id', `soft reset to key_id ${keyId} while primary is ${p.keyId} (${p.state})`);
        }
      } else if (keyId === p.keyId) {
        ks = p;
      } else if (this.lameDuck !== null && keyId === this.lameDuck.keyId) {
        ks = this.lameDuck;
      } else {
        return this.drop('wrong-key-id', `local/remote key IDs out of sync (${keyId})`);
      }
    }
    if (ks === null || ks.state === 'failed') return this.drop('wrong-key-id', 'key state failed');

    if (body.acks.length > 0) ks.send.onAcks(body.acks);
    if (body.kind === 'message') {
      const v = ks.recv.receive(body.messageId, op as ReliableOpcode, body.payload);
      if (v === 'out-of-window' || v === 'full') this.drop('out-of-window', `message id ${body.messageId} ${v}`);
    }
    this.advance(ks);
    this.flush();
    if (body.acks.length > 0) this.announceActive(ks);
  }

  /** Retransmissions, hand-window timeouts, lame duck expiry, reneg-sec. Call at nextTimeout(). */
  tick(): void {
    if (this.closed || !this.started) return;
    const now = this.host.now();
    const p = this.primary;
    if (p !== null && p.state !== 'keys' && now >= p.handDeadline) {
      const fallback = this.lameDuck;
      this.failKey(
        p,
        'handshake-timeout',
        `TLS key negotiation failed to occur within ${Math.round(this.handWindowMs / 1000)} seconds`,
        fallback === null,
      );
      if (fallback !== null && !this.closed) {
        // OpenVPN keeps using the lame duck when a renegotiation fails.
        this.primary = fallback;
        this.lameDuck = null;
      }
    }
    const ld = this.lameDuck;
    if (ld !== null && ld.mustDie !== null && now >= ld.mustDie) this.retire(ld);
    const q = this.primary;
    if (q !== null && q.state === 'keys' && q.renegAfterMs > 0 && now >= q.established + q.renegAfterMs) {
      this.startRenegotiation('local', now);
    }
    this.flush();
  }

  /**
   * Absolute time (host clock, ms) at which tick() has work; null when nothing is scheduled.
   * Pass the `now` the caller compares against: overdue work is reported as that `now`.
   */
  nextTimeout(now: number = this.host.now()): number | null {
    if (this.closed || !this.started) return null;
    let t = Infinity;
    for (const ks of [this.primary, this.lameDuck]) {
      if (ks === null) continue;
      const d = ks.send.timeUntilDue(now);
      if (d !== null) t = Math.min(t, now + d);
      if (ks.recv.hasPendingAcks()) t = Math.min(t, now);
      if (ks.state !== 'keys' && ks.state !== 'failed') t = Math.min(t, ks.handDeadline);
      if (ks.mustDie !== null) t = Math.min(t, ks.mustDie);
      if (ks === this.primary && ks.state === 'keys' && ks.renegAfterMs > 0) t = Math.min(t, ks.established + ks.renegAfterMs);
    }
    return t === Infinity ? null : t;
  }

  /**
   * A text message over TLS (PUSH_REQUEST, PUSH_REPLY, AUTH_FAILED, ...): written with its NUL
   * as one TLS record on the newest active key, or queued until a key is active.
   */
  sendControlMessage(text: string): void {
    if (this.closed) return;
    const p = this.primary;
    if (p === null) return;
    const target =
      p.state === 'active' || p.state === 'keys' ? p : this.lameDuck !== null && this.lameDuck.state === 'keys' ? this.lameDuck : p;
    if (target.state === 'active' || target.state === 'keys') this.writeMessage(target, text);
    else target.pendingMessages.push(text);
  }

  /**
   * Client with keyDerivation 'auto': the pushed choice (key-derivation tls-ekm /
   * protocol-flags tls-ekm, else prf). Keys of keys already active are announced now.
   */
  setKeyDerivation(method: KeyDerivationMethod): void {
    if (this.keyDerivation !== null) return; // sticky, as crypto_flags
    this.keyDerivation = method;
    for (const ks of [this.lameDuck, this.primary]) if (ks !== null && ks.state === 'active') this.generateKeys(ks);
  }

  /** Starts a soft reset now (false if the current key has no keys yet). */
  renegotiate(): boolean {
    if (this.closed || this.primary === null || this.primary.state !== 'keys') return false;
    this.startRenegotiation('local', this.host.now());
    this.flush();
    return true;
  }

  /** Key id of the newest key with data keys, or null. */
  get activeKeyId(): number | null {
    if (this.primary !== null && this.primary.state === 'keys') return this.primary.keyId;
    if (this.lameDuck !== null && this.lameDuck.state === 'keys') return this.lameDuck.keyId;
    return null;
  }

  /** The peer's session id once known. */
  get peerSessionId(): Buffer | null {
    return this.peerSid;
  }

  get isClosed(): boolean {
    return this.closed;
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

  // ---------------------------------------------------------------------------------------------

  private newKeyState(keyId: number, now: number, firstPacketId = 0): KeyState {
    return new KeyState(keyId, this.role, now, this.handWindowMs, this.tlsTimeoutMs, firstPacketId, !this.config.stream);
  }

  private startRenegotiation(by: 'local' | 'peer', now: number): void {
    const old = this.primary;
    if (old === null) return;
    if (this.lameDuck !== null) this.retire(this.lameDuck);
    old.mustDie = now + this.tranWindowMs;
    this.lameDuck = old;
    const ks = this.newKeyState(nextKeyId(old.keyId), now);
    ks.send.enqueue(P_CONTROL_SOFT_RESET_V1, Buffer.alloc(0));
    this.primary = ks;
    this.emit({ type: 'renegotiating', keyId: ks.keyId, initiatedBy: by });
  }

  private retire(ks: KeyState): void {
    ks.dispose();
    if (this.lameDuck === ks) this.lameDuck = null;
    this.emit({ type: 'key-retired', keyId: ks.keyId });
  }

  // Moves a key state on after packets arrived: our id 0 acked -> TLS; in-order payloads -> TLS.
  private advance(ks: KeyState): void {
    // Drain first: the server's reset may carry RESEND_WKC, which must be known before TLS
    // produces its first bytes (node may emit the ClientHello synchronously).
    for (const m of ks.recv.drain()) {
      if (m.packetId === 0 && (isHardReset(m.opcode) || m.opcode === P_CONTROL_SOFT_RESET_V1)) {
        if (m.opcode === P_CONTROL_HARD_RESET_SERVER_V2 && m.payload.length > 0) {
          const tlv = parseEarlyNegotiation(m.payload);
          if (tlv.ok && (tlv.value.flags & EARLY_NEG_FLAG_RESEND_WKC) !== 0 && this.config.wrap.mode === 'tls-crypt-v2-client') {
            this.needWkc = true;
          }
        }
        continue;
      }
      if (m.payload.length === 0) continue;
      if (ks.tls !== null) ks.tls.feed(m.payload);
      else ks.early.push(Buffer.from(m.payload));
    }
    if (ks.state === 'pre-start' && ks.send.isEmpty() && ks.send.nextPacketId > 0) this.startTls(ks);
  }

  private startTls(ks: KeyState): void {
    if (ks.state !== 'pre-start') return;
    ks.state = 'start';
    const prepared = preparedTls(this.config.tls);
    ks.tls = new TlsChannel(this.role, prepared.context, {
      onCiphertext: (d) => {
        if (this.closed || ks.state === 'failed') return;
        ks.splitter.push(d);
        this.flush();
      },
      onSecure: (socket) => this.onTlsSecure(ks, socket, prepared),
      onPlaintext: (d) => {
        ks.plain = ks.plain.length === 0 ? Buffer.from(d) : Buffer.concat([ks.plain, d]);
        if (ks.verified) this.readPlaintext(ks);
      },
      onError: (e) => {
        const code = (e as NodeJS.ErrnoException).code ?? '';
        const cert = /CERT|VERIFY|ISSUER|SIGNATURE|UNABLE_TO_GET/.test(code);
        this.failKey(ks, cert ? 'cert-rejected' : 'tls-error', `${code} ${e.message}`.trim(), this.isFirstKey(ks));
      },
    });
    for (const d of ks.early.splice(0)) ks.tls.feed(d);
  }

  private onTlsSecure(ks: KeyState, socket: TLSSocket, prepared: PreparedTls): void {
    if (this.closed || ks.state === 'failed') return;
    const r = verifyPeer(socket, prepared.caCerts, {
      ...(prepared.crlDir !== undefined ? { crlDir: prepared.crlDir } : {}),
      ...(prepared.crlUnavailable !== undefined ? { crlUnavailable: prepared.crlUnavailable } : {}),
      ...(this.config.remoteCertTls !== undefined ? { remoteCertTls: this.config.remoteCertTls } : {}),
      ...(this.config.remoteCertEku !== undefined ? { remoteCertEku: this.config.remoteCertEku } : {}),
      ...(this.config.verifyX509Name !== undefined ? { verifyX509Name: this.config.verifyX509Name } : {}),
    });
    if (!r.ok) {
      this.failKey(ks, 'cert-rejected', r.reason, this.isFirstKey(ks));
      return;
    }
    ks.verified = true;
    const cipher = socket.getCipher();
    this.emit({
      type: 'tls-verified',
      keyId: ks.keyId,
      commonName: r.commonName,
      subject: r.subject,
      protocol: socket.getProtocol() ?? '',
      cipher: cipher.standardName ?? cipher.name,
    });
    if (this.closed || isDead(ks)) return;
    // Client speaks first (key_method_2_write at S_START), only now that the server is verified.
    if (this.role === 'client') this.writeKeyMethod2(ks);
    this.readPlaintext(ks);
  }

  private writeKeyMethod2(ks: KeyState): void {
    const c = this.config.keyMethod2;
    const blob = encodeKeyMethod2(
      {
        keySource: ks.ownKeySource,
        options: c.options,
        username: this.role === 'client' ? (c.username ?? null) : null,
        password: this.role === 'client' ? (c.password ?? null) : null,
        peerInfo: c.peerInfo,
      },
      this.role === 'client',
    );
    ks.tls?.write(blob, () => {
      ks.km2Written = true;
      this.markKm2End(ks);
      this.announceActive(ks);
    });
  }

  // Once the key method 2 bytes have all left the splitter for messages, the peer holds the
  // keys when every message before the next packet-id is acknowledged.
  private markKm2End(ks: KeyState): void {
    if (ks.km2Written && ks.km2EndPacketId === null && ks.splitter.pending === 0) ks.km2EndPacketId = ks.send.nextPacketId;
  }

  private announceActive(ks: KeyState): void {
    if (ks.activeAnnounced || ks.state !== 'keys' || this.closed) return;
    if (this.role === 'server' && (ks.km2EndPacketId === null || !ks.send.ackedBefore(ks.km2EndPacketId))) return;
    ks.activeAnnounced = true;
    this.emit({ type: 'key-active', keyId: ks.keyId });
  }

  private readPlaintext(ks: KeyState): void {
    if (ks.peerKm2 === null) {
      if (ks.plain.length === 0) return;
      const r = decodeKeyMethod2(ks.plain, this.role === 'server');
      if (!r.ok) {
        if (r.reason !== 'truncated') this.failKey(ks, 'bad-key-method-2', r.reason, this.isFirstKey(ks));
        return;
      }
      ks.peerKm2 = r.message;
      ks.plain = Buffer.from(ks.plain.subarray(r.consumed));
      if (this.role === 'server') {
        this.writeKeyMethod2(ks);
        if (this.keyDerivation === null) {
          this.keyDerivation = (peerInfoProto(r.message.peerInfo) & IV_PROTO_TLS_KEY_EXPORT) !== 0 ? 'tls-ekm' : 'prf';
        }
      }
      ks.state = 'active';
      for (const t of ks.pendingMessages.splice(0)) this.writeMessage(ks, t);
      this.emit({
        type: 'key-method-2',
        keyId: ks.keyId,
        options: r.message.options,
        peerInfo: r.message.peerInfo,
        username: r.message.username,
        password: r.message.password,
        userPassTooLong: r.userPassTooLong,
      });
      if (this.closed || ks.state !== 'active') return;
      if (this.keyDerivation !== null) this.generateKeys(ks);
    }
    // NUL-terminated text messages (forward.c check_incoming_control_channel).
    for (;;) {
      const nul = ks.plain.indexOf(0);
      if (nul < 0) break;
      const text = ks.plain.toString('utf8', 0, nul).replace(/[\r\n]+$/, '');
      ks.plain = ks.plain.subarray(nul + 1);
      if (text.length > 0) this.emit({ type: 'control-message', keyId: ks.keyId, text });
      if (this.closed || isDead(ks)) return;
    }
    if (ks.plain.length === 0) ks.plain = Buffer.alloc(0);
  }

  private writeMessage(ks: KeyState, text: string): void {
    ks.tls?.write(Buffer.from(text + '\0', 'utf8'));
  }

  private generateKeys(ks: KeyState): void {
    const method = this.keyDerivation;
    const socket = ks.tls?.socket;
    const peer = ks.peerKm2;
    if (method === null || socket === undefined || peer === null || this.peerSid === null) return;
    let block: Buffer;
    try {
      if (method === 'tls-ekm') {
        block = deriveKeyBlockEkm(tlsSocketExporter(socket));
      } else {
        const client = this.role === 'client' ? ks.ownKeySource : peer.keySource;
        const server = this.role === 'client' ? peer.keySource : ks.ownKeySource;
        block = deriveKeyBlockPrf({
          client,
          server,
          clientSid: this.role === 'client' ? this.sessionId : this.peerSid,
          serverSid: this.role === 'client' ? this.peerSid : this.sessionId,
        });
      }
    } catch (e) {
      this.failKey(ks, 'key-state-error', (e as Error).message, this.isFirstKey(ks));
      return;
    }
    const now = this.host.now();
    ks.state = 'keys';
    ks.established = now;
    // A 2.6 server spreads renegotiations over [0.9, 1] x reneg-sec; a client uses it exactly.
    ks.renegAfterMs = this.role === 'server' ? Math.round(this.renegMs * (0.9 + Math.random() * 0.1)) : this.renegMs;
    this.emit({ type: 'keys', keyId: ks.keyId, method, keyBlock: block });
    this.announceActive(ks);
  }

  private isFirstKey(ks: KeyState): boolean {
    return ks === this.primary && this.lameDuck === null && ks.keyId === 0;
  }

  private failKey(ks: KeyState, reason: SessionErrorReason, detail: string, fatal: boolean): void {
    if (ks.state === 'failed') return;
    ks.state = 'failed';
    ks.dispose();
    this.emit({ type: 'error', reason, fatal, keyId: ks.keyId, detail });
  }

  // Sends what is due: TLS bytes as new messages, retransmissions, then a bare ACK if needed.
  private flush(): void {
    if (this.closed) return;
    const now = this.host.now();
    for (const ks of [this.lameDuck, this.primary]) {
      if (ks === null || ks.state === 'failed') continue;
      while (ks.splitter.pending > 0 && ks.send.available() > 0) {
        const wkc = this.needWkc && ks.keyId === 0 && ks.send.nextPacketId === 1;
        const piece = ks.splitter.take(Math.max(16, this.maxPayload - (wkc ? this.wrap.wkcLength : 0)));
        if (piece === null) break;
        ks.send.enqueue(wkc ? P_CONTROL_WKC_V1 : P_CONTROL_V1, piece);
      }
      this.markKm2End(ks);
      // The server asked for the WKc: the packet with message id 1 must be a P_CONTROL_WKC_V1,
      // empty when no TLS bytes are ready (ssl.c control_packet_needs_wkc).
      if (this.needWkc && ks.keyId === 0 && ks.send.nextPacketId === 1 && ks.recv.hasPendingAcks() && ks.send.available() > 0) {
        ks.send.enqueue(P_CONTROL_WKC_V1, Buffer.alloc(0));
      }
      for (const m of ks.send.due(now)) {
        if (!this.sendMessage(ks, m, now)) return;
      }
      if (ks.recv.hasPendingAcks() && this.peerSid !== null) {
        const acks = ks.recv.takeAcks(RELIABLE_ACK_SIZE);
        const p = buildControlPacket({
          kind: 'ack',
          opcode: P_ACK_V1,
          keyId: ks.keyId,
          sessionId: this.sessionId,
          acks,
          remoteSessionId: this.peerSid,
        });
        if (!this.transmit(p, now)) return;
      }
    }
  }

  private sendMessage(ks: KeyState, m: ReliableOutgoing, now: number): boolean {
    const acks = this.peerSid !== null ? ks.recv.takeAcks(CONTROL_SEND_ACK_MAX) : [];
    const p = buildControlPacket({
      kind: 'message',
      opcode: m.opcode,
      keyId: ks.keyId,
      sessionId: this.sessionId,
      acks,
      remoteSessionId: acks.length > 0 ? this.peerSid : null,
      messageId: m.packetId,
      payload: m.payload,
    });
    return this.transmit(p, now);
  }

  private transmit(plain: Buffer, now: number): boolean {
    const wire = this.wrap.wrap(plain, now);
    if (wire === null) {
      const p = this.primary;
      this.emit({
        type: 'error',
        reason: 'replay-exhausted',
        fatal: true,
        keyId: p?.keyId ?? 0,
        detail: 'control channel replay counter exhausted',
      });
      this.close();
      return false;
    }
    this.host.sendPacket(wire);
    return true;
  }

  private drop(reason: DropReason, detail: string): void {
    this.emit({ type: 'drop', reason, detail });
  }

  private emit(e: SessionEvent): void {
    this.host.onEvent(e);
  }
}

// After a callback the state may have changed under TypeScript's narrowing.
function isDead(ks: KeyState): boolean {
  return ks.state === 'failed';
}

function randomSessionId(): Buffer {
  for (;;) {
    const b = randomBytes(SID_SIZE);
    if (isSessionIdDefined(b)) return b;
  }
}
