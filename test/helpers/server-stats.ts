// SIGUSR2 statistics of a running shardvpn server, parsed from its log (logStatistics in
// src/main/server/server.ts): one line per client, one `shard N: name=value ...` line per shard, a `tun:`
// line last.
import type { LabProcess } from '../../lab/vpn-lab';

export interface ServerStatistics {
  /** The per-client lines: CN,real address,virtual address,bytes in,bytes out,peer-id,shard. */
  clients: string[];
  shards: Record<string, number>[];
  /** Counters summed over the shards. */
  total: Record<string, number>;
  /** The main thread's `tun:` line (name value pairs; names as logged, e.g. `coalesced-writes`). */
  tun: Record<string, number>;
}

/** Sends SIGUSR2 and resolves with the statistics the server logs in answer. */
export async function serverStatistics(server: LabProcess, timeoutMs = 5000): Promise<ServerStatistics> {
  const from = server.log().length;
  if (server.child.pid === undefined) throw new Error('server has no pid');
  process.kill(server.child.pid, 'SIGUSR2');
  const until = Date.now() + timeoutMs;
  let text;
  const tun: Record<string, number> = {};
  for (;;) {
    text = server.log().slice(from);
    const line = / tun: (read .*)\n/.exec(text);
    if (line !== null) {
      const words = line[1]!.split(' ');
      for (let i = 0; i + 1 < words.length; i += 2) tun[words[i]!] = Number(words[i + 1]);
      text = text.slice(0, line.index);
      break;
    }
    if (Date.now() > until || server.exited())
      throw new Error(`no SIGUSR2 statistics within ${timeoutMs} ms:\n${server.log().slice(-2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const clients: string[] = [];
  const shards: Record<string, number>[] = [];
  const total: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const shard = / shard (\d+): (linkBytesIn=.*)$/.exec(line);
    if (shard !== null) {
      const counters: Record<string, number> = {};
      for (const pair of shard[2]!.split(' ')) {
        const [name, value] = pair.split('=');
        if (name === undefined || value === undefined) continue;
        counters[name] = Number(value);
        total[name] = (total[name] ?? 0) + Number(value);
      }
      shards[Number(shard[1])] = counters;
    } else if (/,peer-id \d+,shard \d+$/.test(line)) {
      clients.push(line.replace(/^\S+ \S+ /, ''));
    }
  }
  return { clients, shards, total, tun };
}
