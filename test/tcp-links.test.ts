// A shard's TCP connections as one LinkIO (src/workers/shard/tcp-links.ts), on loopback: each
// connection's framed packets come out as datagrams from its address and go back down only that
// connection; a bad length closes and counts; connections over the limit are refused at accept;
// a burst larger than one poll round is drained without waiting for more input.
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';

import { COUNTER, counterView, createCounterBuffer } from '../src/shared/counters';
import { ADDRESS_SIZE, PacketBatch, PeerAddresses, closeDescriptor, openTcpListener, socketPort } from '../src/shared/native';
import { frameForStream } from '../src/shared/protocol/stream-framing';
import { TcpLinks } from '../src/workers/shard/tcp-links';

function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const poll = (): void => {
      if (check()) resolve();
      else if (Date.now() > end) reject(new Error(`timed out: ${what}`));
      else setTimeout(poll, 10);
    };
    poll();
  });
}

function open(maxConnections = 16): { links: TcpLinks; port: number; counters: Float64Array } {
  const fd = openTcpListener({ family: 4, dualStack: false, address: '127.0.0.1', port: 0, reusePort: false });
  const port = socketPort(fd);
  const counters = counterView(createCounterBuffer());
  const links = new TcpLinks({ listenerFd: fd, maxPacket: 1500, noDelay: true, idleMs: 60_000, maxConnections, counters, log: () => {} });
  return { links, port, counters };
}

function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
}

test('packets keep their connection: in as datagrams from its address, out only down it', async () => {
  const { links, port } = open();
  const batch = PacketBatch.allocate(64, 2048);
  const from = new PeerAddresses(64);
  const got: { entry: Uint8Array; text: string }[] = [];
  links.poll(1, () => {
    const n = links.recv(batch, from);
    for (let i = 0; i < n; i++) {
      got.push({ entry: from.bytes.slice(i * ADDRESS_SIZE, (i + 1) * ADDRESS_SIZE), text: Buffer.from(batch.packet(i)).toString() });
    }
  });
  const a = await dial(port);
  const b = await dial(port);
  const received = { a: [] as Buffer[], b: [] as Buffer[] };
  a.on('data', (d: Buffer) => received.a.push(d));
  b.on('data', (d: Buffer) => received.b.push(d));
  try {
    a.write(Buffer.concat([frameForStream(Buffer.from('a1')), frameForStream(Buffer.from('a2'))]));
    b.write(frameForStream(Buffer.from('b1')));
    await until(() => got.length === 3, 'three packets');
    const entryOf = (text: string): Uint8Array => got.find((g) => g.text === text)!.entry;
    assert.notDeepEqual(entryOf('a1'), entryOf('b1'));
    assert.deepEqual(entryOf('a2'), entryOf('a1'));
    // Two replies addressed to A's entry, as the shard sends them.
    const out = PacketBatch.allocate(2, 64);
    out.set(0, Buffer.from('r1'));
    out.set(1, Buffer.from('r2'));
    const to = new PeerAddresses(2);
    to.bytes.set(entryOf('a1'), 0);
    to.bytes.set(entryOf('a1'), ADDRESS_SIZE);
    assert.equal(links.send(out, to, 2), 2);
    const expected = Buffer.concat([frameForStream(Buffer.from('r1')), frameForStream(Buffer.from('r2'))]);
    await until(() => Buffer.concat(received.a).length === expected.length, 'two framed replies on A');
    assert.deepEqual(Buffer.concat(received.a), expected);
    assert.equal(Buffer.concat(received.b).length, 0, 'nothing on B');
  } finally {
    a.destroy();
    b.destroy();
    links.close();
  }
});

test('a bad length closes the connection and is counted; the shard hears its address', async () => {
  const { links, port, counters } = open();
  const closed: string[] = [];
  links.onClosed = (key) => closed.push(key);
  const s = await dial(port);
  const ended = new Promise<void>((resolve) => s.on('close', () => resolve()));
  s.write(Buffer.from([0, 0]));
  await ended;
  await until(() => closed.length === 1, 'onClosed');
  assert.equal(counters[COUNTER.dropTcpFraming], 1);
  assert.equal(counters[COUNTER.tcpConnections], 0);
  links.close();
});

test('connections over the limit are refused at accept and counted', async () => {
  const { links, port, counters } = open(2);
  const sockets = [await dial(port), await dial(port)];
  try {
    await until(() => counters[COUNTER.tcpConnections] === 2, 'two held');
    const third = await dial(port);
    sockets.push(third);
    await new Promise<void>((resolve) => third.on('close', () => resolve()));
    assert.equal(counters[COUNTER.dropTcpLimit], 1);
    assert.equal(counters[COUNTER.tcpConnections], 2);
  } finally {
    for (const s of sockets) s.destroy();
    links.close();
  }
});

test('a burst larger than one poll round is drained without more input', async () => {
  const { links, port } = open();
  const batch = PacketBatch.allocate(64, 2048);
  const from = new PeerAddresses(64);
  let count = 0;
  // Like the packet loops: one batch per callback, however much is waiting.
  links.poll(1, () => {
    count += links.recv(batch, from);
  });
  const s = await dial(port);
  try {
    const frames = Array.from({ length: 2000 }, (_, i) => frameForStream(Buffer.from(`p${i}`)));
    s.write(Buffer.concat(frames));
    await until(() => count === 2000, `2000 packets (got ${count})`);
  } finally {
    s.destroy();
    links.close();
  }
});

/** How many of this process's descriptors name the socket that descriptor fd names. */
function copiesOf(fd: number): number {
  const socket = readlinkSync(`/proc/self/fd/${fd}`);
  return readdirSync('/proc/self/fd').filter((d) => {
    try {
      return readlinkSync(`/proc/self/fd/${d}`) === socket;
    } catch {
      return false;
    }
  }).length;
}

/** A worker that copies listener fd, runs `then`, says 'ready' and spins until terminated. */
async function terminatedWorker(fd: number, then: string): Promise<void> {
  const native = JSON.stringify(path.join(__dirname, '..', 'src', 'shared', 'native', 'index.js'));
  const code = `
    const { parentPort } = require('node:worker_threads');
    const native = require(${native});
    const copy = native.dupDescriptor(${fd});
    ${then}
    parentPort.postMessage('ready');
    for (;;) {}
  `;
  const worker = new Worker(code, { eval: true });
  await new Promise<void>((resolve, reject) => {
    worker.on('message', () => resolve());
    worker.on('error', reject);
  });
  await worker.terminate();
}

test('a listener copy a terminated worker never took over is closed with the worker', async () => {
  const fd = openTcpListener({ family: 4, dualStack: false, address: '127.0.0.1', port: 0, reusePort: false });
  try {
    await terminatedWorker(fd, '');
    assert.equal(copiesOf(fd), 1);
  } finally {
    closeDescriptor(fd);
  }
});

test('a listener copy that a net.Server in the worker took over is closed once, by the server', async () => {
  const fd = openTcpListener({ family: 4, dualStack: false, address: '127.0.0.1', port: 0, reusePort: false });
  const port = socketPort(fd);
  try {
    await terminatedWorker(fd, `require('node:net').createServer((s) => s.end()).listen({ fd: copy }); native.claimDescriptor(copy);`);
    assert.equal(copiesOf(fd), 1);
    // The original still listens: a connection is accepted into its queue.
    const s = await dial(port);
    s.destroy();
  } finally {
    closeDescriptor(fd);
  }
});
