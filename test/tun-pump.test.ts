// The main thread's TUN pump (src/main/server/tun-pump.ts) on a FakeTun with real PacketRings:
// TUN -> the owning shard's from-tun ring by the route table, to-tun rings -> TUN, and the
// client-to-client hand-over from one shard's to-tun ring to another's from-tun ring.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { TunPump, type PumpShard } from '../src/main/server/tun-pump';
import { RouteTable } from '../src/shared/route-table';
import { BROADCAST_PEER_ID, TUN_QUEUE_CROSSING } from '../src/shared/peer-id';
import { PacketRing } from '../src/shared/ring';
import { createRegistry } from '../src/main/ops/metrics';
import { counterView, createCounterBuffer } from '../src/shared/counters';
import { FakeTun } from './helpers/fake-io';
import { ipv4Udp } from './helpers/ip-packets';

/** Two shards: peer-id 1 lives on shard 1 (10.8.0.2), peer-id 2 on shard 0 (10.8.0.3). */
function lab(clientToClient: boolean, slots = 16, queues: FakeTun[] = []): { tun: FakeTun; shards: PumpShard[]; pump: TunPump } {
  const tun = new FakeTun();
  const routes = new RouteTable();
  routes.learnHost4('10.8.0.2', 1);
  routes.learnHost4('10.8.0.3', 2);
  const shards: PumpShard[] = [0, 1].map(() => ({ toTun: PacketRing.create(slots, 2048), fromTun: PacketRing.create(slots, 2048) }));
  const pump = new TunPump(tun, routes, () => shards, clientToClient, queues);
  pump.start();
  return { tun, shards, pump };
}

function drain(ring: PacketRing): { packet: Buffer; meta: number }[] {
  const got: { packet: Buffer; meta: number }[] = [];
  ring.popBatch(64, (slot, length, meta) => got.push({ packet: Buffer.from(slot.subarray(0, length)), meta }));
  return got;
}

async function waitFor(done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!done()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

const payload = Buffer.from('pump');
const NO_TUN_OFFLOAD = {
  vnetHeader: false,
  tso: false,
  uso: false,
  superpackets: 0,
  segments: 0,
  checksums: 0,
  readDrops: 0,
  coalescedWrites: 0,
  coalescedPackets: 0,
  coalesceRefusals: 0,
};

test('a packet read from TUN lands on the from-tun ring of the shard that owns its destination', () => {
  const { tun, shards, pump } = lab(false);
  try {
    const toFirst = ipv4Udp('10.0.0.1', '10.8.0.2', 1000, 53, payload);
    const toSecond = ipv4Udp('10.0.0.1', '10.8.0.3', 1000, 53, payload);
    const nowhere = ipv4Udp('10.0.0.1', '10.9.9.9', 1000, 53, payload);
    const multicast = ipv4Udp('10.0.0.1', '224.0.0.251', 5353, 5353, payload);
    tun.inject(toFirst, toSecond, nowhere, multicast);
    assert.deepEqual(drain(shards[1]!.fromTun), [
      { packet: toFirst, meta: 1 },
      { packet: multicast, meta: BROADCAST_PEER_ID },
    ]);
    assert.deepEqual(drain(shards[0]!.fromTun), [
      { packet: toSecond, meta: 2 },
      { packet: multicast, meta: BROADCAST_PEER_ID },
    ]);
    assert.equal(pump.counters.tunRead, 4);
    assert.equal(pump.counters.noRoute, 1);
  } finally {
    pump.stop();
  }
});

test("a to-tun ring's packets are written to TUN; a full TUN queue is a counted drop", async () => {
  const { tun, shards, pump } = lab(false);
  try {
    const up = [ipv4Udp('10.8.0.3', '10.0.0.1', 1000, 53, payload), ipv4Udp('10.8.0.2', '10.0.0.1', 1000, 53, payload)];
    shards[0]!.toTun.push(up[0]!, 2);
    shards[1]!.toTun.push(up[1]!, 1);
    await waitFor(() => tun.written.length === 2, 'two TUN writes');
    assert.deepEqual([...tun.written].sort(Buffer.compare), [...up].sort(Buffer.compare));
    assert.equal(pump.counters.tunWritten, 2);

    tun.writeLimit = 0;
    shards[0]!.toTun.push(up[0]!, 2);
    await waitFor(() => pump.counters.tunWriteDrops === 1, 'the TUN write drop');
    assert.equal(tun.written.length, 2);
  } finally {
    pump.stop();
  }
});

test("client-to-client: a to-tun packet for another client goes onto that client's shard ring, not TUN", async () => {
  const { tun, shards, pump } = lab(true);
  try {
    // From the client on shard 0 (peer-id 2) to the one on shard 1 (peer-id 1).
    const across = ipv4Udp('10.8.0.3', '10.8.0.2', 1000, 53, payload);
    // To the network behind the server: TUN as usual.
    const out = ipv4Udp('10.8.0.3', '10.0.0.1', 1000, 53, payload);
    shards[0]!.toTun.push(across, 2);
    shards[0]!.toTun.push(out, 2);
    await waitFor(() => tun.written.length === 1, 'the TUN write');
    assert.deepEqual(tun.written, [out]);
    assert.deepEqual(drain(shards[1]!.fromTun), [{ packet: across, meta: 1 }]);
    assert.deepEqual(drain(shards[0]!.fromTun), []);
    assert.equal(pump.counters.clientToClient, 1);
  } finally {
    pump.stop();
  }
});

test("a shard's full from-tun ring (the shard stalled): each packet more is dropped and counted, other shards are served", async () => {
  const { tun, shards, pump } = lab(false, 8);
  try {
    // 20 packets for the client on shard 1, which drains nothing, and 2 for shard 0's client;
    // inject() returns only once the pump has read all of them, so nothing waited for room.
    const stalled = Array.from({ length: 20 }, (_, n) => ipv4Udp('10.0.0.1', '10.8.0.2', 1000 + n, 53, payload));
    const other = [ipv4Udp('10.0.0.1', '10.8.0.3', 1000, 53, payload), ipv4Udp('10.0.0.1', '10.8.0.3', 1001, 53, payload)];
    tun.inject(...stalled.slice(0, 10), ...other, ...stalled.slice(10));
    assert.equal(tun.toRead.length, 0);
    assert.equal(pump.counters.tunRead, 22);
    assert.equal(shards[1]!.fromTun.size, 8);
    assert.equal(shards[1]!.fromTun.drops, 12);
    assert.equal(pump.counters.ringFull, 12);
    assert.deepEqual(drain(shards[0]!.fromTun), [
      { packet: other[0], meta: 2 },
      { packet: other[1], meta: 2 },
    ]);
    assert.equal(shards[0]!.fromTun.drops, 0);
    // /metrics reports the pump's drops as shard "main", reason ring_full.
    const registry = createRegistry({
      shards: () => shards.map((s) => ({ ...s, counters: counterView(createCounterBuffer()), restarts: 0 })),
      pump: () => pump.counters,
      tunOffload: () => NO_TUN_OFFLOAD,
      pool: () => null,
      clients: () => [],
      perClient: false,
    });
    assert.match(await registry.metrics(), /^shardvpn_dropped_packets_total\{shard="main",reason="ring_full"\} 12$/m);
    // The ring kept the first 8 in order; drained, it takes packets again.
    assert.deepEqual(
      drain(shards[1]!.fromTun).map((p) => p.packet),
      stalled.slice(0, 8),
    );
    tun.inject(stalled[0]!);
    assert.equal(shards[1]!.fromTun.size, 1);
    assert.equal(pump.counters.ringFull, 12);
  } finally {
    pump.stop();
  }
});

test('tun-queues shard: a crossing goes to its owner (multicast to the other shards), never to TUN; client-to-client leftovers go to the source shard queue', async () => {
  const queues = [new FakeTun(), new FakeTun()];
  const { tun, shards, pump } = lab(true, 16, queues);
  try {
    const toFirst = ipv4Udp('10.0.0.1', '10.8.0.2', 1000, 53, payload);
    const nowhere = ipv4Udp('10.0.0.1', '10.9.9.9', 1000, 53, payload);
    const multicast = ipv4Udp('10.0.0.1', '224.0.0.251', 5353, 5353, payload);
    // Shard 0 read them from its queue: peer-id 1 is shard 1's client.
    shards[0]!.toTun.push(toFirst, TUN_QUEUE_CROSSING);
    shards[0]!.toTun.push(nowhere, TUN_QUEUE_CROSSING);
    shards[0]!.toTun.push(multicast, TUN_QUEUE_CROSSING | BROADCAST_PEER_ID);
    await waitFor(() => pump.counters.queueCrossings === 3, 'three crossings');
    assert.deepEqual(drain(shards[1]!.fromTun), [
      { packet: toFirst, meta: 1 },
      { packet: multicast, meta: BROADCAST_PEER_ID },
    ]);
    assert.deepEqual(drain(shards[0]!.fromTun), [], 'the multicast is not sent back to the shard that read it');
    assert.equal(pump.counters.noRoute, 1);
    assert.equal(tun.written.length + queues[0]!.written.length + queues[1]!.written.length, 0);

    // Client-to-client: a packet from shard 1's client to no client leaves through shard 1's queue.
    const out = ipv4Udp('10.8.0.2', '10.0.0.1', 1000, 53, payload);
    shards[1]!.toTun.push(out, 1);
    await waitFor(() => queues[1]!.written.length === 1, 'the write to shard 1 queue');
    assert.deepEqual(queues[1]!.written, [out]);
    assert.equal(tun.written.length + queues[0]!.written.length, 0);
  } finally {
    pump.stop();
  }
});
