// Interop: a real OpenVPN 2.6 client (no tls-auth) talks to a node dgram socket on loopback.
// Its hard reset must parse; our server reset, built by the codec, must make it go on with
// an ACK of our message 0 under our session id and its ClientHello as message 1, resent
// on OpenVPN's tls-timeout while we do not ACK it.
import { selfSignedCert } from '../lab/test-pki';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { P_ACK_V1, P_CONTROL_HARD_RESET_CLIENT_V2, P_CONTROL_HARD_RESET_SERVER_V2, P_CONTROL_V1 } from '../src/shared/protocol/opcodes';
import { buildControlPacket, parseControlPacket, type ControlPacket } from '../src/shared/protocol/packet';

function have(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return r.error === undefined;
}

const haveTools = have('openvpn', ['--version']) && have('openssl', ['version']);

test(
  'real openvpn client: hard reset parses, our server reset gets ACKed, ClientHello follows and is resent',
  { skip: !haveTools && 'openvpn or openssl not installed', timeout: 20_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardvpn-pkt-'));
    const sock = dgram.createSocket('udp4');
    let child: ChildProcess | undefined;
    let log = '';
    try {
      const { certFile: cert, keyFile: key } = selfSignedCert(dir);

      const queue: { msg: Buffer; port: number }[] = [];
      let wake: (() => void) | null = null;
      sock.on('message', (msg, rinfo) => {
        queue.push({ msg, port: rinfo.port });
        wake?.();
      });
      await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
      const port = sock.address().port;
      const next = async (ms: number): Promise<{ msg: Buffer; port: number }> => {
        const deadline = Date.now() + ms;
        while (queue.length === 0) {
          const left = deadline - Date.now();
          assert.ok(left > 0, `no packet from openvpn in time; its log:\n${log}`);
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, left);
            wake = () => {
              clearTimeout(t);
              resolve();
            };
          });
          wake = null;
        }
        return queue.shift()!;
      };

      child = spawn(
        'openvpn',
        [
          '--client',
          '--dev',
          'null',
          '--proto',
          'udp',
          '--remote',
          '127.0.0.1',
          String(port),
          '--nobind',
          '--verb',
          '4',
          '--connect-retry-max',
          '1',
          '--ca',
          cert,
          '--cert',
          cert,
          '--key',
          key,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
      child.stderr?.on('data', (d: Buffer) => (log += d.toString()));

      // 1. The client's first packet.
      const first = await next(8000);
      const reset = parseControlPacket(first.msg);
      assert.ok(reset.ok, `unparsable first packet ${first.msg.toString('hex')}`);
      const r = reset.value;
      assert.equal(r.kind, 'message');
      if (r.kind !== 'message') return;
      assert.equal(r.opcode, P_CONTROL_HARD_RESET_CLIENT_V2);
      assert.equal(r.keyId, 0);
      assert.equal(r.sessionId.length, 8);
      assert.ok(r.sessionId.some((b) => b !== 0));
      assert.deepEqual(r.acks, []);
      assert.equal(r.remoteSessionId, null);
      assert.equal(r.messageId, 0);
      assert.equal(r.payload.length, 0);
      assert.equal(first.msg.length, 14);
      const clientSid = Buffer.from(r.sessionId);

      // 2. Answer like a server: our reset, acking its message 0.
      const serverSid = randomBytes(8);
      const answer = buildControlPacket({
        kind: 'message',
        opcode: P_CONTROL_HARD_RESET_SERVER_V2,
        keyId: 0,
        sessionId: serverSid,
        acks: [0],
        remoteSessionId: clientSid,
        messageId: 0,
        payload: Buffer.alloc(0),
      });
      await new Promise<void>((resolve, reject) => sock.send(answer, first.port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));

      // 3. It must ACK our message 0 under our session id and send TLS as message 1.
      let acked = false;
      let hello: ControlPacket | undefined;
      while (hello === undefined) {
        const { msg } = await next(8000);
        const p = parseControlPacket(msg);
        assert.ok(p.ok, `unparsable packet ${msg.toString('hex')}`);
        const v = p.value;
        assert.deepEqual(v.sessionId, clientSid);
        if (v.acks.length > 0) {
          assert.deepEqual(v.remoteSessionId, serverSid);
          if (v.acks.includes(0)) acked = true;
        }
        if (v.kind === 'message' && v.opcode === P_CONTROL_V1) hello = v;
        else if (v.kind === 'message')
          assert.equal(v.opcode, P_CONTROL_HARD_RESET_CLIENT_V2); // a retransmission
        else assert.equal(v.opcode, P_ACK_V1);
      }
      assert.ok(acked, 'our reset was never acked');
      assert.equal(hello.kind, 'message');
      if (hello.kind !== 'message') return;
      assert.equal(hello.messageId, 1);
      assert.equal(hello.payload[0], 0x16, 'TLS handshake record'); // ContentType handshake
      assert.equal(hello.payload[5], 0x01, 'ClientHello');

      // 4. Unacknowledged, message 1 comes again after tls-timeout (2 s), same id and bytes.
      const helloAt = Date.now();
      for (;;) {
        const { msg } = await next(5000);
        const p = parseControlPacket(msg);
        assert.ok(p.ok);
        if (p.value.kind !== 'message' || p.value.opcode !== P_CONTROL_V1) continue;
        const waited = Date.now() - helloAt;
        assert.equal(p.value.messageId, 1);
        assert.deepEqual(p.value.payload, hello.payload);
        assert.ok(waited > 900 && waited < 3500, `retransmitted after ${waited} ms`);
        break;
      }
    } finally {
      if (child !== undefined && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child!.once('exit', () => resolve()));
        child.kill('SIGTERM');
        const t = setTimeout(() => child!.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(t);
      }
      sock.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
