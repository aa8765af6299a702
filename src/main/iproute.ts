// Addresses and routes on the TUN device through the `ip` command, always as an argument
// vector (execFile, never a shell), so config values cannot become shell syntax.
import { execFile } from 'node:child_process';
import { isIP } from 'node:net';

import { ipv4ToNumber, netmaskToBits } from '../shared/ip-math';

function run(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: 10_000 }, (error, _stdout, stderr) => {
      if (error) reject(new Error(`ip ${args.join(' ')}: ${stderr.trim() || error.message}`));
      else resolve();
    });
  });
}

function checkAddress(text: string, family: 4 | 6, what: string): void {
  if (isIP(text) !== family) throw new TypeError(`${what} '${text}' is not an IPv${family} address`);
}

function checkDevice(dev: string): void {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(dev)) throw new TypeError(`device name '${dev}' is not a valid interface name`);
}

/** `ip addr add ADDRESS/BITS dev DEV` (topology subnet) from an address and a netmask. */
export function addAddress4(dev: string, address: string, netmask: string): Promise<void> {
  checkDevice(dev);
  checkAddress(address, 4, 'address');
  const bits = netmaskToBits(ipv4ToNumber(netmask));
  if (bits < 0) throw new TypeError(`netmask '${netmask}' is not contiguous`);
  return run(['addr', 'add', `${address}/${bits}`, 'dev', dev]);
}

/** `ip addr add LOCAL peer REMOTE dev DEV` (topology net30 and p2p). */
export function addPointToPoint4(dev: string, local: string, remote: string): Promise<void> {
  checkDevice(dev);
  checkAddress(local, 4, 'local address');
  checkAddress(remote, 4, 'remote address');
  return run(['addr', 'add', local, 'peer', remote, 'dev', dev]);
}

export function addAddress6(dev: string, address: string, bits: number): Promise<void> {
  checkDevice(dev);
  checkAddress(address, 6, 'address');
  if (!Number.isInteger(bits) || bits < 0 || bits > 128) throw new TypeError(`prefix length ${bits} outside 0..128`);
  return run(['-6', 'addr', 'add', `${address}/${bits}`, 'dev', dev, 'nodad']);
}

export interface RouteSpec {
  network: string;
  /** IPv4 netmask or prefix length. */
  netmask: string | number;
  gateway?: string;
  metric?: number;
}

function routeArgs(dev: string, route: RouteSpec, family: 4 | 6): string[] {
  checkDevice(dev);
  checkAddress(route.network, family, 'route network');
  let bits: number;
  if (typeof route.netmask === 'number') bits = route.netmask;
  else bits = netmaskToBits(ipv4ToNumber(route.netmask));
  if (!Number.isInteger(bits) || bits < 0 || bits > (family === 4 ? 32 : 128))
    throw new TypeError(`route ${route.network}: bad netmask ${route.netmask}`);
  const args = [`${route.network}/${bits}`];
  if (route.gateway !== undefined) {
    checkAddress(route.gateway, family, 'route gateway');
    args.push('via', route.gateway);
  }
  args.push('dev', dev);
  if (route.metric !== undefined) {
    if (!Number.isInteger(route.metric) || route.metric < 0)
      throw new TypeError(`route metric ${route.metric} is not a non-negative integer`);
    args.push('metric', String(route.metric));
  }
  return family === 4 ? ['route', ...args] : ['-6', 'route', ...args];
}

export function addRoute(dev: string, route: RouteSpec, family: 4 | 6 = 4): Promise<void> {
  const args = routeArgs(dev, route, family);
  return run([...args.slice(0, family === 4 ? 1 : 2), 'add', ...args.slice(family === 4 ? 1 : 2)]);
}

export function deleteRoute(dev: string, route: RouteSpec, family: 4 | 6 = 4): Promise<void> {
  const args = routeArgs(dev, route, family);
  return run([...args.slice(0, family === 4 ? 1 : 2), 'del', ...args.slice(family === 4 ? 1 : 2)]);
}
