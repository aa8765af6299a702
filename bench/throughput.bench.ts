// Throughput through the tunnel: iperf3 TCP, 1 and 4 streams, each data cipher, over a UDP and
// a TCP link, for (a) openvpn + openvpn, (b) shardvpn server + openvpn client, (c) shardvpn +
// shardvpn, all in one run on the same machine. Reports Mbit/s, the server's CPU-seconds per GB
// moved (from /proc), and both as ratios against (a). BENCH_RUNS (default 3) runs of
// BENCH_SECONDS (5) each; BENCH_CIPHERS, BENCH_TRANSPORTS (udp,tcp) and BENCH_STREAMS (1,4)
// narrow the matrix.
// BENCH_OFFLOAD=compare adds (b) and (c) with `udp-offload no` (no UDP GSO/GRO), measured in the
// same run; BENCH_DIRECTIONS=up,down adds iperf3 -R (the server sends, its GSO path).
// BENCH_TUN_QUEUES=compare adds (b) and (c) with `tun-queues single` (one TUN queue read by the
// main thread; the other rows use the default, a queue per shard), measured in the same run.
// BENCH_TUN_OFFLOAD=compare adds (b) and (c) with `tun-offload no` (a system call per packet on the
// TUN side, no superpackets) on both of our ends.
// BENCH_COALESCE=compare adds (b) and (c) with `udp-coalesce-usecs 0` (every readable event read at
// once) on both of our ends.
// Every run goes to bench/results/throughput.json for the charts.
import { VpnLab } from '../lab/vpn-lab';
import { median, printTable } from './lib';
import { point, SeriesSet, writeRecord } from './record';
import { SERVER_UNDERLAY } from '../lab/vpn-lab';
import { CIPHERS, cpuSeconds, SERVER_TUNNEL, SETUPS as BASE_SETUPS, startTunnel, variant, type Setup, type Transport } from './tunnels';

const RUNS = Number(process.env.BENCH_RUNS ?? '3');
const SECONDS = Number(process.env.BENCH_SECONDS ?? '5');
const STREAMS = (process.env.BENCH_STREAMS ?? '1,4').split(',').map(Number);
const CIPHER_LIST = (process.env.BENCH_CIPHERS ?? CIPHERS.join(',')).split(',');
const TRANSPORTS = (process.env.BENCH_TRANSPORTS ?? 'udp,tcp').split(',') as Transport[];
const DIRECTIONS = (process.env.BENCH_DIRECTIONS ?? 'up').split(',') as ('up' | 'down')[];
/** Each cipher over each transport (and direction); the label names them in the tables. */
const CASES = TRANSPORTS.flatMap((transport) =>
  CIPHER_LIST.flatMap((cipher) =>
    DIRECTIONS.map((direction) => ({
      transport,
      cipher,
      direction,
      label: `${cipher} ${transport.toUpperCase()}${DIRECTIONS.length > 1 ? (direction === 'up' ? ' up' : ' down') : ''}`,
    })),
  ),
);
const SETUPS: readonly Setup[] = [
  ...BASE_SETUPS.map((s) => ({ ...s, serverExtra: [], ours: [] })),
  ...variant('BENCH_OFFLOAD', 'udp-offload no', 'both'),
  ...variant('BENCH_TUN_QUEUES', 'tun-queues single', 'server'),
  ...variant('BENCH_TUN_OFFLOAD', 'tun-offload no', 'both'),
  ...variant('BENCH_COALESCE', 'udp-coalesce-usecs 0', 'both'),
];

interface Sample {
  mbits: number;
  cpuPerGb: number;
}

/** iperf3 to `target` (the server's tunnel address; its underlay address for the raw veth figure, with serverPid 0). */
async function iperf(lab: VpnLab, serverPid: number, streams: number, direction: 'up' | 'down', target = SERVER_TUNNEL): Promise<Sample> {
  const receiver = lab.spawn(lab.server, 'iperf3', ['-s', '-1', '--forceflush', '-B', target, '-p', '5301'], 'iperf3 server');
  await receiver.waitFor(/Server listening/, 5000);
  const cpuBefore = serverPid > 0 ? cpuSeconds(serverPid) : 0;
  const sender = lab.spawn(
    lab.clients[0]!,
    'iperf3',
    ['-c', target, '-p', '5301', '-t', String(SECONDS), '-P', String(streams), '-J', ...(direction === 'down' ? ['-R'] : [])],
    'iperf3 client',
  );
  await sender.waitFor(/"end"[^]*\}\s*$/, (SECONDS + 20) * 1000);
  await sender.waitExit();
  const cpu = serverPid > 0 ? cpuSeconds(serverPid) - cpuBefore : 0;
  await receiver.stop('SIGTERM', 2000);
  const report = JSON.parse(sender.log()) as { end: { sum_received: { bits_per_second: number; bytes: number } } };
  const received = report.end.sum_received;
  return { mbits: received.bits_per_second / 1e6, cpuPerGb: cpu / (received.bytes / 1e9) };
}

async function main(): Promise<void> {
  const lab = VpnLab.create(1);
  const results = new Map<string, Sample[]>();
  const key = (setup: Setup, cipher: string, streams: number): string => `${setup.label}/${cipher}/${streams}`;
  // The link itself, no tunnel: what the veth pair and the bridge carry between the namespaces.
  const raw = new Map<number, number[]>();
  try {
    for (let run = 0; run < RUNS; run++) {
      for (const streams of STREAMS) {
        const sample = await iperf(lab, 0, streams, 'up', SERVER_UNDERLAY);
        raw.set(streams, [...(raw.get(streams) ?? []), sample.mbits]);
        process.stderr.write(`raw veth ${streams} stream(s): ${sample.mbits.toFixed(0)} Mbit/s\n`);
      }
    }
    for (const { transport, cipher: bare, label: cipher, direction } of CASES) {
      for (const setup of SETUPS) {
        const tunnel = await startTunnel(lab, setup.name, bare, transport, setup.serverExtra, setup.ours);
        try {
          const pid = tunnel.server.child.pid!;
          for (let run = 0; run < RUNS; run++) {
            for (const streams of STREAMS) {
              const sample = await iperf(lab, pid, streams, direction);
              const list = results.get(key(setup, cipher, streams)) ?? [];
              list.push(sample);
              results.set(key(setup, cipher, streams), list);
              process.stderr.write(
                `${setup.label} ${cipher} ${streams} stream(s): ${sample.mbits.toFixed(0)} Mbit/s, ${sample.cpuPerGb.toFixed(2)} CPU-s/GB\n`,
              );
            }
          }
        } finally {
          await tunnel.stop();
        }
      }
    }
  } finally {
    await lab.cleanup();
  }
  for (const streams of STREAMS) {
    const rows: string[][] = [];
    for (const { label: cipher } of CASES) {
      const base = results.get(key(SETUPS[0]!, cipher, streams)) ?? [];
      const baseMbits = median(base.map((s) => s.mbits));
      const baseCpu = median(base.map((s) => s.cpuPerGb));
      for (const setup of SETUPS) {
        const samples = results.get(key(setup, cipher, streams)) ?? [];
        const mbits = median(samples.map((s) => s.mbits));
        const cpu = median(samples.map((s) => s.cpuPerGb));
        rows.push([
          cipher,
          setup.label,
          mbits.toFixed(0),
          cpu.toFixed(2),
          (mbits / baseMbits).toFixed(2) + 'x',
          (cpu / baseCpu).toFixed(2) + 'x',
        ]);
      }
    }
    printTable(
      `iperf3 TCP, ${streams} stream${streams === 1 ? '' : 's'}, median of ${RUNS} runs of ${SECONDS} s`,
      ['cipher, link', 'set-up', 'Mbit/s', 'server CPU-s/GB', 'Mbit/s vs (a)', 'CPU/GB vs (a)', 'Mbit/s vs raw veth'],
      rows.map((row) => [...row, (Number(row[2]) / median(raw.get(streams) ?? [])).toFixed(2) + 'x']),
    );
    console.log(`raw veth, no tunnel, ${streams} stream(s): ${median(raw.get(streams) ?? []).toFixed(0)} Mbit/s (median of ${RUNS})`);
  }
  console.log('targets: (b) >= 1.2x (a) Mbit/s at <= 0.5x its CPU-s/GB; (c) >= 5x (a) Mbit/s and >= 0.25x raw veth');
  const mbits = new SeriesSet();
  const cpu = new SeriesSet();
  for (const { label: cipher } of CASES) {
    for (const streams of STREAMS) {
      const x = `${cipher}, ${streams} stream${streams === 1 ? '' : 's'}`;
      for (const setup of SETUPS) {
        const samples = results.get(key(setup, cipher, streams)) ?? [];
        mbits.add(
          setup.label,
          point(
            x,
            samples.map((s) => s.mbits),
          ),
        );
        cpu.add(
          setup.label,
          point(
            x,
            samples.map((s) => s.cpuPerGb),
          ),
        );
      }
    }
  }
  const xTitle = 'cipher, link, iperf3 TCP streams';
  writeRecord({
    bench: 'throughput',
    sizes: { BENCH_RUNS: RUNS, BENCH_SECONDS: SECONDS, BENCH_CIPHERS: CIPHER_LIST.join(','), BENCH_TRANSPORTS: TRANSPORTS.join(',') },
    metrics: [
      { id: 'mbits', title: 'Throughput through the tunnel (iperf3)', unit: 'Mbit/s', xTitle, series: mbits.toArray() },
      { id: 'cpu_per_gb', title: 'Server CPU per GB moved', unit: 'CPU-s/GB', xTitle, series: cpu.toArray() },
    ],
  });
}

void main();
