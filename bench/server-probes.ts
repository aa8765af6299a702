// What the flood and soak benchmarks read of a server while it runs: shardvpn's /metrics
// (scraped with curl inside the server namespace, summed over shards by label), the kernel's UDP
// counters of the server namespace (the same for either server), and ping output.
import { execFileSync } from 'node:child_process';

import type { NetworkNamespace } from '../lab/netns';

/** Every sample of a Prometheus text exposition: `name{labels}` -> value. */
export type MetricSamples = Map<string, number>;

export function scrapeMetrics(ns: NetworkNamespace, url: string): MetricSamples {
  const text = execFileSync('ip', ['netns', 'exec', ns.name, 'curl', '-sf', '--max-time', '20', url], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  const samples: MetricSamples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

/**
 * The samples of metric `name` summed by the value of label `by` (all shards together); a
 * metric without that label sums under ''.
 */
export function sumBy(samples: MetricSamples, name: string, by: string): Map<string, number> {
  const out = new Map<string, number>();
  const labelPattern = new RegExp(`${by}="([^"]*)"`);
  for (const [key, value] of samples) {
    if (key !== name && !key.startsWith(`${name}{`)) continue;
    const label = labelPattern.exec(key)?.[1] ?? '';
    out.set(label, (out.get(label) ?? 0) + value);
  }
  return out;
}

export function total(samples: MetricSamples, name: string): number {
  let sum = 0;
  for (const value of sumBy(samples, name, '_').values()) sum += value;
  return sum;
}

/** after - before for each key of `after` (a key absent before counts from 0). */
export function deltas(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, value] of after) out.set(key, value - (before.get(key) ?? 0));
  return out;
}

/** The `Udp:` line of /proc/net/snmp inside a namespace: InDatagrams, RcvbufErrors, ... */
export function udpCounters(ns: NetworkNamespace): Record<string, number> {
  const text = ns.exec('cat', ['/proc/net/snmp']);
  const lines = text.split('\n').filter((l) => l.startsWith('Udp:'));
  if (lines.length < 2) throw new Error('/proc/net/snmp has no Udp lines');
  const names = lines[0]!.split(/\s+/).slice(1);
  const values = lines[1]!.split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(names.map((n, i) => [n, values[i] ?? NaN]));
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export interface PingOutcome {
  sent: number;
  lost: number;
  rtts: number[];
}

/**
 * Parses the output of a `ping` stopped with SIGINT. The last `inFlight` echoes sent before the
 * stop may still have been on their way, so they count neither as sent nor as lost.
 */
export function parsePing(output: string, inFlight: number): PingOutcome {
  const replied = new Set<number>();
  const rtts: number[] = [];
  for (const m of output.matchAll(/icmp_seq=(\d+) ttl=\d+ time=([\d.]+) ms/g)) {
    if (replied.has(Number(m[1]))) continue;
    replied.add(Number(m[1]));
    rtts.push(Number(m[2]));
  }
  const transmitted = Number(/(\d+) packets transmitted/.exec(output)?.[1] ?? NaN);
  const sent = Math.max(0, transmitted - inFlight);
  let lost = 0;
  for (let seq = 1; seq <= sent; seq++) if (!replied.has(seq)) lost++;
  return { sent, lost, rtts };
}
