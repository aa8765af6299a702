// The client's packet path (src/main/client/link.ts) on a FakeLink and a FakeTun, with a pair of
// data keys from one key block standing in for the server's and ours: datagrams from the
// server -> plaintext on TUN, TUN reads -> sealed datagrams to the server, foreign senders
// dropped, data before a control packet in one batch, OCC exit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import { ClientLink, type LinkHost } from '../src/main/client/link';
import { PacketBatch, type PeerAddress } from '../src/shared/native';
import { DataChannelKey, DecryptResults } from '../src/shared/protocol/data-channel';
import { writeOccMessage } from '../src/shared/protocol/occ';
import { FakeLink, FakeTun } from './helpers/fake-io';
import { ipv4Udp } from './helpers/ip-packets';

const SERVER: PeerAddress = { family: 4, address: '192.0.2.1', port: 1194 };
const PEER_ID = 5;

class Host implements LinkHost {
  readonly control: Buffer[] = [];
  dataReceived = 0;
  sent = 0;
  occExits = 0;
  onControl: (wire: Buffer) => void = () => undefined;
  onControlPacket(wire: Buffer): void {
    this.control.push(wire);
    this.onControl(wire);
  }
  onDataReceived(): void {
    this.dataReceived++;
  }
  onSent(): void {
    this.sent++;
  }
  onOccExit(): void {
    this.occExits++;
  }
}

/** A link with key_id 0 installed; `server` seals and opens as the server would. */
function lab(): { link: FakeLink; tun: FakeTun; host: Host; client: ClientLink; server: DataChannelKey; block: Buffer } {
  const block = randomBytes(256);
  const server = DataChannelKey.fromKeyBlock(block, 'server', 'AES-256-GCM', 0, { peerId: PEER_ID });
  const link = new FakeLink();
  const tun = new FakeTun();
  const host = new Host();
  const client = new ClientLink(link, SERVER, 2048, host);
  client.installKey(DataChannelKey.fromKeyBlock(block, 'client', 'AES-256-GCM', 0, { peerId: PEER_ID }));
  client.attachTun(tun);
  return { link, tun, host, client, server, block };
}

/** Payloads sealed by `key` as data packets. */
function seal(key: DataChannelKey, payloads: Buffer[]): Buffer[] {
  const batch = PacketBatch.allocate(payloads.length, 2048);
  payloads.forEach((p, i) => {
    batch.memory.set(p, batch.offsets[i] + key.headroom);
    batch.lengths[i] = p.length;
  });
  assert.equal(key.encrypt(batch, payloads.length), payloads.length);
  return payloads.map((_, i) => Buffer.from(batch.packet(i)));
}

function open(key: DataChannelKey, datagrams: Buffer[]): Buffer[] {
  const batch = PacketBatch.allocate(datagrams.length, 2048);
  datagrams.forEach((d, i) => batch.set(i, d));
  const results = new DecryptResults(datagrams.length);
  assert.equal(key.decrypt(batch, datagrams.length, 0, results), datagrams.length);
  return datagrams.map((_, i) =>
    Buffer.from(batch.memory.subarray(results.payloadOffsets[i], results.payloadOffsets[i] + results.payloadLengths[i])),
  );
}

const packet = (n: number): Buffer => ipv4Udp('10.0.0.1', '10.8.0.2', 1000 + n, 53, Buffer.alloc(30 + n, n));

test('datagrams from the server are decrypted onto TUN; TUN reads go out sealed to the server', () => {
  const { link, tun, host, client, server } = lab();
  try {
    const down = [packet(1), packet(2), packet(3)];
    link.deliver(SERVER, ...seal(server, down));
    assert.deepEqual(tun.written, down);
    assert.equal(host.dataReceived, 1);
    assert.equal(
      client.stats.tunWriteBytes,
      down.reduce((n, p) => n + p.length, 0),
    );

    const up = [packet(4), packet(5)];
    tun.inject(...up);
    const sent = link.takeSent();
    assert.deepEqual(
      sent.map((d) => d.peer),
      [SERVER, SERVER],
    );
    assert.deepEqual(
      open(
        server,
        sent.map((d) => d.bytes),
      ),
      up,
    );
    assert.equal(
      client.stats.tunReadBytes,
      up.reduce((n, p) => n + p.length, 0),
    );
  } finally {
    client.close();
  }
});

test('a datagram from another address than the server is dropped (no --float)', () => {
  const { link, tun, client, server } = lab();
  try {
    link.deliver({ family: 4, address: '192.0.2.66', port: 1194 }, ...seal(server, [packet(1)]));
    link.deliver({ ...SERVER, port: 1195 }, ...seal(server, [packet(2)]));
    assert.equal(client.stats.foreignDrops, 2);
    assert.equal(tun.written.length, 0);
  } finally {
    client.close();
  }
});

test('data before a control packet in one batch is decrypted before the control packet retires its key', () => {
  const { link, tun, host, client, server, block } = lab();
  const next = DataChannelKey.fromKeyBlock(block, 'client', 'AES-256-GCM', 1, { peerId: PEER_ID });
  // The control packet ends a renegotiation: key_id 1 in, key_id 0 retired (destroyed).
  host.onControl = () => {
    client.installKey(next);
    client.retireKey(0);
  };
  try {
    const before = [packet(1), packet(2)];
    const [late] = seal(server, [packet(3)]);
    const control = Buffer.from([0x20, ...randomBytes(20)]);
    link.deliver(SERVER, ...seal(server, before), control, late!);
    assert.deepEqual(tun.written, before);
    assert.deepEqual(host.control, [control]);
    assert.equal(client.currentKey, next);
  } finally {
    client.close();
  }
});

test("the server's OCC exit on the data channel reaches the host; close stops polling and closes the socket", () => {
  const { link, tun, host, client, server } = lab();
  const occ = Buffer.alloc(64);
  const length = writeOccMessage(occ, 0, { op: 'exit' });
  link.deliver(SERVER, ...seal(server, [occ.subarray(0, length)]));
  assert.equal(host.occExits, 1);
  assert.equal(tun.written.length, 0);
  client.close();
  assert.ok(link.closed);
  link.deliver(SERVER, ...seal(server, [packet(1)]));
  tun.inject(packet(2));
  assert.equal(tun.written.length, 0);
  assert.equal(link.outbox.length, 0);
});
