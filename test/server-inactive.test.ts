// --inactive on a live shardvpn server: a client whose tunnel carries traffic stays, and is
// dropped once the tunnel has been idle for the given time; keepalive pings do not count.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { SERVER_UNDERLAY, VpnLab } from '../lab/vpn-lab';

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(1);
});
after(async () => {
  await lab.cleanup();
});

test('inactive 3: a busy client stays, the same client idle for 3 s is dropped', { timeout: 40_000 }, async () => {
  const server = await lab.startShardvpn(
    `port 1194\nproto udp\ndev tun\ntopology subnet\nserver 10.164.0.0 255.255.255.0\nkeepalive 1 10\ninactive 3\nworkers 2\n${lab.serverTlsLines()}tls-crypt ${lab.keys.tlsCrypt}\nverb 3\n`,
  );
  const client = await lab.startOpenvpnClient(
    0,
    `client\ndev tun\nproto udp\nremote ${SERVER_UNDERLAY} 1194\nnobind\n${lab.clientTlsLines()}tls-crypt ${lab.keys.tlsCrypt}\nverb 3\n`,
  );
  try {
    // 25 pings over 5 s: longer than the timeout, but the tunnel is busy throughout.
    assert.equal(lab.ping(lab.clients[0]!, '10.164.0.1', 25), 25);
    assert.doesNotMatch(server.log(), /disconnected: inactivity timeout/);
    await server.waitFor(/client\/10\.150\.0\.10:\d+ disconnected: inactivity timeout \(--inactive\)/, 10_000);
  } finally {
    await client.stop();
    assert.equal(await server.stop(), 0, server.log().slice(-2000));
  }
});

test('session-timeout 6: a client is dropped 6 s after its session began, busy or not', { timeout: 40_000 }, async () => {
  const server = await lab.startShardvpn(
    `port 1194\nproto udp\ndev tun\ntopology subnet\nserver 10.164.0.0 255.255.255.0\nkeepalive 1 10\nsession-timeout 6\nworkers 2\n${lab.serverTlsLines()}tls-crypt ${lab.keys.tlsCrypt}\nverb 3\n`,
  );
  const client = await lab.startOpenvpnClient(
    0,
    `client\ndev tun\nproto udp\nremote ${SERVER_UNDERLAY} 1194\nnobind\n${lab.clientTlsLines()}tls-crypt ${lab.keys.tlsCrypt}\nverb 3\n`,
  );
  try {
    // The tunnel carries traffic for 2 s (unlike --inactive, that does not keep the session).
    assert.equal(lab.ping(lab.clients[0]!, '10.164.0.1', 10), 10);
    await server.waitFor(/client\/10\.150\.0\.10:\d+ disconnected: session timeout \(--session-timeout\)/, 10_000);
    assert.doesNotMatch(server.log(), /inactivity timeout/);
  } finally {
    await client.stop();
    assert.equal(await server.stop(), 0, server.log().slice(-2000));
  }
});
