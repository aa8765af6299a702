import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, Options, buildOptions, defaultOptions, parseArgv, parseConfigText } from '../src/shared/config';

function build(text: string, file = 'server.conf'): ReturnType<typeof buildOptions> {
  return buildOptions(parseConfigText(text, file, { expandIncludes: false }), { cwd: '/etc/openvpn' });
}

function opts(text: string): Options {
  return build(text).options;
}

function rejects(text: string, message: string | RegExp, file = 'server.conf'): void {
  assert.throws(
    () => build(text, file),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
      if (typeof message === 'string') assert.equal(e.message, message);
      else assert.match(e.message, message);
      return true;
    },
  );
}

test('defaults are OpenVPN 2.6 defaults (init_options and the man page)', () => {
  const o = buildOptions([]).options;
  assert.equal(o.mode, 'p2p');
  assert.deepEqual(o.proto, { transport: 'udp', family: 'any' });
  assert.equal(o.localPort, 1194);
  assert.equal(o.remotePort, 1194);
  assert.equal(o.topology, 'net30');
  assert.equal(o.verb, 1);
  assert.equal(o.mute, 0);
  assert.equal(o.tunMtu, 1500);
  assert.deepEqual(o.mssfix, { size: 1492, encap: true, fixed: false });
  assert.equal(o.renegSec, 3600);
  assert.equal(o.renegBytes, -1);
  assert.equal(o.renegPkts, 0);
  assert.equal(o.handWindow, 60);
  assert.equal(o.tranWindow, 3600);
  assert.equal(o.tlsTimeout, 2);
  assert.equal(o.auth, 'SHA1');
  assert.equal(o.cipher, undefined);
  assert.deepEqual(o.dataCiphers, ['AES-256-GCM', 'AES-128-GCM', 'CHACHA20-POLY1305']);
  assert.equal(o.replayWindow, 64);
  assert.equal(o.replayTime, 15);
  assert.equal(o.maxClients, 1024);
  assert.equal(o.connectRetry, 1);
  assert.equal(o.connectRetryMaxWait, 300);
  assert.equal(o.connectRetryMax, 0);
  assert.equal(o.connectTimeout, 120);
  assert.equal(o.resolvRetry, Infinity);
  assert.equal(o.statusVersion, 1);
  assert.equal(o.scriptSecurity, 1);
  assert.equal(o.tlsVersionMin, '1.2');
  assert.equal(o.keyDirection, undefined);
  assert.deepEqual(o.compression, { framing: 'none', allow: 'no', allowExplicit: false, adaptive: false });
  assert.equal(o.bind, true);
  assert.equal(o.explicitExitNotify, 0);
  assert.equal(o.verifyClientCert, 'require');
  assert.equal(o.connections.length, 1);
  // buildOptions([]) must not mutate the defaults it started from.
  assert.deepEqual(defaultOptions().push, []);
});

test('unknown directives and bad values are ConfigErrors naming file:line and directive', () => {
  rejects('dev tun\n\n\n\n\n\nfoo bar\n', "server.conf:7: unknown directive 'foo'");
  rejects('port abc\n', "server.conf:1: port: bad port 'abc': expected a whole number from 0 to 65535");
  rejects('port 70000\n', /^server\.conf:1: port: bad port '70000'/);
  rejects('verb 3\nkeepalive 10\n', 'server.conf:2: keepalive: expects 2 arguments, got 1');
  rejects('keepalive 10 15\n', /^server\.conf:1: keepalive: the restart timeout \(15\) must be at least twice/);
  rejects('topology foo\n', "server.conf:1: topology: bad topology 'foo': expected net30, p2p, subnet");
  rejects('mode hub\n', /^server\.conf:1: mode: bad mode 'hub'/);
  rejects('proto sctp\n', /^server\.conf:1: proto: bad protocol 'sctp'/);
  rejects('remote a.example 1194 sctp\n', /^server\.conf:1: remote: bad protocol 'sctp'/);
  rejects('server 10.8.0.0\n', 'server.conf:1: server: expects 2 to 3 arguments, got 1');
  rejects('server 10.8.0.0 255.255.255.0 pool\n', /^server\.conf:1: server: bad flag 'pool'/);
  rejects('server 10.8.0 255.255.255.0\n', /^server\.conf:1: server: bad network '10\.8\.0'/);
  rejects('persist-tun yes\n', 'server.conf:1: persist-tun: expects 0 arguments, got 1');
  rejects('tls-remote server\n', 'server.conf:1: tls-remote: removed in OpenVPN 2.4; use verify-x509-name');
  rejects('key-direction 2\n', /^server\.conf:1: key-direction: bad key direction '2'/);
  rejects('tls-auth ta.key 3\n', /^server\.conf:1: tls-auth: bad key direction '3'/);
  rejects('pull-filter drop "route"\n', /^server\.conf:1: pull-filter: bad pull-filter action 'drop'/);
  rejects('redirect-gateway def1 sideways\n', /^server\.conf:1: redirect-gateway: bad redirect-gateway flag 'sideways'/);
  rejects('fragment 1300\n', /^server\.conf:1: fragment: not supported by shardvpn/);
  rejects('<verb>\n3\n</verb>\n', 'server.conf:1: verb: cannot be an inline block <verb>');
  rejects('<connection>\nport 1\n</connection>\n', "server.conf:1: connection: each <connection> block must contain exactly one 'remote'");
  rejects('<connection>\nremote a\nverb 3\n</connection>\n', 'server.conf:3: verb: cannot be used inside a <connection> block');
  rejects('tls-version-min 1.4\n', /^server\.conf:1: tls-version-min: bad TLS version '1\.4'/);
  rejects('status-version 4\n', /^server\.conf:1: status-version: bad status version '4'/);
  rejects('max-clients -1\n', /^server\.conf:1: max-clients: bad client count '-1'/);
  rejects('ifconfig-pool 10.8.0.50 10.8.0.10\n', /^server\.conf:1: ifconfig-pool: pool start 10\.8\.0\.50 is above pool end 10\.8\.0\.10/);
  rejects('iroute 10.9.0.1 255.255.255.0\n', /^server\.conf:1: iroute: bad network\/netmask/);
  rejects('compress zstd\n', /^server\.conf:1: compress: bad compression algorithm 'zstd'/);
  rejects('allow-compression no\ncomp-lzo yes\n', /^server\.conf:2: compress: compression is enabled but 'allow-compression no'/);
  rejects('verify-x509-name srv fancy\n', /^server\.conf:1: verify-x509-name: bad name type 'fancy'/);
  rejects('metrics-listen localhost 9100\n', /^server\.conf:1: metrics-listen: bad address 'localhost'/);
  rejects('workers 0\n', /^server\.conf:1: workers: bad worker count '0'/);
});

test('setenv opt, ignore-unknown-option and FORWARD_COMPATIBLE turn unknown directives into warnings', () => {
  const r = build(
    'ignore-unknown-option block-outside-dns register-dns\nblock-outside-dns\nsetenv opt foo-bar 1\nsetenv opt verb 4\nregister-dns\n',
    'client.ovpn',
  );
  assert.deepEqual(r.warnings, [
    { file: 'client.ovpn', line: 2, message: "unknown directive 'block-outside-dns' ignored" },
    { file: 'client.ovpn', line: 3, message: "unknown directive 'foo-bar' ignored" },
    { file: 'client.ovpn', line: 5, message: "unknown directive 'register-dns' ignored" },
  ]);
  // A known directive behind `setenv opt` still takes effect.
  assert.equal(r.options.verb, 4);
  // ignore-unknown-option only helps for directives after it.
  rejects('block-outside-dns\nignore-unknown-option block-outside-dns\n', "server.conf:1: unknown directive 'block-outside-dns'");
  const f = build('setenv FORWARD_COMPATIBLE 1\nnew-2-7-option x\n');
  assert.deepEqual(
    f.warnings.map((w) => w.line),
    [2],
  );
  assert.equal(f.options.setenv['FORWARD_COMPATIBLE'], '1');
});

test('warnings for accepted directives that OpenVPN itself only notes', () => {
  const r = build('ncp-ciphers AES-128-GCM:AES-256-GCM\nfast-io\nmute-replay-warnings\ntun-ipv6\n');
  assert.deepEqual(r.options.dataCiphers, ['AES-128-GCM', 'AES-256-GCM']);
  assert.deepEqual(
    r.warnings.map((w) => `${w.line}:${w.message.split(' ')[0]}`),
    ['1:ncp-ciphers', '2:fast-io', '3:mute-replay-warnings', '4:tun-ipv6'],
  );
});

test('server 10.8.0.0 255.255.255.0 with topology subnet expands as helper.c does', () => {
  const o = opts('dev tun\ntopology subnet\nserver 10.8.0.0 255.255.255.0\npush "dhcp-option DNS 1.1.1.1"\n');
  assert.equal(o.mode, 'server');
  assert.equal(o.tlsServer, true);
  assert.deepEqual(o.ifconfig, { local: '10.8.0.1', remoteNetmask: '255.255.255.0' });
  assert.deepEqual(o.ifconfigPool, { start: '10.8.0.2', end: '10.8.0.254', netmask: '255.255.255.0' });
  assert.deepEqual(o.push, ['dhcp-option DNS 1.1.1.1', 'route-gateway 10.8.0.1', 'topology subnet']);
  assert.equal(o.routeGateway, '10.8.0.2');
  assert.deepEqual(o.routes, []);
  assert.deepEqual(o.pushIfconfigConstraint, { network: '10.8.0.0', netmask: '255.255.255.0' });
});

test('server with topology net30 (the 2.6 default) expands as helper.c does', () => {
  const r = build('dev tun\nserver 10.8.0.0 255.255.255.0\n');
  const o = r.options;
  assert.equal(o.topology, 'net30');
  assert.deepEqual(o.ifconfig, { local: '10.8.0.1', remoteNetmask: '10.8.0.2' });
  assert.deepEqual(o.ifconfigPool, { start: '10.8.0.4', end: '10.8.0.251' });
  assert.deepEqual(o.routes, [{ network: '10.8.0.0', netmask: '255.255.255.0' }]);
  assert.deepEqual(o.push, ['route 10.8.0.1', 'topology net30']);
  assert.equal(o.routeGateway, undefined);
  assert.equal(o.pushIfconfigConstraint, undefined);
  assert.match(r.warnings[0]?.message ?? '', /net30 .* deprecated/);

  const c2c = opts('dev tun\nclient-to-client\nserver 10.8.0.0 255.255.0.0\n');
  assert.deepEqual(c2c.push, ['route 10.8.0.0 255.255.0.0', 'topology net30']);
  assert.deepEqual(c2c.ifconfigPool, { start: '10.8.0.4', end: '10.8.255.251' });

  const p2p = opts('dev tun\ntopology p2p\nserver 10.8.0.0 255.255.255.248\n');
  // A /29 keeps no reserve at the pool's end.
  assert.deepEqual(p2p.ifconfigPool, { start: '10.8.0.4', end: '10.8.0.7' });
  assert.deepEqual(p2p.push, ['topology p2p']);
});

test('server nopool, server-ipv6 and server errors', () => {
  const o = opts('dev tun\ntopology subnet\nserver 10.8.0.0 255.255.255.0 nopool\nifconfig-pool 10.8.0.100 10.8.0.200\n');
  assert.deepEqual(o.ifconfigPool, { start: '10.8.0.100', end: '10.8.0.200', netmask: '255.255.255.0' });

  const v6 = opts('dev tun\ntopology subnet\nserver 10.8.0.0 255.255.255.0\nserver-ipv6 fd00:1234::/64\n');
  assert.deepEqual(v6.ifconfigIpv6, { local: 'fd00:1234::1', netbits: 64, remote: 'fd00:1234::2' });
  assert.deepEqual(v6.ifconfigIpv6Pool, { base: 'fd00:1234::1000', netbits: 64 });
  assert.deepEqual(v6.push, ['tun-ipv6', 'route-gateway 10.8.0.1', 'topology subnet']);
  const small = opts('dev tun\nserver-ipv6 fd00::ff00/120\n');
  assert.deepEqual(small.ifconfigIpv6Pool, { base: 'fd00::ff02', netbits: 120 });

  rejects(
    'dev tun\nserver 10.8.0.0 255.255.255.0\nifconfig-pool 10.8.0.10 10.8.0.20\n',
    /^server\.conf:3: ifconfig-pool: server already defines the address pool/,
  );
  rejects('dev tun\nserver 10.8.0.0 255.255.255.0\nclient\n', 'server.conf:2: server: cannot be used together with client');
  rejects('server 10.8.0.0 255.255.255.0\n', 'server.conf:1: server: only makes sense with dev tun or dev tap');
  rejects('dev tun\nserver 10.8.0.1 255.255.255.0\n', /^server\.conf:2: server: network\/netmask 10\.8\.0\.1 255\.255\.255\.0 is invalid/);
  rejects('dev tun\nserver 10.0.0.0 255.0.0.0\n', /^server\.conf:2: server: netmask allows for too many host addresses/);
  rejects('dev tun\nserver 10.8.0.0 255.255.255.252\n', /^server\.conf:2: server: with dev tun the subnet must be/);
  rejects('server-ipv6 fd00::/48\n', /^server\.conf:1: server-ipv6: network 'fd00::\/48': prefix length must be between \/64 and \/124/);
});

test('keepalive expands to ping and ping-restart, doubled and pushed on a server', () => {
  const s = opts('dev tun\ntopology subnet\nserver 10.8.0.0 255.255.255.0\nkeepalive 10 120\n');
  assert.equal(s.ping, 10);
  assert.equal(s.pingRecTimeout, 240);
  assert.equal(s.pingRecAction, 'restart');
  assert.deepEqual(s.push.slice(-2), ['ping 10', 'ping-restart 120']);
  const c = opts('client\nremote vpn.example\nkeepalive 10 60\n');
  assert.equal(c.ping, 10);
  assert.equal(c.pingRecTimeout, 60);
  assert.deepEqual(c.push, []);
  rejects('keepalive 10 60\nping 5\n', /^server\.conf:1: keepalive: conflicts with ping/);
  const p = opts('ping 15\nping-exit 60\n');
  assert.deepEqual([p.ping, p.pingRecTimeout, p.pingRecAction], [15, 60, 'exit']);
});

test('client expands to pull + tls-client; remotes become connection entries', () => {
  const o = opts(
    'client\ndev tun\nproto udp\nremote a.example 1194\nremote b.example 1195 udp6\nremote c.example\nport 1300\nremote-random\nresolv-retry 30\nconnect-retry 5 60\nconnect-retry-max 3\nexplicit-exit-notify\n',
  );
  assert.equal(o.pull, true);
  assert.equal(o.tlsClient, true);
  assert.equal(o.remoteRandom, true);
  assert.equal(o.resolvRetry, 30);
  assert.equal(o.connectRetryMax, 3);
  assert.deepEqual(
    o.connections.map((c) => [
      c.remote,
      c.remotePort,
      c.proto.family,
      c.bind,
      c.connectRetry,
      c.connectRetryMaxWait,
      c.explicitExitNotify,
      c.line,
    ]),
    [
      ['a.example', 1194, 'any', false, 5, 60, 1, 4],
      ['b.example', 1195, 'ipv6', false, 5, 60, 1, 5],
      // `port` after the remotes still applies to a remote without a port: options are read first.
      ['c.example', 1300, 'any', false, 5, 60, 1, 6],
    ],
  );
  // A client binds only when asked to.
  const bound = opts('client\nremote a\nlport 5000\n');
  assert.equal(bound.connections[0]?.bind, true);
  assert.equal(bound.connections[0]?.localPort, 5000);
});

test('<connection> blocks start from the global options read so far', () => {
  const r = build(
    'client\nport 1000\ntls-auth ta.key 1\n<connection>\nremote a.example\nproto udp4\nexplicit-exit-notify 2\n</connection>\n<connection>\nremote b.example 2000\n<tls-crypt>\nTC\n</tls-crypt>\n</connection>\nport 3000\nremote ignored.example\n',
    'multi.ovpn',
  );
  const c = r.options.connections;
  assert.deepEqual(
    c.map((e) => [e.remote, e.remotePort, e.proto.family, e.explicitExitNotify, e.line]),
    [
      ['a.example', 1000, 'ipv4', 2, 4],
      ['b.example', 2000, 'any', 0, 9],
    ],
  );
  assert.equal(c[0]?.tlsAuth?.kind, 'file');
  assert.equal(c[0]?.keyDirection, 1);
  assert.deepEqual(c[1]?.tlsCrypt, { kind: 'inline', text: 'TC\n', file: 'multi.ovpn', line: 11 });
  assert.deepEqual(
    r.warnings.map((w) => w.line),
    [15, 16],
  );
  assert.match(r.warnings[0]?.message ?? '', /port does not apply to the <connection> blocks above it/);
  assert.match(r.warnings[1]?.message ?? '', /remote outside <connection> is ignored/);
});

test('key and certificate material names its source; relative paths follow cd', () => {
  const o = opts(
    'ca /etc/pki/ca.crt\ncert server.crt\n<key>\nKEY\n</key>\ncd /srv/vpn\ntls-auth ta.key 0\ndh none\ncrl-verify crl dir\nauth-user-pass\n',
  );
  assert.deepEqual(o.ca, { kind: 'file', path: '/etc/pki/ca.crt', resolved: '/etc/pki/ca.crt', file: 'server.conf', line: 1 });
  // OpenVPN opens files after reading every option, so the last cd counts for all of them.
  assert.deepEqual(o.cert, { kind: 'file', path: 'server.crt', resolved: '/srv/vpn/server.crt', file: 'server.conf', line: 2 });
  assert.deepEqual(o.key, { kind: 'inline', text: 'KEY\n', file: 'server.conf', line: 3 });
  assert.equal(o.cd, '/srv/vpn');
  assert.equal(o.keyDirection, 0);
  assert.equal(o.dh, 'none');
  assert.equal(o.crlVerify?.dir, true);
  assert.deepEqual(o.authUserPass, { kind: 'stdin' });
  // Without cd, relative names resolve against the working directory, not the config's directory.
  const w = opts('ca ca.crt\n');
  assert.equal(w.ca?.kind === 'file' ? w.ca.resolved : '', '/etc/openvpn/ca.crt');
  const inl = opts('<tls-auth>\nK\n</tls-auth>\nkey-direction 1\n<auth-user-pass>\nuser\npass\n</auth-user-pass>\n');
  assert.equal(inl.keyDirection, 1);
  assert.deepEqual(inl.authUserPass, { kind: 'inline', text: 'user\npass\n', file: 'server.conf', line: 5 });
});

test("'[inline]' as a file name must be followed by the inline block", () => {
  const o = opts('tls-auth [inline] 1\n<tls-auth>\nK\n</tls-auth>\n');
  assert.deepEqual(o.tlsAuth, { kind: 'inline', text: 'K\n', file: 'server.conf', line: 2 });
  assert.equal(o.keyDirection, 1);
  rejects('ca [inline]\nverb 3\n', "server.conf:1: ca: '[inline]' names no file, and no <ca> block follows; add the block or name a file");
});

test('ciphers, TLS versions and compression settle as 2.6 does', () => {
  const a = build('client\nremote x\ncipher AES-256-CBC\ndata-ciphers AES-256-GCM:CHACHA20-POLY1305\n');
  assert.equal(a.options.cipher, 'AES-256-CBC');
  assert.match(a.warnings[0]?.message ?? '', /cipher 'AES-256-CBC' is not in data-ciphers/);
  const b = build('client\nremote x\ncipher AES-256-CBC\ndata-ciphers-fallback AES-256-CBC\n');
  assert.deepEqual(b.warnings, []);
  assert.equal(b.options.dataCiphersFallback, 'AES-256-CBC');

  assert.equal(opts('tls-version-max 1.1\n').tlsVersionMin, '1.1');
  // OpenSSL 3 speaks no TLS below 1.2 at its default security level: raised, with a warning.
  assert.deepEqual(
    build('tls-version-max 1.1\n').warnings.map((w) => w.message),
    ['tls-version-max 1.1 is raised to 1.2, the lowest TLS version shardvpn speaks'],
  );
  assert.deepEqual(build('tls-version-max 1.2\n').warnings, []);
  // An unknown version with or-highest takes the highest tls-version-max allows; a known one above it is an error.
  assert.equal(opts('tls-version-min 1.9 or-highest\ntls-version-max 1.2\n').tlsVersionMin, '1.2');
  rejects('tls-version-min 1.3\ntls-version-max 1.2\n', 'server.conf:1: tls-version-min: 1.3 is above tls-version-max 1.2');
  assert.equal(opts('tls-version-min 1.3\n').tlsVersionMin, '1.3');
  const oh = opts('tls-version-min 1.9 or-highest\n');
  assert.deepEqual([oh.tlsVersionMin, oh.tlsVersionMinOrHighest], ['1.3', true]);

  assert.deepEqual(opts('comp-lzo no\n').compression, {
    framing: 'comp-lzo-no',
    allow: 'no',
    allowExplicit: false,
    adaptive: false,
    where: { file: 'server.conf', line: 1 },
  });
  const lzo = build('comp-lzo\n');
  assert.deepEqual(
    [lzo.options.compression.framing, lzo.options.compression.allow, lzo.options.compression.adaptive],
    ['lzo', 'asym', true],
  );
  assert.match(lzo.warnings[0]?.message ?? '', /compression is enabled for receiving only/);
  assert.equal(opts('compress\n').compression.framing, 'stub');
  assert.equal(opts('compress stub-v2\n').compression.allow, 'no');
  assert.equal(opts('allow-compression yes\ncompress lz4-v2\n').compression.allow, 'yes');
  rejects(
    'allow-compression no\nallow-compression yes\n',
    /^server\.conf:2: allow-compression: cannot set allow-compression to 'yes' after 'no'/,
  );
});

test('unsupported features parse but are recorded for the runtime to refuse; TCP is supported', () => {
  const o = opts('proto tcp-server\ndev tap0\nsecret static.key\nplugin /usr/lib/openvpn/openvpn-plugin-auth-pam.so login\n');
  assert.deepEqual(
    o.unsupported.map((u) => `${u.line}:${u.directive}`),
    ['2:dev', '3:secret', '4:plugin'],
  );
  assert.match(o.unsupported[2]!.message, /use auth-user-pass-verify with a script/);
  // proto tcp settles to tcp-server on a server and tcp-client on a client.
  assert.equal(opts('dev tun\nproto tcp\nserver 10.8.0.0 255.255.255.0\n').connections[0]?.proto.transport, 'tcp-server');
  assert.equal(opts('client\nremote x\nproto tcp\n').connections[0]?.proto.transport, 'tcp-client');
  assert.equal(opts('client\nremote x 443 tcp\n').connections[0]?.proto.transport, 'tcp-client');
});

test('verify-client-cert none and optional need another way to check clients, as options.c requires', () => {
  const server = 'dev tun\nserver 10.8.0.0 255.255.255.0\n';
  rejects(
    `${server}verify-client-cert none\n`,
    'server.conf:3: verify-client-cert: verify-client-cert none must be used with an auth-user-pass-verify script or management-client-auth',
  );
  rejects(`${server}verify-client-cert optional\n`, /verify-client-cert optional must be used with/);
  assert.equal(opts(`${server}verify-client-cert none\nauth-user-pass-verify check.sh via-file\n`).verifyClientCert, 'none');
  assert.equal(
    opts(`${server}verify-client-cert optional\nmanagement 127.0.0.1 7505\nmanagement-client-auth\n`).verifyClientCert,
    'optional',
  );
  assert.equal(opts(server).verifyClientCert, 'require');
  assert.deepEqual(opts(`${server}verify-client-cert none\nauth-user-pass-verify check.sh via-env\n`).unsupported, []);
});

test('auth-gen-token: lifetime, renewal (reneg-sec by default) and external-auth as options.c reads them; its limits', () => {
  const server = 'dev tun\nserver 10.8.0.0 255.255.255.0\nauth-user-pass-verify check.sh via-file\n';
  assert.deepEqual(opts(`${server}auth-gen-token\n`).authGenToken, { lifetimeS: 0, renewalS: 3600, externalAuth: false });
  assert.deepEqual(opts(`${server}reneg-sec 900\nauth-gen-token 28800 external-auth\n`).authGenToken, {
    lifetimeS: 28800,
    renewalS: 900,
    externalAuth: true,
  });
  assert.deepEqual(opts(`${server}auth-gen-token 0 600 external-auth\n`).authGenToken, { lifetimeS: 0, renewalS: 600, externalAuth: true });
  rejects(`${server}auth-gen-token 0 600 sometimes\n`, 'server.conf:4: auth-gen-token: Invalid argument to auth-gen-token: sometimes (3)');
  rejects(`${server}auth-gen-token soon\n`, /server\.conf:4: auth-gen-token: bad lifetime 'soon'/);
  rejects(
    `${server}reneg-sec 0\nauth-gen-token\n`,
    'server.conf:5: auth-gen-token: --auth-gen-token needs a non-infinite --reneg-sec setting',
  );
  rejects(
    `${server}auth-gen-token 0 100\n`,
    'server.conf:4: auth-gen-token: --auth-gen-token renewal time needs to be at least two times --hand-window (60)',
  );
  const inline = opts(`${server}auth-gen-token\n<auth-gen-token-secret>\nKEY\n</auth-gen-token-secret>\n`).authGenTokenSecret;
  assert.equal(inline?.kind, 'inline');
  const file = opts(`${server}auth-gen-token\nauth-gen-token-secret token.key\n`).authGenTokenSecret;
  assert.equal(file?.kind === 'file' ? file.resolved : null, '/etc/openvpn/token.key');
});

test('http-proxy and http-proxy-option in either order, for every connection entry; methods shardvpn lacks are refused at start', () => {
  const client = 'client\ndev tun\nproto tcp\nremote vpn.example.com 443\n';
  const o = opts(
    `${client}http-proxy-option AGENT Mozilla/5.0\nhttp-proxy proxy.lan 3128 creds.txt basic\nhttp-proxy-option CUSTOM-HEADER X-Forwarded-For 10.1.1.1\n`,
  );
  const entry = o.connections[0]!;
  assert.deepEqual(entry.httpProxy, {
    host: 'proxy.lan',
    port: 3128,
    auth: { kind: 'file', path: 'creds.txt', resolved: '/etc/openvpn/creds.txt' },
  });
  assert.deepEqual(entry.httpProxyOptions, { agent: 'Mozilla/5.0', headers: [{ name: 'X-Forwarded-For', content: '10.1.1.1' }] });
  assert.deepEqual(opts(`${client}http-proxy proxy.lan 3128\n`).connections[0]!.httpProxy, { host: 'proxy.lan', port: 3128 });
  assert.deepEqual(opts(`${client}http-proxy proxy.lan 3128 creds.txt none\n`).connections[0]!.httpProxy, {
    host: 'proxy.lan',
    port: 3128,
  });
  for (const [line, why] of [
    ['http-proxy proxy.lan 3128 auto', /http-proxy auto .* is not supported by shardvpn/],
    ['http-proxy proxy.lan 3128 creds.txt ntlm', /http-proxy ntlm authentication is not supported by shardvpn; use basic/],
  ] as const) {
    const refused = build(`${client}${line}\n`).options.unsupported;
    assert.equal(refused.length, 1, line);
    assert.match(refused[0]!.message, why);
  }
  rejects(`${client}http-proxy proxy.lan 3128 creds.txt kerberos\n`, /server\.conf:5: http-proxy: bad auth-method 'kerberos'/);
  rejects(
    `${client}http-proxy-option COLOUR blue\n`,
    "server.conf:5: http-proxy-option: Bad http-proxy-option or missing or extra parameter: 'COLOUR blue'",
  );
});

test('routes, push, pull-filter, redirect-gateway, ccd directives and our own', () => {
  const o = opts(
    [
      'route 192.168.10.0 255.255.255.0',
      'route 10.1.0.0 255.255.0.0 10.8.0.1 5',
      'route-ipv6 2001:db8::/32',
      'route-gateway 10.8.0.1',
      'route-nopull',
      'push "route 192.168.10.0 255.255.255.0"',
      'push "dhcp-option DNS 10.8.0.1"',
      'pull-filter ignore "route"',
      'pull-filter accept "route 10."',
      'redirect-gateway def1 bypass-dhcp ipv6',
      'dhcp-option DNS 9.9.9.9',
      'client-to-client',
      'duplicate-cn',
      'max-clients 100',
      'client-config-dir ccd',
      'iroute 192.168.50.0 255.255.255.0',
      'ifconfig-push 10.8.0.9 255.255.255.0',
      'ifconfig-pool-persist ipp.txt 0',
      'status /run/status.log 10',
      'status-version 2',
      'management 127.0.0.1 7505 pw.txt',
      'reneg-sec 0',
      'reneg-bytes 1000000',
      'hand-window 30',
      'tran-window 60',
      'tls-timeout 5',
      'replay-window 128 30',
      'tun-mtu 1400',
      'mssfix 1360',
      'sndbuf 0',
      'rcvbuf 393216',
      'workers 4',
      'metrics-listen 127.0.0.1 9100',
      'metrics-per-client',
      'user nobody',
      'group nogroup',
      'persist-key',
      'persist-tun',
      'writepid /run/openvpn.pid',
      'up "/etc/openvpn/up.sh arg"',
      'script-security 2',
      'verify-x509-name server_abc name',
      'remote-cert-tls client',
      'tls-cert-profile preferred',
      'auth SHA512',
    ].join('\n'),
  );
  assert.deepEqual(o.routes, [
    { network: '192.168.10.0', netmask: '255.255.255.0' },
    { network: '10.1.0.0', netmask: '255.255.0.0', gateway: '10.8.0.1', metric: 5 },
  ]);
  assert.deepEqual(o.routesIpv6, [{ network: '2001:db8::/32' }]);
  assert.equal(o.routeGateway, '10.8.0.1');
  assert.equal(o.routeNopull, true);
  assert.deepEqual(o.push, ['route 192.168.10.0 255.255.255.0', 'dhcp-option DNS 10.8.0.1']);
  assert.deepEqual(o.pullFilters, [
    { action: 'ignore', text: 'route' },
    { action: 'accept', text: 'route 10.' },
  ]);
  assert.deepEqual(o.redirectGateway, { ipv4: true, ipv6: true, flags: ['def1', 'bypass-dhcp', 'ipv6'] });
  assert.deepEqual(o.dhcpOptions, [{ type: 'DNS', value: '9.9.9.9' }]);
  assert.deepEqual([o.clientToClient, o.duplicateCn, o.maxClients], [true, true, 100]);
  assert.equal(o.clientConfigDir?.resolved, '/etc/openvpn/ccd');
  assert.deepEqual(o.iroutes, [{ network: '192.168.50.0', netmask: '255.255.255.0' }]);
  assert.deepEqual(o.ifconfigPush, { local: '10.8.0.9', remoteNetmask: '255.255.255.0' });
  assert.deepEqual(o.ifconfigPoolPersist, { refreshSeconds: 0, path: 'ipp.txt', resolved: '/etc/openvpn/ipp.txt' });
  assert.deepEqual(o.status, { intervalSeconds: 10, path: '/run/status.log', resolved: '/run/status.log' });
  assert.equal(o.statusVersion, 2);
  assert.deepEqual(o.management, { address: '127.0.0.1', port: '7505', unix: false, passwordFile: 'pw.txt' });
  assert.deepEqual([o.renegSec, o.renegBytes, o.handWindow, o.tranWindow, o.tlsTimeout], [0, 1000000, 30, 60, 5]);
  assert.deepEqual([o.replayWindow, o.replayTime], [128, 30]);
  assert.deepEqual([o.tunMtu, o.mssfix.size, o.mssfix.encap], [1400, 1360, false]);
  assert.deepEqual([o.sndbuf, o.rcvbuf], [0, 393216]);
  assert.deepEqual([o.workers, o.metricsListen, o.metricsPerClient], [4, { address: '127.0.0.1', port: 9100 }, true]);
  assert.deepEqual([o.user, o.group, o.persistKey, o.persistTun], ['nobody', 'nogroup', true, true]);
  assert.equal(o.writepid?.resolved, '/run/openvpn.pid');
  assert.equal(o.up, '/etc/openvpn/up.sh arg');
  assert.equal(o.scriptSecurity, 2);
  assert.deepEqual(o.verifyX509Name, { name: 'server_abc', type: 'name' });
  assert.equal(o.remoteCertTls, 'client');
  assert.equal(o.auth, 'SHA512');
});

test('later directives win, files then argv', () => {
  const d = [
    ...parseConfigText('verb 3\nport 1194\npush "a"\n', 'server.conf'),
    ...parseArgv(['--verb', '0', '--port', '1195', '--push', 'b']),
  ];
  const o = buildOptions(d).options;
  assert.equal(o.verb, 0);
  assert.equal(o.localPort, 1195);
  assert.deepEqual(o.push, ['a', 'b']);
  assert.deepEqual(opts('push "a"\npush-reset\npush "b"\n').push, ['b']);
});

test('the remaining listed directives set their fields', () => {
  const o = opts(
    [
      'mode server',
      'tls-server',
      'dev tun0',
      'dev-type tun',
      'lport 1300',
      'rport 1400',
      'float',
      'ifconfig 10.8.0.1 10.8.0.2',
      'ifconfig-ipv6 fd00::1/64 fd00::2',
      'tls-crypt-v2 server-v2.key force-cookie',
      'tls-ciphersuites TLS_AES_256_GCM_SHA384',
      'tls-version-max 1.3',
      'data-ciphers AES-256-GCM:AES-128-GCM',
      'data-ciphers-fallback AES-128-CBC',
      'auth-user-pass creds.txt',
      'auth-nocache',
      'explicit-exit-notify 3',
      'down "/etc/openvpn/down.sh"',
      'mute 20',
      'verb 5',
      'log-append /var/log/openvpn.log',
      'reneg-pkts 100000',
      'reneg-sec 600 300',
      'remote-cert-tls server',
      'tls-cert-profile suiteb',
      'extra-certs chain.pem',
      'comp-lzo no',
    ].join('\n'),
  );
  assert.deepEqual([o.mode, o.tlsServer, o.dev, o.devType], ['server', true, 'tun0', 'tun']);
  assert.deepEqual([o.localPort, o.localPortDefined, o.remotePort, o.float], [1300, true, 1400, true]);
  assert.deepEqual(o.ifconfig, { local: '10.8.0.1', remoteNetmask: '10.8.0.2' });
  assert.deepEqual(o.ifconfigIpv6, { local: 'fd00::1', netbits: 64, remote: 'fd00::2' });
  assert.equal(o.tlsCryptV2?.kind === 'file' ? o.tlsCryptV2.resolved : '', '/etc/openvpn/server-v2.key');
  assert.equal(o.tlsCryptV2ForceCookie, true);
  assert.equal(o.tlsCiphersuites, 'TLS_AES_256_GCM_SHA384');
  assert.deepEqual([o.tlsVersionMin, o.tlsVersionMax], ['1.2', '1.3']);
  assert.deepEqual(o.dataCiphers, ['AES-256-GCM', 'AES-128-GCM']);
  assert.equal(o.dataCiphersFallback, 'AES-128-CBC');
  assert.equal(o.authUserPass?.kind === 'file' ? o.authUserPass.resolved : '', '/etc/openvpn/creds.txt');
  assert.equal(o.authNocache, true);
  assert.equal(o.explicitExitNotify, 3);
  assert.equal(o.down, '/etc/openvpn/down.sh');
  assert.deepEqual([o.mute, o.verb], [20, 5]);
  assert.deepEqual(o.log, { append: true, path: '/var/log/openvpn.log', resolved: '/var/log/openvpn.log' });
  assert.deepEqual([o.renegPkts, o.renegSec, o.renegSecMin], [100000, 600, 300]);
  assert.equal(o.remoteCertTls, 'server');
  assert.equal(o.tlsCertProfile, 'suiteb');
  assert.equal(o.extraCerts?.kind, 'file');
  assert.equal(o.compression.framing, 'comp-lzo-no');
  assert.equal(o.connections[0]?.bind, true);
});

test('OpenVPN tuning options with no effect here are accepted with a warning; options shardvpn lacks are refused by name', () => {
  const r = build('hash-size 1024 1024\nbcast-buffers 512\nconnect-freq 10 60\nmax-routes-per-client 256\nopt-verify\n');
  assert.deepEqual(
    r.warnings.map((w) => `${w.line} ${/^(\S+) is ignored/.exec(w.message)?.[1] ?? w.message}`),
    ['1 hash-size', '2 bcast-buffers', '3 connect-freq', '4 max-routes-per-client', '5 opt-verify'],
  );
  const refused = build('tls-verify /bin/true\nmultihome\n').options.unsupported;
  assert.deepEqual(
    refused.map((u) => [u.line, u.directive]),
    [
      [1, 'tls-verify'],
      [2, 'multihome'],
    ],
  );
  assert.match(refused[0]!.message, /not supported by shardvpn/);
});

test('udp-offload yes|no: on by default, off with no, anything else refused at its line', () => {
  assert.equal(opts('dev tun\n').udpOffload, true);
  assert.equal(opts('dev tun\nudp-offload no\n').udpOffload, false);
  assert.equal(opts('dev tun\nudp-offload no\nudp-offload yes\n').udpOffload, true);
  rejects('dev tun\nudp-offload maybe\n', /server\.conf:2.*udp-offload/);
  rejects('dev tun\nudp-offload\n', /server\.conf:2.*udp-offload/);
});

test('heap-shrink-interval N: 60 by default, 0 turns it off, out of range refused at its line', () => {
  assert.equal(opts('dev tun\n').heapShrinkSeconds, 60);
  assert.equal(opts('dev tun\nheap-shrink-interval 0\n').heapShrinkSeconds, 0);
  assert.equal(opts('dev tun\nheap-shrink-interval 600\n').heapShrinkSeconds, 600);
  rejects('dev tun\nheap-shrink-interval 86401\n', /server\.conf:2.*heap-shrink-interval/);
  rejects('dev tun\nheap-shrink-interval -1\n', /server\.conf:2.*heap-shrink-interval/);
  rejects('dev tun\nheap-shrink-interval\n', /server\.conf:2.*heap-shrink-interval/);
});

test('udp-coalesce-usecs N: 100 by default, 0 turns it off, out of range refused at its line', () => {
  assert.equal(opts('dev tun\n').udpCoalesceUsecs, 100);
  assert.equal(opts('dev tun\nudp-coalesce-usecs 0\n').udpCoalesceUsecs, 0);
  assert.equal(opts('dev tun\nudp-coalesce-usecs 250\n').udpCoalesceUsecs, 250);
  rejects('dev tun\nudp-coalesce-usecs 10001\n', /server\.conf:2.*udp-coalesce-usecs/);
  rejects('dev tun\nudp-coalesce-usecs -1\n', /server\.conf:2.*udp-coalesce-usecs/);
  rejects('dev tun\nudp-coalesce-usecs\n', /server\.conf:2.*udp-coalesce-usecs/);
});

test('server pools up to 2^20 addresses (OpenVPN stops at 65,536); larger ones are refused with file:line', () => {
  const o = opts('mode server\ntls-server\ndev tun\ntopology subnet\nserver 10.160.0.0 255.252.0.0\n');
  assert.equal(o.ifconfigPool?.start, '10.160.0.2');
  assert.equal(o.ifconfigPool?.end, '10.163.255.254');
  rejects(
    'mode server\ntls-server\ndev tun\ntopology subnet\nserver 10.0.0.0 255.224.0.0\n',
    /server\.conf:5: server: netmask allows for too many host addresses \(subnet must be 255\.240\.0\.0 \(\/12\) or higher\)/,
  );
  rejects('ifconfig-pool 10.0.0.2 10.31.255.250\n', /server\.conf:1.*more than 1048576 addresses/);
});

test('tun-queues single|shard: shard by default, single when asked, anything else refused at its line', () => {
  assert.equal(opts('dev tun\n').tunQueues, 'shard');
  assert.equal(opts('dev tun\ntun-queues single\n').tunQueues, 'single');
  assert.equal(opts('dev tun\ntun-queues shard\ntun-queues single\n').tunQueues, 'single');
  rejects('dev tun\ntun-queues many\n', /server\.conf:2.*tun-queues/);
  rejects('dev tun\ntun-queues\n', /server\.conf:2.*tun-queues/);
});

test('peer-fingerprint: a line or a block, any case, comments skipped, lines add up; malformed ones name the line', () => {
  const fp = (byte: string): string => Array.from({ length: 32 }, () => byte).join(':');
  assert.deepEqual(opts(`peer-fingerprint ${fp('ab')}\n`).peerFingerprints, [fp('AB')]);
  assert.deepEqual(
    opts(`peer-fingerprint ${fp('01')}\n<peer-fingerprint>\n# alice\n  ${fp('0a')}\n\n; bob\n${fp('FF')}\n</peer-fingerprint>\n`)
      .peerFingerprints,
    [fp('01'), fp('0A'), fp('FF')],
  );
  assert.deepEqual(opts('<peer-fingerprint>\n</peer-fingerprint>\n').peerFingerprints, []);
  rejects(
    `peer-fingerprint ${fp('ab').slice(3)}\n`,
    /^server\.conf:1: peer-fingerprint: hash fingerprint is wrong length - expected 32 bytes, got 31: /,
  );
  rejects(
    `peer-fingerprint ${fp('ab')}:cd\n`,
    /^server\.conf:1: peer-fingerprint: hash fingerprint is wrong length - expected 32 bytes, got 33: /,
  );
  rejects(
    `verb 3\n<peer-fingerprint>\n${fp('zz')}\n</peer-fingerprint>\n`,
    /^server\.conf:2: peer-fingerprint: format error in hash fingerprint: zz:/,
  );
  rejects(`peer-fingerprint ${fp('a')}\n`, /format error in hash fingerprint/);
});

test('x509-username-field: fields kept as written, all-lower-case ones upcased with 2.6 warning, only ext:subjectAltName', () => {
  const b = build('x509-username-field emailAddress ou ext:subjectAltName serialNumber\n');
  assert.deepEqual(b.options.x509UsernameField, ['emailAddress', 'OU', 'ext:subjectAltName', 'serialNumber']);
  assert.deepEqual(
    b.warnings.map((w) => w.message),
    ["DEPRECATED FEATURE: automatically upcased the --x509-username-field parameter to 'OU'; please update your configuration"],
  );
  rejects(
    'x509-username-field ext:issuerAltName\n',
    /^server\.conf:1: x509-username-field: unsupported x509-username-field extension: ext:issuerAltName/,
  );
});

test('remote-cert-ku: hex values as OpenVPN reads them (0x allowed), none asks only for the extension', () => {
  assert.deepEqual(opts('remote-cert-ku a0 0x88 F8\n').remoteCertKu, [0xa0, 0x88, 0xf8]);
  assert.deepEqual(opts('remote-cert-ku\n').remoteCertKu, []);
  rejects('remote-cert-ku zz\n', "server.conf:1: remote-cert-ku: bad key usage 'zz': expected hex, e.g. a0");
});

test('route-metric and down-pre are read', () => {
  assert.equal(opts('route-metric 7\n').routeMetric, 7);
  assert.equal(opts('down-pre\n').downPre, true);
  rejects('route-metric x\n', /^server\.conf:1: route-metric: /);
});

test('docs/openvpn-options.md: a table row that cites a directives file cites the line that defines the directive', () => {
  const root = path.join(__dirname, '..', '..');
  const doc = readFileSync(path.join(root, 'docs', 'openvpn-options.md'), 'utf8');
  let checked = 0;
  for (const row of doc.split('\n')) {
    const name = /^\| `([^` ]+)/.exec(row)?.[1];
    const ref = /`(src\/shared\/config\/directives-[a-z]+\.ts):(\d+)`/.exec(row);
    if (name === undefined || ref === null) continue;
    const line = readFileSync(path.join(root, ref[1]!), 'utf8').split('\n')[Number(ref[2]) - 1] ?? '';
    assert.match(line, new RegExp(`^\\s*('${name}'|${name}):`), `${name} -> ${ref[1]}:${ref[2]}: ${line.trim()}`);
    checked++;
  }
  assert.ok(checked > 30, `${checked} rows checked`);
});

test('verify-hash: SHA1 by default on a line, SHA256 in a block, either when named; never with peer-fingerprint', () => {
  const sha1 = Array.from({ length: 20 }, () => 'ab').join(':');
  const sha256 = Array.from({ length: 32 }, () => 'cd').join(':');
  assert.deepEqual(opts(`verify-hash ${sha1}\n`).verifyHash, { algo: 'sha1', hashes: [sha1.toUpperCase()] });
  assert.deepEqual(opts(`verify-hash ${sha256} SHA256\n`).verifyHash, { algo: 'sha256', hashes: [sha256.toUpperCase()] });
  assert.deepEqual(opts(`<verify-hash>\n${sha256}\n</verify-hash>\n`).verifyHash, { algo: 'sha256', hashes: [sha256.toUpperCase()] });
  rejects(`verify-hash ${sha256}\n`, /^server\.conf:1: verify-hash: hash fingerprint is wrong length - expected 20 bytes, got 32: /);
  rejects(`verify-hash ${sha1} MD5\n`, "server.conf:1: verify-hash: bad hashing algorithm 'MD5': expected SHA1, SHA256");
  rejects(
    `verify-hash ${sha1}\npeer-fingerprint ${sha256}\n`,
    /^server\.conf:2: peer-fingerprint: ERROR: Setting peer-fingerprint not allowed/,
  );
  rejects(`peer-fingerprint ${sha256}\nverify-hash ${sha1}\n`, /^server\.conf:2: verify-hash: ERROR: Setting verify-hash not allowed/);
});

test('dns (2.6): servers by priority with addresses and ports, search domains; malformed ones name the line', () => {
  const dns = opts(
    'dns server 5 address 9.9.9.9 [2620:fe::fe]:853\ndns server -1 address 10.0.0.53\ndns server 5 dnssec optional\ndns search-domains a.example b.example\n',
  ).dns;
  assert.deepEqual(dns, {
    searchDomains: ['a.example', 'b.example'],
    servers: [
      { priority: -1, addresses: [{ address: '10.0.0.53' }], resolveDomains: [] },
      { priority: 5, addresses: [{ address: '9.9.9.9' }, { address: '2620:fe::fe', port: 853 }], resolveDomains: [], dnssec: 'optional' },
    ],
  });
  rejects('dns server 200 address 1.1.1.1\n', "server.conf:1: dns: --dns server: invalid priority value '200'");
  rejects('dns server 1 address 1.1.1.1.1\n', "server.conf:1: dns: --dns server 1: malformed address or maximum exceeded '1.1.1.1.1'");
  // IPv6 as OpenVPN prints it back (inet_ntop).
  assert.deepEqual(opts('dns server 0 address FD00:0:0::53\n').dns?.servers[0]?.addresses, [{ address: 'fd00::53' }]);
  rejects('dns server 1 address 1.1.1.1:0\n', /^server\.conf:1: dns: --dns server 1: malformed address/);
  rejects('dns server 1 transport quic\n', "server.conf:1: dns: --dns server 1: malformed transport value 'quic'");
  rejects('dns resolvers 1.1.1.1\n', /^server\.conf:1: dns: --dns: unknown option type 'resolvers'/);
  rejects('verb 3\ndns server 2 dnssec yes\n', /^server\.conf:2: dns: ERROR: dns server 2 does not have an address assigned/);
});
