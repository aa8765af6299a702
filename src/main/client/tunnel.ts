// The client's tunnel device for one run (init.c do_open_tun / do_close_tun in client mode): the
// TUN device opened after the PUSH_REPLY (or the persist-tun one kept when the pushed network is
// unchanged), its addresses, the up script, its routes, then the privileges dropped; on the way
// out the routes undone, the device closed and the down script run, or the device kept for the
// next run under persist-tun.
import type { ConnectionEntry, Options } from '../../shared/config';
import type { Logger } from '../../shared/log';
import { TunDevice } from '../../shared/native';
import type { PushOptions } from '../../shared/protocol/push-options';
import { dropPrivileges } from '../privileges';
import { closeTunnel, runScript, type TunnelFacts } from '../scripts';
import type { ClientPersist, RemoteEndpoint, RunControl } from './run-context';
import { applyNetwork, clientNetwork, sameNetwork, undoNetwork, type ClientNetwork } from './tun-network';

export interface TunnelContext {
  readonly options: Options;
  readonly entry: ConnectionEntry;
  readonly persist: ClientPersist;
  readonly logger: Logger;
  readonly run: RunControl;
  /** The device is configured for `network`: the link starts moving packets through it. */
  attachTun(tun: TunDevice, network: ClientNetwork): void;
}

export class ClientTunnel {
  private tun: TunDevice | null = null;
  private facts: TunnelFacts | null = null;
  private closing = false;

  constructor(private readonly ctx: TunnelContext) {}

  /** Brings the tunnel up for the pushed options; false when the run is ending instead. */
  async up(pushed: PushOptions, remote: RemoteEndpoint, serverCn: string): Promise<boolean> {
    const { options: o, persist, logger, run } = this.ctx;
    const network = clientNetwork(o, pushed);
    const noDevice = o.devType === 'null' || o.dev === 'null';
    try {
      const reused = await this.reuseKept(network);
      if (run.isOver()) {
        if (reused) persist.tun = this.tun;
        return false;
      }
      if (!noDevice && !reused) {
        const name = o.dev === undefined || o.dev === 'tun' ? '' : o.dev;
        const tun = TunDevice.open({ name, mtu: network.tunMtu, offload: o.tunOffload });
        this.tun = tun;
        logger.log(1, `TUN/TAP device ${tun.name} opened`);
      }
      const tun = this.tun;
      const dev = tun?.name ?? 'null';
      this.facts = {
        dev,
        network,
        remote: { host: this.ctx.entry.remote ?? '', address: remote.address, port: remote.port },
        ...(serverCn !== '' ? { commonName: serverCn } : {}),
        ...(persist.configFile !== undefined ? { configFile: persist.configFile } : {}),
      };
      if (tun !== null && !reused) await this.configure(dev, network, remote, this.facts);
      if (run.isOver()) {
        if (this.tun !== null && !this.closing) persist.tun = this.tun;
        return false;
      }
      if (tun !== null) this.ctx.attachTun(tun, network);
      // Root is needed no more once the device, its routes and the up script are done
      // (OpenVPN's do_uid_gid_chroot at the same point); the first run drops it for good.
      try {
        dropPrivileges(o, logger);
      } catch (error) {
        persist.exitStatus = 1;
        logger.log(1, `${(error as Error).message}; Exiting due to fatal error`);
        run.softSignal('SIGTERM', 'privileges');
        return false;
      }
      return true;
    } catch (error) {
      logger.log(1, `ERROR: cannot set up the tunnel device: ${(error as Error).message}`);
      run.softSignal('SIGUSR1', 'tun-setup-failed');
      return false;
    }
  }

  /** persist-tun: takes the kept device when the pushed network is the same, else undoes and closes it. */
  private async reuseKept(network: ClientNetwork): Promise<boolean> {
    const persist = this.ctx.persist;
    const kept = persist.tun;
    if (kept === null) return false;
    let reused = false;
    const applied = persist.applied;
    if (applied !== null && sameNetwork(applied.network, network)) {
      this.ctx.logger.log(1, `Preserving previous TUN/TAP instance: ${kept.name}`);
      this.tun = kept;
      reused = true;
    } else {
      // The pushed network changed (OpenVPN's "Pulled options changed on restart"): the kept
      // device goes with its scripts, as do_close_tun's forced close runs them.
      this.ctx.logger.log(1, 'NOTE: Pulled options changed on restart, will need to close and reopen TUN/TAP device.');
      await closeTunnel(this.ctx.options, persist.keptFacts, (persist.lastSignal ?? 'SIGUSR1').toLowerCase(), this.ctx.logger, {
        removeRoutes: () => (applied !== null ? undoNetwork(applied) : Promise.resolve()),
        closeDevice: () => kept.close(),
      });
      persist.applied = null;
    }
    persist.tun = null;
    persist.keptFacts = null;
    return reused;
  }

  /** A new device: its addresses, the up script, then its routes (OpenVPN's order). */
  private async configure(dev: string, network: ClientNetwork, remote: RemoteEndpoint, facts: TunnelFacts): Promise<void> {
    const { options: o, persist, logger, run } = this.ctx;
    const onlyAddresses = { ...network, routes: [], routes6: [] } as ClientNetwork;
    delete onlyAddresses.redirectGateway;
    if (!o.ifconfigNoexec) await applyNetwork(dev, onlyAddresses, remote.address, logger);
    if (o.up !== undefined && !run.isOver()) {
      if (!(await runScript(o, o.up, facts, 'up', 'init', logger))) {
        persist.exitStatus = 1;
        logger.log(1, 'Exiting due to fatal error');
        run.softSignal('SIGTERM', 'up-script-failed');
      }
    }
    const routesOnly: ClientNetwork = { ...network };
    delete routesOnly.ifconfig;
    delete routesOnly.ifconfigIpv6;
    const applied = o.routeNoexec ? { dev, network, undo: [] } : await applyNetwork(dev, routesOnly, remote.address, logger);
    persist.applied = { ...applied, network };
    if (applied.netGateway !== undefined) facts.netGateway = applied.netGateway;
    // A failed route-up is only logged, as in OpenVPN (do_route).
    if (o.routeUp !== undefined && !run.isOver()) await runScript(o, o.routeUp, facts, 'route-up', 'init', logger);
  }

  /** Closes the device, or keeps it for the next run under persist-tun after a SIGUSR1. */
  async close(remote: RemoteEndpoint | null): Promise<void> {
    this.closing = true;
    const { options: o, entry, persist, logger } = this.ctx;
    const signal = persist.lastSignal;
    const tun = this.tun ?? persist.tun;
    this.tun = null;
    if (tun === null) return;
    tun.stopPoll();
    if (signal === 'SIGUSR1' && o.persistTun) {
      persist.tun = tun;
      persist.keptFacts = this.facts;
      return;
    }
    persist.tun = null;
    const applied = persist.applied;
    persist.applied = null;
    const facts =
      this.facts ??
      (applied !== null
        ? {
            dev: tun.name,
            network: applied.network,
            remote: { host: entry.remote ?? '', address: remote?.address ?? '', port: entry.remotePort },
          }
        : null);
    await closeTunnel(o, facts, (signal ?? 'SIGTERM').toLowerCase(), logger, {
      removeRoutes: () => (applied !== null ? undoNetwork(applied) : Promise.resolve()),
      closeDevice: () => {
        logger.log(1, `Closing TUN/TAP interface`);
        tun.close();
      },
    });
  }
}
