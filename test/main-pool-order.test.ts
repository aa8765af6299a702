// The ifconfig pool keeps its free entries in choice order instead of scanning the pool per
// connect; these runs check that it still hands out exactly what pool.c's scan picks.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { IfconfigPool } from '../src/main/server/ifconfig-pool';
import { mulberry32, randInt } from './helpers/prng';

/** pool.c's choice, as a scan: the entry this name used (lowest index), else the oldest release, ties by index. */
class ScanPool {
  readonly inUse: boolean[];
  readonly names: (string | null)[];
  readonly lastRelease: number[];
  private releases = 0;
  constructor(
    size: number,
    private readonly duplicateCn: boolean,
  ) {
    this.inUse = new Array<boolean>(size).fill(false);
    this.names = new Array<string | null>(size).fill(null);
    this.lastRelease = new Array<number>(size).fill(0);
  }
  acquire(cn: string): number {
    let pick = this.duplicateCn ? -1 : this.names.findIndex((n, i) => !this.inUse[i] && n === cn);
    if (pick < 0) {
      for (let i = 0; i < this.inUse.length; i++) {
        if (!this.inUse[i] && (pick < 0 || this.lastRelease[i]! < this.lastRelease[pick]!)) pick = i;
      }
    }
    if (pick < 0) return -1;
    this.inUse[pick] = true;
    this.names[pick] = this.duplicateCn ? null : cn;
    return pick;
  }
  release(i: number): void {
    if (!this.inUse[i]) return;
    this.inUse[i] = false;
    this.lastRelease[i] = ++this.releases;
  }
  remember(cn: string, i: number): void {
    this.names[i] = cn;
    this.lastRelease[i] = ++this.releases;
  }
}

for (const duplicateCn of [true, false]) {
  test(`pool order matches a full scan over random connects and disconnects (duplicate-cn ${duplicateCn})`, () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const random = mulberry32(seed);
      const size = 40;
      const pool = new IfconfigPool({
        topology: 'subnet',
        ipv4: { start: '10.20.0.2', end: '10.20.0.41', netmask: '255.255.255.0' },
        duplicateCn,
      });
      const scan = new ScanPool(size, duplicateCn);
      // Some names remembered from a persist file, as a restarted server reads them.
      const persisted = ['c3,10.20.0.9', 'c7,10.20.0.4', 'c3,10.20.0.30'].join('\n');
      pool.loadPersistFile(persisted);
      scan.remember('c3', 7);
      scan.remember('c7', 2);
      scan.remember('c3', 28);
      const held: number[] = [];
      for (let step = 0; step < 3000; step++) {
        if (held.length > 0 && (held.length === size || random() < 0.45)) {
          const at = randInt(random, 0, held.length - 1);
          const index = held.splice(at, 1)[0]!;
          pool.release(index);
          scan.release(index);
          continue;
        }
        const cn = `c${randInt(random, 0, 12)}`;
        const want = scan.acquire(cn);
        const got = pool.acquire(cn);
        assert.equal(got?.index ?? -1, want, `seed ${seed} step ${step}: ${cn}`);
        if (want >= 0) held.push(want);
      }
      assert.equal(pool.used, held.length);
    }
  });
}

test('pool of a /16: every address once, then the released ones in release order', () => {
  const pool = new IfconfigPool({
    topology: 'subnet',
    ipv4: { start: '10.160.0.2', end: '10.160.255.253', netmask: '255.255.0.0' },
    duplicateCn: true,
  });
  const indexes: number[] = [];
  for (;;) {
    const lease = pool.acquire('same');
    if (lease === null) break;
    indexes.push(lease.index);
  }
  assert.equal(indexes.length, pool.size);
  assert.deepEqual(indexes.slice(0, 3), [0, 1, 2]);
  assert.equal(indexes.at(-1), pool.size - 1);
  for (const i of [500, 7, 65000, 8]) pool.release(i);
  assert.deepEqual(
    [1, 2, 3, 4].map(() => pool.acquire('same')?.index),
    [500, 7, 65000, 8],
  );
  assert.equal(pool.acquire('same'), null);
});

test('a pool past OpenVPN 2.6 cap of 65,536 (a /14): every address once, made only as handed out', () => {
  const pool = new IfconfigPool({
    topology: 'subnet',
    ipv4: { start: '10.160.0.2', end: '10.163.255.253', netmask: '255.252.0.0' },
    duplicateCn: true,
  });
  assert.equal(pool.size, 262_140);
  for (let i = 0; i < 100_000; i++) assert.equal(pool.acquire('same')?.index, i);
  assert.equal(pool.lease(99_999).ipv4?.local, '10.161.134.161');
  assert.equal(pool.free, 162_140);
  pool.release(70_000);
  assert.equal(pool.acquire('same')?.index, 100_000, 'never-used entries first');
  assert.equal(pool.toPersistFile(), '', 'duplicate-cn remembers no names');
});
