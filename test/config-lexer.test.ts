import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, parseConfigFile, parseConfigText, tokenizeLine } from '../src/shared/config';

function tokens(line: string): string[] {
  const r = tokenizeLine(line);
  if (!r.ok) throw new Error(r.reason);
  return r.tokens;
}

function throwsConfig(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'shardvpn-config-'));
}

test('tokenizer: whitespace, comments where a token starts', () => {
  assert.deepEqual(tokens('  remote   vpn.example.com\t1194  '), ['remote', 'vpn.example.com', '1194']);
  assert.deepEqual(tokens('# comment'), []);
  assert.deepEqual(tokens('   ; comment'), []);
  assert.deepEqual(tokens('verb 3 # trailing comment'), ['verb', '3']);
  assert.deepEqual(tokens('verb 3 ;trailing'), ['verb', '3']);
  // Inside a token # and ; are ordinary characters, as in parse_line.
  assert.deepEqual(tokens('auth-user-pass pass#1;x'), ['auth-user-pass', 'pass#1;x']);
  assert.deepEqual(tokens(''), []);
});

test('tokenizer: double quotes with escapes, single quotes literal', () => {
  assert.deepEqual(tokens('push "route 10.0.0.0 255.0.0.0"'), ['push', 'route 10.0.0.0 255.0.0.0']);
  assert.deepEqual(tokens('push "dhcp-option DOMAIN \\"x y\\""'), ['push', 'dhcp-option DOMAIN "x y"']);
  assert.deepEqual(tokens('x "a\\\\b"'), ['x', 'a\\b']);
  assert.deepEqual(tokens('x \'a\\b "c"\''), ['x', 'a\\b "c"']);
  assert.deepEqual(tokens('x "" y'), ['x', '', 'y']);
  assert.deepEqual(tokens('x "# not a comment"'), ['x', '# not a comment']);
  // A closing quote ends the token even when a character follows at once.
  assert.deepEqual(tokens('x "ab"cd'), ['x', 'ab', 'cd']);
  // A quote inside an unquoted token is literal.
  assert.deepEqual(tokens('x ab"cd'), ['x', 'ab"cd']);
});

test('tokenizer: backslash outside quotes escapes space, quote and backslash only', () => {
  assert.deepEqual(tokens('up /etc/my\\ script.sh'), ['up', '/etc/my script.sh']);
  assert.deepEqual(tokens('x \\"quoted\\"'), ['x', '"quoted"']);
  assert.deepEqual(tokens('x c:\\\\dir\\\\f'), ['x', 'c:\\dir\\f']);
  const bad = tokenizeLine('key c:\\keys\\a.key');
  assert.equal(bad.ok, false);
  if (!bad.ok) assert.match(bad.reason, /backslash/);
});

test('tokenizer: unterminated quotes and too many parameters', () => {
  const r1 = tokenizeLine('push "route 10.0.0.0');
  assert.equal(r1.ok, false);
  if (!r1.ok) assert.match(r1.reason, /unterminated quote/);
  const r2 = tokenizeLine("x 'abc");
  assert.equal(r2.ok, false);
  assert.equal(tokenizeLine('a 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15').ok, true);
  assert.equal(tokenizeLine('a 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16').ok, false);
});

test('directives carry exact line numbers, also after inline blocks', () => {
  const text = [
    '# server', // 1
    'port 1194', // 2
    '', // 3
    '<ca>', // 4
    '-----BEGIN CERTIFICATE-----', // 5
    'MIIB', // 6
    '-----END CERTIFICATE-----', // 7
    '</ca>', // 8
    'verb 3', // 9
  ].join('\n');
  const d = parseConfigText(text, 'server.conf');
  assert.deepEqual(
    d.map((x) => [x.name, x.line]),
    [
      ['port', 2],
      ['ca', 4],
      ['verb', 9],
    ],
  );
  assert.equal(d[1]?.inline, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
  assert.deepEqual(d[1]?.args, []);
  assert.equal(d[0]?.file, 'server.conf');
});

test('CRLF, a UTF-8 BOM, indented closing tags and --name spelling', () => {
  const text = '\uFEFFclient\r\n--dev tun\r\n<tls-crypt>\r\nK1\r\n  </tls-crypt>\r\nverb 3\r\n';
  const d = parseConfigText(text, 'c.ovpn');
  assert.deepEqual(
    d.map((x) => [x.name, x.args, x.line]),
    [
      ['client', [], 1],
      ['dev', ['tun'], 2],
      ['tls-crypt', [], 3],
      ['verb', ['3'], 6],
    ],
  );
  assert.equal(d[2]?.inline, 'K1\n');
});

test('inline block errors name file:line and directive', () => {
  throwsConfig(
    () => parseConfigText('dev tun\n\n<ca>\nabc\n', 'server.conf'),
    'server.conf:3: ca: inline block <ca> is not closed (no </ca>)',
  );
  throwsConfig(() => parseConfigText('verb 3\n</key>\n', 'c.ovpn'), /^c\.ovpn:2: key: closing tag <\/key> without an opening <key>/);
  throwsConfig(() => parseConfigText('verb 3\npush "route\n', 'server.conf'), /^server\.conf:2: unterminated quote/);
});

test('<connection> blocks hold their directives with real line numbers', () => {
  const text =
    'client\n<connection>\nremote a.example 1194\n<tls-auth>\nK\n</tls-auth>\n</connection>\n<connection>\nremote b.example\n</connection>\n';
  const d = parseConfigText(text, 'multi.ovpn');
  assert.deepEqual(
    d.map((x) => [x.name, x.line]),
    [
      ['client', 1],
      ['connection', 2],
      ['connection', 8],
    ],
  );
  assert.deepEqual(
    d[1]?.block?.map((x) => [x.name, x.line, x.inline ?? null]),
    [
      ['remote', 3, null],
      ['tls-auth', 4, 'K\n'],
    ],
  );
  assert.deepEqual(
    d[2]?.block?.map((x) => [x.name, x.args]),
    [['remote', ['b.example']]],
  );
});

test('config includes resolve against the working directory, and cd moves it', () => {
  const dir = tmpdir();
  try {
    fs.mkdirSync(path.join(dir, 'etc'));
    fs.writeFileSync(path.join(dir, 'etc', 'main.conf'), 'verb 3\nconfig common.conf\nport 1195\n');
    fs.writeFileSync(path.join(dir, 'etc', 'common.conf'), 'proto udp\ndev tun\n');
    // Relative to cwd (etc/), like `cd /etc/openvpn && openvpn --config main.conf`.
    const d = parseConfigFile('main.conf', { cwd: path.join(dir, 'etc') });
    assert.deepEqual(
      d.map((x) => `${x.file}:${x.line}:${x.name}`),
      ['main.conf:1:verb', 'common.conf:1:proto', 'common.conf:2:dev', 'main.conf:3:port'],
    );
    // From the parent directory the include is not found: OpenVPN does not look beside the file.
    throwsConfig(
      () => parseConfigFile('etc/main.conf', { cwd: dir }),
      /^etc\/main\.conf:2: config: cannot read configuration file 'common\.conf'/,
    );
    // A `cd` first makes it work, as it does for OpenVPN.
    fs.writeFileSync(path.join(dir, 'top.conf'), 'cd etc\nconfig common.conf\n');
    const d2 = parseConfigFile('top.conf', { cwd: dir });
    assert.deepEqual(
      d2.map((x) => x.name),
      ['cd', 'proto', 'dev'],
    );
    throwsConfig(() => parseConfigText('cd nowhere\n', 'x.conf', { cwd: dir }), /^x\.conf:1: cd: cannot change directory to 'nowhere'/);
    throwsConfig(
      () => parseConfigFile('missing.conf', { cwd: dir }),
      /^missing\.conf:0: config: cannot read configuration file 'missing\.conf'.*ENOENT/,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('include loops and include depth are detected', () => {
  const dir = tmpdir();
  try {
    fs.writeFileSync(path.join(dir, 'a.conf'), 'verb 1\nconfig b.conf\n');
    fs.writeFileSync(path.join(dir, 'b.conf'), '\n\nconfig a.conf\n');
    throwsConfig(() => parseConfigFile('a.conf', { cwd: dir }), /^b\.conf:3: config: include loop: .*a\.conf -> .*b\.conf -> .*a\.conf$/);
    fs.writeFileSync(path.join(dir, 'self.conf'), 'config self.conf\n');
    throwsConfig(() => parseConfigFile('self.conf', { cwd: dir }), /^self\.conf:1: config: include loop/);
    for (let i = 0; i < 12; i++) fs.writeFileSync(path.join(dir, `n${i}.conf`), `config n${i + 1}.conf\n`);
    fs.writeFileSync(path.join(dir, 'n12.conf'), 'verb 4\n');
    throwsConfig(() => parseConfigFile('n0.conf', { cwd: dir }), /^n9\.conf:1: config: too many nested includes \(at most 10\)/);
    // Ten levels are fine.
    assert.deepEqual(
      parseConfigFile('n3.conf', { cwd: dir }).map((x) => x.name),
      ['verb'],
    );
    throwsConfig(
      () => parseConfigText('config a.conf b.conf\n', 'x.conf', { cwd: dir }),
      'x.conf:1: config: expects 1 argument (a file name), got 2',
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('expandIncludes: false leaves config directives alone', () => {
  const d = parseConfigText('config nowhere.conf\n', 'x.conf', { expandIncludes: false });
  assert.deepEqual(
    d.map((x) => [x.name, x.args]),
    [['config', ['nowhere.conf']]],
  );
});
