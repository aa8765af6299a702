// Shard faults: how long a failed shard's socket goes unserved, and how long its clients take to
// come back, against the peer an operator would otherwise reach for, a whole-server SIGUSR1
// restart, in the same run. A shardvpn server (workers 2, keepalive 1 2, fault injection on) and
// two stock openvpn clients; each round, interleaved: the shard of client 0 throws (shard-fault
// throw), is terminated (shard-restart), and the whole server restarts (SIGUSR1). Measured from
// the command: to the server's "replaced: serving again" line (SIGUSR1: to its next "Initialization
// Sequence Completed"), and to client 0's next completed connection. BENCH_RUNS rounds (default 5).
import net from 'node:net';
import path from 'node:path';

import { clientUnderlay, VpnLab, type LabProcess } from '../lab/vpn-lab';
import { benchRuns, median, printTable } from './lib';
import { canRunLab, sleep } from './load-lab';

const INIT = /Initialization Sequence Completed/g;
const count = (text: string, pattern: RegExp): number => text.match(pattern)?.length ?? 0;
const elapsedMs = (since: bigint): number => Number(process.hrtime.bigint() - since) / 1e6;

/** Resolves with the milliseconds from `since` until `done()` holds, polled every `everyMs`. */
async function until(what: string, done: () => boolean, since: bigint, everyMs: number, timeoutMs = 30_000): Promise<number> {
  while (!done()) {
    if (elapsedMs(since) > timeoutMs) throw new Error(`no ${what} within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
  return elapsedMs(since);
}

/** Writes one management command on a fresh connection; the reply is not awaited (the log says what happened). */
function management(socketPath: string, command: string): void {
  const socket = net.connect(socketPath, () => socket.end(`${command}\n`));
  socket.on('error', (error) => console.error(`management: ${error.message}`));
}

/** The shard of the client at `address`, from the server's latest line about it. */
function shardOf(server: LabProcess, address: string): number {
  const lines = [
    ...server.log().matchAll(new RegExp(`/${address.replace(/\./g, '\\.')}:\\d+ MULTI: primary virtual IP: .*shard (\\d+),`, 'g')),
  ];
  const last = lines[lines.length - 1];
  if (last === undefined) throw new Error(`no placement of ${address}`);
  return Number(last[1]);
}

interface Sample {
  serving: number;
  reconnect: number;
}

async function main(): Promise<void> {
  if (!canRunLab()) {
    console.log('shard-faults: skipped (needs root and /dev/net/tun for the network namespaces)');
    return;
  }
  const runs = benchRuns();
  const lab = VpnLab.create(2, 'faultbench-');
  try {
    const socket = path.join(lab.dir, 'mgmt.sock');
    const server = await lab.startShardvpn(
      `port 1194\nproto udp\ndev tun\ntopology subnet\nserver 10.172.0.0 255.255.255.0\nworkers 2\nduplicate-cn\nkeepalive 1 2\n` +
        `tls-crypt ${lab.keys.tlsCrypt}\n${lab.serverTlsLines()}management ${socket} unix\nverb 3\n`,
      'faults.conf',
      [],
      { SHARDVPN_FAULT_INJECTION: '1' },
    );
    await server.waitFor(/MANAGEMENT: unix domain socket listening on /, 5000);
    const client = `client\ndev tun\nproto udp\nremote 10.150.0.1 1194\nnobind\n${lab.clientTlsLines()}tls-crypt ${lab.keys.tlsCrypt}\nverb 3\n`;
    const clients = await Promise.all([0, 1].map((i) => lab.startOpenvpnClient(i, client)));
    const watched = clients[0]!;
    const samples: Record<'throw' | 'terminate' | 'SIGUSR1', Sample[]> = { throw: [], terminate: [], SIGUSR1: [] };

    for (let run = 0; run < runs; run++) {
      for (const kind of ['throw', 'terminate', 'SIGUSR1'] as const) {
        // Settled: client 0 placed and answering pings.
        await until('client 0 placed', () => count(server.log(), /primary virtual IP/g) > 0, process.hrtime.bigint(), 50);
        if (lab.ping(lab.clients[0]!, '10.172.0.1', 2) !== 2) throw new Error('client 0 does not ping before the fault');
        const shard = shardOf(server, clientUnderlay(0));
        const logFrom = server.log().length;
        const initsBefore = count(watched.log(), INIT);
        const serverInitsBefore = count(server.log(), INIT);
        const began = process.hrtime.bigint();
        if (kind === 'throw') management(socket, `shard-fault ${shard} throw`);
        else if (kind === 'terminate') management(socket, `shard-restart ${shard}`);
        else process.kill(server.child.pid!, 'SIGUSR1');
        const serving =
          kind === 'SIGUSR1'
            ? await until('server restart', () => count(server.log(), INIT) > serverInitsBefore, began, 2)
            : await until(
                `shard ${shard} replaced`,
                () => server.log().slice(logFrom).includes(`shard ${shard} replaced: serving again`),
                began,
                2,
              );
        const reconnect = await until('client 0 reconnected', () => count(watched.log(), INIT) > initsBefore, began, 20);
        samples[kind].push({ serving, reconnect });
        // What made the client restart, as openvpn logs it (e.g. SIGUSR1[soft,ping-restart]).
        const reason = [...watched.log().matchAll(/SIGUSR1\[[^\]]+\]/g)].pop()?.[0] ?? 'unknown';
        console.log(
          `run ${run + 1} ${kind}: serving again after ${serving.toFixed(1)} ms, client reconnected after ${reconnect.toFixed(0)} ms (${reason})`,
        );
        await sleep(500);
      }
    }

    const peer = samples.SIGUSR1;
    const peerServing = median(peer.map((s) => s.serving));
    const peerReconnect = median(peer.map((s) => s.reconnect));
    printTable(
      `Shard faults: medians of ${runs} (2 shards, 2 stock clients, keepalive 1 2), peer: SIGUSR1 restart of the whole server`,
      ['fault', 'socket unserved', 'client back', 'unserved / SIGUSR1', 'client back / SIGUSR1'],
      (['throw', 'terminate', 'SIGUSR1'] as const).map((kind) => {
        const serving = median(samples[kind].map((s) => s.serving));
        const reconnect = median(samples[kind].map((s) => s.reconnect));
        return [
          kind === 'SIGUSR1' ? 'SIGUSR1 (whole server)' : `shard ${kind}`,
          `${serving.toFixed(0)} ms`,
          `${(reconnect / 1000).toFixed(2)} s`,
          `${(serving / peerServing).toFixed(2)}x`,
          `${(reconnect / peerReconnect).toFixed(2)}x`,
        ];
      }),
    );
    await Promise.all(clients.map((c) => c.stop()));
    await server.stop();
  } finally {
    await lab.cleanup();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
