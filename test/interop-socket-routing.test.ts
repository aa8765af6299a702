// --mark and --bind-dev on the link socket, both roles, against stock openvpn 2.6 peers: the
// server's datagrams carry its mark (an nftables counter in its namespace matches them), its
// socket is bound to the named device (ss shows it, and a client still connects through it), and
// the client's datagrams carry the client's mark. A TCP client refuses both in one clear line.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';

import type { NetworkNamespace } from '../lab/netns';
import { VpnLab } from '../lab/vpn-lab';
import { BIN, clientConfig, serverConfig, startOurClient, startStockServer } from './helpers/client-lab';

const haveNft = spawnSync('nft', ['--version']).status === 0;

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(1);
});
after(async () => {
  await lab.cleanup();
});

/** An output counter for packets with `mark` and `match` (e.g. 'udp sport 1194') in the namespace. */
function markCounter(ns: NetworkNamespace, mark: number, match: string): () => number {
  const table = `svt${mark}`;
  ns.exec('nft', ['add', 'table', 'inet', table]);
  ns.exec('nft', ['add', 'chain', 'inet', table, 'out', '{ type filter hook output priority 0 ; }']);
  ns.exec('nft', ['add', 'rule', 'inet', table, 'out', 'meta', 'mark', String(mark), ...match.split(' '), 'counter']);
  return () => Number(/counter packets (\d+)/.exec(ns.exec('nft', ['list', 'chain', 'inet', table, 'out']))?.[1] ?? 0);
}

test(
  'mark and bind-dev on a shardvpn server: its datagrams carry the mark, its socket is bound to the device',
  { skip: !haveNft, timeout: 60_000 },
  async () => {
    const counted = markCounter(lab.server, 42, 'udp sport 1194');
    const server = await lab.startShardvpn(serverConfig(lab, { extra: `mark 42\nbind-dev ${lab.bridge}\n` }));
    try {
      assert.match(lab.server.exec('ss', ['-ulnH']), new RegExp(`%${lab.bridge}:1194\\b`));
      const client = await lab.startOpenvpnClient(0, clientConfig(lab));
      try {
        assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1'), 3);
      } finally {
        await client.stop();
      }
      assert.ok(counted() > 0, 'the server sent datagrams with mark 42');
    } finally {
      assert.equal(await server.stop(), 0, server.log().slice(-2000));
    }
  },
);

test(
  'mark and bind-dev on a TCP server: set before the listeners bind; a device that does not exist is a warning, as OpenVPN',
  { skip: !haveNft, timeout: 60_000 },
  async () => {
    const counted = markCounter(lab.server, 43, 'tcp sport 1194');
    const tcpConfig = serverConfig(lab, { extra: `mark 43\nbind-dev ${lab.bridge}\n` }).replace('proto udp', 'proto tcp-server');
    const server = await lab.startShardvpn(tcpConfig, 'routing-tcp.conf');
    try {
      assert.match(lab.server.exec('ss', ['-tlnH']), new RegExp(`%${lab.bridge}:1194\\b`));
      const client = await lab.startOpenvpnClient(0, clientConfig(lab).replace('proto udp', 'proto tcp-client'));
      try {
        assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1'), 3);
      } finally {
        await client.stop();
      }
    } finally {
      assert.equal(await server.stop(), 0, server.log().slice(-2000));
    }
    assert.ok(counted() > 0, 'the connections accepted by the marked listeners carry mark 43');
    const missing = await lab.startShardvpn(serverConfig(lab, { extra: 'bind-dev nosuchdev0\n' }), 'routing-missing.conf');
    try {
      assert.match(missing.log(), /WARNING: setsockopt SO_BINDTODEVICE nosuchdev0: No such device/);
      const client = await lab.startOpenvpnClient(0, clientConfig(lab));
      await client.stop();
    } finally {
      assert.equal(await missing.stop(), 0, missing.log().slice(-2000));
    }
  },
);

test(
  'mark on the shardvpn client (UDP) as on the stock client; over TCP it is refused at start',
  { skip: !haveNft, timeout: 60_000 },
  async () => {
    const counted = markCounter(lab.clients[0]!, 7, 'udp dport 1194');
    const server = await startStockServer(lab, serverConfig(lab));
    try {
      const ours = startOurClient(lab, 0, clientConfig(lab, { extra: 'mark 7\n' }));
      try {
        await ours.waitFor(/Initialization Sequence Completed/, 15_000);
        assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1'), 3);
      } finally {
        await ours.stop();
      }
      const ourCount = counted();
      assert.ok(ourCount > 0, 'our client sent datagrams with mark 7');
      const stock = await lab.startOpenvpnClient(0, clientConfig(lab, { extra: 'mark 7\n' }));
      try {
        assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1'), 3);
      } finally {
        await stock.stop();
      }
      assert.ok(counted() > ourCount, 'the stock client marks its datagrams the same way');
    } finally {
      await server.stop();
    }
    // Refused while checking the config, before any socket: no namespace needed.
    const tcpProfile = lab.file('mark-tcp.ovpn', clientConfig(lab, { extra: 'mark 7\n' }).replace('proto udp', 'proto tcp'));
    const tcp = spawnSync(process.execPath, [BIN, '--config', tcpProfile], { encoding: 'utf8', timeout: 20_000 });
    assert.notEqual(tcp.status, 0);
    assert.match(
      `${tcp.stdout}${tcp.stderr}`,
      /mark-tcp\.ovpn:\d+.*mark and bind-dev work over UDP only on a shardvpn client: use proto udp/,
    );
  },
);
