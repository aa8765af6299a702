// The three tunnel set-ups the throughput and latency benchmarks compare, built in the lab's
// namespaces: (a) stock openvpn server + stock openvpn client, (b) shardvpn server + stock
// openvpn client, (c) shardvpn server + shardvpn client. Server tunnel address 10.161.0.1.
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { SERVER_UNDERLAY, type LabProcess, type VpnLab } from '../lab/vpn-lab';

export type SetupName = 'a' | 'b' | 'c';
export const SETUPS: readonly { name: SetupName; label: string }[] = [
  { name: 'a', label: '(a) openvpn server + openvpn client' },
  { name: 'b', label: '(b) shardvpn server + openvpn client' },
  { name: 'c', label: '(c) shardvpn server + shardvpn client' },
];
export const CIPHERS = ['AES-256-GCM', 'AES-128-GCM', 'CHACHA20-POLY1305'] as const;
/** The link a tunnel runs over: UDP, or TCP (proto tcp-server / tcp-client). */
export type Transport = 'udp' | 'tcp';
export const SERVER_TUNNEL = '10.161.0.1';

const BIN = path.join(__dirname, '..', '..', 'bin', 'shardvpn.js');

/** A set-up as a benchmark runs it: our directives for the server only, and for both of our ends (startTunnel's `ours`). */
export interface Setup {
  name: SetupName;
  label: string;
  serverExtra: string[];
  ours: string[];
}

/**
 * (b) and (c) again with `directive` on our server (`where` 'server') or on both of our ends, when
 * the environment variable `variable` is `compare`; none otherwise.
 */
export function variant(variable: string, directive: string, where: 'server' | 'both'): Setup[] {
  if (process.env[variable] !== 'compare') return [];
  return SETUPS.filter((s) => s.name !== 'a').map((s) => ({
    ...s,
    label: `${s.label}, ${directive}`,
    serverExtra: where === 'server' ? [directive] : [],
    ours: where === 'both' ? [directive] : [],
  }));
}

export interface Tunnel {
  server: LabProcess;
  client: LabProcess;
  stop(): Promise<void>;
}

function serverConfig(lab: VpnLab, cipher: string, transport: Transport, extra: readonly string[]): string {
  return [
    'port 1194',
    transport === 'tcp' ? 'proto tcp4-server' : 'proto udp4',
    'dev tun',
    'topology subnet',
    'server 10.161.0.0 255.255.255.0',
    'keepalive 10 60',
    'dh none',
    `data-ciphers ${cipher}`,
    `tls-crypt ${lab.keys.tlsCrypt}`,
    lab.serverTlsLines().trim(),
    'verb 1',
    ...extra,
  ].join('\n');
}

function clientConfig(lab: VpnLab, cipher: string, transport: Transport, extra: readonly string[]): string {
  return `client\ndev tun\nproto ${transport === 'tcp' ? 'tcp4-client' : 'udp4'}\nremote ${SERVER_UNDERLAY} 1194\nnobind\n${lab.clientTlsLines()}tls-crypt ${lab.keys.tlsCrypt}\ndata-ciphers ${cipher}\nverb 3\n${extra.map((line) => `${line}\n`).join('')}`;
}

/** The server's config file of set-up `name` (a benchmark may edit it and send SIGHUP). */
export const serverConfigName = (name: SetupName): string => `bench-server-${name}.conf`;

/**
 * Starts set-up `name` with `cipher` (and `serverExtra` config lines) and waits until the client's
 * tunnel is up. `offload` false writes `udp-offload no` into the shardvpn ends' configs.
 */
export async function startTunnel(
  lab: VpnLab,
  name: SetupName,
  cipher: string,
  transport: Transport = 'udp',
  serverExtra: readonly string[] = [],
  /** shardvpn's own directives for both of our ends (server in (b) and (c), client in (c)), e.g. `udp-offload no`. */
  ours: readonly string[] = [],
): Promise<Tunnel> {
  if (name !== 'a') serverExtra = [...serverExtra, ...ours];
  const serverFile = lab.file(serverConfigName(name), serverConfig(lab, cipher, transport, serverExtra));
  const server =
    name === 'a'
      ? lab.spawn(lab.server, 'openvpn', ['--config', serverFile, '--verb', '3'], 'openvpn server')
      : lab.spawn(lab.server, process.execPath, [BIN, '--config', serverFile], 'shardvpn server');
  await server.waitFor(/Initialization Sequence Completed/, 20_000);
  const clientFile = lab.file(`bench-client-${name}.conf`, clientConfig(lab, cipher, transport, name === 'c' ? ours : []));
  const client =
    name === 'c'
      ? lab.spawn(lab.clients[0]!, process.execPath, [BIN, '--config', clientFile], 'shardvpn client')
      : lab.spawn(lab.clients[0]!, 'openvpn', ['--config', clientFile], 'openvpn client');
  await client.waitFor(/Initialization Sequence Completed/, 20_000);
  return {
    server,
    client,
    async stop() {
      await client.stop('SIGTERM', 5000);
      await server.stop('SIGTERM', 5000);
    },
  };
}

const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system, all threads) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

export function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : NaN;
}
