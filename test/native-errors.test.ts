// Bad input to the addon: each case a clear exception, no crash, no leaked descriptor.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { AeadKey, PacketBatch, PeerAddresses, TunDevice, UdpSocket } from '../src/shared/native';

const openDescriptors = (): number => readdirSync('/proc/self/fd').length;

test('TUN without CAP_NET_ADMIN: EPERM naming the call, no descriptor leaked', () => {
  const script = path.join(__dirname, 'fixtures', 'tun-no-permission.js');
  const output = execFileSync('setpriv', ['--inh-caps=-net_admin', '--bounding-set=-net_admin', process.execPath, script], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  const result = JSON.parse(output) as { codes: string[]; leaked: number };
  assert.equal(result.codes.length, 1);
  assert.match(result.codes[0], /^EPERM: ioctl TUNSETIFF svtperm0: EPERM \(Operation not permitted\)/);
  assert.equal(result.leaked, 0);
});

test('TUN with an invalid name: RangeError before any system call', () => {
  const before = openDescriptors();
  for (const name of ['a/b', 'has space', 'x'.repeat(16), '..', 'eth0:1']) {
    assert.throws(
      () => TunDevice.open({ name }),
      (error: Error) => error instanceof RangeError && /invalid interface name/.test(error.message),
    );
  }
  assert.equal(openDescriptors(), before);
});

test('a port in use without SO_REUSEPORT: EADDRINUSE, and the failed socket is closed', (t) => {
  const holder = UdpSocket.open({ family: 4, address: '127.0.0.1', port: 0 });
  t.after(() => holder.close());
  const port = holder.localAddress().port;
  const before = openDescriptors();
  for (let i = 0; i < 50; i++) {
    assert.throws(
      () => UdpSocket.open({ family: 4, address: '127.0.0.1', port }),
      (error: NodeJS.ErrnoException) =>
        error.code === 'EADDRINUSE' && error.message === `bind 127.0.0.1:${port}: EADDRINUSE (Address already in use)`,
    );
  }
  // Even with SO_REUSEPORT on the newcomer: the holder did not opt in.
  assert.throws(() => UdpSocket.open({ family: 4, address: '127.0.0.1', port, reusePort: true }), { code: 'EADDRINUSE' });
  assert.equal(openDescriptors(), before);
});

test('bad addresses and oversized datagrams are clear errors', (t) => {
  const socket = UdpSocket.open({ family: 4, address: '127.0.0.1', port: 0 });
  t.after(() => socket.close());
  assert.throws(() => UdpSocket.open({ family: 4, address: 'not-an-ip', port: 0 }), /'not-an-ip' is not an IPv4 address/);
  assert.throws(() => UdpSocket.open({ family: 4, address: '127.0.0.1', port: 70000 }), RangeError);
  const big = PacketBatch.allocate(1, 70_000);
  big.lengths[0] = 70_000;
  const to = new PeerAddresses(1);
  to.set(0, { family: 4, address: '127.0.0.1', port: 9 });
  assert.throws(() => socket.send(big, to, 1), /datagram 0 is 70000 bytes, over the 65507-byte UDP limit/);
  const v6 = new PeerAddresses(1);
  v6.set(0, { family: 6, address: '::1', port: 9 });
  const small = PacketBatch.allocate(1, 10);
  small.lengths[0] = 10;
  assert.throws(() => socket.send(small, v6, 1), /address of family 6 this socket cannot reach/);
  assert.throws(() => to.set(0, { family: 4, address: '::1', port: 1 }), TypeError);
});

test('batch descriptions outside their memory are RangeErrors', (t) => {
  const socket = UdpSocket.open({ family: 4, address: '127.0.0.1', port: 0 });
  t.after(() => socket.close());
  const batch = new PacketBatch(new Uint8Array(100), Uint32Array.of(0, 90), 50);
  assert.throws(() => socket.recv(batch, new PeerAddresses(2)), /packet 1 \(offset 90, 50 bytes\) lies outside the 100-byte memory/);
  assert.throws(() => socket.recv(batch, new PeerAddresses(2), 3), /count 3 exceeds/);
  assert.throws(() => socket.recv(PacketBatch.allocate(4, 100), new PeerAddresses(2)), /addresses holds 2 entries/);
});

test('a closed handle: EBADF naming the call, close is idempotent', () => {
  const socket = UdpSocket.open({ family: 6, address: '::1', port: 0 });
  socket.close();
  socket.close();
  assert.equal(socket.closed, true);
  assert.throws(
    () => socket.recv(PacketBatch.allocate(1, 100), new PeerAddresses(1)),
    (error: NodeJS.ErrnoException) => error.code === 'EBADF' && /UdpSocket.recv/.test(error.message),
  );
  assert.throws(() => socket.poll(1, () => undefined), { code: 'EBADF' });
  const key = new AeadKey('AES-128-GCM', { key: new Uint8Array(16), implicitIv: new Uint8Array(8) }, null);
  key.destroy();
  assert.throws(() => key.seal(PacketBatch.allocate(1, 64), 1, new Uint32Array(6)), /no seal key/);
});

test('sockets left open by a finished worker thread are closed by its environment teardown', async () => {
  const { Worker } = await import('node:worker_threads');
  const before = openDescriptors();
  const code = `
    const { UdpSocket } = require(${JSON.stringify(path.join(__dirname, '..', 'src', 'shared', 'native', 'index.js'))});
    for (let i = 0; i < 20; i++) UdpSocket.open({ family: 4, address: '127.0.0.1', port: 0 });
  `;
  const worker = new Worker(code, { eval: true });
  await new Promise((resolve) => worker.on('exit', resolve));
  assert.equal(openDescriptors(), before);
});

test('a seal batch with one bad packet throws before touching any packet', () => {
  const key = new AeadKey('AES-256-GCM', { key: new Uint8Array(32).fill(7), implicitIv: new Uint8Array(8) }, null);
  const batch = PacketBatch.allocate(2, 64);
  batch.lengths[0] = 64;
  batch.lengths[1] = 10;
  batch.memory.fill(0x5a);
  const layout = Uint32Array.of(0, 8, 4, 4, 8, 24);
  assert.throws(() => key.seal(batch, 2, layout), /packet 1 \(10 bytes\) is shorter than its layout/);
  assert.ok(batch.memory.every((byte) => byte === 0x5a));
  assert.throws(() => key.seal(batch, 1.5, layout), /count must be an integer/);
  key.destroy();
});
