import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  KEY2_SIZE,
  formatStaticKey,
  formatTlsCryptV2ClientKey,
  formatTlsCryptV2ServerKey,
  generateStaticKey,
  generateTlsCryptV2ServerKey,
  parseKeyDirection,
  parseStaticKey,
  parseTlsCryptV2ClientKey,
  parseTlsCryptV2ServerKey,
  selectKeys,
} from '../src/shared/protocol/static-key';
import { generateTlsCryptV2ClientKey, tlsCryptV2UnwrapClientKey } from '../src/shared/protocol/tls-crypt';

const dir = mkdtempSync(join(tmpdir(), 'shardvpn-static-key-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function openvpn(args: string[]): { status: number | null; output: string } {
  const r = spawnSync('openvpn', args, { cwd: dir, encoding: 'utf8', timeout: 10_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

function genkey(kind: string, file: string, extra: string[] = []): string {
  const r = openvpn(['--genkey', kind, join(dir, file), ...extra]);
  assert.equal(r.status, 0, r.output);
  return readFileSync(join(dir, file), 'utf8');
}

// Independent reading of the hex file: the lines between header and footer.
function hexBody(text: string): Buffer {
  const lines = text.split('\n');
  const start = lines.indexOf('-----BEGIN OpenVPN Static key V1-----');
  const end = lines.indexOf('-----END OpenVPN Static key V1-----');
  return Buffer.from(lines.slice(start + 1, end).join(''), 'hex');
}

function pemBody(text: string): Buffer {
  return Buffer.from(
    text
      .split('\n')
      .filter((l) => l.length > 0 && !l.startsWith('-----'))
      .join(''),
    'base64',
  );
}

for (const kind of ['secret', 'tls-crypt', 'tls-auth']) {
  test(`parses a key made by openvpn --genkey ${kind}`, () => {
    const text = genkey(kind, `${kind}.key`);
    const key = parseStaticKey(text, `${kind}.key`);
    assert.equal(key.length, KEY2_SIZE);
    assert.deepEqual(Buffer.from(key), hexBody(text));
  });
}

test('our static key file is accepted by openvpn and round-trips', () => {
  const key = generateStaticKey();
  const text = formatStaticKey(key);
  writeFileSync(join(dir, 'ours.key'), text);
  assert.deepEqual(Buffer.from(parseStaticKey(text)), Buffer.from(key));
  const ok = openvpn(['--test-crypto', '--secret', 'ours.key', '--cipher', 'AES-256-CBC', '--verb', '1']);
  assert.equal(ok.status, 0, ok.output);
  assert.match(ok.output, /SUCCEEDED/);
  // Control: openvpn refuses a corrupted file, so the check above can fail.
  writeFileSync(join(dir, 'bad.key'), text.replace(/^([0-9a-f]{2})/m, 'zz'));
  const bad = openvpn(['--test-crypto', '--secret', 'bad.key', '--cipher', 'AES-256-CBC', '--verb', '1']);
  assert.match(bad.output, /Non-Hex character/);
});

test('static key parse errors say what and where', () => {
  const text = formatStaticKey(generateStaticKey());
  const lines = text.split('\n');
  const withBad = [...lines];
  withBad[6] = `${withBad[6]!.slice(0, 5)}g${withBad[6]!.slice(6)}`;
  assert.throws(() => parseStaticKey(withBad.join('\n'), 'ta.key'), /ta\.key: line 7, column 6: unexpected character "g"/);
  assert.throws(() => parseStaticKey('hello\n', 'x.key'), /x\.key: header '-----BEGIN OpenVPN Static key V1-----' not found/);
  const short = [...lines.slice(0, 12), ...lines.slice(-2)].join('\n');
  assert.throws(() => parseStaticKey(short, 'short.key'), /short\.key: only 128 of 256 key bytes found/);
  const noFooter = lines.slice(0, -2).join('\n');
  assert.throws(() => parseStaticKey(noFooter, 'nf.key'), /nf\.key: footer .* not found/);
  const badFooter = [...lines.slice(0, -2), '-----END something-----', ''].join('\n');
  assert.throws(() => parseStaticKey(badFooter, 'bf.key'), /bf\.key: line 21: expected '-----END OpenVPN Static key V1-----'/);
});

test('static key parsing is as lenient as OpenVPN: leading text, CRLF, odd line breaks', () => {
  const key = generateStaticKey();
  const hex = key.toString('hex');
  const odd = [
    'some comment',
    '-----BEGIN OpenVPN Static key V1-----\r',
    hex.slice(0, 7),
    hex.slice(7, 300) + ' \t',
    hex.slice(300),
    '-----END OpenVPN Static key V1-----\r',
    '',
  ];
  assert.deepEqual(Buffer.from(parseStaticKey(odd.join('\n'))), Buffer.from(key));
  // Anything after the 256th byte and before the footer is ignored, as by OpenVPN.
  const extra = formatStaticKey(key).replace('-----END', 'zz trailing junk 00\n-----END');
  assert.deepEqual(Buffer.from(parseStaticKey(extra)), Buffer.from(key));
});

test('key-direction selects slices as OpenVPN does', () => {
  const key = Buffer.alloc(KEY2_SIZE);
  for (let i = 0; i < KEY2_SIZE; i++) key[i] = i;
  assert.equal(parseKeyDirection(undefined), 'bidirectional');
  assert.equal(parseKeyDirection('0'), 'normal');
  assert.equal(parseKeyDirection('1'), 'inverse');
  assert.throws(() => parseKeyDirection('2'), /key-direction '2': must be 0 or 1/);

  const n = selectKeys(key, 'normal', 32, 20);
  assert.equal(n.encryptCipher[0], 0);
  assert.equal(n.encryptCipher.length, 32);
  assert.equal(n.encryptHmac[0], 64);
  assert.equal(n.encryptHmac.length, 20);
  assert.equal(n.decryptCipher[0], 128);
  assert.equal(n.decryptHmac[0], 192);
  const i = selectKeys(key, 'inverse', 32, 20);
  assert.equal(i.encryptCipher[0], 128);
  assert.equal(i.encryptHmac[0], 192);
  assert.equal(i.decryptCipher[0], 0);
  assert.equal(i.decryptHmac[0], 64);
  const b = selectKeys(key, 'bidirectional', 16, 64);
  assert.equal(b.encryptHmac[0], 64);
  assert.equal(b.decryptHmac[0], 64);
  assert.equal(b.decryptHmac.length, 64);
});

test('parses tls-crypt-v2 server and client keys made by openvpn', () => {
  const srvText = genkey('tls-crypt-v2-server', 'v2srv.key');
  const srv = parseTlsCryptV2ServerKey(srvText, 'v2srv.key');
  assert.deepEqual(Buffer.from(srv), pemBody(srvText));
  assert.equal(srv.length, 128);

  const cliText = genkey('tls-crypt-v2-client', 'v2cli.key', ['--tls-crypt-v2', join(dir, 'v2srv.key')]);
  const cli = parseTlsCryptV2ClientKey(cliText, 'v2cli.key');
  const raw = pemBody(cliText);
  assert.deepEqual(Buffer.from(cli.key2), raw.subarray(0, 256));
  assert.deepEqual(cli.wkc, raw.subarray(256));
  // Default metadata is a timestamp: 32 tag + 256 Kc + 9 metadata + 2 length.
  assert.equal(cli.wkc.length, 32 + 256 + 9 + 2);

  assert.throws(() => parseTlsCryptV2ServerKey(cliText, 'v2cli.key'), /'-----BEGIN OpenVPN tls-crypt-v2 server key-----' not found/);
  assert.throws(() => parseTlsCryptV2ClientKey(srvText, 'v2srv.key'), /not found/);
  const broken = cliText.split('\n');
  broken[2] = `${broken[2]!.slice(0, 10)}*${broken[2]!.slice(11)}`;
  assert.throws(() => parseTlsCryptV2ClientKey(broken.join('\n'), 'c.key'), /c\.key: line 3: not base64/);
});

test('openvpn accepts our tls-crypt-v2 server key and we unwrap the client key it makes', () => {
  const srv = generateTlsCryptV2ServerKey();
  const srvText = formatTlsCryptV2ServerKey(srv);
  assert.deepEqual(Buffer.from(parseTlsCryptV2ServerKey(srvText)), Buffer.from(srv));
  writeFileSync(join(dir, 'our-srv.key'), srvText);
  // openvpn unwraps its freshly made client key with our server key as a self-check.
  const cliText = genkey('tls-crypt-v2-client', 'their-cli.key', ['--tls-crypt-v2', join(dir, 'our-srv.key')]);
  const cli = parseTlsCryptV2ClientKey(cliText);
  const r = tlsCryptV2UnwrapClientKey(srv, cli.wkc);
  assert.ok(r.ok);
  assert.deepEqual(Buffer.from(r.key2), Buffer.from(cli.key2));
  assert.equal(r.metadata[0], 1); // timestamp metadata
  const t = Number(r.metadata.readBigUInt64BE(1));
  assert.ok(Math.abs(t - Date.now() / 1000) < 600);
});

test('our tls-crypt-v2 client key file round-trips and unwraps with the server key', () => {
  const srv = generateTlsCryptV2ServerKey();
  const cli = generateTlsCryptV2ClientKey(srv, { userMetadata: Buffer.from('alice'), nowSec: 1_700_000_000 });
  const text = formatTlsCryptV2ClientKey(cli);
  assert.match(text, /^-----BEGIN OpenVPN tls-crypt-v2 client key-----\n/);
  for (const line of text.split('\n').slice(1, -2)) assert.ok(line.length <= 64);
  const back = parseTlsCryptV2ClientKey(text);
  assert.deepEqual(Buffer.from(back.key2), Buffer.from(cli.key2));
  assert.deepEqual(back.wkc, cli.wkc);
  const r = tlsCryptV2UnwrapClientKey(srv, back.wkc);
  assert.ok(r.ok);
  assert.deepEqual(r.metadata, Buffer.from('\x00alice', 'latin1'));
});

test('parsing many key files with no turn of the event loop stays within the guarded-memory budget', () => {
  // Fuzzing found this: every parsed key took a sodium_malloc block (four memory mappings) that
  // only garbage collection gives back; some 16000 parses in one synchronous run hit
  // vm.max_map_count and sodium-native aborted the process. A child process runs the burst.
  const dist = join(__dirname, '..', 'src', 'shared', 'protocol');
  const script = `
    const { formatStaticKey, generateStaticKey, parseStaticKey } = require(${JSON.stringify(join(dist, 'static-key.js'))});
    const { guardedBuffersLive, GUARDED_BUDGET } = require(${JSON.stringify(join(dist, 'key-memory.js'))});
    const text = formatStaticKey(generateStaticKey());
    for (let i = 0; i < 25000; i++) if (parseStaticKey(text, 'ta.key').length !== 256) throw new Error('parse ' + i);
    if (guardedBuffersLive() > GUARDED_BUDGET) throw new Error('over budget: ' + guardedBuffersLive());
    console.log('done');`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `signal ${r.signal}: ${r.stderr.slice(0, 2000)}`);
  assert.equal(r.stdout.trim(), 'done');
});
