// Failover of a 3-node shardvpn cluster behind the nftables + keepalived balancer (lab/cluster-lab.ts):
// 300 simulated UDP clients and 60 TCP ones (`shardvpn load --reconnect`) and one stock openvpn
// client pinging its server 5 times a second, all through the VIP, with keepalive 2 10. Each run
// stops one node (never the real client's) with SIGTERM and measures: when the balancer's rules
// drop it, when every client is connected again, how the clients sat on the nodes before and
// after, and how many of the real client's pings were lost. The clients cannot notice a silent
// node before ping-restart (10 s), so the failover time is also given as a ratio to it. Between
// runs the stopped node starts again and the clients leave (explicit-exit-notify). Medians of
// BENCH_RUNS runs (default 5). Needs root, openvpn, keepalived, nft and the lab's namespaces.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

import type { LoadReport } from '../src/main/load/report';
import { ClusterLab, TCP_SERVICE, UDP_SERVICE, nodePool, until, type LabNode } from '../lab/cluster-lab';
import type { ClusterService } from '../lab/cluster-config';
import { BIN, type LabProcess } from '../lab/vpn-lab';
import { benchRuns, median, printTable } from './lib';

const UDP_CLIENTS = Number(process.env.CLUSTER_UDP_CLIENTS ?? '300');
const TCP_CLIENTS = Number(process.env.CLUSTER_TCP_CLIENTS ?? '60');
const KEEPALIVE: readonly [number, number] = [2, 10];
const PING_INTERVAL_S = 0.2;

interface RunResult {
  victim: string;
  balancerS: number;
  allBackS: number;
  before: string;
  after: string;
  moved: number;
  pingsSent: number;
  pingsLost: number;
  reconnectP50Ms: number | null;
  reconnectFailures: number;
}

const total = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
const counts = (m: Map<string, number>): string => [...m].map(([k, v]) => `${k} ${v}`).join(', ');

function startLoad(lab: ClusterLab, service: ClusterService, clients: number, json: string): LabProcess {
  const profile = lab.profile(service, service.proto === 'udp' ? 'explicit-exit-notify 1\n' : '');
  const args = ['load', '--profile', profile, '--clients', String(clients), '--rate', '30', '--threads', '1', '--duration', '300'];
  args.push('--handshake-timeout', '60', '--reconnect', '--json', json, '--quiet');
  return lab.spawn(lab.clients, process.execPath, [BIN, ...args], `shardvpn load ${service.proto}`);
}

async function stopLoad(load: LabProcess, json: string): Promise<LoadReport> {
  const code = await load.stop('SIGTERM', 30_000);
  if (!existsSync(json)) throw new Error(`load generator exit ${code}, no report:\n${load.log().slice(-2000)}`);
  return JSON.parse(readFileSync(json, 'utf8')) as LoadReport;
}

async function oneRun(lab: ClusterLab, run: number, home: LabNode, realServer: string): Promise<RunResult> {
  const expected: [ClusterService, number][] = [
    [UDP_SERVICE, UDP_CLIENTS + 1],
    [TCP_SERVICE, TCP_CLIENTS],
  ];
  const jsons = [UDP_SERVICE, TCP_SERVICE].map((s) => path.join(lab.dir, `bench-${s.proto}-${run}.json`));
  const loads = [startLoad(lab, UDP_SERVICE, UDP_CLIENTS, jsons[0]!), startLoad(lab, TCP_SERVICE, TCP_CLIENTS, jsons[1]!)];
  try {
    for (const [service, n] of expected)
      await until(
        `${n} ${service.proto} clients`,
        async () => total(await lab.nodeMetric(service, 'shardvpn_connected_clients')) === n,
        120_000,
      );
  } catch (error) {
    // What the generators saw: which clients did not come, and why.
    const udp = counts(await lab.nodeMetric(UDP_SERVICE, 'shardvpn_connected_clients', lab.runningNodes()));
    const seen = [await stopLoad(loads[0]!, jsons[0]!), await stopLoad(loads[1]!, jsons[1]!)].map((r) =>
      JSON.stringify({ ...r, handshakeMs: undefined, traffic: undefined }),
    );
    throw new Error(`${(error as Error).message} (udp: ${udp})\n${seen.join('\n')}`, { cause: error });
  }
  const before = await lab.nodeMetric(UDP_SERVICE, 'shardvpn_connected_clients');
  const beforeTcp = await lab.nodeMetric(TCP_SERVICE, 'shardvpn_connected_clients');
  const others = lab.nodes.filter((n) => n !== home);
  const victim = others[run % others.length]!;
  const survivors = lab.nodes.filter((n) => n !== victim);

  const pings = 120; // 24 s at 5/s: across the whole failover
  const ping = lab.spawn(lab.clients, 'ping', ['-c', String(pings), '-i', String(PING_INTERVAL_S), '-w', '40', realServer], 'ping');
  await new Promise((r) => setTimeout(r, 2000));
  const stoppedAt = Date.now();
  await lab.stopNode(victim);
  await lab.waitBalanced(2, 30_000);
  const balancerS = (Date.now() - stoppedAt) / 1000;
  for (const [service, n] of expected)
    await until(
      `${n} ${service.proto} clients on the survivors`,
      async () => total(await lab.nodeMetric(service, 'shardvpn_connected_clients', survivors)) === n,
      60_000,
    );
  const allBackS = (Date.now() - stoppedAt) / 1000;
  const after = await lab.nodeMetric(UDP_SERVICE, 'shardvpn_connected_clients', survivors);
  const afterTcp = await lab.nodeMetric(TCP_SERVICE, 'shardvpn_connected_clients', survivors);
  await ping.waitFor(/packets transmitted/, 45_000);
  const m = /(\d+) packets transmitted, (\d+) received/.exec(ping.log());
  if (m === null) throw new Error(`ping: ${ping.log()}`);

  const reports = [await stopLoad(loads[0]!, jsons[0]!), await stopLoad(loads[1]!, jsons[1]!)];
  const lost = reports[0]!.disconnected + reports[1]!.disconnected;
  const moved = (before.get(victim.name) ?? 0) + (beforeTcp.get(victim.name) ?? 0);
  if (lost !== moved) throw new Error(`${lost} sessions lost, but the stopped node held ${moved}: clients of the survivors started over`);
  for (const r of reports)
    if (r.failed > 0 || r.connectedAtEnd !== r.requested) throw new Error(`clients lost: ${JSON.stringify(r.failureDetails)}`);
  // Back to three nodes and only the real client, for the next run.
  await lab.startNode(victim);
  await lab.waitBalanced(3, 30_000);
  await until(
    'the simulated clients to leave',
    async () => total(await lab.nodeMetric(UDP_SERVICE, 'shardvpn_connected_clients')) === 1,
    60_000,
  );
  await until('the TCP clients to leave', async () => total(await lab.nodeMetric(TCP_SERVICE, 'shardvpn_connected_clients')) === 0, 60_000);
  return {
    victim: victim.name,
    balancerS,
    allBackS,
    before: `udp ${counts(before)}; tcp ${counts(beforeTcp)}`,
    after: `udp ${counts(after)}; tcp ${counts(afterTcp)}`,
    moved,
    pingsSent: Number(m[1]),
    pingsLost: Number(m[1]) - Number(m[2]),
    reconnectP50Ms: reports[0]!.reconnectMs.p50,
    reconnectFailures: reports[0]!.reconnectFailures + reports[1]!.reconnectFailures,
  };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('cluster bench: needs root (network namespaces, TUN devices); skipped');
    return;
  }
  const runs = benchRuns();
  const lab = await ClusterLab.create({ nodes: 3, services: [UDP_SERVICE, TCP_SERVICE], keepalive: KEEPALIVE });
  // Interrupted: stop what the lab started (by PID) and remove its namespaces before leaving.
  const interrupted = (): void => {
    void lab.cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  const results: RunResult[] = [];
  try {
    lab.startKeepalived();
    await lab.startServers();
    await lab.waitBalanced(3, 30_000);
    const real = lab.spawn(lab.clients, 'openvpn', ['--config', lab.profile(UDP_SERVICE)], 'openvpn client');
    await real.waitFor(/Initialization Sequence Completed/, 30_000);
    const first = await lab.nodeMetric(UDP_SERVICE, 'shardvpn_connected_clients');
    const home = lab.nodes.find((n) => first.get(n.name) === 1);
    if (home === undefined) throw new Error(`the real client is on no node: ${counts(first)}`);
    const realServer = nodePool(home.index, UDP_SERVICE).serverAddress;
    for (let run = 0; run < runs; run++) {
      const r = await oneRun(lab, run, home, realServer);
      results.push(r);
      console.log(
        `run ${run + 1}: ${r.victim} stopped; balancer ${r.balancerS.toFixed(1)} s, all back ${r.allBackS.toFixed(1)} s; before ${r.before}; after ${r.after}; real client lost ${r.pingsLost}/${r.pingsSent} pings`,
      );
    }
    if (/SIGUSR1|Inactivity timeout/.test(real.log())) throw new Error(`the real client restarted:\n${real.log().slice(-2000)}`);
  } finally {
    await lab.cleanup();
  }
  const restartS = KEEPALIVE[1];
  printTable(
    `Failover, 3 nodes, ${UDP_CLIENTS} UDP + ${TCP_CLIENTS} TCP simulated clients, keepalive ${KEEPALIVE.join(' ')}, ${runs} runs (medians)`,
    ['measure', 'median', 'runs'],
    [
      [
        'balancer drops the node (s)',
        median(results.map((r) => r.balancerS)).toFixed(1),
        results.map((r) => r.balancerS.toFixed(1)).join(' '),
      ],
      [
        'every client connected again (s)',
        median(results.map((r) => r.allBackS)).toFixed(1),
        results.map((r) => r.allBackS.toFixed(1)).join(' '),
      ],
      ['  / ping-restart', (median(results.map((r) => r.allBackS)) / restartS).toFixed(2) + 'x', ''],
      ['clients moved', String(median(results.map((r) => r.moved))), results.map((r) => r.moved).join(' ')],
      [
        'UDP loss-to-session p50 (ms)',
        String(median(results.map((r) => r.reconnectP50Ms ?? NaN))),
        results.map((r) => r.reconnectP50Ms).join(' '),
      ],
      ['failed new attempts', String(median(results.map((r) => r.reconnectFailures))), results.map((r) => r.reconnectFailures).join(' ')],
      [
        'real client pings lost',
        String(median(results.map((r) => r.pingsLost))),
        results.map((r) => `${r.pingsLost}/${r.pingsSent}`).join(' '),
      ],
    ],
  );
  for (const [i, r] of results.entries()) console.log(`run ${i + 1}: ${r.victim} stopped: before ${r.before} -> after ${r.after}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
