// The ifconfig pool (OpenVPN's pool.c): virtual addresses handed to clients as they connect.
// topology subnet: one address per client; net30: one /30 per client (the client gets base+2,
// its point-to-point peer base+1). IPv6: one address per client from the server-ipv6 pool.
// A client gets back the entry its common name used before when that entry is free; otherwise
// the entry released longest ago. The main thread is the only owner of the pool.
//
// pool.c finds that entry by scanning the whole pool on every connect; with a /16 (65,534
// entries) that scan was the main thread's largest cost per handshake here, so the free entries
// are kept in the order the choice needs instead: never-used entries by index, then released
// entries in release order (a queue), and remembered names in a map.
import { POOL_MAX_ADDRESSES } from '../../shared/config/pool-limit';
import { addToIPv6, parseIPv6 } from '../../shared/ip-address';
import { ipv4ToNumber, numberToIpv4 } from '../../shared/ip-math';

export interface PoolConfig {
  topology: 'net30' | 'subnet' | 'p2p';
  ipv4?: { start: string; end: string; netmask?: string };
  ipv6?: { base: string; netbits: number };
  duplicateCn: boolean;
}

export interface PoolLease {
  index: number;
  /** What the client is told: `ifconfig local remoteNetmask` (its address, then its peer or netmask). */
  ipv4?: { local: string; remoteNetmask: string };
  /** `ifconfig-ipv6 address/netbits` */
  ipv6?: { address: string; netbits: number };
}

interface Entry {
  inUse: boolean;
  commonName: string | null;
  lastRelease: number;
}

export class IfconfigPool {
  /** Made on first use (entry()): a large pool costs only what its clients take. */
  private readonly entries: Entry[] = [];
  private readonly capacity: number;
  private readonly ipv4Base: number;
  private releases = 0;
  private usedCount = 0;
  /** Entries below this index are in use or have been released at least once. */
  private nextFresh = 0;
  /** Releases in order, as index and release number; stale pairs (taken, released again) are skipped. */
  private releasedIndex: number[] = [];
  private releasedAt: number[] = [];
  private releasedHead = 0;
  /** Entries by the common name they remember (without duplicate-cn). */
  private readonly byName = new Map<string, Set<number>>();

  constructor(private readonly config: PoolConfig) {
    let size = Infinity;
    this.ipv4Base = -1;
    if (config.ipv4) {
      const start = ipv4ToNumber(config.ipv4.start);
      const end = ipv4ToNumber(config.ipv4.end);
      if (start < 0 || end < 0 || end < start)
        throw new RangeError(`ifconfig-pool ${config.ipv4.start} ${config.ipv4.end}: not an address range`);
      if (config.topology === 'net30') {
        // Whole /30 blocks inside the range.
        this.ipv4Base = start & ~3;
        size = Math.floor((end - this.ipv4Base + 1) / 4);
      } else {
        this.ipv4Base = start;
        size = end - start + 1;
      }
    }
    if (config.ipv6) {
      const base = new Uint8Array(16);
      if (!parseIPv6(config.ipv6.base, base)) throw new RangeError(`ifconfig-ipv6-pool ${config.ipv6.base}: not an IPv6 address`);
      // The IPv6 pool is as large as the IPv4 one, or 2^(128-netbits) without IPv4, capped.
      const ipv6Size = config.ipv6.netbits >= 112 ? 2 ** (128 - config.ipv6.netbits) - 2 : POOL_MAX_ADDRESSES;
      size = Math.min(size, ipv6Size);
    }
    if (!Number.isFinite(size) || size <= 0) throw new RangeError('ifconfig pool: no addresses to hand out');
    this.capacity = Math.min(size, POOL_MAX_ADDRESSES);
  }

  /** Entry `index` (< capacity), made on first use. */
  private entry(index: number): Entry {
    let entry = this.entries[index];
    if (entry === undefined) {
      entry = { inUse: false, commonName: null, lastRelease: 0 };
      this.entries[index] = entry;
    }
    return entry;
  }

  get size(): number {
    return this.capacity;
  }
  get used(): number {
    return this.usedCount;
  }
  get free(): number {
    return this.capacity - this.usedCount;
  }

  /** Takes an entry for a client; null when the pool is exhausted. */
  acquire(commonName: string): PoolLease | null {
    const index = this.choose(commonName);
    if (index < 0) return null;
    const entry = this.entry(index);
    entry.inUse = true;
    this.setName(index, this.config.duplicateCn ? null : commonName);
    this.usedCount++;
    return this.lease(index);
  }

  release(index: number): void {
    const entry = this.entries[index];
    if (entry === undefined || !entry.inUse) return;
    entry.inUse = false;
    this.markReleased(index);
    this.usedCount--;
  }

  private markReleased(index: number): void {
    const at = ++this.releases;
    this.entry(index).lastRelease = at;
    this.releasedIndex.push(index);
    this.releasedAt.push(at);
  }

  private setName(index: number, name: string | null): void {
    const entry = this.entry(index);
    if (entry.commonName === name) return;
    if (entry.commonName !== null) {
      const set = this.byName.get(entry.commonName);
      set?.delete(index);
      if (set?.size === 0) this.byName.delete(entry.commonName);
    }
    entry.commonName = name;
    if (name === null) return;
    let set = this.byName.get(name);
    if (set === undefined) this.byName.set(name, (set = new Set()));
    set.add(index);
  }

  /** The addresses of entry `index` (whether in use or not). */
  lease(index: number): PoolLease {
    const result: PoolLease = { index };
    if (this.config.ipv4) {
      if (this.config.topology === 'net30') {
        const block = this.ipv4Base + index * 4;
        result.ipv4 = { local: numberToIpv4(block + 2), remoteNetmask: numberToIpv4(block + 1) };
      } else {
        result.ipv4 = { local: numberToIpv4(this.ipv4Base + index), remoteNetmask: this.config.ipv4.netmask ?? '255.255.255.255' };
      }
    }
    if (this.config.ipv6) {
      result.ipv6 = { address: addToIPv6(this.config.ipv6.base, index) ?? '', netbits: this.config.ipv6.netbits };
    }
    return result;
  }

  /**
   * The free entry this name used last (the lowest index when several), else the free entry
   * released longest ago, never-used entries first and by index: what pool.c's scan picks.
   */
  private choose(commonName: string): number {
    if (!this.config.duplicateCn) {
      let previous = -1;
      for (const i of this.byName.get(commonName) ?? []) if (!this.entries[i].inUse && (previous < 0 || i < previous)) previous = i;
      if (previous >= 0) return previous;
    }
    const entries = this.entries;
    while (this.nextFresh < this.capacity) {
      const entry = entries[this.nextFresh];
      if (entry === undefined || (!entry.inUse && entry.lastRelease === 0)) return this.nextFresh;
      this.nextFresh++;
    }
    while (this.releasedHead < this.releasedIndex.length) {
      const index = this.releasedIndex[this.releasedHead];
      const entry = entries[index];
      if (!entry.inUse && entry.lastRelease === this.releasedAt[this.releasedHead]) {
        this.compactReleased();
        return index;
      }
      this.releasedHead++;
    }
    this.compactReleased();
    return -1;
  }

  /** Drops the consumed front of the release queue once it is half of it. */
  private compactReleased(): void {
    if (this.releasedHead < 1024 || this.releasedHead * 2 < this.releasedIndex.length) return;
    this.releasedIndex = this.releasedIndex.slice(this.releasedHead);
    this.releasedAt = this.releasedAt.slice(this.releasedHead);
    this.releasedHead = 0;
  }

  /** ifconfig-pool-persist file content: `common_name,ipv4,ipv6` per named entry. */
  toPersistFile(): string {
    const lines: string[] = [];
    this.entries.forEach((entry, index) => {
      if (entry.commonName === null) return;
      const lease = this.lease(index);
      lines.push(`${entry.commonName},${lease.ipv4?.local ?? ''},${lease.ipv6?.address ?? ''}`);
    });
    return lines.length > 0 ? lines.join('\n') + '\n' : '';
  }

  /** Reads an ifconfig-pool-persist file: remembered names are preferred for their entries. */
  loadPersistFile(text: string): { loaded: number; ignored: string[] } {
    const ignored: string[] = [];
    let loaded = 0;
    for (const raw of text.split(/\r?\n/)) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const [commonName, ipv4] = line.split(',');
      const index = ipv4 ? this.indexOfIpv4(ipv4) : -1;
      if (!commonName || index < 0) {
        ignored.push(line);
        continue;
      }
      this.setName(index, commonName);
      // As if released just now: unnamed entries go to new names first.
      this.markReleased(index);
      loaded++;
    }
    return { loaded, ignored };
  }

  private indexOfIpv4(text: string): number {
    const value = ipv4ToNumber(text);
    if (value < 0 || !this.config.ipv4) return -1;
    const index = this.config.topology === 'net30' ? (value - 2 - this.ipv4Base) / 4 : value - this.ipv4Base;
    return Number.isInteger(index) && index >= 0 && index < this.capacity ? index : -1;
  }
}
