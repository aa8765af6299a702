// Pure parts of client mode: the connection list across restarts, the network a PUSH_REPLY
// describes, the script environment and command splitting, auth files and --genkey arguments.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { buildOptions, parseConfigText } from '../src/shared/config';
import { parsePushReply } from '../src/shared/protocol/push-options';
import { parseAuthFile } from '../src/main/client/auth-user-pass';
import { ConnectionList } from '../src/main/client/remotes';
import { applyRouteNopull, clientNetwork, sameNetwork } from '../src/main/client/tun-network';
import { scriptArguments, splitCommand, tunnelEnvironment } from '../src/main/scripts';
import { parseGenkeyArgs } from '../src/main/tools/genkey';

function options(text: string) {
  return buildOptions(parseConfigText(text, 'client.conf')).options;
}

const PUSH =
  'PUSH_REPLY,route 10.160.0.0 255.255.255.0,route 10.161.0.0 255.255.0.0 10.152.0.7 5,route-ipv6 fd60::/64,dhcp-option DNS 10.152.0.1,redirect-gateway def1,route-gateway 10.152.0.1,topology subnet,ping 2,ping-restart 10,ifconfig-ipv6 fd52::1000/64 fd52::1,ifconfig 10.152.0.2 255.255.255.0,peer-id 0,cipher AES-256-GCM';

test('connection list: in order, stays after a completed connection, advances on RESTART,N, gives up at connect-retry-max', () => {
  const o = options('client\nremote a 1194\nremote b 1195\nremote c 1196\nconnect-retry 2 10\n');
  const list = new ConnectionList(o.connections, false);
  const host = (): string => {
    const n = list.next(2);
    assert.ok(n.ok);
    return n.entry.remote!;
  };
  assert.deepEqual([host(), host(), host(), host()], ['a', 'b', 'c', 'a']);
  list.completed();
  assert.equal(host(), 'a', 'a completed connection is retried first');
  assert.equal(host(), 'b');
  list.completed();
  list.advanceNext = true;
  assert.equal(host(), 'c', 'RESTART,N moves on at once');
  // Backoff: after five failed rounds the pause doubles, capped by connect-retry's max.
  const entry = o.connections[0]!;
  assert.equal(list.restartPauseS(entry), 2);
  for (let i = 0; i < 15; i++) list.next(0);
  assert.equal(list.restartPauseS(entry), 4);
  for (let i = 0; i < 30; i++) list.next(0);
  assert.equal(list.restartPauseS(entry), 10);
  list.restartSleepS = 30;
  assert.equal(list.restartPauseS(entry), 30, 'AUTH_FAILED,TEMP backoff wins once');
  assert.equal(list.restartPauseS(entry), 10);

  const limited = new ConnectionList(o.connections, false);
  for (let i = 0; i < 3; i++) assert.ok(limited.next(1).ok);
  const over = limited.next(1);
  assert.ok(!over.ok && /connect-retry-max \(1\)/.test(over.reason));
});

test('connection list: a name with several addresses is tried address by address before the next remote', () => {
  const o = options('client\nremote dual.example 1194\nremote b 1195\n');
  const list = new ConnectionList(o.connections, false);
  const v6 = { family: 6 as const, address: 'fd00::1' };
  const v4 = { family: 4 as const, address: '192.0.2.1' };
  const step = (): [string, string | null] => {
    const n = list.next(1);
    assert.ok(n.ok, n.ok ? '' : n.reason);
    return [n.entry.remote!, n.address?.address ?? null];
  };
  assert.deepEqual(step(), ['dual.example', null], 'the first run resolves the name');
  assert.deepEqual(list.resolved([v6, v4]), v6);
  assert.deepEqual(step(), ['dual.example', '192.0.2.1'], 'v6 failed: the next address, not the next remote');
  assert.deepEqual(step(), ['b', null], 'addresses used up: the next remote, resolved afresh');
  list.resolved([{ family: 4, address: '192.0.2.2' }]);
  list.completed();
  assert.deepEqual(step(), ['b', '192.0.2.2'], 'after a completed connection the same address again');
  // Two remotes with connect-retry-max 1: the extra address did not count as an attempt.
  const limited = new ConnectionList(o.connections, false);
  assert.ok(limited.next(1).ok);
  limited.resolved([v6, v4]);
  assert.ok(limited.next(1).ok);
  assert.ok(limited.next(1).ok);
  assert.equal(limited.next(1).ok, false);
});

test('remote-random shuffles the list once', () => {
  const o = options('client\nremote a\nremote b\nremote c\nremote-random\n');
  const list = new ConnectionList(o.connections, o.remoteRandom, () => 0);
  const order = [list.next(0), list.next(0), list.next(0)].map((n) => (n.ok ? n.entry.remote : ''));
  assert.deepEqual(order, ['b', 'c', 'a']);
});

test('clientNetwork: pushed ifconfig, routes with gateway and metric, IPv6, dhcp-option, redirect-gateway', () => {
  const parsed = parsePushReply(PUSH);
  assert.ok(parsed.ok);
  const o = options('client\nremote a\nroute 192.168.77.0 255.255.255.0\n');
  const n = clientNetwork(o, parsed.options);
  assert.equal(n.topology, 'subnet');
  assert.deepEqual(n.ifconfig, { local: '10.152.0.2', remoteOrNetmask: '255.255.255.0' });
  assert.deepEqual(n.ifconfigIpv6, { local: 'fd52::1000', bits: 64, remote: 'fd52::1' });
  assert.equal(n.vpnGateway, '10.152.0.1');
  assert.deepEqual(n.routes, [
    { network: '192.168.77.0', netmask: '255.255.255.0', gateway: '10.152.0.1' },
    { network: '10.160.0.0', netmask: '255.255.255.0', gateway: '10.152.0.1' },
    { network: '10.161.0.0', netmask: '255.255.0.0', gateway: '10.152.0.7', metric: 5 },
  ]);
  assert.deepEqual(n.routes6, [{ network: 'fd60::', bits: 64 }]);
  assert.deepEqual(n.dhcpOptions, ['dhcp-option DNS 10.152.0.1']);
  assert.deepEqual(n.redirectGateway, ['def1']);
  // route-nopull keeps addresses and drops routes, DNS and redirect-gateway.
  const nopull = clientNetwork(o, applyRouteNopull(parsed.options));
  assert.equal(nopull.routes.length, 1);
  assert.equal(nopull.routes6.length, 0);
  assert.equal(nopull.redirectGateway, undefined);
  assert.deepEqual(nopull.ifconfig, n.ifconfig);
  assert.ok(sameNetwork(n, clientNetwork(o, parsed.options)));
  assert.ok(!sameNetwork(n, nopull));
  // net30: the point-to-point peer is the gateway.
  const p = parsePushReply('PUSH_REPLY,route 10.8.0.1,topology net30,ifconfig 10.8.0.6 10.8.0.5');
  assert.ok(p.ok);
  const net30 = clientNetwork(options('client\nremote a\n'), p.options);
  assert.equal(net30.vpnGateway, '10.8.0.5');
  assert.deepEqual(net30.routes, [{ network: '10.8.0.1', netmask: '255.255.255.255', gateway: '10.8.0.5' }]);
});

test('script environment and arguments follow OpenVPN', () => {
  const parsed = parsePushReply(PUSH);
  assert.ok(parsed.ok);
  const o = options('client\nremote vpn.example 1194\nsetenv FOO bar\n');
  const facts = {
    dev: 'tun3',
    network: clientNetwork(o, parsed.options),
    remote: { host: 'vpn.example', address: '10.150.0.1', port: 1194 },
    commonName: 'server',
  };
  const env = tunnelEnvironment(o, facts, 'up', 'init');
  assert.equal(env.script_type, 'up');
  assert.equal(env.dev, 'tun3');
  assert.equal(env.tun_mtu, '1500');
  assert.equal(env.ifconfig_local, '10.152.0.2');
  assert.equal(env.ifconfig_netmask, '255.255.255.0');
  assert.equal(env.ifconfig_remote, undefined);
  assert.equal(env.ifconfig_ipv6_local, 'fd52::1000');
  assert.equal(env.ifconfig_ipv6_netbits, '64');
  assert.equal(env.route_network_1, '10.160.0.0');
  assert.equal(env.route_gateway_2, '10.152.0.7');
  assert.equal(env.route_metric_2, '5');
  assert.equal(env.route_ipv6_network_1, 'fd60::/64');
  assert.equal(env.foreign_option_1, 'dhcp-option DNS 10.152.0.1');
  assert.equal(env.remote_1, 'vpn.example');
  assert.equal(env.trusted_ip, '10.150.0.1');
  assert.equal(env.common_name, 'server');
  assert.equal(env.FOO, 'bar');
  assert.deepEqual(scriptArguments(facts, 'restart'), ['tun3', '1500', '0', '10.152.0.2', '255.255.255.0', 'restart']);
  assert.equal(tunnelEnvironment(o, facts, 'down', 'init', 'sigterm').signal, 'sigterm');
  assert.deepEqual(splitCommand(`/etc/openvpn/up.sh "a b" c\\ d 'e f'`), ['/etc/openvpn/up.sh', 'a b', 'c d', 'e f']);
});

test('auth-user-pass files and --genkey arguments', () => {
  assert.deepEqual(parseAuthFile('alice\ns3cret\n', { file: 'c.conf', line: 3 }), { username: 'alice', password: 's3cret' });
  assert.deepEqual(parseAuthFile('bob\r\npw\r\n', { file: 'c.conf', line: 3 }), { username: 'bob', password: 'pw' });
  assert.throws(() => parseAuthFile('\n', { file: 'c.conf', line: 3 }), /c\.conf:3: auth-user-pass: the file has no username/);
  const g = parseGenkeyArgs(['--genkey', 'tls-crypt-v2-client', 'c.key', '--tls-crypt-v2', 's.key']);
  assert.ok(g.ok && g.request.type === 'tls-crypt-v2-client' && g.request.file === 'c.key' && g.request.serverKeyFile === 's.key');
  const old = parseGenkeyArgs(['--genkey', '--secret', 'k.key']);
  assert.ok(old.ok && old.request.type === 'secret' && old.request.file === 'k.key');
  const bad = parseGenkeyArgs(['--genkey', 'rsa']);
  assert.ok(!bad.ok && /unknown key type 'rsa'/.test(bad.reason));
});

test('route-ipv6-gateway (config or pushed) is the IPv6 routes gateway for the scripts, before the ifconfig-ipv6 peer', () => {
  const pushed = parsePushReply('PUSH_REPLY,ifconfig-ipv6 fd00::2/64 fd00::1,route-ipv6 2001:db8::/32');
  assert.ok(pushed.ok);
  assert.equal(clientNetwork(options('client\nremote a\n'), pushed.options).vpnGateway6, 'fd00::1');
  assert.equal(clientNetwork(options('client\nremote a\nroute-ipv6-gateway fd00::99\n'), pushed.options).vpnGateway6, 'fd00::99');
  const both = parsePushReply('PUSH_REPLY,ifconfig-ipv6 fd00::2/64 fd00::1,route-ipv6-gateway fd00::77');
  assert.ok(both.ok);
  assert.equal(clientNetwork(options('client\nremote a\nroute-ipv6-gateway fd00::99\n'), both.options).vpnGateway6, 'fd00::77');
  assert.equal(parsePushReply('PUSH_REPLY,route-ipv6-gateway 10.0.0.1').ok, false);
  assert.throws(() => options('client\nremote a\nroute-ipv6-gateway nope\n'), /route-ipv6-gateway parm 'nope' must be a valid address/);
});
