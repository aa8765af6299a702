// Runs every benchmark in bench/ one after another (each in its own process, so one cannot
// disturb another's heap or threads) and passes BENCH_RUNS through. `npm run bench [names...]`.
// Then draws the charts (bench/charts/main.ts) from whichever records in bench/results exist.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';

const wanted = process.argv.slice(2);
const benches = readdirSync(__dirname)
  .filter((file) => file.endsWith('.bench.js'))
  .filter((file) => wanted.length === 0 || wanted.some((name) => file.startsWith(name)))
  .sort();
let failed = 0;
for (const file of benches) {
  console.log(`\n== ${file.replace('.bench.js', '')}`);
  // A safety net only: the soak holds its clients 10 minutes per server by default (SOAK_S).
  const result = spawnSync(process.execPath, [path.join(__dirname, file)], { stdio: 'inherit', timeout: 60 * 60_000 });
  if (result.status !== 0) {
    failed++;
    console.error(`${file} failed (exit ${result.status ?? result.signal})`);
  }
}
console.log('\n== charts');
const charts = spawnSync(process.execPath, [path.join(__dirname, 'charts', 'main.js')], { stdio: 'inherit', timeout: 5 * 60_000 });
if (charts.status !== 0) {
  failed++;
  console.error(`charts failed (exit ${charts.status ?? charts.signal})`);
}
process.exit(failed === 0 ? 0 : 1);
