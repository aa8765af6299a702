// A shard (OpenVPN's tunnel_server_loop, one per worker thread): its own UDP socket of the
// server's SO_REUSEPORT group, the clients the kernel steers to it, their control sessions and
// their data-channel crypto.
//   link -> TUN (link-in.ts): the shard writes decrypted packets to the main thread's TUN device
//     itself (same process, the descriptor is shared), except with client-to-client, where they
//     go on the to-tun ring so the main thread can hand packets for other clients to their shards;
//   TUN -> link (tun-in.ts): packets for our clients come from the main thread's from-tun ring
//     and, with tun-queues shard, from the shard's own TUN queue (tun-queue-in.ts), which it also
//     writes its clients' packets to;
//   control packets (control.ts), per-client state (client.ts).
// This file ties them together: timers, messages from and to the main thread, stats, stop.
import { performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import type { MessagePort } from 'node:worker_threads';

import { COUNTER, counterView, type ShardCounterName } from '../../shared/counters';
import { CompressFramer } from '../../shared/protocol/compress-framing';
import type { LinkIO, TunIO } from '../../shared/io';
import { shrinkJsHeap, type TunOffloadState, type UdpOffloadState } from '../../shared/native';
import { newDataChannelCounters } from '../../shared/protocol/data-channel';
import { PacketRing } from '../../shared/ring';
import { RouteTable } from '../../shared/route-table';
import {
  STATS_ROW,
  type ClientAssignment,
  type ClientStats,
  type MainToShard,
  type ShardConfig,
  type ShardSettings,
  type ShardToMain,
} from '../../shared/shard-protocol';
import type { ShardClient, ShardClientHost } from './client';
import { TickWheel } from '../../shared/tick-wheel';
import { ClientTable } from './clients';
import { ControlIn } from './control';
import { injectFault } from './fault-injection';
import { LinkIn } from './link-in';
import { LinkOut } from './link-out';
import { TunIn } from './tun-in';
import { TunQueueIn } from './tun-queue-in';
import { icmp6NoRoute } from '../../shared/protocol/block-ipv6';
import { TICK_MS } from './sizes';

const STOP_GRACE_MS = 1500;

/**
 * A link whose peers are connections (TCP): the shard tells it when it drops a client, it tells
 * the shard when a connection is gone, and asks which connections hold a client.
 */
export interface ConnectedPeers {
  closePeer(key: string): void;
  onClosed: (key: string) => void;
  hasClient: (key: string) => boolean;
}

/** The shard's packet devices: its UDP socket, and the TUN device when it writes TUN itself. */
export interface ShardIO {
  link: LinkIO;
  /** Set when `link` carries TCP connections. */
  peers?: ConnectedPeers;
  /** null: decrypted packets go through the to-tun ring (client-to-client). */
  tun: TunIO | null;
  /** tun-queues shard: the shard's own TUN queue, read here (and written as `tun` without client-to-client). */
  tunQueue?: TunIO;
  /** The UDP socket's GSO/GRO counts, copied into the shard counters each tick. */
  offload?: () => UdpOffloadState;
  /** The TUN descriptor's offload counts (tun-offload), copied likewise. */
  tunOffload?: () => TunOffloadState;
}

/** Shard counter <- field of the socket's offload counts (udp-offload). */
const UDP_OFFLOAD_COUNTERS: readonly [ShardCounterName, keyof UdpOffloadState][] = [
  ['udpGsoDatagrams', 'gsoDatagrams'],
  ['udpGsoMessages', 'gsoMessages'],
  ['udpGsoFallbacks', 'gsoFallbacks'],
  ['udpGroMessages', 'groMessages'],
  ['udpGroDatagrams', 'groDatagrams'],
  ['udpCoalesceWaits', 'coalesceWaits'],
];
/** Shard counter <- field of the TUN descriptor's offload counts (tun-offload). */
const TUN_OFFLOAD_COUNTERS: readonly [ShardCounterName, keyof TunOffloadState][] = [
  ['tunSuperpacketsRead', 'superpackets'],
  ['tunSuperpacketSegments', 'segments'],
  ['tunCoalescedWrites', 'coalescedWrites'],
  ['tunCoalescedPackets', 'coalescedPackets'],
  ['dropTunOffload', 'readDrops'],
  ['tunCoalesceRefusals', 'coalesceRefusals'],
];

function copyInto<S>(counters: Float64Array, state: S, fields: readonly [ShardCounterName, keyof S][]): void {
  for (const [counter, field] of fields) counters[COUNTER[counter]] = Number(state[field]);
}

export class Shard implements ShardClientHost {
  readonly counters: Float64Array;
  readonly dataCounters = newDataChannelCounters();
  private readonly link: LinkIO;
  private readonly peers: ConnectedPeers | null;
  private readonly offload: (() => UdpOffloadState) | null;
  private readonly tunOffload: (() => TunOffloadState) | null;
  private readonly clients: ClientTable;
  private readonly control: ControlIn;
  private readonly linkIn: LinkIn;
  private readonly linkOut: LinkOut;
  private readonly tunIn: TunIn;
  /** tun-queues shard: our clients' addresses and iroutes, and the reader of our TUN queue. */
  private readonly ownRoutes = new RouteTable();
  private readonly tunQueueIn: TunQueueIn | null;
  private readonly ticker: NodeJS.Timeout;
  private readonly loadTimer: NodeJS.Timeout;
  private stopping = false;
  /** Which clients a tick looks at: the hot ones and those whose next timer is due. */
  private readonly wheel = new TickWheel<ShardClient>(TICK_MS);
  private statsScratch = new Float64Array(0);
  private lastElu = performance.eventLoopUtilization();

  constructor(
    public config: ShardConfig,
    private readonly port: MessagePort,
    io: ShardIO,
  ) {
    this.counters = counterView(config.counters);
    this.link = io.link;
    this.clients = new ClientTable(config.shard, config.shardCount, config.maxClientsPerShard);
    this.peers = io.peers ?? null;
    this.offload = io.offload ?? null;
    this.tunOffload = io.tunOffload ?? null;
    if (this.peers !== null) {
      const clients = this.clients;
      this.peers.hasClient = (key) => clients.atAddress(key) !== undefined;
      // OpenVPN's multi_tcp: the connection is the client; when it goes, so does the client.
      this.peers.onClosed = (key) => clients.atAddress(key)?.close('connection reset by peer');
    }
    const framer = new CompressFramer(config.compressFraming);
    this.linkOut = new LinkOut(io.link, this.counters, framer);
    this.control = new ControlIn(this, this.clients, this.linkOut);
    const toTun = PacketRing.attach(config.toTunRing);
    this.linkIn = new LinkIn(this, io.link, io.tun, toTun, this.clients, this.control, framer, io.peers === undefined);
    // Each part frames with its own instance: the framer keeps a result between calls.
    this.tunIn = new TunIn(
      PacketRing.attach(config.fromTunRing),
      this.clients,
      this.linkOut,
      this.counters,
      new CompressFramer(config.compressFraming),
    );
    // The to-tun ring has one producer, this thread: link-in and the queue reader take turns on it.
    this.tunQueueIn = io.tunQueue !== undefined ? new TunQueueIn(io.tunQueue, this.ownRoutes, this.tunIn, toTun, this.counters) : null;
    const queueIn = this.tunQueueIn;
    if (queueIn !== null && io.tun === io.tunQueue) this.linkIn.onTunWritten = () => queueIn.drain();
    const block = config.blockIpv6;
    if (block !== null) {
      const tunIn = this.tunIn;
      // Rare (a client's IPv6 under block-ipv6): each answer is sealed and sent at once.
      this.linkIn.onBlockedIpv6 = (client, memory, start, length) => {
        const answer = icmp6NoRoute(memory, start, length, block.source, block.tunMtu);
        tunIn.queueAnswer(client, answer);
        tunIn.flush();
      };
    }
    port.on('message', (message: MainToShard) => this.onMainMessage(message));
    this.linkIn.start();
    this.tunQueueIn?.start();
    this.ticker = setInterval(() => this.tick(), TICK_MS);
    this.loadTimer = setInterval(() => this.measureLoad(), 1000);
    void this.tunIn.run();
    this.toMain({ type: 'ready' });
  }

  now(): number {
    return performance.now();
  }

  toMain(message: ShardToMain): void {
    this.port.postMessage(message);
  }

  log(level: number, message: string, category?: string): void {
    if (level <= this.config.verb)
      this.toMain({
        type: 'log',
        level,
        message: `shard ${this.config.shard}: ${message}`,
        ...(category !== undefined ? { category } : {}),
      });
  }

  sendWire(client: ShardClient, wire: Buffer): void {
    this.linkOut.sendTo(client.addressBytes, wire);
  }

  sendPing(client: ShardClient): void {
    this.linkOut.sendPing(client);
  }

  closed(client: ShardClient): void {
    this.wheel.remove(client);
    this.clients.remove(client);
    this.ownRoutes.forget(client.peerId);
    this.peers?.closePeer(client.addressKey);
  }

  wake(client: ShardClient): void {
    this.wheel.wake(client);
  }

  private tick(): void {
    const now = this.now();
    this.wheel.tick(now, (client) => client.tick(now));
    this.linkOut.flushPings();
    this.copyOffloadCounters();
  }

  /** The socket and the TUN descriptor keep their own offload counts (in the addon); /metrics reads the shard counters. */
  private copyOffloadCounters(): void {
    if (this.offload !== null) copyInto(this.counters, this.offload(), UDP_OFFLOAD_COUNTERS);
    if (this.tunOffload !== null) copyInto(this.counters, this.tunOffload(), TUN_OFFLOAD_COUNTERS);
  }

  private measureLoad(): void {
    const elu = performance.eventLoopUtilization(this.lastElu);
    this.lastElu = performance.eventLoopUtilization();
    this.counters[COUNTER.eventLoopUtilization] = elu.utilization;
    const heap = getHeapStatistics();
    this.counters[COUNTER.heapUsedBytes] = heap.used_heap_size;
    this.counters[COUNTER.heapTotalBytes] = heap.total_heap_size;
    this.counters[COUNTER.externalMemoryBytes] = heap.external_memory;
    const started = performance.now();
    setImmediate(() => {
      this.counters[COUNTER.eventLoopLagMs] = performance.now() - started;
    });
  }

  /** The per-second counters of the clients whose traffic moved, and the floats, to the main thread. */
  private reportStats(id: number): void {
    // One scratch table for every report (grown as clients come): a new one per second would be
    // clients x STATS_ROW x 8 bytes of garbage each time, for the few rows an idle second moves.
    if (this.statsScratch.length < this.clients.size * STATS_ROW) this.statsScratch = new Float64Array(this.clients.size * STATS_ROW * 2);
    const all = this.statsScratch;
    const floated: { peerId: number; realAddress: ClientStats['realAddress'] }[] = [];
    let rows = 0;
    for (const client of this.clients.values()) {
      if (!client.connected) continue;
      if (client.writeStatsRow(all, rows * STATS_ROW)) rows++;
      if (client.floated) {
        client.floated = false;
        floated.push({ peerId: client.peerId, realAddress: client.realAddress });
      }
    }
    const moved = all.slice(0, rows * STATS_ROW);
    this.port.postMessage({ type: 'stats', id, rows: moved, floated } satisfies ShardToMain, [moved.buffer]);
  }

  private onMainMessage(message: MainToShard): void {
    switch (message.type) {
      case 'client-accept': {
        const client = this.clients.byPeerId(message.peerId);
        client?.accept(message.assignment, this.config.push);
        if (client?.connected === true && this.tunQueueIn !== null) this.learnRoutes(client.peerId, message.assignment);
        break;
      }
      case 'client-reject':
        this.clients.byPeerId(message.peerId)?.reject(message.reason);
        break;
      case 'client-kill':
        this.clients.byPeerId(message.peerId)?.kill(message.message, 'killed by the server');
        break;
      case 'stats-request':
        this.reportStats(message.id);
        break;
      case 'shrink-heap':
        shrinkJsHeap();
        break;
      case 'stop':
        void this.stop(message.notify);
        break;
      case 'client-pending-auth':
        this.clients.byPeerId(message.peerId)?.pendingAuth(message.extra, message.timeoutS);
        break;
      case 'set-verb':
        this.config.verb = message.verb;
        break;
      case 'reconfigure':
        this.reconfigure(message.template);
        break;
      case 'fault':
        if (injectFault(this.config.shard, message.fault)) this.log(1, `fault injection: failing with '${message.fault}'`);
        break;
    }
  }

  /** A client of ours went live: its addresses and iroutes, so its packets on our TUN queue stay here. */
  private learnRoutes(peerId: number, assignment: ClientAssignment): void {
    const routes = this.ownRoutes;
    try {
      if (assignment.virtual4 !== null) routes.learnHost4(assignment.virtual4, peerId);
      if (assignment.virtual6 !== null) routes.learnHost6(assignment.virtual6, peerId);
      for (const r of assignment.iroutes4) routes.learnIroute4(r.network, r.bits, peerId);
      for (const r of assignment.iroutes6) routes.learnIroute6(r.network, r.bits, peerId);
    } catch (error) {
      // The main thread's table learned the same text; what we cannot learn crosses to it.
      this.log(1, `peer-id ${peerId}: route not learned: ${(error as Error).message}`);
    }
  }

  /**
   * A hitless reload: sessions that start from now on read the new settings from `config` (TLS
   * material, push list, timers, ciphers); connected clients keep the keys, timers and session
   * they have. The control-channel wrap and the cookie key cannot change on a running server
   * (a change of tls-auth / tls-crypt restarts it), so the ones in use are kept.
   */
  private reconfigure(template: ShardSettings): void {
    this.config = { ...this.config, ...template, wrap: this.config.wrap, cookieKey: this.config.cookieKey };
  }

  private async stop(notify: boolean): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.control.acceptingClients = false;
    this.tunIn.stop();
    let told = 0;
    if (notify) {
      for (const client of this.clients.values()) {
        if (client.connected) {
          client.kill('RESTART', 'server shutting down');
          told++;
        }
      }
    }
    if (told > 0) {
      // Let RESTART be sent and acknowledged (the clients close themselves after a delay).
      const until = this.now() + STOP_GRACE_MS;
      while (this.clients.size > 0 && this.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    for (const client of [...this.clients.values()]) client.close('server shutting down');
    clearInterval(this.ticker);
    clearInterval(this.loadTimer);
    this.linkIn.stop();
    this.tunQueueIn?.stop();
    this.link.close();
    this.toMain({ type: 'stopped' });
  }
}
