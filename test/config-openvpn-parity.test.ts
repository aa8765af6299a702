// The real OpenVPN 2.6 binary as the reference: it must accept and reject the same files as
// our parser, and its `--verb 4` settings dump must show the same server expansion.
// Every config carries unloadable inline or empty certificates, so openvpn stops at TLS setup
// and never opens a device or a socket.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, Options, buildOptions, parseConfigFile } from '../src/shared/config';
import { Sample, angristanClient, angristanServer, samples } from './config-samples';
import { samplePath, sampleText } from './helpers/user-configs';

const haveOpenvpn = spawnSync('openvpn', ['--version'], { encoding: 'utf8' }).status !== null;
const skip = haveOpenvpn ? false : 'openvpn binary not installed';

interface Reference {
  /** The option error openvpn printed, if it refused the file. */
  error?: string;
  settings: Map<string, string[]>;
  routes: string[];
  /** openvpn stopped on a fatal error after reading its options. */
  fatal: boolean;
}

function runOpenvpn(dir: string, file: string): Reference {
  const r = spawnSync('openvpn', ['--config', file, '--verb', '4'], { cwd: dir, encoding: 'utf8', timeout: 10_000 });
  const out = `${r.stdout}${r.stderr}`;
  // A usage error ends with this hint; Endtag errors are fatal without it.
  const error = /(Options (?:error|warning): .*)\n(?:.*\n)?Use --help/.exec(out)?.[1] ?? /(ERROR: Endtag .*)/.exec(out)?.[1];
  const settings = new Map<string, string[]>();
  const routes: string[] = [];
  for (const line of out.split('\n')) {
    const m = /^\S+ \S+ us=\d+ {3}([a-z0-9_]+) = (.*)$/.exec(line);
    if (m !== null) {
      const list = settings.get(m[1] as string) ?? [];
      list.push((m[2] as string).replace(/^'(.*)'$/, '$1'));
      settings.set(m[1] as string, list);
    }
    const rt = /^\S+ \S+ us=\d+ {3}route (\S+)\/(\S+)\//.exec(line);
    if (rt !== null) routes.push(`${rt[1] as string} ${rt[2] as string}`);
  }
  const fatal = out.includes('Exiting due to fatal error');
  return error !== undefined ? { error, settings, routes, fatal } : { settings, routes, fatal };
}

function ours(dir: string, file: string): { options?: Options; error?: ConfigError } {
  try {
    return { options: buildOptions(parseConfigFile(file, { cwd: dir }), { cwd: dir }).options };
  } catch (e) {
    if (e instanceof ConfigError) return { error: e };
    throw e;
  }
}

function withSample(s: Sample, extra: string, fn: (dir: string) => void): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shardvpn-parity-'));
  try {
    for (const f of s.files) {
      const file = samplePath(dir, f);
      if (f.endsWith('/')) fs.mkdirSync(file, { recursive: true });
      else {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, '', { mode: f.endsWith('.sh') ? 0o755 : 0o644 });
      }
    }
    // syslog would hide openvpn's messages from us; a comment keeps the line numbers.
    fs.writeFileSync(path.join(dir, s.name), sampleText(dir, s).replace(/^syslog$/m, '#syslog') + extra);
    fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('openvpn and our parser both accept the installer samples', { skip }, () => {
  for (const s of samples) {
    withSample(s, '', (dir) => {
      const ref = runOpenvpn(dir, s.name);
      assert.equal(ref.error, undefined, `openvpn refused ${s.name}`);
      // It got past the options to loading keys, which are empty or garbage here.
      assert.ok(ref.fatal, `openvpn did not stop at key loading for ${s.name}`);
      const r = ours(dir, s.name);
      assert.equal(r.error, undefined, `${s.name}: ${r.error?.message ?? ''}`);
    });
  }
});

test('openvpn and our parser reject the same mistakes, at the same line', { skip }, () => {
  const cases: Array<[string, RegExp]> = [
    ['frobnicate 1', /unknown directive 'frobnicate'/],
    ['keepalive 10', /keepalive: expects 2 arguments/],
    ['topology foo', /topology: bad topology/],
    ['tls-remote server', /tls-remote: removed/],
    ['proto sctp', /proto: bad protocol/],
    ['push "route 10.0.0.0', /unterminated quote/],
    ['key c:\\keys\\a.key', /bad backslash/],
    ['<verb>\n3\n</verb>', /verb: cannot be an inline block/],
    ['block-outside-dns', /unknown directive 'block-outside-dns'/],
    ['client', /server: cannot be used together with client/],
    ['ifconfig-pool 10.8.0.10 10.8.0.20', /ifconfig-pool: server already defines the address pool/],
    ['redirect-gateway def1 sideways', /redirect-gateway flag 'sideways'/],
    ['verify-x509-name srv fancy', /bad name type 'fancy'/],
    ['<ca>\nunclosed', /inline block <ca> is not closed/],
  ];
  const base = angristanServer;
  const lastLine = base.text.split('\n').length; // the line the extra text starts on
  for (const [extra, ourMessage] of cases) {
    withSample(base, `${extra}\n`, (dir) => {
      const ref = runOpenvpn(dir, base.name);
      assert.ok(ref.error !== undefined, `openvpn accepted: ${extra}`);
      const r = ours(dir, base.name);
      assert.ok(r.error !== undefined, `we accepted: ${extra}`);
      assert.match(r.error.message, ourMessage);
      // Where openvpn names a line, it is ours (helper.c's checks name none).
      const m = /:(\d+)[):]/.exec(ref.error);
      if (m !== null) assert.equal(r.error.line, Number(m[1]), `${extra}: openvpn said ${ref.error}`);
      else if (!/server|ifconfig-pool|Endtag/.test(extra + ref.error)) assert.equal(r.error.line, lastLine, extra);
    });
  }
  // And both accept what only earns a warning.
  for (const extra of ['setenv opt block-outside-dns', 'ignore-unknown-option foo\nfoo bar', 'ncp-ciphers AES-256-GCM', 'fast-io']) {
    withSample(angristanClient, `${extra}\n`, (dir) => {
      assert.equal(runOpenvpn(dir, angristanClient.name).error, undefined, extra);
      assert.equal(ours(dir, angristanClient.name).error, undefined, extra);
    });
  }
});

const SERVER_BASE = 'dev tun\n<ca>\nxx\n</ca>\n<cert>\nxx\n</cert>\n<key>\nxx\n</key>\ndh none\npush "dhcp-option DNS 10.8.0.1"\n';

test('server, server-ipv6 and keepalive expand as openvpn expands them', { skip }, () => {
  const variants = [
    'topology subnet\nserver 10.8.0.0 255.255.255.0\nkeepalive 10 120',
    'server 10.8.0.0 255.255.255.0',
    'client-to-client\nserver 10.9.0.0 255.255.0.0\nkeepalive 5 30',
    'topology p2p\nserver 10.8.0.0 255.255.255.248',
    'topology subnet\nserver 10.8.0.0 255.255.255.0 nopool\nifconfig-pool 10.8.0.100 10.8.0.200',
    'topology subnet\nserver 192.168.77.0 255.255.255.128\nserver-ipv6 fd00:1234::/64\nroute-gateway 192.168.77.9',
    'server-ipv6 fd00::ff00/120\nserver 10.8.0.0 255.255.255.0',
  ];
  for (const v of variants) {
    const s: Sample = { name: 'v.conf', files: [], text: SERVER_BASE };
    withSample(s, `${v}\n`, (dir) => {
      const ref = runOpenvpn(dir, 'v.conf');
      assert.equal(ref.error, undefined, v);
      const r = ours(dir, 'v.conf');
      const o = r.options;
      assert.ok(o !== undefined, `${v}: ${r.error?.message ?? ''}`);
      const get = (k: string): string | undefined => ref.settings.get(k)?.[0];
      assert.deepEqual(o.push, ref.settings.get('push_entry') ?? [], `push list for ${v}`);
      assert.equal(o.ifconfig?.local, get('ifconfig_local'), v);
      assert.equal(o.ifconfig?.remoteNetmask, get('ifconfig_remote_netmask'), v);
      assert.equal(o.ifconfigPool?.start ?? '0.0.0.0', get('ifconfig_pool_start'), v);
      assert.equal(o.ifconfigPool?.end ?? '0.0.0.0', get('ifconfig_pool_end'), v);
      assert.equal(o.ifconfigPool?.netmask ?? '0.0.0.0', get('ifconfig_pool_netmask'), v);
      assert.equal(o.routeGateway ?? '[UNDEF]', get('route_default_gateway'), v);
      assert.equal(String(o.ping), get('ping_send_timeout'), v);
      assert.equal(String(o.pingRecTimeout), get('ping_rec_timeout'), v);
      assert.deepEqual(
        o.routes.map((rt) => `${rt.network} ${rt.netmask ?? ''}`),
        ref.routes,
        v,
      );
      if (o.ifconfigIpv6 !== undefined) {
        assert.equal(o.ifconfigIpv6.local, get('ifconfig_ipv6_local'), v);
        assert.equal(o.ifconfigIpv6.remote, get('ifconfig_ipv6_remote'), v);
        assert.equal(o.ifconfigIpv6Pool?.base, get('ifconfig_ipv6_pool_base'), v);
        assert.equal(String(o.ifconfigIpv6Pool?.netbits), get('ifconfig_ipv6_pool_netbits'), v);
      }
    });
  }
});
