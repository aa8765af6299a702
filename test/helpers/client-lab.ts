// Client-mode tests on top of VpnLab: stock openvpn 2.6 servers in the server namespace and
// shardvpn clients (node bin/shardvpn.js --config client.ovpn) in client namespaces.

import { BIN, SERVER_UNDERLAY, type LabProcess, type VpnLab } from '../../lab/vpn-lab';

export { BIN };

export type Wrap = 'tls-crypt' | 'tls-auth' | 'tls-crypt-v2' | 'none';

export function wrapLines(lab: VpnLab, wrap: Wrap, role: 'server' | 'client'): string {
  switch (wrap) {
    case 'tls-crypt':
      return `tls-crypt ${lab.keys.tlsCrypt}\n`;
    case 'tls-auth':
      return `tls-auth ${lab.keys.tlsAuth} ${role === 'server' ? 0 : 1}\n`;
    case 'tls-crypt-v2':
      return `tls-crypt-v2 ${role === 'server' ? lab.keys.tlsCryptV2Server : lab.keys.tlsCryptV2Client}\n`;
    case 'none':
      return '';
  }
}

export interface ServerShape {
  port?: number;
  /** The tunnel network's first three octets, e.g. '10.152.0'. */
  net?: string;
  wrap?: Wrap;
  extra?: string;
}

/** A stock openvpn 2.6 server config (also what shardvpn's server runs). */
export function serverConfig(lab: VpnLab, shape: ServerShape = {}): string {
  const net = shape.net ?? '10.152.0';
  return (
    `port ${shape.port ?? 1194}\nproto udp\ndev tun\ntopology subnet\nserver ${net}.0 255.255.255.0\n` +
    `keepalive 2 10\n${lab.serverTlsLines()}dh none\n${wrapLines(lab, shape.wrap ?? 'tls-crypt', 'server')}` +
    `push "route 10.160.0.0 255.255.255.0"\nverb 3\n${shape.extra ?? ''}`
  );
}

export interface ClientShape {
  remotes?: { host: string; port: number }[];
  wrap?: Wrap;
  extra?: string;
}

export function clientConfig(lab: VpnLab, shape: ClientShape = {}): string {
  const remotes = shape.remotes ?? [{ host: SERVER_UNDERLAY, port: 1194 }];
  return (
    `client\ndev tun\nproto udp\n${remotes.map((r) => `remote ${r.host} ${r.port}`).join('\n')}\nnobind\n` +
    `${lab.clientTlsLines()}${wrapLines(lab, shape.wrap ?? 'tls-crypt', 'client')}connect-retry 1\nverb 3\n${shape.extra ?? ''}`
  );
}

let serial = 0;

/** Starts a stock openvpn server in the server namespace; waits for it to serve unless told not to. */
export async function startStockServer(lab: VpnLab, config: string, wait = true): Promise<LabProcess> {
  const file = lab.file(`stock-server-${serial++}.conf`, config);
  const proc = lab.spawn(lab.server, 'openvpn', ['--config', file], 'openvpn server');
  if (wait) await proc.waitFor(/Initialization Sequence Completed/, 15_000);
  return proc;
}

/** Starts shardvpn as a client in client namespace `i` (config written to `file` when given). */
export function startOurClient(lab: VpnLab, i: number, config: string, file = `our-client-${serial++}.conf`): LabProcess {
  const path_ = lab.file(file, config);
  return lab.spawn(lab.clients[i]!, process.execPath, [BIN, '--config', path_], `shardvpn client ${i}`);
}

/** `ip route show` in a namespace. */
export function routes(lab: VpnLab, i: number): string {
  return lab.clients[i]!.ip(['route', 'show']);
}

export function links(lab: VpnLab, i: number): string {
  return lab.clients[i]!.ip(['-o', 'link', 'show']);
}

/** Counts matches of `pattern` in `text`. */
export function count(text: string, pattern: RegExp): number {
  return (text.match(new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`)) ?? []).length;
}

/** Waits until `pattern` occurs `n` times in the process log. */
export async function waitCount(proc: { log(): string }, pattern: RegExp, n: number, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (count(proc.log(), pattern) < n) {
    if (Date.now() > end) throw new Error(`fewer than ${n} of ${pattern} within ${timeoutMs} ms:\n${proc.log().slice(-3000)}`);
    await sleep(100);
  }
}

/** A script's `env` dump (NAME=value lines) as a map. */
export function parseEnv(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) m.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return m;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The process's exit code once it has exited by itself (listens first, so an exit already past counts). */
export function exitCode(proc: LabProcess): Promise<number | null> {
  return new Promise((resolve) => (proc.exited() ? resolve(proc.child.exitCode) : proc.child.once('exit', (code) => resolve(code))));
}
