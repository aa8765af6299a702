// A flood of spoofed HARD_RESET_CLIENT_V2 packets (10,000 distinct source address:port pairs)
// into a StatelessResponder-fronted server host, with tls-crypt and without wrapping, while a
// real client (our ControlSession, in memory) completes its handshake in between. The host is
// the shard's logic: sessions by address, a new one only on the responder's 'create'.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ControlSession } from '../src/shared/session/control-session';
import { StatelessResponder } from '../src/shared/session/stateless-responder';
import { ControlWrap, type WrapConfig } from '../src/shared/session/control-wrap';
import type { ControlSessionConfig, SessionEvent } from '../src/shared/session/types';
import { buildControlPacket, parseControlPacket } from '../src/shared/protocol/packet';
import { P_ACK_V1, P_CONTROL_HARD_RESET_CLIENT_V2, P_CONTROL_HARD_RESET_SERVER_V2, P_OPCODE_SHIFT } from '../src/shared/protocol/opcodes';
import { generateStaticKey } from '../src/shared/protocol/static-key';
import { buildPeerInfo } from '../src/shared/protocol/key-method2';
import { makeTestPki } from '../lab/test-pki';

const pki = makeTestPki();
after(() => pki.cleanup());

const FLOOD = 10_000;
/** Spoofed packets between two turns of the event loop (the real client's TLS runs in those). */
const BURST = 100;
const CLIENT_OPTIONS =
  'V4,dev-type tun,link-mtu 1559,tun-mtu 1500,proto UDPv4,cipher AES-256-GCM,auth [null-digest],keysize 256,key-method 2,tls-client';
const SERVER_OPTIONS =
  'V4,dev-type tun,link-mtu 1559,tun-mtu 1500,proto UDPv4,cipher AES-256-GCM,auth [null-digest],keysize 256,key-method 2,tls-server';
const PUSH = 'PUSH_REPLY,ifconfig 10.8.0.2 255.255.255.0,peer-id 0,cipher AES-256-GCM,key-derivation tls-ekm';
const REAL = { address: '192.0.2.1', port: 1194 };

/** The gc function: --expose-gc's, or one obtained at run time; null if neither works. */
function getGc(): (() => void) | null {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') return g;
  try {
    setFlagsFromString('--expose-gc');
    const f: unknown = runInNewContext('gc');
    return typeof f === 'function' ? (f as () => void) : null;
  } catch {
    return null;
  }
}

/** Spoofer i's source: a distinct address (and port) for each i < 2^24. */
function spoofAddress(i: number): string {
  return `10.${(i >>> 16) & 0xff}.${(i >>> 8) & 0xff}.${i & 0xff}`;
}
function spoofIndex(address: string): number {
  const p = address.split('.');
  return (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3]);
}

/** The shard's host logic for unknown and known source addresses. */
class ServerHost {
  readonly sessions = new Map<string, ControlSession>();
  readonly events: SessionEvent[] = [];
  readonly responder: StatelessResponder;
  created = 0;
  drops = 0;
  constructor(
    readonly cfg: ControlSessionConfig,
    readonly clock: () => number,
    readonly send: (wire: Buffer, address: string, port: number) => void,
  ) {
    this.responder = new StatelessResponder({ wrap: cfg.wrap });
  }

  receive(wire: Buffer, address: string, port: number): void {
    const key = `${address}:${port}`;
    const s = this.sessions.get(key);
    if (s !== undefined) {
      s.receivePacket(wire);
      return;
    }
    const r = this.responder.handle(wire, address, port, this.clock());
    if (r.action === 'drop') this.drops++;
    else if (r.action === 'reply') this.send(r.wire, address, port);
    else {
      this.created++;
      const session: ControlSession = new ControlSession(r.stateless === null ? this.cfg : { ...this.cfg, stateless: r.stateless }, {
        sendPacket: (w) => this.send(Buffer.from(w), address, port),
        onEvent: (e) => {
          this.events.push(e);
          if (e.type === 'control-message' && e.text === 'PUSH_REQUEST') session.sendControlMessage(PUSH);
        },
        now: this.clock,
      });
      this.sessions.set(key, session);
      session.start();
      session.receivePacket(wire);
    }
  }
}

function wraps(mode: 'tls-crypt' | 'none'): { client: WrapConfig; server: WrapConfig } {
  if (mode === 'none') return { client: { mode: 'none' }, server: { mode: 'none' } };
  const key = generateStaticKey();
  return { client: { mode: 'tls-crypt', key }, server: { mode: 'tls-crypt', key } };
}

for (const mode of ['tls-crypt', 'none'] as const) {
  test(`10,000 spoofed hard resets get only stateless replies while a real client connects (${mode})`, { timeout: 30_000 }, async () => {
    const w = wraps(mode);
    const now = 5_000_000;
    const clock = (): number => now;
    const toClient: Buffer[] = [];
    const toServer: Buffer[] = [];
    const replies = new Uint8Array(FLOOD);
    const spoofSids = Buffer.alloc(FLOOD * 8);
    let strayReplies = 0;
    let badReplies = 0;
    const clientWrapForChecks = new ControlWrap(w.client, 'client');
    const host = new ServerHost(
      {
        role: 'server',
        tls: { ca: pki.caCert, cert: pki.serverCert, key: pki.serverKey },
        wrap: w.server,
        remoteCertTls: 'client',
        keyMethod2: { options: SERVER_OPTIONS, peerInfo: null },
      },
      clock,
      (wire, address, port) => {
        if (address === REAL.address && port === REAL.port) {
          toClient.push(wire);
          return;
        }
        const i = spoofIndex(address);
        if (!(i >= 0 && i < FLOOD) || port !== 1024 + (i % 60_000)) {
          strayReplies++;
          return;
        }
        replies[i]!++;
        // Each reply: a HARD_RESET_SERVER_V2 that acknowledges this spoofer's own session id.
        const u = clientWrapForChecks.unwrap(wire, now, false);
        const p = u.ok ? parseControlPacket(u.packet) : null;
        if (
          p === null ||
          !p.ok ||
          p.value.opcode !== P_CONTROL_HARD_RESET_SERVER_V2 ||
          p.value.remoteSessionId === null ||
          !p.value.remoteSessionId.equals(spoofSids.subarray(i * 8, i * 8 + 8))
        ) {
          badReplies++;
        }
      },
    );

    const clientEvents: SessionEvent[] = [];
    const client: ControlSession = new ControlSession(
      {
        role: 'client',
        tls: { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey },
        wrap: w.client,
        remoteCertTls: 'server',
        keyMethod2: {
          options: CLIENT_OPTIONS,
          peerInfo: buildPeerInfo({ version: '2.6.14', platform: 'linux', ncp: 2, ciphers: ['AES-256-GCM'], proto: 0x0a }),
        },
      },
      {
        sendPacket: (wire) => toServer.push(Buffer.from(wire)),
        onEvent: (e) => {
          clientEvents.push(e);
          if (e.type === 'key-method-2') client.sendControlMessage('PUSH_REQUEST');
          if (e.type === 'control-message' && e.text.startsWith('PUSH_REPLY'))
            client.setKeyDerivation(/key-derivation tls-ekm/.test(e.text) ? 'tls-ekm' : 'prf');
        },
        now: clock,
      },
    );
    const pushed = (): boolean => clientEvents.some((e) => e.type === 'control-message' && e.text.startsWith('PUSH_REPLY'));
    const pump = (): void => {
      for (const m of toServer.splice(0)) host.receive(m, REAL.address, REAL.port);
      for (const m of toClient.splice(0)) client.receivePacket(m);
    };

    // The spoofers' resets, built up front so building them is not measured as server memory.
    const spoofWrap = new ControlWrap(w.client, 'client');
    const resets: Buffer[] = [];
    const forgedAcks: Buffer[] = [];
    for (let i = 0; i < FLOOD; i++) {
      const sid = randomBytes(8);
      sid.copy(spoofSids, i * 8);
      const reset = buildControlPacket({
        kind: 'message',
        opcode: P_CONTROL_HARD_RESET_CLIENT_V2,
        keyId: 0,
        sessionId: sid,
        acks: [],
        remoteSessionId: null,
        messageId: 0,
        payload: Buffer.alloc(0),
      });
      resets.push(spoofWrap.wrap(reset, now)!);
      // Every tenth spoofer also "echoes" a guessed cookie, as a blind attacker would have to.
      if (i % 10 === 0) {
        const ack = buildControlPacket({
          kind: 'ack',
          opcode: P_ACK_V1,
          keyId: 0,
          sessionId: sid,
          acks: [0],
          remoteSessionId: randomBytes(8),
        });
        forgedAcks.push(spoofWrap.wrap(ack, now)!);
      }
    }
    assert.equal(resets[0]![0]! >>> P_OPCODE_SHIFT, P_CONTROL_HARD_RESET_CLIENT_V2);

    const gc = getGc();
    gc?.();
    const heapBefore = process.memoryUsage().heapUsed;

    client.start();
    let floodAtClientFirst = -1;
    let floodAtKeys = -1;
    for (let i = 0; i < FLOOD; i++) {
      host.receive(resets[i]!, spoofAddress(i), 1024 + (i % 60_000));
      if (i % 10 === 0) host.receive(forgedAcks[i / 10]!, spoofAddress(i), 1024 + (i % 60_000));
      if (i % BURST === BURST - 1) {
        if (floodAtClientFirst < 0 && toServer.length > 0) floodAtClientFirst = i;
        pump();
        if (floodAtKeys < 0 && client.activeKeyId !== null) floodAtKeys = i;
        await new Promise<void>((r) => setImmediate(r));
      }
    }
    // The client may still be mid-handshake when the flood ends: finish it (bounded).
    for (let turns = 0; !pushed() && turns < 2000; turns++) {
      pump();
      await new Promise<void>((r) => setImmediate(r));
    }

    assert.ok(
      pushed(),
      `real client got no PUSH_REPLY; client events ${clientEvents
        .filter((e) => e.type !== 'drop')
        .map((e) => e.type)
        .join(',')}`,
    );
    assert.ok(clientEvents.some((e) => e.type === 'keys' && e.method === 'tls-ekm'));
    assert.ok(host.events.some((e) => e.type === 'keys'));
    assert.ok(!clientEvents.some((e) => e.type === 'error') && !host.events.some((e) => e.type === 'error'));
    // Interleaved: the client's handshake ran while spoofed packets were still arriving.
    assert.ok(floodAtClientFirst >= 0 && floodAtClientFirst < FLOOD / 2, `client's first packet at flood index ${floodAtClientFirst}`);
    assert.ok(floodAtKeys > floodAtClientFirst, `client's keys at flood index ${floodAtKeys}`);

    // Only the real client got a session; every spoofer at most one (here: exactly one) reply.
    assert.equal(host.created, 1);
    assert.deepEqual([...host.sessions.keys()], [`${REAL.address}:${REAL.port}`]);
    let max = 0;
    let replied = 0;
    for (let i = 0; i < FLOOD; i++) {
      max = Math.max(max, replies[i]!);
      if (replies[i] === 1) replied++;
    }
    assert.equal(max, 1);
    assert.equal(replied, FLOOD);
    assert.equal(strayReplies, 0);
    assert.equal(badReplies, 0);
    assert.equal(host.drops, FLOOD / 10, 'every forged cookie echo is dropped');

    if (gc !== null) {
      resets.length = 0;
      forgedAcks.length = 0;
      gc();
      const growth = process.memoryUsage().heapUsed - heapBefore;
      assert.ok(growth < 20 * 1024 * 1024, `heapUsed grew by ${(growth / 1048576).toFixed(1)} MB across the flood`);
    }
    client.close();
    for (const s of host.sessions.values()) s.close();
  });
}
