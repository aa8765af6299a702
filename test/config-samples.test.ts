import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildOptions, parseConfigText } from '../src/shared/config';
import { angristanClient, angristanServer, nyrClientCrlf, nyrServer, pivpnClient, pivpnServer, samples } from './config-samples';

function build(s: { name: string; text: string }): ReturnType<typeof buildOptions> {
  return buildOptions(parseConfigText(s.text, s.name), { cwd: '/etc/openvpn' });
}

test('every installer-written sample parses without error or unsupported feature', () => {
  for (const s of samples) {
    const { options } = build(s);
    assert.deepEqual(options.unsupported, [], s.name);
  }
});

test('angristan server.conf: subnet server, tls-crypt, relative files under the working directory', () => {
  const { options: o, warnings } = build(angristanServer);
  assert.equal(o.mode, 'server');
  assert.equal(o.tlsServer, true);
  assert.equal(o.topology, 'subnet');
  assert.deepEqual(o.push, [
    'dhcp-option DNS 1.1.1.1',
    'dhcp-option DNS 1.0.0.1',
    'redirect-gateway def1 bypass-dhcp',
    'route-gateway 10.8.0.1',
    'topology subnet',
    'ping 10',
    'ping-restart 120',
  ]);
  assert.deepEqual(o.ifconfigPool, { start: '10.8.0.2', end: '10.8.0.254', netmask: '255.255.255.0' });
  assert.equal(o.pingRecTimeout, 240);
  assert.equal(o.dh, 'none');
  assert.deepEqual(o.tlsCrypt, {
    kind: 'file',
    path: 'tls-crypt.key',
    resolved: '/etc/openvpn/tls-crypt.key',
    file: 'server.conf',
    line: 17,
  });
  assert.equal(o.connections[0]?.tlsCrypt, o.tlsCrypt);
  assert.deepEqual(o.dataCiphers, ['AES-128-GCM']);
  assert.equal(o.cipher, 'AES-128-GCM');
  assert.equal(o.auth, 'SHA256');
  assert.equal(o.verb, 3);
  assert.equal(o.ifconfigPoolPersist?.resolved, '/etc/openvpn/ipp.txt');
  assert.deepEqual(
    warnings.map((w) => `${w.line}:${w.message.split(' ')[0]}`),
    ['24:ncp-ciphers'],
  );
});

test('angristan client .ovpn: inline material, setenv opt and ignore-unknown-option', () => {
  const { options: o, warnings } = build(angristanClient);
  assert.equal(o.pull, true);
  assert.equal(o.tlsClient, true);
  assert.equal(o.ca?.kind, 'inline');
  assert.equal(o.ca?.kind === 'inline' ? o.ca.line : 0, 21);
  assert.match(o.key?.kind === 'inline' ? o.key.text : '', /^-----BEGIN PRIVATE KEY-----\n/);
  assert.match(o.tlsCrypt?.kind === 'inline' ? o.tlsCrypt.text : '', /OpenVPN Static key V1/);
  assert.deepEqual(
    o.connections.map((c) => [c.remote, c.remotePort, c.bind, c.explicitExitNotify]),
    [['203.0.113.10', 1194, false, 1]],
  );
  assert.deepEqual(o.remoteCertTls, 'server');
  assert.deepEqual(o.verifyX509Name, { name: 'server_abc', type: 'name' });
  assert.equal(o.authNocache, true);
  assert.deepEqual(warnings, [{ file: 'alice.ovpn', line: 19, message: "unknown directive 'block-outside-dns' ignored" }]);
});

test('Nyr server and CRLF client', () => {
  const s = build(nyrServer).options;
  assert.equal(s.local, '127.0.0.1');
  assert.equal(s.explicitExitNotify, 1);
  assert.deepEqual(s.dh, { kind: 'file', path: 'dh.pem', resolved: '/etc/openvpn/dh.pem', file: 'nyr-server.conf', line: 8 });
  assert.ok(s.push.includes('block-outside-dns'));
  const c = build(nyrClientCrlf);
  assert.equal(c.options.connections[0]?.remote, 'vpn.example.com');
  // CR never leaks into values or inline text.
  assert.ok(!(c.options.ca?.kind === 'inline' ? c.options.ca.text : '\r').includes('\r'));
  assert.equal(c.options.auth, 'SHA512');
  assert.deepEqual(c.warnings, []);
});

test('PiVPN server and client: tls-auth directions, CBC cipher warned, syslog ignored', () => {
  const s = build(pivpnServer);
  assert.equal(s.options.keyDirection, 0);
  assert.equal(s.options.clientToClient, true);
  assert.deepEqual(s.options.status, { intervalSeconds: 20, path: 'status.log', resolved: '/etc/openvpn/status.log' });
  assert.equal(s.options.statusVersion, 3);
  assert.equal(s.options.pingRecTimeout, 240);
  assert.deepEqual(
    s.warnings.map((w) => w.line),
    [35, 26],
  );
  assert.match(s.warnings[0]?.message ?? '', /^syslog is ignored/);
  assert.match(s.warnings[1]?.message ?? '', /cipher 'AES-256-CBC' is not in data-ciphers/);
  const c = build(pivpnClient);
  assert.equal(c.options.keyDirection, 1);
  assert.equal(c.options.tlsAuth?.kind, 'inline');
  assert.equal(c.options.connections[0]?.keyDirection, 1);
});
