// A shardvpn client refuses a server it must not trust, with a clear message, and retries the
// way OpenVPN does (TLS error, restart pause of connect-retry, another attempt); config mistakes
// are named with file and line before anything starts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';

import { BIN, clientConfig, serverConfig, startOurClient, startStockServer, waitCount } from './helpers/client-lab';
import { VpnLab } from '../lab/vpn-lab';

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(1);
});
after(async () => {
  await lab.cleanup();
});

test('verify-x509-name that does not match the server certificate: refused, retried', { timeout: 40_000 }, async () => {
  const server = await startStockServer(lab, serverConfig(lab));
  const client = startOurClient(lab, 0, clientConfig(lab, { extra: 'verify-x509-name vpn.example.com name\n' }));
  let clientCode: number | null;
  try {
    await waitCount(client, /link remote: \[AF_INET\]10\.150\.0\.1:1194/g, 2, 20_000);
    const log = client.log();
    assert.match(log, /VERIFY ERROR: verify-x509-name name 'vpn\.example\.com' does not match subject CN 'server'/);
    assert.match(log, /TLS Error: TLS handshake failed/);
    assert.match(log, /SIGUSR1\[soft,tls-error\] received, process restarting/);
    assert.match(log, /Restart pause, 1 second\(s\)/);
    assert.doesNotMatch(log, /Initialization Sequence Completed|Peer Connection Initiated/);
  } finally {
    // Both always stopped, the client's code checked after: a throw here would leave the server on its port.
    clientCode = await client.stop();
    await server.stop();
  }
  assert.equal(clientCode, 0, client.log().slice(-3000));
});

test('a server certificate from another CA: refused with the verification error, retried', { timeout: 40_000 }, async () => {
  const server = await startStockServer(lab, serverConfig(lab));
  const otherCa = lab.file('other-ca.crt', lab.pki.otherCaCert);
  const config = clientConfig(lab).replace(/^ca .*$/m, `ca ${otherCa}`);
  const client = startOurClient(lab, 0, config);
  let clientCode: number | null;
  try {
    await waitCount(client, /link remote: \[AF_INET\]10\.150\.0\.1:1194/g, 2, 20_000);
    const log = client.log();
    assert.match(
      log,
      /VERIFY ERROR: .*(self-signed certificate in certificate chain|unable to get local issuer certificate|certificate signature failure)/i,
    );
    assert.match(log, /SIGUSR1\[soft,tls-error\] received, process restarting/);
    assert.doesNotMatch(log, /Initialization Sequence Completed/);
  } finally {
    // Both always stopped, the client's code checked after: a throw here would leave the server on its port.
    clientCode = await client.stop();
    await server.stop();
  }
  assert.equal(clientCode, 0, client.log().slice(-3000));
});

function runConfig(text: string, name: string): { status: number | null; stderr: string } {
  const file = lab.file(name, text);
  const r = spawnSync(process.execPath, [BIN, '--config', file], { encoding: 'utf8', timeout: 10_000 });
  return { status: r.status, stderr: `${r.stderr}${r.stdout}` };
}

test('bad client config lines are named with file:line, and nothing starts', () => {
  const unknown = runConfig('client\ndev tun\nremote 10.150.0.1 1194\nno-such-directive yes\n', 'bad-unknown.conf');
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /bad-unknown\.conf:4: unknown directive 'no-such-directive'/);
  const badArg = runConfig(`client\ndev tun\nremote 10.150.0.1 1194\n${lab.clientTlsLines()}connect-retry soon\n`, 'bad-arg.conf');
  assert.equal(badArg.status, 1);
  assert.match(badArg.stderr, /bad-arg\.conf:8: connect-retry: /);
  const missing = runConfig(
    'client\ndev tun\nremote 10.150.0.1 1194\nca /nonexistent/ca.crt\ncert /nonexistent/c.crt\nkey /nonexistent/c.key\n',
    'bad-file.conf',
  );
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /bad-file\.conf:4: ca: cannot read '\/nonexistent\/ca\.crt'/);
  const cipher = runConfig(
    `client\ndev tun\nremote 10.150.0.1 1194\n${lab.clientTlsLines()}data-ciphers CAMELLIA-128-CBC\n`,
    'bad-cipher.conf',
  );
  assert.equal(cipher.status, 1);
  assert.match(cipher.stderr, /bad-cipher\.conf:8: data-ciphers: unsupported cipher in --data-ciphers: CAMELLIA-128-CBC/);
});
