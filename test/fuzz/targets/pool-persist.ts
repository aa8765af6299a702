// The ifconfig-pool-persist file (ifconfig-pool.ts loadPersistFile): "common name,address" lines
// OpenVPN and shardvpn write, read back at start. A line that does not fit the pool is ignored and
// reported, never thrown; the pool stays consistent (acquire still works, no lease is duplicated).
import { IfconfigPool } from '../../../src/main/server/ifconfig-pool';
import type { PoolConfig } from '../../../src/main/server/ifconfig-pool';
import { Finding } from '../finding';

const POOLS: readonly PoolConfig[] = [
  { topology: 'subnet', ipv4: { start: '10.8.0.2', end: '10.8.0.20', netmask: '255.255.255.0' }, duplicateCn: false },
  { topology: 'net30', ipv4: { start: '10.8.0.4', end: '10.8.0.40' }, duplicateCn: false },
  {
    topology: 'subnet',
    ipv4: { start: '10.8.0.2', end: '10.8.0.9', netmask: '255.255.255.0' },
    ipv6: { base: 'fd00:8::1000', netbits: 64 },
    duplicateCn: true,
  },
];

export function fuzz(data: Buffer): void {
  const text = data.toString('utf8');
  for (const config of POOLS) {
    const pool = new IfconfigPool(config);
    const r = pool.loadPersistFile(text);
    if (!Number.isInteger(r.loaded) || r.loaded < 0 || !Array.isArray(r.ignored)) throw new Finding('loadPersistFile: result');
    if (pool.used !== 0) throw new Finding('loadPersistFile: a persisted name took a lease');
    const seen = new Set<number>();
    // The names the file persisted first (they get their old address back), then new ones.
    const names = text
      .split('\n')
      .slice(0, 8)
      .map((l) => l.trim().split(',')[0] ?? '');
    for (let i = 0; i < pool.size + 1; i++) {
      const lease = pool.acquire(names[i] ?? `cn${i}`);
      if (lease === null) {
        if (i < pool.size) throw new Finding(`acquire failed with ${pool.free} free`);
        break;
      }
      if (seen.has(lease.index)) throw new Finding(`lease ${lease.index} handed out twice`);
      seen.add(lease.index);
    }
  }
}
