// `npm start` with no config: a ready server from an embedded configuration. On first run it
// makes a CA, a server certificate, a client certificate and a tls-crypt key in the data folder,
// and writes a client profile (inline .ovpn) that a stock OpenVPN 2.6 client can use as it is.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { buildOptions, parseConfigText, type BuildResult, type Directive } from '../shared/config';
import { formatStaticKey, generateStaticKey } from '../shared/protocol/static-key';
import { createCertificateAuthority } from './pki';

export const DEFAULT_PORT = 1194;
/** The built-in server's tunnel network (a /24) and its own address in it. */
export const DEFAULT_TUNNEL = { network: '10.89.0.0', server: '10.89.0.1' } as const;

/** The embedded server configuration; paths are relative to the data folder. */
export function defaultServerConfig(port: number): string {
  return `# shardvpn's built-in server configuration (npm start)
port ${port}
proto udp
dev tun
topology subnet
server ${DEFAULT_TUNNEL.network} 255.255.255.0
keepalive 10 60
ca ca.crt
cert server.crt
key server.key
tls-crypt tls-crypt.key
remote-cert-tls client
data-ciphers AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305
explicit-exit-notify 1
ifconfig-pool-persist ipp.txt
# Every client uses the one profile written beside this config (and \`shardvpn load\` many at once).
duplicate-cn
verb 3
`;
}

export function defaultDataDir(): string {
  return process.env.SHARDVPN_DATA ?? path.join(__dirname, '..', '..', '..', 'data');
}

/** The address clients should use: SHARDVPN_REMOTE, else this host's first public-facing IPv4. */
function remoteAddress(): string {
  if (process.env.SHARDVPN_REMOTE) return process.env.SHARDVPN_REMOTE;
  for (const addresses of Object.values(os.networkInterfaces())) {
    for (const address of addresses ?? []) if (address.family === 'IPv4' && !address.internal) return address.address;
  }
  return '127.0.0.1';
}

export interface DefaultSetup {
  dataDir: string;
  profile: string;
  created: boolean;
}

/** Creates the PKI, key and client profile unless the data folder already has them. */
export async function ensureDefaultSetup(dataDir: string, port: number): Promise<DefaultSetup> {
  const profile = path.join(dataDir, 'client.ovpn');
  const needed = ['ca.crt', 'server.crt', 'server.key', 'tls-crypt.key', 'client.ovpn'];
  if (needed.every((file) => existsSync(path.join(dataDir, file)))) return { dataDir, profile, created: false };
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const ca = await createCertificateAuthority('shardvpn CA');
  const server = await ca.sign('server', 'server');
  const client = await ca.sign('client', 'client');
  const tlsCrypt = formatStaticKey(generateStaticKey());
  const write = (file: string, text: string, mode = 0o600): void => writeFileSync(path.join(dataDir, file), text, { mode });
  write('ca.crt', ca.cert, 0o644);
  write('ca.key', ca.key);
  write('server.crt', server.cert, 0o644);
  write('server.key', server.key);
  write('tls-crypt.key', tlsCrypt);
  write(
    'client.ovpn',
    `# shardvpn client profile for a stock OpenVPN 2.6 client: openvpn --config client.ovpn
client
dev tun
proto udp
remote ${remoteAddress()} ${port}
nobind
persist-key
persist-tun
remote-cert-tls server
data-ciphers AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305
verb 3
<ca>
${ca.cert.trim()}
</ca>
<cert>
${client.cert.trim()}
</cert>
<key>
${client.key.trim()}
</key>
<tls-crypt>
${tlsCrypt.trim()}
</tls-crypt>
`,
  );
  return { dataDir, profile, created: true };
}

/** The embedded configuration as options, with command-line overrides applied after it. */
export function defaultServerOptions(dataDir: string, port: number, overrides: readonly Directive[]): BuildResult {
  const directives = [...parseConfigText(defaultServerConfig(port), path.join(dataDir, '(built-in server.conf)')), ...overrides];
  return buildOptions(directives, { cwd: dataDir });
}
