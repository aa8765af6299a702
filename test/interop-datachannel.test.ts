// Data-channel interop with the real openvpn 2.6 binary over UDP on 127.0.0.1, for every
// cipher x control-channel wrap x key derivation (TLS-EKM / PRF):
//   (a) `openvpn --client` against our server (StatelessResponder + ControlSession + DataChannelKey);
//   (b) our client (ControlSession + DataChannelKey) against `openvpn --mode server`.
// Each case decrypts the peer's keepalive ping to the ping magic, then sends an OCC_REQUEST and
// a ping; the peer's OCC_REPLY, decrypted with our key, proves it accepted our packets too.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type * as dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import { StatelessResponder } from '../src/shared/session/stateless-responder';
import type { ControlSessionConfig, KeyDerivationMethod } from '../src/shared/session/types';
import { buildPeerInfo, IV_PROTO_DATA_V2, IV_PROTO_TLS_KEY_EXPORT } from '../src/shared/protocol/key-method2';
import { DataChannelKey, DecryptResults, DATA_V2_HEADROOM } from '../src/shared/protocol/data-channel';
import { PING_MAGIC, writePingMessage } from '../src/shared/protocol/ping';
import { parseOccMessage, writeOccMessage, payloadKind } from '../src/shared/protocol/occ';
import { P_DATA_V1, P_DATA_V2, P_OPCODE_SHIFT } from '../src/shared/protocol/opcodes';
import { PacketBatch, type AeadCipherName } from '../src/shared/native';
import { bindUdp, freePort, OpenvpnProcess, openvpnClientArgs, openvpnServerArgs, openvpnWrap } from '../lab/openvpn-peer';
import { makeTestPki } from '../lab/test-pki';
import { UdpSessionHost } from '../lab/udp-session';

const haveOpenvpn = spawnSync('openvpn', ['--version']).status !== null;
const canTun = process.getuid?.() === 0 && existsSync('/dev/net/tun');
const pki = makeTestPki();
after(() => pki.cleanup());

const CIPHERS: readonly AeadCipherName[] = ['AES-256-GCM', 'AES-128-GCM', 'CHACHA20-POLY1305'];
const WRAPS = ['tls-crypt', 'tls-auth', 'none'] as const;
type WrapMode = (typeof WRAPS)[number];
const DERIVATIONS: readonly KeyDerivationMethod[] = ['tls-ekm', 'prf'];

/** Lines a peer logs (at verb 1 and up) when one of our data packets fails to open. */
const DECRYPT_ERROR =
  /AEAD Decrypt error|Authenticate\/Decrypt packet error|packet HMAC authentication failed|bad packet ID|key_id \d+ \[\d+\] not found|TLS Error: local\/remote TLS keys are out of sync/;

function options(cipher: AeadCipherName, role: 'client' | 'server'): string {
  const keysize = cipher === 'AES-128-GCM' ? 128 : 256;
  return `V4,dev-type tun,link-mtu 1559,tun-mtu 1500,proto UDPv4,cipher ${cipher},auth [null-digest],keysize ${keysize},key-method 2,tls-${role}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** One key's data channel with its own one-packet batches (tests only: a packet at a time). */
class DataPeer {
  private readonly rx = PacketBatch.allocate(1, 2048, 0);
  private readonly tx = PacketBatch.allocate(1, 2048, 0);
  private readonly results = new DecryptResults(1);
  constructor(readonly key: DataChannelKey) {}

  /** The plaintext of a received data packet, or the drop reason. */
  open(wire: Buffer, now: number): { ok: true; payload: Buffer } | { ok: false; reason: string } {
    this.rx.set(0, wire);
    if (this.key.decrypt(this.rx, 1, now, this.results) !== 1) return { ok: false, reason: this.results.reason(0) ?? '?' };
    const at = this.results.payloadOffsets[0]!;
    return { ok: true, payload: Buffer.from(this.rx.memory.subarray(at, at + this.results.payloadLengths[0]!)) };
  }

  /** A data packet carrying `write`'s plaintext. */
  seal(write: (memory: Uint8Array, offset: number) => number): Buffer {
    const headroom = this.key.headroom;
    this.tx.lengths[0] = write(this.tx.memory, this.tx.offsets[0]! + headroom);
    assert.equal(this.key.encrypt(this.tx, 1), 1);
    return Buffer.from(this.tx.packet(0));
  }
}

/** A session and the data keys of its key_ids over one UDP socket, with the real clock. */
class UdpEndpoint extends UdpSessionHost {
  readonly data: Buffer[] = [];
  readonly dataErrors: string[] = [];
  readonly keys = new Map<number, DataPeer>();
  /** Datagrams from addresses without a session (server side). */
  onUnknown: (m: Buffer, rinfo: dgram.RemoteInfo) => void = () => undefined;

  constructor(sock: dgram.Socket) {
    super(sock);
    sock.on('message', (m, rinfo) => this.receive(m, rinfo));
  }

  private receive(m: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.session === null) {
      this.onUnknown(m, rinfo);
    } else if (m.length > 0 && (m[0]! >>> P_OPCODE_SHIFT === P_DATA_V2 || m[0]! >>> P_OPCODE_SHIFT === P_DATA_V1)) {
      const peer = this.keys.get(m[0]! & 7);
      if (peer === undefined) {
        this.dataErrors.push(`no key for key_id ${m[0]! & 7}`);
        return;
      }
      const r = peer.open(m, performance.now());
      if (r.ok) this.data.push(Buffer.concat([m.subarray(0, m[0]! >>> P_OPCODE_SHIFT === P_DATA_V2 ? 4 : 1), r.payload]));
      else this.dataErrors.push(r.reason);
    } else if (!this.session.isClosed) {
      this.session.receivePacket(m);
    }
    this.schedule();
  }

  async waitFor<T>(pick: () => T | undefined, ms: number, what: string, ovpn: OpenvpnProcess): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = pick();
      if (v !== undefined) return v;
      if (Date.now() > end) {
        const ev = this.events.filter((e) => e.type !== 'drop').map((e) => JSON.stringify(e).slice(0, 160));
        throw new Error(
          `no ${what} within ${ms} ms; events ${ev.join(' | ')}; data errors ${this.dataErrors.join(',')}; openvpn log:\n${ovpn.log.slice(-3000)}`,
        );
      }
      await sleep(10);
    }
  }

  override close(): void {
    super.close();
    for (const k of this.keys.values()) k.key.destroy();
  }
}

const isPing = (p: Buffer, headerLen: number): boolean =>
  p.length === headerLen + 16 && p.subarray(headerLen).equals(Buffer.from(PING_MAGIC));

function occReplyOf(p: Buffer, headerLen: number): string | undefined {
  if (payloadKind(p, headerLen, p.length - headerLen) !== 'occ') return undefined;
  const r = parseOccMessage(p, headerLen, p.length - headerLen);
  return r.ok && r.message.op === 'reply' ? r.message.options : undefined;
}

/**
 * After the peer's first ping (so its data keys are in): our OCC_REQUEST and ping, then its
 * OCC_REPLY. Returns the peer's options string from the reply.
 */
async function exchangeOcc(ep: UdpEndpoint, peer: DataPeer, ovpn: OpenvpnProcess): Promise<string> {
  // Ping first: openvpn handles datagrams in order, so by its OCC_REPLY it has opened both.
  ep.send(peer.seal((m, at) => writePingMessage(m, at)));
  ep.send(peer.seal((m, at) => writeOccMessage(m, at, { op: 'request' })));
  return ep.waitFor(
    () => {
      for (const p of ep.data) {
        const o = occReplyOf(p, p[0]! >>> P_OPCODE_SHIFT === P_DATA_V2 ? 4 : 1);
        if (o !== undefined) return o;
      }
      return undefined;
    },
    3000,
    'OCC_REPLY',
    ovpn,
  );
}

for (const cipher of CIPHERS) {
  for (const wrap of WRAPS) {
    for (const kd of DERIVATIONS) {
      test(`(a) openvpn 2.6 --client against our server: ${cipher}, ${wrap}, ${kd}`, { skip: !haveOpenvpn, timeout: 15_000 }, async () => {
        const w = openvpnWrap(pki, wrap, 'server');
        const ep = new UdpEndpoint(await bindUdp());
        const port = ep.sock.address().port;
        const responder = new StatelessResponder({ wrap: w.ours });
        const PEER_ID = 0x0a0b0c;
        const push = `PUSH_REPLY,topology subnet,ifconfig 10.8.0.2 255.255.255.0,peer-id ${PEER_ID},cipher ${cipher}${kd === 'tls-ekm' ? ',key-derivation tls-ekm' : ''}`;
        const serverCfg: ControlSessionConfig = {
          role: 'server',
          tls: { ca: pki.caCert, cert: pki.serverCert, key: pki.serverKey },
          wrap: w.ours,
          remoteCertTls: 'client',
          // The openvpn client offers TLS_KEY_EXPORT: 'auto' picks EKM; PRF is what it falls back
          // to when the push has no key-derivation tls-ekm (ssl_ncp / push.c), so force it here.
          keyDerivation: kd === 'tls-ekm' ? 'auto' : 'prf',
          keyMethod2: { options: options(cipher, 'server'), peerInfo: null },
        };
        ep.onUnknown = (m, rinfo) => {
          const r = responder.handle(m, rinfo.address, rinfo.port, performance.now());
          if (r.action === 'reply') ep.sock.send(r.wire, rinfo.port, rinfo.address);
          else if (r.action === 'create') {
            ep.remote = { address: rinfo.address, port: rinfo.port };
            const s = ep.attach(r.stateless === null ? serverCfg : { ...serverCfg, stateless: r.stateless });
            s.start();
            s.receivePacket(m);
          }
        };
        ep.onEvent = (e, s) => {
          if (e.type === 'control-message' && e.text === 'PUSH_REQUEST') s.sendControlMessage(push);
          if (e.type === 'keys')
            ep.keys.set(e.keyId, new DataPeer(DataChannelKey.fromKeyBlock(e.keyBlock, 'server', cipher, e.keyId, { peerId: PEER_ID })));
        };
        const ovpn = new OpenvpnProcess(
          openvpnClientArgs(pki, port, ['--data-ciphers', cipher, '--ping', '1', '--connect-retry', '1', ...w.args]),
        );
        try {
          await ovpn.waitFor(/Initialization Sequence Completed/, 8000);
          assert.match(ovpn.log, new RegExp(`PUSH: Received control message: 'PUSH_REPLY,.*cipher ${cipher}`));
          const keys = ep.events.find((e) => e.type === 'keys');
          assert.ok(keys?.type === 'keys');
          assert.equal(keys.method, kd);

          // Its keepalive ping (--ping 1): P_DATA_V2 with our pushed peer-id, plaintext = ping magic.
          const ping = await ep.waitFor(() => ep.data.find((p) => isPing(p, 4)), 3000, 'ping from the openvpn client', ovpn);
          assert.equal(ping[0], (P_DATA_V2 << P_OPCODE_SHIFT) | keys.keyId);
          assert.equal(ping.readUIntBE(1, 3), PEER_ID);
          assert.deepEqual(ep.dataErrors, []);

          const peer = ep.keys.get(keys.keyId)!;
          const occ = await exchangeOcc(ep, peer, ovpn);
          // Its static OCC options string (2.6 leaves the negotiated cipher out of it).
          assert.match(occ, /^V4,dev-type null,.*tls-client$/);
          await sleep(50);
          assert.doesNotMatch(ovpn.log, DECRYPT_ERROR);
          assert.doesNotMatch(ovpn.log, /Inactivity timeout|SIGUSR1\[/);
          assert.deepEqual(ep.dataErrors, []);
          assert.ok(!ep.events.some((e) => e.type === 'error'));
          assert.ok(peer.key.traffic.receivedPackets >= 2 && peer.key.traffic.sentPackets === 2);
        } finally {
          await ovpn.kill();
          ep.close();
        }
      });
    }
  }
}

/** An openvpn p2mp server on a never-configured tun device, shared by the cases of one wrap. */
interface OpenvpnServer {
  ovpn: OpenvpnProcess;
  port: number;
}
const servers = new Map<WrapMode, OpenvpnServer>();
after(async () => {
  for (const s of servers.values()) await s.ovpn.kill();
});

async function openvpnServer(wrap: WrapMode): Promise<OpenvpnServer> {
  const have = servers.get(wrap);
  if (have !== undefined && have.ovpn.proc.exitCode === null) return have;
  const port = await freePort();
  const dev = `svd${process.pid % 10000}${WRAPS.indexOf(wrap)}`;
  const ovpn = new OpenvpnProcess(
    openvpnServerArgs(pki, port, dev, [
      '--duplicate-cn',
      '--data-ciphers',
      CIPHERS.join(':'),
      '--ping',
      '1',
      ...openvpnWrap(pki, wrap, 'client').args,
    ]),
  );
  const s = { ovpn, port };
  servers.set(wrap, s);
  await ovpn.waitFor(/Initialization Sequence Completed/, 8000);
  return s;
}

for (const wrap of WRAPS) {
  for (const cipher of CIPHERS) {
    for (const kd of DERIVATIONS) {
      test(
        `(b) our client against openvpn 2.6 --mode server: ${cipher}, ${wrap}, ${kd}`,
        { skip: !haveOpenvpn || !canTun, timeout: 15_000 },
        async () => {
          const srv = await openvpnServer(wrap);
          const logStart = srv.ovpn.log.length;
          const ep = new UdpEndpoint(await bindUdp());
          ep.remote = { address: '127.0.0.1', port: srv.port };
          let peerId: number | null = null;
          let pushedCipher = '';
          ep.onEvent = (e, s) => {
            if (e.type === 'key-method-2') s.sendControlMessage('PUSH_REQUEST');
            if (e.type === 'control-message' && e.text.startsWith('PUSH_REPLY')) {
              pushedCipher = /,cipher ([^,]+)/.exec(e.text)?.[1] ?? '';
              const pid = /,peer-id (\d+)/.exec(e.text);
              peerId = pid === null ? null : Number(pid[1]);
              s.setKeyDerivation(/(key-derivation|protocol-flags[^,]*) tls-ekm/.test(e.text) ? 'tls-ekm' : 'prf');
            }
            if (e.type === 'keys')
              ep.keys.set(e.keyId, new DataPeer(DataChannelKey.fromKeyBlock(e.keyBlock, 'client', cipher, e.keyId, { peerId })));
          };
          const s = ep.attach({
            role: 'client',
            tls: { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey },
            wrap: openvpnWrap(pki, wrap, 'client').ours,
            remoteCertTls: 'server',
            keyMethod2: {
              options: options(cipher, 'client'),
              // Without the TLS_KEY_EXPORT bit the server neither pushes key-derivation tls-ekm nor uses it.
              peerInfo: buildPeerInfo({
                version: '2.6.14',
                platform: 'linux',
                ncp: 2,
                ciphers: [cipher],
                proto: IV_PROTO_DATA_V2 | (kd === 'tls-ekm' ? IV_PROTO_TLS_KEY_EXPORT : 0),
              }),
            },
          });
          try {
            s.start();
            ep.schedule();
            const keys = await ep.waitFor(() => ep.events.find((e) => e.type === 'keys'), 8000, 'keys', srv.ovpn);
            assert.ok(keys.type === 'keys');
            assert.equal(keys.method, kd);
            assert.equal(pushedCipher, cipher);
            assert.ok(peerId !== null, 'the server pushes a peer-id to a DATA_V2 client');
            const reply = ep.events.find((e) => e.type === 'control-message' && e.text.startsWith('PUSH_REPLY'));
            assert.ok(reply?.type === 'control-message');
            if (kd === 'tls-ekm') assert.match(reply.text, /key-derivation tls-ekm/);
            else assert.doesNotMatch(reply.text, /tls-ekm/);

            // Its keepalive ping (--ping 1 on the server): our key opens it to the ping magic. A
            // 2.6 server sends P_DATA_V2 too once the client speaks it; accept either format.
            const ping = await ep.waitFor(
              () => ep.data.find((p) => isPing(p, 4) || isPing(p, 1)),
              3000,
              'ping from the openvpn server',
              srv.ovpn,
            );
            assert.equal(ping[0]! & 7, keys.keyId);
            assert.deepEqual(ep.dataErrors, []);

            const peer = ep.keys.get(keys.keyId)!;
            assert.equal(peer.key.headroom, DATA_V2_HEADROOM);
            const occ = await exchangeOcc(ep, peer, srv.ovpn);
            assert.match(occ, /^V4,dev-type tun,.*tls-server$/);
            await sleep(50);
            const log = srv.ovpn.log.slice(logStart);
            assert.doesNotMatch(log, DECRYPT_ERROR);
            assert.deepEqual(ep.dataErrors, []);
            assert.ok(!ep.events.some((e) => e.type === 'error'));
          } finally {
            ep.close();
          }
        },
      );
    }
  }
}
