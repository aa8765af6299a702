// The server's TUN device (init.c do_open_tun in server mode): opened with --dev and --tun-mtu,
// given --ifconfig / --ifconfig-ipv6 and the --route / --route-ipv6 routes; under persist-tun
// the device, with its addresses and routes, outlives the run for the next one.
import type { Options } from '../../shared/config';
import type { Logger } from '../../shared/log';
import { TunDevice } from '../../shared/native';
import { addAddress4, addAddress6, addPointToPoint4, addRoute } from '../iproute';

/** Where persist-tun keeps the device between runs. */
export interface TunKeeper {
  tun: TunDevice | null;
}

export class ServerTun {
  private constructor(
    readonly device: TunDevice,
    /** A persist-tun device from the last run: configured already. */
    readonly kept: boolean,
    private readonly options: Options,
    private readonly keeper: TunKeeper,
  ) {}

  /** The last run's device under persist-tun, else a new one (not configured yet). */
  static open(options: Options, keeper: TunKeeper): ServerTun {
    const kept = options.persistTun ? keeper.tun : null;
    if (kept !== null) return new ServerTun(kept, true, options, keeper);
    const name = options.dev === undefined || options.dev === 'tun' ? '' : options.dev;
    return new ServerTun(TunDevice.open({ name, mtu: options.tunMtu }), false, options, keeper);
  }

  get name(): string {
    return this.device.name;
  }

  /** Addresses and routes on a new device; a kept one has them already. */
  async configure(logger: Logger): Promise<void> {
    if (this.kept) {
      logger.log(1, `Preserving previous TUN/TAP instance: ${this.name}`);
      return;
    }
    await configureTun(this.options, this.name);
    logger.log(1, `TUN/TAP device ${this.name} opened`);
  }

  /** End of the run: persist-tun keeps the device for the next, otherwise it closes. */
  release(): void {
    if (this.options.persistTun) {
      this.keeper.tun = this.device;
    } else {
      this.device.close();
      this.keeper.tun = null;
    }
  }
}

async function configureTun(options: Options, name: string): Promise<void> {
  if (options.ifconfig !== undefined) {
    if (options.topology === 'subnet') await addAddress4(name, options.ifconfig.local, options.ifconfig.remoteNetmask);
    else await addPointToPoint4(name, options.ifconfig.local, options.ifconfig.remoteNetmask);
  }
  if (options.ifconfigIpv6 !== undefined) await addAddress6(name, options.ifconfigIpv6.local, options.ifconfigIpv6.netbits);
  for (const route of options.routes) {
    // OpenVPN's server routes go to the tun device (net30: through its point-to-point peer).
    if (options.topology === 'subnet' && options.ifconfig !== undefined && route.network === options.server?.network) continue;
    await addRoute(name, {
      network: route.network,
      netmask: route.netmask ?? '255.255.255.255',
      ...(route.metric !== undefined ? { metric: route.metric } : {}),
    });
  }
  for (const route of options.routesIpv6) {
    const [network, bits] = route.network.split('/');
    await addRoute(
      name,
      { network: network ?? '', netmask: Number(bits ?? 128), ...(route.metric !== undefined ? { metric: route.metric } : {}) },
      6,
    );
  }
}
