// The charts RESULTS.md shows: which benchmark record and metric each one draws, how, and the
// SVG file it is written to (beside RESULTS.md). Each compares shardvpn with openvpn 2.6.
import type { TopLevelSpec } from 'vega-lite' with { 'resolution-mode': 'import' };

import type { BenchRecord, Metric } from '../record';
import { barSpec, lineSpec, panelSpec } from './specs';

export interface ChartDef {
  /** The SVG's file name. */
  svg: string;
  /** The record it is drawn from: bench/results/<bench>.json. */
  bench: string;
  /** The metric of that record it draws. */
  metric: string;
  build(record: BenchRecord, metric: Metric): TopLevelSpec;
}

export const CHARTS: readonly ChartDef[] = [
  { svg: 'chart-throughput.svg', bench: 'throughput', metric: 'mbits', build: barSpec },
  { svg: 'chart-latency.svg', bench: 'latency', metric: 'rtt_ms', build: panelSpec },
  { svg: 'chart-handshakes.svg', bench: 'handshakes', metric: 'connects_per_s', build: lineSpec },
  { svg: 'chart-memory.svg', bench: 'capacity', metric: 'rss_per_client_kib', build: barSpec },
];
