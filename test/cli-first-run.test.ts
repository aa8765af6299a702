// The built-in server's first run validates before it creates anything: a bad flag, or a user
// without CAP_NET_ADMIN, gets a clear error and leaves the data folder empty.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
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

test('without root or CAP_NET_ADMIN it says what is missing and creates nothing', { skip: process.getuid?.() !== 0 }, () => {
  const data = path.join(dir, 'unprivileged');
  chmodSync(dir, 0o777);
  // setpriv (util-linux): run as nobody with no capabilities.
  const run = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, BIN], {
    encoding: 'utf8',
    env: { ...process.env, SHARDVPN_DATA: data },
  });
  assert.equal(run.status, 1, run.stderr);
  assert.match(run.stderr, /needs root or CAP_NET_ADMIN/);
  assert.deepEqual(readdirSync(dir).includes('unprivileged') ? readdirSync(data) : [], []);
});
