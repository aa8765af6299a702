// A stock openvpn 2.6 client against a shardvpn server, for each data cipher and each control
// channel wrap: it connects, ping works both ways, and 50 MB over TCP arrive intact.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { transfer } from '../lab/transfer';
import { SERVER_UNDERLAY, VpnLab } from '../lab/vpn-lab';

const CIPHERS = ['AES-256-GCM', 'AES-128-GCM', 'CHACHA20-POLY1305'] as const;
const WRAPS = ['tls-crypt', 'tls-auth', 'tls-crypt-v2'] as const;
const MB = 1 << 20;

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(1);
});
after(async () => {
  await lab.cleanup();
});

function wrapLines(wrap: (typeof WRAPS)[number], role: 'server' | 'client'): string {
  switch (wrap) {
    case 'tls-crypt':
      return `tls-crypt ${lab.keys.tlsCrypt}\n`;
    case 'tls-auth':
      return `tls-auth ${lab.keys.tlsAuth} ${role === 'server' ? 0 : 1}\n`;
    case 'tls-crypt-v2':
      return `tls-crypt-v2 ${role === 'server' ? lab.keys.tlsCryptV2Server : lab.keys.tlsCryptV2Client}\n`;
  }
}

for (const wrap of WRAPS) {
  for (const cipher of CIPHERS) {
    test(`stock client, ${cipher} with ${wrap}: ping both ways and a 50 MB transfer`, async () => {
      const server = await lab.startShardvpn(
        `port 1194\nproto udp\ndev tun\ntopology subnet\nserver 10.151.0.0 255.255.255.0\nkeepalive 10 60\nworkers 2\n${lab.serverTlsLines()}${wrapLines(wrap, 'server')}verb 3\n`,
      );
      const client = await lab.startOpenvpnClient(
        0,
        `client\ndev tun\nproto udp\nremote ${SERVER_UNDERLAY} 1194\nnobind\n${lab.clientTlsLines()}${wrapLines(wrap, 'client')}data-ciphers ${cipher}\nverb 3\n`,
      );
      try {
        await client.waitFor(new RegExp(`Data Channel: cipher '${cipher}'`), 5000);
        assert.equal(lab.ping(lab.clients[0]!, '10.151.0.1'), 3, 'client -> server');
        assert.equal(lab.ping(lab.server, '10.151.0.2'), 3, 'server -> client');
        const result = await transfer(lab, lab.clients[0]!, lab.server, '10.151.0.1', 50 * MB);
        assert.equal(result.received.bytes, 50 * MB);
        assert.equal(result.received.sha256, result.sent.sha256);
      } finally {
        await client.stop();
        assert.equal(await server.stop(), 0, server.log().slice(-2000));
      }
    });
  }
}
