// The built-in server's first run validates before it creates anything: a bad flag, or a user
// without CAP_NET_ADMIN, gets a clear error and leaves the data folder empty.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

const BIN = path.join(__dirname, '..', '..', 'bin', 'shardvpn.js');
const dir = mkdtempSync(path.join(tmpdir(), 'shardvpn-first-run-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a bad flag is refused before the built-in server creates its keys', () => {
  const data = path.join(dir, 'bad-flag');
  const run = spawnSync(process.execPath, [BIN, '--bogus-flag'], { encoding: 'utf8', env: { ...process.env, SHARDVPN_DATA: data } });
  assert.equal(run.status, 1);
  assert.match(run.stderr, /Options error: argv:1: unknown directive 'bogus-flag'/);
  assert.deepEqual(readdirSync(dir).includes('bad-flag') ? readdirSync(data) : [], []);
});

test('without CAP_NET_ADMIN it says what is missing and creates nothing', { skip: process.getuid?.() !== 0 }, () => {
  const data = path.join(dir, 'unprivileged');
  // setpriv (util-linux): root, but with CAP_NET_ADMIN out of the bounding set, so the process
  // lacks it (and can still read a checkout only root may read).
  const run = spawnSync('setpriv', ['--bounding-set=-net_admin', '--inh-caps=-net_admin', process.execPath, BIN], {
    encoding: 'utf8',
    env: { ...process.env, SHARDVPN_DATA: data },
  });
  assert.equal(run.status, 1, run.stderr);
  assert.match(run.stderr, /needs root or CAP_NET_ADMIN/);
  assert.deepEqual(readdirSync(dir).includes('unprivileged') ? readdirSync(data) : [], []);
});
