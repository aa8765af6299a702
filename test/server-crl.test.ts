// crl-verify on a live shardvpn server with stock openvpn 2.6 clients: revoking a client the way
// easyrsa-based installers do (a new crl.pem copied over the old one, no restart) refuses its
// next connection, while other clients still connect.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { SERVER_UNDERLAY, VpnLab } from '../lab/vpn-lab';

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(2);
});
after(async () => {
  await lab.cleanup();
});

test('a crl.pem replaced while the server runs revokes the client at its next connection', async () => {
  const crl = lab.file('crl.pem', lab.pki.emptyCrl);
  const server = await lab.startShardvpn(
    `port 1194\nproto udp\ndev tun\ntopology subnet\nserver 10.157.0.0 255.255.255.0\nkeepalive 10 60\nworkers 2\n${lab.serverTlsLines()}crl-verify ${crl}\nverb 3\n`,
  );
  const base = `client\ndev tun\nproto udp\nremote ${SERVER_UNDERLAY} 1194\nnobind\nca ${lab.pki.files.ca}\nremote-cert-tls server\nverb 3\n`;
  const revokedConfig = `${base}cert ${lab.file('revoked.crt', lab.pki.revokedClientCert)}\nkey ${lab.file('revoked.key', lab.pki.revokedClientKey)}\n`;
  try {
    // Not revoked yet: it connects and its tunnel works.
    let victim = await lab.startOpenvpnClient(1, revokedConfig);
    assert.equal(lab.ping(lab.clients[1]!, '10.157.0.1'), 3);
    await victim.stop();

    lab.file('crl.pem', lab.pki.crl);
    victim = await lab.startOpenvpnClient(1, revokedConfig, null);
    try {
      await server.waitFor(/10\.150\.0\.11:\d+ cert-rejected: VERIFY ERROR: certificate revoked/, 15_000);
    } finally {
      await victim.stop();
    }

    const kept = await lab.startOpenvpnClient(0, `${base}cert ${lab.pki.files.clientCert}\nkey ${lab.pki.files.clientKey}\n`);
    try {
      assert.equal(lab.ping(lab.clients[0]!, '10.157.0.1'), 3);
    } finally {
      await kept.stop();
    }
  } finally {
    assert.equal(await server.stop(), 0, server.log().slice(-2000));
  }
});
