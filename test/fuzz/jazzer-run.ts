// Runs one fuzz target under Jazzer.js for a bounded number of inputs, in a child process (libFuzzer
// runs once per process), seeded from test/fuzz/corpus/<target>/. New corpus entries go to a
// temporary directory that is removed afterwards, so the committed seeds stay small and reviewed;
// a finding is written to fuzz-findings/<target>-crash-<sha1> (or -timeout-, -oom-) for replay.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The repository root (this file runs from dist/test/fuzz/). */
export const ROOT = path.resolve(__dirname, '../../..');
export const FINDINGS_DIR = path.join(ROOT, 'fuzz-findings');
const CLI = path.join(ROOT, 'node_modules/@jazzer.js/core/dist/cli.js');
const COMPAT = path.join(__dirname, 'jazzer-compat.js');

/** Every target: dist/test/fuzz/targets/<name>.js exporting fuzz(data). */
export function targetNames(): string[] {
  return fs
    .readdirSync(path.join(__dirname, 'targets'))
    .filter((f) => f.endsWith('.js'))
    .map((f) => f.slice(0, -3))
    .sort();
}

export interface FuzzRunOptions {
  /** Inputs to run (libFuzzer -runs). */
  readonly runs: number;
  /** Longest input libFuzzer makes (-max_len); the seeds may be longer. */
  readonly maxLen?: number;
  /** A single input taking longer than this is a finding (a hang). */
  readonly timeoutS?: number;
  /** Resident memory above this is a finding (unbounded memory). */
  readonly rssLimitMb?: number;
  /** Stop after this many seconds even if fewer inputs ran (-max_total_time). */
  readonly maxSeconds?: number;
  /** Receives the fuzzer's output as it comes. */
  readonly onOutput?: (text: string) => void;
}

export interface FuzzRunResult {
  readonly target: string;
  /** The child's exit status: 0 when libFuzzer ran every input without a finding. */
  readonly status: number | null;
  readonly runs: number;
  readonly seconds: number;
  /** Highest resident memory libFuzzer reported, in MB. */
  readonly rssMb: number;
  /** Files written for findings in this run. */
  readonly artifacts: string[];
  /** The last lines of the fuzzer's output (the finding's report when there is one). */
  readonly tail: string;
}

export function runTarget(target: string, opts: FuzzRunOptions): Promise<FuzzRunResult> {
  const seeds = path.join(ROOT, 'test/fuzz/corpus', target);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `shardvpn-fuzz-${target}-`));
  fs.mkdirSync(FINDINGS_DIR, { recursive: true });
  const before = new Set(fs.readdirSync(FINDINGS_DIR));
  const args = [
    '-r',
    COMPAT,
    CLI,
    path.join(__dirname, 'targets', `${target}.js`),
    work,
    ...(fs.existsSync(seeds) ? [seeds] : []),
    '--sync',
    // Coverage feedback from shardvpn's own code only (not node_modules, not the harness).
    '--includes',
    path.join(ROOT, 'dist/src') + path.sep,
    '--timeout',
    String((opts.timeoutS ?? 10) * 1000),
    '--',
    `-runs=${opts.runs}`,
    `-max_len=${opts.maxLen ?? 4096}`,
    `-rss_limit_mb=${opts.rssLimitMb ?? 2048}`,
    `-artifact_prefix=${path.join(FINDINGS_DIR, `${target}-`)}`,
    '-print_final_stats=1',
    ...(opts.maxSeconds !== undefined ? [`-max_total_time=${opts.maxSeconds}`] : []),
  ];
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    // Interrupted (Ctrl-C, SIGTERM): stop this child by its pid too, then go the default way.
    const stop = (signal: NodeJS.Signals): void => {
      child.kill('SIGKILL');
      fs.rmSync(work, { recursive: true, force: true });
      process.kill(process.pid, signal);
    };
    const onSignal = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      stop(signal);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    let tail = '';
    let rssMb = 0;
    let runs = 0;
    let partial = '';
    const take = (chunk: Buffer): void => {
      const text = chunk.toString('utf8');
      opts.onOutput?.(text);
      tail = (tail + text).slice(-6000);
      // Whole lines only: a chunk may end in the middle of one.
      const lines = (partial + text).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        const rss = /rss: (\d+)Mb|stat::peak_rss_mb: (\d+)/.exec(line);
        if (rss) rssMb = Math.max(rssMb, Number(rss[1] ?? rss[2]));
        // libFuzzer's status lines (#N NEW/pulse/DONE ...) count inputs; the final stats may not be
        // printed when -max_total_time ends the run.
        const done = /^#(\d+)\s|stat::number_of_executed_units: (\d+)/.exec(line);
        if (done) runs = Math.max(runs, Number(done[1] ?? done[2]));
      }
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', reject);
    child.on('close', (status) => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      fs.rmSync(work, { recursive: true, force: true });
      // libFuzzer names the file it wrote (it may already exist from an earlier run).
      const written = [...tail.matchAll(/Test unit written to (\S+)/g)].map((m) => m[1]!);
      const artifacts = [
        ...new Set([
          ...written,
          ...fs
            .readdirSync(FINDINGS_DIR)
            .filter((f) => !before.has(f))
            .map((f) => path.join(FINDINGS_DIR, f)),
        ]),
      ];
      resolve({ target, status, runs, seconds: (Date.now() - started) / 1000, rssMb, artifacts, tail });
    });
  });
}
