// The server's TUN device (init.c do_open_tun in server mode): opened with --dev and --tun-mtu,
// given --ifconfig / --ifconfig-ipv6, the --up script, the --route / --route-ipv6 routes and the
// --route-up script; at the end --route-pre-down, the device closed, --down. Under persist-tun
// the device, with its addresses and routes, outlives a restart for the next run (no scripts).
// With `tun-queues shard` the device is opened with IFF_MULTI_QUEUE: the first queue is the main
// thread's, and one more is attached per shard. This thread opens them all before privileges
// drop and keeps them for the run, so a replaced shard worker takes over its queue's descriptor
// (worker threads share the process's descriptors). A kernel that refuses IFF_MULTI_QUEUE, or a
// persist-tun device kept from a single-queue run, leaves the run on the single-queue path.
import type { Options } from '../../shared/config';
import type { Logger } from '../../shared/log';
import { TunDevice } from '../../shared/native';
import { addAddress4, addAddress6, addPointToPoint4, addRoute, deleteRoute, type RouteSpec } from '../iproute';
import { closeTunnel, runScript, type TunnelFacts } from '../scripts';
import { ipv4ToNumber, numberToIpv4 } from '../../shared/ip-math';
import type { ServerSignal } from '../ops/server-view';

/** Where persist-tun keeps the device between runs. */
export interface TunKeeper {
  tun: TunDevice | null;
  /** The shards' queues of a multi-queue device (empty for a single-queue one). */
  queues?: TunDevice[];
}

export class ServerTun {
  private constructor(
    /** The main thread's queue (the only one on the single-queue path). */
    readonly device: TunDevice,
    /** One queue per shard, by shard index; empty: the single-queue path. */
    readonly queues: readonly TunDevice[],
    /** A persist-tun device from the last run: configured already. */
    readonly kept: boolean,
    private readonly options: Options,
    private readonly keeper: TunKeeper,
  ) {}

  /**
   * The last run's device under persist-tun, else a new one (not configured yet). `shards`: how
   * many shard queues `tun-queues shard` attaches.
   */
  static open(options: Options, keeper: TunKeeper, shards: number, logger: Logger): ServerTun {
    const multiQueue = options.tunQueues === 'shard';
    const kept = options.persistTun ? keeper.tun : null;
    if (kept !== null) {
      const queues = multiQueue ? keptQueues(kept, [...(keeper.queues ?? [])], shards, logger) : closeAll(keeper.queues ?? []);
      return new ServerTun(kept, queues, true, options, keeper);
    }
    const name = options.dev === undefined || options.dev === 'tun' ? '' : options.dev;
    if (multiQueue) {
      let device: TunDevice | null = null;
      try {
        device = TunDevice.open({ name, mtu: options.tunMtu, multiQueue: true, offload: options.tunOffload });
        const queues = attachQueues(device.name, shards, options.tunOffload);
        logger.log(1, `TUN device ${device.name}: multi-queue, one queue per shard (${shards}) and one for the main thread`);
        return new ServerTun(device, queues, false, options, keeper);
      } catch (error) {
        device?.close();
        logger.log(1, `tun-queues shard: the kernel refused a multi-queue TUN device (${(error as Error).message}); using one queue`);
      }
    }
    return new ServerTun(TunDevice.open({ name, mtu: options.tunMtu, offload: options.tunOffload }), [], false, options, keeper);
  }

  /** The descriptor of shard `index`'s queue; -1 on the single-queue path. */
  queueFd(index: number): number {
    return this.queues[index]?.fd ?? -1;
  }

  get name(): string {
    return this.device.name;
  }

  /**
   * Addresses, up script, routes and route-up script on a new device; a kept one has them
   * already. Throws when the up script fails (OpenVPN exits then); a failed route-up is logged.
   */
  async configure(logger: Logger): Promise<void> {
    if (this.kept) {
      logger.log(1, `Preserving previous TUN/TAP instance: ${this.name}`);
      return;
    }
    const o = this.options;
    await configureAddresses(o, this.name);
    logger.log(1, `TUN/TAP device ${this.name} opened`);
    if (o.up !== undefined && !(await runScript(o, o.up, this.facts(), 'up', 'init', logger))) {
      throw new Error(`the up script failed (${o.up})`);
    }
    await configureRoutes(o, this.name);
    if (o.routeUp !== undefined) await runScript(o, o.routeUp, this.facts(), 'route-up', 'init', logger);
  }

  /**
   * End of a run that started: as release(), and when the device goes (not kept for a restart
   * under persist-tun) the route-pre-down script first and the down script after it is closed
   * (before, with down-pre), with the signal that ended the run.
   */
  async close(signal: ServerSignal, logger: Logger): Promise<void> {
    const o = this.options;
    // As OpenVPN's do_close_tun: persist-tun keeps the device across a SIGUSR1 restart only; a
    // SIGHUP restart reads a config whose device, addresses or routes may differ.
    if (o.persistTun && signal === 'SIGUSR1') {
      this.release(false);
      return;
    }
    await closeTunnel(o, this.facts(), signal.toLowerCase(), logger, {
      // The device takes its routes with it; they go first only where down-pre's script would see them.
      removeRoutes: () => (o.downPre === true ? removeRoutes(o, this.name) : Promise.resolve()),
      closeDevice: () => this.release(true),
    });
  }

  /** The scripts' view of the device: its addresses and the config's routes. */
  private facts(): TunnelFacts {
    const o = this.options;
    return {
      dev: this.name,
      network: {
        topology: o.topology,
        tunMtu: o.tunMtu,
        ...(o.ifconfig !== undefined ? { ifconfig: { local: o.ifconfig.local, remoteOrNetmask: o.ifconfig.remoteNetmask } } : {}),
        ...(o.ifconfigIpv6 !== undefined ? { ifconfigIpv6: { local: o.ifconfigIpv6.local, bits: o.ifconfigIpv6.netbits } } : {}),
        ...(serverRouteGateway(o) !== undefined ? { vpnGateway: serverRouteGateway(o) } : {}),
        ...(o.routeIpv6Gateway !== undefined ? { vpnGateway6: o.routeIpv6Gateway } : {}),
        routes: o.routes.map((r) => ({ ...r, netmask: r.netmask ?? '255.255.255.255' })),
        routes6: o.routesIpv6.map((r) => {
          const [network, bits] = r.network.split('/');
          return { ...r, network: network ?? '', bits: Number(bits ?? 128) };
        }),
        dhcpOptions: [],
        blockIpv6: o.blockIpv6,
      },
    };
  }

  /**
   * The device kept for the next run (persist-tun, unless `closes`) or closed. A start that
   * failed calls this directly: no scripts run.
   */
  release(closes = !this.options.persistTun): void {
    if (!closes) {
      this.keeper.tun = this.device;
      this.keeper.queues = [...this.queues];
    } else {
      closeAll(this.queues);
      this.device.close();
      this.keeper.tun = null;
      this.keeper.queues = [];
    }
  }
}

/** `count` more queues of the multi-queue device `name` (TUNSETIFF on an existing device attaches one). */
function attachQueues(name: string, count: number, offload: boolean): TunDevice[] {
  const queues: TunDevice[] = [];
  try {
    // Every queue with the same offload flags: the kernel keeps them per device, the last TUNSETIFF wins.
    for (let i = 0; i < count; i++) queues.push(TunDevice.open({ name, multiQueue: true, up: false, offload }));
  } catch (error) {
    closeAll(queues);
    throw error;
  }
  return queues;
}

/** A persist-tun device's shard queues, as many as this run has shards; [] when it has only one queue. */
function keptQueues(device: TunDevice, queues: TunDevice[], shards: number, logger: Logger): TunDevice[] {
  if (queues.length === 0) {
    logger.log(1, `tun-queues shard: the kept device ${device.name} has a single queue (persist-tun); using it`);
    return [];
  }
  if (queues.length > shards) closeAll(queues.splice(shards));
  if (queues.length < shards) queues.push(...attachQueues(device.name, shards - queues.length, device.offload.vnetHeader));
  return queues;
}

function closeAll(queues: readonly TunDevice[]): TunDevice[] {
  for (const queue of queues) queue.close();
  return [];
}

async function configureAddresses(options: Options, name: string): Promise<void> {
  if (options.ifconfig !== undefined) {
    if (options.topology === 'subnet') await addAddress4(name, options.ifconfig.local, options.ifconfig.remoteNetmask);
    else await addPointToPoint4(name, options.ifconfig.local, options.ifconfig.remoteNetmask);
  }
  if (options.ifconfigIpv6 !== undefined) await addAddress6(name, options.ifconfigIpv6.local, options.ifconfigIpv6.netbits);
}

/**
 * The gateway OpenVPN's server gives its own routes (route_vpn_gateway): route-gateway, else with
 * `server` in subnet topology the pool's first address (helper.c), else the point-to-point peer.
 */
function serverRouteGateway(o: Options): string | undefined {
  if (o.routeGateway !== undefined) return o.routeGateway;
  if (o.topology === 'subnet') return o.server !== undefined ? numberToIpv4(ipv4ToNumber(o.server.network) + 2) : undefined;
  return o.ifconfig?.remoteNetmask;
}

/** The config's routes as the device gets them (route-metric for those that name no metric). */
function serverRoutes(options: Options): { spec: RouteSpec; family: 4 | 6 }[] {
  const metric = (own: number | undefined): { metric?: number } => {
    const m = own ?? options.routeMetric;
    return m !== undefined ? { metric: m } : {};
  };
  const out: { spec: RouteSpec; family: 4 | 6 }[] = [];
  for (const route of options.routes) {
    // OpenVPN's server routes go to the tun device (net30: through its point-to-point peer).
    if (options.topology === 'subnet' && options.ifconfig !== undefined && route.network === options.server?.network) continue;
    out.push({ spec: { network: route.network, netmask: route.netmask ?? '255.255.255.255', ...metric(route.metric) }, family: 4 });
  }
  for (const route of options.routesIpv6) {
    const [network, bits] = route.network.split('/');
    out.push({ spec: { network: network ?? '', netmask: Number(bits ?? 128), ...metric(route.metric) }, family: 6 });
  }
  return out;
}

async function configureRoutes(options: Options, name: string): Promise<void> {
  for (const r of serverRoutes(options)) await addRoute(name, r.spec, r.family);
}

/** Before a down-pre script, as OpenVPN's close_tun: the routes go first (a failure only means one is gone already). */
async function removeRoutes(options: Options, name: string): Promise<void> {
  for (const r of serverRoutes(options).reverse()) await deleteRoute(name, r.spec, r.family).catch(() => undefined);
}
