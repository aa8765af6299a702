// OpenVPN 2.6's --dns options on a client: a stock 2.6 server pushes dns servers (with priorities,
// ports, resolve-domains, dnssec) and search domains beside an old dhcp-option DNS, and the client's
// own config has one more server. The stock client and shardvpn's client, each with the same
// recording up script under the same server, must hand the script the same dns_* variables and the
// same foreign_option_N lines (2.6 turns --dns into dhcp-option DNS/DNS6/DOMAIN-SEARCH for
// scripts such as update-resolv-conf, dropping the dhcp-option lines they supersede).
import assert from 'node:assert/strict';
import { chmodSync, readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';

import { clientConfig, parseEnv, serverConfig, startOurClient, startStockServer } from './helpers/client-lab';
import { VpnLab } from '../lab/vpn-lab';

let lab: VpnLab;
before(() => {
  lab = VpnLab.create(1);
});
after(async () => {
  await lab.cleanup();
});

const PUSHED = [
  'dhcp-option DNS 10.152.0.1',
  'dhcp-option DOMAIN corp.example',
  'dhcp-option DOMAIN-SEARCH old.example',
  'dns server 1 address 10.152.0.53 [fd00::53]:5353',
  'dns server 1 resolve-domains corp.example',
  'dns server 0 address 10.152.0.54:53',
  'dns server 0 dnssec yes',
  'dns search-domains corp.example lab.example',
]
  .map((line) => `push "${line}"\n`)
  .join('');

/** The up script's dns_* and foreign_option_* variables. */
function dnsVariables(file: string): Map<string, string> {
  const env = parseEnv(readFileSync(file, 'utf8'));
  return new Map([...env].filter(([name]) => /^(dns_|foreign_option_)/.test(name)).sort(([a], [b]) => a.localeCompare(b)));
}

test('pushed and configured --dns options reach the up script as the stock client passes them', { timeout: 60_000 }, async () => {
  const server = await startStockServer(lab, serverConfig(lab, { extra: PUSHED }));
  const seen: Map<string, string>[] = [];
  try {
    for (const ours of [false, true]) {
      const out = `${lab.dir}/dns-env-${ours ? 'ours' : 'stock'}`;
      const script = lab.file(`dns-env-${ours ? 'ours' : 'stock'}.sh`, `#!/bin/sh\nenv > "${out}"\n`);
      chmodSync(script, 0o755);
      const config = clientConfig(lab, { extra: `script-security 2\nup ${script}\ndns server 5 address 9.9.9.9\n` });
      const client = ours ? startOurClient(lab, 0, config) : await lab.startOpenvpnClient(0, config, null);
      try {
        await client.waitFor(/Initialization Sequence Completed/, 15_000);
        seen.push(dnsVariables(out));
      } finally {
        await client.stop('SIGTERM', 5000);
      }
    }
  } finally {
    await server.stop('SIGTERM', 5000);
  }
  const [stock, ours] = seen as [Map<string, string>, Map<string, string>];
  // The stock client's own view, so a change on either side shows.
  assert.equal(stock.get('dns_server_1_address_1'), '10.152.0.54');
  assert.equal(stock.get('dns_server_2_address_2'), 'fd00::53');
  assert.equal(stock.get('dns_server_3_address_1'), '9.9.9.9');
  assert.deepEqual(ours, stock);
});
