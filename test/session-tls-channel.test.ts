// The control channel's TLS context as OpenVPN 2.6 uses TLS: a full handshake every time, no
// session resumption. node:tls would send two TLS 1.3 NewSessionTickets after every handshake
// (one more control packet and its ACK per client); disableTlsResumption turns them off.
import assert from 'node:assert/strict';
import type { SecureContext } from 'node:tls';
import { after, before, test } from 'node:test';

import { makeTestPki, type TestPki } from '../lab/test-pki';
import { disableTlsResumption } from '../src/shared/native';
import { TlsChannel, createControlSecureContext } from '../src/shared/session/tls-channel';

let pki: TestPki;
before(() => {
  pki = makeTestPki('ecdsa');
});
after(() => pki.cleanup());

interface Trace {
  /** Ciphertext chunk sizes the server sent, in order, with the events between them. */
  events: string[];
  /** The server's first flight (ServerHello first). */
  serverHello?: Buffer;
}

/**
 * One handshake in memory, then one 300-byte message from the client, answered by the server
 * with 300 bytes once it arrives; resolves when the answer has reached the client.
 */
function exchange(maxVersion: 'TLSv1.2' | 'TLSv1.3'): Promise<Trace> {
  const material = { ca: pki.caCert, minVersion: 'TLSv1.2' as const };
  const server = createControlSecureContext({ ...material, cert: pki.serverCert, key: pki.serverKey });
  // The client offers no more than maxVersion (tls-version-max), so the server negotiates it.
  const client = createControlSecureContext({ ...material, maxVersion, cert: pki.clientCert, key: pki.clientKey });
  const trace: Trace = { events: [] };
  return new Promise((resolve, reject) => {
    const s: TlsChannel = new TlsChannel('server', server, {
      onCiphertext: (d) => {
        trace.serverHello ??= Buffer.from(d);
        trace.events.push(`server sent ${d.length}`);
        setImmediate(() => c.feed(d));
      },
      onSecure: () => trace.events.push('server secure'),
      onPlaintext: (d) => {
        trace.events.push(`server read ${d.length}`);
        s.write(Buffer.alloc(300, 2));
      },
      onError: reject,
    });
    const c: TlsChannel = new TlsChannel('client', client, {
      onCiphertext: (d) => setImmediate(() => s.feed(d)),
      onSecure: (socket) => {
        trace.events.push(`client secure ${socket.getProtocol() ?? '?'}`);
        c.write(Buffer.alloc(300, 1));
      },
      onPlaintext: (d) => {
        trace.events.push(`client read ${d.length}`);
        s.destroy();
        c.destroy();
        resolve(trace);
      },
      onError: reject,
    });
  });
}

/** What the server sent after its handshake was complete and before it had read the message. */
function sentWhileIdle(trace: Trace): string[] {
  const from = trace.events.indexOf('server secure');
  const to = trace.events.findIndex((e) => e.startsWith('server read'));
  assert.ok(from >= 0 && to > from, `handshake, then the message: ${trace.events.join(', ')}`);
  return trace.events.slice(from + 1, to).filter((e) => e.startsWith('server sent'));
}

test('TLS 1.3: the server sends no session tickets after the handshake, only its answer', async () => {
  const trace = await exchange('TLSv1.3');
  assert.ok(trace.events.includes('client secure TLSv1.3'), trace.events.join(', '));
  assert.deepEqual(sentWhileIdle(trace), []);
  // Its answer is one record: 300 bytes, a content-type byte and the AEAD tag in a 5-byte header.
  const answer = trace.events.slice(trace.events.findIndex((e) => e.startsWith('server read')) + 1);
  assert.deepEqual(answer, ['server sent 322', 'client read 300']);
});

/**
 * The session id a ServerHello gives (TLS 1.2: what a client would resume with): a handshake
 * record (5-byte header), ServerHello (type 2, 3-byte length), version, 32-byte random, then the
 * id's length byte.
 */
function serverHelloSessionIdLength(flight: Buffer): number {
  assert.equal(flight[0], 22, 'a handshake record');
  assert.equal(flight[5], 2, 'ServerHello');
  return flight[5 + 4 + 2 + 32]!;
}

test('TLS 1.2 (tls-version-max 1.2 at the client): no session id to resume with, the exchange works', async () => {
  const trace = await exchange('TLSv1.2');
  assert.ok(trace.events.includes('client secure TLSv1.2'), trace.events.join(', '));
  // With node's session cache the ServerHello carried a 32-byte id.
  assert.equal(serverHelloSessionIdLength(trace.serverHello!), 0);
  assert.equal(trace.events.at(-1), 'client read 300');
});

test('disableTlsResumption refuses what is not a node:tls context, without touching it', () => {
  assert.equal(disableTlsResumption({} as SecureContext), false);
  assert.equal(disableTlsResumption({ context: { _external: 5 } } as unknown as SecureContext), false);
  assert.equal(disableTlsResumption({ context: null } as unknown as SecureContext), false);
});
