// The loader of Jazzer.js's prebuilt libFuzzer addon on older glibc (test/fuzz/jazzer-compat.ts):
// the patched copy needs no symbol version newer than glibc 2.2.5 / GLIBCXX_3.4 for the symbols it
// renames (readelf reads the result), and Node loads the addon through it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { patchSymbolVersions } from './fuzz/jazzer-compat';
import { ROOT } from './fuzz/jazzer-run';

const PREBUILT = path.join(ROOT, 'node_modules/@jazzer.js/fuzzer/prebuilds', `fuzzer-${process.platform}-${process.arch}.node`);

test(
  'the patched addon asks for strtol/strtoul@GLIBC_2.2.5 and no GLIBC_2.38 or GLIBCXX_3.4.32',
  { skip: process.platform !== 'linux' || process.arch !== 'x64' },
  () => {
    const elf = fs.readFileSync(PREBUILT);
    const before = execFileSync('readelf', ['-W', '-V', '--dyn-syms', PREBUILT], { encoding: 'utf8' });
    assert.match(before, /__isoc23_strtol@GLIBC_2\.38/);
    assert.equal(patchSymbolVersions(elf), 4, 'two version needs and two symbol names');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shardvpn-jazzer-compat-'));
    try {
      const copy = path.join(dir, 'fuzzer.node');
      fs.writeFileSync(copy, elf);
      const after = execFileSync('readelf', ['-W', '-V', '--dyn-syms', copy], { encoding: 'utf8' });
      assert.doesNotMatch(after, /GLIBC_2\.38|GLIBCXX_3\.4\.32|__isoc23/);
      assert.match(after, / strtol@GLIBC_2\.2\.5/);
      assert.match(after, / strtoul@GLIBC_2\.2\.5/);
      // Patching again changes nothing more.
      assert.equal(patchSymbolVersions(elf), 0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('Jazzer.js loads its addon through the loader and exposes the libFuzzer driver', () => {
  const out = execFileSync(
    process.execPath,
    [
      '-r',
      path.join(ROOT, 'dist/test/fuzz/jazzer-compat.js'),
      '-e',
      "console.log(Object.keys(require('@jazzer.js/fuzzer/dist/addon').addon).join(' '))",
    ],
    { cwd: ROOT, encoding: 'utf8' },
  );
  assert.match(out, /startFuzzing/);
});
