// persist-key: the keys a configuration names are read once and reused over SIGUSR1 restarts
// (files that a process running as nobody can no longer read); without it, and for a new
// configuration (SIGHUP), they are read again.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

import { makeTestPki } from '../lab/test-pki';
import { ConfigError, buildOptions, parseConfigText, type Options } from '../src/shared/config';
import { KeyKeeper } from '../src/main/persist-key';

const pki = makeTestPki();
const dir = mkdtempSync(join(tmpdir(), 'shardvpn-persist-key-'));
after(() => {
  pki.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

/** Fresh key files and a server config naming them (key on line 5, tls-crypt on line 6). */
function setUp(persistKey: boolean): () => Options {
  cpSync(pki.files.ca, join(dir, 'ca.crt'));
  cpSync(pki.files.serverCert, join(dir, 'server.crt'));
  cpSync(pki.files.serverKey, join(dir, 'server.key'));
  execFileSync('openvpn', ['--genkey', 'tls-crypt', join(dir, 'tc.key')], { stdio: 'ignore' });
  const text = `mode server\ntls-server\nca ca.crt\ncert server.crt\nkey server.key\ntls-crypt tc.key\n${persistKey ? 'persist-key\n' : ''}`;
  return () => buildOptions(parseConfigText(text, join(dir, 'server.conf'), { expandIncludes: false }), { cwd: dir }).options;
}

const removeKeys = (): void => {
  for (const f of ['server.key', 'tc.key']) rmSync(join(dir, f));
};

test('persist-key: a restart with the same configuration uses the keys read at start', () => {
  const options = setUp(true)();
  const keeper = new KeyKeeper();
  const tls = keeper.tlsMaterial(options);
  const wrap = keeper.wrap(options, options, 'server');
  assert.equal(wrap.mode, 'tls-crypt');
  removeKeys();
  // The SIGUSR1 restart: same options object, files gone (or unreadable after `user nobody`).
  assert.equal(keeper.tlsMaterial(options), tls);
  assert.equal(keeper.wrap(options, options, 'server'), wrap);
});

test('without persist-key a restart reads the files again; a new configuration always does', () => {
  const load = setUp(false);
  const options = load();
  const keeper = new KeyKeeper();
  keeper.tlsMaterial(options);
  keeper.wrap(options, options, 'server');
  removeKeys();
  assert.throws(
    () => keeper.tlsMaterial(options),
    (e: unknown) => e instanceof ConfigError && /server\.conf:5: key: cannot read 'server\.key'.*ENOENT/.test(e.message),
  );
  assert.throws(
    () => keeper.wrap(options, options, 'server'),
    (e: unknown) => e instanceof ConfigError && /server\.conf:6: tls-crypt: cannot read 'tc\.key'/.test(e.message),
  );

  // SIGHUP: a new Options object (persist-key or not) reads its files, here fresh ones.
  const reload = setUp(true);
  const first = reload();
  const kept = keeper.tlsMaterial(first);
  const second = reload();
  const fresh = keeper.tlsMaterial(second);
  assert.notEqual(fresh, kept);
  assert.equal(fresh.key, kept.key);
});
