// A TCP server under idle connections that never handshake: (a) stock openvpn 2.6 and (b)
// shardvpn (workers 2), each serving one real stock client over `proto tcp`, while another
// namespace opens BENCH_IDLE (default 10,000) connections that send nothing plus a few with bad
// frame lengths. Reports the real client's in-tunnel ping loss and RTT during the flood, the
// server's RSS before/after and CPU, and (shardvpn) how the connections were closed.
import { VpnLab } from '../lab/vpn-lab';
import { printTable } from './lib';
import { cpuSeconds, rssBytes, SERVER_TUNNEL, startTunnel, type SetupName } from './tunnels';
import path from 'node:path';

const IDLE = Number(process.env.BENCH_IDLE ?? '10000');
const PINGS = 100;
const ABUSE = path.join(__dirname, '..', 'test', 'fixtures', 'tcp-abuse.js');

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function main(): Promise<void> {
  const lab = VpnLab.create(2);
  const rows: string[][] = [];
  try {
    for (const setup of [
      { name: 'a' as SetupName, label: '(a) openvpn server' },
      { name: 'b' as SetupName, label: '(b) shardvpn server' },
    ]) {
      const tunnel = await startTunnel(lab, setup.name, 'AES-256-GCM', 'tcp');
      try {
        const pid = tunnel.server.child.pid!;
        const rssBefore = rssBytes(pid);
        const cpuBefore = cpuSeconds(pid);
        // The flood from the second namespace; the pings start once it is under way.
        const abuse = lab.spawn(lab.clients[1]!, process.execPath, [ABUSE, '10.150.0.1', '1194', String(IDLE)], 'tcp flood');
        await new Promise((resolve) => setTimeout(resolve, 2000));
        const ping = lab.spawn(lab.clients[0]!, 'ping', ['-c', String(PINGS), '-i', '0.1', '-W', '1', SERVER_TUNNEL], 'ping');
        await ping.waitFor(/packets transmitted/, PINGS * 200 + 10_000);
        const rtts = [...ping.log().matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
        const rssDuring = rssBytes(pid);
        const cpu = cpuSeconds(pid) - cpuBefore;
        await abuse.stop('SIGTERM', 3000);
        rows.push([
          setup.label,
          `${PINGS - rtts.length}/${PINGS}`,
          percentile(rtts, 50).toFixed(2),
          percentile(rtts, 99).toFixed(2),
          (rssBefore / 2 ** 20).toFixed(0),
          (rssDuring / 2 ** 20).toFixed(0),
          cpu.toFixed(2),
        ]);
        process.stderr.write(`${setup.label}: ${rows[rows.length - 1]!.join(' ')}\n`);
      } finally {
        await tunnel.stop();
      }
    }
  } finally {
    await lab.cleanup();
  }
  printTable(
    `${IDLE} idle TCP connections (plus bad lengths and a stalled half frame) against a TCP server, one real client pinging through it (${PINGS} pings, 0.1 s apart)`,
    ['server', 'ping lost', 'RTT p50 ms', 'RTT p99 ms', 'RSS MiB before', 'RSS MiB during', 'server CPU-s'],
    rows,
  );
}

void main();
