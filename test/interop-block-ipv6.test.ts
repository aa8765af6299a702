// block-ipv6 with the set-up of OpenVPN 2.6's manual (and of installer scripts that write it): the
// server pushes a placeholder IPv6 address, redirect-gateway ipv6 and block-ipv6, so a dual-stack
// client sends its IPv6 into the tunnel and gets "no route" at once instead of leaking it around an
// IPv4-only VPN. Checked with the kernel's own ping: it reports the ICMPv6 answer only if the
// packet and its checksum are right.
//   client: a stock server pushes it; shardvpn's client answers from TUN exactly as the stock
//           client does under the same server (source fd15:53b6:dead::1, the pushed peer);
//   server: shardvpn's server with block-ipv6 answers a stock client's IPv6 itself (fe80::7).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { clientConfig, serverConfig, startOurClient, startStockServer } from './helpers/client-lab';
import { VpnLab } from '../lab/vpn-lab';
import type { NetworkNamespace } from '../lab/netns';

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(2);
});
after(async () => {
  await lab.cleanup();
});

const INIT = /Initialization Sequence Completed/;
const PUSHED = 'push "ifconfig-ipv6 fd15:53b6:dead::2/64 fd15:53b6:dead::1"\npush "redirect-gateway ipv6"\n';

/**
 * Pings to a global IPv6 address from the namespace: what ping printed, reply or not. Three, as
 * the tunnel's fresh IPv6 address may still be tentative (duplicate address detection) for the first.
 */
function ping6(ns: NetworkNamespace): string {
  try {
    return ns.exec('ping', ['-6', '-c', '3', '-i', '0.5', '-w', '5', '2001:db8::1']);
  } catch (error) {
    return String((error as { stdout?: string }).stdout ?? '');
  }
}

test('pushed block-ipv6: shardvpn client answers IPv6 from TUN with no-route, as the stock client does', { timeout: 60_000 }, async () => {
  const server = await startStockServer(lab, serverConfig(lab, { extra: `${PUSHED}push "block-ipv6"\n` }));
  const ours = startOurClient(lab, 0, clientConfig(lab));
  const stock = await lab.startOpenvpnClient(1, clientConfig(lab));
  try {
    await ours.waitFor(INIT, 15_000);
    // redirect-gateway ipv6: OpenVPN's four routes through the tunnel, on both clients.
    for (const ns of [lab.clients[0]!, lab.clients[1]!]) {
      const routes = ns.exec('ip', ['-6', 'route']);
      for (const prefix of ['::/3', '2000::/4', '3000::/4', 'fc00::/7'])
        assert.match(routes, new RegExp(`^${prefix} dev tun`, 'm'), routes);
    }
    const stockSaw = ping6(lab.clients[1]!);
    assert.match(stockSaw, /From fd15:53b6:dead::1 icmp_seq=\d+ Destination unreachable: No route/, stockSaw);
    const oursSaw = ping6(lab.clients[0]!);
    assert.match(oursSaw, /From fd15:53b6:dead::1 icmp_seq=\d+ Destination unreachable: No route/, oursSaw);
    // IPv4 still crosses the tunnel.
    assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1', 2), 2);
  } finally {
    await stock.stop();
    await ours.stop();
    await server.stop();
  }
});

test(
  'block-ipv6 on a shardvpn server: a stock client IPv6 gets no-route from the server, IPv4 still flows',
  { timeout: 60_000 },
  async () => {
    const server = await lab.startShardvpn(serverConfig(lab, { extra: `${PUSHED}block-ipv6\n` }));
    const stock = await lab.startOpenvpnClient(0, clientConfig(lab));
    try {
      const saw = ping6(lab.clients[0]!);
      assert.match(saw, /From fe80::7(%\S+)? icmp_seq=\d+ Destination unreachable: No route/, saw);
      assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1', 2), 2);
    } finally {
      await stock.stop();
      assert.equal(await server.stop(), 0, server.log().slice(-2000));
    }
  },
);
