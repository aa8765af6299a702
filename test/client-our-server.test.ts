// shardvpn client against shardvpn server (node bin/shardvpn.js --config server.conf in the
// server namespace): ping both ways and 50 MB with matching checksums, for each data cipher.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { clientConfig, routes, serverConfig, startOurClient, type Wrap } from './helpers/client-lab';
import { assertTransferIntact } from '../lab/transfer';
import { VpnLab } from '../lab/vpn-lab';

const MB = 1 << 20;
const CASES: { cipher: string; wrap: Wrap }[] = [
  { cipher: 'AES-256-GCM', wrap: 'tls-crypt-v2' },
  { cipher: 'CHACHA20-POLY1305', wrap: 'tls-auth' },
];

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(1);
});
after(async () => {
  await lab.cleanup();
});

for (const { cipher, wrap } of CASES) {
  test(`our client, our server, ${cipher} with ${wrap}: ping both ways and a 50 MB transfer`, { timeout: 60_000 }, async () => {
    const server = await lab.startShardvpn(serverConfig(lab, { net: '10.151.0', wrap, extra: `workers 2\ndata-ciphers ${cipher}\n` }));
    const client = startOurClient(lab, 0, clientConfig(lab, { wrap }));
    let codes: (number | null)[];
    try {
      await client.waitFor(/Initialization Sequence Completed/, 15_000);
      assert.match(client.log(), new RegExp(`Data Channel: cipher '${cipher}', peer-id: \\d+`));
      assert.match(routes(lab, 0), /10\.160\.0\.0\/24 via 10\.151\.0\.1 dev tun\d+/);
      assert.equal(lab.ping(lab.clients[0]!, '10.151.0.1'), 3, 'client -> server');
      assert.equal(lab.ping(lab.server, '10.151.0.2'), 3, 'server -> client');
      await assertTransferIntact(lab, lab.clients[0]!, lab.server, '10.151.0.1', 50 * MB);
    } finally {
      // Both always stopped, codes checked after: a throw here would leave the server on its port.
      codes = [await client.stop(), await server.stop()];
    }
    assert.deepEqual(codes, [0, 0], `client:\n${client.log().slice(-2000)}\nserver:\n${server.log().slice(-2000)}`);
  });
}
