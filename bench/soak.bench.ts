// Soak: SOAK_CLIENTS (default 1,000) simulated clients (`shardvpn load`, each answering the
// pushed keepalive and sending SOAK_PPS in-tunnel echo requests a second) held for SOAK_S
// seconds (default 600) against a server with `reneg-sec 60`: shardvpn (workers 2), then stock
// openvpn 2.6 with the same settings. Every 10 s the server's RSS and CPU are sampled; reported:
// the table, the ratio of the final RSS to the RSS one minute in (target: within 5%), how many
// renegotiations happened (shardvpn: /metrics; openvpn: its "soft reset" log lines) and how many
// clients dropped (target: none). For shardvpn each sample also reads the V8 heaps from /metrics
// (the main thread's and every shard's, committed and used), so RSS splits into JavaScript heap and the
// rest (OpenSSL, the C heap, code): a growth shows which side it is on. SOAK_CLIENTS, SOAK_S, SOAK_PPS and SOAK_SERVERS change the run;
// BENCH_BEFORE_BIN (another checkout's bin/shardvpn.js) soaks that build first, the same way.
import { VpnLab } from '../lab/vpn-lab';
import { printTable } from './lib';
import { beforeBin, cpuSeconds, envNumber, loadAgainst, rssKiB, serverNames, sleep, writeProfile, type RunningServer } from './load-lab';
import { scrapeMetrics, total } from './server-probes';

const CLIENTS = Math.round(envNumber('SOAK_CLIENTS', 1000));
const SOAK_S = envNumber('SOAK_S', 600);
const PPS = envNumber('SOAK_PPS', 0.5);
/** BENCH_BEFORE_BIN: another checkout's bin/shardvpn.js, soaked first as `shardvpn before`. */
const BEFORE_BIN = beforeBin();
/** SOAK_SERVERS=shardvpn skips the openvpn run (e.g. for a longer soak of shardvpn alone). */
const SERVERS = serverNames<Kind>(process.env.SOAK_SERVERS ?? 'shardvpn,openvpn');
const SAMPLE_S = 10;
const RENEG_S = 60;
const PORT = 1194;
const POOL = '10.160.0.0 255.255.0.0';
const METRICS_PORT = 9192;
const METRICS_URL = `http://127.0.0.1:${METRICS_PORT}/metrics`;

type Kind = 'shardvpn' | 'shardvpn-before' | 'openvpn';

const LABELS: Readonly<Record<Kind, string>> = {
  shardvpn: 'shardvpn workers 2',
  'shardvpn-before': 'shardvpn before workers 2',
  openvpn: 'openvpn 2.6',
};

interface Sample {
  t: number;
  rssKiB: number;
  cpuS: number;
  renegotiations: number;
  /** Committed V8 heap of every thread (shardvpn only; NaN for openvpn). */
  v8HeapKiB: number;
  /** The live part of it (used by objects, as of each thread's last per-second sample). */
  v8UsedKiB: number;
}

interface SoakResult {
  kind: Kind;
  samples: Sample[];
  disconnected: number;
  failed: number;
  connected: number;
}

async function startServer(lab: VpnLab, kind: Kind): Promise<RunningServer> {
  if (kind !== 'openvpn') {
    const proc = await lab.startShardvpn(
      `port ${PORT}\nproto udp4\ndev tun\nkeepalive 10 60\nreneg-sec ${RENEG_S}\ntls-crypt ${lab.keys.tlsCrypt}\n${lab.serverTlsLines()}` +
        `topology subnet\nserver ${POOL}\nworkers 2\nduplicate-cn\nmax-clients 20000\nmetrics-listen 127.0.0.1 ${METRICS_PORT}\nverb 3\n`,
      'soak-server.conf',
      [],
      {},
      [],
      ...(kind === 'shardvpn-before' ? [BEFORE_BIN] : []),
    );
    return { proc, pid: proc.child.pid!, label: LABELS[kind] };
  }
  const proc = lab.spawn(
    lab.server,
    'openvpn',
    lab.stockServerArgs(POOL, PORT, [
      '--reneg-sec',
      String(RENEG_S),
      '--max-clients',
      '20000',
      '--connect-freq-initial',
      '100000',
      '10',
      '--verb',
      '3',
    ]),
    'openvpn server',
  );
  await proc.waitFor(/Initialization Sequence Completed/);
  return { proc, pid: proc.child.pid!, label: LABELS.openvpn };
}

/**
 * Renegotiations so far (shardvpn counts them; openvpn logs "TLS: soft reset" for each) and the
 * committed V8 heaps of shardvpn's threads (the main thread's and each shard's).
 */
function probe(lab: VpnLab, kind: Kind, server: RunningServer): { renegotiations: number; v8HeapKiB: number; v8UsedKiB: number } {
  if (kind === 'openvpn') {
    return { renegotiations: [...server.proc.log().matchAll(/TLS: soft reset sec=/g)].length, v8HeapKiB: NaN, v8UsedKiB: NaN };
  }
  const metrics = scrapeMetrics(lab.server, METRICS_URL);
  const heapBytes = total(metrics, 'nodejs_heap_size_total_bytes') + total(metrics, 'shardvpn_shard_heap_size_total_bytes');
  const usedBytes = total(metrics, 'nodejs_heap_size_used_bytes') + total(metrics, 'shardvpn_shard_heap_size_used_bytes');
  return { renegotiations: total(metrics, 'shardvpn_renegotiations_total'), v8HeapKiB: heapBytes / 1024, v8UsedKiB: usedBytes / 1024 };
}

async function soak(lab: VpnLab, kind: Kind): Promise<SoakResult> {
  const server = await startServer(lab, kind);
  try {
    const profile = writeProfile(lab, PORT);
    const samples: Sample[] = [];
    const outcome = await loadAgainst(
      lab,
      server,
      profile,
      { clients: CLIENTS, rate: 200, threads: 2, capS: 120, settleS: 0, holdS: SOAK_S, extraArgs: ['--pps', String(PPS)] },
      async () => {
        const start = Date.now();
        for (;;) {
          const t = (Date.now() - start) / 1000;
          const sample = { t, rssKiB: rssKiB(server.pid), cpuS: cpuSeconds(server.pid), ...probe(lab, kind, server) };
          samples.push(sample);
          process.stderr.write(
            `${server.label} t=${t.toFixed(0)} s RSS ${mib(sample.rssKiB)} MiB (V8 heaps ${mib(sample.v8HeapKiB)}, used ${mib(sample.v8UsedKiB)}), ${sample.renegotiations} renegotiations\n`,
          );
          if (t >= SOAK_S) break;
          await sleep(Math.min(SAMPLE_S, SOAK_S - t) * 1000);
        }
      },
    );
    return {
      kind,
      samples,
      disconnected: outcome.report.disconnected,
      failed: outcome.report.failed,
      connected: outcome.report.connected,
    };
  } finally {
    await server.proc.stop('SIGTERM', 10_000);
  }
}

const mib = (kib: number): string => (Number.isFinite(kib) ? (kib / 1024).toFixed(1) : '-');

/** The sample nearest `t` seconds. */
function at(samples: readonly Sample[], t: number): Sample {
  return samples.reduce((best, s) => (Math.abs(s.t - t) < Math.abs(best.t - t) ? s : best));
}

async function main(): Promise<void> {
  const lab = VpnLab.create(1);
  const results: SoakResult[] = [];
  try {
    for (const kind of SERVERS) results.push(await soak(lab, kind));
  } finally {
    await lab.cleanup();
  }
  for (const r of results) {
    const rows = r.samples.map((s, i) => {
      const prev = r.samples[i - 1];
      const cpuPct = prev === undefined ? NaN : (100 * (s.cpuS - prev.cpuS)) / (s.t - prev.t);
      return [
        s.t.toFixed(0),
        mib(s.rssKiB),
        mib(s.v8HeapKiB),
        mib(s.v8UsedKiB),
        mib(s.rssKiB - s.v8HeapKiB),
        Number.isFinite(cpuPct) ? cpuPct.toFixed(0) : '-',
        String(s.renegotiations),
      ];
    });
    printTable(
      `${r.kind}: ${CLIENTS} clients held ${SOAK_S} s, reneg-sec ${RENEG_S}, ${PPS} echo/s each`,
      ['t s', 'RSS MiB', 'V8 heaps MiB', 'V8 used MiB', 'RSS - V8 heaps MiB', 'CPU %', 'renegotiations'],
      rows,
    );
  }
  const summary = results.map((r) => {
    const oneMinute = at(r.samples, Math.min(60, SOAK_S));
    const last = r.samples.at(-1)!;
    const ratio = last.rssKiB / oneMinute.rssKiB;
    const cpuPct = (100 * (last.cpuS - r.samples[0]!.cpuS)) / Math.max(1, last.t - r.samples[0]!.t);
    const renegs = last.renegotiations - r.samples[0]!.renegotiations;
    return [
      LABELS[r.kind],
      `${r.connected}/${CLIENTS}`,
      (oneMinute.rssKiB / 1024).toFixed(1),
      (last.rssKiB / 1024).toFixed(1),
      `${mib(oneMinute.v8HeapKiB)} -> ${mib(last.v8HeapKiB)}`,
      `${mib(oneMinute.v8UsedKiB)} -> ${mib(last.v8UsedKiB)}`,
      `${mib(oneMinute.rssKiB - oneMinute.v8HeapKiB)} -> ${mib(last.rssKiB - last.v8HeapKiB)}`,
      `${ratio.toFixed(3)} (${Math.abs(ratio - 1) <= 0.05 ? 'met' : 'MISSED'})`,
      cpuPct.toFixed(0),
      String(renegs),
      `${r.disconnected} (${r.disconnected === 0 && r.failed === 0 ? 'met' : 'MISSED'})`,
    ];
  });
  printTable(
    `Soak summary (RSS target: final within 5% of the RSS at 1 min; no client may drop)`,
    [
      'server',
      'connected',
      'RSS MiB @1 min',
      'RSS MiB final',
      'V8 heaps MiB @1 min -> final',
      'V8 used MiB @1 min -> final',
      'RSS - V8 heaps MiB @1 min -> final',
      'final / 1 min',
      'CPU % (mean)',
      'renegotiations',
      'dropped clients',
    ],
    summary,
  );
}

void main();
