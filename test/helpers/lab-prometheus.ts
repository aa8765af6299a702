// A real Prometheus (Debian's 2.42) inside a lab namespace, scraping endpoints there every second,
// and its HTTP query API as the tests use it. The queries run inside the namespace too (node's
// fetch in a child process; no curl needed). stop() kills it by PID and removes its storage.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { runNodeIn, type NetworkNamespace } from '../../lab/netns';
import type { LabProcess, VpnLab } from '../../lab/vpn-lab';

// Fetches one URL and prints the body; exit status 1 unless the answer was 2xx.
const GET =
  'fetch(process.argv[1]).then(async (r) => { process.stdout.write(await r.text()); process.exit(r.ok ? 0 : 1); }, (e) => { console.error(String(e)); process.exit(1); });';

/** One series of an instant query's answer. */
export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

/** The query API's answer: status 'error' with `error` for a query Prometheus refuses. */
export interface QueryAnswer {
  status: string;
  error?: string;
  data?: { resultType: string; result: Sample[] };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class LabPrometheus {
  private constructor(
    private readonly ns: NetworkNamespace,
    private readonly process: LabProcess,
    private readonly tsdb: string,
    private readonly url: string,
  ) {}

  /** Starts Prometheus in `ns` scraping `targets` (host:port) every second; see ready(). */
  static start(lab: VpnLab, ns: NetworkNamespace, targets: readonly string[], port = 9090): LabPrometheus {
    const tsdb = mkdtempSync(path.join(os.tmpdir(), 'shardvpn-prometheus-'));
    const list = targets.map((t) => `'${t}'`).join(', ');
    const config = lab.file(
      'prometheus.yml',
      `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: shardvpn\n    static_configs:\n      - targets: [${list}]\n`,
    );
    const process = lab.spawn(
      ns,
      'prometheus',
      [`--config.file=${config}`, `--storage.tsdb.path=${tsdb}`, `--web.listen-address=127.0.0.1:${port}`],
      'prometheus',
    );
    return new LabPrometheus(ns, process, tsdb, `http://127.0.0.1:${port}`);
  }

  /** Waits until Prometheus serves and every target is up (its first scrape comes 5-8 s after launch). */
  async ready(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await this.process.waitFor(/Server is ready to receive web requests/, timeoutMs);
    for (;;) {
      const targets = (await this.get('/api/v1/targets')) as { data: { activeTargets: { health: string }[] } };
      const active = targets.data.activeTargets;
      if (active.length > 0 && active.every((target) => target.health === 'up')) return;
      if (Date.now() > deadline) throw new Error(`the scrape targets never came up: ${JSON.stringify(targets)}`);
      await sleep(500);
    }
  }

  /** GET `pathAndQuery` of the HTTP API, parsed as JSON; throws on a non-2xx answer. */
  async get(pathAndQuery: string): Promise<unknown> {
    const url = `${this.url}${pathAndQuery}`;
    const result = await runNodeIn(this.ns, '-e', [GET, url], 10_000);
    if (result.code !== 0) throw new Error(`GET ${url}: exit ${result.code}: ${result.stderr}${result.stdout}`);
    return JSON.parse(result.stdout) as unknown;
  }

  /** An instant query, answered as it is, errors included (a refused query answers HTTP 400). */
  async instant(promql: string): Promise<QueryAnswer> {
    const url = `${this.url}/api/v1/query?query=${encodeURIComponent(promql)}`;
    const result = await runNodeIn(this.ns, '-e', [GET, url], 10_000);
    try {
      return JSON.parse(result.stdout) as QueryAnswer;
    } catch {
      throw new Error(`GET ${url}: exit ${result.code}: ${result.stderr}${result.stdout}`);
    }
  }

  /** An instant query that must return one sample (use sum() etc.); null while it returns none. */
  async query(promql: string): Promise<number | null> {
    const answer = await this.instant(promql);
    assert.equal(answer.status, 'success', JSON.stringify(answer));
    const sample = answer.data?.result[0];
    return sample === undefined ? null : Number(sample.value[1]);
  }

  /** Polls a query until `accept` holds; returns the last value, failing with it after `timeoutMs`. */
  async until(promql: string, accept: (value: number) => boolean, timeoutMs = 15_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    let last: number | null;
    for (;;) {
      last = await this.query(promql);
      if (last !== null && accept(last)) return last;
      if (Date.now() > deadline) throw new Error(`${promql}: last value ${last} not accepted within ${timeoutMs} ms`);
      await sleep(500);
    }
  }

  /** Every metric name Prometheus holds series of. */
  async metricNames(): Promise<Set<string>> {
    const body = (await this.get('/api/v1/label/__name__/values')) as { data: string[] };
    return new Set(body.data);
  }

  /** Kills Prometheus by its PID and removes its storage. */
  async stop(): Promise<void> {
    try {
      await this.process.stop('SIGTERM', 5000);
    } finally {
      rmSync(this.tsdb, { recursive: true, force: true });
    }
  }
}
