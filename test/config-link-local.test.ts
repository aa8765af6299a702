// Which address and family the link socket binds, as OpenVPN 2.6 picks them from proto, local
// and bind ipv6only (socket.c), and where option errors found after parsing are reported.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { resolveLinkLocal } from '../src/main/link-local';
import { ConfigError, buildOptions, failOption, parseConfigText } from '../src/shared/config';

const options = (text: string): ReturnType<typeof buildOptions>['options'] =>
  buildOptions(parseConfigText(text, '/etc/openvpn/server.conf', { expandIncludes: false }), { cwd: '/etc/openvpn' }).options;

const bindOf = async (text: string, peer?: 4 | 6): Promise<unknown> => {
  const r = await resolveLinkLocal(options(text), peer);
  return r.ok ? r.local : r.reason;
};

test('server: plain udp and udp4 bind 0.0.0.0 (as the stock binary does), udp6 :: dual-stack unless bind ipv6only', async () => {
  assert.deepEqual(await bindOf('proto udp\n'), { family: 4, dualStack: false, address: '0.0.0.0' });
  assert.deepEqual(await bindOf('proto udp4\n'), { family: 4, dualStack: false, address: '0.0.0.0' });
  assert.deepEqual(await bindOf('proto udp6\n'), { family: 6, dualStack: true, address: '::' });
  assert.deepEqual(await bindOf('proto udp6\nbind ipv6only\n'), { family: 6, dualStack: false, address: '::' });
});

test('local picks the family: an IPv4 local with plain udp binds an IPv4 socket', async () => {
  assert.deepEqual(await bindOf('proto udp\nlocal 10.97.0.1\n'), { family: 4, dualStack: false, address: '10.97.0.1' });
  assert.deepEqual(await bindOf('proto udp\nlocal fd00::1\n'), { family: 6, dualStack: true, address: 'fd00::1' });
  assert.deepEqual(await bindOf('proto udp\nlocal localhost\n', 4), { family: 4, dualStack: false, address: '127.0.0.1' });
  assert.match(String(await bindOf('proto udp6\nlocal 10.97.0.1\n')), /local '10\.97\.0\.1' has no IPv6 address to bind/);
});

test("client: the socket takes the remote's family; local must have an address in it", async () => {
  assert.deepEqual(await bindOf('proto udp\n', 4), { family: 4, dualStack: false, address: '0.0.0.0' });
  assert.deepEqual(await bindOf('proto udp\nlocal 127.0.0.1\n', 4), { family: 4, dualStack: false, address: '127.0.0.1' });
  assert.match(String(await bindOf('proto udp\nlocal 127.0.0.1\n', 6)), /no IPv6 address to bind \(the remote is IPv6\)/);
});

test('errors found after parsing name the line of the directive, or the file for one never given', () => {
  const o = options('port 1194\nproto udp\n\ndata-ciphers AES-256-GCM\n');
  assert.throws(
    () => failOption(o, 'data-ciphers', 'no'),
    (e: unknown) => e instanceof ConfigError && e.message === '/etc/openvpn/server.conf:4: data-ciphers: no',
  );
  assert.throws(
    () => failOption(o, 'mode', 'missing'),
    (e: unknown) => e instanceof ConfigError && e.message === '/etc/openvpn/server.conf:0: mode: missing',
  );
});
