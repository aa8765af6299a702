// tls-version-max against the stock openvpn 2.6 binary, both roles: with `tls-version-max 1.2`
// the control channel runs TLS 1.2, so the installers' TLS 1.2 `tls-cipher` names decide the
// cipher suite (with TLS 1.3 they are never used), and a DHE suite needs the server's `dh` file.
// The stock peer's own log names what was negotiated; then ping both ways through the tunnel.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { type LabProcess, VpnLab } from '../lab/vpn-lab';
import { clientConfig, serverConfig, startOurClient, startStockServer } from './helpers/client-lab';

// The lab's PKI is ECDSA P-256: angristan/openvpn-install's choice for such keys.
const TLS12 = 'tls-version-max 1.2\ntls-cipher TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256\n';
const NEGOTIATED = /Control Channel: TLSv1\.2, cipher TLSv1\.2 ECDHE-ECDSA-AES128-GCM-SHA256/;

let lab: VpnLab;
let port = 1340;
before(() => {
  lab = VpnLab.create(1);
});
after(async () => {
  await lab.cleanup();
});

/** Once the client is up: `check`, then a ping each way; both processes stopped whatever fails. */
async function upAndPinging(server: LabProcess, client: LabProcess, check: () => unknown): Promise<void> {
  try {
    await client.waitFor(/Initialization Sequence Completed/, 20_000);
    await check();
    assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1'), 3);
    assert.equal(lab.ping(lab.server, '10.152.0.2'), 3);
  } finally {
    await client.stop('SIGTERM', 5000);
    await server.stop('SIGTERM', 5000);
  }
}

test(
  'stock client -> shardvpn server with tls-version-max 1.2: TLS 1.2 with the tls-cipher suite, ping both ways',
  { timeout: 60_000 },
  async () => {
    const p = port++;
    const server = await lab.startShardvpn(serverConfig(lab, { port: p, wrap: 'tls-crypt', extra: TLS12 }), `tls12-server-${p}.conf`);
    // The client offers TLS 1.3 and any suite: what it gets is the server's choice.
    const client = await lab.startOpenvpnClient(0, clientConfig(lab, { remotes: [{ host: '10.150.0.1', port: p }], wrap: 'tls-crypt' }));
    await upAndPinging(server, client, () => assert.match(client.log(), NEGOTIATED));
  },
);

test(
  'shardvpn client with tls-version-max 1.2 -> stock server: TLS 1.2 with the tls-cipher suite, ping both ways',
  { timeout: 60_000 },
  async () => {
    const p = port++;
    const server = await startStockServer(lab, serverConfig(lab, { port: p, wrap: 'tls-crypt' }));
    const client = startOurClient(
      lab,
      0,
      clientConfig(lab, { remotes: [{ host: '10.150.0.1', port: p }], wrap: 'tls-crypt', extra: TLS12 }),
    );
    await upAndPinging(server, client, async () => {
      await server.waitFor(NEGOTIATED, 5000);
      assert.match(client.log(), /Control Channel: TLSv1\.2/);
    });
  },
);

test(
  "stock client with a Mullvad profile's DHE-only tls-cipher and tls-version-max 1.2 -> shardvpn server with dh FILE",
  { timeout: 60_000 },
  async () => {
    // DHE-RSA needs an RSA server certificate.
    const rsaLab = VpnLab.create(1, 'dh', 'rsa');
    try {
      const dh = path.join(rsaLab.dir, 'dh.pem');
      writeFileSync(
        dh,
        execFileSync('openssl', ['genpkey', '-genparam', '-algorithm', 'DH', '-pkeyopt', 'group:ffdhe2048'], { encoding: 'utf8' }),
      );
      const p = port++;
      const server = await rsaLab.startShardvpn(
        serverConfig(rsaLab, { port: p, wrap: 'tls-crypt', extra: `dh ${dh}\n` }),
        `dh-server-${p}.conf`,
      );
      const client = await rsaLab.startOpenvpnClient(
        0,
        clientConfig(rsaLab, {
          remotes: [{ host: '10.150.0.1', port: p }],
          wrap: 'tls-crypt',
          extra: 'tls-version-max 1.2\ntls-cipher TLS-DHE-RSA-WITH-AES-256-GCM-SHA384\n',
        }),
      );
      try {
        await client.waitFor(/Initialization Sequence Completed/, 20_000);
        assert.match(client.log(), /Control Channel: TLSv1\.2, cipher TLSv1\.2 DHE-RSA-AES256-GCM-SHA384/);
        assert.equal(rsaLab.ping(rsaLab.clients[0]!, '10.152.0.1'), 3);
      } finally {
        await client.stop('SIGTERM', 5000);
        await server.stop('SIGTERM', 5000);
      }
    } finally {
      await rsaLab.cleanup();
    }
  },
);
