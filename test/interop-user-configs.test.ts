// The server.conf and client .ovpn files that the installer scripts write (config-samples.ts),
// run as written against the stock openvpn 2.6 binary in both roles: shardvpn serving the
// installer's server.conf to a stock client using the installer's .ovpn, and shardvpn as the
// client of a stock server running the same server.conf. Each with the installer's own
// `proto udp` (Nyr's with an IPv4 `local`), tls-cipher names and wrap; ping both ways and a
// checksummed transfer. Absolute paths a config names (kylemanna/docker-openvpn's PKI under
// /etc/openvpn/, DigitalOcean's /var/log/openvpn/) lie under each case's own directory
// (helpers/user-configs.ts).
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { assertTransferIntact } from '../lab/transfer';
import { BIN, type LabProcess, VpnLab } from '../lab/vpn-lab';
import {
  accessServerClient,
  angristan2026Client,
  angristan2026DualStackServer,
  angristan2026Server,
  angristanClient,
  angristanServer,
  digitalOceanClient,
  digitalOceanServer,
  kylemannaClient,
  kylemannaServer,
  mullvadClient,
  nordvpnClient,
  nyrClientCrlf,
  nyrServer,
  openvpnSampleClient,
  openvpnSampleServer,
  pfsenseClient,
  pivpnClient,
  pivpnServer,
  pritunlClient,
  providerTlsAuthServer,
  type Sample,
  userPassServer,
} from './config-samples';
import { materialise } from './helpers/user-configs';

/**
 * `cipher`: what NCP settles on for the pair; `tunnel`: the server's and the first client's
 * tunnel addresses (10.8.0.1, 10.8.0.2 unless said); `tunnel6`: their IPv6 addresses, pinged
 * too, where the server gives clients IPv6.
 */
const PAIRS: {
  name: string;
  server: Sample;
  client: Sample;
  cipher: string;
  tunnel?: [string, string];
  tunnel6?: [string, string];
}[] = [
  { name: 'angristan/openvpn-install', server: angristanServer, client: angristanClient, cipher: 'AES-128-GCM' },
  // Its current defaults: tls-crypt-v2 with a key per client, block-ipv6 pushed to IPv4-only clients.
  { name: 'angristan/openvpn-install 2026, IPv4 clients', server: angristan2026Server, client: angristan2026Client, cipher: 'AES-128-GCM' },
  // server-ipv6 /112 (a pool that small starts at ::2, helper.c), tun-ipv6 pushed, IPv6 redirected.
  {
    name: 'angristan/openvpn-install 2026, IPv6 for clients',
    server: angristan2026DualStackServer,
    client: angristan2026Client,
    cipher: 'AES-128-GCM',
    tunnel6: ['fd42:42:42:42::1', 'fd42:42:42:42::2'],
  },
  { name: 'Nyr/openvpn-install', server: nyrServer, client: nyrClientCrlf, cipher: 'AES-256-GCM' },
  { name: 'PiVPN', server: pivpnServer, client: pivpnClient, cipher: 'AES-256-GCM' },
  // An Access Server profile (udp 1194, then tcp 443) against a tls-crypt server on udp 1194.
  { name: 'Access Server profile', server: nyrServer, client: accessServerClient, cipher: 'AES-256-GCM' },
  { name: "OpenVPN's sample-config-files (CBC)", server: openvpnSampleServer, client: openvpnSampleClient, cipher: 'AES-256-CBC' },
  // net30: the server is .1, the first client .6 (its /30 is .4-.7).
  {
    name: 'kylemanna/docker-openvpn',
    server: kylemannaServer,
    client: kylemannaClient,
    cipher: 'AES-256-GCM',
    tunnel: ['192.168.255.1', '192.168.255.6'],
  },
  { name: "DigitalOcean's Ubuntu 22.04 tutorial", server: digitalOceanServer, client: digitalOceanClient, cipher: 'AES-256-GCM' },
  // The server side takes logins without client certificates (verify-client-cert none).
  {
    name: 'Mullvad profile (username and password, no client certificate)',
    server: userPassServer,
    client: mullvadClient,
    cipher: 'AES-256-GCM',
  },
  { name: 'pfSense client export to a PiVPN server', server: pivpnServer, client: pfsenseClient, cipher: 'AES-256-GCM' },
  // tun-mtu-extra, comp-lzo no, a CBC cipher in the profile (NCP still settles on GCM), tls-auth inline.
  { name: 'NordVPN-style profile', server: providerTlsAuthServer, client: nordvpnClient, cipher: 'AES-256-GCM' },
  {
    name: 'Pritunl profile to a kylemanna/docker-openvpn server',
    server: kylemannaServer,
    client: pritunlClient,
    cipher: 'AES-256-GCM',
    tunnel: ['192.168.255.1', '192.168.255.6'],
  },
];
const MB = 1 << 20;

let lab: VpnLab;
let serial = 0;
before(() => {
  lab = VpnLab.create(1);
  // The servers drop to nobody (user/group lines) and re-read crl.pem before each handshake.
  chmodSync(lab.dir, 0o755);
});
after(async () => {
  await lab.cleanup();
});

function start(role: 'server' | 'client', ours: boolean, sample: Sample): { proc: LabProcess; dir: string } {
  const dir = path.join(lab.dir, `case-${serial++}`);
  const file = materialise(lab, sample, dir);
  const ns = role === 'server' ? lab.server : lab.clients[0]!;
  const args = ['--cd', dir, '--config', path.basename(file)];
  const proc = ours
    ? lab.spawn(ns, process.execPath, [BIN, ...args], `shardvpn ${role}`)
    : lab.spawn(ns, 'openvpn', args, `openvpn ${role}`);
  return { proc, dir };
}

/** A stock server may log to syslog (PiVPN): the client's log says when the tunnel is up. */
/** `cipherSeen`: the shardvpn side's log line that names the cipher NCP chose. */
async function exercise(
  server: LabProcess,
  client: LabProcess,
  cipherSeen: () => Promise<unknown>,
  [serverTunnel, clientTunnel]: [string, string] = ['10.8.0.1', '10.8.0.2'],
  tunnel6?: [string, string],
): Promise<void> {
  try {
    await client.waitFor(/Initialization Sequence Completed/, 20_000).catch((error: Error) => {
      throw new Error(`${error.message}\n${server.name} log:\n${server.log().slice(-3000)}`);
    });
    assert.match(client.log(), /Peer Connection Initiated with \[AF_INET\]10\.150\.0\.1:\d+/);
    await cipherSeen();
    assert.equal(lab.ping(lab.clients[0]!, serverTunnel), 3, 'client -> server');
    assert.equal(lab.ping(lab.server, clientTunnel), 3, 'server -> client');
    if (tunnel6 !== undefined) {
      assert.equal(lab.ping(lab.clients[0]!, tunnel6[0]), 3, 'client -> server over IPv6');
      assert.equal(lab.ping(lab.server, tunnel6[1]), 3, 'server -> client over IPv6');
    }
    await assertTransferIntact(lab, lab.clients[0]!, lab.server, serverTunnel, 5 * MB, 5301 + serial);
  } finally {
    await client.stop('SIGTERM', 5000);
    await server.stop('SIGTERM', 5000);
  }
}

for (const pair of PAIRS) {
  test(`${pair.name}: shardvpn serves its server.conf to a stock client with its .ovpn`, { timeout: 90_000 }, async () => {
    const server = start('server', true, pair.server).proc;
    const client = start('client', false, pair.client).proc;
    await exercise(
      server,
      client,
      () => server.waitFor(new RegExp(`MULTI: primary virtual IP: .*, ${pair.cipher}\\)`), 5000),
      pair.tunnel,
      pair.tunnel6,
    );
  });

  test(`${pair.name}: shardvpn's client with its .ovpn connects to a stock server with its server.conf`, { timeout: 90_000 }, async () => {
    const server = start('server', false, pair.server).proc;
    const client = start('client', true, pair.client).proc;
    await exercise(
      server,
      client,
      () => client.waitFor(new RegExp(`Data Channel: cipher '${pair.cipher}'`), 5000),
      pair.tunnel,
      pair.tunnel6,
    );
  });
}
