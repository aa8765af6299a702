// Socket families as OpenVPN 2.6 picks them (socket.c), against the stock openvpn binary in
// both roles: `proto udp` without `local` binds IPv4 (as the stock server does); `proto udp6`
// binds one dual-stack socket that serves an IPv4 and an IPv6 client at once; `bind ipv6only`
// keeps IPv4 clients out; shardvpn's client reaches a stock udp6 server over IPv6 and IPv4.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { BIN, SERVER_UNDERLAY, SERVER_UNDERLAY6, VpnLab } from '../lab/vpn-lab';
import { clientConfig, serverConfig, startOurClient, startStockServer } from './helpers/client-lab';

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(2);
});
after(async () => {
  await lab.cleanup();
});

/** The client's tunnel address from its log (stock: net_addr_v4_add, shardvpn: the same words). */
function tunnelAddress(log: string): string {
  const m = /net_addr_v4_add: (10\.152\.0\.\d+)\/24/.exec(log);
  assert.ok(m !== null, log.slice(-2000));
  return m[1]!;
}

test(
  '`proto udp` without local binds IPv4 like the stock server; `proto udp6` serves a stock IPv4 and a stock IPv6 client on one socket',
  { timeout: 90_000 },
  async () => {
    const plain = await lab.startShardvpn(serverConfig(lab, { port: 1339 }), 'plain-udp.conf');
    const stock = await startStockServer(lab, serverConfig(lab, { port: 1338 }));
    try {
      assert.match(plain.log(), /UDPv4 link local \(bound\): \[AF_INET\]0\.0\.0\.0:1339/);
      assert.match(stock.log(), /UDPv4 link local \(bound\): \[AF_INET\]\[undef\]:1338/);
    } finally {
      await plain.stop('SIGTERM', 5000);
      await stock.stop('SIGTERM', 5000);
    }
    // Both clients carry the same test certificate.
    const dual = serverConfig(lab, { port: 1340, extra: 'duplicate-cn\n' }).replace('proto udp\n', 'proto udp6\n');
    const server = await lab.startShardvpn(dual, 'dual-stack.conf');
    try {
      assert.match(server.log(), /UDPv6 link local \(bound\): \[AF_INET6\]:::1340 \(dual-stack\)/);
      const v4 = await lab.startOpenvpnClient(0, clientConfig(lab, { remotes: [{ host: SERVER_UNDERLAY, port: 1340 }] }));
      const v6 = await lab.startOpenvpnClient(1, clientConfig(lab, { remotes: [{ host: SERVER_UNDERLAY6, port: 1340 }] }));
      assert.match(v4.log(), /Peer Connection Initiated with \[AF_INET\]10\.150\.0\.1:1340/);
      assert.match(v6.log(), /Peer Connection Initiated with \[AF_INET6\]fd00:150::1:1340/);
      const a4 = tunnelAddress(v4.log());
      const a6 = tunnelAddress(v6.log());
      assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1'), 3);
      assert.equal(lab.ping(lab.clients[1]!, '10.152.0.1'), 3);
      assert.equal(lab.ping(lab.server, a4), 3);
      assert.equal(lab.ping(lab.server, a6), 3);
      await v4.stop('SIGTERM', 5000);
      await v6.stop('SIGTERM', 5000);
    } finally {
      await server.stop('SIGTERM', 5000);
    }
  },
);

test('`proto udp6` with `bind ipv6only`: an IPv6 client connects, an IPv4 client gets no answer', { timeout: 60_000 }, async () => {
  const server = await lab.startShardvpn(
    serverConfig(lab, { port: 1341, extra: 'bind ipv6only\n' }).replace('proto udp\n', 'proto udp6\n'),
    'v6only.conf',
  );
  try {
    const v6 = await lab.startOpenvpnClient(1, clientConfig(lab, { remotes: [{ host: SERVER_UNDERLAY6, port: 1341 }] }));
    assert.equal(lab.ping(lab.clients[1]!, '10.152.0.1'), 3);
    await v6.stop('SIGTERM', 5000);
    const v4 = await lab.startOpenvpnClient(0, clientConfig(lab, { remotes: [{ host: SERVER_UNDERLAY, port: 1341 }] }), null);
    await new Promise((resolve) => setTimeout(resolve, 4000));
    assert.doesNotMatch(v4.log(), /Initialization Sequence Completed/);
    await v4.stop('SIGTERM', 5000);
  } finally {
    await server.stop('SIGTERM', 5000);
  }
});

test('shardvpn client to a dual-stack (udp6) stock server, over IPv6 and over IPv4', { timeout: 60_000 }, async () => {
  const stock = await startStockServer(lab, serverConfig(lab, { port: 1342 }).replace('proto udp\n', 'proto udp6\n'));
  try {
    for (const [i, host, family] of [
      [0, SERVER_UNDERLAY6, 'AF_INET6'],
      [1, SERVER_UNDERLAY, 'AF_INET'],
    ] as const) {
      const ours = startOurClient(lab, i, clientConfig(lab, { remotes: [{ host, port: 1342 }] }));
      try {
        await ours.waitFor(/Initialization Sequence Completed/, 20_000);
        assert.match(ours.log(), new RegExp(`link remote: \\[${family}\\]${host.replace(/\./g, '\\.')}:1342`));
        assert.equal(lab.ping(lab.clients[i]!, '10.152.0.1'), 3);
      } finally {
        await ours.stop('SIGTERM', 5000);
      }
    }
  } finally {
    await stock.stop('SIGTERM', 5000);
  }
});

test('a second server on a port already served is refused (no silent SO_REUSEPORT sharing), UDP and TCP', { timeout: 60_000 }, async () => {
  for (const proto of ['udp', 'tcp-server']) {
    const conf = serverConfig(lab, { port: 1343 }).replace('proto udp\n', `proto ${proto}\n`);
    const first = await lab.startShardvpn(conf, `first-${proto}.conf`);
    try {
      const second = lab.spawn(lab.server, process.execPath, [BIN, '--config', lab.file(`second-${proto}.conf`, conf)], 'second shardvpn');
      const code = await new Promise<number | null>((resolve) => second.child.once('exit', resolve));
      assert.notEqual(code, 0, second.log());
      assert.match(second.log(), new RegExp(`${proto === 'udp' ? 'UDP' : 'TCP'} 0\\.0\\.0\\.0 port 1343 is in use by another process`));
      assert.doesNotMatch(second.log(), /Initialization Sequence Completed/);
    } finally {
      await first.stop('SIGTERM', 5000);
    }
  }
});
