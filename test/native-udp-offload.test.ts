// UDP GSO on send and GRO on receive (src/native/udp.cc) on loopback: runs of equal datagrams to
// one peer leave as segmented messages and arrive, coalesced or not, as the same datagrams in the
// same order; the disabled path gives the same datagrams with the counters at rest.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { test } from 'node:test';

import { NetworkNamespace, runNodeIn } from '../lab/netns';
import { PacketBatch, PeerAddresses, POLL_READABLE, UdpSocket } from '../src/shared/native';

interface Datagram {
  to: 'a' | 'b';
  size: number;
}

/** Bytes of datagram `index`: distinct per datagram, so order and boundaries are checked. */
function payload(index: number, size: number): Buffer {
  return createHash('sha512')
    .update(`datagram ${index}`)
    .digest()
    .toString('hex')
    .repeat(Math.ceil(size / 128))
    .slice(0, size)
    .split('')
    .reduce((bytes, ch, i) => {
      bytes[i] = ch.charCodeAt(0) ^ (i & 0xff);
      return bytes;
    }, Buffer.alloc(size));
}

function open(offload: boolean): UdpSocket {
  return UdpSocket.open({ family: 4, address: '127.0.0.1', port: 0, offload, rcvbuf: 4 << 20 });
}

/** Receives `count` datagrams in batches of `slots` (fewer than a coalesced message may hold). */
function receive(socket: UdpSocket, count: number, slots = 16): Promise<{ payloads: Buffer[]; ports: number[] }> {
  const batch = PacketBatch.allocate(slots, 2048);
  const from = new PeerAddresses(slots);
  const payloads: Buffer[] = [];
  const ports: number[] = [];
  if (count === 0) return Promise.resolve({ payloads, ports });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.stopPoll();
      reject(new Error(`received ${payloads.length} of ${count} datagrams`));
    }, 5000);
    socket.poll(POLL_READABLE, () => {
      for (;;) {
        const n = socket.recv(batch, from);
        for (let i = 0; i < n; i++) {
          payloads.push(Buffer.from(batch.packet(i)));
          ports.push(from.get(i).port);
        }
        if (n < slots) break;
      }
      if (payloads.length >= count) {
        clearTimeout(timer);
        socket.stopPoll();
        resolve({ payloads, ports });
      }
    });
  });
}

/** Sends `plan` from a sender with offload `gso` to receivers with GRO `gro`; returns what each got. */
async function transfer(
  plan: readonly Datagram[],
  gso: boolean,
  gro: boolean,
): Promise<{ a: Buffer[]; b: Buffer[]; sender: UdpSocket['offload']; receiverA: UdpSocket['offload']; sent: number; port: number }> {
  const sender = open(gso);
  const a = open(gro);
  const b = open(gro);
  try {
    const batch = PacketBatch.allocate(plan.length, 2048);
    const to = new PeerAddresses(plan.length);
    plan.forEach((d, i) => {
      batch.set(i, payload(i, d.size));
      to.set(i, { family: 4, address: '127.0.0.1', port: (d.to === 'a' ? a : b).localAddress().port });
    });
    const countA = plan.filter((d) => d.to === 'a').length;
    const gotA = receive(a, countA);
    const gotB = receive(b, plan.length - countA);
    const sent = sender.send(batch, to, plan.length);
    const [ra, rb] = await Promise.all([gotA, gotB]);
    const port = sender.localAddress().port;
    assert.ok(
      [...ra.ports, ...rb.ports].every((p) => p === port),
      'every datagram comes from the sender',
    );
    return { a: ra.payloads, b: rb.payloads, sender: sender.offload, receiverA: a.offload, sent, port };
  } finally {
    sender.close();
    a.close();
    b.close();
  }
}

function expected(plan: readonly Datagram[], to: 'a' | 'b'): Buffer[] {
  return plan.flatMap((d, i) => (d.to === to ? [payload(i, d.size)] : []));
}

const run = (n: number, size: number, to: 'a' | 'b' = 'a'): Datagram[] => Array.from({ length: n }, () => ({ to, size }));

test('a run of equal datagrams to one peer leaves as one segmented message and arrives as the same datagrams, GRO on and off', async () => {
  const plan = run(40, 1300);
  for (const gro of [true, false]) {
    const r = await transfer(plan, true, gro);
    assert.equal(r.sent, 40);
    assert.deepEqual(r.a, expected(plan, 'a'), `bytes and order, receiver GRO ${gro}`);
    assert.equal(r.sender.gso, true, 'loopback takes UDP_SEGMENT');
    assert.equal(r.sender.gsoMessages, 1);
    assert.equal(r.sender.gsoDatagrams, 40);
    assert.equal(r.sender.gsoFallbacks, 0);
    assert.equal(r.receiverA.gro, gro);
    if (gro) {
      // Loopback hands a segmented message to a GRO socket whole: 40 datagrams in 16-slot receives.
      assert.ok(r.receiverA.groMessages >= 1, 'coalesced messages counted');
      assert.equal(r.receiverA.groDatagrams, 40);
    } else {
      assert.equal(r.receiverA.groMessages, 0);
    }
  }
});

test('mixed sizes and peers split into the right runs; a shorter datagram ends its run as the last segment', async () => {
  const plan: Datagram[] = [
    ...run(3, 1000),
    { to: 'a', size: 600 }, // short last segment of the first run
    ...run(2, 1000),
    ...run(2, 1000, 'b'),
    { to: 'a', size: 1200 }, // longer than the run before: a new run
    { to: 'a', size: 1200 },
    { to: 'b', size: 77 }, // alone
    { to: 'a', size: 0 }, // an empty datagram is sent alone
    ...run(3, 500),
  ];
  const r = await transfer(plan, true, true);
  assert.equal(r.sent, plan.length);
  assert.deepEqual(r.a, expected(plan, 'a'));
  assert.deepEqual(r.b, expected(plan, 'b'));
  // Runs: 4 x a (1000,1000,1000,600), 2 x a, 2 x b, 2 x a (1200), b 77 alone, a 0 alone, 3 x a (500).
  assert.equal(r.sender.gsoMessages, 5);
  assert.equal(r.sender.gsoDatagrams, 13);
});

test('a run is cut at 64 segments and at 64 KiB per message', async () => {
  const small = run(100, 200); // 64 + 36 segments
  const r1 = await transfer(small, true, true);
  assert.deepEqual(r1.a, expected(small, 'a'));
  assert.equal(r1.sender.gsoMessages, 2);
  assert.equal(r1.sender.gsoDatagrams, 100);
  const large = run(60, 1400); // 46 x 1400 = 64400 bytes fit 65507; then 14
  const r2 = await transfer(large, true, true);
  assert.deepEqual(r2.a, expected(large, 'a'));
  assert.equal(r2.sender.gsoMessages, 2);
  assert.equal(r2.sender.gsoDatagrams, 60);
  assert.equal(r2.receiverA.groDatagrams, 60);
});

test('offload disabled: the same datagrams arrive, one per message, counters at rest', async () => {
  const plan: Datagram[] = [...run(20, 1300), { to: 'a', size: 31 }, ...run(5, 900, 'b')];
  const on = await transfer(plan, true, true);
  const off = await transfer(plan, false, false);
  assert.deepEqual(off.a, on.a);
  assert.deepEqual(off.b, on.b);
  assert.deepEqual(off.a, expected(plan, 'a'));
  assert.ok(on.sender.gsoMessages > 0);
  assert.deepEqual(
    { ...off.sender, ...{ gro: off.receiverA.gro, groMessages: off.receiverA.groMessages } },
    { gso: false, gro: false, gsoDatagrams: 0, gsoMessages: 0, gsoFallbacks: 0, groMessages: 0, groDatagrams: 0, coalesceWaits: 0 },
  );
});

test('a coalesced datagram larger than the receive slots is dropped and counted, the others delivered', async () => {
  const sender = open(true);
  const receiver = open(true);
  try {
    const plan = [3000, 3000, 3000, 100];
    const batch = PacketBatch.allocate(plan.length, 4096);
    const to = new PeerAddresses(plan.length);
    plan.forEach((size, i) => {
      batch.set(i, payload(i, size));
      to.set(i, { family: 4, address: '127.0.0.1', port: receiver.localAddress().port });
    });
    const got = receive(receiver, 1);
    assert.equal(sender.send(batch, to, plan.length), plan.length);
    const r = await got;
    assert.deepEqual(r.payloads, [payload(3, 100)]);
    assert.equal(receiver.drops.truncated, 3);
  } finally {
    sender.close();
    receiver.close();
  }
});

test('a segment over the route MTU: the kernel refuses it once, that size goes unsegmented (fragmented by IP), smaller runs still segment', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root for a network namespace');
  const ns = NetworkNamespace.create('gso-mtu');
  try {
    ns.ip(['link', 'set', 'lo', 'mtu', '1280']);
    const run = await runNodeIn(ns, path.join(__dirname, 'fixtures', 'udp-gso-mtu.js'), []);
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout) as { sent: number[]; received: number; intact: boolean } & UdpSocket['offload'];
    assert.deepEqual(result.sent, [10, 10, 10]);
    assert.equal(result.received, 30);
    assert.equal(result.intact, true, 'every datagram arrives whole and in order');
    assert.equal(result.gso, true, 'EINVAL for one size does not turn GSO off');
    assert.equal(result.gsoFallbacks, 1, 'refused once; the second run of 1400 bytes is not tried again');
    assert.equal(result.gsoMessages, 1, 'the run of 500-byte datagrams');
    assert.equal(result.gsoDatagrams, 10);
  } finally {
    ns.remove();
  }
});

test('receive coalescing never waits for a peer whose datagrams arrive coalesced (GSO runs)', async () => {
  const sender = open(true);
  const receiver = UdpSocket.open({ family: 4, address: '127.0.0.1', port: 0, offload: true, rcvbuf: 4 << 20, coalesceUsecs: 1000 });
  try {
    const runs = 100;
    // Runs longer than the receiver's 16 slots, so reads also hand out what is left of a message.
    const perRun = 40;
    const got = receive(receiver, runs * perRun);
    const batch = PacketBatch.allocate(perRun, 2048);
    const to = new PeerAddresses(perRun);
    for (let run = 0; run < runs; run++) {
      for (let i = 0; i < perRun; i++) {
        batch.set(i, payload(run * perRun + i, 600));
        to.set(i, { family: 4, address: '127.0.0.1', port: receiver.localAddress().port });
      }
      assert.equal(sender.send(batch, to, perRun), perRun);
      // The next run after the receiver's turn, well within the coalescing window.
      await new Promise((resolve) => setImmediate(resolve));
    }
    const { payloads } = await got;
    assert.deepEqual(
      payloads,
      Array.from({ length: runs * perRun }, (_, i) => payload(i, 600)),
    );
    assert.ok(receiver.offload.groMessages > 0, 'the runs arrived coalesced');
    assert.equal(receiver.offload.coalesceWaits, 0);
  } finally {
    sender.close();
    receiver.close();
  }
});
