// OpenVPN 2.6's PKI-less set-up, as its manual writes it ("Small OpenVPN setup with
// peer-fingerprint"): self-signed certificates made with the manual's openssl commands, a
// server.conf with the clients' SHA256 fingerprints in a <peer-fingerprint> block and no `ca`, a
// client .ovpn with its key and certificate inline and the server's fingerprint. Both roles
// against the stock openvpn 2.6 binary; the only change to the manual's files is the server's
// address in `remote`. A certificate whose fingerprint is not listed is refused, both ways.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { BIN, type LabProcess, VpnLab } from '../lab/vpn-lab';
import { buildOptions, parseConfigText } from '../src/shared/config';

let lab: VpnLab;
let serial = 0;
before(() => {
  lab = VpnLab.create(1);
});
after(async () => {
  await lab.cleanup();
});

interface SelfSigned {
  key: string;
  cert: string;
  /** As `openssl x509 -fingerprint -sha256 -noout` prints it. */
  fingerprint: string;
}

/** The manual's command for a client: key and certificate on standard output. */
function selfSigned(cn: string): SelfSigned {
  const out = execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:secp384r1',
      '-keyout',
      '-',
      '-nodes',
      '-sha256',
      '-days',
      '3650',
      '-subj',
      `/CN=${cn}`,
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const key = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n/.exec(out)![0];
  const cert = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/.exec(out)![0];
  const printed = execFileSync('openssl', ['x509', '-fingerprint', '-sha256', '-noout'], { input: cert, encoding: 'utf8' });
  return { key, cert, fingerprint: printed.trim().replace(/^.*Fingerprint=/, '') };
}

const server = selfSigned('server');
const alice = selfSigned('alice');
const bob = selfSigned('bob');

/** The manual's server.conf, with the given fingerprints in its block (the manual's example spells them in lower case). */
function serverConf(fingerprints: string[]): string {
  return `# The server certificate we created in step 1
cert server.crt
key server.key

dh none
dev tun

# Listen on IPv6+IPv4 simultaneously
proto udp6

# The ip address the server will distribute
server 10.8.0.0 255.255.255.0
server-ipv6 fd00:6f76:706e::/64

# A tun-mtu of 1400 avoids problems of too big packets after VPN encapsulation
tun-mtu 1400

# The fingerprints of your clients. After adding/removing one here restart the
# server
<peer-fingerprint>
# alice
${fingerprints.map((f) => f.toLowerCase()).join('\n')}
</peer-fingerprint>

# Notify clients when you restart the server to reconnect quickly
explicit-exit-notify 1

# Ping every 60s, restart if no data received for 5 minutes
keepalive 60 300
`;
}

/** The manual's alice.ovpn for `who`, trusting the server fingerprint given. */
function clientOvpn(who: SelfSigned, serverFingerprint: string): string {
  return `# The name of your server to connect to
remote 10.150.0.1
client
# use a random source port instead the fixed 1194
nobind

<key>
${who.key}</key>
<cert>
${who.cert}</cert>

# This is the fingerprint of the server that we trust. We generated this fingerprint
# in step 2 of the server setup
peer-fingerprint ${serverFingerprint}

# The tun-mtu of the client should match the server MTU
tun-mtu 1400
dev tun
`;
}

/** Writes the case's files and starts `role` (ours or stock) in its namespace, in the case's directory. */
function start(role: 'server' | 'client', ours: boolean, config: string): LabProcess {
  const dir = path.join(lab.dir, `fingerprint-${serial++}`);
  mkdirSync(dir, { recursive: true });
  if (role === 'server') {
    writeFileSync(path.join(dir, 'server.key'), server.key, { mode: 0o600 });
    writeFileSync(path.join(dir, 'server.crt'), server.cert);
  }
  const name = role === 'server' ? 'server.conf' : 'alice.ovpn';
  writeFileSync(path.join(dir, name), config);
  const ns = role === 'server' ? lab.server : lab.clients[0]!;
  const args = ['--cd', dir, '--config', name];
  return ours ? lab.spawn(ns, process.execPath, [BIN, ...args], `shardvpn ${role}`) : lab.spawn(ns, 'openvpn', args, `openvpn ${role}`);
}

async function connects(srv: LabProcess, client: LabProcess): Promise<void> {
  try {
    await client.waitFor(/Initialization Sequence Completed/, 20_000).catch((error: Error) => {
      throw new Error(`${error.message}\n${srv.name} log:\n${srv.log().slice(-3000)}`);
    });
    assert.equal(lab.ping(lab.clients[0]!, '10.8.0.1'), 3, 'client -> server');
    // The manual sets no topology: 2.6's default net30 gives the first client 10.8.0.6.
    assert.equal(lab.ping(lab.server, '10.8.0.6'), 3, 'server -> client');
  } finally {
    await client.stop('SIGTERM', 5000);
    await srv.stop('SIGTERM', 5000);
  }
}

test("the manual's files read: the block's fingerprints (comment skipped, any case) and the client's line", () => {
  const read = (text: string, file: string): string[] | undefined =>
    buildOptions(parseConfigText(text, file, { expandIncludes: false }), { cwd: lab.dir }).options.peerFingerprints;
  assert.match(server.fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  assert.deepEqual(read(serverConf([alice.fingerprint, bob.fingerprint]), 'server.conf'), [alice.fingerprint, bob.fingerprint]);
  assert.deepEqual(read(clientOvpn(alice, server.fingerprint.toLowerCase()), 'alice.ovpn'), [server.fingerprint]);
});

test(
  'peer-fingerprint: shardvpn serves the manual server.conf (no ca) to a stock client with alice.ovpn',
  { timeout: 60_000 },
  async () => {
    const srv = start('server', true, serverConf([alice.fingerprint]));
    const client = start('client', false, clientOvpn(alice, server.fingerprint));
    await srv.waitFor(/Initialization Sequence Completed/, 15_000);
    await connects(srv, client);
  },
);

test(
  "peer-fingerprint: shardvpn's client with alice.ovpn connects to a stock server running the manual server.conf",
  { timeout: 60_000 },
  async () => {
    const srv = start('server', false, serverConf([alice.fingerprint]));
    await srv.waitFor(/Initialization Sequence Completed/, 15_000);
    const client = start('client', true, clientOvpn(alice, server.fingerprint));
    await connects(srv, client);
  },
);

test(
  'peer-fingerprint: a client whose fingerprint is not listed is refused; a server that is not the one named is refused',
  { timeout: 60_000 },
  async () => {
    // bob is not in the server's block.
    const srv = start('server', true, serverConf([alice.fingerprint]));
    await srv.waitFor(/Initialization Sequence Completed/, 15_000);
    const intruder = start('client', false, clientOvpn(bob, server.fingerprint));
    try {
      await srv.waitFor(
        new RegExp(`certificate hash verification failed\\. \\(got certificate fingerprint: ${bob.fingerprint.toLowerCase()}\\)`),
        15_000,
      );
      assert.doesNotMatch(intruder.log(), /Initialization Sequence Completed/);
    } finally {
      await intruder.stop('SIGTERM', 5000);
      await srv.stop('SIGTERM', 5000);
    }
    // Our client expects another server (alice's fingerprint stands in for the server's).
    const stock = start('server', false, serverConf([alice.fingerprint]));
    await stock.waitFor(/Initialization Sequence Completed/, 15_000);
    const misled = start('client', true, clientOvpn(alice, alice.fingerprint));
    try {
      await misled.waitFor(
        new RegExp(`certificate hash verification failed\\. \\(got certificate fingerprint: ${server.fingerprint.toLowerCase()}\\)`),
        15_000,
      );
      assert.doesNotMatch(misled.log(), /Initialization Sequence Completed/);
    } finally {
      await misled.stop('SIGTERM', 5000);
      await stock.stop('SIGTERM', 5000);
    }
  },
);
