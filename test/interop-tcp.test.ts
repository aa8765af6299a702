// TCP transport against the stock openvpn 2.6 binary: shardvpn serving `proto tcp` to 8 stock
// clients over 2 shards (each connection served by the shard the kernel gave it), ping and a
// checksummed transfer; bad TCP input closed and counted without disturbing them. shardvpn's
// client over TCP to a stock server, and failing over between tcp and udp remotes.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import path from 'node:path';

import { assertTransferIntact } from '../lab/transfer';
import { VpnLab, type LabProcess } from '../lab/vpn-lab';
import { clientConfig, serverConfig, startOurClient, startStockServer } from './helpers/client-lab';
import { serverStatistics } from './helpers/server-stats';

const ABUSE = path.join(__dirname, 'fixtures', 'tcp-abuse.js');
const IDLE = 300;

const MB = 1 << 20;
const CLIENTS = 8;

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(CLIENTS);
});
after(async () => {
  await lab.cleanup();
});

test(
  `shardvpn TCP server, 2 shards, ${CLIENTS} stock tcp-client clients: ping, transfers; hostile connections closed and counted`,
  { timeout: 150_000 },
  async () => {
    // hand-window 8: connections that never start a session are closed after 8 s.
    const server = await lab.startShardvpn(
      serverConfig(lab, { port: 1443, extra: 'proto tcp\nworkers 2\ntcp-nodelay\nduplicate-cn\nhand-window 8\n' }).replace(
        'proto udp\n',
        '',
      ),
      'tcp-server.conf',
    );
    const clients: LabProcess[] = [];
    try {
      for (let i = 0; i < CLIENTS; i++) {
        clients.push(
          await lab.startOpenvpnClient(
            i,
            clientConfig(lab, { remotes: [{ host: '10.150.0.1', port: 1443 }], extra: 'proto tcp-client\n' }).replace('proto udp\n', ''),
          ),
        );
      }
      for (const c of clients) assert.match(c.log(), /TCP connection established with \[AF_INET\]10\.150\.0\.1:1443/);
      const addresses = clients.map((c) => /net_addr_v4_add: (10\.152\.0\.\d+)\/24/.exec(c.log())?.[1]);
      for (let i = 0; i < CLIENTS; i++) {
        assert.equal(lab.ping(lab.clients[i]!, '10.152.0.1'), 3, `client ${i} -> server`);
        assert.equal(lab.ping(lab.server, addresses[i]!), 3, `server -> client ${i}`);
      }
      await assertTransferIntact(lab, lab.clients[0]!, lab.server, '10.152.0.1', 4 * MB, 5501);
      await assertTransferIntact(lab, lab.server, lab.clients[1]!, addresses[1]!, 4 * MB, 5502);
      // Both shards serve connections (the kernel's hash over 8 source ports; 1 in 128 to miss).
      // Each connection is served by the shard that accepted it, and its peer-id names that shard.
      const placed = [...server.log().matchAll(/MULTI: primary virtual IP: \S+ \(peer-id (\d+), shard (\d+),/g)];
      assert.equal(placed.length, CLIENTS);
      for (const m of placed) assert.equal(Number(m[1]) % 2, Number(m[2]));

      // Bad frame lengths, a stalled half frame and idle connections, from a client namespace.
      const abuse = lab.spawn(lab.clients[2]!, process.execPath, [ABUSE, '10.150.0.1', '1443', String(IDLE)], 'tcp abuse');
      const report = JSON.parse((await abuse.waitFor(/\{"closed".*\}/, 70_000))[0]) as {
        closed: Record<string, { count: number; maxMs: number }>;
      };
      assert.equal(report.closed['zero-length']?.count, 1);
      assert.ok(report.closed['zero-length']!.maxMs < 3000, 'a zero length closes at once');
      assert.equal(report.closed['too-long']?.count, 1);
      assert.ok(report.closed['too-long']!.maxMs < 3000, 'an oversized length closes at once');
      assert.equal(report.closed['half-frame']?.count, 1);
      assert.equal(report.closed.idle?.count, IDLE);
      const stats = await serverStatistics(server);
      assert.equal(stats.total.dropTcpFraming, 2);
      assert.equal(stats.total.dropTcpIdle, IDLE + 1);
      assert.equal(stats.total.tcpConnections, CLIENTS);
      // The real clients never noticed.
      for (let i = 0; i < CLIENTS; i++) assert.equal(lab.ping(lab.clients[i]!, '10.152.0.1'), 3, `client ${i} after the abuse`);
    } finally {
      for (const c of clients) await c.stop('SIGTERM', 5000);
      await server.stop('SIGTERM', 5000);
    }
  },
);

test('shardvpn client over TCP to a stock `proto tcp` server: ping both ways, 4 MB each way', { timeout: 90_000 }, async () => {
  const server = await startStockServer(lab, serverConfig(lab, { port: 1444, extra: 'proto tcp-server\n' }).replace('proto udp\n', ''));
  const client = startOurClient(
    lab,
    0,
    clientConfig(lab, { remotes: [{ host: '10.150.0.1', port: 1444 }], extra: 'proto tcp-client\n' }).replace('proto udp\n', ''),
  );
  try {
    await client.waitFor(/Initialization Sequence Completed/, 20_000);
    assert.match(client.log(), /TCP connection established with \[AF_INET\]10\.150\.0\.1:1444/);
    assert.match(client.log(), /TCPv4_CLIENT link remote: \[AF_INET\]10\.150\.0\.1:1444/);
    assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1'), 3);
    assert.equal(lab.ping(lab.server, '10.152.0.2'), 3);
    await assertTransferIntact(lab, lab.clients[0]!, lab.server, '10.152.0.1', 4 * MB, 5511);
    await assertTransferIntact(lab, lab.server, lab.clients[0]!, '10.152.0.2', 4 * MB, 5512);
  } finally {
    await client.stop('SIGTERM', 5000);
    await server.stop('SIGTERM', 5000);
  }
});

test('remotes mixing tcp and udp: a refused TCP remote fails over to the UDP one', { timeout: 90_000 }, async () => {
  const udp = await startStockServer(lab, serverConfig(lab, { port: 1445 }));
  const client = startOurClient(
    lab,
    0,
    clientConfig(lab, { remotes: [] }).replace(/^nobind$/m, 'nobind\nremote 10.150.0.1 1446 tcp\nremote 10.150.0.1 1445 udp'),
  );
  try {
    await client.waitFor(/Initialization Sequence Completed/, 30_000);
    assert.match(client.log(), /TCP: connect to \[AF_INET\]10\.150\.0\.1:1446 failed: ECONNREFUSED/);
    assert.match(client.log(), /UDPv4 link remote: \[AF_INET\]10\.150\.0\.1:1445/);
    assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1'), 3);
  } finally {
    await client.stop('SIGTERM', 5000);
    await udp.stop('SIGTERM', 5000);
  }
});
