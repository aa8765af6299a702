// Compression as OpenVPN 2.6 runs it by default, against the stock openvpn binary: configs with
// comp-lzo, compress (stub, swap framing) or compress lz4-v2 on both ends, and a server that
// pushes "comp-lzo yes", pass traffic both ways in the right framing (nobody compresses: 2.6's
// allow-compression default sends uncompressed).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { assertTransferIntact } from '../lab/transfer';
import { VpnLab } from '../lab/vpn-lab';
import { clientConfig, serverConfig, startOurClient, startStockServer } from './helpers/client-lab';

const MB = 1 << 20;
let lab: VpnLab;
let port = 1320;
before(() => {
  lab = VpnLab.create(1);
});
after(async () => {
  await lab.cleanup();
});

async function exercise(): Promise<void> {
  assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1'), 3, 'client -> server');
  assert.equal(lab.ping(lab.server, '10.152.0.2'), 3, 'server -> client');
  await assertTransferIntact(lab, lab.clients[0]!, lab.server, '10.152.0.1', 2 * MB, 5600 + port);
}

for (const line of ['comp-lzo', 'compress', 'compress lz4-v2']) {
  test(`'${line}' on both ends: stock client -> shardvpn server, then shardvpn client -> stock server`, { timeout: 90_000 }, async () => {
    const p1 = port++;
    const server = await lab.startShardvpn(serverConfig(lab, { port: p1, extra: `${line}\n` }), `comp-server-${p1}.conf`);
    const client = await lab.startOpenvpnClient(0, clientConfig(lab, { remotes: [{ host: '10.150.0.1', port: p1 }], extra: `${line}\n` }));
    try {
      await exercise();
    } finally {
      await client.stop('SIGTERM', 5000);
      await server.stop('SIGTERM', 5000);
    }
    const p2 = port++;
    const stock = await startStockServer(lab, serverConfig(lab, { port: p2, extra: `${line}\n` }));
    const ours = startOurClient(lab, 0, clientConfig(lab, { remotes: [{ host: '10.150.0.1', port: p2 }], extra: `${line}\n` }));
    try {
      await ours.waitFor(/Initialization Sequence Completed/, 20_000);
      await exercise();
    } finally {
      await ours.stop('SIGTERM', 5000);
      await stock.stop('SIGTERM', 5000);
    }
  });
}

test(
  'a server pushing "comp-lzo yes": shardvpn client without compression in its config follows the push',
  { timeout: 60_000 },
  async () => {
    const p = port++;
    const stock = await startStockServer(lab, serverConfig(lab, { port: p, extra: 'comp-lzo\npush "comp-lzo yes"\n' }));
    const ours = startOurClient(lab, 0, clientConfig(lab, { remotes: [{ host: '10.150.0.1', port: p }] }));
    try {
      await ours.waitFor(/Initialization Sequence Completed/, 20_000);
      await exercise();
    } finally {
      await ours.stop('SIGTERM', 5000);
      await stock.stop('SIGTERM', 5000);
    }
  },
);
