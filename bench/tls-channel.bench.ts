// The transport under node:tls for a control channel's TLS session, measured on its own: CPU per
// TLS handshake (TLS 1.3, ECDSA P-256 or RSA-2048, the client's certificate requested, then one
// 300-byte message each way, as the key method 2 exchange) for three ways of carrying the
// ciphertext, in one process, alternating, medians of BENCH_RUNS (default 5):
//   duplex:     TlsChannel: a TLSSocket over a stream.Duplex (push() in, _write() out), which
//               node wraps in a JSStreamSocket
//   transport:  a minimal stream object for JSStreamSocket's writes, a corked flight handed on
//               as one buffer, ciphertext in straight to TLSWrap's receive() (node's internal
//               entry for bytes a socket had buffered): no Readable/Writable machinery
//   unix pair:  a TLSSocket over a connected AF_UNIX stream socket (a native handle, no
//               JSStreamSocket); the session reads and writes the other end (pairs made
//               before the clock starts, as socketpair() would)
// Both ends of each handshake use the variant, so the CPU is of two TLS endpoints.
// BENCH_HANDSHAKES (default 400 per run), BENCH_INFLIGHT (default 50), BENCH_KEYS (ecdsa,rsa),
// BENCH_TRANSPORT (one of them only, e.g. under `perf stat -e instructions`, which a loaded
// machine does not disturb as it does CPU time).
import { EventEmitter, once } from 'node:events';
import net from 'node:net';
import { Duplex } from 'node:stream';
import * as tls from 'node:tls';

import { makeTestPki, type PkiKeyType } from '../lab/test-pki';
import { TlsChannel, createControlSecureContext } from '../src/shared/session/tls-channel';
import { printTable } from './lib';
import { envNumber } from './load-lab';

interface Endpoint {
  feed(data: Buffer): void;
  write(data: Buffer): void;
  destroy(): void;
}
interface Callbacks {
  onCiphertext(data: Buffer): void;
  onSecure(): void;
  onPlaintext(data: Buffer): void;
  onError(err: Error): void;
}
type Factory = (role: 'client' | 'server', context: tls.SecureContext, cb: Callbacks) => Endpoint;

function tlsOver(role: 'client' | 'server', stream: Duplex, context: tls.SecureContext, cb: Callbacks): tls.TLSSocket {
  const socket =
    role === 'server'
      ? new tls.TLSSocket(stream, { isServer: true, secureContext: context, requestCert: true, rejectUnauthorized: false })
      : tls.connect({ socket: stream, secureContext: context, rejectUnauthorized: true, checkServerIdentity: () => undefined });
  socket.once(role === 'server' ? 'secure' : 'secureConnect', () => cb.onSecure());
  socket.on('data', (d: Buffer) => cb.onPlaintext(d));
  socket.on('error', (e: Error) => cb.onError(e));
  return socket;
}

const duplexEndpoint: Factory = (role, context, cb) => {
  const channel = new TlsChannel(role, context, {
    onCiphertext: (d) => cb.onCiphertext(d),
    onSecure: () => cb.onSecure(),
    onPlaintext: (d) => cb.onPlaintext(d),
    onError: (e) => cb.onError(e),
  });
  return { feed: (d) => channel.feed(d), write: (d) => channel.write(d), destroy: () => channel.destroy() };
};

/** The part of a stream JSStreamSocket uses; a corked run of writes leaves as one buffer. */
class LightTransport extends EventEmitter {
  readonly readable = true;
  readonly writable = true;
  readonly readableObjectMode = false;
  readonly allowHalfOpen = false;
  private corks = 0;
  private readonly corked: Buffer[] = [];
  private readonly written: ((err?: Error | null) => void)[] = [];

  constructor(private readonly out: (data: Buffer) => void) {
    super();
  }
  pause(): this {
    return this;
  }
  resume(): this {
    return this;
  }
  cork(): void {
    this.corks++;
  }
  uncork(): void {
    if (this.corks === 0 || --this.corks > 0) return;
    const chunks = this.corked.splice(0);
    const done = this.written.splice(0);
    if (chunks.length > 0) this.out(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    for (const cb of done) cb();
  }
  write(chunk: Buffer, cb?: (err?: Error | null) => void): boolean {
    if (this.corks > 0) {
      this.corked.push(chunk);
      if (cb !== undefined) this.written.push(cb);
      return true;
    }
    this.out(chunk);
    cb?.();
    return true;
  }
  end(cb?: () => void): this {
    cb?.();
    return this;
  }
  destroy(): this {
    return this;
  }
}

const transportEndpoint: Factory = (role, context, cb) => {
  const transport = new LightTransport((d) => cb.onCiphertext(d));
  const socket = tlsOver(role, transport as unknown as Duplex, context, cb);
  const handle = (): { receive(d: Uint8Array): void } | null =>
    (socket as unknown as { _handle: { receive(d: Uint8Array): void } | null })._handle;
  return {
    feed: (d) => handle()?.receive(d),
    write: (d) => socket.write(d),
    destroy: () => (socket.destroy(), transport.destroy()),
  };
};

/** Connected AF_UNIX pairs, made before the clock starts. */
async function unixPairs(count: number): Promise<{ pairs: [net.Socket, net.Socket][]; close: () => void }> {
  const server = net.createServer();
  server.listen(`\0shardvpn-tls-channel-bench-${process.pid}`);
  await once(server, 'listening');
  const accepted: net.Socket[] = [];
  server.on('connection', (s) => accepted.push(s));
  const dialed: net.Socket[] = [];
  for (let i = 0; i < count; i++) {
    const s = net.connect(`\0shardvpn-tls-channel-bench-${process.pid}`);
    await once(s, 'connect');
    dialed.push(s);
  }
  while (accepted.length < count) await new Promise((r) => setImmediate(r));
  return { pairs: dialed.map((d, i) => [d, accepted[i]!]), close: () => server.close() };
}

function unixEndpoint(pairs: [net.Socket, net.Socket][]): Factory {
  return (role, context, cb) => {
    const [tlsSide, ourSide] = pairs.pop()!;
    const socket = tlsOver(role, tlsSide as unknown as Duplex, context, cb);
    ourSide.on('data', (d: Buffer) => cb.onCiphertext(d));
    ourSide.on('error', () => undefined);
    return {
      feed: (d) => ourSide.write(d),
      write: (d) => socket.write(d),
      destroy: () => (socket.destroy(), ourSide.destroy()),
    };
  };
}

const MESSAGE = Buffer.alloc(300, 0x41);

/** `total` handshakes, `inflight` at a time; resolves with CPU microseconds per handshake. */
function run(factory: Factory, server: tls.SecureContext, client: tls.SecureContext, total: number, inflight: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let started = 0;
    let finished = 0;
    const cpu = process.cpuUsage();
    const one = (): void => {
      started++;
      // Ciphertext crosses on the next turn, as a datagram would.
      const s: Endpoint = factory('server', server, {
        onCiphertext: (d) => setImmediate(() => c.feed(d)),
        onSecure: () => undefined,
        onPlaintext: () => s.write(MESSAGE),
        onError: reject,
      });
      const c: Endpoint = factory('client', client, {
        onCiphertext: (d) => setImmediate(() => s.feed(d)),
        onSecure: () => c.write(MESSAGE),
        onPlaintext: () => {
          s.destroy();
          c.destroy();
          finished++;
          if (finished === total) {
            const used = process.cpuUsage(cpu);
            resolve((used.user + used.system) / total);
          } else if (started < total) one();
        },
        onError: reject,
      });
    };
    for (let i = 0; i < Math.min(inflight, total); i++) one();
  });
}

const median = (v: number[]): number => [...v].sort((a, b) => a - b)[v.length >> 1]!;

async function main(): Promise<void> {
  const runs = envNumber('BENCH_RUNS', 5);
  const total = envNumber('BENCH_HANDSHAKES', 400);
  const inflight = envNumber('BENCH_INFLIGHT', 50);
  const keys = (process.env.BENCH_KEYS ?? 'ecdsa,rsa').split(',').map((k) => k.trim()) as PkiKeyType[];
  for (const keyType of keys) {
    const pki = makeTestPki(keyType);
    try {
      const options = { ca: pki.caCert, minVersion: 'TLSv1.3' as const };
      const server = createControlSecureContext({ ...options, cert: pki.serverCert, key: pki.serverKey });
      const client = createControlSecureContext({ ...options, cert: pki.clientCert, key: pki.clientKey });
      const all = ['duplex', 'transport', 'unix pair'] as const;
      const only = process.env.BENCH_TRANSPORT;
      if (only !== undefined && !all.some((n) => n === only))
        throw new Error(`BENCH_TRANSPORT=${only}: give duplex, transport or unix pair`);
      const names = all.filter((n) => only === undefined || n === only);
      const cpu: Record<(typeof names)[number], number[]> = { duplex: [], transport: [], 'unix pair': [] };
      // One warm-up run each (JIT), then the measured runs, alternating.
      for (let r = -1; r < runs; r++) {
        for (const name of names) {
          let factory: Factory;
          let close = (): void => undefined;
          if (name === 'unix pair') {
            const u = await unixPairs(2 * total);
            factory = unixEndpoint(u.pairs);
            close = u.close;
          } else factory = name === 'duplex' ? duplexEndpoint : transportEndpoint;
          const us = await run(factory, server, client, total, inflight);
          close();
          if (r >= 0) cpu[name].push(us);
        }
      }
      const base = median(cpu[names[0]!]);
      printTable(
        `TLS transport, ${keyType === 'rsa' ? 'RSA-2048' : 'ECDSA P-256'}, TLS 1.3: CPU per handshake (both ends), ${total} handshakes x ${runs} runs, ${inflight} in flight`,
        ['transport', 'CPU us/handshake (median)', 'runs', `vs ${names[0]}`],
        names.map((n) => [
          n,
          median(cpu[n]).toFixed(0),
          cpu[n].map((v) => v.toFixed(0)).join(' '),
          `${(median(cpu[n]) / base).toFixed(2)}x`,
        ]),
      );
    } finally {
      pki.cleanup();
    }
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
