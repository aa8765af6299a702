// The AEAD data channel (src/shared/protocol/data-channel.ts): client and server keys from one
// key block talking both ways in P_DATA_V1 and V2, byte-exact against packets built here with
// node:crypto, and every drop reason counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHash } from 'node:crypto';

import { PacketBatch } from '../src/shared/native';
import type { AeadCipherName } from '../src/shared/native';
import {
  DATA_V1_HEADROOM,
  DATA_V2_HEADROOM,
  DataChannelKey,
  DecryptResults,
  newDataChannelCounters,
} from '../src/shared/protocol/data-channel';
import type { DataDropReason } from '../src/shared/protocol/data-channel';

const CIPHERS: readonly { name: AeadCipherName; node: 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305'; keyLen: number }[] = [
  { name: 'AES-128-GCM', node: 'aes-128-gcm', keyLen: 16 },
  { name: 'AES-256-GCM', node: 'aes-256-gcm', keyLen: 32 },
  { name: 'CHACHA20-POLY1305', node: 'chacha20-poly1305', keyLen: 32 },
];

function bytes(seed: string, length: number): Buffer {
  const stream = createCipheriv('aes-256-ctr', createHash('sha256').update(seed).digest(), Buffer.alloc(16));
  return stream.update(Buffer.alloc(length));
}

const BLOCK = bytes('key block', 256);

function pair(cipher: AeadCipherName, keyId = 0, peerId: number | null = 7): { client: DataChannelKey; server: DataChannelKey } {
  return {
    client: DataChannelKey.fromKeyBlock(Buffer.from(BLOCK), 'client', cipher, keyId, { peerId }),
    server: DataChannelKey.fromKeyBlock(Buffer.from(BLOCK), 'server', cipher, keyId, { peerId }),
  };
}

/** Encrypts each payload as one batch; returns copies of the wire packets. */
function send(key: DataChannelKey, payloads: readonly Buffer[]): Buffer[] {
  const batch = PacketBatch.allocate(payloads.length, 2048, 0);
  payloads.forEach((p, i) => {
    batch.memory.set(p, batch.offsets[i]! + key.headroom);
    batch.lengths[i] = p.length;
  });
  assert.equal(key.encrypt(batch, payloads.length), payloads.length);
  return payloads.map((_, i) => Buffer.from(batch.packet(i)));
}

type Received = { reason: DataDropReason | null; plaintext: Buffer | null };

function receive(key: DataChannelKey, packets: readonly Buffer[], now = 0): Received[] {
  const batch = PacketBatch.allocate(packets.length, 2048, 0);
  packets.forEach((p, i) => batch.set(i, p));
  const results = new DecryptResults(packets.length);
  const ok = key.decrypt(batch, packets.length, now, results);
  const out = packets.map((p, i) => {
    assert.equal(batch.lengths[i], p.length, 'decrypt restores the batch lengths');
    const reason = results.reason(i);
    return {
      reason,
      plaintext:
        reason === null
          ? Buffer.from(batch.memory.subarray(results.payloadOffsets[i], results.payloadOffsets[i]! + results.payloadLengths[i]!))
          : null,
    };
  });
  assert.equal(ok, out.filter((r) => r.reason === null).length);
  return out;
}

/** A data packet built independently from the wire doc (6.2). */
function referencePacket(
  cipher: (typeof CIPHERS)[number],
  role: 'client' | 'server',
  format: 'v1' | 'v2',
  keyId: number,
  peerId: number,
  packetId: number,
  plaintext: Buffer,
  aadOverride?: Buffer,
): Buffer {
  const base = role === 'client' ? 0 : 128;
  const key = BLOCK.subarray(base, base + cipher.keyLen);
  const implicitIv = BLOCK.subarray(base + 64, base + 72);
  const pid = Buffer.alloc(4);
  pid.writeUInt32BE(packetId);
  const header =
    format === 'v2' ? Buffer.from([0x48 | keyId, peerId >> 16, (peerId >> 8) & 0xff, peerId & 0xff]) : Buffer.from([0x30 | keyId]);
  const aad = aadOverride ?? (format === 'v2' ? Buffer.concat([header, pid]) : pid);
  const nonce = Buffer.concat([pid, implicitIv]);
  const c =
    cipher.node === 'chacha20-poly1305'
      ? createCipheriv(cipher.node, key, nonce, { authTagLength: 16 })
      : createCipheriv(cipher.node, key, nonce, { authTagLength: 16 });
  c.setAAD(aad, { plaintextLength: plaintext.length });
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([header, pid, c.getAuthTag(), ct]);
}

const payload = (i: number, len = 100): Buffer => bytes(`payload ${i}`, len);

test('headroom: 24 bytes for P_DATA_V2, 21 for P_DATA_V1', () => {
  const { client } = pair('AES-256-GCM');
  assert.equal(DATA_V2_HEADROOM, 24);
  assert.equal(DATA_V1_HEADROOM, 21);
  assert.equal(client.headroom, 24);
  client.setPeerId(null);
  assert.equal(client.headroom, 21);
  assert.throws(() => client.setPeerId(0x1000000), RangeError);
});

for (const cipher of CIPHERS) {
  test(`${cipher.name}: client and server exchange V2 and V1 packets both ways`, () => {
    const { client, server } = pair(cipher.name, 3, 0x0a0b0c);
    const up = [payload(1, 1), payload(2, 1400), payload(3, 60)];
    const got = receive(server, send(client, up));
    assert.deepEqual(
      got.map((r) => r.reason),
      [null, null, null],
    );
    got.forEach((r, i) => assert.deepEqual(r.plaintext, up[i]));

    server.setPeerId(null); // V1 the other way
    const down = [payload(4, 200), payload(5, 17)];
    const wire = send(server, down);
    assert.equal(wire[0]![0], 0x30 | 3);
    assert.equal(wire[0]!.length, 200 + 21);
    const back = receive(client, wire);
    back.forEach((r, i) => assert.deepEqual(r.plaintext, down[i]));

    assert.equal(client.sendPacketId, 3);
    assert.equal(server.receivePacketId, 3);
    assert.deepEqual(client.traffic, { sentPackets: 3, sentBytes: 1461 + 3 * 24, receivedPackets: 2, receivedBytes: 217 + 2 * 21 });
  });

  for (const format of ['v2', 'v1'] as const) {
    test(`${cipher.name} ${format}: byte-exact against node:crypto, both roles`, () => {
      const peerId = format === 'v2' ? 0x123456 : null;
      const { client, server } = pair(cipher.name, 5, peerId);
      for (const [key, role] of [
        [client, 'client'],
        [server, 'server'],
      ] as const) {
        const plain = [payload(10, 33), payload(11, 1000)];
        const wire = send(key, plain);
        wire.forEach((w, i) => {
          assert.deepEqual(w, referencePacket(cipher, role, format, 5, peerId ?? 0, i + 1, plain[i]!), `${role} packet ${i + 1}`);
        });
      }
      // And packets built independently decrypt on the other side.
      const fromClient = [referencePacket(cipher, 'client', format, 5, 0x123456, 1, payload(12, 50))];
      assert.deepEqual(receive(server, fromClient)[0]!.plaintext, payload(12, 50));
    });
  }
}

test('AAD: V2 authenticates the opcode and peer-id, V1 only the packet-id', () => {
  const c = CIPHERS[1]!;
  const { server } = pair(c.name, 0);
  // V1: a packet whose AAD also covered the opcode byte is not OpenVPN's format.
  const v1WithOpcode = referencePacket(c, 'client', 'v1', 0, 0, 1, payload(20), Buffer.from([0x30, 0, 0, 0, 1]));
  assert.equal(receive(server, [v1WithOpcode])[0]!.reason, 'bad-tag');
  assert.deepEqual(receive(server, [referencePacket(c, 'client', 'v1', 0, 0, 2, payload(20))])[0]!.plaintext, payload(20));
  // V2: the peer-id is authenticated, so changing it breaks the tag.
  const v2 = referencePacket(c, 'client', 'v2', 0, 42, 3, payload(21));
  v2[3] ^= 1;
  assert.equal(receive(server, [v2])[0]!.reason, 'bad-tag');
  // A V2 packet whose AAD lacked the header is rejected too.
  const v2NoHeader = referencePacket(c, 'client', 'v2', 0, 42, 4, payload(21), Buffer.from([0, 0, 0, 4]));
  assert.equal(receive(server, [v2NoHeader])[0]!.reason, 'bad-tag');
});

test('replay, reorder within the window, and the window edge', () => {
  const counters = newDataChannelCounters();
  const client = DataChannelKey.fromKeyBlock(Buffer.from(BLOCK), 'client', 'AES-256-GCM', 0, { peerId: 1 });
  const server = DataChannelKey.fromKeyBlock(Buffer.from(BLOCK), 'server', 'AES-256-GCM', 0, { counters });
  const wire = send(
    client,
    Array.from({ length: 80 }, (_, i) => payload(i, 40)),
  );

  const reversed = wire.slice(0, 10).reverse();
  assert.ok(
    receive(server, reversed).every((r) => r.reason === null),
    'reordered packets within the window are accepted',
  );
  assert.ok(receive(server, [wire[3]!, wire[9]!]).every((r) => r.reason === 'replay'));
  assert.equal(counters.drops.replay, 2);

  assert.equal(receive(server, [wire[79]!])[0]!.reason, null); // id 80
  assert.equal(receive(server, [wire[11]!])[0]!.reason, 'replay', 'id 12 is 68 back: outside the 64-packet window');
  assert.equal(receive(server, [wire[16]!])[0]!.reason, null, 'id 17 is 63 back and unseen');
  assert.equal(receive(server, [wire[16]!])[0]!.reason, 'replay');
  assert.equal(counters.drops.replay, 4);
});

test('the time backtrack: a late packet more than 15 s after a newer one is a replay', () => {
  const { client, server } = pair('AES-128-GCM');
  const wire = send(client, [payload(1), payload(2), payload(3)]);
  assert.equal(receive(server, [wire[1]!], 0)[0]!.reason, null);
  assert.equal(receive(server, [wire[0]!], 10_000)[0]!.reason, null, 'id 1 within 15 s');
  assert.equal(receive(server, [wire[2]!], 11_000)[0]!.reason, null);
  const late = send(client, [payload(4), payload(5)]);
  assert.equal(receive(server, [late[1]!], 12_000)[0]!.reason, null); // id 5
  assert.equal(receive(server, [late[0]!], 40_000)[0]!.reason, 'replay', 'id 4 after 28 s');
});

test('tampering, wrong key_id, non-data and short packets are dropped and counted', () => {
  const counters = newDataChannelCounters();
  const client = DataChannelKey.fromKeyBlock(Buffer.from(BLOCK), 'client', 'CHACHA20-POLY1305', 2, { peerId: 9 });
  const server = DataChannelKey.fromKeyBlock(Buffer.from(BLOCK), 'server', 'CHACHA20-POLY1305', 2, { counters });
  const wire = send(client, [payload(1), payload(2), payload(3), payload(4), payload(5)]);
  const flip = (p: Buffer, at: number): Buffer => {
    const q = Buffer.from(p);
    q[at] ^= 0x80;
    return q;
  };
  const otherKey = Buffer.from(wire[0]!);
  otherKey[0] = 0x48 | 3;
  const control = Buffer.from(wire[0]!);
  control[0] = (4 << 3) | 2;
  const v1Short = Buffer.from([0x30 | 2, 0, 0, 0, 9, ...Buffer.alloc(16)]);
  const got = receive(server, [
    flip(wire[0]!, 6), // packet-id
    flip(wire[0]!, 10), // tag
    flip(wire[0]!, 30), // ciphertext
    flip(wire[0]!, 1), // peer-id (AAD)
    otherKey,
    control,
    wire[0]!.subarray(0, 24), // no payload
    wire[0]!.subarray(0, 3),
    Buffer.alloc(0),
    v1Short,
    wire[0]!, // the genuine packet after forgeries with its id
    wire[1]!,
  ]);
  assert.deepEqual(
    got.map((r) => r.reason),
    ['bad-tag', 'bad-tag', 'bad-tag', 'bad-tag', 'bad-key-id', 'not-data', 'short', 'short', 'short', 'short', null, null],
  );
  assert.deepEqual(counters.drops, { 'bad-tag': 4, 'bad-key-id': 1, 'not-data': 1, short: 4, replay: 0 });
  assert.equal(server.traffic.receivedPackets, 2, 'only authenticated packets count');
});

test('one batch mixing V1, V2 and invalid packets', () => {
  const { client, server } = pair('AES-256-GCM', 1, 77);
  const v2 = send(client, [payload(1), payload(2)]);
  client.setPeerId(null);
  const v1 = send(client, [payload(3), payload(4)]);
  const got = receive(server, [v1[0]!, v2[0]!, Buffer.from([0x48 | 1]), v1[1]!, v2[1]!]);
  assert.deepEqual(
    got.map((r) => r.reason),
    [null, null, 'short', null, null],
  );
  assert.deepEqual(
    got.map((r) => r.plaintext),
    [payload(3), payload(1), null, payload(4), payload(2)],
  );
});

test('packet-id close to wrap, exhaustion, and reneg-bytes / reneg-pkts', () => {
  const key = new DataChannelKey({
    cipher: 'AES-128-GCM',
    keyId: 0,
    slices: {
      encryptKey: BLOCK.subarray(0, 16),
      encryptImplicitIv: BLOCK.subarray(64, 72),
      decryptKey: BLOCK.subarray(128, 144),
      decryptImplicitIv: BLOCK.subarray(192, 200),
    },
    peerId: 0,
    initialSendPacketId: 0xfeffffff,
  });
  assert.equal(key.closeToWrapping(), false);
  send(key, [payload(1)]);
  assert.equal(key.sendPacketId, 0xff000000);
  assert.equal(key.closeToWrapping(), true);
  assert.equal(key.renegotiationDue(0, 0), true);

  const end = new DataChannelKey({
    cipher: 'AES-128-GCM',
    keyId: 0,
    slices: {
      encryptKey: BLOCK.subarray(0, 16),
      encryptImplicitIv: BLOCK.subarray(64, 72),
      decryptKey: BLOCK.subarray(128, 144),
      decryptImplicitIv: BLOCK.subarray(192, 200),
    },
    initialSendPacketId: 0xfffffffe,
  });
  const batch = PacketBatch.allocate(3, 256, 0);
  batch.lengths.fill(10);
  assert.equal(end.encrypt(batch, 3), 1, 'only id 0xffffffff is left');
  assert.equal(end.counters.packetIdExhausted, 2);
  assert.equal(batch.lengths[1], 10, 'unsent packets untouched');

  const { client, server } = pair('AES-256-GCM');
  receive(server, send(client, [payload(1, 100), payload(2, 100)]));
  assert.equal(server.renegotiationDue(0, 3), false);
  assert.equal(server.renegotiationDue(0, 2), true);
  assert.equal(server.renegotiationDue(248, 0), true);
  assert.equal(server.renegotiationDue(249, 0), false);
});

test('packet-id 0 is never accepted, and a zero key is refused', () => {
  const c = CIPHERS[1]!;
  const { server } = pair(c.name, 0);
  assert.equal(receive(server, [referencePacket(c, 'client', 'v2', 0, 0, 0, payload(1))])[0]!.reason, 'replay');
  const zero = Buffer.from(BLOCK);
  zero.fill(0, 0, 32);
  assert.throws(() => DataChannelKey.fromKeyBlock(zero, 'server', 'AES-256-GCM', 0), /all-zero/);
});

test('encrypt refuses a plaintext that leaves no headroom in its slot', () => {
  const { client } = pair('AES-256-GCM');
  const batch = PacketBatch.allocate(1, 100, 0);
  batch.lengths[0] = 80;
  assert.throws(() => client.encrypt(batch, 1), RangeError);
});

test('10,000 packets in one batch, both directions', () => {
  const n = 10_000;
  const { client, server } = pair('AES-256-GCM', 1, 0x00abcd);
  const batch = PacketBatch.allocate(n, 1500, 0);
  for (let i = 0; i < n; i++) {
    const len = 1 + (i % 1400);
    const at = batch.offsets[i]! + DATA_V2_HEADROOM;
    batch.memory.fill(i & 0xff, at, at + len);
    batch.lengths[i] = len;
  }
  const started = process.hrtime.bigint();
  assert.equal(client.encrypt(batch, n), n);
  const results = new DecryptResults(n);
  assert.equal(server.decrypt(batch, n, 0, results), n);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  for (let i = 0; i < n; i += 997) {
    const len = 1 + (i % 1400);
    assert.equal(results.payloadLengths[i], len);
    const plain = batch.memory.subarray(results.payloadOffsets[i], results.payloadOffsets[i]! + len);
    assert.ok(
      plain.every((b) => b === (i & 0xff)),
      `packet ${i}`,
    );
  }
  assert.equal(server.receivePacketId, n);
  // Replaying the whole batch drops every packet.
  for (let i = 0; i < n; i++) batch.lengths[i] = 1 + (i % 1400) + DATA_V2_HEADROOM;
  assert.equal(server.decrypt(batch, n, 0, results), 0);
  assert.equal(server.counters.drops.replay + server.counters.drops['bad-tag'], n);
  assert.ok(ms < 3000, `10k packets took ${ms} ms`);
});
