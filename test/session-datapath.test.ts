// End to end in memory: our client and server sessions reach keys over a lossy, duplicating,
// reordering control link, then carry 10,000 data packets each way through DataChannelKeys
// (cipher chosen by NCP), across a renegotiation, with seeded reordering, duplication, loss,
// replays and bit flips on the data link. Every packet the test did not drop is accepted
// exactly once with its exact bytes; every rejection is counted under the right reason.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { PacketBatch } from '../src/shared/native';
import { DATA_V2_HEADROOM, DecryptResults } from '../src/shared/protocol/data-channel';
import type { DataChannelKey, DataDropReason } from '../src/shared/protocol/data-channel';
import { P_DATA_V2, P_OPCODE_SHIFT } from '../src/shared/protocol/opcodes';
import { makeTestPki } from '../lab/test-pki';
import { SessionPair, acceptedOn, mulberry32, randInt, shuffle, summary } from './helpers/session-pair';
import type { DataSide } from './helpers/session-pair';

const pki = makeTestPki();
after(() => pki.cleanup());

const TOTAL = 10_000;
const MAX_PAYLOAD = 1400;
const BATCH = 32;
const STEP_MS = 10;

interface InFlight {
  wire: Buffer;
  id: string;
  tampered: boolean;
  /** Step at which it arrives. */
  at: number;
}

/** One direction of the data link and its bookkeeping. */
class Direction {
  readonly sent = new Map<string, Buffer>();
  readonly droppedOnPurpose = new Set<string>();
  readonly accepted = new Set<string>();
  readonly sentOnKey = [0, 0];
  readonly expectedDrops: Record<DataDropReason, number> = { short: 0, 'not-data': 0, 'bad-key-id': 0, 'bad-tag': 0, replay: 0 };
  queue: InFlight[] = [];
  sentCount = 0;
  /** Steps added to every packet sent on delayKeyId (keeps packets in flight across a key switch). */
  extraDelay = 0;
  delayKeyId = -1;
  /** Packets of an older key accepted after one of a newer key (in-flight packets across the switch). */
  oldAfterNew = 0;
  /** Datagrams whose key_id the receiving host had no key for. */
  noKey = 0;
  private newestAccepted = -1;
  private readonly out = PacketBatch.allocate(BATCH, MAX_PAYLOAD + DATA_V2_HEADROOM);
  private readonly inb = PacketBatch.allocate(64, MAX_PAYLOAD + DATA_V2_HEADROOM);
  private readonly results = new DecryptResults(64);

  constructor(
    readonly name: string,
    readonly from: DataSide,
    readonly to: DataSide,
    private readonly random: () => number,
    private readonly pool: Buffer,
  ) {}

  /** Seals `n` random payloads with the sender's current key and puts them on the link. */
  send(n: number, step: number): void {
    const keyId = this.from.sendKeyId!;
    if (keyId === this.delayKeyId) step += this.extraDelay;
    const key = this.from.keys.get(keyId)!;
    const headroom = key.headroom;
    const { memory, offsets, lengths } = this.out;
    const plain: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const len = randInt(this.random, 1, MAX_PAYLOAD);
      const start = randInt(this.random, 0, this.pool.length - len);
      const p = this.pool.subarray(start, start + len);
      memory.set(p, offsets[i]! + headroom);
      lengths[i] = len;
      plain.push(p);
    }
    assert.equal(key.encrypt(this.out, n), n);
    for (let i = 0; i < n; i++) {
      const wire = Buffer.from(this.out.packet(i));
      assert.equal(wire[0], (P_DATA_V2 << P_OPCODE_SHIFT) | keyId);
      assert.equal(wire.readUIntBE(1, 3), this.from.peerId);
      assert.equal(wire.length, plain[i]!.length + DATA_V2_HEADROOM);
      const id = `${keyId}:${wire.readUInt32BE(4)}`;
      assert.ok(!this.sent.has(id), `packet-id reused: ${id}`);
      this.sent.set(id, plain[i]!);
      this.sentOnKey[keyId]!++;
      this.sentCount++;
      const r = this.random();
      if (r < 0.01) {
        this.droppedOnPurpose.add(id); // lost
        continue;
      }
      if (r < 0.015) {
        this.droppedOnPurpose.add(id); // replaced by a tampered copy
        this.queue.push({ wire: tamper(wire, this.random), id, tampered: true, at: step + randInt(this.random, 0, 1) });
        continue;
      }
      // Mostly in order; 30% one step late, so up to ~2 batches out of order (< the 64 window).
      this.queue.push({ wire, id, tampered: false, at: step + (this.random() < 0.3 ? 1 : 0) });
      if (this.random() < 0.03) this.queue.push({ wire, id, tampered: false, at: step + randInt(this.random, 0, 1) });
      if (this.random() < 0.005)
        this.queue.push({ wire: tamper(wire, this.random), id, tampered: true, at: step + randInt(this.random, 0, 1) });
    }
  }

  /** Delays every queued packet of `keyId` by `steps` (they arrive after the next key's). */
  hold(keyId: number, steps: number): number {
    let n = 0;
    for (const f of this.queue) {
      if (f.wire[0]! % 8 === keyId) {
        f.at += steps;
        n++;
      }
    }
    return n;
  }

  /** Puts copies of already accepted packets of `keyId` back on the link: replays. */
  replay(keyId: number, count: number, step: number): void {
    const ids = [...this.accepted].filter((id) => id.startsWith(`${keyId}:`));
    for (let i = 0; i < count && ids.length > 0; i++) {
      const id = ids[randInt(this.random, 0, ids.length - 1)]!;
      const [, pid] = id.split(':');
      this.queue.push({ wire: this.rebuild(keyId, Number(pid)), id, tampered: false, at: step });
    }
  }

  // The wire bytes of an accepted packet, kept from its delivery.
  private readonly wires = new Map<string, Buffer>();
  private rebuild(keyId: number, pid: number): Buffer {
    return this.wires.get(`${keyId}:${pid}`)!;
  }

  /** Delivers what is due at `step` to the receiving host, checking each verdict. */
  deliver(step: number, now: number): void {
    const due: InFlight[] = [];
    const rest: InFlight[] = [];
    for (const f of this.queue) (f.at <= step ? due : rest).push(f);
    this.queue = rest;
    shuffle(this.random, due);
    // The host picks the key by the key_id of each datagram; per key, arrival order is kept.
    const byKey = new Map<number, InFlight[]>();
    for (const f of due) {
      const kid = f.wire[0]! & 7;
      const list = byKey.get(kid) ?? [];
      list.push(f);
      byKey.set(kid, list);
    }
    for (const [kid, list] of byKey) {
      const key = this.to.keys.get(kid);
      if (key === undefined) {
        this.noKey += list.length;
        continue;
      }
      for (let at = 0; at < list.length; at += 64) this.open(key, kid, list.slice(at, at + 64), now);
    }
  }

  private open(key: DataChannelKey, kid: number, list: InFlight[], now: number): void {
    for (let i = 0; i < list.length; i++) this.inb.set(i, list[i]!.wire);
    const accepted = key.decrypt(this.inb, list.length, now, this.results);
    let ok = 0;
    for (let i = 0; i < list.length; i++) {
      const f = list[i]!;
      let expected: DataDropReason | null;
      if (f.tampered) expected = 'bad-tag';
      else if (this.accepted.has(f.id)) expected = 'replay';
      else expected = null;
      assert.equal(this.results.reason(i), expected, `${this.name} ${f.id} tampered=${f.tampered}`);
      if (expected !== null) {
        this.expectedDrops[expected]++;
        continue;
      }
      ok++;
      const got = this.inb.memory.subarray(
        this.results.payloadOffsets[i]!,
        this.results.payloadOffsets[i]! + this.results.payloadLengths[i]!,
      );
      assert.ok(Buffer.from(got).equals(this.sent.get(f.id)!), `${this.name} ${f.id}: payload differs`);
      this.accepted.add(f.id);
      this.wires.set(f.id, f.wire);
      if (kid < this.newestAccepted) this.oldAfterNew++;
      this.newestAccepted = Math.max(this.newestAccepted, kid);
      acceptedOn(this.to, kid);
    }
    assert.equal(accepted, ok);
  }
}

function tamper(wire: Buffer, random: () => number): Buffer {
  const t = Buffer.from(wire);
  // Any bit after the opcode byte: peer-id and packet-id (AAD/nonce), tag or ciphertext.
  const at = randInt(random, 1, t.length - 1);
  t[at]! ^= 1 << randInt(random, 0, 7);
  return t;
}

function keysEvent(ev: SessionPair['clientEvents'], keyId: number): Buffer | undefined {
  for (const e of ev) if (e.type === 'keys' && e.keyId === keyId) return e.keyBlock;
  return undefined;
}

interface Scenario {
  seed: number;
  clientCiphers: string[];
  serverCiphers: string[];
  expectCipher: string;
  initiator: 'client' | 'server';
}

const SCENARIOS: Scenario[] = [
  {
    seed: 1,
    clientCiphers: ['AES-256-GCM', 'AES-128-GCM', 'CHACHA20-POLY1305'],
    serverCiphers: ['AES-256-GCM', 'CHACHA20-POLY1305'],
    expectCipher: 'AES-256-GCM',
    initiator: 'client',
  },
  {
    seed: 4,
    clientCiphers: ['AES-128-GCM', 'CHACHA20-POLY1305'],
    serverCiphers: ['AES-256-GCM', 'CHACHA20-POLY1305', 'AES-128-GCM'],
    expectCipher: 'CHACHA20-POLY1305',
    initiator: 'server',
  },
  {
    seed: 3,
    clientCiphers: ['CHACHA20-POLY1305', 'AES-128-GCM'],
    serverCiphers: ['AES-128-GCM', 'AES-256-GCM'],
    expectCipher: 'AES-128-GCM',
    initiator: 'client',
  },
];

for (const sc of SCENARIOS) {
  test(`lossy handshake, ${sc.expectCipher} by NCP, 10,000 packets each way across a ${sc.initiator}-initiated renegotiation (seed ${sc.seed})`, async () => {
    const random = mulberry32(sc.seed);
    const faults = { loss: 0.15, duplicate: 0.1, reorder: true };
    const pair = new SessionPair({
      pki,
      random,
      clientCiphers: sc.clientCiphers,
      serverCiphers: sc.serverCiphers,
      up: faults,
      down: faults,
    });
    try {
      await pair.establish();
      assert.ok(pair.lost > 0 && pair.duplicated > 0, 'the control link did lose and duplicate');
      const cd = pair.clientData;
      const sd = pair.serverData;
      assert.equal(sd.cipher, sc.expectCipher);
      assert.equal(cd.cipher, sc.expectCipher);
      assert.equal(cd.peerId, 7);
      assert.deepEqual(keysEvent(pair.clientEvents, 0), keysEvent(pair.serverEvents, 0));
      assert.equal(pair.client.activeKeyId, 0);
      assert.equal(pair.server!.activeKeyId, 0);

      const pool = Buffer.alloc(1 << 16);
      for (let i = 0; i < pool.length; i++) pool[i] = Math.floor(random() * 256);
      const up = new Direction('client->server', cd, sd, random, pool);
      const down = new Direction('server->client', sd, cd, random, pool);
      const dirs = [up, down];
      let step = 0;
      const advance = (): void => {
        for (const d of dirs) d.deliver(step, pair.now);
        step++;
        pair.now += STEP_MS;
        pair.tickDue();
      };

      // Phase 1: half the traffic on key_id 0.
      while (up.sentCount < TOTAL / 2 || down.sentCount < TOTAL / 2) {
        for (const d of dirs) if (d.sentCount < TOTAL / 2) d.send(Math.min(randInt(random, 1, 24), TOTAL / 2 - d.sentCount), step);
        advance();
      }

      // Phase 2: renegotiate while data keeps flowing; each side moves to key_id 1 when its host may.
      const initiator = sc.initiator === 'client' ? pair.client : pair.server!;
      assert.equal(initiator.renegotiate(), true);
      const held = [false, false];
      let replayedOld = false;
      for (const d of dirs) {
        d.extraDelay = 3;
        d.delayKeyId = 0;
      }
      for (let guard = 0; ; guard++) {
        assert.ok(guard < 20_000, `stalled: client ${summary(pair.clientEvents)}; server ${summary(pair.serverEvents)}`);
        const switched = cd.sendKeyId === 1 && sd.sendKeyId === 1;
        for (const d of dirs) {
          const left = TOTAL - d.sentCount;
          // Small batches while the new key is negotiated, so the switch comes well before the end.
          if (left > 0) d.send(Math.min(randInt(random, 1, switched ? 24 : 3), left), step);
        }
        dirs.forEach((d, i) => {
          // At its sender's switch, hold that direction's in-flight key_id 0 packets back so they
          // arrive after key_id 1 packets: the old key must still open them.
          if (!held[i] && d.from.sendKeyId === 1) {
            held[i] = d.hold(0, 5) > 0;
          }
        });
        if (switched && !replayedOld) {
          for (const d of dirs) d.replay(0, 30, step);
          replayedOld = true;
        }
        pair.deliverControl();
        if (!switched) {
          await new Promise<void>((r) => setImmediate(r));
          await new Promise<void>((r) => setImmediate(r));
        }
        advance();
        if (switched && dirs.every((d) => d.sentCount === TOTAL && d.queue.length === 0)) break;
      }
      assert.deepEqual(held, [true, true], 'in-flight key_id 0 packets crossed the switch both ways');
      assert.deepEqual(keysEvent(pair.clientEvents, 1), keysEvent(pair.serverEvents, 1));
      assert.notDeepEqual(keysEvent(pair.clientEvents, 1), keysEvent(pair.clientEvents, 0));

      // Phase 3: the old key lives until its transition window ends.
      for (const d of dirs) assert.ok(d.to.keys.has(0), `${d.name}: key_id 0 kept until key-retired`);
      await pair.runUntil(() => cd.retired.includes(0) && sd.retired.includes(0));
      for (const d of dirs) {
        assert.ok(!d.to.keys.has(0));
        assert.deepEqual([...d.to.keys.keys()], [1]);
      }
      assert.equal(pair.client.activeKeyId, 1);
      assert.equal(pair.server!.activeKeyId, 1);

      // A key_id 0 packet after retirement: no key at the host; handed to key_id 1 anyway, it
      // is refused by key id. Then replays on key_id 1.
      for (const d of dirs) {
        const old = [...d.accepted].find((id) => id.startsWith('0:'))!;
        d.replay(0, 1, step);
        const stale = d.queue[d.queue.length - 1]!.wire;
        d.deliver(step, pair.now);
        assert.equal(d.noKey, 1, `${d.name}: ${old} found no key`);
        const b = PacketBatch.allocate(1, stale.length);
        b.set(0, stale);
        const res = new DecryptResults(1);
        assert.equal(d.to.keys.get(1)!.decrypt(b, 1, pair.now, res), 0);
        assert.equal(res.reason(0), 'bad-key-id');
        d.expectedDrops['bad-key-id']++;
        d.replay(1, 30, step);
        d.deliver(step, pair.now);
      }

      for (const d of dirs) {
        // Every packet sent was accepted exactly once, except those dropped on purpose.
        const expected = [...d.sent.keys()].filter((id) => !d.droppedOnPurpose.has(id)).sort();
        assert.deepEqual([...d.accepted].sort(), expected, `${d.name}: accepted set`);
        assert.equal(d.sentCount, TOTAL);
        assert.ok(d.sentOnKey[0]! >= TOTAL / 2 && d.sentOnKey[1]! >= 1000, `${d.name}: sent per key ${d.sentOnKey}`);
        assert.ok(d.oldAfterNew > 0, `${d.name}: old key opened packets after the new one was in use`);
        assert.ok(d.expectedDrops.replay >= 60 && d.expectedDrops['bad-tag'] > 0, `${d.name}: ${JSON.stringify(d.expectedDrops)}`);
        assert.deepEqual(d.to.counters.drops, d.expectedDrops, `${d.name}: drop counters`);
        assert.equal(d.to.counters.packetIdExhausted, 0);
      }
      for (const ev of [pair.clientEvents, pair.serverEvents])
        assert.deepEqual(
          ev.filter((e) => e.type === 'error'),
          [],
        );
      const renegs = pair.clientEvents.filter((e) => e.type === 'renegotiating');
      assert.ok(
        renegs.length === 1 &&
          renegs[0]!.type === 'renegotiating' &&
          renegs[0]!.initiatedBy === (sc.initiator === 'client' ? 'local' : 'peer'),
      );
    } finally {
      pair.close();
    }
  });
}

// OpenVPN sends on a key only at S_ACTIVE, which a server reaches once the client has ACKed its
// key method 2 message (ssl.c tls_process_state "Wait for ACK"), so a server never sends on a
// key the client cannot have yet. The server's 'keys' comes before its reply has even left;
// 'key-active' comes after that ACK. Here the client sends no data at all, so only
// 'key-active' can move the server to the new key, and no packet on it may beat the client's
// keys.
test('a server host may send on a renegotiated key from its key-active event on', async () => {
  const random = mulberry32(9);
  const pair = new SessionPair({
    pki,
    random,
    clientCiphers: ['AES-256-GCM'],
    serverCiphers: ['AES-256-GCM'],
    serverSwitchesAtActive: true,
  });
  try {
    await pair.establish();
    const down = new Direction('server->client', pair.serverData, pair.clientData, random, Buffer.alloc(4096, 0x5a));
    assert.equal(pair.client.renegotiate(), true);
    let step = 0;
    let sentOnNew = 0;
    for (let guard = 0; guard < 2000 && (pair.clientData.sendKeyId !== 1 || sentOnNew < 10); guard++) {
      pair.deliverControl();
      await new Promise<void>((r) => setImmediate(r));
      // Every round in which the server already sends on key_id 1, one packet goes down.
      if (pair.serverData.sendKeyId === 1) {
        down.send(1, step);
        down.deliver(step, pair.now);
        sentOnNew++;
      }
      step++;
      pair.now += STEP_MS;
      pair.tickDue();
    }
    assert.equal(pair.clientData.sendKeyId, 1);
    assert.equal(sentOnNew, 10, 'the server moved to key_id 1 without any data from the client');
    assert.equal(down.noKey, 0, 'packets on key_id 1 reached the client before it had the key');
    assert.deepEqual(
      pair.serverEvents.filter((e) => e.type === 'key-active').map((e) => e.keyId),
      [0, 1],
    );
    assert.deepEqual(
      pair.clientEvents.filter((e) => e.type === 'key-active').map((e) => e.keyId),
      [0, 1],
    );
  } finally {
    pair.close();
  }
});
