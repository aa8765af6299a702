// A server's own scripts (init.c do_open_tun, do_route, close_tun): --up after the device has its
// addresses and before the routes, --route-up after them, and at the end --route-pre-down, the
// device closed, --down. The same scripts under the same server.conf, run by the stock openvpn
// 2.6 server and by shardvpn's, must see the same calls: order, positional arguments, the
// tunnel's variables, whether the route was there yet, and the signal at the end. A failed up
// script stops the start, as in OpenVPN.
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { BIN, type LabProcess, VpnLab } from '../lab/vpn-lab';
import { serverConfig, startStockServer } from './helpers/client-lab';

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(0);
});
after(async () => {
  await lab.cleanup();
});

/**
 * One line per call: the script type, the positional arguments other than link_mtu (OpenVPN's own
 * frame arithmetic, which shardvpn does not mirror), the tunnel's variables, and whether the
 * config's route was in the table and the device still existed.
 */
function recorder(log: string): string {
  return `#!/bin/sh
route=$(ip route show 10.99.0.0/24 | wc -l)
metric=$(ip route show 10.99.0.0/24 | grep -o 'metric [0-9]*' | tr ' ' '=')
dev=$(ip link show "$dev" >/dev/null 2>&1 && echo present || echo gone)
echo "$script_type args=[$1 $2 $4 $5 $6] ifconfig_local=$ifconfig_local ifconfig_netmask=$ifconfig_netmask route_network_1=$route_network_1 route_netmask_1=$route_netmask_1 route_gateway_1=$route_gateway_1 route_vpn_gateway=$route_vpn_gateway signal=$signal route=$route $metric dev=$dev" >> ${log}
`;
}

function scriptedConfig(port: number, script: string, extra = ''): string {
  return serverConfig(lab, {
    port,
    extra: `script-security 2\nup ${script}\nroute-up ${script}\nroute-pre-down ${script}\ndown ${script}\nroute 10.99.0.0 255.255.255.0\n${extra}`,
  });
}

async function calls(start: () => Promise<LabProcess>, log: string): Promise<string[]> {
  rmSync(log, { force: true });
  const server = await start();
  assert.equal(await server.stop('SIGTERM', 10_000), 0, server.log().slice(-2000));
  return readFileSync(log, 'utf8').trim().split('\n');
}

test('up, route-up, route-pre-down and down: the stock server and shardvpn make the same calls', { timeout: 60_000 }, async () => {
  const log = path.join(lab.dir, 'scripts.log');
  const script = path.join(lab.dir, 'record.sh');
  writeFileSync(script, recorder(log));
  chmodSync(script, 0o755);
  const stock = await calls(() => startStockServer(lab, scriptedConfig(1360, script)), log);
  const ours = await calls(() => lab.startShardvpn(scriptedConfig(1361, script), 'scripts-server.conf'), log);
  assert.deepEqual(ours, stock);
  // What both agree on, spelled out: the order, and what each call saw.
  assert.deepEqual(
    ours.map((line) => line.split(' ')[0]),
    ['up', 'route-up', 'route-pre-down', 'down'],
  );
  assert.match(
    ours[0]!,
    /^up args=\[tun0 1500 10\.152\.0\.1 255\.255\.255\.0 init\] ifconfig_local=10\.152\.0\.1 .* route=0 +dev=present$/,
  );
  assert.match(ours[1]!, /^route-up args=\[ {4}\] .* route=1 +dev=present$/);
  assert.match(ours[2]!, /^route-pre-down args=\[tun0 1500 10\.152\.0\.1 255\.255\.255\.0 init\] .*signal=sigterm route=1 +dev=present$/);
  assert.match(ours[3]!, /^down args=\[tun0 1500 10\.152\.0\.1 255\.255\.255\.0 init\] .*signal=sigterm route=0 +dev=gone$/);
});

test(
  'down-pre and route-metric: the same calls again, down before the device goes, the route with its metric',
  { timeout: 60_000 },
  async () => {
    const log = path.join(lab.dir, 'scripts-pre.log');
    const script = path.join(lab.dir, 'record-pre.sh');
    writeFileSync(script, recorder(log));
    chmodSync(script, 0o755);
    const extra = 'down-pre\nroute-metric 7\n';
    const stock = await calls(() => startStockServer(lab, scriptedConfig(1363, script, extra)), log);
    const ours = await calls(() => lab.startShardvpn(scriptedConfig(1364, script, extra), 'scripts-pre-server.conf'), log);
    assert.deepEqual(ours, stock);
    assert.match(ours[1]!, /^route-up .* route=1 metric=7 dev=present$/);
    // As OpenVPN's close_tun: the routes are gone, the device is still there.
    assert.match(ours[3]!, /^down .* route=0 +dev=present$/);
  },
);

test('a failing up script stops the server from starting, as in OpenVPN', { timeout: 30_000 }, async () => {
  const log = path.join(lab.dir, 'failing.log');
  const fails = path.join(lab.dir, 'fails.sh');
  writeFileSync(fails, `#!/bin/sh\necho "$script_type" >> ${log}\nexit 3\n`);
  chmodSync(fails, 0o755);
  const server = lab.spawn(
    lab.server,
    process.execPath,
    [BIN, '--config', lab.file('failing-up.conf', scriptedConfig(1362, fails))],
    'shardvpn',
  );
  const status = await server.waitExit();
  assert.notEqual(status, 0);
  assert.match(server.log(), /Failed running command \(--up\): external program exited with error status: 3/);
  assert.match(server.log(), /the up script failed/);
  assert.doesNotMatch(server.log(), /Initialization Sequence Completed/);
  // Only the up script ran: no routes were added, so no route-up, and nothing to take down.
  assert.equal(readFileSync(log, 'utf8'), 'up\n');
});
