// The shard workers of a server: the main thread opens every socket of the SO_REUSEPORT group in
// order and keeps them for the server's life (a socket's position in the group is the index the
// steering program returns), and hands each worker its socket's descriptor. A worker that dies
// is replaced on the same socket, with fresh rings. With proto tcp-server the group is of TCP
// listeners, one per shard: the kernel spreads new connections over them, and each worker
// accepts and serves its own (the worker makes its own copy of the descriptor, which its server
// closes when the worker ends, so the original stays for the replacement; a copy made here would
// leak whenever a worker died before taking it over).
// A replacement worker keeps its predecessor's counters (totals go on counting), except the gauges
// the dead worker can no longer bring down (clients connected, TCP connections), which restart at 0.
// A worker that keeps dying soon after its start is replaced after a growing delay (restart-backoff.ts).
import path from 'node:path';
import { Worker } from 'node:worker_threads';

import { performance } from 'node:perf_hooks';

import { COUNTER, createCounterBuffer, counterView } from '../../shared/counters';
import { closeDescriptor, openTcpListener, socketPort, UdpSocket, type SocketRouting } from '../../shared/native';
import { PacketRing } from '../../shared/ring';
import type { MainToShard, ShardConfig, ShardSettings, ShardToMain } from '../../shared/shard-protocol';
import { RestartBackoff } from './restart-backoff';
import { steeringProgram } from './steering';

const RING_SLOTS = 4096;
const RING_SLOT_SIZE = 2048;
/**
 * A shard's V8 young generation, at most. A shard's garbage is short-lived (a flood of spoofed
 * packets, handshake buffers), and V8 grows the young generation (to 48 MiB by default) under
 * such a burst and keeps it: two shards added about 14 MiB of RSS during a 1,000,000-packet
 * flood, about 5 MiB with this cap (bench/flood.bench.ts).
 */
const SHARD_YOUNG_GENERATION_MB = 6;
export const SHARD_WORKER = path.join(__dirname, '..', '..', 'workers', 'shard-worker.js');

/** ShardConfig less the per-shard parts that the pool fills in. */
export type ShardTemplate = ShardSettings;

/** A shard's socket in the group: a UDP socket or a TCP listener, kept by the main thread. */
export interface ShardSocket {
  /** The descriptor a (new) worker gets; a TCP worker listens on its own dup of it. */
  readonly fd: number;
  localPort(): number;
  close(): void;
}

function udpShardSocket(socket: UdpSocket): ShardSocket {
  return { fd: socket.fd, localPort: () => socket.localAddress().port, close: () => socket.close() };
}

function tcpShardSocket(fd: number): ShardSocket {
  let open = true;
  return {
    fd,
    localPort: () => socketPort(fd),
    // Once only: a second close could hit another descriptor that took the number.
    close: () => {
      if (open) closeDescriptor(fd);
      open = false;
    },
  };
}

export interface ShardHandle {
  readonly index: number;
  worker: Worker;
  toTun: PacketRing;
  fromTun: PacketRing;
  readonly counters: Float64Array;
  readonly counterBuffer: SharedArrayBuffer;
  readonly socket: ShardSocket;
  /** The shard's queue of a multi-queue TUN device (kept by the main thread); -1: none. */
  readonly tunQueueFd: number;
  /** performance.now() when the running worker said it was ready; null while it has not (the one record of readiness). */
  readyAt: number | null;
  /** Workers that died and were replaced (shardvpn_shard_restarts_total). */
  restarts: number;
  /** performance.now() when the last replaced worker exited; null before any. */
  exitedAt: number | null;
  /** The delay before a dead worker's replacement starts. */
  readonly backoff: RestartBackoff;
  /** The replacement waiting for its delay; null when a worker runs. */
  respawnTimer: NodeJS.Timeout | null;
  /** The running worker is being ended on purpose (kill): its exit is no failure. */
  killed: boolean;
}

/** Gauges a worker keeps up and down; its replacement starts them from 0. */
const GAUGES = [
  COUNTER.clientsConnected,
  COUNTER.tcpConnections,
  COUNTER.eventLoopLagMs,
  COUNTER.eventLoopUtilization,
  COUNTER.heapUsedBytes,
  COUNTER.heapTotalBytes,
  COUNTER.externalMemoryBytes,
];

export interface ShardPoolEvents {
  message(shard: ShardHandle, message: ShardToMain): void;
  /**
   * A worker died unexpectedly; its rings are new already and its replacement starts after
   * `restartDelayMs` (0: it has started).
   */
  died(shard: ShardHandle, reason: string, restartDelayMs: number): void;
}

export interface SocketSpec {
  family: 4 | 6;
  dualStack: boolean;
  address: string;
  port: number;
  rcvbuf?: number;
  sndbuf?: number;
  /** UDP GSO and GRO (udp-offload). */
  offload: boolean;
  /** --mark / --bind-dev. */
  routing?: SocketRouting;
}

export class ShardPool {
  readonly shards: ShardHandle[] = [];
  private stopping = false;

  private constructor(
    private template: ShardTemplate,
    private readonly family: 4 | 6,
    private readonly events: ShardPoolEvents,
    private readonly workerScript: string,
  ) {}

  /** `tunQueueFd(index)`: shard index's TUN queue descriptor, -1 on the single-queue path. */
  static open(
    count: number,
    spec: SocketSpec,
    template: ShardTemplate,
    events: ShardPoolEvents,
    tunQueueFd: (index: number) => number = () => -1,
    /** The worker's code; tests give a script that fails. */
    workerScript: string = SHARD_WORKER,
  ): ShardPool {
    const pool = new ShardPool(template, spec.family, events, workerScript);
    refuseTakenPort(template.transport, spec);
    const sockets = template.transport === 'tcp' ? openTcpGroup(count, spec) : openUdpGroup(count, spec);
    sockets.forEach((socket, index) => {
      const counterBuffer = createCounterBuffer();
      const handle: ShardHandle = {
        index,
        socket,
        tunQueueFd: tunQueueFd(index),
        counterBuffer,
        counters: counterView(counterBuffer),
        toTun: PacketRing.create(RING_SLOTS, RING_SLOT_SIZE),
        fromTun: PacketRing.create(RING_SLOTS, RING_SLOT_SIZE),
        worker: null as unknown as Worker,
        readyAt: null,
        restarts: 0,
        exitedAt: null,
        backoff: new RestartBackoff(),
        respawnTimer: null,
        killed: false,
      };
      pool.shards.push(handle);
    });
    // Spawn only once every handle is in place: a worker's shardCount (the stride of its
    // peer-ids, which the steering program and the TUN pump divide by) is the pool's size, and
    // spawning inside the loop gave shard 0 a count of 1, so its peer-ids collided with shard 1's.
    for (const handle of pool.shards) pool.spawn(handle);
    return pool;
  }

  private spawn(handle: ShardHandle): void {
    const config: ShardConfig = {
      ...this.template,
      shard: handle.index,
      shardCount: this.shardsCount(),
      socketFd: handle.socket.fd,
      socketFamily: this.family,
      tunQueueFd: handle.tunQueueFd,
      toTunRing: handle.toTun.buffer,
      fromTunRing: handle.fromTun.buffer,
      counters: handle.counterBuffer,
    };
    handle.respawnTimer = null;
    handle.killed = false;
    const worker = new Worker(this.workerScript, {
      workerData: config,
      name: `shard-${handle.index}`,
      resourceLimits: { maxYoungGenerationSizeMb: SHARD_YOUNG_GENERATION_MB },
    });
    handle.worker = worker;
    handle.readyAt = null;
    worker.on('message', (message: ShardToMain) => {
      if (message.type === 'ready') handle.readyAt = performance.now();
      this.events.message(handle, message);
    });
    worker.on('error', (error) => {
      this.events.message(handle, { type: 'log', level: 0, message: `shard ${handle.index} failed: ${error.stack ?? error.message}` });
    });
    worker.on('exit', (code) => {
      if (this.stopping || handle.worker !== worker) return;
      // Replace it on the same socket; the old rings may hold half-read state. The dead worker
      // writes its counters no more and the new one has not started: this thread may write them.
      const now = performance.now();
      const delay = handle.killed ? 0 : handle.backoff.exited(handle.readyAt === null ? null : now - handle.readyAt);
      handle.restarts++;
      handle.exitedAt = now;
      handle.readyAt = null;
      for (const gauge of GAUGES) handle.counters[gauge] = 0;
      handle.toTun = PacketRing.create(RING_SLOTS, RING_SLOT_SIZE);
      handle.fromTun = PacketRing.create(RING_SLOTS, RING_SLOT_SIZE);
      if (delay === 0) this.spawn(handle);
      else handle.respawnTimer = setTimeout(() => this.spawn(handle), delay);
      this.events.died(handle, `exit code ${code}`, delay);
    });
  }

  private shardsCount(): number {
    return Math.max(this.shards.length, 1);
  }

  get size(): number {
    return this.shards.length;
  }

  post(index: number, message: MainToShard): void {
    this.shards[index]?.worker.postMessage(message);
  }

  /** A hitless reload: the running shards and any shard started later serve new clients with `template`. */
  reconfigure(template: ShardTemplate): void {
    this.template = template;
    this.broadcast({ type: 'reconfigure', template });
  }

  broadcast(message: MainToShard): void {
    for (const shard of this.shards) shard.worker.postMessage(message);
  }

  /** Resolves when every worker is ready. */
  async ready(timeoutMs = 10_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!this.shards.every((s) => s.readyAt !== null)) {
      if (Date.now() > until) throw new Error('shard workers did not start within 10 s');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Asks each shard to stop (telling clients when `notify`), waits, then ends the workers. */
  async stop(notify: boolean, timeoutMs = 4000): Promise<void> {
    this.stopping = true;
    for (const shard of this.shards) if (shard.respawnTimer !== null) clearTimeout(shard.respawnTimer);
    const stopped = this.shards.map(
      (shard) =>
        new Promise<void>((resolve) => {
          // A worker waiting for its replacement has exited already.
          if (shard.respawnTimer !== null) {
            resolve();
            return;
          }
          const timer = setTimeout(resolve, timeoutMs);
          shard.worker.on('message', (message: ShardToMain) => {
            if (message.type === 'stopped') {
              clearTimeout(timer);
              resolve();
            }
          });
          shard.worker.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
        }),
    );
    this.broadcast({ type: 'stop', notify });
    await Promise.all(stopped);
    await Promise.all(this.shards.map((shard) => shard.worker.terminate()));
    for (const shard of this.shards) shard.socket.close();
  }

  /** Ends one worker and replaces it at once (management shard-restart, a stuck shard). */
  async kill(index: number): Promise<void> {
    const shard = this.shards[index];
    if (shard === undefined || this.stopping) return;
    if (shard.respawnTimer !== null) {
      // Waiting out its back-off: the operator's restart starts it now.
      clearTimeout(shard.respawnTimer);
      this.spawn(shard);
      return;
    }
    shard.killed = true;
    await shard.worker.terminate();
  }
}

/** UDP sockets in one SO_REUSEPORT group, with the steering program that picks a client's shard. */
function openUdpGroup(count: number, spec: SocketSpec): ShardSocket[] {
  const sockets: UdpSocket[] = [];
  try {
    for (let i = 0; i < count; i++) {
      sockets.push(
        UdpSocket.open({
          family: spec.family,
          dualStack: spec.dualStack,
          reusePort: true,
          address: spec.address,
          port: spec.port,
          ...(spec.rcvbuf !== undefined ? { rcvbuf: spec.rcvbuf } : {}),
          ...(spec.sndbuf !== undefined ? { sndbuf: spec.sndbuf } : {}),
          ...(spec.routing !== undefined ? { routing: spec.routing } : {}),
          offload: spec.offload,
        }),
      );
    }
    // One program for the whole group; a single shard needs no steering.
    if (count > 1) sockets[0]!.attachReusePortCbpf(steeringProgram(count));
  } catch (error) {
    for (const socket of sockets) socket.close();
    throw error;
  }
  return sockets.map(udpShardSocket);
}

/** TCP listeners in one SO_REUSEPORT group: the kernel hashes each new connection to one. */
function openTcpGroup(count: number, spec: SocketSpec): ShardSocket[] {
  const fds: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      fds.push(
        openTcpListener({
          family: spec.family,
          dualStack: spec.dualStack,
          address: spec.address,
          port: spec.port,
          reusePort: true,
          ...(spec.routing !== undefined ? { routing: spec.routing } : {}),
        }),
      );
    }
  } catch (error) {
    for (const fd of fds) closeDescriptor(fd);
    throw error;
  }
  return fds.map(tcpShardSocket);
}

/**
 * SO_REUSEPORT would let a second server on the same port join our group and share its clients
 * silently. Like OpenVPN, refuse instead: a plain bind (no SO_REUSEPORT) of the address and port
 * fails with EADDRINUSE while any socket holds them, our own group of another run included.
 */
function refuseTakenPort(transport: 'udp' | 'tcp', spec: SocketSpec): void {
  if (spec.port === 0) return;
  // With the group's device and mark, so that a VRF's address binds as it will for the group (the
  // group's own sockets report what could not be set).
  const routing = spec.routing === undefined ? {} : { routing: { ...spec.routing, onProblem: () => undefined } };
  try {
    if (transport === 'tcp') {
      closeDescriptor(
        openTcpListener({
          family: spec.family,
          dualStack: spec.dualStack,
          address: spec.address,
          port: spec.port,
          reusePort: false,
          ...routing,
        }),
      );
    } else {
      UdpSocket.open({ family: spec.family, dualStack: spec.dualStack, address: spec.address, port: spec.port, ...routing }).close();
    }
  } catch (error) {
    const message = (error as Error).message;
    if (!/EADDRINUSE/.test(message)) throw error;
    throw new Error(
      `${transport.toUpperCase()} ${spec.address} port ${spec.port} is in use by another process (another shardvpn or openvpn?): ${message}`,
      { cause: error },
    );
  }
}
