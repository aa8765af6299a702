// shardvpn as a client of a stock openvpn 2.6 server, for each data cipher (each with another
// control-channel wrap, keys made by `openvpn --genkey`): ping both ways, 50 MB over TCP with
// matching checksums, pushed routes on the TUN device while up and gone after SIGTERM, the
// up/down scripts with OpenVPN's environment, and explicit-exit-notify reaching the server.
import assert from 'node:assert/strict';
import { chmodSync, readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';

import { clientConfig, links, parseEnv, routes, serverConfig, startOurClient, startStockServer, type Wrap } from './helpers/client-lab';
import { assertTransferIntact, transfer } from '../lab/transfer';
import { VpnLab } from '../lab/vpn-lab';

const CASES: { cipher: string; wrap: Wrap }[] = [
  { cipher: 'AES-256-GCM', wrap: 'tls-crypt' },
  { cipher: 'AES-128-GCM', wrap: 'tls-auth' },
  { cipher: 'CHACHA20-POLY1305', wrap: 'tls-crypt-v2' },
];
const MB = 1 << 20;

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(1);
});
after(async () => {
  await lab.cleanup();
});

/** A script that writes its arguments and environment to FILE.<script_type>. */
function envScript(): { script: string; out: string } {
  const out = `${lab.dir}/script-env`;
  const script = lab.file('env.sh', `#!/bin/sh\n{ echo "ARGS $*"; env; } > "${out}.$script_type"\n`);
  chmodSync(script, 0o755);
  return { script, out };
}

for (const { cipher, wrap } of CASES) {
  test(`our client, stock server, ${cipher} with ${wrap}: ping, 50 MB, routes, scripts, exit`, { timeout: 60_000 }, async () => {
    const server = await startStockServer(
      lab,
      serverConfig(lab, { wrap, extra: `data-ciphers ${cipher}\npush "dhcp-option DNS 10.152.0.1"\n` }),
    );
    const { script, out } = envScript();
    const client = startOurClient(
      lab,
      0,
      clientConfig(lab, {
        wrap,
        extra: `script-security 2\nup ${script}\ndown ${script}\nroute-up ${script}\nroute-pre-down ${script}\nexplicit-exit-notify 1\n`,
      }),
    );
    // The server is stopped whatever fails, so the next case finds its port free.
    try {
      let clientCode: number | null = null;
      try {
        await client.waitFor(/Initialization Sequence Completed/, 15_000);
        assert.match(client.log(), new RegExp(`Data Channel: cipher '${cipher}', peer-id: 0`));
        assert.match(client.log(), /Peer Connection Initiated with \[AF_INET\]10\.150\.0\.1:1194/);
        const table = routes(lab, 0);
        assert.match(table, /10\.160\.0\.0\/24 via 10\.152\.0\.1 dev tun\d+/, table);
        assert.match(table, /10\.152\.0\.0\/24 dev tun\d+ .*src 10\.152\.0\.2/, table);

        const up = parseEnv(readFileSync(`${out}.up`, 'utf8'));
        assert.equal(up.get('script_type'), 'up');
        assert.equal(up.get('ifconfig_local'), '10.152.0.2');
        assert.equal(up.get('ifconfig_netmask'), '255.255.255.0');
        assert.equal(up.get('route_network_1'), '10.160.0.0');
        assert.equal(up.get('route_netmask_1'), '255.255.255.0');
        assert.equal(up.get('route_gateway_1'), '10.152.0.1');
        assert.equal(up.get('route_vpn_gateway'), '10.152.0.1');
        assert.equal(up.get('foreign_option_1'), 'dhcp-option DNS 10.152.0.1');
        assert.equal(up.get('trusted_ip'), '10.150.0.1');
        assert.match(up.get('config') ?? '', /our-client-\d+\.conf$/);
        assert.match(up.get('dev') ?? '', /^tun\d+$/);
        assert.match(
          readFileSync(`${out}.up`, 'utf8'),
          new RegExp(`^ARGS ${up.get('dev')} 1500 0 10\\.152\\.0\\.2 255\\.255\\.255\\.0 init$`, 'm'),
        );

        // route-up: after the routes, the same variables, no positional arguments (as OpenVPN's do_route).
        const routeUp = parseEnv(readFileSync(`${out}.route-up`, 'utf8'));
        assert.equal(routeUp.get('route_network_1'), '10.160.0.0');
        assert.match(readFileSync(`${out}.route-up`, 'utf8'), /^ARGS $/m);

        assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1'), 3, 'client -> server');
        assert.equal(lab.ping(lab.server, '10.152.0.2'), 3, 'server -> client');
        await assertTransferIntact(lab, lab.clients[0]!, lab.server, '10.152.0.1', 50 * MB);
        const back = await transfer(lab, lab.server, lab.clients[0]!, '10.152.0.2', 10 * MB, 5202);
        assert.equal(back.received.sha256, back.sent.sha256);
      } finally {
        clientCode = await client.stop('SIGTERM', 10_000);
      }
      assert.equal(clientCode, 0, client.log().slice(-3000));
      assert.match(client.log(), /SIGTERM received, sending exit notification to peer/);
      // cc-exit was pushed: the EXIT control message ends the client instance on the server.
      await server.waitFor(/client-instance exiting|remote-exit/, 5000);
      assert.doesNotMatch(routes(lab, 0), /10\.160\.0\.0/);
      assert.doesNotMatch(links(lab, 0), /tun\d+/);
      const down = parseEnv(readFileSync(`${out}.down`, 'utf8'));
      assert.equal(down.get('script_type'), 'down');
      assert.equal(down.get('signal'), 'sigterm');
      const preDown = parseEnv(readFileSync(`${out}.route-pre-down`, 'utf8'));
      assert.equal(preDown.get('signal'), 'sigterm');
      assert.equal(preDown.get('route_network_1'), '10.160.0.0');
      assert.match(readFileSync(`${out}.route-pre-down`, 'utf8'), /^ARGS tun\d+ 1500 0 10\.152\.0\.2 255\.255\.255\.0 init$/m);
    } finally {
      await server.stop();
    }
  });
}

test('our client over IPv6 (proto udp6) with a pushed ifconfig-ipv6 and route-ipv6', { timeout: 40_000 }, async () => {
  const server = await startStockServer(
    lab,
    serverConfig(lab, { extra: 'proto udp6\nserver-ipv6 fd52::/64\npush "route-ipv6 fd60::/64"\n' }),
  );
  const client = startOurClient(lab, 0, clientConfig(lab, { remotes: [{ host: 'fd00:150::1', port: 1194 }], extra: 'proto udp6\n' }));
  let clientCode: number | null;
  try {
    await client.waitFor(/Initialization Sequence Completed/, 15_000);
    assert.match(client.log(), /UDPv6 link remote: \[AF_INET6\]fd00:150::1:1194/);
    const addresses = lab.clients[0]!.ip(['-6', 'addr', 'show']);
    assert.match(addresses, /inet6 fd52::1000\/64/, addresses);
    assert.match(lab.clients[0]!.ip(['-6', 'route', 'show']), /fd60::\/64 dev tun\d+/);
    assert.equal(lab.ping(lab.clients[0]!, 'fd52::1'), 3, 'client -> server over IPv6 inside');
    assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1'), 3, 'client -> server over IPv4 inside');
  } finally {
    // Both always stopped, the client's code checked after: a throw here would leave the server on its port.
    clientCode = await client.stop();
    await server.stop();
  }
  assert.equal(clientCode, 0, client.log().slice(-3000));
});
