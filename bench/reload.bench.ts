// SIGHUP on a server with a connected stock openvpn client, and an edit that does not concern
// it: pings lost and the longest gap, for (a) openvpn 2.6 (which restarts and makes every client
// reconnect), shardvpn with reload-mode restart (the same), and shardvpn's hitless reload (the
// default), in one run. explicit-exit-notify is on, so the restarting servers tell their clients
// at once: OpenVPN's best case.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { VpnLab } from '../lab/vpn-lab';
import { benchRuns, median, printTable } from './lib';
import { SERVER_TUNNEL, serverConfigName, startTunnel, type SetupName } from './tunnels';

const PINGS = Number(process.env.BENCH_PINGS ?? '200');
const INTERVAL_S = 0.05;
const HUP_AFTER_MS = 2000;

interface Contender {
  label: string;
  setup: SetupName;
  extra: string[];
}

const CONTENDERS: readonly Contender[] = [
  { label: 'openvpn 2.6', setup: 'a', extra: ['explicit-exit-notify 1'] },
  { label: 'shardvpn reload-mode restart', setup: 'b', extra: ['explicit-exit-notify 1', 'reload-mode restart'] },
  { label: 'shardvpn hitless (default)', setup: 'b', extra: ['explicit-exit-notify 1'] },
];

/** Pings through the tunnel at 50 ms, SIGHUPs the server after 2 s; lost pings and the longest gap (ms). */
async function oneRun(lab: VpnLab, contender: Contender): Promise<{ lost: number; gapMs: number }> {
  const tunnel = await startTunnel(lab, contender.setup, 'AES-256-GCM', 'udp', contender.extra);
  try {
    const ping = lab.spawn(
      lab.clients[0]!,
      'ping',
      ['-n', '-i', String(INTERVAL_S), '-c', String(PINGS), '-W', '1', SERVER_TUNNEL],
      'ping',
    );
    await new Promise((resolve) => setTimeout(resolve, HUP_AFTER_MS));
    // An edit that concerns no client: a comment and a new verb.
    const file = path.join(lab.dir, serverConfigName(contender.setup));
    writeFileSync(file, `${readFileSync(file, 'utf8')}\n# edited\nverb 2\n`);
    process.kill(tunnel.server.child.pid!, 'SIGHUP');
    await ping.waitFor(/packets transmitted/, PINGS * INTERVAL_S * 1000 + 30_000);
    const seqs = [...ping.log().matchAll(/icmp_seq=(\d+)/g)].map((m) => Number(m[1]));
    let gap = 1;
    for (let i = 1; i < seqs.length; i++) gap = Math.max(gap, seqs[i]! - seqs[i - 1]!);
    return { lost: PINGS - seqs.length, gapMs: Math.round(gap * INTERVAL_S * 1000) };
  } finally {
    await tunnel.stop();
  }
}

async function main(): Promise<void> {
  const runs = Math.min(benchRuns(), 3);
  const lab = VpnLab.create(1);
  const results = new Map<string, { lost: number[]; gap: number[] }>();
  try {
    for (let run = 0; run < runs; run++) {
      for (const contender of CONTENDERS) {
        const r = await oneRun(lab, contender);
        const entry = results.get(contender.label) ?? { lost: [], gap: [] };
        entry.lost.push(r.lost);
        entry.gap.push(r.gapMs);
        results.set(contender.label, entry);
      }
    }
  } finally {
    await lab.cleanup();
  }
  printTable(
    `SIGHUP with a connected client (an edit that does not concern it): ${PINGS} pings at ${INTERVAL_S * 1000} ms, median of ${runs} runs`,
    ['server', 'pings lost', 'longest gap (ms)', 'runs (lost)'],
    CONTENDERS.map((c) => {
      const r = results.get(c.label)!;
      return [c.label, String(median(r.lost)), String(median(r.gap)), r.lost.join(' ')];
    }),
  );
  console.log('target: 0 pings lost by an unchanged client on a hitless SIGHUP');
}

void main();
