// A shard that fails, against a real server with two shards and stock openvpn 2.6 clients on
// both: the failed shard is replaced on its socket, its clients reconnect (after their
// ping-restart: their sessions died with the worker), the other shard's clients lose no ping
// meanwhile, the main thread releases the dead shard's clients (status, routing table, ifconfig
// pool) and the restart shows on /metrics. Three ways to fail: an uncaught exception in the
// worker and the worker's own exit (the fault-injection test aid, SHARDVPN_FAULT_INJECTION=1),
// and worker.terminate() (management shard-restart). Without the variable the aid does not exist.
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { after, before, test } from 'node:test';

import { runNodeIn } from '../lab/netns';
import { VpnLab, clientUnderlay, type LabProcess } from '../lab/vpn-lab';
import { ManagementClient, waitUntil } from './helpers/management-client';
import { whileServing } from './helpers/serving';

const CLIENTS = 4;
const METRICS_PORT = 9191;
const SERVER_VIRTUAL = '10.171.0.1';
/** Echo requests each client of the surviving shard sends during a fault, 50 ms apart. */
const PINGS = 100;
const INIT = /Initialization Sequence Completed/g;

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(CLIENTS, 'faults-');
});
after(async () => {
  await lab.cleanup();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function serverConf(socket: string): string {
  // keepalive 1 2: clients of a dead shard restart after 2 s without a packet from the server.
  return (
    `port 1194\nproto udp\ndev tun\ntopology subnet\nserver 10.171.0.0 255.255.255.0\nworkers 2\nduplicate-cn\n` +
    `keepalive 1 2\ntls-crypt ${lab.keys.tlsCrypt}\n${lab.serverTlsLines()}management ${socket} unix\n` +
    `metrics-listen 127.0.0.1 ${METRICS_PORT}\nverb 3\n`
  );
}

function clientConf(): string {
  // explicit-exit-notify: a client the test restarts leaves no session behind on the server.
  return (
    `client\ndev tun\nproto udp\nremote 10.150.0.1 1194\nnobind\nexplicit-exit-notify 1\n` +
    `${lab.clientTlsLines()}tls-crypt ${lab.keys.tlsCrypt}\nverb 3\n`
  );
}

/** The shard that owns each client (by its underlay address), from the server's latest 'primary virtual IP' line of it. */
function placements(server: LabProcess): Map<string, number> {
  const found = new Map<string, number>();
  for (const match of server.log().matchAll(/\/([\d.]+):\d+ MULTI: primary virtual IP: [\d.]+ \(peer-id \d+, shard (\d+),/g)) {
    found.set(match[1]!, Number(match[2]));
  }
  return found;
}

const shardOf = (server: LabProcess, i: number): number | undefined => placements(server).get(clientUnderlay(i));

/** Fetches /metrics inside the server's namespace; the value of one series (exact label text), or null. */
async function metric(series: string): Promise<number | null> {
  const get =
    'fetch(process.argv[1]).then(async (r) => { process.stdout.write(await r.text()); }, (e) => { console.error(String(e)); process.exit(1); });';
  const result = await runNodeIn(lab.server, '-e', [get, `http://127.0.0.1:${METRICS_PORT}/metrics`], 10_000);
  assert.equal(result.code, 0, result.stderr);
  const line = result.stdout.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? null : Number(line.slice(series.length + 1));
}

/** `status 2` over management: the CLIENT_LIST and ROUTING_TABLE rows. */
async function statusRows(mgmt: ManagementClient): Promise<{ clients: string[]; routes: string[] }> {
  const lines = await mgmt.command('status 2', /^END$/);
  return { clients: lines.filter((l) => l.startsWith('CLIENT_LIST,')), routes: lines.filter((l) => l.startsWith('ROUTING_TABLE,')) };
}

/** Polls `status 2` until it lists `count` clients. */
async function listedClients(mgmt: ManagementClient, count: number): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const rows = (await statusRows(mgmt)).clients;
    if (rows.length === count) return;
    assert.ok(Date.now() < deadline, `status lists ${rows.length} clients, not ${count}:\n${rows.join('\n')}`);
    await sleep(100);
  }
}

/** Reconnects clients until both shards own at least one (control packets are steered by a random session id). */
async function spreadOverShards(server: LabProcess, clients: LabProcess[]): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const shards = clients.map((_, i) => shardOf(server, i));
    if (shards.includes(0) && shards.includes(1)) return;
    assert.ok(attempt < 12, `clients never landed on both shards: ${JSON.stringify(shards)}`);
    const i = attempt % clients.length;
    const from = server.log().length;
    await clients[i]!.stop();
    clients[i] = await lab.startOpenvpnClient(i, clientConf());
    await waitUntil(
      'the reconnected client on the server',
      () =>
        server
          .log()
          .slice(from)
          .includes(`/${clientUnderlay(i)}:`),
      5000,
    );
    await waitUntil('its placement', () => /MULTI: primary virtual IP/.test(server.log().slice(from)), 5000);
  }
}

/** `ping -i 0.05` of PINGS requests through the tunnel; resolves with [transmitted, received]. */
function continuousPing(i: number): { done: Promise<[number, number]>; proc: LabProcess } {
  const proc = lab.spawn(lab.clients[i]!, 'ping', ['-n', '-i', '0.05', '-c', String(PINGS), '-w', '20', SERVER_VIRTUAL], `ping ${i}`);
  const done = new Promise<[number, number]>((resolve) => {
    proc.child.once('exit', () => {
      const match = /(\d+) packets transmitted, (\d+) received/.exec(proc.log());
      resolve(match === null ? [0, 0] : [Number(match[1]), Number(match[2])]);
    });
  });
  return { done, proc };
}

interface FaultTimes {
  /** From the fault command's reply to the log line of the new worker serving, as the test saw it. */
  replacedMs: number;
  /** What the server measured from the worker's exit to its replacement serving. */
  exitToReadyMs: number;
  /** From the fault to each of the dead shard's clients completing its new connection. */
  reconnectMs: number[];
}

/**
 * One fault on the shard that owns client 0 (`command` names `{shard}`): checks the replacement,
 * the survivors' pings, the release of the dead shard's clients, their reconnection, the metrics.
 */
async function faultRound(
  server: LabProcess,
  mgmt: ManagementClient,
  clients: LabProcess[],
  command: string,
  round: number,
): Promise<FaultTimes> {
  await spreadOverShards(server, clients);
  await listedClients(mgmt, CLIENTS);
  const victim = shardOf(server, 0)!;
  const indices = clients.map((_, i) => i);
  const victims = indices.filter((i) => shardOf(server, i) === victim);
  const survivors = indices.filter((i) => shardOf(server, i) !== victim);
  const restartsBefore = (await metric(`shardvpn_shard_restarts_total{shard="${victim}"}`)) ?? 0;
  const initsBefore = victims.map((i) => clients[i]!.log().match(INIT)?.length ?? 0);
  // Each client's session as the server lists it (real address ip:port) before the fault.
  const sessionBefore = new Map<number, string>();
  const listed = await statusRows(mgmt);
  for (const i of indices) {
    const row = listed.clients.find((r) => r.includes(`,${clientUnderlay(i)}:`));
    const address = row === undefined ? undefined : new RegExp(`,(${clientUnderlay(i).replace(/\./g, '\\.')}:\\d+),`).exec(row)?.[1];
    assert.ok(address !== undefined, `client ${i} not listed before the fault:\n${listed.clients.join('\n')}`);
    sessionBefore.set(i, address);
  }

  const pings = survivors.map(continuousPing);
  // Let the pings run for a moment, so the fault lands in the middle of them.
  await waitUntil(
    'the first echo replies',
    () => pings.every((p) => /bytes from/.test(p.proc.log())),
    5000,
    () =>
      survivors
        .map((i, k) => `--- client ${i} ping:\n${pings[k]!.proc.log().slice(-600)}\n--- client ${i}:\n${clients[i]!.log().slice(-1200)}`)
        .join('\n') + `\n--- server:\n${server.log().slice(-2500)}`,
  );
  await sleep(500);

  const logFrom = server.log().length;
  const faultAt = Date.now();
  const reply = mgmt.command(command.replace('{shard}', String(victim)));
  // Watched closely (5 ms) for the time it took; the bound is a generous one, not a target.
  const replaced = new RegExp(`shard ${victim} replaced: serving again ([\\d.]+) ms after its worker exited`);
  while (!replaced.test(server.log().slice(logFrom))) {
    assert.ok(Date.now() - faultAt < 5000, `shard ${victim} was not replaced within 5 s:\n${server.log().slice(logFrom)}`);
    await sleep(5);
  }
  const replacedAt = Date.now();
  assert.match((await reply)[0]!, /^SUCCESS:/);
  const exitToReadyMs = Number(replaced.exec(server.log().slice(logFrom))![1]);
  assert.match(
    server.log().slice(logFrom),
    new RegExp(`shard ${victim} died \\(.*\\): restarted on the same socket; ${victims.length} of its clients must reconnect`),
  );

  // The main thread forgot the dead shard's sessions at once: none of them is listed or routed,
  // every survivor's session still is, the pool holds exactly the routed clients' addresses, and
  // the new shard counts only clients that connected to it since. (On a loaded machine a dead
  // shard's client may already be back with a new session, from a new port: that one may show.)
  const connectedOnVictim = (await metric(`shardvpn_shard_connected_clients{shard="${victim}"}`)) ?? 0;
  const usedBefore = (await metric('shardvpn_pool_addresses{state="used"}')) ?? 0;
  const released = await statusRows(mgmt);
  const usedAfter = (await metric('shardvpn_pool_addresses{state="used"}')) ?? 0;
  const rows = [...released.clients, ...released.routes].join('\n');
  for (const i of victims) assert.ok(!rows.includes(`,${sessionBefore.get(i)!},`), `client ${i}'s dead session is still listed:\n${rows}`);
  for (const i of survivors) {
    assert.ok(
      released.clients.some((r) => r.includes(`,${sessionBefore.get(i)!},`)),
      `survivor ${i} not listed:\n${rows}`,
    );
    assert.ok(
      released.routes.some((r) => r.includes(`,${sessionBefore.get(i)!},`)),
      `survivor ${i} not routed:\n${rows}`,
    );
  }
  const reconnected = released.routes.filter((r) => victims.some((i) => r.includes(`,${clientUnderlay(i)}:`)));
  assert.equal(released.routes.length, survivors.length + reconnected.length, rows);
  assert.ok(usedBefore <= released.routes.length && released.routes.length <= usedAfter, `pool ${usedBefore}..${usedAfter} vs ${rows}`);
  assert.ok(connectedOnVictim <= reconnected.length, `the new shard counts ${connectedOnVictim} clients:\n${rows}`);
  assert.equal(await metric(`shardvpn_shard_restarts_total{shard="${victim}"}`), restartsBefore + 1);

  // Every client of the other shard got every reply while the shard failed and came back.
  const results = await Promise.all(pings.map((p) => p.done));
  results.forEach(([sent, received], k) => {
    assert.deepEqual([sent, received], [PINGS, PINGS], `client ${survivors[k]} on the surviving shard lost pings`);
  });

  // The dead shard's clients notice the silence (ping-restart), reconnect, and ping again.
  const reconnectMs: number[] = [];
  await Promise.all(
    victims.map(async (i, k) => {
      await waitUntil(
        `client ${i} to reconnect`,
        () => (clients[i]!.log().match(INIT)?.length ?? 0) > initsBefore[k]!,
        20_000,
        () => clients[i]!.log().slice(-2000),
      );
      reconnectMs.push(Date.now() - faultAt);
    }),
  );
  // openvpn logs its new tunnel complete as soon as it has configured its TUN device; give the
  // tunnel a few seconds to carry a first reply (with the logs if it never does), then 3 of 3.
  for (const i of victims) {
    await waitUntil(
      `client ${i}'s tunnel to answer after reconnecting`,
      () => lab.ping(lab.clients[i]!, SERVER_VIRTUAL, 1) === 1,
      15_000,
      () => `${clients[i]!.log().slice(-1500)}\n--- server:\n${server.log().slice(-2500)}`,
    );
    assert.equal(lab.ping(lab.clients[i]!, SERVER_VIRTUAL, 3), 3, `client ${i} after reconnecting`);
  }

  // Each client is listed, routed and holds a pool address once: nothing of the old sessions is left.
  await listedClients(mgmt, CLIENTS);
  const after = await statusRows(mgmt);
  assert.equal(after.clients.length, CLIENTS, after.clients.join('\n'));
  assert.equal(after.routes.length, CLIENTS, after.routes.join('\n'));
  const virtuals = after.clients.map((row) => row.split(',')[3]);
  assert.equal(new Set(virtuals).size, CLIENTS, virtuals.join(' '));
  assert.equal(await metric('shardvpn_pool_addresses{state="used"}'), CLIENTS);
  // The shards' gauges follow within a second or two; a session a client left without a word (a
  // client that restarted on a loaded machine) lasts until the server's ping-restart (4 s).
  const connected = async (): Promise<number> =>
    ((await metric('shardvpn_shard_connected_clients{shard="0"}')) ?? 0) +
    ((await metric('shardvpn_shard_connected_clients{shard="1"}')) ?? 0);
  const settled = Date.now() + 8000;
  let shardsCount = await connected();
  while (shardsCount !== CLIENTS && Date.now() < settled) {
    await sleep(250);
    shardsCount = await connected();
  }
  assert.equal(shardsCount, CLIENTS, `the shards count ${shardsCount} clients:\n${server.log().slice(-2500)}`);
  console.log(
    `round ${round} (${command}): shard ${victim} with ${victims.length} clients replaced ${replacedAt - faultAt} ms after the fault ` +
      `(${exitToReadyMs} ms after the worker exited); its clients reconnected after ${reconnectMs.join(', ')} ms`,
  );
  return { replacedMs: replacedAt - faultAt, exitToReadyMs, reconnectMs };
}

test(
  'a shard that throws, exits or is terminated is replaced; its clients reconnect, the other shard loses no ping, nothing leaks',
  { timeout: 120_000 },
  async () => {
    const socket = path.join(lab.dir, 'faults-mgmt.sock');
    const server = await lab.startShardvpn(serverConf(socket), 'faults.conf', [], { SHARDVPN_FAULT_INJECTION: '1' });
    await server.waitFor(/MANAGEMENT: unix domain socket listening on /, 5000);
    const mgmt = new ManagementClient(socket);
    const clients: LabProcess[] = [];
    await whileServing(
      server,
      () => clients,
      async () => {
        await mgmt.waitLine(/^>INFO:OpenVPN Management Interface Version 5/);
        const help = await mgmt.command('help', /^END$/);
        assert.ok(
          help.some((l) => l.startsWith('shard-fault n throw|exit')),
          help.join('\n'),
        );
        assert.match((await mgmt.command('shard-fault 0 explode'))[0]!, /^ERROR: shard-fault: 'explode' is not one of throw, exit$/);
        assert.match((await mgmt.command('shard-fault 2 throw'))[0]!, /^ERROR: no shard 2$/);
        clients.push(...(await Promise.all(Array.from({ length: CLIENTS }, (_, i) => lab.startOpenvpnClient(i, clientConf())))));
        await waitUntil('every client placed', () => placements(server).size === CLIENTS, 5000);

        await faultRound(server, mgmt, clients, 'shard-fault {shard} throw', 1);
        assert.match(server.log(), /shard \d failed: Error: shard \d: fault injected \(throw\)/);
        await faultRound(server, mgmt, clients, 'shard-fault {shard} exit', 2);
        assert.match(server.log(), /shard \d died \(exit code 70\)/);
        await faultRound(server, mgmt, clients, 'shard-restart {shard}', 3);
        assert.equal(server.exited(), false);
      },
      () => mgmt.close(),
    );
  },
);

test('without SHARDVPN_FAULT_INJECTION the fault command does not exist and the shards keep serving', { timeout: 30_000 }, async () => {
  const socket = path.join(lab.dir, 'plain-mgmt.sock');
  const server = await lab.startShardvpn(serverConf(socket), 'plain.conf', [], { SHARDVPN_FAULT_INJECTION: undefined });
  await server.waitFor(/MANAGEMENT: unix domain socket listening on /, 5000);
  const mgmt = new ManagementClient(socket);
  try {
    await mgmt.waitLine(/^>INFO:OpenVPN Management Interface Version 5/);
    const help = await mgmt.command('help', /^END$/);
    assert.ok(!help.some((l) => l.includes('shard-fault')), help.join('\n'));
    for (const fault of ['throw', 'exit']) {
      assert.deepEqual(await mgmt.command(`shard-fault 0 ${fault}`), ["ERROR: unknown command, enter 'help' for more options"]);
    }
    // Give a fault, had one been sent, the time to happen.
    await sleep(500);
    assert.equal(await metric('shardvpn_shard_restarts_total{shard="0"}'), 0);
    assert.doesNotMatch(server.log(), /fault|died/);
  } finally {
    mgmt.close();
    assert.equal(await server.stop(), 0, server.log().slice(-2000));
  }
});

/**
 * The server process's open descriptors, as /proc names them, sorted. A dup of a listener has
 * the listener's socket inode, so a leaked copy shows as one more of the same name. Pipes (a
 * worker's stdio) are new with each worker: only their number counts.
 */
function openDescriptors(server: LabProcess): string[] {
  const dir = `/proc/${server.child.pid!}/fd`;
  return readdirSync(dir)
    .map((fd) => {
      try {
        return readlinkSync(`${dir}/${fd}`).replace(/^pipe:\[\d+\]$/, 'pipe');
      } catch {
        return 'gone';
      }
    })
    .sort();
}

test(
  'proto tcp-server: shards replaced, even before they took their listener over, leave no descriptor behind',
  { timeout: 60_000 },
  async () => {
    const socket = path.join(lab.dir, 'tcp-mgmt.sock');
    const conf = serverConf(socket).replace('proto udp\n', 'proto tcp-server\n').replace('duplicate-cn\n', '');
    const server = await lab.startShardvpn(conf, 'tcp.conf');
    await server.waitFor(/MANAGEMENT: unix domain socket listening on /, 5000);
    const mgmt = new ManagementClient(socket);
    let client: LabProcess | null = null;
    await whileServing(
      server,
      () => [client],
      async () => {
        await mgmt.waitLine(/^>INFO:OpenVPN Management Interface Version 5/);
        const before = openDescriptors(server);
        for (let round = 1; round <= 4; round++) {
          const shard = round % 2;
          const from = server.log().length;
          assert.match((await mgmt.command(`shard-restart ${shard}`))[0]!, /^SUCCESS: shard \d restarting$/);
          // The moment the old worker is gone, end its replacement too: it is still starting, before
          // it listens (a worker takes some 50 ms or more to start).
          const died = new RegExp(`shard ${shard} died`);
          while (!died.test(server.log().slice(from))) {
            assert.ok(server.log().length - from < 100_000 && !server.exited(), server.log().slice(from));
            await sleep(1);
          }
          assert.match((await mgmt.command(`shard-restart ${shard}`))[0]!, /^SUCCESS: shard \d restarting$/);
          await waitUntil(
            `shard ${shard} serving again`,
            () => /replaced: serving again/.test(server.log().slice(from)),
            5000,
            () => server.log().slice(from),
          );
          assert.equal(server.log().slice(from).match(/died/g)?.length, 2, server.log().slice(from));
        }
        // A killed worker's descriptors are closed as its exit is handled: give a loaded machine a
        // few seconds for that, then they must be exactly the ones from before.
        const settled = Date.now() + 5000;
        while (!isDeepStrictEqual(openDescriptors(server), before) && Date.now() < settled) await sleep(100);
        assert.deepEqual(openDescriptors(server), before, 'descriptors before and after the restarts');
        assert.equal(await metric('shardvpn_shard_restarts_total{shard="0"}'), await metric('shardvpn_shard_restarts_total{shard="1"}'));
        assert.ok(((await metric('shardvpn_shard_restarts_total{shard="0"}')) ?? 0) >= 2);
        // The listeners still take connections.
        client = await lab.startOpenvpnClient(
          0,
          clientConf().replace('proto udp\n', 'proto tcp-client\n').replace('explicit-exit-notify 1\n', ''),
        );
        assert.equal(lab.ping(lab.clients[0]!, SERVER_VIRTUAL, 3), 3);
      },
      () => mgmt.close(),
    );
  },
);
