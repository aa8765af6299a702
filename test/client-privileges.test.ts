// Our client with `user nobody` / `group nogroup`, persist-key and persist-tun against a stock
// openvpn 2.6 server: it drops root once the tunnel is up (as OpenVPN does), and a SIGUSR1
// reconnect works as nobody from the keys it read as root and the device it kept.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';

import { clientConfig, serverConfig, startOurClient, startStockServer } from './helpers/client-lab';
import { VpnLab } from '../lab/vpn-lab';

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(1);
});
after(async () => {
  await lab.cleanup();
});

const uidOf = (pid: number): number => Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
const inits = (text: string): number => text.match(/Initialization Sequence Completed/g)?.length ?? 0;

test(
  'user nobody with persist-key and persist-tun: the client drops root, and reconnects as nobody after SIGUSR1',
  { timeout: 60_000 },
  async () => {
    const server = await startStockServer(lab, serverConfig(lab));
    // The key files are in the test PKI's root-only directory: nobody cannot read them again.
    const client = startOurClient(lab, 0, clientConfig(lab, { extra: 'user nobody\ngroup nogroup\npersist-key\npersist-tun\n' }));
    try {
      await client.waitFor(/Initialization Sequence Completed/, 15_000);
      assert.match(client.log(), /UID set to nobody/);
      assert.notEqual(uidOf(client.child.pid!), 0);
      assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1', 2), 2);

      process.kill(client.child.pid!, 'SIGUSR1');
      const end = Date.now() + 20_000;
      while (inits(client.log()) < 2 && !client.exited() && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
      assert.equal(inits(client.log()), 2, client.log().slice(-3000));
      assert.match(client.log(), /Preserving previous TUN\/TAP instance/);
      assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1', 2), 2);
    } finally {
      const codes = [await client.stop(), await server.stop()];
      assert.equal(codes[0], 0, client.log().slice(-2000));
    }
  },
);
