// Vega-Lite specs for one metric of a benchmark record: grouped bars of the medians (with every
// individual run as a dot, or the p99 as a tick where the record has one) for categories, the
// same bars in one panel per category where the categories' scales differ too much to share an
// axis, and lines over a size (client counts). Each chart's subtitle names the run the data came from.
import type { Config, TopLevelSpec } from 'vega-lite' with { 'resolution-mode': 'import' };

import type { BenchRecord, Metric } from '../record';

/** openvpn in orange, shardvpn's set-ups in blues and greens, in the order the record lists them. */
const OPENVPN_COLOUR = '#e8772e';
const SHARDVPN_COLOURS = ['#2f6fad', '#4aa3a8', '#5b9e47', '#7a5fa8'];

function colours(series: readonly string[]): string[] {
  let next = 0;
  return series.map((name) =>
    /shardvpn/i.test(name) ? SHARDVPN_COLOURS[next++ % SHARDVPN_COLOURS.length]! : /openvpn/i.test(name) ? OPENVPN_COLOUR : '#888888',
  );
}

/** The run the data came from: ["2026-12-06 22:50 UTC, 2 cores, Linux 6.18", "BENCH_RUNS=3, ..."]. */
export function runLines(record: BenchRecord): string[] {
  const date = record.date.replace('T', ' ').slice(0, 16) + ' UTC';
  const sizes = Object.entries(record.sizes)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  return [`${date}, ${record.machine.nproc} cores, ${record.machine.kernel}`, ...(sizes === '' ? [] : [sizes])];
}

/** One layer of a layered chart, as Vega-Lite types it. */
type Layer = Extract<TopLevelSpec, { layer: unknown }>['layer'][number];

/** The most individual runs a bar shows as dots. */
const MAX_DOTS = 20;

const yTitle = (metric: Metric): string => `${metric.title} (${metric.unit})`;

interface Rows {
  series: string[];
  medians: Array<{ series: string; x: string | number; median: number; p99?: number }>;
  runs: Array<{ series: string; x: string | number; run: number }>;
  xs: Array<string | number>;
}

function rows(metric: Metric): Rows {
  const out: Rows = { series: [], medians: [], runs: [], xs: [] };
  for (const s of metric.series) {
    if (s.points.length === 0) continue;
    out.series.push(s.name);
    for (const p of s.points) {
      if (!out.xs.includes(p.x)) out.xs.push(p.x);
      out.medians.push({ series: s.name, x: p.x, median: p.median, ...(p.p99 === undefined ? {} : { p99: p.p99 }) });
      for (const run of p.runs) out.runs.push({ series: s.name, x: p.x, run });
    }
  }
  return out;
}

/** The most runs behind any one point. */
function mostRuns(r: Rows): number {
  return Math.max(0, ...r.medians.map((m) => r.runs.filter((run) => run.series === m.series && run.x === m.x).length));
}

/** True when the metric has at least one point to draw. */
export function hasPoints(metric: Metric): boolean {
  return metric.series.some((s) => s.points.length > 0);
}

function colour(r: Rows): { field: string; type: 'nominal'; title: null; sort: string[]; scale: { domain: string[]; range: string[] } } {
  return { field: 'series', type: 'nominal', title: null, sort: r.series, scale: { domain: r.series, range: colours(r.series) } };
}

interface Common {
  $schema: string;
  title: { text: string; subtitle: string[]; anchor: 'start'; subtitleFontSize: number };
  background: string;
  config: Config;
}

/** Title, the run the data came from and what the marks mean (`key`), and the shared look. */
function common(record: BenchRecord, metric: Metric, key: string): Common {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: metric.title, subtitle: [...runLines(record), key], anchor: 'start', subtitleFontSize: 10 },
    background: 'white',
    config: { legend: { orient: 'bottom', direction: 'vertical', labelLimit: 400 }, axis: { labelLimit: 220 } },
  };
}

/** Which marks a bar chart adds to its bars, and the subtitle line that says what they mean. */
function marks(metric: Metric, r: Rows): { key: string; showRuns: boolean; p99: boolean } {
  const samples = metric.samples ?? 'runs';
  // Dots for the runs where there are several but few (throughput); 200 pings a bar would only blur it.
  const most = mostRuns(r);
  const showRuns = most > 1 && most <= MAX_DOTS;
  const p99 = r.medians.some((m) => m.p99 !== undefined);
  const bars = most <= 1 ? 'bars: one run each' : `bars: medians of ${most} ${samples}`;
  const key = [bars, ...(showRuns ? [`dots: the individual ${samples}`] : []), ...(p99 ? ['ticks: p99'] : [])].join(', ');
  return { key, showRuns, p99 };
}

/**
 * Grouped bars: one group per category (cipher and streams, idle or loaded, ...), one bar per
 * series at its median; dots for the individual runs when there are few, a tick for the p99.
 */
export function barSpec(record: BenchRecord, metric: Metric): TopLevelSpec {
  const r = rows(metric);
  // Categories such as "AES-256-GCM UDP, 1 stream" break into lines at their commas.
  const x = {
    field: 'x',
    type: 'nominal',
    title: metric.xTitle,
    sort: r.xs.map(String),
    axis: { labelAngle: 0, labelExpr: "split(datum.label, ', ')" },
  } as const;
  const xOffset = { field: 'series', type: 'nominal', sort: r.series } as const;
  const { key, showRuns, p99 } = marks(metric, r);
  return {
    ...common(record, metric, key),
    width: { step: Math.max(14, Math.round(90 / Math.max(1, r.series.length))) },
    height: 260,
    layer: [
      {
        data: { values: r.medians },
        mark: { type: 'bar', tooltip: true },
        encoding: { x, xOffset, y: { field: 'median', type: 'quantitative', title: yTitle(metric) }, color: colour(r) },
      },
      ...(showRuns
        ? [
            {
              data: { values: r.runs },
              mark: { type: 'point', filled: true, size: 14, color: '#222222', opacity: 0.7 },
              encoding: { x, xOffset, y: { field: 'run', type: 'quantitative' } },
            } satisfies Layer,
          ]
        : []),
      ...(p99
        ? [
            {
              data: { values: r.medians.filter((m) => m.p99 !== undefined) },
              mark: { type: 'tick', color: '#222222', thickness: 2 },
              encoding: { x, xOffset, y: { field: 'p99', type: 'quantitative' } },
            } satisfies Layer,
          ]
        : []),
    ],
  };
}

/**
 * Bars in one panel per category, each panel with its own y scale: for figures that differ by
 * orders of magnitude between categories (ping RTT idle and under load), where one shared scale
 * would flatten the smaller ones to nothing.
 */
export function panelSpec(record: BenchRecord, metric: Metric): TopLevelSpec {
  const r = rows(metric);
  const { key, showRuns, p99 } = marks(metric, r);
  const values = [...r.medians.map((m) => ({ ...m, kind: 'median' })), ...(showRuns ? r.runs.map((run) => ({ ...run, kind: 'run' })) : [])];
  const x = { field: 'series', type: 'nominal', sort: r.series, axis: null } as const;
  const y = { type: 'quantitative', title: yTitle(metric) } as const;
  return {
    ...common(record, metric, key),
    data: { values },
    facet: { column: { field: 'x', type: 'nominal', title: metric.xTitle, sort: r.xs.map(String), header: { labelFontSize: 11 } } },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: { step: 26 },
      height: 240,
      layer: [
        {
          transform: [{ filter: "datum.kind === 'median'" }],
          mark: { type: 'bar', tooltip: true },
          encoding: { x, y: { ...y, field: 'median' }, color: colour(r) },
        },
        ...(showRuns
          ? [
              {
                transform: [{ filter: "datum.kind === 'run'" }],
                mark: { type: 'point', filled: true, size: 14, color: '#222222', opacity: 0.7 },
                encoding: { x, y: { ...y, field: 'run' } },
              } satisfies Layer,
            ]
          : []),
        ...(p99
          ? [
              {
                transform: [{ filter: "datum.kind === 'median' && isValid(datum.p99)" }],
                mark: { type: 'tick', color: '#222222', thickness: 2 },
                encoding: { x, y: { ...y, field: 'p99' } },
              } satisfies Layer,
            ]
          : []),
      ],
    },
  };
}

/** Lines over a size (the number of clients): one line per series through its medians. */
export function lineSpec(record: BenchRecord, metric: Metric): TopLevelSpec {
  const r = rows(metric);
  const xs = r.xs.filter((v): v is number => typeof v === 'number').sort((a, b) => a - b);
  const domain = [xs[0]!, xs[xs.length - 1]!];
  const logScale = xs.length > 1 && xs[0]! > 0 && xs[xs.length - 1]! / xs[0]! >= 10;
  const most = mostRuns(r);
  const key = most <= 1 ? 'points: one run each' : `points: medians of ${most} ${metric.samples ?? 'runs'}`;
  return {
    ...common(record, metric, key),
    width: 420,
    height: 260,
    data: { values: r.medians },
    mark: { type: 'line', point: { filled: true, size: 50 }, tooltip: true },
    encoding: {
      x: {
        field: 'x',
        type: 'quantitative',
        title: metric.xTitle,
        scale: logScale ? { type: 'log', domain, nice: false } : { domain, nice: false, zero: false },
        axis: { values: xs, format: 'd' },
      },
      y: { field: 'median', type: 'quantitative', title: yTitle(metric) },
      color: colour(r),
    },
  };
}
