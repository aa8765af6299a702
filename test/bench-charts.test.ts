// The benchmark charts: records written by bench/record.ts into a temporary folder (fixtures made
// here, not measurements) are drawn to SVG by bench/charts; the SVG must be well-formed XML that
// names both contenders, the axis titles and the run, and draw one bar per measured point.
// Missing and broken records are reported per chart, and the command still draws the others.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { DOMParser, type Document, type Element } from '@xmldom/xmldom';

import { renderCharts } from '../bench/charts/charts';
import { readRecord } from '../bench/charts/read';
import { point, writeRecord, type Metric } from '../bench/record';

const MAIN = path.join(__dirname, '..', 'bench', 'charts', 'main.js');
const OPENVPN = 'openvpn 2.6 (fixture)';
const SHARDVPN = 'shardvpn workers 2 (fixture)';
const SHARDVPN_B = 'shardvpn server + openvpn client (fixture)';

let dir: string;
before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'bench-charts-test-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const folder = (name: string): string => path.join(dir, name);

const quiet = (): ((line: string) => void) => () => {};

/** Writes the four records the charts read, with made-up figures, into `results`. */
function writeFixtures(results: string): void {
  const categories = (xTitle: string, xs: string[], title: string, unit: string, names: string[], id: string): Metric => ({
    id,
    title,
    unit,
    xTitle,
    series: names.map((name, i) => ({ name, points: xs.map((x, j) => point(x, [100 + 10 * i + j, 102 + 10 * i + j, 98 + 10 * i + j])) })),
  });
  writeRecord(
    {
      bench: 'throughput',
      sizes: { BENCH_RUNS: 3, BENCH_SECONDS: 2 },
      metrics: [
        categories(
          'cipher, link, streams',
          ['AES-256-GCM UDP, 1 stream', 'AES-256-GCM UDP, 4 streams'],
          'Throughput',
          'Mbit/s',
          [OPENVPN, SHARDVPN_B],
          'mbits',
        ),
      ],
    },
    results,
  );
  writeRecord(
    {
      bench: 'latency',
      sizes: { BENCH_PINGS: 5 },
      metrics: [
        {
          id: 'rtt_ms',
          title: 'Ping RTT',
          unit: 'ms',
          xTitle: 'condition',
          samples: 'pings',
          series: [OPENVPN, SHARDVPN_B].map((name) => ({
            name,
            points: [point('idle', [0.3, 0.4, 0.35, 0.5, 0.31], { p99: 0.5 }), point('iperf3 load', [3, 4, 5, 6, 7], { p99: 7 })],
          })),
        },
      ],
    },
    results,
  );
  writeRecord(
    {
      bench: 'handshakes',
      sizes: { BENCH_CLIENTS: '10,100,1000' },
      metrics: [
        {
          id: 'connects_per_s',
          title: 'Handshakes per second',
          unit: 'connections/s',
          xTitle: 'clients started at once',
          series: [
            { name: SHARDVPN, points: [point(10, [200]), point(100, [240]), point(1000, [250])] },
            // openvpn connected nobody at 1000 in this fixture: NaN is written as null and left out.
            { name: OPENVPN, points: [point(10, [90]), point(100, [110]), point(1000, [NaN])] },
          ],
        },
      ],
    },
    results,
  );
  writeRecord(
    {
      bench: 'capacity',
      sizes: { BENCH_IDLE_CLIENTS: 500 },
      metrics: [categories('clients held', ['500 clients'], 'Memory per idle client', 'KiB', [SHARDVPN, OPENVPN], 'rss_per_client_kib')],
    },
    results,
  );
}

/** Parses strictly: any XML error (not a warning) throws. */
function parseSvg(file: string): Document {
  const parser = new DOMParser({
    onError: (level, message) => {
      if (level !== 'warning') throw new Error(`${file}: ${level}: ${message}`);
    },
  });
  const doc = parser.parseFromString(readFileSync(file, 'utf8'), 'image/svg+xml');
  assert.equal(doc.documentElement?.tagName, 'svg');
  assert.equal(doc.documentElement?.getAttribute('xmlns'), 'http://www.w3.org/2000/svg');
  return doc;
}

/** The <g> elements that carry every one of `classes`. */
function groups(doc: Document, ...classes: string[]): Element[] {
  return Array.from(doc.getElementsByTagName('g')).filter((g) => {
    const has = (g.getAttribute('class') ?? '').split(' ');
    return classes.every((c) => has.includes(c));
  });
}

/** The text of every <text> inside groups of class `role` (axis titles, legend labels, ...). */
function texts(doc: Document, role: string): string[] {
  return groups(doc, role).flatMap((g) => Array.from(g.getElementsByTagName('text')).map((t) => t.textContent ?? ''));
}

test('each chart is drawn from its record: well-formed SVG naming shardvpn, openvpn, the axes and the run', async () => {
  const results = folder('results');
  const out = folder('svg');
  writeFixtures(results);
  const outcomes = await renderCharts({ resultsDir: results, outDir: out, log: quiet() });
  assert.deepEqual(
    outcomes.map((o) => [o.svg, o.status]),
    [
      ['chart-throughput.svg', 'written'],
      ['chart-latency.svg', 'written'],
      ['chart-handshakes.svg', 'written'],
      ['chart-memory.svg', 'written'],
    ],
  );
  // x and y: the axis titles (latency has a panel per condition, titled above them, each with its own y axis).
  const expected: Record<string, { legend: string[]; x: string; y: string; bars?: number; panels?: number }> = {
    'chart-throughput.svg': { legend: [OPENVPN, SHARDVPN_B], x: 'cipher, link, streams', y: 'Throughput (Mbit/s)', bars: 4 },
    'chart-latency.svg': { legend: [OPENVPN, SHARDVPN_B], x: 'condition', y: 'Ping RTT (ms)', bars: 4, panels: 2 },
    'chart-handshakes.svg': { legend: [SHARDVPN, OPENVPN], x: 'clients started at once', y: 'Handshakes per second (connections/s)' },
    'chart-memory.svg': { legend: [SHARDVPN, OPENVPN], x: 'clients held', y: 'Memory per idle client (KiB)', bars: 2 },
  };
  for (const [svg, want] of Object.entries(expected)) {
    const doc = parseSvg(path.join(out, svg));
    assert.deepEqual(texts(doc, 'role-legend-label'), want.legend, svg);
    if (want.panels === undefined) assert.deepEqual(texts(doc, 'role-axis-title').sort(), [want.x, want.y].sort(), svg);
    else {
      assert.deepEqual(texts(doc, 'role-axis-title'), Array<string>(want.panels).fill(want.y), svg);
      assert.deepEqual(texts(doc, 'role-column-title'), [want.x], svg);
    }
    // The subtitle names the run: its date, the machine and the sizes it ran at.
    const subtitle = texts(doc, 'role-title-subtitle').join(' ');
    assert.match(subtitle, /^\d{4}-\d\d-\d\d \d\d:\d\d UTC, \d+ cores, /, svg);
    assert.match(subtitle, /BENCH_/, svg);
    if (want.bars !== undefined) {
      // The bars are the first layer; the p99 ticks are rects too, in a later one.
      const bars = groups(doc, 'mark-rect', want.panels === undefined ? 'layer_0_marks' : 'child_layer_0_marks').flatMap((g) =>
        Array.from(g.getElementsByTagName('path')),
      );
      assert.equal(bars.length, want.bars, `${svg}: one bar per series and category`);
    }
  }
  // Throughput has 3 runs a point: shown as dots. Latency has 5 pings a point and a p99 tick.
  const throughput = parseSvg(path.join(out, 'chart-throughput.svg'));
  assert.match(texts(throughput, 'role-title-subtitle').join(' '), /bars: medians of 3 runs, dots: the individual runs/);
  const dots = groups(throughput, 'mark-symbol', 'role-mark').flatMap((g) => Array.from(g.getElementsByTagName('path')));
  assert.equal(dots.length, 12, 'a dot for each of 3 runs of 4 points');
  const latency = parseSvg(path.join(out, 'chart-latency.svg'));
  assert.match(texts(latency, 'role-title-subtitle').join(' '), /bars: medians of 5 pings, dots: the individual pings, ticks: p99/);
  assert.deepEqual(texts(latency, 'role-column-header'), ['idle', 'iperf3 load']);
  const ticks = groups(latency, 'mark-rect', 'child_layer_2_marks').flatMap((g) => Array.from(g.getElementsByTagName('path')));
  assert.equal(ticks.length, 4, 'a p99 tick for each bar');
  // The handshake chart: a line per server; openvpn's unmeasured point was left out, not drawn at 0.
  const handshakes = parseSvg(path.join(out, 'chart-handshakes.svg'));
  const lines = groups(handshakes, 'mark-line').flatMap((g) => Array.from(g.getElementsByTagName('path')));
  assert.equal(lines.length, 2);
  // The x axis is labelled with the measured client counts.
  const labels = new Set(texts(handshakes, 'role-axis-label'));
  for (const count of ['10', '100', '1000']) assert.ok(labels.has(count), count);
});

test('a NaN figure is written as null and read back as no point', () => {
  const results = folder('nan');
  writeFixtures(results);
  const raw = JSON.parse(readFileSync(path.join(results, 'handshakes.json'), 'utf8')) as {
    metrics: { series: { name: string; points: { x: number; median: number | null }[] }[] }[];
  };
  const openvpn = raw.metrics[0]!.series.find((s) => s.name === OPENVPN)!;
  assert.deepEqual(
    openvpn.points.map((p) => p.median),
    [90, 110, null],
  );
  const read = readRecord(path.join(results, 'handshakes.json'));
  assert.equal(read.kind, 'ok');
  if (read.kind !== 'ok') return;
  assert.deepEqual(
    read.record.metrics[0]!.series.find((s) => s.name === OPENVPN)!.points.map((p) => p.x),
    [10, 100],
  );
  assert.equal(read.record.machine.nproc, os.availableParallelism());
});

test('missing records skip their charts with a message; the command exits 0', async () => {
  const empty = folder('empty');
  const out = folder('svg-none');
  const lines: string[] = [];
  const outcomes = await renderCharts({ resultsDir: empty, outDir: out, log: (line) => lines.push(line) });
  assert.deepEqual(
    outcomes.map((o) => o.status),
    ['missing', 'missing', 'missing', 'missing'],
  );
  for (const bench of ['throughput', 'latency', 'handshakes', 'capacity'])
    assert.ok(
      lines.some((l) => l.includes('skipped, no data') && l.includes(path.join(empty, `${bench}.json`))),
      `${bench}: ${lines.join('\n')}`,
    );
  assert.equal(existsSync(out), false, 'no SVG folder made when nothing was drawn');

  const run = spawnSync(process.execPath, [MAIN, '--results', empty, '--out', out], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(run.status, 0, run.stderr);
  assert.equal((run.stdout.match(/skipped, no data/g) ?? []).length, 4, run.stdout);
});

test('a broken record is reported by name and reason, the other charts are still drawn, and the command exits 1', () => {
  const results = folder('broken');
  const out = folder('svg-broken');
  writeFixtures(results);
  writeFileSync(path.join(results, 'latency.json'), '{"bench": "latency", "date": ');
  const capacity = JSON.parse(readFileSync(path.join(results, 'capacity.json'), 'utf8')) as {
    metrics: { series: { points: unknown }[] }[];
  };
  capacity.metrics[0]!.series[0]!.points = 'many';
  writeFileSync(path.join(results, 'capacity.json'), JSON.stringify(capacity));
  // A record without the charted metric is missing data, not broken.
  writeRecord({ bench: 'throughput', sizes: {}, metrics: [] }, results);

  const run = spawnSync(process.execPath, [MAIN, '--results', results, '--out', out], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(run.status, 1, run.stdout + run.stderr);
  assert.match(run.stdout, /chart-latency\.svg: skipped, .*latency\.json is not a benchmark record: .*JSON/);
  assert.match(
    run.stdout,
    /chart-memory\.svg: skipped, .*capacity\.json is not a benchmark record: metrics\[0\]\.series\[0\]\.points is not an array/,
  );
  assert.match(run.stdout, /chart-throughput\.svg: skipped, no data: .*throughput\.json has no measured 'mbits'/);
  assert.match(run.stdout, /chart-handshakes\.svg: written/);
  parseSvg(path.join(out, 'chart-handshakes.svg'));
  assert.equal(existsSync(path.join(out, 'chart-latency.svg')), false);
});
