import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, buildOptions, parseArgv } from '../src/shared/config';

function withDir(fn: (dir: string) => void): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shardvpn-argv-'));
  try {
    fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('argv: --name args until the next --, positions as line numbers', () => {
  const d = parseArgv(['--dev', 'tun', '--push', 'route 10.0.0.0 255.0.0.0', '--persist-tun', '--remote', 'a', '1195', 'udp']);
  assert.deepEqual(
    d.map((x) => [x.name, x.args, x.file, x.line]),
    [
      ['dev', ['tun'], 'argv', 1],
      ['push', ['route 10.0.0.0 255.0.0.0'], 'argv', 3],
      ['persist-tun', [], 'argv', 5],
      ['remote', ['a', '1195', 'udp'], 'argv', 6],
    ],
  );
});

test('argv: a word where an option should be is an error naming its position', () => {
  assert.throws(
    () => parseArgv(['dev', 'tun']),
    (e: unknown) => e instanceof ConfigError && e.message === "argv:1: 'dev' is not an option: options start with '--'",
  );
  // A stray word after an option is that option's argument, so the option layer objects.
  assert.throws(
    () => buildOptions(parseArgv(['--verb', '3', 'extra', '--dev', 'tun'])),
    /^ConfigError: argv:1: verb: expects 1 argument, got 2$/,
  );
});

test('argv: a lone file name is a config file; --config reads in place so later args win', () => {
  withDir((dir) => {
    fs.writeFileSync(path.join(dir, 'server.conf'), 'verb 3\nport 1194\ndev tun\n');
    const single = parseArgv(['server.conf'], { cwd: dir });
    assert.deepEqual(
      single.map((x) => `${x.file}:${x.line}:${x.name}`),
      ['server.conf:1:verb', 'server.conf:2:port', 'server.conf:3:dev'],
    );

    const d = parseArgv(['--verb', '5', '--config', 'server.conf', '--port', '1200'], { cwd: dir });
    assert.deepEqual(
      d.map((x) => `${x.file}:${x.line}:${x.name}`),
      ['argv:1:verb', 'server.conf:1:verb', 'server.conf:2:port', 'server.conf:3:dev', 'argv:5:port'],
    );
    const { options } = buildOptions(d, { cwd: dir });
    // The file's verb came after --verb 5; --port 1200 came after the file.
    assert.equal(options.verb, 3);
    assert.equal(options.localPort, 1200);
    assert.equal(options.remotePort, 1200);
  });
});

test('argv: --cd before --config, as systemd units run openvpn', () => {
  withDir((dir) => {
    fs.mkdirSync(path.join(dir, 'server'));
    fs.writeFileSync(path.join(dir, 'server', 'server.conf'), 'dev tun\nca ca.crt\nstatus status.log\n');
    const d = parseArgv(['--status', '/run/s.log', '10', '--cd', path.join(dir, 'server'), '--config', 'server.conf'], { cwd: '/' });
    const { options } = buildOptions(d, { cwd: '/' });
    assert.equal(options.cd, path.join(dir, 'server'));
    assert.deepEqual(options.ca, {
      kind: 'file',
      path: 'ca.crt',
      resolved: path.join(dir, 'server', 'ca.crt'),
      file: 'server.conf',
      line: 2,
    });
    assert.equal(options.status?.resolved, path.join(dir, 'server', 'status.log'));
    assert.equal(options.status?.intervalSeconds, 60);
  });
});

test('argv errors from the option layer name argv and the position', () => {
  assert.throws(() => buildOptions(parseArgv(['--dev', 'tun', '--port', 'abc'])), /^ConfigError: argv:3: port: bad port 'abc'/);
  assert.throws(() => buildOptions(parseArgv(['--frobnicate'])), /^ConfigError: argv:1: unknown directive 'frobnicate'$/);
});
