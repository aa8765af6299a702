// One simulated client of the load generator: its own UDP socket and ControlSession, the host
// duties a real client does around the session (PUSH_REQUEST, NCP check, key-derivation,
// a DataChannelKey per 'keys'), keepalive pings, optional ICMP echo traffic and the closing
// explicit-exit-notify. No TUN device: in-tunnel packets are built and read here. With a
// reconnect delay, a client that loses its session starts over from a new socket (a new source
// port), as openvpn's SIGUSR1 restart after ping-restart does: what a load balancer in front of
// several servers sees as a new flow.

import { parseControlMessage } from '../../shared/protocol/control-message';
import { DATA_DROP_REASONS, DataChannelKey, DecryptResults } from '../../shared/protocol/data-channel';
import { payloadKind, writeOccMessage, type OccMessage } from '../../shared/protocol/occ';
import { P_DATA_V1, P_DATA_V2, P_OPCODE_SHIFT } from '../../shared/protocol/opcodes';
import { writePingMessage } from '../../shared/protocol/ping';
import { PushReplyCollector, type PushOptions } from '../../shared/protocol/push-options';
import { ControlSession } from '../../shared/session/control-session';
import { openLoadLink, type LoadLink } from './load-link';
import { clientDataChannelKey, negotiatePushedDataChannel, type PushedDataChannel } from '../../shared/session/pushed-data-channel';
import type { ControlSessionConfig, SessionErrorReason, SessionEvent } from '../../shared/session/types';
import { echoReplySeq, echoTarget, ipv4ToNumber, readEchoReply, writeEchoRequest } from '../../shared/load/icmp-echo';
import type { LoadProfile, TrafficSpec } from '../../shared/load/task';
import { PacketBatch } from '../../shared/native';
import type { Tickable } from '../../shared/tick-wheel';
import { BULK_BATCH, BulkBuffers, BulkLink } from './bulk-link';
import { ANSWER_NONE, EchoWindow } from './echo-window';
import { peerChecks } from '../../shared/session/peer-verify';

/** What the slice counts; one per worker, shared by its clients. */
export interface SliceStats {
  onConnected(index: number, handshakeMs: number): void;
  onFailed(index: number, reason: string, detail: string): void;
  /** A connected client lost its session (server RESTART/HALT, fatal error). */
  onDisconnected(index: number, reason: string): void;
  /** A client that had lost its session has a new one, `outageMs` after the loss was noticed. */
  onReconnected(index: number, outageMs: number): void;
  /** A new attempt after a loss failed; another follows. */
  onReconnectFailed(index: number, reason: string, detail: string): void;
  onEchoSent(bytes: number): void;
  onEchoReply(bytes: number, rttMs: number): void;
  /** Bulk mode: requests given up unanswered (ECHO_TIMEOUT_MS). */
  onEchoExpired(count: number): void;
  onDecryptError(): void;
}

/** Decrypt statuses of packets the batch decrypt left alone (DecryptResults: reason index + 1). */
const DATA_NOT_DATA = DATA_DROP_REASONS.indexOf('not-data') + 1;
const DATA_BAD_KEY_ID = DATA_DROP_REASONS.indexOf('bad-key-id') + 1;

/** Buffers shared by every client of one worker: the loop is single-threaded and synchronous. */
export class SliceBuffers {
  readonly tx = PacketBatch.allocate(1, 2048, 0);
  readonly rx = PacketBatch.allocate(1, 2048, 0);
  readonly results = new DecryptResults(BULK_BATCH);

  /** `bulk`: the batches of bulk mode (--bandwidth), null otherwise. */
  constructor(readonly bulk: BulkBuffers | null = null) {}
}

const PUSH_REQUEST_INTERVAL_MS = 1000;
/** OpenVPN's default ping when the server pushes none (a 2.6 server pushes its keepalive). */
const DEFAULT_PING_MS = 10_000;

const SESSION_REASONS: Readonly<Record<SessionErrorReason, string>> = {
  'tls-error': 'tls-error',
  'cert-rejected': 'cert-rejected',
  'handshake-timeout': 'timeout',
  'bad-key-method-2': 'bad-key-method-2',
  'replay-exhausted': 'replay-exhausted',
  'key-state-error': 'key-state-error',
};

/** 'waiting': the session was lost and the next attempt is due at restartAt. */
type State = 'idle' | 'handshake' | 'connected' | 'waiting' | 'done';

const PAYLOAD_PING = 0;
const PAYLOAD_EXIT = 1;
const PAYLOAD_ECHO = 2;
const OCC_EXIT_MESSAGE: OccMessage = { op: 'exit' };

/** How far a handshake got, for clients still handshaking when the run ends. */
export type HandshakeStage = 'reset-sent' | 'tls-verified' | 'push-requested' | 'push-applied';

/** The slice's poll (slice-task.ts): a client that may have work sooner than it said asks to be looked at. */
export interface SliceWheel {
  wake(client: SimulatedClient): void;
}

export class SimulatedClient implements Tickable {
  private state: State = 'idle';
  /** The slice's tick wheel slot for this client (tick-wheel.ts). */
  wheelSlot = -1;
  private stageValue: HandshakeStage = 'reset-sent';
  private wireSent = 0;
  private wireReceived = 0;
  private lastDrop = '';
  private session: ControlSession | null = null;
  private socket: LoadLink | null = null;
  private socketClosed: Promise<void> = Promise.resolve();
  private readonly keys = new Map<number, DataChannelKey>();
  private sendKeyId = -1;
  private startedAt = 0;
  private pushRequestAt = -1;
  private pushed = false;
  private push = new PushReplyCollector();
  /** The pushed cipher and peer-id, once PUSH_REPLY is in. */
  private channel: PushedDataChannel | null = null;
  private pingMs = DEFAULT_PING_MS;
  /** The pushed ping-restart (0: none): a session the server dropped in silence is noticed. */
  private pingRestartMs = 0;
  private lastDataSent = 0;
  /** When an authentic data packet last arrived (or the tunnel came up). */
  private lastDataReceived = 0;
  private localAddress = -1;
  private targetAddress = -1;
  private nextEchoAt = 0;
  private echoSeq = 0;
  /** When the lost session was noticed (-1: this attempt is the first). */
  private lostAt = -1;
  private restartAt = 0;
  /** Bulk mode only: the batched link and the requests in flight. */
  private bulkLink: BulkLink | null = null;
  private echoWindow: EchoWindow | null = null;
  /** Whether traffic may flow: the last poll's word (false once the run's traffic stops). */
  private trafficOn = true;

  constructor(
    readonly index: number,
    private readonly profile: LoadProfile,
    private readonly traffic: TrafficSpec,
    private readonly handshakeTimeoutMs: number,
    private readonly reconnectDelayMs: number | null,
    private readonly buffers: SliceBuffers,
    private readonly stats: SliceStats,
    private readonly wheel: SliceWheel,
    /** The local address its sockets send from (--source); undefined: any. */
    private readonly source?: string,
  ) {}

  /**
   * For the slice's tick wheel: 0 while the client must be polled every round (handshaking,
   * traffic), else the time before which a poll has nothing to do (its next keepalive ping,
   * ping-restart, session timer or reconnect attempt). A packet or a failure wakes it earlier.
   */
  get quietUntil(): number {
    if (this.state === 'waiting') return Math.max(this.restartAt, 1);
    if (this.state !== 'connected' || this.echoWindow !== null || this.traffic.pps > 0) return 0;
    let until = this.lastDataSent + this.pingMs;
    if (this.pingRestartMs > 0) until = Math.min(until, this.lastDataReceived + this.pingRestartMs);
    const due = this.session?.nextTimeout() ?? null;
    if (due !== null) until = Math.min(until, due);
    return Math.max(until, 1);
  }

  /** Not (or no longer) polled: never started, or done. */
  get closed(): boolean {
    return this.state === 'done' || this.state === 'idle';
  }

  get isStarted(): boolean {
    return this.state !== 'idle';
  }

  get isConnected(): boolean {
    return this.state === 'connected';
  }

  get isHandshaking(): boolean {
    return this.state === 'handshake';
  }

  get stage(): HandshakeStage {
    return this.stageValue;
  }

  /** Why a handshake is stuck, as far as this side can tell. */
  describeStuck(now: number): string {
    const due = this.session?.nextTimeout() ?? null;
    return `client ${this.index} at ${this.stageValue} after ${Math.round(now - this.startedAt)} ms: ${this.wireSent} datagrams sent, ${this.wireReceived} received${this.lastDrop !== '' ? `, last dropped: ${this.lastDrop}` : ''}, next timer ${due === null ? 'none' : `in ${Math.round(due - now)} ms`}`;
  }

  start(now: number): void {
    if (this.state !== 'idle') return;
    this.open(now);
  }

  /** One attempt: a new socket and session, everything of the last attempt forgotten. */
  private open(now: number): void {
    this.state = 'handshake';
    this.stageValue = 'reset-sent';
    this.pushRequestAt = -1;
    this.pushed = false;
    this.push = new PushReplyCollector();
    this.channel = null;
    this.pingMs = DEFAULT_PING_MS;
    this.pingRestartMs = 0;
    this.localAddress = -1;
    this.targetAddress = -1;
    this.nextEchoAt = 0;
    this.startedAt = now;
    const p = this.profile;
    const events = {
      receive: (m: Buffer): void => this.receive(m),
      failed: (reason: string, detail: string): void => this.fail(reason, detail),
    };
    let socket: LoadLink;
    const bulk = this.buffers.bulk;
    if (this.traffic.window > 0 && bulk !== null) {
      try {
        this.bulkLink = new BulkLink(p, bulk, { ...events, receiveBatch: (n) => this.receiveBatch(n) }, this.source);
      } catch (error) {
        this.fail('socket-error', (error as Error).message);
        return;
      }
      this.echoWindow = new EchoWindow(this.traffic.window);
      socket = this.bulkLink;
    } else {
      socket = openLoadLink(p, events, this.source);
    }
    this.socket = socket;
    this.socketClosed = socket.closed;
    const cfg: ControlSessionConfig = {
      role: 'client',
      tls: p.tls,
      wrap: p.wrap,
      ...peerChecks(p),
      keyMethod2: { options: p.occOptions, peerInfo: p.peerInfo, username: p.username, password: p.password },
      timing: { handWindowMs: p.handWindowMs, tlsTimeoutMs: p.tlsTimeoutMs },
      ipv6: p.family === 6,
      ...(p.transport === 'tcp' ? { stream: true } : {}),
    };
    const session: ControlSession = new ControlSession(cfg, {
      sendPacket: (wire) => this.sendWire(wire),
      onEvent: (e) => this.onEvent(e, session),
      now: () => performance.now(),
    });
    this.session = session;
    session.start();
  }

  /** Timers: session retransmissions, PUSH_REQUEST repeats, handshake timeout, keepalive, traffic. */
  poll(now: number, trafficOn: boolean): void {
    if (this.state === 'waiting') {
      if (now >= this.restartAt) this.open(now);
      return;
    }
    const s = this.session;
    if (s === null || this.state === 'done' || this.state === 'idle') return;
    this.trafficOn = trafficOn;
    // nextTimeout() says "now" for overdue work by reading the clock again: compare with a fresh reading.
    const due = s.nextTimeout();
    if (due !== null && due <= performance.now()) s.tick();
    if (this.state === 'handshake') {
      if (now - this.startedAt >= this.handshakeTimeoutMs) {
        this.fail('timeout', `not connected after ${Math.round(now - this.startedAt)} ms`);
        return;
      }
      if (!this.pushed && this.pushRequestAt >= 0 && now - this.pushRequestAt >= PUSH_REQUEST_INTERVAL_MS) {
        this.pushRequestAt = now;
        s.sendControlMessage('PUSH_REQUEST');
      }
      return;
    }
    if (this.state !== 'connected') return;
    if (this.echoWindow !== null) {
      const expired = this.echoWindow.expire(now);
      if (expired > 0) this.stats.onEchoExpired(expired);
      if (trafficOn) this.pump();
    }
    if (trafficOn && this.traffic.pps > 0 && this.localAddress >= 0 && this.targetAddress >= 0) {
      const interval = 1000 / this.traffic.pps;
      if (this.nextEchoAt === 0) this.nextEchoAt = now;
      // Catch up at most a second's worth after a stall, rather than a burst of everything missed.
      if (now - this.nextEchoAt > 1000) this.nextEchoAt = now - 1000;
      while (this.nextEchoAt <= now && this.state === 'connected') {
        this.sendEcho();
        this.nextEchoAt += interval;
      }
    }
    if (this.state === 'connected' && now - this.lastDataSent >= this.pingMs) this.sendData(PAYLOAD_PING, 0);
    // A server drops a session without a word when another one takes over its certificate
    // (no duplicate-cn): like a real client, notice by ping-restart, and report it.
    if (this.state === 'connected' && this.pingRestartMs > 0 && now - this.lastDataReceived >= this.pingRestartMs) {
      this.fail(
        'ping-restart',
        `no data from the server for ${Math.round((now - this.lastDataReceived) / 1000)} s (dropped by the server?)`,
      );
    }
  }

  /**
   * Ends this client: a connected one sends explicit-exit-notify (if the profile asks for it),
   * then the session and socket close. Resolves when the socket is closed.
   */
  close(): Promise<void> {
    if (this.state === 'waiting') this.state = 'done';
    if (this.state === 'connected' && this.profile.explicitExitNotify > 0) {
      // Close only once the datagram is out: closing the socket cancels a send still queued.
      const sent = this.sendData(PAYLOAD_EXIT, 0, () => this.finish());
      if (sent) return this.socketClosed;
    }
    this.finish();
    return this.socketClosed;
  }

  private finish(): void {
    this.state = 'done';
    this.session?.close();
    for (const k of this.keys.values()) k.destroy();
    this.keys.clear();
    this.sendKeyId = -1;
    const socket = this.socket;
    this.socket = null;
    this.bulkLink = null;
    socket?.close();
  }

  private fail(reason: string, detail: string): void {
    this.wheel.wake(this);
    const retry = this.reconnectDelayMs !== null;
    if (this.state === 'handshake' && this.lostAt >= 0) this.stats.onReconnectFailed(this.index, reason, detail);
    else if (this.state === 'handshake') this.stats.onFailed(this.index, reason, detail);
    else if (this.state === 'connected') {
      this.stats.onDisconnected(this.index, reason);
      if (retry) this.lostAt = performance.now();
    } else return;
    this.finish();
    // Only a client that once had a session tries again: a first handshake that fails is a
    // failure to report (bad certificate, no server), not an outage to ride out.
    if (retry && this.lostAt >= 0) {
      this.state = 'waiting';
      this.restartAt = performance.now() + this.reconnectDelayMs;
    }
  }

  private sendWire(wire: Buffer): void {
    this.wireSent++;
    this.socket?.send(wire);
  }

  private onEvent(e: SessionEvent, s: ControlSession): void {
    switch (e.type) {
      case 'tls-verified':
        if (this.stageValue === 'reset-sent') this.stageValue = 'tls-verified';
        return;
      case 'key-method-2':
        if (e.keyId === 0 && !this.pushed) {
          this.stageValue = 'push-requested';
          this.pushRequestAt = performance.now();
          s.sendControlMessage('PUSH_REQUEST');
        }
        return;
      case 'control-message':
        this.onControlMessage(e.text, s);
        return;
      case 'keys':
        this.onKeys(e.keyId, e.keyBlock);
        return;
      case 'key-retired': {
        const k = this.keys.get(e.keyId);
        if (k !== undefined && e.keyId !== this.sendKeyId) {
          k.destroy();
          this.keys.delete(e.keyId);
        }
        return;
      }
      case 'drop':
        this.lastDrop = `${e.reason} (${e.detail})`;
        return;
      case 'error':
        if (e.fatal) this.fail(SESSION_REASONS[e.reason], e.detail);
        return;
      default:
        return;
    }
  }

  private onControlMessage(text: string, s: ControlSession): void {
    const m = parseControlMessage(text);
    switch (m.kind) {
      case 'push-reply': {
        if (this.pushed) return;
        const step = this.push.add(text);
        if (!step.ok) {
          this.fail('bad-push-reply', `${step.reason}: ${step.detail}`);
          return;
        }
        if (!step.complete) return;
        this.pushed = true;
        this.stageValue = 'push-applied';
        this.applyPush(step.options, s);
        return;
      }
      case 'auth-failed':
        this.fail('auth-failed', m.reason ?? 'AUTH_FAILED');
        return;
      case 'restart':
        this.fail('server-restart', text);
        return;
      case 'halt':
        this.fail('server-halt', text);
        return;
      default:
        return;
    }
  }

  private applyPush(o: PushOptions, s: ControlSession): void {
    const p = this.profile;
    const negotiated = negotiatePushedDataChannel(o, {
      dataCiphers: p.dataCiphers,
      occCipher: null,
      fallback: p.dataCiphersFallback,
      auth: p.auth,
    });
    if (!negotiated.ok) {
      this.fail('ncp-failed', negotiated.detail);
      return;
    }
    this.channel = negotiated.channel;
    if (o.ping !== undefined && o.ping > 0) this.pingMs = o.ping * 1000;
    if (o.pingRestart !== undefined && o.pingRestart > 0) this.pingRestartMs = o.pingRestart * 1000;
    this.lastDataReceived = performance.now();
    this.localAddress = o.ifconfig !== undefined ? (ipv4ToNumber(o.ifconfig.local) ?? -1) : -1;
    this.targetAddress = echoTarget(this.traffic.target, o);
    s.setKeyDerivation(negotiated.channel.keyDerivation);
  }

  private onKeys(keyId: number, block: Buffer): void {
    if (this.channel === null) {
      this.fail('ncp-failed', 'data keys before a cipher was pushed');
      return;
    }
    const built = clientDataChannelKey(block, keyId, this.channel);
    if (!built.ok) {
      this.fail('key-state-error', built.detail);
      return;
    }
    const key = built.key;
    this.keys.get(keyId)?.destroy();
    this.keys.set(keyId, key);
    this.sendKeyId = keyId;
    if (this.state === 'handshake') {
      this.state = 'connected';
      const now = performance.now();
      this.lastDataSent = now;
      if (this.lostAt >= 0) {
        this.stats.onReconnected(this.index, now - this.lostAt);
        this.lostAt = -1;
      } else this.stats.onConnected(this.index, now - this.startedAt);
    }
  }

  private receive(m: Buffer): void {
    if (m.length === 0 || this.session === null || this.state === 'done') return;
    // A control packet can bring the session's timers (or the end of the session) earlier.
    this.wheel.wake(this);
    this.wireReceived++;
    const op = m[0]! >>> P_OPCODE_SHIFT;
    if (op !== P_DATA_V2 && op !== P_DATA_V1) {
      this.session.receivePacket(m);
      return;
    }
    const key = this.keys.get(m[0]! & 7);
    const b = this.buffers;
    if (key === undefined || m.length > b.rx.capacity) {
      this.stats.onDecryptError();
      return;
    }
    b.rx.set(0, m);
    const now = performance.now();
    if (key.decrypt(b.rx, 1, now, b.results) !== 1) {
      this.stats.onDecryptError();
      return;
    }
    this.lastDataReceived = now;
    const at = b.results.payloadOffsets[0]!;
    const length = b.results.payloadLengths[0]!;
    if (payloadKind(b.rx.memory, at, length) !== 'packet') return; // ping or OCC
    const sentAt = readEchoReply(b.rx.memory, at, length, this.localAddress >>> 0, this.index);
    if (sentAt >= 0) this.stats.onEchoReply(length, now - sentAt);
  }

  /**
   * Bulk mode: a batch from the server. Data packets on the key of the first one are opened by
   * one call into the addon; control packets and packets on another key (a renegotiation) go the
   * one-by-one way. Then the window is topped up with new requests: the loop stays closed.
   */
  private receiveBatch(count: number): void {
    if (this.session === null || this.state === 'done') return;
    this.wheel.wake(this);
    const rx = this.buffers.bulk!.rx;
    const m = rx.memory;
    let key: DataChannelKey | undefined;
    for (let i = 0; i < count && key === undefined; i++) {
      const byte0 = m[rx.offsets[i]!]!;
      const op = byte0 >>> P_OPCODE_SHIFT;
      if (rx.lengths[i]! > 0 && (op === P_DATA_V2 || op === P_DATA_V1)) key = this.keys.get(byte0 & 7);
    }
    const results = this.buffers.results;
    const now = performance.now();
    if (key !== undefined && key.decrypt(rx, count, now, results) > 0) this.lastDataReceived = now;
    for (let i = 0; i < count; i++) {
      // A control packet may have ended the session (RESTART, HALT, a fatal error).
      if ((this.state as State) === 'done') return;
      if (key === undefined || results.status[i] === DATA_NOT_DATA || results.status[i] === DATA_BAD_KEY_ID) {
        // Untouched by the batch decrypt: as any single datagram.
        if (rx.lengths[i]! > 0) this.receive(Buffer.from(rx.packet(i)));
        continue;
      }
      this.wireReceived++;
      if (!results.ok(i)) {
        this.stats.onDecryptError();
        continue;
      }
      const at = results.payloadOffsets[i]!;
      const length = results.payloadLengths[i]!;
      if (payloadKind(m, at, length) !== 'packet') continue; // ping or OCC
      const sentAt = readEchoReply(m, at, length, this.localAddress >>> 0, this.index);
      if (sentAt >= 0 && this.echoWindow!.answer(echoReplySeq(m, at), sentAt, now) !== ANSWER_NONE)
        this.stats.onEchoReply(length, now - sentAt);
    }
    if (this.trafficOn && this.state === 'connected') this.pump();
  }

  /** Bulk mode: fills the window's free places, a batch of up to BULK_BATCH per sendmmsg. */
  private pump(): void {
    const key = this.keys.get(this.sendKeyId);
    const link = this.bulkLink;
    const w = this.echoWindow;
    if (key === undefined || link === null || w === null || this.localAddress < 0 || this.targetAddress < 0) return;
    const tx = this.buffers.bulk!.tx;
    const size = this.traffic.size;
    const headroom = key.headroom;
    for (;;) {
      const n = Math.min(BULK_BATCH, w.room());
      if (n === 0) return;
      const now = performance.now();
      for (let i = 0; i < n; i++) {
        const seq = w.take(now);
        tx.lengths[i] = writeEchoRequest(
          tx.memory,
          tx.offsets[i]! + headroom,
          size,
          this.localAddress,
          this.targetAddress,
          this.index,
          seq,
          now,
        );
      }
      const sealed = key.encrypt(tx, n);
      const sent = link.sendBatch(sealed);
      if (this.state !== 'connected') return;
      for (let i = 0; i < sent; i++) this.stats.onEchoSent(size);
      if (sent > 0) this.lastDataSent = now;
      if (sent < n) {
        // A full socket buffer (or an exhausted packet-id): those never left; try again next poll.
        w.untake(n - sent);
        return;
      }
    }
  }

  private sendEcho(): void {
    const size = this.traffic.size;
    const seq = this.echoSeq++ & 0xffff;
    if (this.sendData(PAYLOAD_ECHO, seq)) this.stats.onEchoSent(size);
  }

  /** Seals one keepalive ping, OCC_EXIT or echo request (sequence `seq`) with the current key and sends it. */
  private sendData(payload: number, seq: number, sent?: () => void): boolean {
    const key = this.keys.get(this.sendKeyId);
    const socket = this.socket;
    if (key === undefined || socket === null) return false;
    const tx = this.buffers.tx;
    const at = tx.offsets[0]! + key.headroom;
    if (payload === PAYLOAD_PING) tx.lengths[0] = writePingMessage(tx.memory, at);
    else if (payload === PAYLOAD_EXIT) tx.lengths[0] = writeOccMessage(tx.memory, at, OCC_EXIT_MESSAGE);
    // The send time is read here, not at the start of the poll round, so RTTs leave the round out.
    else
      tx.lengths[0] = writeEchoRequest(
        tx.memory,
        at,
        this.traffic.size,
        this.localAddress,
        this.targetAddress,
        this.index,
        seq,
        performance.now(),
      );
    if (key.encrypt(tx, 1) !== 1) return false;
    // The socket may send after this returns; the shared slot is reused, so hand it a copy.
    socket.send(Buffer.from(tx.packet(0)), sent);
    this.lastDataSent = performance.now();
    return true;
  }
}
