// `user` / `group`: the server drops root once the TUN device and the sockets are open, and the
// tunnel keeps working as nobody.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';

import { SERVER_UNDERLAY, VpnLab } from '../lab/vpn-lab';

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(1);
});
after(async () => {
  await lab.cleanup();
});

function ids(pid: number): { uid: number; gid: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return { uid: Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]), gid: Number(/^Gid:\s+(\d+)/m.exec(status)?.[1]) };
}

test('user nobody / group nogroup: privileges dropped after start, clients still served', async () => {
  const server = await lab.startShardvpn(
    `port 1194\nproto udp\ndev tun\ntopology subnet\nserver 10.151.0.0 255.255.255.0\nkeepalive 10 60\npersist-tun\nuser nobody\ngroup nogroup\n${lab.serverTlsLines()}tls-crypt ${lab.keys.tlsCrypt}\nverb 3\n`,
  );
  const client = await lab.startOpenvpnClient(0, `client\ndev tun\nproto udp\nremote ${SERVER_UNDERLAY} 1194\nnobind\n${lab.clientTlsLines()}tls-crypt ${lab.keys.tlsCrypt}\nverb 3\n`);
  try {
    assert.match(server.log(), /UID set to nobody/);
    const { uid, gid } = ids(server.child.pid!);
    assert.notEqual(uid, 0, 'the server no longer runs as root');
    assert.notEqual(gid, 0);
    assert.equal(lab.ping(lab.clients[0]!, '10.151.0.1'), 3);
    assert.equal(lab.ping(lab.server, '10.151.0.2'), 3);
  } finally {
    await client.stop();
    assert.equal(await server.stop(), 0, server.log().slice(-2000));
  }
});
