// Cost of the operator services under load: `shardvpn load` holds N simulated clients (default
// 1,000) on a shardvpn server with metrics-listen and a management unix socket, once without and
// once with metrics-per-client. Measured while they are held: GET /metrics (curl in the server
// namespace, its own time_total) and `status 3` over management, median of BENCH_SCRAPES (20)
// each; then iperf3 through one real openvpn client's tunnel, BENCH_SECONDS (5) s per run,
// BENCH_RUNS (3) runs with a scraper hitting /metrics every second and 3 without, interleaved.
// `--clients N` (or BENCH_CLIENTS), BENCH_RATE (connects/s, 300), BENCH_THREADS (2).
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { SERVER_UNDERLAY, VpnLab, type LabProcess } from '../lab/vpn-lab';
import { median, printTable } from './lib';
import { canRunLab, envNumber, loadAgainst, writeProfile, type RunningServer } from './load-lab';

const PORT = 1401;
const METRICS_PORT = 9177;
const SERVER_TUNNEL = '10.160.0.1';
const METRICS_URL = `http://127.0.0.1:${METRICS_PORT}/metrics`;

function clientsWanted(): number {
  const at = process.argv.indexOf('--clients');
  const text = at >= 0 ? process.argv[at + 1] : process.env.BENCH_CLIENTS;
  const n = Number(text ?? '1000');
  if (!Number.isInteger(n) || n < 1) throw new Error(`--clients ${text}: give a whole number`);
  return n;
}

/** One management session on the unix socket: sends a command, times its reply up to `last`. */
class Management {
  private buffer = '';
  private waiter: (() => void) | null = null;
  private readonly socket: net.Socket;

  constructor(socketPath: string) {
    this.socket = net.connect(socketPath);
    this.socket.setEncoding('latin1');
    this.socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.waiter?.();
    });
    this.socket.on('error', () => undefined);
  }

  private wait(pattern: RegExp, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`management: no ${pattern} within ${timeoutMs} ms:\n${this.buffer.slice(-500)}`));
      }, timeoutMs);
      const check = (): void => {
        const match = pattern.exec(this.buffer);
        if (match === null) return;
        clearTimeout(timer);
        this.waiter = null;
        const text = this.buffer.slice(0, match.index + match[0].length);
        this.buffer = this.buffer.slice(match.index + match[0].length);
        resolve(text);
      };
      this.waiter = check;
      check();
    });
  }

  async ready(): Promise<void> {
    await this.wait(/>INFO:OpenVPN Management Interface[^\r]*\r\n/, 10_000);
  }

  /** Milliseconds from sending `command` to its last line, and the reply's line count. */
  async time(command: string, last: RegExp): Promise<{ ms: number; lines: number; text: string }> {
    this.buffer = '';
    const began = process.hrtime.bigint();
    this.socket.write(`${command}\n`);
    const text = await this.wait(last, 30_000);
    const ms = Number(process.hrtime.bigint() - began) / 1e6;
    return { ms, lines: text.split('\r\n').filter((l) => l !== '' && !l.startsWith('>')).length, text };
  }

  close(): void {
    this.socket.destroy();
  }
}

/** One GET /metrics from inside the server namespace: curl's own total time and body size. */
function scrape(lab: VpnLab): { ms: number; bytes: number } {
  const out = execFileSync(
    'ip',
    ['netns', 'exec', lab.server.name, 'curl', '-sf', '-o', '/dev/null', '-w', '%{time_total} %{size_download}', METRICS_URL],
    { encoding: 'utf8', timeout: 30_000 },
  );
  const [seconds, bytes] = out.trim().split(' ').map(Number);
  return { ms: (seconds as number) * 1000, bytes: bytes as number };
}

/**
 * A scraper hitting /metrics every second until stopped: one node process in the server
 * namespace (lighter than a curl per scrape), printing a line per completed scrape.
 */
async function startScraper(lab: VpnLab): Promise<{ stop(): Promise<number> }> {
  const script = `const http = require('node:http');
const get = () => http.get(${JSON.stringify(METRICS_URL)}, (r) => { r.resume(); r.on('end', () => console.log('scraped ' + r.statusCode)); }).on('error', (e) => console.log('error ' + e.message));
console.log('ready'); get(); setInterval(get, 1000);`;
  const scraper = lab.spawn(lab.server, process.execPath, ['-e', script], 'scraper');
  await scraper.waitFor(/ready/, 5000);
  return {
    async stop() {
      await scraper.stop('SIGTERM', 2000);
      return [...scraper.log().matchAll(/^scraped 200$/gm)].length;
    },
  };
}

async function iperf(lab: VpnLab, seconds: number): Promise<number> {
  const receiver = lab.spawn(lab.server, 'iperf3', ['-s', '-1', '--forceflush', '-B', SERVER_TUNNEL, '-p', '5301'], 'iperf3 server');
  try {
    await receiver.waitFor(/Server listening/, 5000);
    const sender = lab.spawn(lab.clients[1]!, 'iperf3', ['-c', SERVER_TUNNEL, '-p', '5301', '-t', String(seconds), '-J'], 'iperf3 client');
    const exited = sender.waitExit();
    await sender.waitFor(/"end"[^]*\}\s*$/, (seconds + 20) * 1000);
    await exited;
    const report = JSON.parse(sender.log()) as { end: { sum_received: { bits_per_second: number } } };
    return report.end.sum_received.bits_per_second / 1e6;
  } finally {
    await receiver.stop('SIGTERM', 2000);
  }
}

interface PassResult {
  perClient: boolean;
  connected: number;
  /** nclients from load-stats when the measuring began (the real client included). */
  serverClients: number;
  metricsMs: number[];
  metricsBytes: number;
  statusMs: number[];
  statusLines: number;
  plainMbits: number[];
  scrapedMbits: number[];
  scrapesDuringIperf: number;
}

async function pass(lab: VpnLab, perClient: boolean, clients: number): Promise<PassResult> {
  const socketPath = path.join(lab.dir, `ops-bench-${perClient ? 'pc' : 'plain'}.sock`);
  const proc = await lab.startShardvpn(
    `port ${PORT}\nproto udp4\ndev tun\nkeepalive 10 60\ntls-crypt ${lab.keys.tlsCrypt}\n${lab.serverTlsLines()}topology subnet\nserver 10.160.0.0 255.255.0.0\n` +
      `duplicate-cn\nmax-clients 20000\nmanagement ${socketPath} unix\nmetrics-listen 127.0.0.1 ${METRICS_PORT}\n${perClient ? 'metrics-per-client\n' : ''}verb 3\n`,
    `ops-bench-${perClient ? 'pc' : 'plain'}.conf`,
  );
  const server: RunningServer = { proc, pid: proc.child.pid!, label: 'shardvpn' };
  const scrapes = envNumber('BENCH_SCRAPES', 20);
  const runs = envNumber('BENCH_RUNS', 3);
  const seconds = envNumber('BENCH_SECONDS', 5);
  const result: PassResult = {
    perClient,
    connected: 0,
    serverClients: 0,
    metricsMs: [],
    metricsBytes: 0,
    statusMs: [],
    statusLines: 0,
    plainMbits: [],
    scrapedMbits: [],
    scrapesDuringIperf: 0,
  };
  let real: LabProcess | null = null;
  const management = new Management(socketPath);
  try {
    await management.ready();
    const outcome = await loadAgainst(
      lab,
      server,
      writeProfile(lab, PORT),
      { clients, rate: envNumber('BENCH_RATE', 300), threads: envNumber('BENCH_THREADS', 2), capS: 90, settleS: 2 },
      async () => {
        // One real client among the simulated ones, for the tunnel throughput.
        const profile = `client\ndev tun\nproto udp4\nremote ${SERVER_UNDERLAY} ${PORT}\nnobind\n${lab.clientTlsLines()}tls-crypt ${lab.keys.tlsCrypt}\nverb 3\n`;
        real = await lab.startOpenvpnClient(1, profile);
        const stats = await management.time('load-stats', /SUCCESS: nclients=\d+[^\r]*\r\n/);
        result.serverClients = Number(/nclients=(\d+)/.exec(stats.text)?.[1]);
        for (let i = 0; i < scrapes; i++) {
          const s = scrape(lab);
          result.metricsMs.push(s.ms);
          result.metricsBytes = s.bytes;
          const st = await management.time('status 3', /\r\nEND\r\n/);
          result.statusMs.push(st.ms);
          result.statusLines = st.lines;
        }
        for (let run = 0; run < runs; run++) {
          result.plainMbits.push(await iperf(lab, seconds));
          const scraper = await startScraper(lab);
          try {
            result.scrapedMbits.push(await iperf(lab, seconds));
          } finally {
            result.scrapesDuringIperf += await scraper.stop();
          }
          process.stderr.write(
            `per-client ${perClient ? 'on' : 'off'} run ${run + 1}: ${result.plainMbits.at(-1)!.toFixed(0)} Mbit/s plain, ${result.scrapedMbits.at(-1)!.toFixed(0)} Mbit/s scraped\n`,
          );
        }
      },
    );
    result.connected = outcome.connectedAtPeak;
    if (outcome.capped)
      console.log(`per-client ${perClient ? 'on' : 'off'}: connect phase cut at 90 s (${outcome.connectedAtPeak}/${clients} connected)`);
    return result;
  } finally {
    management.close();
    if (real !== null) await (real as LabProcess).stop('SIGTERM', 5000);
    await proc.stop('SIGTERM', 10_000);
  }
}

async function main(): Promise<void> {
  if (!canRunLab()) {
    console.log('ops: skipped (needs root and /dev/net/tun for the network namespaces)');
    return;
  }
  const clients = clientsWanted();
  const began = Date.now();
  const lab = VpnLab.create(2);
  const results: PassResult[] = [];
  try {
    for (const perClient of [false, true]) results.push(await pass(lab, perClient, clients));
  } finally {
    await lab.cleanup();
  }
  const label = (r: PassResult): string => `metrics-per-client ${r.perClient ? 'on' : 'off'}`;
  const range = (v: number[]): string => `${Math.min(...v).toFixed(1)}..${Math.max(...v).toFixed(1)}`;
  printTable(
    `Operator queries with ${clients} simulated clients held (+1 real), median of ${results[0]?.metricsMs.length ?? 0}, ${os.availableParallelism()} cores shared with the load generator`,
    [
      'server',
      'load connected',
      'server nclients',
      'GET /metrics ms',
      'min..max',
      '/metrics KiB',
      'status 3 ms',
      'min..max',
      'status 3 lines',
    ],
    results.map((r) => [
      label(r),
      String(r.connected),
      String(r.serverClients),
      median(r.metricsMs).toFixed(1),
      range(r.metricsMs),
      (r.metricsBytes / 1024).toFixed(0),
      median(r.statusMs).toFixed(1),
      range(r.statusMs),
      String(r.statusLines),
    ]),
  );
  printTable(
    `iperf3 TCP through one real openvpn client's tunnel, ${envNumber('BENCH_SECONDS', 5)} s runs, median of ${results[0]?.plainMbits.length ?? 0} (scraped: GET /metrics every second)`,
    ['server', 'not scraped Mbit/s', 'scraped Mbit/s', 'scraped / not', 'scrapes done', 'runs (not / scraped)'],
    results.map((r) => {
      const plain = median(r.plainMbits);
      const scraped = median(r.scrapedMbits);
      return [
        label(r),
        plain.toFixed(0),
        scraped.toFixed(0),
        `${(scraped / plain).toFixed(3)}x`,
        String(r.scrapesDuringIperf),
        `${r.plainMbits.map((v) => v.toFixed(0)).join(',')} / ${r.scrapedMbits.map((v) => v.toFixed(0)).join(',')}`,
      ];
    }),
  );
  console.log(`\nops bench took ${((Date.now() - began) / 1000).toFixed(0)} s`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
