// Ping RTT through the tunnel (median and p99) for (a) openvpn + openvpn, (b) shardvpn server +
// openvpn client and (c) shardvpn + shardvpn, idle and under an iperf3 TCP load, in one run.
// BENCH_PINGS (default 200), BENCH_CIPHER (AES-256-GCM). BENCH_TUN_QUEUES=compare adds (b) and
// (c) with `tun-queues single` on the server (the main thread reads the one TUN queue and hands
// replies to the shards: a thread hop on the reply path; the default is a queue per shard).
// BENCH_COALESCE=compare adds (b) and (c) with `udp-coalesce-usecs 0` on both of our ends.
// Every RTT goes to bench/results/latency.json for the charts.
import { VpnLab } from '../lab/vpn-lab';
import { median as medianOf, printTable } from './lib';
import { point, SeriesSet, writeRecord } from './record';
import { SERVER_TUNNEL, SETUPS as BASE_SETUPS, startTunnel, variant, type Setup } from './tunnels';

const SETUPS: readonly Setup[] = [
  ...BASE_SETUPS.map((s) => ({ ...s, serverExtra: [], ours: [] })),
  ...variant('BENCH_TUN_QUEUES', 'tun-queues single', 'server'),
  ...variant('BENCH_COALESCE', 'udp-coalesce-usecs 0', 'both'),
];

const CIPHER = process.env.BENCH_CIPHER ?? 'AES-256-GCM';
const PINGS = Number(process.env.BENCH_PINGS ?? '200');

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function pingTimes(lab: VpnLab): Promise<{ rtts: number[]; lost: number }> {
  const ping = lab.spawn(lab.clients[0]!, 'ping', ['-c', String(PINGS), '-i', '0.02', '-W', '1', SERVER_TUNNEL], 'ping');
  await ping.waitFor(/packets transmitted/, PINGS * 100 + 10_000);
  const rtts = [...ping.log().matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  return { rtts, lost: PINGS - rtts.length };
}

async function main(): Promise<void> {
  const lab = VpnLab.create(1);
  const rows: string[][] = [];
  const medians = new Map<string, number>();
  const series = new SeriesSet();
  try {
    for (const setup of SETUPS) {
      const tunnel = await startTunnel(lab, setup.name, CIPHER, 'udp', setup.serverExtra, setup.ours);
      try {
        for (const load of [false, true]) {
          let iperf = null;
          let receiver = null;
          if (load) {
            receiver = lab.spawn(lab.server, 'iperf3', ['-s', '-1', '--forceflush', '-B', SERVER_TUNNEL, '-p', '5302'], 'iperf3 server');
            await receiver.waitFor(/Server listening/, 5000);
            iperf = lab.spawn(
              lab.clients[0]!,
              'iperf3',
              ['-c', SERVER_TUNNEL, '-p', '5302', '-t', String(Math.ceil(PINGS * 0.02 + 3))],
              'iperf3 client',
            );
            await new Promise((resolve) => setTimeout(resolve, 1000));
          }
          const { rtts, lost } = await pingTimes(lab);
          if (iperf !== null) await iperf.stop('SIGTERM', 3000);
          if (receiver !== null) await receiver.stop('SIGKILL', 3000);
          const median = medianOf(rtts);
          medians.set(`${setup.label}/${load}`, median);
          series.add(setup.label, point(load ? 'iperf3 load' : 'idle', rtts, { p99: percentile(rtts, 99) }));
          rows.push([setup.label, load ? 'iperf3 load' : 'idle', median.toFixed(3), percentile(rtts, 99).toFixed(3), String(lost), '']);
        }
      } finally {
        await tunnel.stop();
      }
    }
  } finally {
    await lab.cleanup();
  }
  for (const row of rows) {
    const load = row[1] === 'iperf3 load';
    row[5] = ((medians.get(`${row[0]}/${load}`) ?? NaN) / (medians.get(`${SETUPS[0]!.label}/${load}`) ?? NaN)).toFixed(2) + 'x';
  }
  printTable(
    `Ping RTT through the tunnel (ms), ${PINGS} pings at 20 ms intervals, ${CIPHER}`,
    ['set-up', 'condition', 'median', 'p99', 'lost', 'median vs (a)'],
    rows,
  );
  console.log('target: tunnel RTT no worse than OpenVPN (ratio <= 1.00x)');
  writeRecord({
    bench: 'latency',
    sizes: { BENCH_PINGS: PINGS, BENCH_CIPHER: CIPHER },
    metrics: [
      {
        id: 'rtt_ms',
        title: 'Ping RTT through the tunnel',
        unit: 'ms',
        xTitle: 'condition',
        samples: 'pings',
        series: series.toArray(),
      },
    ],
  });
}

void main();
