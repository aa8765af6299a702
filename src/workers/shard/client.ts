// One client of a shard (OpenVPN's multi_instance): its control session, its data-channel keys
// by key_id, its keepalive and inactivity timers and the addresses the main thread assigned.
// The shard owns the sockets and calls in here; nothing here does I/O of its own.
import { COUNTER, observeHandshake } from '../../shared/counters';
import type { DataCipherName } from '../../shared/protocol/data-format';
import { parseControlMessage } from '../../shared/protocol/control-message';
import type { DataChannelCounters } from '../../shared/protocol/data-channel';
import { InactivityTimer } from '../../shared/protocol/inactivity';
import { IV_PROTO_AUTH_PENDING_KW, IV_PROTO_DATA_V2, peerInfoProto } from '../../shared/protocol/key-method2';
import { maxMss } from '../../shared/protocol/mss';
import { KeepaliveTimer } from '../../shared/protocol/ping';
import { sessionDeadline } from '../../shared/protocol/session-timeout';
import { ControlSession } from '../../shared/session/control-session';
import type { SessionErrorReason, SessionEvent, StatelessStart } from '../../shared/session/types';
import type { ClientAssignment, ClientStats, ShardConfig, ShardToMain } from '../../shared/shard-protocol';
import { ClientAuthToken } from './client-auth-token';
import { ClientKeys } from './client-keys';
import { planPush, sessionConfig } from './client-setup';
import { ClientTraffic } from './client-traffic';
import { SourceCheck } from './source-check';
import { remapName, UNDEF_COMMON_NAME } from '../../shared/session/peer-verify';
import { TICK_MS } from './sizes';

export type ShardClientState = 'handshake' | 'authorizing' | 'connected' | 'closing' | 'closed';

/** What a client needs from its shard. */
export interface ShardClientHost {
  readonly config: ShardConfig;
  readonly counters: Float64Array;
  readonly dataCounters: DataChannelCounters;
  now(): number;
  /** A control datagram to the client's current address. */
  sendWire(client: ShardClient, wire: Buffer): void;
  /** A keepalive ping on the data channel. */
  sendPing(client: ShardClient): void;
  toMain(message: ShardToMain): void;
  /** The client is gone: forget it. */
  closed(client: ShardClient, reason: string): void;
  /** Look at the client on every tick again: new, or its timers may have come earlier (tick-wheel.ts). */
  wake(client: ShardClient): void;
  /** `category`: a kind of repetitive message, for --mute. */
  log(level: number, message: string, category?: string): void;
}

/** The client's real (outer) address, as the kernel reported its datagrams' source. */
export interface RealAddress {
  family: 4 | 6;
  address: string;
  port: number;
}

const HANDSHAKE_FAILURE_COUNTER: Partial<Record<SessionErrorReason, number>> = {
  'tls-error': COUNTER.handshakeFailTls,
  'cert-rejected': COUNTER.handshakeFailCert,
  'handshake-timeout': COUNTER.handshakeFailTimeout,
  'bad-key-method-2': COUNTER.handshakeFailTls,
};

/** Delay between sending AUTH_FAILED / RESTART and closing, so the message gets out. */
const CLOSE_DELAY_MS = 1000;
/**
 * A connected client is looked at at least this often (see quietUntil). Every timer it has is
 * due exactly (nextWork); this bound is for the send packet-id, which moves with traffic: from
 * the renegotiation trigger (0xFF000000) to the wrap are 16.7 M packets, 16 s at a million
 * packets a second, so looking every 4 s leaves the new key over 10 s to arrive.
 */
const MAX_QUIET_MS = 4000;

export class ShardClient {
  state: ShardClientState = 'handshake';
  readonly session: ControlSession;
  readonly traffic = new ClientTraffic();
  /** Data keys by key_id; the newest active one sends. */
  readonly keys = new ClientKeys(this.traffic);
  readonly keepalive: KeepaliveTimer;
  /** --inactive on a server: per client instance, as OpenVPN runs it. */
  private readonly inactivity: InactivityTimer;
  private activityBytes = 0;
  /** --session-timeout: when this instance is dropped (host clock, ms; Infinity: never). */
  private sessionEnds: number;
  /** Virtual address and iroutes, for the source-address check. */
  readonly sources = new SourceCheck();
  commonName: string | null = null;
  /** The certificate's serial number (hex), for a reload's CRL check in the main thread. */
  private certSerial: string | null = null;
  username: string | null = null;
  peerInfo: string | null = null;
  private occOptions = '';
  cipher: DataCipherName | null = null;
  private pushMessages: string[] | null = null;
  private pushRequested = false;
  /** mssfix for this client's packets both ways (0: off), set with its data keys. */
  maxMss = 0;
  /** The real address changed (float) since the last stats report. */
  floated = false;
  readonly connectedSince = Math.floor(Date.now() / 1000);
  lastRef = Math.floor(Date.now() / 1000);
  closeAt = 0;
  private closeReason = '';
  /** client-pending-auth: the client may wait for its verdict until then (instead of hand-window). */
  private authPendingUntil: number | null = null;
  /** --auth-gen-token: this client's token session (null without it, or without a login). */
  private authToken: ClientAuthToken | null = null;
  private readonly created: number;
  /**
   * A connected client's tick() has nothing to do before this time (host clock, ms); 0: tick.
   * The shard's 200 ms tick used to walk every client, about a third of an idle shard's CPU
   * with a few thousand clients held; now a connected client is looked at when its next
   * timer is due, and at least every MAX_QUIET_MS (a key close to its packet-id wrap must still be
   * renegotiated). Anything that can bring a timer earlier resets it: a control packet in or
   * out, a session event; the shard's tick wheel then looks at it on every tick again.
   */
  private quiet = 0;
  /** The tick wheel's slot for this client (tick-wheel.ts). */
  wheelSlot = -1;

  get quietUntil(): number {
    return this.quiet;
  }
  get closed(): boolean {
    return this.state === 'closed';
  }
  /** Its timers may have come earlier: look at it on every tick until tick() says otherwise. */
  private wake(): void {
    if (this.quiet === 0) return;
    this.quiet = 0;
    this.host.wake(this);
  }

  constructor(
    readonly peerId: number,
    /** Address entry bytes (native ADDRESS_SIZE layout) and its Map key. */
    public addressBytes: Uint8Array,
    public addressKey: string,
    readonly realAddress: RealAddress,
    private readonly host: ShardClientHost,
    stateless: StatelessStart | null,
  ) {
    const config = host.config;
    this.created = host.now();
    this.inactivity = new InactivityTimer(config.inactive, this.created);
    this.sessionEnds = sessionDeadline(config.sessionTimeoutS, this.created);
    // The wheel looks at a client up to a tick late: its ping goes out a tick early instead.
    this.keepalive = new KeepaliveTimer({ pingS: config.pingS, pingRestartS: config.pingRestartS, pingEarlyMs: TICK_MS }, this.created);
    this.session = new ControlSession(sessionConfig(config, realAddress.family, stateless), {
      sendPacket: (wire) => {
        this.wake();
        this.keepalive.sent(host.now());
        this.traffic.controlBytesOut += wire.length;
        host.sendWire(this, wire);
      },
      onEvent: (event) => this.onSessionEvent(event),
      now: () => host.now(),
    });
    host.counters[COUNTER.handshakesStarted]++;
    // Last: a client whose construction failed never reaches the tick wheel.
    host.wake(this);
  }

  get connected(): boolean {
    return this.state === 'connected';
  }

  /** Traffic over all keys, link bytes as OpenVPN counts them. */
  stats(): ClientStats {
    const { bytesReceived, bytesSent } = this.traffic.report(this.keys.byId);
    return {
      peerId: this.peerId,
      commonName: this.commonName,
      username: this.username,
      realAddress: this.realAddress,
      bytesReceived,
      bytesSent,
      connectedSince: this.connectedSince,
      lastRef: this.lastRef,
      cipher: this.cipher ?? '',
    };
  }

  /**
   * The per-second report: peer-id, bytes received, bytes sent and last ref at rows[at..], or
   * false (nothing written) when the counters did not move since the last report.
   */
  writeStatsRow(rows: Float64Array, at: number): boolean {
    const moved = this.traffic.reportIfMoved(this.keys.byId);
    if (moved === null) return false;
    rows[at] = this.peerId;
    rows[at + 1] = moved.bytesReceived;
    rows[at + 2] = moved.bytesSent;
    rows[at + 3] = this.lastRef;
    return true;
  }

  /**
   * management client-pending-auth (push.c send_auth_pending_messages): tells a client still
   * waiting for its verdict to wait `timeoutS` more (AUTH_PENDING, with the keyword form when
   * its IV_PROTO offers it) and what to show (INFO_PRE, e.g. WEB_AUTH::URL for single sign-on).
   */
  pendingAuth(extra: string, timeoutS: number): void {
    if (this.state !== 'authorizing') return;
    const keyword = (peerInfoProto(this.peerInfo) & IV_PROTO_AUTH_PENDING_KW) !== 0;
    this.session.sendControlMessage(keyword ? `AUTH_PENDING,timeout ${timeoutS}` : 'AUTH_PENDING');
    this.session.sendControlMessage(`INFO_PRE,${extra}`);
    this.authPendingUntil = this.host.now() + timeoutS * 1000;
  }

  /** A control packet of this client's session (see quietUntil). */
  receiveControl(wire: Buffer): void {
    this.wake();
    this.session.receivePacket(wire);
  }

  private onSessionEvent(event: SessionEvent): void {
    this.wake();
    const host = this.host;
    switch (event.type) {
      case 'tls-verified': {
        // A client without a certificate (verify-client-cert none/optional) has no serial for a CRL to name.
        const serial = event.serialNumber === '' ? null : event.serialNumber;
        if (event.keyId !== 0 && (event.commonName !== this.commonName || serial !== this.certSerial)) {
          // A renegotiation keeps the identity the client was admitted with (OpenVPN's
          // tls_lock_common_name and tls_lock_cert_hash_set): no other certificate, and none
          // after one or one after none (verify-client-cert optional).
          host.log(
            1,
            `${this.describe()} TLS Auth Error: TLS object CN attempted to change from '${this.commonName ?? ''}' (serial ${this.certSerial ?? 'none'}) to '${event.commonName}' (serial ${serial ?? 'none'}) -- tunnel disabled`,
          );
          this.close('identity changed on renegotiation');
          break;
        }
        this.commonName = event.commonName;
        this.certSerial = serial;
        break;
      }
      case 'key-method-2':
        if (event.keyId === 0) {
          // ssl.c key_method_2_read: no username or no password where logins are checked is
          // refused, or with auth-user-pass-optional both are cleared for the checker to decide.
          // An empty string is sent (a lone NUL), not missing: OpenVPN passes it on.
          // ssl_verify.c verify_user_pass: control characters in both become '_' first.
          let username = event.username === null ? null : remapName(event.username);
          let password = event.password === null ? null : remapName(event.password);
          if (host.config.userPassChecked && !event.userPassTooLong && (username === null || password === null)) {
            if (!host.config.authUserPassOptional) {
              host.log(1, `${this.describe()} TLS Error: Auth Username/Password was not provided by peer`);
              this.reject('');
              break;
            }
            username = '';
            password = '';
          }
          const tokens = host.config.authGenToken;
          let authToken: Extract<ShardToMain, { type: 'client-auth' }>['authToken'];
          if (tokens !== null && host.config.userPassChecked) {
            this.authToken = new ClientAuthToken(() => host.config.authGenToken);
            const login = this.authToken.presented(username ?? '', password ?? '');
            if (login.problem !== null) host.log(1, `${this.describe()} --auth-gen-token: ${login.problem}`);
            if (username !== null) username = login.username;
            authToken = { state: login.state, sessionId: login.sessionId };
          }
          this.username = username;
          this.peerInfo = event.peerInfo;
          this.occOptions = event.options;
          this.state = 'authorizing';
          host.toMain({
            type: 'client-auth',
            peerId: this.peerId,
            commonName: this.commonName ?? '',
            username,
            password: host.config.userPassVerify ? password : null,
            peerInfo: event.peerInfo,
            realAddress: this.realAddress,
            keyId: event.keyId,
            certSerial: this.certSerial,
            ...(authToken !== undefined ? { authToken } : {}),
          });
        }
        break;
      case 'keys':
        this.keys.stash(event.keyId, event.keyBlock);
        if (this.cipher !== null) this.installKeys(this.cipher);
        if (event.keyId !== 0) host.counters[COUNTER.renegotiations]++;
        break;
      case 'key-active': {
        // The client has acknowledged our key method 2 reply, so it holds the keys: send on
        // the new key now, as OpenVPN does at S_ACTIVE, not only after the client used it.
        const key = this.keys.byId[event.keyId];
        if (key !== null && key !== undefined) this.keys.confirm(key);
        break;
      }
      case 'key-retired':
        this.keys.retire(event.keyId);
        break;
      case 'control-message':
        this.onControlMessage(event.text);
        break;
      case 'error':
        if (event.fatal) {
          const counter = HANDSHAKE_FAILURE_COUNTER[event.reason];
          if (!this.connected && counter !== undefined) host.counters[counter]++;
          host.log(1, `${this.describe()} ${event.reason}: ${event.detail}`);
          this.close(event.reason);
        }
        break;
      case 'drop':
        host.counters[COUNTER.dropControl]++;
        if (event.reason === 'bad-hmac' && !this.connected) host.counters[COUNTER.handshakeFailBadHmac]++;
        break;
      case 'renegotiating':
      case 'closed':
        break;
    }
  }

  private onControlMessage(text: string): void {
    const message = parseControlMessage(text);
    if (message.kind === 'push-request') {
      if (this.pushMessages !== null) this.sendPush();
      else this.pushRequested = true;
    } else if (message.kind === 'exit') {
      // explicit-exit-notify over the control channel (protocol-flags cc-exit).
      this.close('client exit notification');
    }
  }

  private sendPush(): void {
    // A repeated PUSH_REQUEST gets the newest token, not the one of the first reply.
    const token = this.authToken?.current ?? null;
    for (const text of this.pushMessages ?? []) {
      this.session.sendControlMessage(token !== null ? text.replace(/(^|,)auth-token [^,]*/, `$1auth-token ${token}`) : text);
    }
    this.pushRequested = false;
  }

  /** The main thread assigned addresses: negotiate the cipher, prepare the push, go live. */
  accept(assignment: ClientAssignment, globalPush: readonly string[]): void {
    if (this.state !== 'authorizing') return;
    const authToken = this.authToken?.issue(this.host.now()) ?? null;
    const plan = planPush(
      this.host.config,
      { peerId: this.peerId, peerInfo: this.peerInfo, occOptions: this.occOptions, authToken },
      assignment,
      globalPush,
    );
    if (!plan.ok) {
      this.host.log(1, `${this.describe()} ${plan.detail}`);
      this.reject(plan.reason);
      return;
    }
    this.cipher = plan.cipher;
    this.pushMessages = plan.messages;
    // A client-config-dir file's or client-connect script's own value: OpenVPN re-initialises the
    // instance's timers with it once the client is admitted (do_deferred_options).
    if (assignment.sessionTimeoutS !== undefined) this.sessionEnds = sessionDeadline(assignment.sessionTimeoutS, this.host.now());
    this.sources.set(assignment);
    this.installKeys(plan.cipher);
    this.state = 'connected';
    this.host.counters[COUNTER.handshakesCompleted]++;
    observeHandshake(this.host.counters, (this.host.now() - this.created) / 1000);
    this.host.counters[COUNTER.clientsConnected]++;
    this.host.toMain({ type: 'client-established', peerId: this.peerId, cipher: plan.cipher, stats: this.stats() });
    if (this.pushRequested) this.sendPush();
  }

  /** AUTH_FAILED to the client, then close. */
  reject(reason: string): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.host.counters[COUNTER.handshakeFailAuth]++;
    this.session.sendControlMessage(reason.length > 0 ? `AUTH_FAILED,${reason}` : 'AUTH_FAILED');
    this.closeSoon(`auth failed: ${reason}`);
  }

  /** Sends `message` (RESTART, HALT, ...) when given, then closes shortly after. */
  kill(message: string | null, reason: string): void {
    if (message !== null && this.session.activeKeyId !== null) {
      this.session.sendControlMessage(message);
      this.closeSoon(reason);
    } else {
      this.close(reason);
    }
  }

  private closeSoon(reason: string): void {
    this.state = 'closing';
    this.closeReason = reason;
    this.closeAt = this.host.now() + CLOSE_DELAY_MS;
  }

  private installKeys(cipher: DataCipherName): void {
    const config = this.host.config;
    const dataV2 = (peerInfoProto(this.peerInfo) & IV_PROTO_DATA_V2) !== 0;
    const installed = this.keys.install(cipher, {
      peerId: dataV2 ? this.peerId : null,
      auth: config.auth,
      replayWindow: config.replayWindow,
      replayWindowTimeS: config.replayTime,
      counters: this.host.dataCounters,
    });
    if (installed > 0) this.maxMss = maxMss(config.mssfix, this.realAddress.family, dataV2);
  }

  /** Tunnel bytes (to or from the TUN device, not keepalive pings) this client moved. */
  tunnelActivity(bytes: number): void {
    this.activityBytes += bytes;
  }

  /** An authenticated data packet arrived. */
  received(now: number): void {
    this.keepalive.received(now);
    this.lastRef = Math.floor(Date.now() / 1000);
  }

  /** Timers: the session's retransmissions, keepalive, delayed close, hand-window. */
  tick(now: number): void {
    if (now < this.quiet || this.state === 'closed') return;
    if (this.state === 'closing') {
      if (now >= this.closeAt) this.close(this.closeReason);
      else this.session.tick();
      return;
    }
    // OpenVPN runs an instance's session timer from its creation, before it is admitted too.
    if (now >= this.sessionEnds) {
      this.close('session timeout (--session-timeout)');
      return;
    }
    // Measured against the same `now`: an overdue timer comes back as `now`, never later.
    const due = this.session.nextTimeout(now);
    if (due !== null && due <= now) this.session.tick();
    if (!this.connected) {
      if (now > (this.authPendingUntil ?? this.created + this.host.config.handWindowS * 1000)) {
        this.host.counters[COUNTER.handshakeFailTimeout]++;
        this.close(
          this.authPendingUntil === null ? 'TLS key negotiation did not finish within hand-window' : 'pending authentication timed out',
        );
      }
      return;
    }
    if (this.inactivity.expired(this.activityBytes, now)) {
      this.close('inactivity timeout (--inactive)');
      return;
    }
    switch (this.keepalive.poll(now)) {
      case 'ping':
        this.host.sendPing(this);
        break;
      case 'ping-restart':
      case 'ping-exit':
        this.close(`inactivity timeout (--ping-restart)`);
        break;
      case 'none':
        break;
    }
    const token = this.authToken?.due(now) ?? null;
    if (token?.kind === 'renewed') this.session.sendControlMessage(`PUSH_REPLY,auth-token ${token.token}`);
    if (token?.kind === 'expired') {
      // forward.c check_tls: a session whose login no longer holds is told why, then ended.
      this.host.log(1, `${this.describe()} --auth-gen-token: auth-token lifetime is over`);
      this.kill('AUTH_FAILED,SESSION: token expired', 'auth-token lifetime over');
      return;
    }
    const key = this.keys.send;
    if (
      key !== null &&
      key.renegotiationDue(this.host.config.renegBytes, this.host.config.renegPkts) &&
      this.session.activeKeyId === key.keyId
    ) {
      this.session.renegotiate();
    }
    this.quiet = this.state === 'connected' ? this.nextWork(now) : 0;
  }

  /** The earliest of a connected client's timers, at most MAX_QUIET_MS ahead; 0 when traffic can make work due. */
  private nextWork(now: number): number {
    const config = this.host.config;
    // reneg-bytes / reneg-pkts fall due with traffic, not with time.
    if (config.renegBytes > 0 || config.renegPkts > 0) return 0;
    let at = now + MAX_QUIET_MS;
    const session = this.session.nextTimeout(now);
    if (session !== null && session < at) at = session;
    const keepalive = this.keepalive.nextDeadline();
    if (keepalive < at) at = keepalive;
    const inactive = this.inactivity.deadline();
    if (inactive < at) at = inactive;
    if (this.sessionEnds < at) at = this.sessionEnds;
    const renewal = this.authToken?.nextRenewal ?? Infinity;
    if (renewal < at) at = renewal;
    return at;
  }

  close(reason: string): void {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected' || this.state === 'closing';
    if (this.cipher !== null && wasConnected) this.host.counters[COUNTER.clientsConnected]--;
    this.state = 'closed';
    const stats = this.stats();
    this.session.close();
    this.keys.destroyAll();
    this.host.toMain({ type: 'client-gone', peerId: this.peerId, reason, bytesReceived: stats.bytesReceived, bytesSent: stats.bytesSent });
    this.host.closed(this, reason);
  }

  describe(): string {
    const cn = this.commonName ?? UNDEF_COMMON_NAME;
    const addr =
      this.realAddress.family === 6
        ? `[${this.realAddress.address}]:${this.realAddress.port}`
        : `${this.realAddress.address}:${this.realAddress.port}`;
    return `${cn}/${addr}`;
  }
}
