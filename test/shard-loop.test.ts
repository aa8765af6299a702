// A whole shard (src/workers/shard) in this thread over in-memory devices: a real client
// ControlSession (test/helpers/session-pair.ts) shakes hands with it through a FakeLink, the
// test answers the shard's client-auth as the main thread does, then data crosses both ways:
// datagrams in -> plaintext on the FakeTun or the to-tun ring, the from-tun ring -> sealed
// datagrams out. No root, no socket, no worker.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { getHeapStatistics } from 'node:v8';
import { randomBytes } from 'node:crypto';
import { MessageChannel, type MessagePort } from 'node:worker_threads';

import { COUNTER, counterView, createCounterBuffer } from '../src/shared/counters';
import { CompressFramer } from '../src/shared/protocol/compress-framing';
import { PacketBatch, type PeerAddress } from '../src/shared/native';
import { DataChannelKey, DecryptResults } from '../src/shared/protocol/data-channel';
import { isPingMessage } from '../src/shared/protocol/ping';
import { ControlSession } from '../src/shared/session/control-session';
import { BROADCAST_PEER_ID, TUN_QUEUE_CROSSING } from '../src/shared/peer-id';
import { PacketRing } from '../src/shared/ring';
import type { MainToShard, ShardConfig, ShardToMain } from '../src/shared/shard-protocol';
import type { TlsMaterial } from '../src/shared/session/types';
import type { ShardClient } from '../src/workers/shard/client';
import { ClientTable } from '../src/workers/shard/clients';
import { LinkOut } from '../src/workers/shard/link-out';
import { Shard } from '../src/workers/shard/loop';
import { TunIn } from '../src/workers/shard/tun-in';
import { makeTestPki } from '../lab/test-pki';
import { FakeLink, FakeTun } from './helpers/fake-io';
import { ipv4Udp } from './helpers/ip-packets';
import { mulberry32, SessionPair } from './helpers/session-pair';

const pki = makeTestPki();
after(() => pki.cleanup());

const CLIENT: PeerAddress = { family: 4, address: '192.0.2.10', port: 40000 };
const VIRTUAL = '10.8.0.2';
const SERVER_OPTIONS =
  'V4,dev-type tun,link-mtu 1559,tun-mtu 1500,proto UDPv4,cipher AES-256-GCM,auth [null-digest],keysize 256,key-method 2,tls-server';

function packet(src: string, n: number): Buffer {
  return ipv4Udp(src, '10.8.0.1', 5000 + n, 53, Buffer.alloc(40 + n, n));
}

/** A shard on fakes, with the test as its main thread (client-auth answered with VIRTUAL). */
class ShardLab {
  readonly pair = new SessionPair({ pki, random: mulberry32(7), clientCiphers: ['AES-256-GCM'], serverCiphers: ['AES-256-GCM'] });
  readonly link = new FakeLink();
  readonly tun = new FakeTun();
  readonly toTun: PacketRing;
  readonly fromTun = PacketRing.create(64, 2048);
  readonly counters: Float64Array;
  readonly messages: ShardToMain[] = [];
  /** The iroutes the test's main thread assigns (client-config-dir `iroute`). */
  iroutes4: { network: string; bits: number }[] = [];
  readonly shard: Shard;
  private readonly main: MessagePort;
  private readonly shardPort: MessagePort;

  /** `toTunSlots`: the to-tun ring's size (client-to-client), small to fill it; `overrides`: config fields. */
  constructor(
    clientToClient: boolean,
    toTunSlots = 64,
    overrides: Partial<ShardConfig> = {},
    /** tun-queues shard: the shard's own TUN queue (it reads it and writes its clients' packets to it). */
    tunQueue: FakeTun | null = null,
  ) {
    this.toTun = PacketRing.create(toTunSlots, 2048);
    const buffer = createCounterBuffer();
    this.counters = counterView(buffer);
    const server = this.pair.serverConfig;
    const config: ShardConfig = {
      shard: 0,
      shardCount: 1,
      socketFd: -1,
      socketFamily: 4,
      transport: 'udp',
      udpOffload: false,
      udpCoalesceUsecs: 0,
      tcpNodelay: false,
      compressFraming: 'none',
      toTunRing: this.toTun.buffer,
      fromTunRing: this.fromTun.buffer,
      counters: buffer,
      tunFd: -1,
      tunName: 'fake',
      tunQueueFd: -1,
      clientToClient,
      cookieKey: randomBytes(32),
      tls: server.tls,
      wrap: server.wrap,
      remoteCertTls: 'client',
      verifyClientCert: 'require',
      push: [],
      occOptions: SERVER_OPTIONS,
      dataCiphers: ['AES-256-GCM'],
      auth: 'SHA1',
      handWindowS: 60,
      tlsTimeoutS: 2,
      renegSec: 3600,
      renegBytes: 0,
      renegPkts: 0,
      tranWindowS: 60,
      pingS: 0,
      pingRestartS: 0,
      replayWindow: 64,
      replayTime: 15,
      explicitExitNotify: 0,
      maxClientsPerShard: 8,
      inactive: { seconds: 0, bytes: 0 },
      sessionTimeoutS: 0,
      blockIpv6: null,
      userPassVerify: false,
      userPassChecked: false,
      authUserPassOptional: false,
      authGenToken: null,
      mssfix: { size: 0, encap: true, fixed: false },
      verb: 0,
      ...overrides,
    };
    const { port1, port2 } = new MessageChannel();
    this.main = port1;
    this.shardPort = port2;
    port1.on('message', (message: ShardToMain) => this.onShardMessage(message));
    const tun = clientToClient ? null : (tunQueue ?? this.tun);
    this.shard = new Shard(config, port2, { link: this.link, tun, ...(tunQueue !== null ? { tunQueue } : {}) });
  }

  /** What server.ts / admission.ts do for a client that passed TLS: assign its address. */
  private onShardMessage(message: ShardToMain): void {
    this.messages.push(message);
    if (message.type !== 'client-auth') return;
    this.post({
      type: 'client-accept',
      peerId: message.peerId,
      assignment: {
        push: { ifconfig: { local: VIRTUAL, remoteOrNetmask: '255.255.255.0' }, topology: 'subnet' },
        virtual4: VIRTUAL,
        virtual6: null,
        iroutes4: this.iroutes4,
        iroutes6: [],
        pushReset: false,
        pushRemove: [],
      },
    });
  }

  post(message: MainToShard): void {
    this.main.postMessage(message);
  }

  /** The peer-id the shard gave our client, once it is established. */
  get peerId(): number | null {
    const established = this.messages.find((m) => m.type === 'client-established');
    return established?.type === 'client-established' ? established.peerId : null;
  }

  /** Runs the control channel between the client session and the shard until both have keys. */
  async handshake(): Promise<number> {
    this.pair.client.start();
    await this.pump(() => this.pair.clientData.sendKeyId !== null && this.peerId !== null, 'no tunnel');
    return this.peerId!;
  }

  /** Carries control packets between the client session and the shard until `done()`. */
  async pump(done: () => boolean, what: string): Promise<void> {
    const pair = this.pair;
    const deadline = Date.now() + 20_000;
    let idle = 0;
    while (!done()) {
      assert.ok(Date.now() < deadline, `${what}: shard said ${JSON.stringify(this.messages.filter((m) => m.type === 'log'))}`);
      const up = pair.toServer.splice(0);
      if (up.length > 0) this.link.deliver(CLIENT, ...up);
      const down = this.link.takeSent();
      for (const datagram of down) pair.client.receivePacket(datagram.bytes);
      idle = up.length + down.length > 0 ? 0 : idle + 1;
      // The client's own timers run on the pair's fake clock: move it when nothing else moves.
      const due = pair.client.nextTimeout();
      if (idle > 20 && due !== null) {
        pair.now = Math.max(pair.now + 1, due);
        pair.client.tick();
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  /** Data packets from the client, sealed with its send key. */
  seal(packets: Buffer[]): Buffer[] {
    const key = this.pair.clientData.keys.get(this.pair.clientData.sendKeyId!)!;
    const batch = PacketBatch.allocate(packets.length, 2048);
    packets.forEach((p, i) => {
      batch.memory.set(p, batch.offsets[i] + key.headroom);
      batch.lengths[i] = p.length;
    });
    assert.equal(key.encrypt(batch, packets.length), packets.length);
    return packets.map((_, i) => Buffer.from(batch.packet(i)));
  }

  /** Opens data datagrams the shard sent, as the client. */
  open(datagrams: Buffer[]): Buffer[] {
    const key = this.pair.clientData.keys.get(this.pair.clientData.sendKeyId!)!;
    const batch = PacketBatch.allocate(datagrams.length, 2048);
    datagrams.forEach((d, i) => batch.set(i, d));
    const results = new DecryptResults(datagrams.length);
    assert.equal(key.decrypt(batch, datagrams.length, this.pair.now, results), datagrams.length);
    return datagrams.map((_, i) =>
      Buffer.from(batch.memory.subarray(results.payloadOffsets[i], results.payloadOffsets[i] + results.payloadLengths[i])),
    );
  }

  async stop(): Promise<void> {
    this.post({ type: 'stop', notify: false });
    await waitFor(() => this.messages.some((m) => m.type === 'stopped'), 'stopped');
    this.pair.close();
    this.main.close();
    this.shardPort.close();
  }
}

async function waitFor(done: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

test('a client handshakes through the shard; data crosses both ways (the shard writes TUN itself)', async () => {
  const lab = new ShardLab(false);
  try {
    const peerId = await lab.handshake();
    const sent = [packet(VIRTUAL, 1), packet(VIRTUAL, 2), packet(VIRTUAL, 3)];
    lab.link.deliver(CLIENT, ...lab.seal(sent));
    assert.deepEqual(lab.tun.written, sent);
    assert.equal(lab.counters[COUNTER.tunPacketsOut], 3);

    // Not from the client's own address: OpenVPN's "bad source address".
    lab.link.deliver(CLIENT, ...lab.seal([packet('10.8.0.99', 4)]));
    assert.equal(lab.tun.written.length, 3);
    assert.equal(lab.counters[COUNTER.dropSourceAddress], 1);

    const down = [packet('10.8.0.1', 5), packet('10.8.0.1', 6)];
    for (const p of down) lab.fromTun.push(p, peerId);
    await waitFor(() => lab.link.outbox.length >= 2, 'sealed datagrams');
    const out = lab.link.takeSent();
    assert.deepEqual(
      out.map((d) => d.peer),
      [CLIENT, CLIENT],
    );
    assert.deepEqual(lab.open(out.map((d) => d.bytes)), down);
    assert.equal(lab.counters[COUNTER.tunPacketsIn], 2);
    assert.equal(lab.counters[COUNTER.dropLinkSend], 0);
  } finally {
    await lab.stop();
  }
});

test('verify-client-cert optional: a client admitted with its certificate that renegotiates without one is closed', async () => {
  const lab = new ShardLab(false, 64, { verifyClientCert: 'optional', verb: 1 });
  try {
    await lab.handshake();
    // The client's next TLS session shows no certificate (OpenVPN locks the identity a client was admitted with).
    (lab.pair.clientConfig as { tls: TlsMaterial }).tls = { ca: pki.caCert };
    assert.equal(lab.pair.client.renegotiate(), true);
    await lab.pump(() => lab.messages.some((m) => m.type === 'client-gone'), 'the client was not closed');
    const gone = lab.messages.find((m) => m.type === 'client-gone');
    assert.equal(gone?.type === 'client-gone' ? gone.reason : '', 'identity changed on renegotiation');
    assert.ok(
      lab.messages.some(
        (m) =>
          m.type === 'log' && /TLS object CN attempted to change from 'client' \(serial \w+\) to 'UNDEF' \(serial none\)/.test(m.message),
      ),
    );
  } finally {
    await lab.stop();
  }
});

test('with client-to-client the plaintext goes on the to-tun ring, tagged with the peer-id', async () => {
  const lab = new ShardLab(true);
  try {
    const peerId = await lab.handshake();
    const sent = [packet(VIRTUAL, 1), packet(VIRTUAL, 2)];
    lab.link.deliver(CLIENT, ...lab.seal(sent));
    const got: { packet: Buffer; meta: number }[] = [];
    lab.toTun.popBatch(64, (slot, length, meta) => got.push({ packet: Buffer.from(slot.subarray(0, length)), meta }));
    assert.deepEqual(
      got,
      sent.map((p) => ({ packet: p, meta: peerId })),
    );
    assert.equal(lab.tun.written.length, 0);
  } finally {
    await lab.stop();
  }
});

test("tun-queues shard: the shard writes its client's packets to its own queue, sends what it reads there for its client, and hands the rest to the main thread", async () => {
  const queue = new FakeTun();
  const lab = new ShardLab(false, 64, {}, queue);
  try {
    await lab.handshake();
    const up = [packet(VIRTUAL, 1), packet(VIRTUAL, 2)];
    lab.link.deliver(CLIENT, ...lab.seal(up));
    assert.deepEqual(queue.written, up, 'written to the shard queue');
    assert.equal(lab.tun.written.length, 0, 'not to the main queue');

    // For our client: sealed and sent from here, no main thread involved.
    const mine = [ipv4Udp('10.9.9.9', VIRTUAL, 53, 5000, Buffer.alloc(60, 1)), ipv4Udp('10.9.9.9', VIRTUAL, 53, 5001, Buffer.alloc(70, 2))];
    // Another shard's client, an address nobody has, and a multicast (ours and everyone's).
    const other = ipv4Udp('10.9.9.9', '10.8.0.77', 53, 5002, Buffer.alloc(50, 3));
    const multicast = ipv4Udp('10.8.0.1', '224.0.0.251', 5353, 5353, Buffer.alloc(30, 4));
    queue.inject(mine[0]!, other, mine[1]!, multicast);
    await waitFor(() => lab.link.outbox.length >= 3, 'sealed datagrams');
    assert.deepEqual(lab.open(lab.link.takeSent().map((d) => d.bytes)), [mine[0], mine[1], multicast]);

    const crossed: { packet: Buffer; meta: number }[] = [];
    lab.toTun.popBatch(64, (slot, length, meta) => crossed.push({ packet: Buffer.from(slot.subarray(0, length)), meta }));
    assert.deepEqual(crossed, [
      { packet: other, meta: TUN_QUEUE_CROSSING },
      { packet: multicast, meta: TUN_QUEUE_CROSSING | BROADCAST_PEER_ID },
    ]);
    assert.equal(lab.counters[COUNTER.tunQueueReads], 4);
    assert.equal(lab.counters[COUNTER.tunQueueCrossings], 2);

    // Gone: its address is no longer ours, so its packets cross too.
    lab.post({ type: 'client-kill', peerId: lab.peerId!, message: null });
    await waitFor(() => lab.messages.some((m) => m.type === 'client-gone'), 'client-gone');
    queue.inject(mine[0]!);
    await waitFor(() => lab.counters[COUNTER.tunQueueCrossings] === 3, 'a crossing for the departed client');
  } finally {
    await lab.stop();
  }
});

/**
 * A TUN queue that answers every packet written to it at once, as the kernel answers an ICMP echo
 * inside the write, into a queue of `capacity` packets (txqueuelen): beyond it, answers are
 * dropped and counted. No readiness signal: only a read between batches finds the answers.
 */
class AnsweringTun extends FakeTun {
  dropped = 0;
  constructor(private readonly capacity: number) {
    super();
  }
  override write(batch: PacketBatch, count: number): number {
    const n = super.write(batch, count);
    for (let i = 0; i < n; i++) {
      const request = Buffer.from(batch.packet(i));
      if (this.toRead.length >= this.capacity) this.dropped++;
      else this.toRead.push(ipv4Udp('10.8.0.1', VIRTUAL, 53, request.readUInt16BE(20), request.subarray(28)));
    }
    return n;
  }
}

test('tun-queues shard: what the kernel answers while a receive batch is written is read before the next batch, so a long turn never overflows the queue', async () => {
  const queue = new AnsweringTun(100);
  const lab = new ShardLab(false, 64, {}, queue);
  try {
    await lab.handshake();
    // Three receive batches in one readable turn: 192 answers, almost twice what the queue holds.
    const requests = Array.from({ length: 192 }, (_, n) => packet(VIRTUAL, n % 200));
    lab.link.deliver(CLIENT, ...lab.seal(requests));
    assert.equal(queue.written.length, 192);
    assert.equal(queue.dropped, 0, 'no answer dropped at the queue');
    await waitFor(() => lab.link.outbox.length >= 192, 'every answer sealed and sent');
    assert.equal(lab.open(lab.link.takeSent().map((d) => d.bytes)).length, 192);
  } finally {
    await lab.stop();
  }
});

test("tun-queues shard: a packet on the shard's queue for a subnet behind its client's iroute goes to that client", async () => {
  const queue = new FakeTun();
  const lab = new ShardLab(false, 64, {}, queue);
  lab.iroutes4 = [{ network: '192.168.77.0', bits: 24 }];
  try {
    await lab.handshake();
    const behind = ipv4Udp('10.9.9.9', '192.168.77.5', 53, 5000, Buffer.alloc(60, 5));
    const beside = ipv4Udp('10.9.9.9', '192.168.78.5', 53, 5000, Buffer.alloc(60, 6));
    queue.inject(behind, beside);
    await waitFor(() => lab.link.outbox.length >= 1 && lab.counters[COUNTER.tunQueueReads] === 2, 'the sealed datagram');
    assert.deepEqual(lab.open(lab.link.takeSent().map((d) => d.bytes)), [behind]);
    assert.equal(lab.counters[COUNTER.tunQueueCrossings], 1, 'the other subnet crossed to the main thread');
  } finally {
    await lab.stop();
  }
});

test('without SHARDVPN_FAULT_INJECTION a shard ignores a fault message and serves on', async () => {
  const saved = process.env.SHARDVPN_FAULT_INJECTION;
  delete process.env.SHARDVPN_FAULT_INJECTION;
  const lab = new ShardLab(false);
  try {
    await lab.handshake();
    lab.post({ type: 'fault', fault: 'throw' });
    lab.post({ type: 'fault', fault: 'exit' });
    // Messages are handled in order: once the stats answer is back, the faults were seen.
    lab.post({ type: 'stats-request', id: 99 });
    await waitFor(() => lab.messages.some((m) => m.type === 'stats' && m.id === 99), 'the stats answer');
    await new Promise((resolve) => setImmediate(resolve));
    const sent = [packet(VIRTUAL, 1)];
    lab.link.deliver(CLIENT, ...lab.seal(sent));
    assert.deepEqual(lab.tun.written, sent);
  } finally {
    if (saved !== undefined) process.env.SHARDVPN_FAULT_INJECTION = saved;
    await lab.stop();
  }
});

test('a shard asked to shrink its heap (once a minute) collects the garbage of its thread and keeps its clients', async () => {
  const lab = new ShardLab(false);
  try {
    await lab.handshake();
    // The lab runs the shard in this thread: grow this isolate's heap with garbage, which an idle
    // loop would keep committed (nothing allocates, so nothing collects).
    let garbage: { id: number; text: string }[] = [];
    for (let i = 0; i < 400_000; i++) garbage.push({ id: i, text: `object ${i}` });
    garbage = [];
    const before = getHeapStatistics().total_heap_size;
    lab.post({ type: 'shrink-heap' });
    // The collection it starts runs in steps on the loop.
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    const shrunk = getHeapStatistics().total_heap_size;
    assert.ok(shrunk < before / 2, `heap ${(before / 2 ** 20).toFixed(1)} -> ${(shrunk / 2 ** 20).toFixed(1)} MiB (${garbage.length})`);
    const sent = [packet(VIRTUAL, 1), packet(VIRTUAL, 2)];
    lab.link.deliver(CLIENT, ...lab.seal(sent));
    assert.deepEqual(lab.tun.written, sent);
  } finally {
    await lab.stop();
  }
});

test('a full to-tun ring (the main thread stalled): each packet more is dropped and counted, and the shard serves on', async () => {
  const lab = new ShardLab(true, 8);
  try {
    const peerId = await lab.handshake();
    // Nobody drains the to-tun ring: 8 packets fill it, the 5 after them are dropped, and the
    // receive loop returns (deliver() returns only once the shard has taken the whole batch).
    const sent = Array.from({ length: 13 }, (_, n) => packet(VIRTUAL, n));
    lab.link.deliver(CLIENT, ...lab.seal(sent));
    assert.equal(lab.link.inbox.length, 0);
    assert.equal(lab.toTun.size, 8);
    assert.equal(lab.toTun.drops, 5);
    assert.equal(lab.counters[COUNTER.dropRingFull], 5);
    assert.equal(lab.counters[COUNTER.tunPacketsOut], 8);
    // The other direction is not held up by it.
    const down = packet('10.8.0.1', 20);
    lab.fromTun.push(down, peerId);
    await waitFor(() => lab.link.outbox.length === 1, 'a sealed datagram while the to-tun ring is full');
    assert.deepEqual(lab.open([lab.link.takeSent()[0]!.bytes]), [down]);
    // Once the main thread drains the ring, the next packets go through; the ring kept the first 8 in order.
    const got: Buffer[] = [];
    lab.toTun.popBatch(64, (slot, length, meta) => {
      assert.equal(meta, peerId);
      got.push(Buffer.from(slot.subarray(0, length)));
    });
    assert.deepEqual(got, sent.slice(0, 8));
    const more = [packet(VIRTUAL, 30)];
    lab.link.deliver(CLIENT, ...lab.seal(more));
    assert.equal(lab.toTun.size, 1);
    assert.equal(lab.counters[COUNTER.dropRingFull], 5);
  } finally {
    await lab.stop();
  }
});

test('data for an unknown peer-id, from the link or the from-tun ring, is counted as a drop', async () => {
  const lab = new ShardLab(false);
  try {
    // P_DATA_V2, key_id 0, peer-id 0x00abcd, then a packet-id, a tag and some ciphertext.
    lab.link.deliver(CLIENT, Buffer.concat([Buffer.of(0x48, 0x00, 0xab, 0xcd), randomBytes(40)]));
    assert.equal(lab.counters[COUNTER.dropUnknownPeer], 1);
    lab.fromTun.push(packet('10.8.0.1', 1), 0xabcd);
    await waitFor(() => lab.counters[COUNTER.dropUnknownPeer] === 2, 'the from-tun drop');
    assert.equal(lab.link.outbox.length, 0);
    assert.equal(lab.tun.written.length, 0);
  } finally {
    await lab.stop();
  }
});

test('a data run then a control packet that closes the client, in one receive batch: the data is decrypted first', async () => {
  const lab = new ShardLab(false);
  try {
    await lab.handshake();
    // The client restarts from the same address: its new session's reset gets a stateless reply,
    // and the packet that echoes the cookie replaces the old client (destroying its keys).
    const restarted: Buffer[] = [];
    const fresh = new ControlSession(lab.pair.clientConfig, {
      sendPacket: (w) => restarted.push(Buffer.from(w)),
      onEvent: () => undefined,
      now: () => lab.pair.now,
    });
    fresh.start();
    assert.equal(restarted.length, 1);
    const replies = lab.counters[COUNTER.statelessReplies];
    lab.link.takeSent();
    lab.link.deliver(CLIENT, restarted[0]!);
    await waitFor(() => lab.link.outbox.length > 0, 'the stateless reply');
    assert.equal(lab.counters[COUNTER.statelessReplies], replies + 1);
    assert.ok(!lab.messages.some((m) => m.type === 'client-gone'), 'a reset alone replaces nobody');
    for (const d of lab.link.takeSent()) fresh.receivePacket(Buffer.from(d.bytes));
    await waitFor(() => restarted.length > 1, 'the new session answering the cookie');
    const sent = [packet(VIRTUAL, 1), packet(VIRTUAL, 2)];
    lab.link.deliver(CLIENT, ...lab.seal(sent), restarted[restarted.length - 1]!);
    fresh.close();
    assert.deepEqual(lab.tun.written, sent);
    await waitFor(() => lab.messages.some((m) => m.type === 'client-gone'), 'client-gone');
    const gone = lab.messages.find((m) => m.type === 'client-gone');
    assert.equal(gone?.type === 'client-gone' ? gone.reason : '', 'client restarted its session');
  } finally {
    await lab.stop();
  }
});

test("a forged reset from a connected client's address (no cookie round trip) leaves the client in place", async () => {
  const lab = new ShardLab(false);
  try {
    await lab.handshake();
    const forged: Buffer[] = [];
    const intruder = new ControlSession(lab.pair.clientConfig, {
      sendPacket: (w) => forged.push(Buffer.from(w)),
      onEvent: () => undefined,
      now: () => lab.pair.now,
    });
    intruder.start();
    intruder.close();
    lab.link.deliver(CLIENT, forged[0]!, forged[0]!);
    const sent = [packet(VIRTUAL, 3)];
    lab.link.deliver(CLIENT, ...lab.seal(sent));
    await waitFor(() => lab.tun.written.length === 1, 'data still flowing');
    assert.deepEqual(lab.tun.written, sent);
    assert.ok(!lab.messages.some((m) => m.type === 'client-gone'));
  } finally {
    await lab.stop();
  }
});

test('the send path leaves out packets it could not seal and counts datagrams the socket did not take', async () => {
  const counters = counterView(createCounterBuffer());
  const link = new FakeLink();
  const fromTun = PacketRing.create(64, 2048);
  const clients = new ClientTable(0, 1, 8);
  const block = randomBytes(256);
  // A key whose packet-id is used up (renegotiation came too late) and a healthy one.
  const spent = DataChannelKey.fromKeyBlock(block, 'server', 'AES-256-GCM', 0, { peerId: 1, initialSendPacketId: 0xffffffff });
  const healthy = DataChannelKey.fromKeyBlock(block, 'server', 'AES-256-GCM', 1, { peerId: 2 });
  const stub = (peerId: number, key: DataChannelKey, port: number): ShardClient => {
    const addressBytes = new Uint8Array(20);
    addressBytes.set([4, 0, port >> 8, port & 0xff, 192, 0, 2, peerId]);
    const client = {
      peerId,
      addressKey: `stub${peerId}`,
      addressBytes,
      connected: true,
      maxMss: 0,
      keys: { send: key },
      tunnelActivity: () => undefined,
    };
    return client as unknown as ShardClient;
  };
  clients.add(stub(1, spent, 1001));
  clients.add(stub(2, healthy, 1002));
  const tunIn = new TunIn(fromTun, clients, new LinkOut(link, counters, new CompressFramer('none')), counters, new CompressFramer('none'));
  const running = tunIn.run();
  try {
    const down = [1, 2, 1, 2].map((peerId, n) => ({ peerId, packet: packet('10.8.0.1', n) }));
    for (const { peerId, packet: p } of down) fromTun.push(p, peerId);
    await waitFor(() => link.outbox.length === 2, 'two datagrams');
    const out = link.takeSent();
    assert.ok(
      out.every((d) => d.bytes.length > 0),
      'no empty datagram',
    );
    assert.deepEqual(
      out.map((d) => d.peer),
      [
        { family: 4, address: '192.0.2.2', port: 1002 },
        { family: 4, address: '192.0.2.2', port: 1002 },
      ],
    );
    const receiver = DataChannelKey.fromKeyBlock(block, 'client', 'AES-256-GCM', 1, {});
    const batch = PacketBatch.allocate(2, 2048);
    out.forEach((d, i) => batch.set(i, d.bytes));
    const results = new DecryptResults(2);
    assert.equal(receiver.decrypt(batch, 2, 0, results), 2);
    assert.deepEqual(
      [0, 1].map((i) =>
        Buffer.from(batch.memory.subarray(results.payloadOffsets[i], results.payloadOffsets[i] + results.payloadLengths[i])),
      ),
      [down[1]!.packet, down[3]!.packet],
    );
    assert.equal(counters[COUNTER.dropPacketIdExhausted], 2);
    assert.equal(counters[COUNTER.linkPacketsOut], 2);

    // A socket buffer that takes one datagram of two: the other is a counted drop.
    link.sendLimit = 1;
    fromTun.push(packet('10.8.0.1', 7), 2);
    fromTun.push(packet('10.8.0.1', 8), 2);
    await waitFor(() => counters[COUNTER.dropLinkSend] === 1, 'the send drop');
    assert.equal(link.takeSent().length, 1);
    assert.equal(counters[COUNTER.linkPacketsOut], 3);
  } finally {
    tunIn.stop();
    await running;
    spent.destroy();
    healthy.destroy();
  }
});

test('an idle connected client is looked at when its timers are due, not every tick; its pings still go out on time', async () => {
  const lab = new ShardLab(false, 64, { pingS: 1, pingRestartS: 0 });
  try {
    await lab.handshake();
    const client = [...(lab.shard['clients'] as ClientTable).values()][0]!;
    const session = client.session;
    const nextTimeout = session.nextTimeout.bind(session);
    let looks = 0;
    session.nextTimeout = (now?: number) => {
      looks++;
      return nextTimeout(now);
    };
    // 3 s of real time: the shard ticks every 200 ms (15 ticks); the client is due each second
    // (ping 1). Control packets keep flowing between the two sessions meanwhile (acks).
    const data: Buffer[] = [];
    const started = Date.now();
    while (Date.now() - started < 3000) {
      for (const d of lab.link.takeSent()) {
        // P_DATA_V1 6, P_DATA_V2 9; the rest are control packets.
        if ([6, 9].includes(d.bytes[0]! >> 3)) data.push(d.bytes);
        else lab.pair.client.receivePacket(d.bytes);
      }
      const up = lab.pair.toServer.splice(0);
      if (up.length > 0) lab.link.deliver(CLIENT, ...up);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const seconds = (Date.now() - started) / 1000;
    const pings = lab.open(data).filter((p) => isPingMessage(p, 0, p.length));
    assert.ok(pings.length >= 2 && pings.length <= Math.ceil(seconds) + 1, `${pings.length} pings in ${seconds} s`);
    // A look is a tick that found work (2 calls: the check and the next deadline); every tick would be >= 2 x 14.
    assert.ok(looks <= 2 * (Math.ceil(seconds) + 2), `${looks} looks at the session in ${seconds} s`);
  } finally {
    await lab.stop();
  }
});
