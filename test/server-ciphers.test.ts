// A stock openvpn 2.6 client against a shardvpn server, for each data cipher and each control
// channel wrap: it connects, ping works both ways, and 50 MB over TCP arrive intact.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { wrapLines } from './helpers/client-lab';
import { assertTransferIntact } from '../lab/transfer';
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

for (const wrap of WRAPS) {
  for (const cipher of CIPHERS) {
    test(`stock client, ${cipher} with ${wrap}: ping both ways and a 50 MB transfer`, async () => {
      const server = await lab.startShardvpn(
        `port 1194\nproto udp\ndev tun\ntopology subnet\nserver 10.151.0.0 255.255.255.0\nkeepalive 10 60\nworkers 2\n${lab.serverTlsLines()}${wrapLines(lab, wrap, 'server')}verb 3\n`,
      );
      const client = await lab.startOpenvpnClient(
        0,
        `client\ndev tun\nproto udp\nremote ${SERVER_UNDERLAY} 1194\nnobind\n${lab.clientTlsLines()}${wrapLines(lab, wrap, 'client')}data-ciphers ${cipher}\nverb 3\n`,
      );
      try {
        await client.waitFor(new RegExp(`Data Channel: cipher '${cipher}'`), 5000);
        assert.equal(lab.ping(lab.clients[0]!, '10.151.0.1'), 3, 'client -> server');
        assert.equal(lab.ping(lab.server, '10.151.0.2'), 3, 'server -> client');
        await assertTransferIntact(lab, lab.clients[0]!, lab.server, '10.151.0.1', 50 * MB);
      } finally {
        await client.stop();
        assert.equal(await server.stop(), 0, server.log().slice(-2000));
      }
    });
  }
}
