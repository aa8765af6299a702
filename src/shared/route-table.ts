// The virtual address table (OpenVPN's m->vhash, multi_learn_addr, multi_get_instance_by_virtual_addr):
// which client owns a virtual address or an iroute prefix, by peer-id. The main thread looks up
// every packet read from the TUN device here, so lookups take numbers and packet bytes, not text.
// With a TUN queue per shard (tun-queues shard) each shard keeps one of its own clients too.
import { parseIPv6 } from './ip-address';
import { bitsToNetmask, ipv4ToNumber, readIpv4 } from './ip-math';

export const NO_ROUTE = -1;

/** Whether an IP packet goes to a multicast (or, for IPv4, 224/4) destination: for every client. */
export function isMulticast(packet: Uint8Array, offset: number, length: number): boolean {
  const version = packet[offset] >> 4;
  if (version === 4 && length >= 20) return (packet[offset + 16] & 0xf0) === 0xe0;
  if (version === 6 && length >= 40) return packet[offset + 24] === 0xff;
  return false;
}

interface Prefix4 {
  network: number;
  bits: number;
  mask: number;
  peerId: number;
}

interface Prefix6 {
  network: Uint8Array;
  bits: number;
  peerId: number;
}

/** What one client was given: forget() visits these, not the whole table. */
interface PeerRoutes {
  hosts4: number[];
  hosts6: string[];
  prefixes: boolean;
}

export class RouteTable {
  private readonly hosts4 = new Map<number, number>();
  private readonly hosts6 = new Map<string, number>();
  /**
   * By peer-id, the keys it was given (some may have passed to another owner since). A mass
   * disconnect of n clients then costs O(n), not O(n^2) scans of every address in the table.
   */
  private readonly byPeer = new Map<number, PeerRoutes>();
  /** iroute prefixes, longest first. */
  private prefixes4: Prefix4[] = [];
  private prefixes6: Prefix6[] = [];
  private readonly scratch6 = new Uint8Array(16);

  /** Learns a client's own IPv4 address (from the pool or ifconfig-push); replaces an owner. */
  learnHost4(address: string, peerId: number): void {
    const value = ipv4ToNumber(address);
    if (value < 0) throw new TypeError(`not an IPv4 address: ${address}`);
    this.hosts4.set(value, peerId);
    this.routesOf(peerId).hosts4.push(value);
  }

  learnHost6(address: string, peerId: number): void {
    const bytes = new Uint8Array(16);
    if (!parseIPv6(address, bytes)) throw new TypeError(`not an IPv6 address: ${address}`);
    const key = key6(bytes, 0);
    this.hosts6.set(key, peerId);
    this.routesOf(peerId).hosts6.push(key);
  }

  /** Learns an `iroute NETWORK NETMASK` of a client. */
  learnIroute4(network: string, bits: number, peerId: number): void {
    const value = ipv4ToNumber(network);
    if (value < 0 || bits < 0 || bits > 32) throw new TypeError(`not an IPv4 prefix: ${network}/${bits}`);
    const mask = bitsToNetmask(bits);
    this.routesOf(peerId).prefixes = true;
    this.prefixes4 = [
      ...this.prefixes4.filter((p) => !(p.network === (value & mask) >>> 0 && p.bits === bits)),
      { network: (value & mask) >>> 0, bits, mask, peerId },
    ].sort((a, b) => b.bits - a.bits);
  }

  learnIroute6(network: string, bits: number, peerId: number): void {
    const bytes = new Uint8Array(16);
    if (!parseIPv6(network, bytes) || bits < 0 || bits > 128) throw new TypeError(`not an IPv6 prefix: ${network}/${bits}`);
    maskBytes(bytes, bits);
    this.routesOf(peerId).prefixes = true;
    this.prefixes6 = [
      ...this.prefixes6.filter((p) => !(p.bits === bits && equalBytes(p.network, bytes))),
      { network: bytes, bits, peerId },
    ].sort((a, b) => b.bits - a.bits);
  }

  /** Removes every route of a client (it disconnected, or its shard died). Returns how many. */
  forget(peerId: number): number {
    const routes = this.byPeer.get(peerId);
    if (routes === undefined) return 0;
    this.byPeer.delete(peerId);
    let removed = 0;
    // Only keys still its own: an address handed to another client since stays theirs.
    for (const key of routes.hosts4) if (this.hosts4.get(key) === peerId && this.hosts4.delete(key)) removed++;
    for (const key of routes.hosts6) if (this.hosts6.get(key) === peerId && this.hosts6.delete(key)) removed++;
    if (!routes.prefixes) return removed;
    const before = this.prefixes4.length + this.prefixes6.length;
    this.prefixes4 = this.prefixes4.filter((p) => p.peerId !== peerId);
    this.prefixes6 = this.prefixes6.filter((p) => p.peerId !== peerId);
    return removed + before - this.prefixes4.length - this.prefixes6.length;
  }

  private routesOf(peerId: number): PeerRoutes {
    let routes = this.byPeer.get(peerId);
    if (routes === undefined) {
      routes = { hosts4: [], hosts6: [], prefixes: false };
      this.byPeer.set(peerId, routes);
    }
    return routes;
  }

  /** Owner of an IPv4 destination: exact host first, then the longest iroute. */
  lookup4(address: number): number {
    const host = this.hosts4.get(address);
    if (host !== undefined) return host;
    for (const prefix of this.prefixes4) {
      if ((address & prefix.mask) >>> 0 === prefix.network) return prefix.peerId;
    }
    return NO_ROUTE;
  }

  /** Owner of the IPv6 address at bytes[offset..offset+16]. */
  lookup6(bytes: Uint8Array, offset: number): number {
    const host = this.hosts6.get(key6(bytes, offset));
    if (host !== undefined) return host;
    if (this.prefixes6.length === 0) return NO_ROUTE;
    for (const prefix of this.prefixes6) {
      this.scratch6.set(bytes.subarray(offset, offset + 16));
      maskBytes(this.scratch6, prefix.bits);
      if (equalBytes(this.scratch6, prefix.network)) return prefix.peerId;
    }
    return NO_ROUTE;
  }

  /** Owner of an IP packet's destination (IPv4 or IPv6), NO_ROUTE for anything else. */
  lookupDestination(packet: Uint8Array, offset: number, length: number): number {
    const version = packet[offset] >> 4;
    if (version === 4 && length >= 20) return this.lookup4(readIpv4(packet, offset + 16));
    if (version === 6 && length >= 40) return this.lookup6(packet, offset + 24);
    return NO_ROUTE;
  }

  /** Owner of an IP packet's source: the check that a client sends only from its own addresses. */
  lookupSource(packet: Uint8Array, offset: number, length: number): number {
    const version = packet[offset] >> 4;
    if (version === 4 && length >= 20) return this.lookup4(readIpv4(packet, offset + 12));
    if (version === 6 && length >= 40) return this.lookup6(packet, offset + 8);
    return NO_ROUTE;
  }

  get size(): number {
    return this.hosts4.size + this.hosts6.size + this.prefixes4.length + this.prefixes6.length;
  }
}

function key6(bytes: Uint8Array, offset: number): string {
  // latin1 maps each byte to one UTF-16 unit: a 16-character key, no hex formatting.
  return String.fromCharCode.apply(null, bytes.subarray(offset, offset + 16) as unknown as number[]);
}

function maskBytes(bytes: Uint8Array, bits: number): void {
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    bytes[i] &= (0xff << (8 - keep)) & 0xff;
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 16; i++) if (a[i] !== b[i]) return false;
  return true;
}
