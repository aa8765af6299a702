// trimHeap(): the free pages in the middle of the C heap go back to the kernel; shrinkJsHeap():
// a V8 heap grown by garbage is collected and given back without waiting for an allocation (the
// server does both once a minute; bench/soak.bench.ts measures what it saves over an hour of
// renegotiations).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';

const PROBE = path.join(__dirname, 'fixtures', 'heap-trim-probe.js');
const SHRINK_PROBE = path.join(__dirname, 'fixtures', 'heap-shrink-probe.js');
const MiB = 1 << 20;

test('trimHeap releases the freed chunks of the C heap that free() alone keeps in RSS', () => {
  const out = execFileSync(process.execPath, [PROBE], { encoding: 'utf8' });
  const { before, after, released, kept } = JSON.parse(out) as { before: number; after: number; released: boolean; kept: number };
  assert.equal(kept, 1500);
  assert.equal(released, true, out);
  // 1,500 freed buffers of 64 KiB are 94 MiB; each leaves 15 whole free pages of 16 to release.
  assert.ok(before - after >= 60 * MiB, `RSS ${(before / MiB).toFixed(1)} -> ${(after / MiB).toFixed(1)} MiB`);
});

interface ShrinkProbe {
  held: number;
  asked: boolean;
  before: number;
  after: number;
}

function shrinkProbe(mode: 'shrink' | 'idle'): ShrinkProbe {
  return JSON.parse(execFileSync(process.execPath, [SHRINK_PROBE, mode], { encoding: 'utf8' })) as ShrinkProbe;
}

test('shrinkJsHeap collects a heap grown by garbage that an idle thread would keep committed', () => {
  const idle = shrinkProbe('idle');
  const shrunk = shrinkProbe('shrink');
  for (const probe of [idle, shrunk]) {
    assert.equal(probe.held, 400_000);
    assert.ok(probe.before >= 60 * MiB, `the probe grew its heap to ${(probe.before / MiB).toFixed(1)} MiB only`);
  }
  // Without the call V8 keeps the garbage's pages: nothing allocates, so nothing collects.
  assert.equal(idle.asked, false);
  assert.ok(idle.after >= idle.before * 0.8, `idle: ${(idle.before / MiB).toFixed(1)} -> ${(idle.after / MiB).toFixed(1)} MiB`);
  assert.equal(shrunk.asked, true);
  assert.ok(shrunk.after <= shrunk.before / 4, `shrink: ${(shrunk.before / MiB).toFixed(1)} -> ${(shrunk.after / MiB).toFixed(1)} MiB`);
});
