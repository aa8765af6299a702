// The CBC + HMAC data channel against the stock openvpn 2.6 binary, both roles: each AES-CBC
// cipher negotiated by NCP with an `auth` digest, ping both ways and a checksummed transfer.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { assertTransferIntact } from '../lab/transfer';
import { VpnLab } from '../lab/vpn-lab';
import { clientConfig, serverConfig, startOurClient, startStockServer } from './helpers/client-lab';

const MB = 1 << 20;
const CASES = [
  { cipher: 'AES-128-CBC', auth: 'SHA256', wrap: 'tls-crypt' },
  { cipher: 'AES-192-CBC', auth: 'SHA1', wrap: 'tls-auth' },
  { cipher: 'AES-256-CBC', auth: 'SHA512', wrap: 'none' },
] as const;

let lab: VpnLab;
let port = 1300;
before(() => {
  lab = VpnLab.create(1);
});
after(async () => {
  await lab.cleanup();
});

for (const c of CASES) {
  const extra = `data-ciphers ${c.cipher}\nauth ${c.auth}\n`;

  test(`stock client -> shardvpn server, ${c.cipher} / ${c.auth} (${c.wrap}): ping both ways, 5 MB`, { timeout: 60_000 }, async () => {
    const p = port++;
    const server = await lab.startShardvpn(serverConfig(lab, { port: p, wrap: c.wrap, extra }), `cbc-server-${p}.conf`);
    const client = await lab.startOpenvpnClient(0, clientConfig(lab, { remotes: [{ host: '10.150.0.1', port: p }], wrap: c.wrap, extra }));
    try {
      await server.waitFor(new RegExp(`MULTI: primary virtual IP: .*, ${c.cipher}\\)`), 5000);
      assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1'), 3);
      assert.equal(lab.ping(lab.server, '10.152.0.2'), 3);
      await assertTransferIntact(lab, lab.clients[0]!, lab.server, '10.152.0.1', 5 * MB, 5400 + p);
    } finally {
      await client.stop('SIGTERM', 5000);
      await server.stop('SIGTERM', 5000);
    }
  });

  test(`shardvpn client -> stock server, ${c.cipher} / ${c.auth} (${c.wrap}): ping both ways, 5 MB`, { timeout: 60_000 }, async () => {
    const p = port++;
    const server = await startStockServer(lab, serverConfig(lab, { port: p, wrap: c.wrap, extra }));
    const client = startOurClient(lab, 0, clientConfig(lab, { remotes: [{ host: '10.150.0.1', port: p }], wrap: c.wrap, extra }));
    try {
      await client.waitFor(/Initialization Sequence Completed/, 20_000);
      assert.match(client.log(), new RegExp(`Data Channel: cipher '${c.cipher}'`));
      await server.waitFor(new RegExp(`Data Channel: cipher '${c.cipher}', auth '${c.auth}'`), 5000);
      assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1'), 3);
      assert.equal(lab.ping(lab.server, '10.152.0.2'), 3);
      await assertTransferIntact(lab, lab.clients[0]!, lab.server, '10.152.0.1', 5 * MB, 5400 + p);
    } finally {
      await client.stop('SIGTERM', 5000);
      await server.stop('SIGTERM', 5000);
    }
  });
}
