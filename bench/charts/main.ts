// `npm run bench:charts` (and the end of `npm run bench`): draws the charts from the records in
// bench/results into bench/ beside RESULTS.md. --results DIR and --out DIR point elsewhere.
// Exits 1 only when a record exists but is not valid; missing records just skip their charts.
import path from 'node:path';
import { parseArgs } from 'node:util';

import { RESULTS_DIR } from '../record';
import { renderCharts } from './charts';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { results: { type: 'string' }, out: { type: 'string' } } });
  const outcomes = await renderCharts({
    resultsDir: values.results ?? RESULTS_DIR,
    outDir: values.out ?? path.join(RESULTS_DIR, '..'),
  });
  if (outcomes.some((o) => o.status === 'invalid')) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
