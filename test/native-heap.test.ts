// trimHeap(): the free pages in the middle of the C heap go back to the kernel (the server does
// it once a minute; bench/soak.bench.ts measures what it saves over hours of renegotiations).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';

const PROBE = path.join(__dirname, 'fixtures', 'heap-trim-probe.js');

test('trimHeap releases the freed chunks of the C heap that free() alone keeps in RSS', () => {
  const out = execFileSync(process.execPath, [PROBE], { encoding: 'utf8' });
  const { before, after, released, kept } = JSON.parse(out) as { before: number; after: number; released: boolean; kept: number };
  assert.equal(kept, 1500);
  assert.equal(released, true, out);
  // 1,500 freed buffers of 64 KiB are 94 MiB; each leaves 15 whole free pages of 16 to release.
  const MiB = 1 << 20;
  assert.ok(before - after >= 60 * MiB, `RSS ${(before / MiB).toFixed(1)} -> ${(after / MiB).toFixed(1)} MiB`);
});
