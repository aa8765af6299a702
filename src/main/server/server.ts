// Server mode (OpenVPN's tunnel_server): the main thread opens the TUN device, owns the route
// table, the ifconfig pool and the per-second timers, starts the shard workers and moves packets
// between TUN and their rings. One call of startServer is one run of OpenVPN's inner loop; the
// lifecycle restarts it on SIGHUP / SIGUSR1. The steps of a start are ServerRun's methods, each
// concern in its own file: server-tun.ts, pool-persist.ts, shard-template.ts, shard-pool.ts,
// shard-events.ts, tun-pump.ts, server-timers.ts, and running-server.ts for the result.
import { writeFileSync } from 'node:fs';
import os from 'node:os';

import { failOption as fail, type Options } from '../../shared/config';
import type { Logger } from '../../shared/log';
import type { WrapConfig } from '../../shared/session/control-wrap';
import type { TlsMaterial } from '../../shared/session/types';
import { printSockaddr, resolveLinkLocal, type LinkLocal } from '../link-local';
import type { ServerSignal } from '../ops/server-view';
import { KeyKeeper } from '../persist-key';
import { dataChannelSettings, refuseUnsupported, type DataChannelSettings } from '../run-checks';
import { socketBuffers, socketRouting } from '../socket-options';
import { Admission } from './admission';
import { ClientRegistry } from './clients';
import { IfconfigPool } from './ifconfig-pool';
import { PoolPersist } from './pool-persist';
import { RouteTable } from '../../shared/route-table';
import { ClientEventHub, StartedServer, type RunningServer } from './running-server';
import { PerSecondTimers } from './server-timers';
import { ServerTun, type TunKeeper } from './server-tun';
import { ShardEvents } from './shard-events';
import { ShardPool, type ShardTemplate } from './shard-pool';
import { buildShardTemplate } from './shard-template';
import { TunPump } from './tun-pump';

export type { RunningServer } from './running-server';

/** What a run leaves to the next: the persist-tun device, the persist-key keys. */
export interface RestartKeeper extends TunKeeper {
  readonly keys: KeyKeeper;
}

export async function startServer(
  options: Options,
  logger: Logger,
  onSignal: (signal: ServerSignal) => void,
  keeper: RestartKeeper = { tun: null, keys: new KeyKeeper() },
): Promise<RunningServer> {
  return new ServerRun(options, logger, onSignal, keeper).start();
}

function checkServerOptions(options: Options): DataChannelSettings {
  refuseUnsupported(options);
  if (options.mode !== 'server') fail(options, 'mode', "server mode needs 'mode server' or 'server NETWORK NETMASK'");
  if (options.devType !== undefined && options.devType !== 'tun')
    fail(options, 'dev-type', `'${options.devType}' devices are not supported: use dev tun`);
  if (options.proto.transport === 'tcp-client') fail(options, 'proto', "a server listens: use 'proto tcp-server' (or 'proto tcp')");
  if (options.managementClientAuth && options.management === undefined)
    fail(options, 'management-client-auth', 'needs --management: clients would wait for a verdict nobody can give');
  return dataChannelSettings(options);
}

/** The ifconfig pool and the route table, with the client registry that hands them out. */
interface ClientSpace {
  readonly routes: RouteTable;
  readonly pool: IfconfigPool | null;
  readonly persist: PoolPersist | null;
  readonly registry: ClientRegistry;
}

/** One start of the server, step by step; a step that fails undoes the ones before it. */
class ServerRun {
  /** Undone in reverse order when a later step throws. */
  private readonly cleanups: (() => void)[] = [];
  /** Admission posts verdicts through this once the shards run (no client exists before). */
  private shards: ShardPool | null = null;

  constructor(
    private readonly options: Options,
    private readonly logger: Logger,
    private readonly onSignal: (signal: ServerSignal) => void,
    private readonly keeper: RestartKeeper,
  ) {}

  async start(): Promise<RunningServer> {
    const options = this.options;
    const dataCiphers = checkServerOptions(options);
    const tls = this.keeper.keys.tlsMaterial(options);
    const wrap = this.keeper.keys.wrap(options, options, 'server');
    const link = await this.resolveLocal();
    const tun = this.openTun();
    try {
      await tun.configure(this.logger);
      const space = this.openPoolAndRoutes();
      const template = this.buildShardTemplate(tun, tls, wrap, dataCiphers);
      const clientEvents = new ClientEventHub();
      const admission = new Admission(options, space.registry, this.logger, {
        post: (index, message) => this.shards?.post(index, message),
        emit: clientEvents.emit,
      });
      const events = new ShardEvents(space.registry, admission, this.logger, clientEvents.emit);
      const shards = await this.startShards(link, template, events, tun);
      const pump = this.startPump(tun, space.routes, shards);
      events.attachPump(pump);
      const timers = this.startTimers(shards, space.persist);
      this.writePid();
      const port = shards.shards[0]?.socket.localPort() ?? options.localPort;
      this.logger.log(
        1,
        `shardvpn server on ${options.proto.transport === 'udp' ? 'UDP' : 'TCP'} port ${port} with ${shards.size} shard${shards.size === 1 ? '' : 's'}`,
      );
      return new StartedServer({
        options,
        keys: this.keeper.keys,
        statusVersion: options.statusVersion,
        logger: this.logger,
        onSignal: this.onSignal,
        tun,
        port,
        shards,
        pump,
        template,
        ...space,
        admission,
        clientEvents,
        timers,
      });
    } catch (error) {
      for (const cleanup of this.cleanups.reverse()) cleanup();
      throw error;
    }
  }

  /** --local / --proto udp4|udp6 / --bind ipv6only: the address the shards' sockets bind. */
  private async resolveLocal(): Promise<LinkLocal> {
    const bound = await resolveLinkLocal(this.options);
    if (!bound.ok) fail(this.options, 'local', bound.reason);
    return bound.local;
  }

  /** `workers` shard workers (default: one per CPU). */
  private get workers(): number {
    return this.options.workers ?? os.availableParallelism();
  }

  private openTun(): ServerTun {
    const tun = ServerTun.open(this.options, this.keeper, this.workers, this.logger);
    this.cleanups.push(() => tun.release());
    return tun;
  }

  private openPoolAndRoutes(): ClientSpace {
    const o = this.options;
    const routes = new RouteTable();
    const pool =
      o.ifconfigPool !== undefined || o.ifconfigIpv6Pool !== undefined
        ? new IfconfigPool({
            topology: o.topology,
            ...(o.ifconfigPool !== undefined ? { ipv4: o.ifconfigPool } : {}),
            ...(o.ifconfigIpv6Pool !== undefined ? { ipv6: o.ifconfigIpv6Pool } : {}),
            duplicateCn: o.duplicateCn,
          })
        : null;
    const persist = pool !== null && o.ifconfigPoolPersist !== undefined ? new PoolPersist(pool, o.ifconfigPoolPersist, this.logger) : null;
    persist?.load();
    return { routes, pool, persist, registry: new ClientRegistry(o, pool, routes) };
  }

  private buildShardTemplate(tun: ServerTun, tls: TlsMaterial, wrap: WrapConfig, data: DataChannelSettings): ShardTemplate {
    return buildShardTemplate(this.options, { tun: tun.device, tls, wrap, data });
  }

  /** The shard workers, each on its socket of the SO_REUSEPORT group (and its TUN queue with tun-queues shard). */
  private async startShards(link: LinkLocal, template: ShardTemplate, events: ShardEvents, tun: ServerTun): Promise<ShardPool> {
    const o = this.options;
    const shards = ShardPool.open(
      this.workers,
      {
        ...link,
        port: o.localPort,
        ...socketBuffers(o),
        ...socketRouting(o, (problem) => this.logger.log(1, `WARNING: ${problem}`)),
        offload: o.udpOffload,
      },
      template,
      events,
      (index) => tun.queueFd(index),
    );
    this.shards = shards;
    this.cleanups.push(() => void shards.stop(false));
    const proto = o.proto.transport === 'udp' ? 'UDP' : 'TCP';
    this.logger.log(
      1,
      `${proto}${link.family === 6 ? 'v6' : 'v4'} link local (bound): ${printSockaddr(link.family, link.address, o.localPort)}${link.dualStack ? ' (dual-stack)' : ''}`,
    );
    await shards.ready();
    return shards;
  }

  /** TUN to the shards' rings and back, on this thread. */
  private startPump(tun: ServerTun, routes: RouteTable, shards: ShardPool): TunPump {
    const pump = new TunPump(tun.device, routes, () => shards.shards, this.options.clientToClient, tun.queues);
    pump.start();
    this.cleanups.push(() => pump.stop());
    return pump;
  }

  private startTimers(shards: ShardPool, persist: PoolPersist | null): PerSecondTimers {
    const timers = new PerSecondTimers(shards, persist, this.logger, this.options.heapShrinkSeconds);
    this.cleanups.push(() => timers.stop());
    return timers;
  }

  private writePid(): void {
    const writepid = this.options.writepid;
    if (writepid !== undefined) writeFileSync(writepid.resolved, `${process.pid}\n`);
  }
}
