// A shard (OpenVPN's tunnel_server_loop, one per worker thread): its own UDP socket of the
// server's SO_REUSEPORT group, the clients the kernel steers to it, their control sessions and
// their data-channel crypto. Decrypted packets go to the main thread's TUN device through the
// to-tun ring; packets for our clients come back through the from-tun ring.
import { performance } from 'node:perf_hooks';
import type { MessagePort } from 'node:worker_threads';

import { COUNTER, counterView } from '../shared/counters';
import { PacketBatch, PeerAddresses, POLL_READABLE, TunDevice, UdpSocket, ADDRESS_SIZE } from '../shared/native';
import { P_DATA_V1, P_DATA_V2, P_CONTROL_HARD_RESET_CLIENT_V2, P_CONTROL_HARD_RESET_CLIENT_V3 } from '../shared/protocol/opcodes';
import { DecryptResults, MAX_DATA_HEADROOM, newDataChannelCounters, type DataChannelKey } from '../shared/protocol/data-channel';
import { clampMss } from '../shared/protocol/mss';
import { payloadKind, parseOccMessage } from '../shared/protocol/occ';
import { writePingMessage } from '../shared/protocol/ping';
import { BROADCAST_PEER_ID, PeerIdAllocator } from '../shared/peer-id';
import { PacketRing } from '../shared/ring';
import { StatelessResponder } from '../shared/session/stateless-responder';
import { STATS_ROW, type ClientStats, type MainToShard, type ShardConfig, type ShardToMain } from '../shared/shard-protocol';
import { Instance, type InstanceHost } from './instance';

const BATCH = 64;
/** Room per packet: a full-size tunnel packet plus OpenVPN's headers. */
const SLOT = 2048;
const TICK_MS = 200;
const STOP_GRACE_MS = 1500;
/** Refused control packets logged per shard and second; the rest are only counted. */
const DROP_LOGS_PER_SECOND = 10;

function addressKey(bytes: Uint8Array, index: number): string {
  const at = index * ADDRESS_SIZE;
  return String.fromCharCode.apply(null, bytes.subarray(at, at + ADDRESS_SIZE) as unknown as number[]);
}

export class Shard implements InstanceHost {
  readonly counters: Float64Array;
  readonly dataCounters = newDataChannelCounters();
  private readonly socket: UdpSocket;
  private readonly toTun: PacketRing;
  private readonly fromTun: PacketRing;
  private readonly responder: StatelessResponder;
  private readonly byPeer = new Map<number, Instance>();
  private readonly byAddress = new Map<string, Instance>();
  private readonly peerIds: PeerIdAllocator;
  // Receive side.
  private readonly recv = PacketBatch.allocate(BATCH, SLOT);
  private readonly from = new PeerAddresses(BATCH);
  private readonly run = new PacketBatch(this.recv.memory, new Uint32Array(BATCH), SLOT);
  private readonly runIndex = new Uint32Array(BATCH);
  private readonly results = new DecryptResults(BATCH);
  /** Decrypted packets written to TUN straight from the receive memory (no client-to-client). */
  private readonly tun: TunDevice | null;
  private readonly tunOut = new PacketBatch(this.recv.memory, new Uint32Array(BATCH), SLOT);
  private tunOutCount = 0;
  // Send side: plaintext is placed MAX_DATA_HEADROOM into each slot, then sealed in place.
  private readonly out = PacketBatch.allocate(BATCH, SLOT);
  private readonly outTo = new PeerAddresses(BATCH);
  private readonly outKey: (DataChannelKey | null)[] = new Array<DataChannelKey | null>(BATCH).fill(null);
  private readonly sealRun = new PacketBatch(this.out.memory, new Uint32Array(BATCH), SLOT);
  private outCount = 0;
  // Single control datagrams.
  private readonly one = PacketBatch.allocate(1, SLOT);
  private readonly oneTo = new PeerAddresses(1);
  /** A keepalive ping, sealed in the single-datagram memory. */
  private readonly ping = new PacketBatch(this.one.memory, new Uint32Array(1), SLOT);
  private readonly slotBase: Uint32Array;
  private readonly ticker: NodeJS.Timeout;
  private readonly loadTimer: NodeJS.Timeout;
  private stopping = false;
  private dropLogSecond = -1;
  private dropLogCount = 0;
  private lastElu = performance.eventLoopUtilization();

  constructor(
    readonly config: ShardConfig,
    private readonly port: MessagePort,
  ) {
    this.counters = counterView(config.counters);
    this.socket = UdpSocket.adopt(config.socketFd, config.socketFamily);
    this.toTun = PacketRing.attach(config.toTunRing);
    this.tun = config.clientToClient ? null : TunDevice.adopt(config.tunFd, config.tunName);
    this.fromTun = PacketRing.attach(config.fromTunRing);
    this.responder = new StatelessResponder({ wrap: config.wrap, cookieKey: Buffer.from(config.cookieKey), handWindowS: config.handWindowS });
    this.peerIds = new PeerIdAllocator(config.shard, config.shardCount);
    this.slotBase = new Uint32Array(this.out.offsets);
    port.on('message', (message: MainToShard) => this.onMainMessage(message));
    this.socket.poll(POLL_READABLE, () => this.onReadable());
    this.ticker = setInterval(() => this.tick(), TICK_MS);
    this.loadTimer = setInterval(() => this.measureLoad(), 1000);
    void this.pumpFromTun();
    this.toMain({ type: 'ready' });
  }

  now(): number {
    return performance.now();
  }

  toMain(message: ShardToMain): void {
    this.port.postMessage(message);
  }

  /** The per-second counters of the clients whose traffic moved, and the floats, to the main thread. */
  private reportStats(id: number): void {
    const all = new Float64Array(this.byPeer.size * STATS_ROW);
    const floated: { peerId: number; realAddress: ClientStats['realAddress'] }[] = [];
    let rows = 0;
    for (const instance of this.byPeer.values()) {
      if (!instance.connected) continue;
      if (instance.writeStatsRow(all, rows * STATS_ROW)) rows++;
      if (instance.floated) {
        instance.floated = false;
        floated.push({ peerId: instance.peerId, realAddress: instance.realAddress });
      }
    }
    const moved = all.slice(0, rows * STATS_ROW);
    this.port.postMessage({ type: 'stats', id, rows: moved, floated } satisfies ShardToMain, [moved.buffer]);
  }

  log(level: number, message: string, category?: string): void {
    if (level <= this.config.verb) this.toMain({ type: 'log', level, message: `shard ${this.config.shard}: ${message}`, ...(category !== undefined ? { category } : {}) });
  }

  // ---- link -> tun ----

  private onReadable(): void {
    for (;;) {
      const n = this.socket.recv(this.recv, this.from);
      if (n === 0) break;
      this.processDatagrams(n);
      // Before the next receive reuses the memory the packets still sit in.
      this.flushTun();
      if (n < BATCH) break;
    }
    this.toTun.publish();
  }

  private processDatagrams(n: number): void {
    const memory = this.recv.memory;
    const offsets = this.recv.offsets;
    const lengths = this.recv.lengths;
    const counters = this.counters;
    let runKey: DataChannelKey | null = null;
    let runInstance: Instance | null = null;
    let runLength = 0;
    for (let i = 0; i < n; i++) {
      const at = offsets[i];
      const length = lengths[i];
      counters[COUNTER.linkPacketsIn]++;
      counters[COUNTER.linkBytesIn] += length;
      if (length === 0) {
        counters[COUNTER.dropShort]++;
        continue;
      }
      const op = memory[at] >> 3;
      if (op === P_DATA_V2 || op === P_DATA_V1) {
        let instance: Instance | undefined;
        if (op === P_DATA_V2 && length >= 4) {
          instance = this.byPeer.get((memory[at + 1] << 16) | (memory[at + 2] << 8) | memory[at + 3]);
        } else {
          instance = this.byAddress.get(addressKey(this.from.bytes, i));
        }
        if (instance === undefined) {
          counters[COUNTER.dropUnknownPeer]++;
          continue;
        }
        if (!instance.connected) {
          counters[COUNTER.dropNotConnected]++;
          continue;
        }
        const key = instance.keys[memory[at] & 7];
        if (key === null) {
          counters[COUNTER.dropBadKeyId]++;
          continue;
        }
        if (key !== runKey) {
          if (runLength > 0 && runKey !== null && runInstance !== null) this.openRun(runKey, runInstance, runLength);
          runKey = key;
          runInstance = instance;
          runLength = 0;
        }
        this.run.offsets[runLength] = at;
        this.run.lengths[runLength] = length;
        this.runIndex[runLength] = i;
        runLength++;
        continue;
      }
      this.onControlDatagram(i, op);
    }
    if (runLength > 0 && runKey !== null && runInstance !== null) this.openRun(runKey, runInstance, runLength);
  }

  private openRun(key: DataChannelKey, instance: Instance, count: number): void {
    const now = this.now();
    const before = this.dataCounters.drops.replay;
    const beforeTag = this.dataCounters.drops['bad-tag'];
    const accepted = key.decrypt(this.run, count, now, this.results);
    this.counters[COUNTER.dropReplay] += this.dataCounters.drops.replay - before;
    this.counters[COUNTER.dropBadTag] += this.dataCounters.drops['bad-tag'] - beforeTag;
    const memory = this.recv.memory;
    if (accepted > 0 && key === instance.pendingSendKey) instance.confirmKey(key);
    for (let j = 0; j < count; j++) {
      if (!this.results.ok(j)) continue;
      const index = this.runIndex[j];
      if (!this.sameAddress(instance, index)) this.float(instance, index);
      instance.received(now);
      const start = this.results.payloadOffsets[j];
      const length = this.results.payloadLengths[j];
      const kind = payloadKind(memory, start, length);
      if (kind === 'ping') continue;
      if (kind === 'occ') {
        this.onOcc(instance, start, length);
        continue;
      }
      if (!instance.ownsSource(memory, start, length)) {
        this.counters[COUNTER.dropSourceAddress]++;
        continue;
      }
      instance.tunnelActivity(length);
      clampMss(memory, start, length, instance.maxMss);
      if (this.tun !== null) {
        const k = this.tunOutCount++;
        this.tunOut.offsets[k] = start;
        this.tunOut.lengths[k] = length;
        this.counters[COUNTER.tunPacketsOut]++;
        this.counters[COUNTER.tunBytesOut] += length;
        continue;
      }
      const slot = this.toTun.reserve();
      if (slot < 0) {
        this.toTun.countDrops(1);
        this.counters[COUNTER.dropRingFull]++;
        continue;
      }
      Buffer.prototype.copy.call(memory, this.toTun.slotPayload(slot), 0, start, start + length);
      this.toTun.commit(length, instance.peerId);
      this.counters[COUNTER.tunPacketsOut]++;
      this.counters[COUNTER.tunBytesOut] += length;
    }
  }

  private flushTun(): void {
    const count = this.tunOutCount;
    if (count === 0 || this.tun === null) return;
    this.tunOutCount = 0;
    const written = this.tun.write(this.tunOut, count);
    // A full TUN queue: drop the rest, as OpenVPN drops when the device is not writable.
    if (written < count) this.counters[COUNTER.dropTunWrite] += count - written;
  }

  private sameAddress(instance: Instance, index: number): boolean {
    const bytes = this.from.bytes;
    const at = index * ADDRESS_SIZE;
    const own = instance.addressBytes;
    for (let k = 0; k < ADDRESS_SIZE; k++) if (bytes[at + k] !== own[k]) return false;
    return true;
  }

  /** An authenticated data packet from a new address: the client moved (OpenVPN's float). */
  private float(instance: Instance, index: number): void {
    const key = addressKey(this.from.bytes, index);
    const other = this.byAddress.get(key);
    if (other !== undefined && other !== instance) other.close('another client floated to its address');
    this.byAddress.delete(instance.addressKey);
    instance.addressBytes = this.from.bytes.slice(index * ADDRESS_SIZE, (index + 1) * ADDRESS_SIZE);
    instance.addressKey = key;
    const peer = this.from.get(index);
    instance.realAddress.family = peer.family;
    instance.realAddress.address = peer.address;
    instance.realAddress.port = peer.port;
    instance.floated = true;
    this.byAddress.set(key, instance);
    this.log(3, `${instance.describe()} floated`);
  }

  private onOcc(instance: Instance, start: number, length: number): void {
    const parsed = parseOccMessage(this.recv.memory, start, length);
    if (parsed.ok && parsed.message.op === 'exit') instance.close('client exit notification');
  }

  private onControlDatagram(index: number, op: number): void {
    const at = this.recv.offsets[index];
    const wire = Buffer.from(this.recv.memory.subarray(at, at + this.recv.lengths[index]));
    const key = addressKey(this.from.bytes, index);
    const existing = this.byAddress.get(key);
    if (existing !== undefined) {
      const isReset = op === P_CONTROL_HARD_RESET_CLIENT_V2 || op === P_CONTROL_HARD_RESET_CLIENT_V3;
      const peerSid = existing.session.peerSessionId;
      if (!isReset || peerSid === null || peerSid.equals(wire.subarray(1, 9))) {
        existing.controlBytesIn += wire.length;
        existing.session.receivePacket(wire);
        return;
      }
      // The client restarted with a new session from the same address.
      existing.close('client restarted its session');
    }
    const peer = this.from.get(index);
    if (this.stopping) {
      // As OpenVPN, no new sessions while shutting down: a client told RESTART reconnects at once
      // and would otherwise finish a handshake with this dying shard, then wait forever for a
      // PUSH_REPLY that the restarted server knows nothing about.
      this.counters[COUNTER.dropControl]++;
      this.logDrop(peer.address, peer.port, 'connection attempt ignored while the server is shutting down');
      return;
    }
    const result = this.responder.handle(wire, peer.address, peer.port, this.now());
    switch (result.action) {
      case 'drop':
        this.counters[COUNTER.dropControl]++;
        this.logDrop(peer.address, peer.port, result.reason);
        return;
      case 'reply':
        this.counters[COUNTER.statelessReplies]++;
        this.sendTo(this.from.bytes.subarray(index * ADDRESS_SIZE, (index + 1) * ADDRESS_SIZE), result.wire);
        return;
      case 'create': {
        const peerId = this.byPeer.size < this.config.maxClientsPerShard ? this.peerIds.acquire() : -1;
        if (peerId < 0) {
          this.counters[COUNTER.dropControl]++;
          this.log(1, `refusing ${peer.address}:${peer.port}: max-clients reached`);
          return;
        }
        const addressBytes = this.from.bytes.slice(index * ADDRESS_SIZE, (index + 1) * ADDRESS_SIZE);
        const instance = new Instance(peerId, addressBytes, key, { ...peer }, this, result.stateless);
        this.byPeer.set(peerId, instance);
        this.byAddress.set(key, instance);
        instance.controlBytesIn += wire.length;
        instance.session.start();
        instance.session.receivePacket(wire);
        return;
      }
    }
  }

  /**
   * A control packet from an unknown peer was refused (wrong tls-auth / tls-crypt key, bad
   * cookie, ...): the operator needs the reason, as OpenVPN's "TLS Error: ... from" lines give it,
   * but a flood of such packets must not become a flood of log lines, hence the per-second cap.
   * Verb 3, not OpenVPN's 1: some reasons are benign (late packets of a session just closed).
   */
  private logDrop(address: string, port: number, reason: string): void {
    const second = Math.floor(this.now() / 1000);
    if (second !== this.dropLogSecond) {
      this.dropLogSecond = second;
      this.dropLogCount = 0;
    }
    if (this.dropLogCount++ < DROP_LOGS_PER_SECOND) this.log(3, `TLS Error: control packet from ${address}:${port} dropped: ${reason}`, 'control-drop');
  }

  // ---- control datagrams out ----

  sendWire(instance: Instance, wire: Buffer): void {
    this.sendTo(instance.addressBytes, wire);
  }

  private sendTo(address: Uint8Array, wire: Uint8Array): void {
    if (wire.length > SLOT) return;
    this.one.set(0, wire);
    this.oneTo.bytes.set(address);
    this.socket.send(this.one, this.oneTo, 1);
    this.counters[COUNTER.linkPacketsOut]++;
    this.counters[COUNTER.linkBytesOut] += wire.length;
  }

  sendPing(instance: Instance): void {
    const key = instance.sendKey;
    if (key === null) return;
    const ping = this.ping;
    const base = this.one.offsets[0] + MAX_DATA_HEADROOM;
    ping.offsets[0] = base - key.headroom;
    ping.lengths[0] = writePingMessage(ping.memory, base);
    if (key.encrypt(ping, 1) !== 1) return;
    this.oneTo.bytes.set(instance.addressBytes);
    this.socket.send(ping, this.oneTo, 1);
    this.counters[COUNTER.linkPacketsOut]++;
    this.counters[COUNTER.linkBytesOut] += ping.lengths[0];
  }

  // ---- tun -> link ----

  private async pumpFromTun(): Promise<void> {
    const visit = (slot: Uint8Array, length: number, meta: number): void => this.queueFromTun(slot, length, meta);
    while (!this.stopping) {
      await this.fromTun.waitForData();
      if (this.stopping) break;
      while (this.fromTun.popBatch(BATCH, visit) > 0) this.flushOut();
    }
  }

  private queueFromTun(slot: Uint8Array, length: number, peerId: number): void {
    if (peerId === BROADCAST_PEER_ID) {
      for (const instance of this.byPeer.values()) this.queueFor(instance, slot, length);
      return;
    }
    const instance = this.byPeer.get(peerId);
    if (instance === undefined) {
      this.counters[COUNTER.dropUnknownPeer]++;
      return;
    }
    this.queueFor(instance, slot, length);
  }

  private queueFor(instance: Instance, slot: Uint8Array, length: number): void {
    const key = instance.sendKey;
    if (!instance.connected || key === null) {
      this.counters[COUNTER.dropNotConnected]++;
      return;
    }
    if (length + MAX_DATA_HEADROOM > SLOT) {
      this.counters[COUNTER.dropShort]++;
      return;
    }
    if (this.outCount === BATCH) this.flushOut();
    const j = this.outCount++;
    // Buffer's copy takes offsets, so no view is made per packet.
    Buffer.prototype.copy.call(slot, this.out.memory, this.slotBase[j] + MAX_DATA_HEADROOM, 0, length);
    clampMss(this.out.memory, this.slotBase[j] + MAX_DATA_HEADROOM, length, instance.maxMss);
    this.out.lengths[j] = length;
    this.outKey[j] = key;
    this.outTo.bytes.set(instance.addressBytes, j * ADDRESS_SIZE);
    instance.tunnelActivity(length);
    this.counters[COUNTER.tunPacketsIn]++;
    this.counters[COUNTER.tunBytesIn] += length;
  }

  /** Seals the queued packets (runs of one key per call) and sends them in one sendmmsg. */
  private flushOut(): void {
    const count = this.outCount;
    if (count === 0) return;
    this.outCount = 0;
    let start = 0;
    let sealed = 0;
    while (start < count) {
      const key = this.outKey[start]!;
      let end = start;
      while (end < count && this.outKey[end] === key) end++;
      const run = this.sealRun;
      for (let j = start; j < end; j++) {
        run.offsets[j - start] = this.slotBase[j] + MAX_DATA_HEADROOM - key.headroom;
        run.lengths[j - start] = this.out.lengths[j];
      }
      const done = key.encrypt(run, end - start);
      for (let j = start; j < end; j++) {
        const k = j - start;
        if (k >= done) {
          this.out.lengths[j] = 0;
          continue;
        }
        this.out.offsets[j] = run.offsets[k];
        this.out.lengths[j] = run.lengths[k];
        this.counters[COUNTER.linkBytesOut] += run.lengths[k];
        sealed++;
      }
      start = end;
    }
    for (let j = 0; j < count; j++) this.outKey[j] = null;
    const sent = this.socket.send(this.out, this.outTo, count);
    this.counters[COUNTER.linkPacketsOut] += Math.min(sent, sealed);
    for (let j = 0; j < count; j++) this.out.offsets[j] = this.slotBase[j];
  }

  // ---- timers, main thread ----

  private tick(): void {
    const now = this.now();
    for (const instance of this.byPeer.values()) instance.tick(now);
  }

  private measureLoad(): void {
    const elu = performance.eventLoopUtilization(this.lastElu);
    this.lastElu = performance.eventLoopUtilization();
    this.counters[COUNTER.eventLoopUtilization] = elu.utilization;
    const started = performance.now();
    setImmediate(() => {
      this.counters[COUNTER.eventLoopLagMs] = performance.now() - started;
    });
  }

  closed(instance: Instance): void {
    this.byPeer.delete(instance.peerId);
    if (this.byAddress.get(instance.addressKey) === instance) this.byAddress.delete(instance.addressKey);
    this.peerIds.release(instance.peerId);
  }

  private onMainMessage(message: MainToShard): void {
    switch (message.type) {
      case 'client-accept':
        this.byPeer.get(message.peerId)?.accept(message.assignment, this.config.push);
        break;
      case 'client-reject':
        this.byPeer.get(message.peerId)?.reject(message.reason);
        break;
      case 'client-kill':
        this.byPeer.get(message.peerId)?.kill(message.message, 'killed by the server');
        break;
      case 'stats-request':
        this.reportStats(message.id);
        break;
      case 'stop':
        void this.stop(message.notify);
        break;
      case 'client-pending-auth':
        this.byPeer.get(message.peerId)?.pendingAuth(message.extra, message.timeoutS);
        break;
      case 'set-verb':
        this.config.verb = message.verb;
        break;
    }
  }

  private async stop(notify: boolean): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    let told = 0;
    if (notify) {
      for (const instance of this.byPeer.values()) {
        if (instance.connected) {
          instance.kill('RESTART', 'server shutting down');
          told++;
        }
      }
    }
    if (told > 0) {
      // Let RESTART be sent and acknowledged (the instances close themselves after a delay).
      const until = this.now() + STOP_GRACE_MS;
      while (this.byPeer.size > 0 && this.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    for (const instance of [...this.byPeer.values()]) instance.close('server shutting down');
    clearInterval(this.ticker);
    clearInterval(this.loadTimer);
    this.socket.stopPoll();
    this.socket.close();
    this.fromTun.wake();
    this.toMain({ type: 'stopped' });
  }
}
