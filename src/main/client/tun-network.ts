// The network a client puts on its TUN device (OpenVPN's do_ifconfig, add_routes,
// delete_routes, redirect-gateway): what the config and the PUSH_REPLY say, applied with `ip`
// argument vectors, and undone in reverse order on exit or restart.
import { execFile } from 'node:child_process';
import { isIP } from 'node:net';

import type { Options } from '../../shared/config';
import type { Logger } from '../../shared/log';
import type { PushOptions } from '../../shared/protocol/push-options';
import { blockIpv6Source, type BlockIpv6Answer } from '../../shared/protocol/block-ipv6';
import { dnsForeignOptions, mergePulledDns, type DnsOptions } from '../../shared/protocol/dns-options';
import { addAddress4, addAddress6, addPointToPoint4, addRoute, deleteRoute, type RouteSpec } from '../iproute';

/** redirect-gateway ipv6: the IPv6 unicast space, in OpenVPN's pieces. */
const REDIRECT_IPV6_ROUTES: readonly (readonly [string, number])[] = [
  ['::', 3],
  ['2000::', 4],
  ['3000::', 4],
  ['fc00::', 7],
];

export interface ClientRoute {
  network: string;
  netmask: string;
  gateway?: string;
  metric?: number;
}

export interface ClientRoute6 {
  network: string;
  bits: number;
  gateway?: string;
  metric?: number;
}

/** Everything the client sets up on the TUN device and in the routing table. */
export interface ClientNetwork {
  topology: 'net30' | 'p2p' | 'subnet';
  tunMtu: number;
  ifconfig?: { local: string; remoteOrNetmask: string };
  ifconfigIpv6?: { local: string; bits: number; remote?: string };
  /** route-gateway, or the point-to-point peer (net30 / p2p). */
  vpnGateway?: string;
  vpnGateway6?: string;
  routes: ClientRoute[];
  routes6: ClientRoute6[];
  /** `redirect-gateway` flags (def1, bypass-dhcp, ...); undefined when not asked for. */
  redirectGateway?: string[];
  /** `dhcp-option` lines, for scripts (foreign_option_N). */
  dhcpOptions: string[];
  /** block-ipv6 (config or pushed): IPv6 packets from TUN are answered, not sent. */
  blockIpv6: boolean;
  /** --dns, the config's with the pushed ones merged: the scripts' dns_* variables. */
  dns?: DnsOptions;
}

/** What was actually done, to undo it. */
export interface AppliedNetwork {
  readonly dev: string;
  readonly network: ClientNetwork;
  readonly undo: (() => Promise<void>)[];
  /** The default gateway before redirect-gateway (route_net_gateway for scripts). */
  netGateway?: string;
}

function ipRun(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: 10_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`ip ${args.join(' ')}: ${stderr.trim() || error.message}`));
      else resolve(stdout);
    });
  });
}

/** route-nopull drops these pushed options (options.c: OPT_P_ROUTE, OPT_P_DHCPDNS). */
export function applyRouteNopull(pushed: PushOptions): PushOptions {
  const {
    routes: _r,
    routesIpv6: _r6,
    redirectGateway: _g,
    dhcpOptions: _d,
    blockOutsideDns: _b,
    blockIpv6: _bi,
    dns: _dns,
    ...rest
  } = pushed;
  return rest;
}

function metricOf(text: string | number | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = typeof text === 'number' ? text : Number(text);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

/** The config's own settings overlaid with the pushed ones (pushed routes come after the config's). */
export function clientNetwork(options: Options, pushed: PushOptions): ClientNetwork {
  const topology = pushed.topology ?? options.topology;
  const ifconfig =
    pushed.ifconfig ??
    (options.ifconfig !== undefined ? { local: options.ifconfig.local, remoteOrNetmask: options.ifconfig.remoteNetmask } : undefined);
  const v6 =
    pushed.ifconfigIpv6 ??
    (options.ifconfigIpv6 !== undefined
      ? { local: options.ifconfigIpv6.local, prefixLength: options.ifconfigIpv6.netbits, remote: options.ifconfigIpv6.remote }
      : undefined);
  let vpnGateway = pushed.routeGateway ?? options.routeGateway;
  if (vpnGateway !== undefined && isIP(vpnGateway) !== 4) vpnGateway = undefined; // `route-gateway dhcp`
  if (vpnGateway === undefined && ifconfig !== undefined && topology !== 'subnet') vpnGateway = ifconfig.remoteOrNetmask;
  const routes: ClientRoute[] = [];
  for (const r of [...options.routes, ...(pushed.routes ?? [])]) {
    const route: ClientRoute = { network: r.network, netmask: r.netmask ?? '255.255.255.255' };
    const gateway = r.gateway === undefined || r.gateway === 'vpn_gateway' || r.gateway === 'default' ? vpnGateway : r.gateway;
    if (gateway !== undefined) route.gateway = gateway;
    const metric = metricOf(r.metric) ?? options.routeMetric;
    if (metric !== undefined) route.metric = metric;
    routes.push(route);
  }
  const routes6: ClientRoute6[] = [];
  for (const r of [...options.routesIpv6, ...(pushed.routesIpv6 ?? [])]) {
    const [network, bits] = r.network.split('/');
    const route: ClientRoute6 = { network: network ?? '', bits: bits === undefined ? 128 : Number(bits) };
    if (r.gateway !== undefined && isIP(r.gateway) === 6) route.gateway = r.gateway;
    const metric = metricOf(r.metric) ?? options.routeMetric;
    if (metric !== undefined) route.metric = metric;
    routes6.push(route);
  }
  const redirect = pushed.redirectGateway ?? (options.redirectGateway !== undefined ? options.redirectGateway.flags : undefined);
  const dns = mergePulledDns(options.dns, pushed.dns);
  // init.c do_init_route_ipv6_list: redirect-gateway ipv6 routes these through the tunnel.
  if (redirect?.includes('ipv6')) {
    for (const [network, bits] of REDIRECT_IPV6_ROUTES) {
      const route: ClientRoute6 = { network, bits };
      if (options.routeMetric !== undefined) route.metric = options.routeMetric;
      routes6.push(route);
    }
  }
  const network: ClientNetwork = {
    topology,
    tunMtu: pushed.tunMtu ?? options.tunMtu,
    routes,
    routes6,
    dhcpOptions: dnsForeignOptions(
      dns,
      [...options.dhcpOptions, ...(pushed.dhcpOptions ?? [])].map((d) =>
        d.value !== undefined ? `dhcp-option ${d.type} ${d.value}` : `dhcp-option ${d.type}`,
      ),
    ),
    blockIpv6: options.blockIpv6 || pushed.blockIpv6 === true,
  };
  if (ifconfig !== undefined) network.ifconfig = ifconfig;
  if (v6 !== undefined) {
    network.ifconfigIpv6 = { local: v6.local, bits: v6.prefixLength, ...(v6.remote !== undefined ? { remote: v6.remote } : {}) };
    if (v6.remote !== undefined) network.vpnGateway6 = v6.remote;
  }
  const gateway6 = pushed.routeIpv6Gateway ?? options.routeIpv6Gateway;
  if (gateway6 !== undefined) network.vpnGateway6 = gateway6;
  if (vpnGateway !== undefined) network.vpnGateway = vpnGateway;
  if (redirect !== undefined) network.redirectGateway = redirect;
  if (dns !== undefined) network.dns = dns;
  return network;
}

/** What the link answers IPv6 packets with under block-ipv6 (null: it sends them). */
export function blockIpv6Answer(network: ClientNetwork): BlockIpv6Answer | null {
  return network.blockIpv6 ? { source: blockIpv6Source(network.ifconfigIpv6?.remote), tunMtu: network.tunMtu } : null;
}

export function sameNetwork(a: ClientNetwork, b: ClientNetwork): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

interface DefaultRoute {
  /** Absent for an on-link default route. */
  gateway?: string;
  dev: string;
}

/** The current default route of `family`: its gateway (if any) and device, or null. */
async function defaultRoute(family: 4 | 6): Promise<DefaultRoute | null> {
  try {
    const out = await ipRun([`-${family}`, 'route', 'show', 'default']);
    const m = /default (?:via (\S+) )?dev (\S+)/.exec(out);
    return m === null ? null : { ...(m[1] !== undefined ? { gateway: m[1] } : {}), dev: m[2]! };
  } catch {
    return null;
  }
}

/** A host route to the server through `via` (the default route before redirect-gateway), undone on exit. */
async function keepServerRoute(
  applied: AppliedNetwork,
  family: 4 | 6,
  remoteHost: string,
  via: DefaultRoute,
  logger: Logger,
): Promise<void> {
  const route = [`${remoteHost}/${family === 4 ? 32 : 128}`, ...(via.gateway !== undefined ? ['via', via.gateway] : []), 'dev', via.dev];
  try {
    await ipRun([`-${family}`, 'route', 'add', ...route]);
    applied.undo.push(() =>
      ipRun([`-${family}`, 'route', 'del', ...route]).then(
        () => undefined,
        () => undefined,
      ),
    );
  } catch (error) {
    logger.log(1, `ERROR: redirect-gateway${family === 6 ? ' ipv6' : ''}: ${(error as Error).message}`);
  }
}

/**
 * ifconfig, then routes (config and pushed), then redirect-gateway. Addresses and routes on
 * the TUN device vanish with it; routes elsewhere (the server's host route) are undone.
 */
export async function applyNetwork(dev: string, network: ClientNetwork, remoteHost: string, logger: Logger): Promise<AppliedNetwork> {
  const applied: AppliedNetwork = { dev, network, undo: [] };
  const v4 = network.ifconfig;
  if (v4 !== undefined) {
    if (network.topology === 'subnet') {
      await addAddress4(dev, v4.local, v4.remoteOrNetmask);
      logger.log(3, `net_addr_v4_add: ${v4.local}/${v4.remoteOrNetmask} dev ${dev}`);
    } else {
      await addPointToPoint4(dev, v4.local, v4.remoteOrNetmask);
      logger.log(3, `net_addr_ptp_v4_add: ${v4.local} peer ${v4.remoteOrNetmask} dev ${dev}`);
    }
  }
  const v6 = network.ifconfigIpv6;
  if (v6 !== undefined) {
    await addAddress6(dev, v6.local, v6.bits);
    logger.log(3, `net_addr_v6_add: ${v6.local}/${v6.bits} dev ${dev}`);
  }
  const add = async (route: RouteSpec, family: 4 | 6): Promise<void> => {
    try {
      await addRoute(dev, route, family);
      logger.log(
        3,
        `net_route_v${family}_add: ${route.network}/${route.netmask} via ${route.gateway ?? '(none)'} dev ${dev} metric ${route.metric ?? 0}`,
      );
      applied.undo.push(() => deleteRoute(dev, route, family).catch(() => undefined));
    } catch (error) {
      // OpenVPN goes on with the other routes ("Initialization Sequence Completed With Errors").
      logger.log(1, `ERROR: Linux route add command failed: ${(error as Error).message}`);
    }
  };
  for (const r of network.routes) {
    await add(
      {
        network: r.network,
        netmask: r.netmask,
        ...(r.gateway !== undefined ? { gateway: r.gateway } : {}),
        ...(r.metric !== undefined ? { metric: r.metric } : {}),
      },
      4,
    );
  }
  // redirect-gateway ipv6: an IPv6 server stays reachable outside the tunnel, its host route in
  // place before the tunnel's IPv6 routes (OpenVPN adds it whatever `local` says for IPv6).
  if (network.redirectGateway?.includes('ipv6') === true && isIP(remoteHost) === 6) {
    const current = await defaultRoute(6);
    if (current !== null) await keepServerRoute(applied, 6, remoteHost, current, logger);
  }
  for (const r of network.routes6) {
    await add(
      {
        network: r.network,
        netmask: r.bits,
        ...(r.gateway !== undefined ? { gateway: r.gateway } : {}),
        ...(r.metric !== undefined ? { metric: r.metric } : {}),
      },
      6,
    );
  }
  const redirect = network.redirectGateway;
  if (redirect !== undefined && !redirect.includes('!ipv4')) {
    const current = await defaultRoute(4);
    if (current?.gateway !== undefined) applied.netGateway = current.gateway;
    // Keep the server reachable outside the tunnel.
    if (current !== null && !redirect.includes('local') && isIP(remoteHost) === 4)
      await keepServerRoute(applied, 4, remoteHost, current, logger);
    const gw = network.vpnGateway;
    if (redirect.includes('def1')) {
      for (const half of ['0.0.0.0', '128.0.0.0'])
        await add({ network: half, netmask: '128.0.0.0', ...(gw !== undefined ? { gateway: gw } : {}) }, 4);
    } else {
      await add({ network: '0.0.0.0', netmask: '0.0.0.0', ...(gw !== undefined ? { gateway: gw } : {}) }, 4);
    }
  }
  return applied;
}

/** Undoes routes in reverse order (addresses go with the device). */
export async function undoNetwork(applied: AppliedNetwork): Promise<void> {
  for (const undo of applied.undo.splice(0).reverse()) await undo();
}
