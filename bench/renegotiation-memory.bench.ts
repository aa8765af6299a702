// Memory per renegotiation of the control channel, in one process: our client ControlSession and
// our server ControlSession wired in memory, renegotiating RENEG_COUNT times (default 3,000), RSS
// sampled after a forced GC. Two child processes in the same run: "ours" (peer-verify.ts as it is)
// and "node-x509" (the peer certificate taken with node's TLSSocket.getPeerX509Certificate(), as
// before: in Node 20 each call keeps a reference to the certificate that is never released).
// Reports RSS growth per renegotiation (both sides together) after a warm-up, medians of
// RENEG_RUNS runs (default 3). The young generation is capped (--max-semi-space-size=1), as the
// server's shards cap theirs, so that V8 growing it is not counted.
import { execFileSync } from 'node:child_process';
import type { TLSSocket } from 'node:tls';
import * as tls from 'node:tls';
import { ControlSession } from '../src/shared/session/control-session';
import type { SessionEvent } from '../src/shared/session/types';
import { buildPeerInfo } from '../src/shared/protocol/key-method2';
import { makeTestPki } from '../lab/test-pki';
import { median, printTable } from './lib';

const COUNT = Number(process.env.RENEG_COUNT ?? 3000);
const RUNS = Number(process.env.RENEG_RUNS ?? 3);
const WARMUP = 500;
const SAMPLE_EVERY = 250;
const CLIENT_OPTIONS =
  'V4,dev-type tun,link-mtu 1559,tun-mtu 1500,proto UDPv4,cipher AES-256-GCM,auth [null-digest],keysize 256,key-method 2,tls-client';
const SERVER_OPTIONS = CLIENT_OPTIONS.replace('tls-client', 'tls-server');
const PUSH = 'PUSH_REPLY,ifconfig 10.8.0.2 255.255.255.0,peer-id 0,cipher AES-256-GCM,key-derivation tls-ekm';

type Mode = 'ours' | 'node-x509';

/** Makes getPeerCertificate(false) answer from getPeerX509Certificate(), as the old path did. */
function useNodeX509(): void {
  const original = tls.TLSSocket.prototype.getPeerCertificate;
  const patched = function (this: TLSSocket, detailed?: boolean): tls.PeerCertificate | tls.DetailedPeerCertificate {
    if (detailed === true) return original.call(this, true);
    const x = this.getPeerX509Certificate();
    return (x === undefined ? {} : { raw: x.raw }) as tls.PeerCertificate;
  };
  tls.TLSSocket.prototype.getPeerCertificate = patched as typeof original;
}

function gc(): void {
  (globalThis as unknown as { gc: () => void }).gc();
}

/** Child: renegotiates COUNT times, prints RSS growth per renegotiation in bytes after WARMUP. */
async function child(mode: Mode): Promise<void> {
  if (mode === 'node-x509') useNodeX509();
  const pki = makeTestPki();
  let now = 1_000_000;
  const clock = (): number => now;
  const toClient: Buffer[] = [];
  const toServer: Buffer[] = [];
  let serverKeys = 0;
  let clientKeys = 0;
  const server: ControlSession = new ControlSession(
    {
      role: 'server',
      tls: { ca: pki.caCert, cert: pki.serverCert, key: pki.serverKey },
      wrap: { mode: 'none' },
      remoteCertTls: 'client',
      keyMethod2: { options: SERVER_OPTIONS, peerInfo: null },
    },
    {
      sendPacket: (w) => toClient.push(Buffer.from(w)),
      onEvent: (e: SessionEvent) => {
        if (e.type === 'keys') serverKeys++;
        if (e.type === 'control-message' && e.text === 'PUSH_REQUEST') server.sendControlMessage(PUSH);
      },
      now: clock,
    },
  );
  const client: ControlSession = new ControlSession(
    {
      role: 'client',
      tls: { ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey },
      wrap: { mode: 'none' },
      remoteCertTls: 'server',
      keyMethod2: {
        options: CLIENT_OPTIONS,
        peerInfo: buildPeerInfo({ version: '2.6.14', platform: 'linux', ncp: 2, ciphers: ['AES-256-GCM'], proto: 0x0a }),
      },
    },
    {
      sendPacket: (w) => toServer.push(Buffer.from(w)),
      onEvent: (e: SessionEvent) => {
        if (e.type === 'keys') clientKeys++;
        if (e.type === 'key-method-2' && clientKeys === 0) client.sendControlMessage('PUSH_REQUEST');
        if (e.type === 'control-message' && e.text.startsWith('PUSH_REPLY')) client.setKeyDerivation('tls-ekm');
      },
      now: clock,
    },
  );
  const pump = async (done: () => boolean): Promise<void> => {
    for (let i = 0; i < 10_000 && !done(); i++) {
      for (const m of toServer.splice(0)) server.receivePacket(m);
      for (const m of toClient.splice(0)) client.receivePacket(m);
      now += 1;
      client.tick();
      server.tick();
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (!done()) throw new Error('renegotiation did not complete');
  };
  client.start();
  await pump(() => serverKeys >= 1 && clientKeys >= 1);
  const xs: number[] = [];
  const ys: number[] = [];
  for (let i = 1; i <= COUNT; i++) {
    const want = serverKeys + 1;
    now += 61_000;
    client.renegotiate();
    await pump(() => serverKeys >= want && clientKeys >= want);
    if (i >= WARMUP && i % SAMPLE_EVERY === 0) {
      gc();
      gc();
      xs.push(i);
      ys.push(process.memoryUsage().rss);
    }
  }
  client.close();
  server.close();
  pki.cleanup();
  // Least-squares slope: RSS moves up and down by megabytes between samples (allocator), the
  // trend over thousands of renegotiations is what a leak shows.
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let num = 0;
  let den = 0;
  for (let k = 0; k < xs.length; k++) {
    num += (xs[k]! - mx) * (ys[k]! - my);
    den += (xs[k]! - mx) ** 2;
  }
  process.stdout.write(`${JSON.stringify({ slope: num / den, rssEnd: ys[ys.length - 1] })}\n`);
}

function runChild(mode: Mode): { slope: number; rssEnd: number } {
  const out = execFileSync(process.execPath, ['--expose-gc', '--max-semi-space-size=1', __filename, 'child', mode], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  return JSON.parse(out.trim().split('\n').pop()!) as { slope: number; rssEnd: number };
}

function main(): void {
  const results: Record<Mode, { slope: number; rssEnd: number }[]> = { ours: [], 'node-x509': [] };
  for (let run = 0; run < RUNS; run++) {
    for (const mode of (run % 2 === 0 ? ['node-x509', 'ours'] : ['ours', 'node-x509']) as Mode[]) {
      const r = runChild(mode);
      results[mode].push(r);
      process.stderr.write(
        `run ${run + 1} ${mode}: ${(r.slope / 1024).toFixed(2)} KiB/renegotiation, RSS at end ${(r.rssEnd / 2 ** 20).toFixed(1)} MiB\n`,
      );
    }
  }
  const slope = (m: Mode): number => median(results[m].map((r) => r.slope)) / 1024;
  printTable(
    `RSS growth per renegotiation, client and server session in one process, ${COUNT} renegotiations (slope after ${WARMUP}), median of ${RUNS}`,
    ['peer certificate taken with', 'KiB / renegotiation', 'RSS at end MiB', 'vs node-x509'],
    (['node-x509', 'ours'] as Mode[]).map((m) => [
      m === 'ours' ? 'getPeerCertificate(false).raw (shardvpn)' : 'getPeerX509Certificate() (node)',
      slope(m).toFixed(2),
      (median(results[m].map((r) => r.rssEnd)) / 2 ** 20).toFixed(1),
      `${(slope(m) / slope('node-x509')).toFixed(2)}x`,
    ]),
  );
}

if (process.argv[2] === 'child') {
  child(process.argv[3] as Mode).then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
      process.exit(1);
    },
  );
} else {
  main();
}
