// tun-queues shard against stock openvpn 2.6 clients: a multi-queue TUN device with a queue per
// shard, each read and written by its shard. Traffic both ways over two shards (ping and a
// checksummed TCP transfer), packets between clients on different shards (through the server's
// kernel, and with client-to-client), new flows from the server's side that the kernel hashes to
// another shard's queue (crossings, counted and delivered through the main thread), a shard replaced
// while the server runs as nobody (it takes its old queue over), SIGUSR1 with persist-tun, IPv6,
// proto tcp-server with workers 1, and the fall-back to one queue.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { runNodeIn } from '../lab/netns';
import { transfer } from '../lab/transfer';
import { clientUnderlay, SERVER_UNDERLAY, VpnLab, type LabProcess } from '../lab/vpn-lab';
import { checkoutReadableByOthers } from './helpers/checkout-access';
import { ManagementClient, waitUntil } from './helpers/management-client';
import { serverStatistics } from './helpers/server-stats';
import { whileServing } from './helpers/serving';

const CLIENTS = 4;
const UDP_ECHO = path.join(__dirname, '..', 'lab', 'udp-echo.js');
const FLOWS = 40;
/** One datagram from each of `count` new sockets (new source ports) to ADDRESS PORT, each sent until echoed (5 tries); prints how many were echoed. */
const NEW_FLOWS = `
const dgram = require('node:dgram');
const [address, port, count] = process.argv.slice(1);
const one = (i) => new Promise((resolve) => {
  const socket = dgram.createSocket('udp4');
  let tries = 0;
  const send = () => {
    if (tries++ === 5) { socket.close(); resolve(0); return; }
    socket.send(Buffer.from('flow ' + i), Number(port), address);
    timer = setTimeout(send, 300);
  };
  let timer;
  socket.on('message', () => { clearTimeout(timer); socket.close(); resolve(1); });
  socket.bind(0, send);
});
Promise.all(Array.from({ length: Number(count) }, (_, i) => one(i))).then((echoed) => console.log(echoed.reduce((a, b) => a + b, 0)));
`;
const SERVER_VIRTUAL = '10.181.0.1';

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(CLIENTS, 'tmq');
  // Packets between clients without client-to-client go through the server's kernel.
  lab.server.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
});
after(async () => {
  await lab.cleanup();
});

function serverConf(lines: string): string {
  // keepalive 1 3: a replaced shard's clients restart 3 s after their last packet from it.
  return (
    `port 1194\ndev tun\ntopology subnet\nserver 10.181.0.0 255.255.255.0\nduplicate-cn\nkeepalive 1 3\ntun-queues shard\n` +
    `tls-crypt ${lab.keys.tlsCrypt}\n${lab.serverTlsLines()}${lines}verb 3\n`
  );
}

function clientConf(proto = 'udp'): string {
  return (
    `client\ndev tun\nproto ${proto}\nremote ${SERVER_UNDERLAY} 1194\nnobind\n` +
    `${lab.clientTlsLines()}tls-crypt ${lab.keys.tlsCrypt}\nverb 3\n`
  );
}

/** From the server log: the latest virtual address and shard of the client at each underlay address. */
function placements(server: LabProcess): Map<string, { virtual: string; shard: number }> {
  const found = new Map<string, { virtual: string; shard: number }>();
  for (const match of server.log().matchAll(/\/([\d.]+):\d+ MULTI: primary virtual IP: ([\d.]+) \(peer-id \d+, shard (\d+),/g)) {
    found.set(match[1]!, { virtual: match[2]!, shard: Number(match[3]) });
  }
  return found;
}

const placement = (server: LabProcess, i: number): { virtual: string; shard: number } | undefined =>
  placements(server).get(clientUnderlay(i));

/** Reconnects clients until both shards own at least one (control packets are steered by a random session id). */
async function spreadOverShards(server: LabProcess, clients: LabProcess[], conf: string): Promise<void> {
  await waitUntil('every client placed', () => clients.every((_, i) => placement(server, i) !== undefined), 5000);
  for (let attempt = 0; ; attempt++) {
    const shards = clients.map((_, i) => placement(server, i)?.shard);
    if (shards.includes(0) && shards.includes(1)) return;
    assert.ok(attempt < 12, `clients never landed on both shards: ${JSON.stringify(shards)}`);
    const i = attempt % clients.length;
    const from = server.log().length;
    await clients[i]!.stop();
    clients[i] = await lab.startOpenvpnClient(i, conf);
    await waitUntil(
      'its placement',
      () => new RegExp(`/${clientUnderlay(i)}:\\d+ MULTI: primary virtual IP`).test(server.log().slice(from)),
      5000,
    );
  }
}

/** The global IPv6 address of tun0 in client namespace `i`. */
function tunAddress6(i: number): string {
  const match = /inet6 ([0-9a-f:]+)\/\d+ scope global/.exec(lab.clients[i]!.ip(['-o', '-6', 'addr', 'show', 'dev', 'tun0']));
  assert.ok(match !== null, `client ${i} has no global IPv6 address on tun0`);
  return match[1]!;
}

/** The server's open descriptors on /dev/net/tun: the main thread's queue and one per shard. */
function tunQueuesOpen(server: LabProcess): number {
  const dir = `/proc/${server.child.pid!}/fd`;
  return readdirSync(dir).filter((fd) => {
    try {
      return readlinkSync(path.join(dir, fd)) === '/dev/net/tun';
    } catch {
      return false;
    }
  }).length;
}

/**
 * A replacement shard worker loads its code as the server's user (nobody here), so the checkout
 * must be readable by others, as an installed server's code is. A checkout in a private
 * directory (`mktemp -d` is 0700) gets o+x on it and its parents for the test; returns the undo.
 */
test(
  'tun-queues shard as nobody: 4 clients over 2 shards, ping and TCP both ways, clients reach each other through the kernel, new flows on another shard queue cross and arrive, a replaced shard serves on its old queue',
  { timeout: 90_000 },
  async (t) => {
    const socket = path.join(lab.dir, 'tmq-mgmt.sock');
    t.after(checkoutReadableByOthers());
    const server = await lab.startShardvpn(serverConf(`proto udp\nworkers 2\nuser nobody\ngroup nogroup\nmanagement ${socket} unix\n`));
    const mgmt = new ManagementClient(socket);
    const clients: LabProcess[] = [];
    await whileServing(
      server,
      () => clients,
      async () => {
        assert.match(server.log(), /TUN device tun\d+: multi-queue, one queue per shard \(2\) and one for the main thread/);
        assert.match(server.log(), /UID set to nobody/);
        assert.notEqual(Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${server.child.pid!}/status`, 'utf8'))?.[1]), 0);
        assert.equal(tunQueuesOpen(server), 3);
        clients.push(...(await Promise.all(Array.from({ length: CLIENTS }, (_, i) => lab.startOpenvpnClient(i, clientConf())))));
        await spreadOverShards(server, clients, clientConf());

        for (let i = 0; i < CLIENTS; i++) {
          const { virtual } = placement(server, i)!;
          assert.equal(lab.ping(lab.clients[i]!, SERVER_VIRTUAL, 2), 2, `client ${i} -> server`);
          assert.equal(lab.ping(lab.server, virtual, 2), 2, `server -> client ${i} (${virtual})`);
        }
        const indices = Array.from({ length: CLIENTS }, (_, i) => i);
        const a = indices.find((i) => placement(server, i)!.shard === 0)!;
        const b = indices.find((i) => placement(server, i)!.shard === 1)!;
        const [va, vb] = [placement(server, a)!.virtual, placement(server, b)!.virtual];

        // A checksummed TCP transfer each way: client a (shard 0) to the server, the server to client b (shard 1).
        for (const [from, to, address] of [
          [lab.clients[a]!, lab.server, SERVER_VIRTUAL],
          [lab.server, lab.clients[b]!, vb],
        ] as const) {
          const result = await transfer(lab, from, to, address, 4 << 20);
          assert.equal(result.received.bytes, 4 << 20);
          assert.equal(result.received.sha256, result.sent.sha256);
        }
        const before = await serverStatistics(server);
        assert.ok(before.total.tunQueueReads! > 0 && before.shards.every((c) => (c.tunQueueReads ?? 0) > 0), JSON.stringify(before.shards));

        // Packets between clients on different shards, through the server's kernel (ip_forward).
        assert.equal(lab.ping(lab.clients[a]!, vb, 3), 3, `client ${a} (shard 0) -> client ${b} (shard 1)`);
        assert.equal(lab.ping(lab.clients[b]!, va, 3), 3, `client ${b} (shard 1) -> client ${a} (shard 0)`);

        // New flows from the server's side: the kernel has no queue for them yet and hashes each to
        // one of the 3 queues, so about a third land on shard 0's queue and cross to shard 1 through
        // the main thread (all 40 on other queues: (2/3)^40, about 1e-7). Every one must arrive.
        const echo = lab.spawn(lab.clients[b]!, process.execPath, [UDP_ECHO, 'echo', vb, '7000'], 'udp echo');
        await echo.waitFor(/listening/, 10_000);
        const flows = await runNodeIn(lab.server, '-e', [NEW_FLOWS, vb, '7000', String(FLOWS)], 30_000);
        assert.equal(flows.code, 0, flows.stderr);
        assert.equal(Number(flows.stdout.trim()), FLOWS, `echoes of ${FLOWS} new flows: ${flows.stdout}`);
        const afterFlows = await serverStatistics(server);
        const crossed = afterFlows.total.tunQueueCrossings! - before.total.tunQueueCrossings!;
        assert.ok(crossed >= 1, `no crossing among ${FLOWS} new flows: ${JSON.stringify(afterFlows.shards)}`);
        assert.equal(
          afterFlows.tun['queue-crossings']! - before.tun['queue-crossings']!,
          crossed,
          `the main thread routed every crossing: ${JSON.stringify(afterFlows.tun)}`,
        );

        // Replace b's shard: its clients reconnect to the new worker, which reads the same queue
        // (the server is nobody now and could not open another).
        await mgmt.waitLine(/^>INFO:OpenVPN Management Interface Version 5/);
        const from = server.log().length;
        assert.match((await mgmt.command('shard-restart 1'))[0]!, /^SUCCESS/);
        await waitUntil(
          'the replaced shard serving',
          () => /shard 1 replaced: serving again/.test(server.log().slice(from)),
          10_000,
          () => server.log().slice(from),
        );
        await waitUntil(
          `client ${b} back`,
          () => new RegExp(`/${clientUnderlay(b)}:\\d+ MULTI: primary virtual IP`).test(server.log().slice(from)),
          20_000,
          () => server.log().slice(from),
        );
        // Its new session id may steer it to shard 0: reconnect it until the new shard 1 has it.
        for (let attempt = 0; placement(server, b)!.shard !== 1; attempt++) {
          assert.ok(attempt < 12, `client ${b} never landed on the new shard 1`);
          const again = server.log().length;
          await clients[b]!.stop();
          clients[b] = await lab.startOpenvpnClient(b, clientConf());
          await waitUntil(
            'its placement',
            () => new RegExp(`/${clientUnderlay(b)}:\\d+ MULTI: primary virtual IP`).test(server.log().slice(again)),
            5000,
          );
        }
        const vb2 = placement(server, b)!.virtual;
        const readsBefore = (await serverStatistics(server)).shards[1]?.tunQueueReads ?? 0;
        // The first reply may trail openvpn's 'Initialization Sequence Completed' on a loaded machine.
        await waitUntil('a reply through the new shard', () => lab.ping(lab.clients[b]!, SERVER_VIRTUAL, 1) === 1, 10_000);
        assert.equal(lab.ping(lab.clients[b]!, SERVER_VIRTUAL, 3), 3, `client ${b} -> server after the restart`);
        assert.equal(lab.ping(lab.server, vb2, 3), 3, `server -> client ${b} after the restart`);
        const readsAfter = (await serverStatistics(server)).shards[1]?.tunQueueReads ?? 0;
        assert.ok(readsAfter > readsBefore, `the new shard 1 read its queue: ${readsBefore} -> ${readsAfter}`);
        assert.equal(tunQueuesOpen(server), 3, 'no queue opened or lost by the restart');
      },
      () => mgmt.close(),
    );
  },
);

test(
  'tun-queues shard with client-to-client and persist-tun: clients on different shards reach each other and the server (IPv4, and IPv6 in the first run), before and after SIGUSR1',
  { timeout: 75_000 },
  async () => {
    const server = await lab.startShardvpn(serverConf('proto udp\nworkers 2\nclient-to-client\npersist-tun\nserver-ipv6 fd00:181::/64\n'));
    const clients: LabProcess[] = [];
    await whileServing(
      server,
      () => clients,
      async () => {
        clients.push(...(await Promise.all([0, 1, 2].map((i) => lab.startOpenvpnClient(i, clientConf())))));
        for (const round of ['first run', 'after SIGUSR1']) {
          await spreadOverShards(server, clients, clientConf());
          const a = [0, 1, 2].find((i) => placement(server, i)!.shard === 0)!;
          const b = [0, 1, 2].find((i) => placement(server, i)!.shard === 1)!;
          const before = (await serverStatistics(server)).tun['client-to-client'];
          // The first reply may trail openvpn's 'Initialization Sequence Completed' on a loaded machine.
          await waitUntil(`${round}: a first reply`, () => lab.ping(lab.clients[a]!, placement(server, b)!.virtual, 1) === 1, 10_000);
          assert.equal(lab.ping(lab.clients[a]!, placement(server, b)!.virtual, 3), 3, `${round}: shard 0 -> shard 1`);
          assert.equal(lab.ping(lab.clients[b]!, placement(server, a)!.virtual, 3), 3, `${round}: shard 1 -> shard 0`);
          const after = (await serverStatistics(server)).tun['client-to-client'];
          assert.ok(Number(after) - Number(before) >= 12, `${round}: client-to-client packets: ${before} -> ${after}`);
          for (const i of [a, b]) {
            assert.equal(lab.ping(lab.clients[i]!, SERVER_VIRTUAL, 2), 2, `${round}: client ${i} -> server`);
            assert.equal(lab.ping(lab.server, placement(server, i)!.virtual, 2), 2, `${round}: server -> client ${i}`);
          }
          assert.equal(tunQueuesOpen(server), 3, `${round}: the main thread's queue and one per shard`);
          if (round !== 'first run') break;
          // IPv6 inside the tunnel: the shards know their clients' IPv6 addresses too.
          const [a6, b6] = [tunAddress6(a), tunAddress6(b)];
          assert.equal(lab.ping(lab.clients[a]!, b6, 3, ['-6']), 3, `IPv6 shard 0 -> shard 1 (${b6})`);
          for (const [i, address] of [
            [a, a6],
            [b, b6],
          ] as const) {
            assert.equal(lab.ping(lab.clients[i]!, 'fd00:181::1', 2, ['-6']), 2, `IPv6 client ${i} -> server`);
            assert.equal(lab.ping(lab.server, address, 2, ['-6']), 2, `IPv6 server -> client ${i} (${address})`);
          }
          // A restart keeps the device and its queues (persist-tun); the clients come back after their ping-restart.
          const from = server.log().length;
          process.kill(server.child.pid!, 'SIGUSR1');
          await waitUntil(
            'the restart',
            () => /Initialization Sequence Completed/.test(server.log().slice(from)),
            15_000,
            () => server.log().slice(from),
          );
          assert.match(server.log().slice(from), /Preserving previous TUN\/TAP instance/);
          await waitUntil(
            'every client back',
            () => [0, 1, 2].every((i) => new RegExp(`/${clientUnderlay(i)}:\\d+ MULTI: primary virtual IP`).test(server.log().slice(from))),
            20_000,
            () => server.log().slice(from),
          );
        }
      },
    );
  },
);

test('tun-queues shard over proto tcp-server with workers 1: ping and TCP both ways', { timeout: 60_000 }, async () => {
  const server = await lab.startShardvpn(serverConf('proto tcp-server\nworkers 1\n'));
  const clients: LabProcess[] = [];
  await whileServing(
    server,
    () => clients,
    async () => {
      assert.match(server.log(), /multi-queue, one queue per shard \(1\)/);
      clients.push(...(await Promise.all([0, 1].map((i) => lab.startOpenvpnClient(i, clientConf('tcp-client'))))));
      await waitUntil('both clients placed', () => placement(server, 0) !== undefined && placement(server, 1) !== undefined, 5000);
      for (const i of [0, 1]) {
        assert.equal(lab.ping(lab.clients[i]!, SERVER_VIRTUAL, 2), 2, `client ${i} -> server`);
        assert.equal(lab.ping(lab.server, placement(server, i)!.virtual, 2), 2, `server -> client ${i}`);
      }
      for (const [from, to, address] of [
        [lab.clients[0]!, lab.server, SERVER_VIRTUAL],
        [lab.server, lab.clients[1]!, placement(server, 1)!.virtual],
      ] as const) {
        const result = await transfer(lab, from, to, address, 2 << 20, 5202);
        assert.equal(result.received.sha256, result.sent.sha256);
        assert.equal(result.received.bytes, 2 << 20);
      }
      assert.ok(((await serverStatistics(server)).shards[0]?.tunQueueReads ?? 0) > 0);
    },
  );
});

test(
  'tun-queues single to shard on SIGHUP with persist-tun: persist-tun keeps the device across SIGUSR1 only (as OpenVPN), so the new run opens its queues and serves',
  { timeout: 60_000 },
  async () => {
    const conf = (queues: string): string =>
      serverConf('proto udp\nworkers 2\npersist-tun\n').replace('tun-queues shard\n', `tun-queues ${queues}\n`);
    const server = await lab.startShardvpn(conf('single'), 'fallback.conf');
    let client: LabProcess | null = null;
    await whileServing(
      server,
      () => [client],
      async () => {
        assert.doesNotMatch(server.log(), /multi-queue/);
        assert.equal(tunQueuesOpen(server), 1);
        client = await lab.startOpenvpnClient(0, clientConf());
        lab.file('fallback.conf', conf('shard'));
        const from = server.log().length;
        process.kill(server.child.pid!, 'SIGHUP');
        await waitUntil(
          'the restart',
          () => /Initialization Sequence Completed/.test(server.log().slice(from)),
          15_000,
          () => server.log().slice(from),
        );
        const restart = server.log().slice(from);
        assert.doesNotMatch(restart, /Preserving previous TUN\/TAP instance/);
        assert.match(restart, /TUN device tun\d+: multi-queue, one queue per shard \(2\)/);
        assert.equal(tunQueuesOpen(server), 3);
        await waitUntil(
          'the client back',
          () => /MULTI: primary virtual IP/.test(server.log().slice(from)),
          20_000,
          () => server.log().slice(from),
        );
        await waitUntil('a reply', () => lab.ping(lab.clients[0]!, SERVER_VIRTUAL, 1) === 1, 10_000);
        assert.equal(lab.ping(lab.clients[0]!, SERVER_VIRTUAL, 2), 2);
        assert.equal(lab.ping(lab.server, placement(server, 0)!.virtual, 2), 2);
      },
    );
  },
);

test(
  'tun-queues shard on a device the kernel will not open multi-queue (a persistent single-queue tun): one queue, logged, and it serves',
  { timeout: 45_000 },
  async () => {
    // TUNSETIFF with IFF_MULTI_QUEUE on an existing device made without it fails with EINVAL.
    lab.server.ip(['tuntap', 'add', 'dev', 'tmqsq', 'mode', 'tun']);
    const server = await lab.startShardvpn(
      serverConf('proto udp\nworkers 2\n').replace('dev tun\n', 'dev tmqsq\ndev-type tun\n'),
      'refused.conf',
    );
    let client: LabProcess | null = null;
    try {
      await whileServing(
        server,
        () => [client],
        async () => {
          assert.match(server.log(), /tun-queues shard: the kernel refused a multi-queue TUN device \(.*EINVAL.*\); using one queue/);
          assert.equal(tunQueuesOpen(server), 1);
          client = await lab.startOpenvpnClient(0, clientConf());
          await waitUntil('the client placed', () => placement(server, 0) !== undefined, 5000);
          assert.equal(lab.ping(lab.clients[0]!, SERVER_VIRTUAL, 2), 2);
          assert.equal(lab.ping(lab.server, placement(server, 0)!.virtual, 2), 2);
        },
      );
    } finally {
      lab.server.ip(['tuntap', 'del', 'dev', 'tmqsq', 'mode', 'tun']);
    }
  },
);
