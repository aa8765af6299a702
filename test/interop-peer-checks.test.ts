// A server's checks of its clients' certificates against the stock openvpn 2.6 binary, stock and
// ours under the same server.conf, each serving a stock client: x509-username-field names the
// client by its certificate's emailAddress instead of its CN (and a certificate without one is
// refused); remote-cert-ku lets in a certificate whose key usage has one of the listed values'
// bits and refuses one whose has none.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, test } from 'node:test';

import { issueClientCert } from '../lab/test-pki';
import { type LabProcess, VpnLab } from '../lab/vpn-lab';
import { clientConfig, serverConfig, startOurClient, startStockServer } from './helpers/client-lab';

let lab: VpnLab;
let port = 1370;
let mailUser: { cert: string; key: string };
before(() => {
  lab = VpnLab.create(1);
  mailUser = issueClientCert(lab.pki, 'mail-user', { subject: '/CN=mail-user/emailAddress=alice@example.org' });
});
after(async () => {
  await lab.cleanup();
});

const SERVER_EXTRA = 'x509-username-field emailAddress\n';

function client(p: number, cert: { cert: string; key: string } | null): string {
  return clientConfig(lab, {
    remotes: [{ host: '10.150.0.1', port: p }],
    extra: cert === null ? '' : `cert ${cert.cert}\nkey ${cert.key}\n`,
  });
}

async function servedAs(start: (p: number) => Promise<LabProcess>): Promise<void> {
  const p = port++;
  const server = await start(p);
  try {
    const named = await lab.startOpenvpnClient(0, client(p, mailUser));
    try {
      await server.waitFor(/alice@example\.org\/10\.150\.0\.\d+:\d+ MULTI: primary virtual IP/, 10_000);
      assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1'), 3);
    } finally {
      await named.stop('SIGTERM', 5000);
    }
    // The lab's own client certificate has no emailAddress.
    const unnamed = await lab.startOpenvpnClient(0, client(p, null), null);
    try {
      await server.waitFor(/could not extract emailAddress from X509 subject string/, 15_000);
      assert.doesNotMatch(unnamed.log(), /Initialization Sequence Completed/);
    } finally {
      await unnamed.stop('SIGTERM', 5000);
    }
  } finally {
    await server.stop('SIGTERM', 5000);
  }
}

test(
  'x509-username-field emailAddress: the stock server names the client by its email, and refuses one without',
  { timeout: 60_000 },
  async () => {
    await servedAs((p) => startStockServer(lab, serverConfig(lab, { port: p, extra: SERVER_EXTRA })));
  },
);

test('x509-username-field emailAddress: shardvpn names the client by its email, and refuses one without', { timeout: 60_000 }, async () => {
  await servedAs((p) => lab.startShardvpn(serverConfig(lab, { port: p, extra: SERVER_EXTRA }), `x509-username-${p}.conf`));
});

/** A stock client against `start`'s server with `remote-cert-ku` as given: connects or is refused for its key usage. */
async function keyUsage(start: (p: number, extra: string) => Promise<LabProcess>): Promise<void> {
  // The lab's client certificate: digitalSignature and keyAgreement (0088).
  for (const [values, admitted] of [
    ['80 a0', true],
    ['a0', false],
  ] as const) {
    const p = port++;
    const server = await start(p, `remote-cert-ku ${values}\n`);
    try {
      const peer = await lab.startOpenvpnClient(0, client(p, null), admitted ? /Initialization Sequence Completed/ : null);
      try {
        if (admitted) assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1'), 3);
        else await server.waitFor(/key usage\s+0088, expected one of/, 15_000);
      } finally {
        await peer.stop('SIGTERM', 5000);
      }
    } finally {
      await server.stop('SIGTERM', 5000);
    }
  }
}

test('remote-cert-ku: the stock server admits 80 a0 and refuses a0 for a 0088 certificate', { timeout: 90_000 }, async () => {
  await keyUsage((p, extra) => startStockServer(lab, serverConfig(lab, { port: p, extra })));
});

test('remote-cert-ku: shardvpn admits 80 a0 and refuses a0 for a 0088 certificate', { timeout: 90_000 }, async () => {
  await keyUsage((p, extra) => lab.startShardvpn(serverConfig(lab, { port: p, extra }), `remote-cert-ku-${p}.conf`));
});

/**
 * ns-cert-type client on `start`'s server (deprecated in OpenVPN, still honoured by 2.6): a stock
 * client with the lab's client certificate gets in; one that shows the server's certificate is
 * refused. The server trusts both certificates by fingerprint alone (peer-fingerprint, no `ca`),
 * so no chain check looks at their purpose first: ns-cert-type is what refuses.
 */
async function nsCertTypeServer(start: (p: number, config: string) => Promise<LabProcess>): Promise<void> {
  const p = port++;
  const fingerprints = [lab.pki.clientCert, lab.pki.serverCert].map((pem) => new X509Certificate(pem).fingerprint256);
  const config = serverConfig(lab, {
    port: p,
    extra: `ns-cert-type client\n<peer-fingerprint>\n${fingerprints.join('\n')}\n</peer-fingerprint>\n`,
  }).replace(`ca ${lab.pki.files.ca}\n`, '');
  const server = await start(p, config);
  try {
    const good = await lab.startOpenvpnClient(0, client(p, null));
    try {
      assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1'), 3);
    } finally {
      await good.stop('SIGTERM', 5000);
    }
    const wrong = await lab.startOpenvpnClient(0, client(p, { cert: lab.pki.files.serverCert, key: lab.pki.files.serverKey }), null);
    try {
      await server.waitFor(/VERIFY nsCertType ERROR: .*CN=server.*, require nsCertType=CLIENT/, 15_000);
      assert.doesNotMatch(wrong.log(), /Initialization Sequence Completed/);
    } finally {
      await wrong.stop('SIGTERM', 5000);
    }
  } finally {
    await server.stop('SIGTERM', 5000);
  }
}

test('ns-cert-type client: the stock server admits a client certificate and refuses a server one', { timeout: 90_000 }, async () => {
  await nsCertTypeServer((_p, config) => startStockServer(lab, config));
});

test('ns-cert-type client: shardvpn admits a client certificate and refuses a server one', { timeout: 90_000 }, async () => {
  await nsCertTypeServer((p, config) => lab.startShardvpn(config, `ns-cert-type-${p}.conf`));
});

test(
  'ns-cert-type server: the shardvpn client takes an old profile; with peer-fingerprint (no chain check) it refuses a client certificate, as the stock client',
  { timeout: 90_000 },
  async () => {
    // An old profile: ns-cert-type server instead of remote-cert-tls server.
    const oldProfile = (p: number): string => client(p, null).replace('remote-cert-tls server\n', 'ns-cert-type server\n');
    const good = port++;
    const server = await startStockServer(lab, serverConfig(lab, { port: good }));
    try {
      const ours = startOurClient(lab, 0, oldProfile(good));
      try {
        await ours.waitFor(/Initialization Sequence Completed/, 15_000);
        assert.match(ours.log(), /ns-cert-type is deprecated/);
        assert.equal(lab.ping(lab.clients[0]!, '10.152.0.1'), 3);
      } finally {
        await ours.stop('SIGTERM', 5000);
      }
    } finally {
      await server.stop('SIGTERM', 5000);
    }
    // A server that shows a client certificate, trusted by its fingerprint alone: no chain check
    // looks at its purpose, so ns-cert-type is what refuses it.
    const bad = port++;
    const impostor = await startStockServer(
      lab,
      serverConfig(lab, { port: bad }).replace(
        `cert ${lab.pki.files.serverCert}\nkey ${lab.pki.files.serverKey}\n`,
        `cert ${lab.pki.files.clientCert}\nkey ${lab.pki.files.clientKey}\n`,
      ),
    );
    const pinned = oldProfile(bad)
      .replace(`ca ${lab.pki.files.ca}\n`, '')
      .concat(`peer-fingerprint ${new X509Certificate(lab.pki.clientCert).fingerprint256}\n`);
    try {
      for (const start of [() => lab.startOpenvpnClient(0, pinned, null), () => Promise.resolve(startOurClient(lab, 0, pinned))]) {
        const peer = await start();
        try {
          await peer.waitFor(/VERIFY nsCertType ERROR: .*CN=client.*, require nsCertType=SERVER/, 15_000);
          assert.doesNotMatch(peer.log(), /Initialization Sequence Completed/);
        } finally {
          await peer.stop('SIGTERM', 5000);
        }
      }
    } finally {
      await impostor.stop('SIGTERM', 5000);
    }
  },
);

test(
  'verify-hash (deprecated, still honoured): the CA above the server certificate must have the hash; shardvpn client as the stock client',
  { timeout: 90_000 },
  async () => {
    const p = port++;
    const server = await startStockServer(lab, serverConfig(lab, { port: p }));
    const ca = new X509Certificate(lab.pki.caCert);
    const other = new X509Certificate(lab.pki.otherCaCert);
    try {
      // SHA1 by default, SHA256 when named; both name the lab's CA.
      for (const line of [`verify-hash ${ca.fingerprint}`, `verify-hash ${ca.fingerprint256} SHA256`]) {
        const ours = startOurClient(lab, 0, client(p, null).concat(`${line}\n`));
        try {
          await ours.waitFor(/Initialization Sequence Completed/, 15_000);
          assert.match(ours.log(), /verify-hash is deprecated/);
        } finally {
          await ours.stop('SIGTERM', 5000);
        }
      }
      // Another CA's hash: both clients refuse the server with OpenVPN's message.
      const wrong = client(p, null).concat(`verify-hash ${other.fingerprint}\n`);
      for (const start of [() => lab.startOpenvpnClient(0, wrong, null), () => Promise.resolve(startOurClient(lab, 0, wrong))]) {
        const peer = await start();
        try {
          await peer.waitFor(
            new RegExp(`certificate hash verification failed\\. \\(got certificate fingerprint: ${ca.fingerprint.toLowerCase()}\\)`),
            15_000,
          );
          assert.doesNotMatch(peer.log(), /Initialization Sequence Completed/);
        } finally {
          await peer.stop('SIGTERM', 5000);
        }
      }
    } finally {
      await server.stop('SIGTERM', 5000);
    }
  },
);
