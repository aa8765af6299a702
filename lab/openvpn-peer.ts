// A stock openvpn 2.6 peer on 127.0.0.1 for the interop tests that drive our sessions over a
// plain UDP socket: the process and its log, its command line (client, or p2mp server on a tun
// device it never configures), and the control-channel wrap keys, made by openvpn itself.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as dgram from 'node:dgram';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { parseStaticKey, parseTlsCryptV2ClientKey, parseTlsCryptV2ServerKey } from '../src/shared/protocol/static-key';
import type { WrapConfig } from '../src/shared/session/control-wrap';
import type { TestPki } from './test-pki';

export class OpenvpnProcess {
  readonly proc: ChildProcess;
  log = '';
  constructor(args: string[]) {
    this.proc = spawn('openvpn', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout!.on('data', (d: Buffer) => (this.log += d.toString()));
    this.proc.stderr!.on('data', (d: Buffer) => (this.log += d.toString()));
  }

  async waitFor(re: RegExp, ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (!re.test(this.log)) {
      if (Date.now() > end) throw new Error(`openvpn: no ${re} within ${ms} ms; log:\n${this.log.slice(-3000)}`);
      if (this.proc.exitCode !== null) throw new Error(`openvpn exited (${this.proc.exitCode}); log:\n${this.log.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** SIGKILL by PID; resolves once it has exited. */
  async kill(): Promise<void> {
    const pid = this.proc.pid;
    if (pid === undefined || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const gone = new Promise<void>((r) => this.proc.once('exit', () => r()));
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return; // already gone
    }
    await gone;
  }
}

/**
 * Ports handed out in this process. A stock openvpn server keeps a stale session per client
 * address, so a later case that got an earlier case's port back would meet the old state.
 */
const handedOut = new Set<number>();

async function bindAny(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
}

/** A UDP socket on 127.0.0.1 on a port not handed out before in this process. */
export async function bindUdp(): Promise<dgram.Socket> {
  // Repeats stay bound while we pick again, so the kernel cannot offer them a second time.
  const repeats: dgram.Socket[] = [];
  try {
    for (let tries = 0; ; tries++) {
      const s = await bindAny();
      const port = s.address().port;
      if (!handedOut.has(port) || tries >= 50) {
        handedOut.add(port);
        return s;
      }
      repeats.push(s);
    }
  } finally {
    for (const r of repeats) r.close();
  }
}

export async function freePort(): Promise<number> {
  const s = await bindUdp();
  const p = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

export type OpenvpnWrap = 'none' | 'tls-auth' | 'tls-crypt' | 'tls-crypt-v2';

/** Our side's wrap and openvpn's flags for it; key files made once per PKI directory. `oursRole` is the side our session plays. */
export function openvpnWrap(pki: TestPki, mode: OpenvpnWrap, oursRole: 'client' | 'server'): { ours: WrapConfig; args: string[] } {
  switch (mode) {
    case 'tls-auth': {
      const f = join(pki.dir, 'ta.key');
      if (!existsSync(f)) spawnSync('openvpn', ['--genkey', 'secret', f]);
      return {
        ours: {
          mode: 'tls-auth',
          key: parseStaticKey(readFileSync(f, 'utf8')),
          direction: oursRole === 'server' ? 'normal' : 'inverse',
          digest: 'SHA1',
        },
        args: ['--tls-auth', f, oursRole === 'server' ? '1' : '0'],
      };
    }
    case 'tls-crypt': {
      const f = join(pki.dir, 'tc.key');
      if (!existsSync(f)) spawnSync('openvpn', ['--genkey', 'tls-crypt', f]);
      return { ours: { mode: 'tls-crypt', key: parseStaticKey(readFileSync(f, 'utf8')) }, args: ['--tls-crypt', f] };
    }
    case 'tls-crypt-v2': {
      const sf = join(pki.dir, 'tc2-server.key');
      const cf = join(pki.dir, 'tc2-client.key');
      if (!existsSync(sf)) {
        spawnSync('openvpn', ['--genkey', 'tls-crypt-v2-server', sf]);
        spawnSync('openvpn', ['--tls-crypt-v2', sf, '--genkey', 'tls-crypt-v2-client', cf]);
      }
      if (oursRole === 'server') {
        return {
          ours: { mode: 'tls-crypt-v2-server', serverKey: parseTlsCryptV2ServerKey(readFileSync(sf, 'utf8')) },
          args: ['--tls-crypt-v2', cf],
        };
      }
      const ck = parseTlsCryptV2ClientKey(readFileSync(cf, 'utf8'));
      return { ours: { mode: 'tls-crypt-v2-client', key: ck.key2, wkc: ck.wkc }, args: ['--tls-crypt-v2', sf] };
    }
    case 'none':
      return { ours: { mode: 'none' }, args: [] };
  }
}

/**
 * `openvpn --client` against our server at 127.0.0.1:`port`, with no tun device (--dev null) and
 * the PKI's client identity unless `identity` names other files; `extra` flags go last.
 */
export function openvpnClientArgs(
  pki: TestPki,
  port: number,
  extra: readonly string[] = [],
  identity = { cert: pki.files.clientCert, key: pki.files.clientKey },
): string[] {
  return [
    '--client',
    '--dev',
    'null',
    '--ifconfig-noexec',
    '--route-nopull',
    '--nobind',
    '--proto',
    'udp4',
    '--remote',
    '127.0.0.1',
    String(port),
    '--ca',
    pki.files.ca,
    '--cert',
    identity.cert,
    '--key',
    identity.key,
    '--remote-cert-tls',
    'server',
    '--verb',
    '4',
    ...extra,
  ];
}

/**
 * `openvpn --mode server` on 127.0.0.1:`port`, pool 10.8.0.0/24. p2mp mode needs a tun device:
 * `dev` should be a unique name; it is never configured (--ifconfig-noexec). `extra` flags go last.
 */
export function openvpnServerArgs(pki: TestPki, port: number, dev: string, extra: readonly string[] = []): string[] {
  return [
    '--mode',
    'server',
    '--tls-server',
    '--dev',
    dev,
    '--dev-type',
    'tun',
    '--ifconfig-noexec',
    '--route-noexec',
    '--topology',
    'subnet',
    '--ifconfig',
    '10.8.0.1',
    '255.255.255.0',
    '--ifconfig-pool',
    '10.8.0.2',
    '10.8.0.100',
    '255.255.255.0',
    '--push',
    'topology subnet',
    '--proto',
    'udp4',
    '--local',
    '127.0.0.1',
    '--lport',
    String(port),
    '--ca',
    pki.files.ca,
    '--cert',
    pki.files.serverCert,
    '--key',
    pki.files.serverKey,
    '--dh',
    'none',
    '--remote-cert-tls',
    'client',
    '--verb',
    '4',
    ...extra,
  ];
}
