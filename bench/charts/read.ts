// Reads a benchmark's record (bench/results/<bench>.json) for the charts. A missing file is
// 'missing' and a file that is not a record says what is wrong with it, so one absent or broken
// record skips its chart with a message instead of stopping the others.
import { existsSync, readFileSync } from 'node:fs';

import type { BenchRecord, Machine, Metric, Point, Series } from '../record';

export type ReadResult =
  { kind: 'ok'; record: BenchRecord } | { kind: 'missing'; file: string } | { kind: 'invalid'; file: string; reason: string };

class RecordError extends Error {}

type Json = Record<string, unknown>;

function object(value: unknown, where: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new RecordError(`${where} is not an object`);
  return value as Json;
}

function array(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) throw new RecordError(`${where} is not an array`);
  return value;
}

function string(value: unknown, where: string): string {
  if (typeof value !== 'string') throw new RecordError(`${where} is not a string`);
  return value;
}

function number(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new RecordError(`${where} is not a number`);
  return value;
}

function parseMachine(value: unknown): Machine {
  const m = object(value, 'machine');
  return {
    nproc: number(m.nproc, 'machine.nproc'),
    kernel: string(m.kernel, 'machine.kernel'),
    cpu: string(m.cpu, 'machine.cpu'),
    node: string(m.node, 'machine.node'),
  };
}

/** A point, or null where the run measured nothing (its median was written as null). */
function parsePoint(value: unknown, where: string): Point | null {
  const p = object(value, where);
  if (typeof p.x !== 'string' && typeof p.x !== 'number') throw new RecordError(`${where}.x is neither a string nor a number`);
  if (p.median === null) return null;
  const point: Point = {
    x: p.x,
    median: number(p.median, `${where}.median`),
    runs: array(p.runs, `${where}.runs`).map((r, i) => number(r, `${where}.runs[${i}]`)),
  };
  if (p.p99 !== undefined && p.p99 !== null) point.p99 = number(p.p99, `${where}.p99`);
  return point;
}

function parseSeries(value: unknown, where: string): Series {
  const s = object(value, where);
  const points = array(s.points, `${where}.points`)
    .map((p, i) => parsePoint(p, `${where}.points[${i}]`))
    .filter((p): p is Point => p !== null);
  return { name: string(s.name, `${where}.name`), points };
}

function parseMetric(value: unknown, where: string): Metric {
  const m = object(value, where);
  return {
    id: string(m.id, `${where}.id`),
    title: string(m.title, `${where}.title`),
    unit: string(m.unit, `${where}.unit`),
    xTitle: string(m.xTitle, `${where}.xTitle`),
    ...(m.samples === undefined ? {} : { samples: string(m.samples, `${where}.samples`) }),
    series: array(m.series, `${where}.series`).map((s, i) => parseSeries(s, `${where}.series[${i}]`)),
  };
}

export function parseRecord(value: unknown): BenchRecord {
  const r = object(value, 'the record');
  const sizes: Record<string, string | number> = {};
  for (const [key, size] of Object.entries(object(r.sizes, 'sizes'))) {
    if (typeof size !== 'string' && typeof size !== 'number') throw new RecordError(`sizes.${key} is neither a string nor a number`);
    sizes[key] = size;
  }
  return {
    bench: string(r.bench, 'bench'),
    date: string(r.date, 'date'),
    machine: parseMachine(r.machine),
    sizes,
    metrics: array(r.metrics, 'metrics').map((m, i) => parseMetric(m, `metrics[${i}]`)),
  };
}

export function readRecord(file: string): ReadResult {
  if (!existsSync(file)) return { kind: 'missing', file };
  try {
    return { kind: 'ok', record: parseRecord(JSON.parse(readFileSync(file, 'utf8'))) };
  } catch (error) {
    if (error instanceof RecordError || error instanceof SyntaxError) return { kind: 'invalid', file, reason: error.message };
    throw error;
  }
}
