// One client of a shard (OpenVPN's multi_instance): its control session, its data-channel keys
// by key_id, its keepalive timers and the addresses the main thread assigned. The shard owns the
// sockets and calls in here; nothing here does I/O of its own.
import { COUNTER, observeHandshake } from '../shared/counters';
import type { AeadCipherName } from '../shared/native';
import { parseControlMessage } from '../shared/protocol/control-message';
import { DataChannelKey, type DataChannelCounters } from '../shared/protocol/data-channel';
import { IV_PROTO_AUTH_PENDING_KW, IV_PROTO_DATA_V2, peerInfoProto } from '../shared/protocol/key-method2';
import { InactivityTimer } from '../shared/protocol/inactivity';
import { maxMss } from '../shared/protocol/mss';
import { aeadCipherName, occStringCipher, selectServerCipher } from '../shared/protocol/ncp';
import { KeepaliveTimer } from '../shared/protocol/ping';
import { buildPushReply, pushedProtocolOptions } from '../shared/protocol/push-options';
import { ControlSession } from '../shared/session/control-session';
import type { SessionErrorReason, SessionEvent, StatelessStart } from '../shared/session/types';
import type { ClientAssignment, ClientStats, ShardConfig, ShardToMain } from '../shared/shard-protocol';
import { parseIPv4, parseIPv6 } from '../shared/ip-address';
import { bitsToNetmask } from '../shared/ip-math';

export type InstanceState = 'handshake' | 'authorizing' | 'connected' | 'closing' | 'closed';

/** What an instance needs from its shard. */
export interface InstanceHost {
  readonly config: ShardConfig;
  readonly counters: Float64Array;
  readonly dataCounters: DataChannelCounters;
  now(): number;
  /** A control datagram to the client's current address. */
  sendWire(instance: Instance, wire: Buffer): void;
  /** A keepalive ping on the data channel. */
  sendPing(instance: Instance): void;
  toMain(message: ShardToMain): void;
  /** The instance is gone: forget it. */
  closed(instance: Instance, reason: string): void;
  log(level: number, message: string): void;
}

const HANDSHAKE_FAILURE_COUNTER: Partial<Record<SessionErrorReason, number>> = {
  'tls-error': COUNTER.handshakeFailTls,
  'cert-rejected': COUNTER.handshakeFailCert,
  'handshake-timeout': COUNTER.handshakeFailTimeout,
  'bad-key-method-2': COUNTER.handshakeFailTls,
};

/** Delay between sending AUTH_FAILED / RESTART and closing, so the message gets out. */
const CLOSE_DELAY_MS = 1000;

export class Instance {
  state: InstanceState = 'handshake';
  readonly session: ControlSession;
  /** Data keys by key_id; the newest active one sends. */
  readonly keys: (DataChannelKey | null)[] = new Array<DataChannelKey | null>(8).fill(null);
  sendKey: DataChannelKey | null = null;
  /**
   * A renegotiated key we may not send on yet: the client derives it only after our key
   * method 2 reply, so we switch when its first authentic packet on that key arrives.
   */
  pendingSendKey: DataChannelKey | null = null;
  private readonly keyBlocks = new Map<number, Buffer>();
  readonly keepalive: KeepaliveTimer;
  commonName: string | null = null;
  username: string | null = null;
  peerInfo: string | null = null;
  private occOptions = '';
  cipher: AeadCipherName | null = null;
  private pushMessages: string[] | null = null;
  private pushRequested = false;
  /** Virtual IPv4 as u32 (-1: none) and IPv6 bytes, for the source-address check. */
  virtual4 = -1;
  virtual6: Uint8Array | null = null;
  iroutes4: { network: number; mask: number }[] = [];
  iroutes6: { network: Uint8Array; bits: number }[] = [];
  readonly connectedSince = Math.floor(Date.now() / 1000);
  lastRef = Math.floor(Date.now() / 1000);
  closeAt = 0;
  private closeReason = '';
  private readonly created: number;

  constructor(
    readonly peerId: number,
    /** Address entry bytes (native ADDRESS_SIZE layout) and its Map key. */
    public addressBytes: Uint8Array,
    public addressKey: string,
    readonly realAddress: { family: 4 | 6; address: string; port: number },
    private readonly host: InstanceHost,
    stateless: StatelessStart | null,
  ) {
    const config = host.config;
    this.created = host.now();
    this.inactivity = new InactivityTimer(config.inactive, this.created);
    this.keepalive = new KeepaliveTimer({ pingS: config.pingS, pingRestartS: config.pingRestartS }, this.created);
    this.session = new ControlSession(
      {
        role: 'server',
        tls: config.tls,
        wrap: config.wrap,
        keyMethod2: { options: config.occOptions, peerInfo: null },
        ...(config.remoteCertTls !== undefined ? { remoteCertTls: config.remoteCertTls } : {}),
        ...(config.remoteCertEku !== undefined ? { remoteCertEku: config.remoteCertEku } : {}),
        ...(config.verifyX509Name !== undefined ? { verifyX509Name: config.verifyX509Name } : {}),
        timing: {
          handWindowMs: config.handWindowS * 1000,
          tlsTimeoutMs: config.tlsTimeoutS * 1000,
          renegMs: config.renegSec * 1000,
          tranWindowMs: config.tranWindowS * 1000,
        },
        ipv6: realAddress.family === 6,
        ...(stateless !== null ? { stateless } : {}),
      },
      {
        sendPacket: (wire) => {
          this.keepalive.sent(host.now());
          this.controlBytesOut += wire.length;
          host.sendWire(this, wire);
        },
        onEvent: (event) => this.onSessionEvent(event),
        now: () => host.now(),
      },
    );
    host.counters[COUNTER.handshakesStarted]++;
  }

  get connected(): boolean {
    return this.state === 'connected';
  }

  /** Link bytes over the control channel and every key, retired ones included (OpenVPN's counts). */
  private traffic(): { bytesReceived: number; bytesSent: number } {
    let bytesReceived = this.controlBytesIn;
    let bytesSent = this.controlBytesOut;
    for (const key of this.retiredTraffic) {
      bytesReceived += key.receivedBytes;
      bytesSent += key.sentBytes;
    }
    for (const key of this.keys) {
      if (key === null) continue;
      bytesReceived += key.traffic.receivedBytes;
      bytesSent += key.traffic.sentBytes;
    }
    return { bytesReceived, bytesSent };
  }

  /** Traffic over all keys, link bytes as OpenVPN counts them. */
  stats(): ClientStats {
    const { bytesReceived, bytesSent } = this.traffic();
    this.reportedReceived = bytesReceived;
    this.reportedSent = bytesSent;
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
    const { bytesReceived, bytesSent } = this.traffic();
    if (bytesReceived === this.reportedReceived && bytesSent === this.reportedSent) return false;
    this.reportedReceived = bytesReceived;
    this.reportedSent = bytesSent;
    rows[at] = this.peerId;
    rows[at + 1] = bytesReceived;
    rows[at + 2] = bytesSent;
    rows[at + 3] = this.lastRef;
    return true;
  }

  /** Counters as last reported to the main thread. */
  private reportedReceived = 0;
  private reportedSent = 0;
  /** The real address changed (float) since the last report. */
  floated = false;
  /** mssfix for this client's packets both ways (0: off), set with its data keys. */
  maxMss = 0;
  /** client-pending-auth: the client may wait for its verdict until then (instead of hand-window). */
  private authPendingUntil: number | null = null;

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

  private readonly retiredTraffic: { receivedBytes: number; sentBytes: number }[] = [];
  /** Control-channel bytes on the link: OpenVPN's per-client byte counts include the handshake. */
  controlBytesIn = 0;
  controlBytesOut = 0;

  private onSessionEvent(event: SessionEvent): void {
    const host = this.host;
    switch (event.type) {
      case 'tls-verified':
        this.commonName = event.commonName;
        break;
      case 'key-method-2':
        if (event.keyId === 0) {
          this.username = event.username;
          this.peerInfo = event.peerInfo;
          this.occOptions = event.options;
          this.state = 'authorizing';
          host.toMain({
            type: 'client-auth',
            peerId: this.peerId,
            commonName: this.commonName ?? '',
            username: event.username,
            password: host.config.userPassVerify ? event.password : null,
            peerInfo: event.peerInfo,
            realAddress: this.realAddress,
            keyId: event.keyId,
          });
        }
        break;
      case 'keys':
        this.keyBlocks.set(event.keyId, event.keyBlock);
        if (this.cipher !== null) this.installKey(event.keyId);
        if (event.keyId !== 0) host.counters[COUNTER.renegotiations]++;
        break;
      case 'key-active': {
        // The client has acknowledged our key method 2 reply, so it holds the keys: send on
        // the new key now, as OpenVPN does at S_ACTIVE, not only after the client used it.
        const key = this.keys[event.keyId];
        if (key !== null && key !== undefined) this.confirmKey(key);
        break;
      }
      case 'key-retired': {
        const key = this.keys[event.keyId];
        if (key !== null && key === this.pendingSendKey) this.pendingSendKey = null;
        if (key !== null && key !== this.sendKey) {
          this.retiredTraffic.push({ receivedBytes: key.traffic.receivedBytes, sentBytes: key.traffic.sentBytes });
          key.destroy();
          this.keys[event.keyId] = null;
        }
        break;
      }
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
    for (const text of this.pushMessages ?? []) this.session.sendControlMessage(text);
    this.pushRequested = false;
  }

  /** The main thread assigned addresses: negotiate the cipher, prepare the push, go live. */
  accept(assignment: ClientAssignment, globalPush: readonly string[]): void {
    if (this.state !== 'authorizing') return;
    const config = this.host.config;
    const choice = selectServerCipher({
      dataCiphers: config.dataCiphers,
      peerInfo: this.peerInfo,
      occCipher: occStringCipher(this.occOptions),
      ...(config.dataCiphersFallback !== undefined ? { fallback: config.dataCiphersFallback } : {}),
    });
    const cipher = choice.ok ? aeadCipherName(choice.cipher) : null;
    if (!choice.ok || cipher === null) {
      this.host.log(1, `${this.describe()} cipher negotiation failed: ${choice.ok ? choice.cipher : choice.detail}`);
      this.reject(choice.ok ? 'Data channel cipher negotiation failed (unsupported cipher)' : choice.clientReason);
      return;
    }
    this.cipher = cipher;
    const ivProto = peerInfoProto(this.peerInfo);
    const push = buildPushReply({
      ...assignment.push,
      extra: [...(assignment.pushReset ? [] : globalPush), ...(assignment.push.extra ?? [])],
      ...((ivProto & IV_PROTO_DATA_V2) !== 0 ? { peerId: this.peerId } : {}),
      ...(choice.push ? { cipher } : {}),
      ...pushedProtocolOptions(ivProto, { tlsEkm: true, dynTlsCrypt: false }),
    });
    if (!push.ok) {
      this.host.log(1, `${this.describe()} cannot build PUSH_REPLY: ${push.detail}`);
      this.reject('push reply too long');
      return;
    }
    this.pushMessages = push.messages;
    this.setAddresses(assignment);
    for (const keyId of this.keyBlocks.keys()) this.installKey(keyId);
    this.state = 'connected';
    this.host.counters[COUNTER.handshakesCompleted]++;
    observeHandshake(this.host.counters, (this.host.now() - this.created) / 1000);
    this.host.counters[COUNTER.clientsConnected]++;
    this.host.toMain({ type: 'client-established', peerId: this.peerId, cipher, stats: this.stats() });
    if (this.pushRequested) this.sendPush();
  }

  private setAddresses(assignment: ClientAssignment): void {
    const bytes4 = new Uint8Array(4);
    if (assignment.virtual4 !== null && parseIPv4(assignment.virtual4, bytes4)) {
      this.virtual4 = ((bytes4[0] << 24) | (bytes4[1] << 16) | (bytes4[2] << 8) | bytes4[3]) >>> 0;
    }
    if (assignment.virtual6 !== null) {
      const bytes6 = new Uint8Array(16);
      if (parseIPv6(assignment.virtual6, bytes6)) this.virtual6 = bytes6;
    }
    this.iroutes4 = assignment.iroutes4.flatMap((r) => {
      const net = new Uint8Array(4);
      if (!parseIPv4(r.network, net)) return [];
      const mask = bitsToNetmask(r.bits);
      return [{ network: ((((net[0] << 24) | (net[1] << 16) | (net[2] << 8) | net[3]) >>> 0) & mask) >>> 0, mask }];
    });
    this.iroutes6 = assignment.iroutes6.flatMap((r) => {
      const net = new Uint8Array(16);
      return parseIPv6(r.network, net) ? [{ network: net, bits: r.bits }] : [];
    });
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

  private installKey(keyId: number): void {
    const block = this.keyBlocks.get(keyId);
    if (block === undefined || this.cipher === null) return;
    this.keyBlocks.delete(keyId);
    const config = this.host.config;
    const ivProto = peerInfoProto(this.peerInfo);
    const previous = this.keys[keyId];
    if (previous !== null) {
      this.retiredTraffic.push({ receivedBytes: previous.traffic.receivedBytes, sentBytes: previous.traffic.sentBytes });
      previous.destroy();
    }
    const key = DataChannelKey.fromKeyBlock(block, 'server', this.cipher, keyId, {
      peerId: (ivProto & IV_PROTO_DATA_V2) !== 0 ? this.peerId : null,
      replayWindow: config.replayWindow,
      replayWindowTimeS: config.replayTime,
      counters: this.host.dataCounters,
    });
    block.fill(0);
    this.keys[keyId] = key;
    this.maxMss = maxMss(config.mssfix, this.realAddress.family, (ivProto & IV_PROTO_DATA_V2) !== 0);
    // The first key sends at once; a renegotiated one once the client has shown it has it.
    // The old key keeps decrypting until it is retired.
    if (this.sendKey === null) this.sendKey = key;
    else this.pendingSendKey = key;
  }

  /** An authentic packet arrived on `key`: if it is the renegotiated one, send on it from now. */
  confirmKey(key: DataChannelKey): void {
    if (key === this.pendingSendKey) {
      this.sendKey = key;
      this.pendingSendKey = null;
    }
  }

  /** Tunnel bytes (to or from the TUN device, not keepalive pings) this client moved. */
  tunnelActivity(bytes: number): void {
    this.activityBytes += bytes;
  }

  private activityBytes = 0;
  /** --inactive on a server: per client instance, as OpenVPN runs it. */
  private readonly inactivity: InactivityTimer;

  /** An authenticated data packet arrived. */
  received(now: number): void {
    this.keepalive.received(now);
    this.lastRef = Math.floor(Date.now() / 1000);
  }

  /** Whether an inner packet's source address belongs to this client (its address or iroutes). */
  ownsSource(packet: Uint8Array, offset: number, length: number): boolean {
    const version = packet[offset] >> 4;
    if (version === 4 && length >= 20) {
      const src = ((packet[offset + 12] << 24) | (packet[offset + 13] << 16) | (packet[offset + 14] << 8) | packet[offset + 15]) >>> 0;
      if (src === this.virtual4) return true;
      for (const route of this.iroutes4) if (((src & route.mask) >>> 0) === route.network) return true;
      return false;
    }
    if (version === 6 && length >= 40) {
      const v6 = this.virtual6;
      if (v6 !== null) {
        let same = true;
        for (let i = 0; i < 16; i++) if (packet[offset + 8 + i] !== v6[i]) { same = false; break; }
        if (same) return true;
      }
      for (const route of this.iroutes6) if (prefixMatch(packet, offset + 8, route.network, route.bits)) return true;
      return false;
    }
    return false;
  }

  /** Timers: the session's retransmissions, keepalive, delayed close, hand-window. */
  tick(now: number): void {
    if (this.state === 'closed') return;
    if (this.state === 'closing') {
      if (now >= this.closeAt) this.close(this.closeReason);
      else this.session.tick();
      return;
    }
    // Measured against the same `now`: an overdue timer comes back as `now`, never later.
    const due = this.session.nextTimeout(now);
    if (due !== null && due <= now) this.session.tick();
    if (!this.connected) {
      if (now > (this.authPendingUntil ?? this.created + this.host.config.handWindowS * 1000)) {
        this.host.counters[COUNTER.handshakeFailTimeout]++;
        this.close(this.authPendingUntil === null ? 'TLS key negotiation did not finish within hand-window' : 'pending authentication timed out');
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
    const key = this.sendKey;
    if (key !== null && key.renegotiationDue(this.host.config.renegBytes, this.host.config.renegPkts) && this.session.activeKeyId === key.keyId) {
      this.session.renegotiate();
    }
  }

  close(reason: string): void {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected' || this.state === 'closing';
    if (this.cipher !== null && wasConnected) this.host.counters[COUNTER.clientsConnected]--;
    this.state = 'closed';
    const stats = this.stats();
    this.session.close();
    for (let i = 0; i < this.keys.length; i++) {
      this.keys[i]?.destroy();
      this.keys[i] = null;
    }
    this.sendKey = null;
    this.host.toMain({ type: 'client-gone', peerId: this.peerId, reason, bytesReceived: stats.bytesReceived, bytesSent: stats.bytesSent });
    this.host.closed(this, reason);
  }

  describe(): string {
    const cn = this.commonName ?? 'UNDEF';
    const addr = this.realAddress.family === 6 ? `[${this.realAddress.address}]:${this.realAddress.port}` : `${this.realAddress.address}:${this.realAddress.port}`;
    return `${cn}/${addr}`;
  }
}

function prefixMatch(bytes: Uint8Array, offset: number, network: Uint8Array, bits: number): boolean {
  for (let i = 0; i < 16 && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((bytes[offset + i] & mask) !== (network[i] & mask)) return false;
  }
  return true;
}
