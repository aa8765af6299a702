// Renders every chart of the catalogue whose record exists: reads bench/results/<bench>.json,
// builds the spec, writes the SVG. A chart whose record or metric is missing is skipped with a
// message; a record that is not valid is reported as such; neither stops the other charts.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { CHARTS, type ChartDef } from './catalog';
import { readRecord } from './read';
import { renderSvg } from './render';
import { hasPoints } from './specs';

export type ChartOutcome =
  { svg: string; status: 'written'; file: string } | { svg: string; status: 'missing' | 'invalid'; reason: string };

export interface RenderOptions {
  /** Where the records are (bench/results). */
  resultsDir: string;
  /** Where the SVGs go (bench/, beside RESULTS.md). */
  outDir: string;
  charts?: readonly ChartDef[];
  log?: (line: string) => void;
}

export async function renderCharts(options: RenderOptions): Promise<ChartOutcome[]> {
  const log = options.log ?? ((line: string) => console.log(line));
  const outcomes: ChartOutcome[] = [];
  for (const chart of options.charts ?? CHARTS) {
    const outcome = await renderOne(chart, options);
    outcomes.push(outcome);
    log(outcome.status === 'written' ? `${chart.svg}: written to ${outcome.file}` : `${chart.svg}: skipped, ${outcome.reason}`);
  }
  return outcomes;
}

async function renderOne(chart: ChartDef, options: RenderOptions): Promise<ChartOutcome> {
  const file = path.join(options.resultsDir, `${chart.bench}.json`);
  const read = readRecord(file);
  if (read.kind === 'missing')
    return { svg: chart.svg, status: 'missing', reason: `no data: ${file} does not exist (run npm run bench -- ${chart.bench})` };
  if (read.kind === 'invalid') return { svg: chart.svg, status: 'invalid', reason: `${file} is not a benchmark record: ${read.reason}` };
  const metric = read.record.metrics.find((m) => m.id === chart.metric);
  if (metric === undefined || !hasPoints(metric))
    return { svg: chart.svg, status: 'missing', reason: `no data: ${file} has no measured '${chart.metric}'` };
  const svg = await renderSvg(chart.build(read.record, metric));
  mkdirSync(options.outDir, { recursive: true });
  const out = path.join(options.outDir, chart.svg);
  writeFileSync(out, svg + '\n');
  return { svg: chart.svg, status: 'written', file: out };
}
