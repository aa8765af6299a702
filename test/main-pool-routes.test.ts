import assert from 'node:assert/strict';
import { test } from 'node:test';

import { IfconfigPool } from '../src/main/server/ifconfig-pool';
import { NO_ROUTE, RouteTable } from '../src/shared/route-table';
import { ipv4ToNumber } from '../src/shared/ip-math';
import { ipv4Udp, ipv6Udp } from './helpers/ip-packets';

test('pool, topology subnet: one address each, as OpenVPN pushes them', () => {
  // server 10.8.0.0 255.255.255.0 -> ifconfig-pool 10.8.0.2 10.8.0.253 255.255.255.0
  const pool = new IfconfigPool({
    topology: 'subnet',
    ipv4: { start: '10.8.0.2', end: '10.8.0.253', netmask: '255.255.255.0' },
    duplicateCn: false,
  });
  assert.equal(pool.size, 252);
  const a = pool.acquire('alice');
  const b = pool.acquire('bob');
  assert.deepEqual(a?.ipv4, { local: '10.8.0.2', remoteNetmask: '255.255.255.0' });
  assert.deepEqual(b?.ipv4, { local: '10.8.0.3', remoteNetmask: '255.255.255.0' });
  assert.equal(pool.used, 2);
});

test('pool, topology net30: a /30 each, client base+2 with peer base+1', () => {
  // server 10.8.0.0 255.255.255.0 (net30) -> ifconfig-pool 10.8.0.4 10.8.0.251
  const pool = new IfconfigPool({ topology: 'net30', ipv4: { start: '10.8.0.4', end: '10.8.0.251' }, duplicateCn: false });
  assert.equal(pool.size, 62);
  assert.deepEqual(pool.acquire('a')?.ipv4, { local: '10.8.0.6', remoteNetmask: '10.8.0.5' });
  assert.deepEqual(pool.acquire('b')?.ipv4, { local: '10.8.0.10', remoteNetmask: '10.8.0.9' });
});

test('pool: a returning common name gets its old address; others get the longest-released one', () => {
  const pool = new IfconfigPool({
    topology: 'subnet',
    ipv4: { start: '10.9.0.2', end: '10.9.0.5', netmask: '255.255.255.0' },
    ipv6: { base: 'fd00:9::1000', netbits: 64 },
    duplicateCn: false,
  });
  const leases = ['a', 'b', 'c', 'd'].map((cn) => pool.acquire(cn));
  assert.equal(pool.acquire('e'), null, 'exhausted');
  assert.equal(leases[3]?.ipv6?.address, 'fd00:9::1003');
  pool.release(leases[1]!.index);
  pool.release(leases[2]!.index);
  // 'c' comes back to its own entry although 'b' was released earlier.
  assert.equal(pool.acquire('c')?.ipv4?.local, '10.9.0.4');
  assert.equal(pool.acquire('x')?.ipv4?.local, '10.9.0.3');
  assert.equal(pool.free, 0);
});

test('pool persist file round-trips and steers names to their entries', () => {
  const pool = new IfconfigPool({
    topology: 'subnet',
    ipv4: { start: '10.9.0.2', end: '10.9.0.9', netmask: '255.255.255.0' },
    duplicateCn: false,
  });
  pool.acquire('a');
  pool.acquire('b');
  const text = pool.toPersistFile();
  assert.equal(text, 'a,10.9.0.2,\nb,10.9.0.3,\n');
  const again = new IfconfigPool({
    topology: 'subnet',
    ipv4: { start: '10.9.0.2', end: '10.9.0.9', netmask: '255.255.255.0' },
    duplicateCn: false,
  });
  assert.deepEqual(again.loadPersistFile(text + 'garbage line\nz,10.99.0.1\n'), { loaded: 2, ignored: ['garbage line', 'z,10.99.0.1'] });
  assert.equal(again.acquire('new')?.ipv4?.local, '10.9.0.4', 'new names avoid remembered entries');
  assert.equal(again.acquire('b')?.ipv4?.local, '10.9.0.3');
});

test('route table: hosts, iroutes longest-first, forget, packet lookups', () => {
  const routes = new RouteTable();
  routes.learnHost4('10.8.0.2', 7);
  routes.learnHost6('fd00:8::1000', 7);
  routes.learnIroute4('192.168.50.0', 24, 9);
  routes.learnIroute4('192.168.0.0', 16, 11);
  routes.learnIroute6('fd00:50::', 48, 9);
  assert.equal(routes.lookup4(ipv4ToNumber('10.8.0.2')), 7);
  assert.equal(routes.lookup4(ipv4ToNumber('10.8.0.3')), NO_ROUTE);
  assert.equal(routes.lookup4(ipv4ToNumber('192.168.50.9')), 9);
  assert.equal(routes.lookup4(ipv4ToNumber('192.168.51.9')), 11);
  const v4 = ipv4Udp('10.8.0.2', '192.168.50.1', 1, 2, Buffer.alloc(4));
  assert.equal(routes.lookupDestination(v4, 0, v4.length), 9);
  assert.equal(routes.lookupSource(v4, 0, v4.length), 7);
  const v6 = ipv6Udp('fd00:8::1000', 'fd00:50::77', 1, 2, Buffer.alloc(4));
  assert.equal(routes.lookupDestination(v6, 0, v6.length), 9);
  assert.equal(routes.lookupSource(v6, 0, v6.length), 7);
  assert.equal(routes.lookupDestination(Buffer.from([0x45, 0]), 0, 2), NO_ROUTE, 'short packet');
  assert.equal(routes.forget(9), 2);
  assert.equal(routes.lookup4(ipv4ToNumber('192.168.50.9')), 11);
  assert.equal(routes.lookupDestination(v6, 0, v6.length), NO_ROUTE);
});

test('route table: forget removes only what the client still owns; 50,000 clients leave one by one', () => {
  const routes = new RouteTable();
  routes.learnHost4('10.8.0.2', 1);
  routes.learnHost6('fd00:8::2', 1);
  // The address passes to another client (a reconnect under a new peer-id): it stays theirs.
  routes.learnHost4('10.8.0.2', 2);
  assert.equal(routes.forget(1), 1, 'its IPv6 address only');
  assert.equal(routes.lookup4(ipv4ToNumber('10.8.0.2')), 2);
  assert.equal(routes.forget(1), 0, 'nothing left to forget');
  assert.equal(routes.forget(2), 1);
  assert.equal(routes.size, 0);

  // 50,000 clients leaving one by one (a restart, a mass disconnect): linear, not quadratic.
  const many = 50_000;
  for (let i = 0; i < many; i++) routes.learnHost4(`10.${8 + (i >> 16)}.${(i >> 8) & 0xff}.${i & 0xff}`, 100 + i);
  assert.equal(routes.size, many);
  let removed = 0;
  for (let i = 0; i < many; i++) removed += routes.forget(100 + i);
  assert.equal(removed, many);
  assert.equal(routes.size, 0);
});
