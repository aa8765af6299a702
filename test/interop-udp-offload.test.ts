// UDP GSO/GRO on the link (udp-offload), end to end through the tunnel with the stock openvpn
// 2.6 binary on the other side: a stock client of our server and our client of a stock server
// move checksummed TCP transfers both ways and UDP bursts of MTU-sized and odd-sized datagrams,
// echoed and compared byte for byte, while our side sends segmented messages (the counters say
// so). The stock peer reads plain datagrams with recvfrom, so its intact data proves it never saw
// anything else. Our client to our server, also coalesced on receive, and with `udp-offload no`
// and `tun-offload no` the same transfers with the counters at rest. TUN offloads (tun-offload,
// on by default) work under all of it: the server's and our client's counters show TCP
// superpackets split and decrypted segments coalesced, with nothing refused or dropped.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { assertTransferIntact, assertUdpEchoIntact } from '../lab/transfer';
import { type LabProcess, VpnLab } from '../lab/vpn-lab';
import { clientConfig, serverConfig, startOurClient, startStockServer } from './helpers/client-lab';
import { serverStatistics, type ServerStatistics } from './helpers/server-stats';

const MB = 1 << 20;
// A full 1500-byte tunnel packet (1472 bytes of UDP payload), and odd sizes.
const SIZES = [1472, 13, 333, 1001, 1471];
const BURST = 32;
const ROUNDS = 3;
// 1472 and 1471 bytes of payload seal into datagrams over the 1500-byte veth MTU: the kernel
// refuses such a segment (GSO never fragments) once per size, then that size goes unsegmented,
// fragmented by IP as OpenVPN's own datagrams are.
const OVERSIZE = 2;

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(1, 'gso');
});
after(async () => {
  await lab.cleanup();
});

/** Tunnel traffic both ways between client namespace 0 (tunnel address `client`) and the server's 10.152.0.1. */
async function traffic(client: string): Promise<void> {
  await assertTransferIntact(lab, lab.clients[0]!, lab.server, '10.152.0.1', 8 * MB, 5601);
  await assertTransferIntact(lab, lab.server, lab.clients[0]!, client, 8 * MB, 5602);
  await assertUdpEchoIntact(lab, lab.clients[0]!, lab.server, '10.152.0.1', SIZES, BURST, ROUNDS, 5603);
  await assertUdpEchoIntact(lab, lab.server, lab.clients[0]!, client, SIZES, BURST, ROUNDS, 5604);
}

function tunnelAddress(log: string): string {
  const m = /net_addr_v4_add: (10\.152\.0\.\d+)\//.exec(log);
  assert.ok(m !== null, log.slice(-2000));
  return m[1]!;
}

/**
 * TUN offload (tun-offload, on by default) at work on the server: the shard (or the main thread,
 * with tun-queues single) split TCP superpackets from the kernel (the server-to-client transfer), the shard wrote runs of the
 * client's decrypted segments as coalesced superpackets, and nothing was refused or dropped.
 */
function assertTunOffloadMoved(stats: ServerStatistics): void {
  const all = JSON.stringify({ tun: stats.tun, total: stats.total });
  // Read by the shards from their own TUN queues (tun-queues shard), or by the main thread.
  const superpackets = stats.tun.superpackets! + stats.total.tunSuperpacketsRead!;
  const segments = stats.tun.segments! + stats.total.tunSuperpacketSegments!;
  assert.ok(superpackets > 0 && segments > 2 * superpackets, all);
  assert.ok(stats.total.tunCoalescedWrites! > 0 && stats.total.tunCoalescedPackets! >= 2 * stats.total.tunCoalescedWrites!, all);
  assert.equal(stats.total.tunCoalesceRefusals! + stats.tun['coalesce-refusals']!, 0, all);
  assert.equal(stats.total.dropTunOffload! + stats.tun['offload-drops']!, 0, all);
}

/** Our client's SIGUSR2 statistics lines (name,value). */
async function clientStatistics(client: LabProcess): Promise<Map<string, number>> {
  const from = client.log().length;
  process.kill(client.child.pid!, 'SIGUSR2');
  const until = Date.now() + 5000;
  while (!/END/.test(client.log().slice(from))) {
    if (Date.now() > until) throw new Error(`no statistics:\n${client.log().slice(-2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const stats = new Map<string, number>();
  for (const m of client
    .log()
    .slice(from)
    .matchAll(/([A-Za-z/ ]+),(\d+)\n/g))
    stats.set(m[1]!.trim(), Number(m[2]));
  return stats;
}

test(
  'stock openvpn client, our server (GSO on): TCP both ways, UDP bursts echoed intact; segmented sends counted',
  { timeout: 90_000 },
  async () => {
    const server = await lab.startShardvpn(serverConfig(lab, { extra: 'workers 1\n' }), 'gso-server.conf');
    try {
      const client = await lab.startOpenvpnClient(0, clientConfig(lab));
      try {
        await traffic(tunnelAddress(client.log()));
        const stats = await serverStatistics(server);
        assert.ok(stats.total.udpGsoMessages! > 0, JSON.stringify(stats.total));
        assert.ok(stats.total.udpGsoDatagrams! >= 2 * stats.total.udpGsoMessages!);
        assert.ok(stats.total.udpGsoFallbacks! <= OVERSIZE, JSON.stringify(stats.total));
        assertTunOffloadMoved(stats);
        assert.doesNotMatch(client.log(), /Authenticate\/Decrypt packet error|AEAD Decrypt error|bad packet ID/);
      } finally {
        await client.stop('SIGTERM', 5000);
      }
    } finally {
      await server.stop('SIGTERM', 5000);
    }
  },
);

test(
  'our client (GSO and GRO on), stock openvpn server: TCP both ways, UDP bursts echoed intact; segmented sends counted',
  { timeout: 90_000 },
  async () => {
    const stock = await startStockServer(lab, serverConfig(lab));
    try {
      const ours = startOurClient(lab, 0, clientConfig(lab));
      try {
        await ours.waitFor(/Initialization Sequence Completed/, 20_000);
        assert.match(ours.log(), /UDP offload: GSO on, GRO on/);
        await traffic(tunnelAddress(ours.log()));
        const stats = await clientStatistics(ours);
        assert.ok(stats.get('UDP GSO messages')! > 0, [...stats].join(' '));
        assert.ok(stats.get('UDP GSO fallbacks')! <= OVERSIZE, [...stats].join(' '));
        assert.doesNotMatch(stock.log(), /Authenticate\/Decrypt packet error|AEAD Decrypt error|bad packet ID/);
      } finally {
        await ours.stop('SIGTERM', 5000);
      }
    } finally {
      await stock.stop('SIGTERM', 5000);
    }
  },
);

for (const offload of ['yes', 'no'] as const) {
  test(
    `our client, our server, udp-offload and tun-offload ${offload}: the same transfers intact; offload counters ${offload === 'yes' ? 'move' : 'at rest'}`,
    { timeout: 90_000 },
    async () => {
      const server = await lab.startShardvpn(
        serverConfig(lab, { extra: `workers 1\nudp-offload ${offload}\ntun-offload ${offload}\n` }),
        `gso-${offload}.conf`,
      );
      try {
        const ours = startOurClient(lab, 0, clientConfig(lab, { extra: `udp-offload ${offload}\ntun-offload ${offload}\n` }));
        try {
          await ours.waitFor(/Initialization Sequence Completed/, 20_000);
          await traffic(tunnelAddress(ours.log()));
          const stats = await serverStatistics(server);
          const client = await clientStatistics(ours);
          if (offload === 'yes') {
            assert.ok(stats.total.udpGsoMessages! > 0, JSON.stringify(stats.total));
            assert.ok(client.get('UDP GSO messages')! > 0);
            // The client's segmented messages cross the veth pair whole and reach the server's GRO socket.
            assert.ok(stats.total.udpGroMessages! > 0, JSON.stringify(stats.total));
            assert.ok(stats.total.udpGroDatagrams! >= 2 * stats.total.udpGroMessages!);
            assertTunOffloadMoved(stats);
            // Our client: TSO superpackets split before sealing, decrypted runs coalesced.
            assert.ok(client.get('TUN superpackets read')! > 0, [...client].join(' '));
            assert.ok(client.get('TUN coalesced writes')! > 0, [...client].join(' '));
          } else {
            for (const name of ['udpGsoMessages', 'udpGsoDatagrams', 'udpGsoFallbacks', 'udpGroMessages', 'udpGroDatagrams']) {
              assert.equal(stats.total[name], 0, name);
            }
            assert.equal(client.get('UDP GSO messages'), undefined, 'no offload lines without offload');
            // tun-offload no: plain reads and writes, no superpackets either way.
            for (const name of ['tunSuperpacketsRead', 'tunCoalescedWrites']) assert.equal(stats.total[name], 0, name);
            assert.equal(stats.tun.superpackets, 0);
            assert.equal(stats.total.tunSuperpacketSegments, 0);
            assert.equal(client.get('TUN superpackets read'), undefined, 'no TUN offload lines without tun-offload');
          }
        } finally {
          await ours.stop('SIGTERM', 5000);
        }
      } finally {
        await server.stop('SIGTERM', 5000);
      }
    },
  );
}
