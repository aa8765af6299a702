import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import path from 'node:path';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';

import { PacketBatch, PeerAddresses, POLL_READABLE, UdpSocket } from '../src/shared/native';

function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const check = (): void => {
      if (condition()) return resolve();
      if (Date.now() - started > timeoutMs) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(check, 10);
    };
    check();
  });
}

/** Receives on `socket` via the readiness poll until `count` datagrams arrived. */
function receiveCount(
  socket: UdpSocket,
  count: number,
  capacity = 2048,
): Promise<{ payloads: Buffer[]; from: { family: number; address: string; port: number }[] }> {
  const batch = PacketBatch.allocate(16, capacity);
  const addresses = new PeerAddresses(16);
  const payloads: Buffer[] = [];
  const from: { family: number; address: string; port: number }[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.stopPoll();
      reject(new Error(`received ${payloads.length} of ${count} datagrams`));
    }, 5000);
    socket.poll(POLL_READABLE, () => {
      for (;;) {
        const n = socket.recv(batch, addresses);
        if (n === 0) break;
        for (let i = 0; i < n; i++) {
          payloads.push(Buffer.from(batch.packet(i)));
          from.push(addresses.get(i));
        }
      }
      if (payloads.length >= count) {
        clearTimeout(timer);
        socket.stopPoll();
        resolve({ payloads, from });
      }
    });
  });
}

test('SO_REUSEPORT: worker threads share one port, datagrams from many source ports each arrive exactly once', async (t) => {
  const workerCount = 3;
  const senders = 120;
  const perSender = 5;
  // Find a free port, then let the workers form the group on it.
  const probe = UdpSocket.open({ family: 4, address: '127.0.0.1', port: 0, reusePort: true });
  const port = probe.localAddress().port;
  probe.close();

  const received = new Map<string, number>();
  const perWorker = new Array<number>(workerCount).fill(0);
  let ready = 0;
  const workers: Worker[] = [];
  t.after(async () => {
    await Promise.all(workers.map((w) => w.terminate()));
  });
  for (let w = 0; w < workerCount; w++) {
    const worker = new Worker(path.join(__dirname, 'fixtures', 'udp-worker.js'), { workerData: { family: 4, address: '127.0.0.1', port } });
    workers.push(worker);
    worker.on('message', (message: { kind: string; payloads?: string[] }) => {
      if (message.kind === 'ready') ready++;
      for (const payload of message.payloads ?? []) {
        received.set(payload, (received.get(payload) ?? 0) + 1);
        perWorker[w]++;
      }
    });
  }
  await waitFor(() => ready === workerCount, 5000, 'workers to bind');

  const sockets: dgram.Socket[] = [];
  t.after(() => sockets.forEach((s) => s.close()));
  for (let s = 0; s < senders; s++) {
    const socket = dgram.createSocket('udp4');
    sockets.push(socket);
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    for (let i = 0; i < perSender; i++) socket.send(`sender-${s}-datagram-${i}`, port, '127.0.0.1');
  }
  await waitFor(() => received.size === senders * perSender, 5000, 'all datagrams');
  // Nothing more may trickle in: each datagram exactly once.
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(received.size, senders * perSender);
  for (const [payload, times] of received) assert.equal(times, 1, `${payload} arrived ${times} times`);
  const busy = perWorker.filter((n) => n > 0).length;
  assert.ok(busy >= 2, `the kernel spread datagrams over ${busy} of ${workerCount} workers: ${perWorker.join(',')}`);
});

for (const family of [4, 6] as const) {
  const loopback = family === 4 ? '127.0.0.1' : '::1';
  test(`batch send and receive round-trip byte-exact over IPv${family}`, async (t) => {
    const a = UdpSocket.open({ family, address: loopback, port: 0 });
    const b = UdpSocket.open({ family, address: loopback, port: 0 });
    t.after(() => {
      a.close();
      b.close();
    });
    const count = 32;
    const out = PacketBatch.allocate(count, 1500, 32);
    const to = new PeerAddresses(count);
    const sent: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const payload = randomBytes(i === 0 ? 0 : 1 + ((i * 97) % 1400));
      sent.push(payload);
      out.set(i, payload);
      to.set(i, { family, address: loopback, port: b.localAddress().port });
    }
    const arrival = receiveCount(b, count);
    assert.equal(a.send(out, to, count), count);
    const { payloads, from } = await arrival;
    assert.deepEqual(payloads, sent);
    for (const peer of from) assert.deepEqual(peer, { family, address: loopback, port: a.localAddress().port });
  });
}

test('dual-stack IPv6 socket sees IPv4 peers as family 4 and answers them', async (t) => {
  const server = UdpSocket.open({ family: 6, dualStack: true, address: '::', port: 0 });
  const client = UdpSocket.open({ family: 4, address: '127.0.0.1', port: 0 });
  t.after(() => {
    server.close();
    client.close();
  });
  const batch = PacketBatch.allocate(1, 100);
  batch.set(0, Buffer.from('hello over v4'));
  const to = new PeerAddresses(1);
  to.set(0, { family: 4, address: '127.0.0.1', port: server.localAddress().port });
  const atServer = receiveCount(server, 1);
  client.send(batch, to, 1);
  const got = await atServer;
  assert.deepEqual(got.from[0], { family: 4, address: '127.0.0.1', port: client.localAddress().port });
  // Answer the IPv4 peer from the IPv6 socket.
  const reply = PacketBatch.allocate(1, 100);
  reply.set(0, Buffer.from('reply from dual-stack'));
  const back = new PeerAddresses(1);
  back.set(0, got.from[0] as { family: 4; address: string; port: number });
  const atClient = receiveCount(client, 1);
  assert.equal(server.send(reply, back, 1), 1);
  assert.equal((await atClient).payloads[0].toString(), 'reply from dual-stack');
});

test('a datagram longer than the receive capacity is dropped and counted, the next one arrives', async (t) => {
  const a = UdpSocket.open({ family: 4, address: '127.0.0.1', port: 0 });
  const b = UdpSocket.open({ family: 4, address: '127.0.0.1', port: 0 });
  t.after(() => {
    a.close();
    b.close();
  });
  const out = PacketBatch.allocate(2, 3000);
  out.set(0, randomBytes(3000));
  out.set(1, Buffer.from('small'));
  const to = new PeerAddresses(2);
  to.set(0, { family: 4, address: '127.0.0.1', port: b.localAddress().port });
  to.set(1, { family: 4, address: '127.0.0.1', port: b.localAddress().port });
  const arrival = receiveCount(b, 1, 2000);
  assert.equal(a.send(out, to, 2), 2);
  const got = await arrival;
  assert.equal(got.payloads.length, 1);
  assert.equal(got.payloads[0].toString(), 'small');
  assert.equal(b.drops.truncated, 1);
});

test('receiving on an empty socket returns 0 rather than blocking', (t) => {
  const a = UdpSocket.open({ family: 4, address: '127.0.0.1', port: 0, rcvbuf: 1 << 20, sndbuf: 1 << 20 });
  t.after(() => a.close());
  assert.equal(a.recv(PacketBatch.allocate(4, 1500), new PeerAddresses(4)), 0);
  const sizes = a.setBufferSizes(0, 0);
  assert.ok(sizes.rcvbuf >= 1 << 20 || sizes.rcvbuf > 0);
});

/** A worker thread that sends `count` numbered datagrams to `port`, about `gapUs` apart. */
function sendStream(port: number, count: number, gapUs: number): Promise<void> {
  const code = `
    const dgram = require('node:dgram');
    const { workerData } = require('node:worker_threads');
    const socket = dgram.createSocket('udp4');
    let i = 0;
    const next = () => {
      if (i === workerData.count) return socket.close();
      const payload = Buffer.alloc(200);
      payload.writeUInt32BE(i++, 0);
      const until = process.hrtime.bigint() + BigInt(workerData.gapUs * 1000);
      while (process.hrtime.bigint() < until);
      socket.send(payload, workerData.port, '127.0.0.1', next);
    };
    next();
  `;
  const worker = new Worker(code, { eval: true, workerData: { port, count, gapUs } });
  return new Promise((resolve, reject) => {
    worker.on('error', reject);
    worker.on('exit', () => resolve());
  });
}

test('receive coalescing: a stream arrives whole and in order, with turns held back while it streams and none for lone datagrams', async () => {
  for (const usecs of [0, 200]) {
    // A buffer as large as the product's, so that a stall of this shared machine drops nothing.
    const socket = UdpSocket.open({ family: 4, address: '127.0.0.1', port: 0, rcvbuf: 4 << 20, coalesceUsecs: usecs });
    try {
      const port = socket.localAddress().port;
      const count = 3000;
      const received = receiveCount(socket, count);
      await sendStream(port, count, 20);
      const { payloads } = await received;
      assert.deepEqual(
        payloads.map((p) => p.readUInt32BE(0)),
        Array.from({ length: count }, (_, i) => i),
      );
      const streamed = socket.offload.coalesceWaits;
      if (usecs === 0) assert.equal(streamed, 0);
      else assert.ok(streamed > 0, 'a stream 20 us apart is coalesced');
      // Two datagrams 50 ms apart: each is read as it comes.
      const lone = receiveCount(socket, 2);
      await sendStream(port, 1, 0);
      await new Promise((resolve) => setTimeout(resolve, 50));
      await sendStream(port, 1, 0);
      assert.equal((await lone).payloads.length, 2);
      assert.equal(socket.offload.coalesceWaits, streamed, 'no wait for a datagram after a quiet spell');
    } finally {
      socket.close();
    }
  }
  const socket = UdpSocket.open({ family: 4, address: '127.0.0.1', port: 0 });
  try {
    assert.throws(() => socket.setCoalesce(-1), /0\.\.10000/);
  } finally {
    socket.close();
  }
});
