// System calls per GB moved through the tunnel, with and without UDP GSO/GRO (udp-offload), in one
// run: (b) shardvpn server + openvpn client and (c) shardvpn server + shardvpn client, each with
// udp-offload yes and no, and (a) openvpn + openvpn for reference. A fixed iperf3 TCP transfer
// (BENCH_BYTES, default 256M) up (client -> server) and down (-R); `perf stat` counts the system
// calls of every thread of the server process (and of the client process for (c)) over the
// transfer. BENCH_RUNS (default 3) runs each; medians.
// BENCH_TUN_QUEUES=compare measures (b) with `tun-queues single` against `tun-queues shard`
// instead (udp-offload yes, the server's one TUN queue read by its main thread against a queue
// per shard), next to (a). BENCH_TUN_OFFLOAD=compare measures (b) and (c) with `tun-offload no`
// against `yes` (on both of our ends), next to (a). BENCH_COALESCE=compare measures (b) and (c)
// with `udp-coalesce-usecs 0` against the default 100 (on both of our ends), next to (a).
// Besides all calls and the UDP batches, `read` and `write`/`writev` per GB: on these set-ups
// those are the TUN device's (one per packet, or per superpacket with tun-offload); and
// `epoll_pwait` per GB, the event loops' wake-ups (openvpn 2.6 waits in `poll` instead).
import { execFileSync } from 'node:child_process';

import { VpnLab } from '../lab/vpn-lab';
import { median, printTable } from './lib';
import { countSyscalls } from './perf-syscalls';
import { cpuSeconds, SERVER_TUNNEL, startTunnel, type SetupName } from './tunnels';

const RUNS = Number(process.env.BENCH_RUNS ?? '3');
const BYTES = process.env.BENCH_BYTES ?? '256M';
const CIPHER = 'AES-256-GCM';

const TUN_QUEUES = process.env.BENCH_TUN_QUEUES === 'compare';
const TUN_OFFLOAD = process.env.BENCH_TUN_OFFLOAD === 'compare';
const COALESCE = process.env.BENCH_COALESCE === 'compare';
/** `ours`: directives for both of our ends; `serverExtra`: for our server only. */
interface Setup {
  name: SetupName;
  label: string;
  ours: string[];
  serverExtra?: string[];
}
/** (b) and (c), each with `directive` set to `off` and then `on` (no and yes) on both of our ends. */
const yesNo = (directive: string, off = 'no', on = 'yes'): Setup[] =>
  (['b', 'c'] as const).flatMap((name) =>
    [off, on].map((value) => ({
      name,
      label: `${name === 'b' ? '(b) shardvpn server + openvpn client' : '(c) shardvpn + shardvpn'}, ${directive} ${value}`,
      ours: [`${directive} ${value}`],
    })),
  );
const OPENVPN: Setup = { name: 'a', label: '(a) openvpn + openvpn', ours: [] };
const SETUPS: readonly Setup[] = TUN_QUEUES
  ? [
      OPENVPN,
      { name: 'b', label: '(b) shardvpn server + openvpn client, tun-queues single', ours: [], serverExtra: ['tun-queues single'] },
      { name: 'b', label: '(b) shardvpn server + openvpn client, tun-queues shard', ours: [], serverExtra: ['tun-queues shard'] },
    ]
  : COALESCE
    ? [OPENVPN, ...yesNo('udp-coalesce-usecs', '0', '100')]
    : [OPENVPN, ...yesNo(TUN_OFFLOAD ? 'tun-offload' : 'udp-offload')];
/** The row a set-up is compared with, measured in the same run. */
const PEER = TUN_QUEUES
  ? ['tun-queues shard', 'tun-queues single']
  : TUN_OFFLOAD
    ? ['tun-offload yes', 'tun-offload no']
    : COALESCE
      ? ['udp-coalesce-usecs 100', 'udp-coalesce-usecs 0']
      : ['udp-offload yes', 'udp-offload no'];

interface Sample {
  /** Per GB moved: all system calls, sendmmsg, recvmmsg, read, write + writev of the server; all system calls of the client. */
  server: number;
  sendmmsg: number;
  recvmmsg: number;
  read: number;
  write: number;
  epoll: number;
  client: number;
  cpuPerGb: number;
  mbits: number;
}

async function transfer(lab: VpnLab, serverPid: number, clientPid: number, down: boolean): Promise<Sample> {
  const receiver = lab.spawn(lab.server, 'iperf3', ['-s', '-1', '--forceflush', '-B', SERVER_TUNNEL, '-p', '5311'], 'iperf3 server');
  await receiver.waitFor(/Server listening/, 5000);
  const server = countSyscalls(serverPid);
  const client = countSyscalls(clientPid);
  await new Promise((resolve) => setTimeout(resolve, 300)); // perf attached
  const cpuBefore = cpuSeconds(serverPid);
  const sender = lab.spawn(
    lab.clients[0]!,
    'iperf3',
    ['-c', SERVER_TUNNEL, '-p', '5311', '-n', BYTES, '-J', ...(down ? ['-R'] : [])],
    'iperf3 client',
  );
  await sender.waitFor(/"end"[^]*\}\s*$/, 120_000);
  await sender.waitExit();
  const cpu = cpuSeconds(serverPid) - cpuBefore;
  const [serverCounts, clientCounts] = await Promise.all([server.stop(), client.stop()]);
  await receiver.stop('SIGTERM', 2000);
  const report = JSON.parse(sender.log()) as { end: { sum_received: { bits_per_second: number; bytes: number } } };
  const gb = report.end.sum_received.bytes / 1e9;
  return {
    server: serverCounts[0]! / gb,
    sendmmsg: serverCounts[1]! / gb,
    recvmmsg: serverCounts[2]! / gb,
    read: serverCounts[3]! / gb,
    write: (serverCounts[4]! + serverCounts[5]!) / gb,
    epoll: serverCounts[6]! / gb,
    client: clientCounts[0]! / gb,
    cpuPerGb: cpu / gb,
    mbits: report.end.sum_received.bits_per_second / 1e6,
  };
}

async function main(): Promise<void> {
  execFileSync('perf', ['--version']);
  const lab = VpnLab.create(1, 'sys');
  const results = new Map<string, Sample[]>();
  try {
    for (const down of [false, true]) {
      for (const setup of SETUPS) {
        const tunnel = await startTunnel(lab, setup.name, CIPHER, 'udp', setup.serverExtra ?? [], setup.ours);
        try {
          for (let run = 0; run < RUNS; run++) {
            const sample = await transfer(lab, tunnel.server.child.pid!, tunnel.client.child.pid!, down);
            const key = `${down ? 'down' : 'up'}/${setup.label}`;
            results.set(key, [...(results.get(key) ?? []), sample]);
            process.stderr.write(`${key}: ${JSON.stringify(sample)}\n`);
          }
        } finally {
          await tunnel.stop();
        }
      }
    }
  } finally {
    await lab.cleanup();
  }
  for (const direction of ['up', 'down']) {
    const rows: string[][] = [];
    // A run whose perf output did not parse (NaN) is left out of the median.
    const of = (label: string, field: keyof Sample): number =>
      median((results.get(`${direction}/${label}`) ?? []).map((s) => s[field]).filter(Number.isFinite));
    for (const setup of SETUPS) {
      // Ratio against the same set-up with udp-offload no (tun-queues single), measured in this run.
      const peer = setup.label.includes(PEER[0]!) ? setup.label.replace(PEER[0]!, PEER[1]!) : null;
      rows.push([
        setup.label,
        of(setup.label, 'server').toFixed(0),
        of(setup.label, 'sendmmsg').toFixed(0),
        of(setup.label, 'recvmmsg').toFixed(0),
        of(setup.label, 'read').toFixed(0),
        of(setup.label, 'write').toFixed(0),
        of(setup.label, 'epoll').toFixed(0),
        of(setup.label, 'client').toFixed(0),
        of(setup.label, 'cpuPerGb').toFixed(2),
        of(setup.label, 'mbits').toFixed(0),
        peer === null ? '' : (of(setup.label, 'server') / of(peer, 'server')).toFixed(2) + 'x',
        peer === null ? '' : (of(setup.label, 'cpuPerGb') / of(peer, 'cpuPerGb')).toFixed(2) + 'x',
      ]);
    }
    printTable(
      `iperf3 TCP ${direction === 'up' ? 'client -> server' : 'server -> client (-R)'}, ${BYTES}B, ${CIPHER}, median of ${RUNS} runs`,
      [
        'set-up',
        'server syscalls/GB',
        'sendmmsg/GB',
        'recvmmsg/GB',
        'read/GB',
        'write+writev/GB',
        'epoll_pwait/GB',
        'client syscalls/GB',
        'server CPU-s/GB',
        'Mbit/s',
        `syscalls vs ${PEER[1]}`,
        `CPU/GB vs ${PEER[1]}`,
      ],
      rows,
    );
  }
}

void main();
