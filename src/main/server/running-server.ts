// A started server as the lifecycle and the operations side (status, management, metrics) see
// it: its clients and counters, the management commands' actions (kill, client-auth, verb,
// shard-restart), SIGUSR2 statistics, and the stop that ends the run.
import type { Options } from '../../shared/config';
import { readCounters, SHARD_COUNTERS } from '../../shared/counters';
import { faultInjectionEnabled, type ShardFault } from '../../shared/fault-injection';
import type { Logger } from '../../shared/log';
import type { ClientEvent, ClientRecord, ManagementVerdict, ServerSignal, ServerView } from '../ops/server-view';
import { renderStatus } from '../ops/status';
import { VERSION_BANNER } from '../version';
import type { Admission } from './admission';
import type { ClientEntry, ClientRegistry } from './clients';
import type { IfconfigPool } from './ifconfig-pool';
import type { PoolPersist } from './pool-persist';
import type { PerSecondTimers } from './server-timers';
import type { TunOffloadState } from '../../shared/native';
import type { ServerTun } from './server-tun';
import type { ShardPool, ShardTemplate } from './shard-pool';
import type { TunPump } from './tun-pump';
import type { KeyKeeper } from '../persist-key';
import { reloadServer, type Reloadable, type ReloadOutcome } from './reload';
import { fingerprintOptions } from './reload-plan';
import { UNDEF_COMMON_NAME } from '../../shared/session/peer-verify';

export interface RunningServer extends ServerView {
  readonly tunName: string;
  readonly port: number;
  readonly shards: ShardPool;
  readonly pump: TunPump;
  /** Stops serving: tells clients RESTART when `notify`, closes sockets, workers and TUN. */
  stop(notify: boolean, signal: ServerSignal): Promise<void>;
  /** SIGHUP with reload-mode hitless: applies `options` in place, or says what needs a restart. */
  reload(options: Options): ReloadOutcome;
  /** SIGUSR2: per-client and per-shard statistics to the log. */
  logStatistics(): void;
  /** Per-shard counters by name (metrics, tests). */
  shardCounters(): Record<string, number>[];
  /** ifconfig pool entries in use and free; null without a pool. */
  poolUsage(): { used: number; free: number } | null;
  /** The main thread's TUN descriptor's offload counts (the shards' are in their counters). */
  tunOffload(): TunOffloadState;
}

/** The management interface's subscribers to client events (>CLIENT: notifications). */
export class ClientEventHub {
  private readonly listeners = new Set<(event: ClientEvent) => void>();

  readonly emit = (event: ClientEvent): void => {
    for (const listener of this.listeners) listener(event);
  };

  subscribe(listener: (event: ClientEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** The parts of a started run. */
export interface ServerParts {
  /** The configuration this server runs (a hitless reload replaces it). */
  readonly options: Options;
  readonly keys: KeyKeeper;
  readonly statusVersion: 1 | 2 | 3;
  readonly logger: Logger;
  readonly onSignal: (signal: ServerSignal) => void;
  readonly tun: ServerTun;
  readonly port: number;
  readonly shards: ShardPool;
  readonly pump: TunPump;
  /** What a restarted shard starts with (its verb follows `verb`). */
  readonly template: ShardTemplate;
  readonly registry: ClientRegistry;
  readonly pool: IfconfigPool | null;
  readonly persist: PoolPersist | null;
  readonly admission: Admission;
  readonly clientEvents: ClientEventHub;
  readonly timers: PerSecondTimers;
}

export class StartedServer implements RunningServer {
  readonly title = VERSION_BANNER;
  readonly pid = process.pid;
  readonly statusVersion: 1 | 2 | 3;
  readonly tunName: string;
  readonly port: number;
  readonly shards: ShardPool;
  readonly pump: TunPump;

  /** What a hitless reload replaces: the options and the shards' template. */
  private readonly live: Reloadable;

  constructor(private readonly parts: ServerParts) {
    this.live = { ...parts, options: parts.options, fingerprint: fingerprintOptions(parts.options), template: parts.template };
    this.statusVersion = parts.statusVersion;
    this.tunName = parts.tun.name;
    this.port = parts.port;
    this.shards = parts.shards;
    this.pump = parts.pump;
  }

  clients(): readonly ClientRecord[] {
    return this.parts.registry.records();
  }

  loadStats(): { nclients: number; bytesIn: number; bytesOut: number } {
    const registry = this.parts.registry;
    let bytesIn = registry.totalBytesIn;
    let bytesOut = registry.totalBytesOut;
    for (const entry of registry.entries()) {
      bytesIn += entry.stats?.bytesReceived ?? 0;
      bytesOut += entry.stats?.bytesSent ?? 0;
    }
    return { nclients: registry.records().length, bytesIn, bytesOut };
  }

  killByCommonName(commonName: string): number {
    return this.kill((e) => e.commonName === commonName, null);
  }

  killByAddress(address: string, port: number): number {
    return this.kill((e) => e.realAddress.address === address && e.realAddress.port === port, null);
  }

  clientKill(cid: number, message?: string): boolean {
    return this.kill((e) => e.cid === cid, message ?? 'RESTART') > 0;
  }

  signal(signal: ServerSignal): void {
    this.parts.onSignal(signal);
  }

  clientAuth(cid: number, keyId: number, verdict: ManagementVerdict): boolean {
    return this.parts.admission.clientAuth(cid, keyId, verdict);
  }

  clientPendingAuth(cid: number, keyId: number, extra: string, timeoutS: number): boolean {
    return this.parts.admission.clientPendingAuth(cid, keyId, extra, timeoutS);
  }

  verb(): number {
    return this.parts.logger.verb;
  }

  setVerb(level: number): void {
    this.parts.logger.verb = level;
    this.live.template.verb = level;
    this.shards.broadcast({ type: 'set-verb', verb: level });
  }

  restartShard(index: number): boolean {
    if (!Number.isInteger(index) || index < 0 || index >= this.shards.size) return false;
    this.parts.logger.log(1, `shard ${index}: restart requested by the management interface`);
    void this.shards.kill(index);
    return true;
  }

  injectShardFault(index: number, fault: ShardFault): boolean {
    if (!faultInjectionEnabled() || !Number.isInteger(index) || index < 0 || index >= this.shards.size) return false;
    this.parts.logger.log(1, `shard ${index}: fault injection: '${fault}' requested by the management interface`);
    this.shards.post(index, { type: 'fault', fault });
    return true;
  }

  onClientEvent(listener: (event: ClientEvent) => void): () => void {
    return this.parts.clientEvents.subscribe(listener);
  }

  shardCounters(): Record<string, number>[] {
    return this.shards.shards.map((s) => readCounters(s.counters));
  }

  poolUsage(): { used: number; free: number } | null {
    const pool = this.parts.pool;
    return pool === null ? null : { used: pool.used, free: pool.free };
  }

  /**
   * SIGUSR2: OpenVPN's status report (CLIENT LIST, ROUTING TABLE, GLOBAL STATS in the configured
   * status-version) to the log, as operators grep it, then shardvpn's per-client, per-shard and
   * TUN figures.
   */
  logStatistics(): void {
    const log = (line: string): void => this.parts.logger.log(0, line);
    for (const line of renderStatus(this, this.statusVersion, Date.now() / 1000)) log(line);
    for (const record of this.parts.registry.records()) {
      log(
        `${record.commonName ?? UNDEF_COMMON_NAME},${record.realAddress.address}:${record.realAddress.port},${record.virtualAddress ?? ''},${record.bytesReceived},${record.bytesSent},peer-id ${record.peerId},shard ${record.shard}`,
      );
    }
    this.shards.shards.forEach((shard, index) => {
      const counters = readCounters(shard.counters);
      log(
        `shard ${index}: ${SHARD_COUNTERS.map((name) => `${name}=${Math.round(counters[name] * 100) / 100}`).join(' ')} restarts=${shard.restarts}`,
      );
      for (const [name, ring] of [
        ['to-tun', shard.toTun],
        ['from-tun', shard.fromTun],
      ] as const) {
        log(
          `shard ${index} ${name} ring: size=${ring.size} drops=${ring.drops} sleeps=${ring.sleeps} notifies=${ring.notifies} missedWakes=${ring.missedWakes}`,
        );
      }
    });
    const p = this.pump.counters;
    const o = this.tunOffload();
    log(
      `tun: read ${p.tunRead} written ${p.tunWritten} no-route ${p.noRoute} client-to-client ${p.clientToClient} queue-crossings ${p.queueCrossings} ring-full ${p.ringFull} write-drops ${p.tunWriteDrops}` +
        ` superpackets ${o.superpackets} segments ${o.segments} coalesced-writes ${o.coalescedWrites} coalesced-packets ${o.coalescedPackets} offload-drops ${o.readDrops} coalesce-refusals ${o.coalesceRefusals}`,
    );
  }

  /** The main thread's TUN descriptor's offload counts (the shards' are in their counters). */
  tunOffload(): TunOffloadState {
    return this.parts.tun.device.offload;
  }

  reload(options: Options): ReloadOutcome {
    return reloadServer(this.live, options);
  }

  /** Ends the run; `signal` decides whether a persist-tun device stays for the next one. */
  async stop(notify: boolean, signal: ServerSignal): Promise<void> {
    const { admission, timers, persist, tun, logger } = this.parts;
    admission.stop();
    timers.stop();
    await this.shards.stop(notify);
    this.pump.stop();
    persist?.save();
    await tun.close(signal, logger);
    logger.log(1, 'server stopped');
  }

  /** Tells the shards to close the matching clients (with `message` as RESTART's text, or silently). */
  private kill(matches: (entry: ClientEntry) => boolean, message: string | null): number {
    const entries = [...this.parts.registry.entries()].filter(matches);
    for (const entry of entries) this.shards.post(entry.shard, { type: 'client-kill', peerId: entry.peerId, message });
    return entries.length;
  }
}
