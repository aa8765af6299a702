// A small network for end-to-end VPN tests: a server namespace with a bridge (fixed MAC, see
// the testing notes) and client namespaces on veth pairs into it. Underlay 10.150.0.0/24 and
// fd00:150::/64 (server .1 / ::1, client i at .(10+i) / ::(10+i)). Processes started here are
// killed by PID and every namespace is deleted in cleanup(), even when a test fails.
import { execFileSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { NetworkNamespace } from './netns';
import { makeTestPki, type PkiKeyType, type TestPki } from './test-pki';

export const SERVER_UNDERLAY = '10.150.0.1';
export const SERVER_UNDERLAY6 = 'fd00:150::1';
export const clientUnderlay = (i: number): string => `10.150.0.${10 + i}`;
/** Extra underlay addresses a client namespace may add (addClientAddresses): 16 per client, from .128. */
const EXTRA_ADDRESSES_PER_CLIENT = 16;

/** The shardvpn command of this checkout (built output). */
export const BIN = path.join(__dirname, '..', '..', 'bin', 'shardvpn.js');

export interface LabProcess {
  readonly child: ChildProcess;
  readonly name: string;
  log(): string;
  /** Resolves when `pattern` appears in the output; rejects after `timeoutMs` or on exit. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code once the process has exited (at once if it has). */
  waitExit(): Promise<number | null>;
  /** Sends a signal and resolves with the exit code (SIGKILL after `timeoutMs`). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  exited(): boolean;
}

/** Wraps a started child: its output, waits on it, and a stop by PID. */
export function track(name: string, child: ChildProcess): LabProcess {
  let output = '';
  let exitCode: number | null | undefined;
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer): void => {
    output += chunk.toString();
    for (const waiter of waiters) waiter();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  // A waiter gives up on an exited process only once its output is all read: 'exit' can come
  // before the last of stdout ('close' follows it), or never be followed by 'close' when a
  // descendant holds the pipe (then half a second after 'exit').
  let outputDone = false;
  const finish = (): void => {
    if (outputDone) return;
    outputDone = true;
    for (const waiter of waiters) waiter();
  };
  child.on('exit', (code) => {
    exitCode = code;
    setTimeout(finish, 500).unref();
  });
  child.on('close', finish);
  return {
    child,
    name,
    log: () => output,
    exited: () => exitCode !== undefined,
    waitFor(pattern, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const match = output.match(pattern);
          if (match !== null) {
            done();
            resolve(match);
          } else if (exitCode !== undefined && outputDone) {
            done();
            reject(new Error(`${name} exited (${exitCode}) before ${pattern}:\n${output.slice(-3000)}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${name}: no ${pattern} within ${timeoutMs} ms:\n${output.slice(-3000)}`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    waitExit() {
      if (exitCode !== undefined) return Promise.resolve(exitCode);
      return new Promise((resolve) => child.once('exit', resolve));
    },
    stop(signal = 'SIGTERM', timeoutMs = 8000) {
      if (exitCode !== undefined) return Promise.resolve(exitCode);
      return new Promise((resolve) => {
        const timer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), timeoutMs);
        child.once('exit', (code) => {
          clearTimeout(timer);
          resolve(code);
        });
        if (child.pid !== undefined) process.kill(child.pid, signal);
      });
    },
  };
}

export interface KeySet {
  tlsCrypt: string;
  tlsAuth: string;
  tlsCryptV2Server: string;
  tlsCryptV2Client: string;
}

export class VpnLab {
  readonly server: NetworkNamespace;
  readonly clients: NetworkNamespace[] = [];
  /** Underlay addresses added to each client namespace by addClientAddresses. */
  private readonly extraAddresses = new Map<number, string[]>();
  readonly dir: string;
  readonly pki: TestPki;
  readonly keys: KeySet;
  private readonly processes: LabProcess[] = [];
  /** The server namespace's underlay device (a bridge the clients' veths join). */
  readonly bridge = 'svbr0';

  /** `prefix` starts the namespaces' names, so a test's namespaces are easy to tell apart; `keyType`: the test PKI's keys. */
  private constructor(
    clientCount: number,
    private readonly prefix: string,
    keyType: PkiKeyType,
  ) {
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'shardvpn-lab-'));
    this.pki = makeTestPki(keyType);
    const key = (name: string, args: string[]): string => {
      const file = path.join(this.dir, name);
      execFileSync('openvpn', ['--genkey', ...args.map((a) => a.replace('$FILE', file))], { stdio: 'ignore' });
      return file;
    };
    const tlsCryptV2Server = key('tc2-server.key', ['tls-crypt-v2-server', '$FILE']);
    this.keys = {
      tlsCrypt: key('tc.key', ['tls-crypt', '$FILE']),
      tlsAuth: key('ta.key', ['tls-auth', '$FILE']),
      tlsCryptV2Server,
      tlsCryptV2Client: key('tc2-client.key', ['tls-crypt-v2-client', '$FILE', '--tls-crypt-v2', tlsCryptV2Server]),
    };
    this.server = NetworkNamespace.create(`${prefix}srv`);
    const mac = `02:50:${randomBytes(4)
      .toString('hex')
      .replace(/(..)(?!$)/g, '$1:')}`;
    this.server.ip(['link', 'add', this.bridge, 'address', mac, 'type', 'bridge']);
    this.server.ip(['addr', 'add', `${SERVER_UNDERLAY}/24`, 'dev', this.bridge]);
    this.server.ip(['-6', 'addr', 'add', `${SERVER_UNDERLAY6}/64`, 'dev', this.bridge, 'nodad']);
    this.server.ip(['link', 'set', this.bridge, 'up']);
    for (let i = 0; i < clientCount; i++) this.addClient();
  }

  /** `keyType`: the test PKI's keys (ECDSA P-256 unless a benchmark compares RSA-2048). */
  static create(clientCount: number, prefix = '', keyType: PkiKeyType = 'ecdsa'): VpnLab {
    return new VpnLab(clientCount, prefix, keyType);
  }

  addClient(): NetworkNamespace {
    const i = this.clients.length;
    const ns = NetworkNamespace.create(`${this.prefix}c${i}`);
    this.clients.push(ns);
    const inner = `svc${i}`;
    const outer = `svb${i}-${ns.name.slice(-6)}`.slice(0, 15);
    // Create the pair inside the client namespace, then move one end to the server's.
    ns.ip(['link', 'add', inner, 'type', 'veth', 'peer', 'name', outer]);
    ns.ip(['link', 'set', outer, 'netns', this.server.name]);
    this.server.ip(['link', 'set', outer, 'master', this.bridge]);
    this.server.ip(['link', 'set', outer, 'up']);
    ns.ip(['addr', 'add', `${clientUnderlay(i)}/24`, 'dev', inner]);
    ns.ip(['-6', 'addr', 'add', `fd00:150::${(10 + i).toString(16)}/64`, 'dev', inner, 'nodad']);
    ns.ip(['link', 'set', inner, 'up']);
    return ns;
  }

  /**
   * Adds `count` (at most 16) more underlay addresses to client namespace `i` and returns them:
   * a load generator needs several source addresses for more clients than one address has
   * source ports (`shardvpn load --source`).
   */
  addClientAddresses(i: number, count: number): string[] {
    if (count > EXTRA_ADDRESSES_PER_CLIENT || i * EXTRA_ADDRESSES_PER_CLIENT + count > 120) {
      throw new RangeError(`client ${i}: at most ${EXTRA_ADDRESSES_PER_CLIENT} extra addresses, for the first 7 clients`);
    }
    const out = this.extraAddresses.get(i) ?? [];
    for (let k = out.length; k < count; k++) {
      const address = `10.150.0.${128 + i * EXTRA_ADDRESSES_PER_CLIENT + k}`;
      this.clients[i]!.ip(['addr', 'add', `${address}/24`, 'dev', `svc${i}`]);
      out.push(address);
    }
    this.extraAddresses.set(i, out);
    return out.slice(0, count);
  }

  /** Writes a file into the lab folder and returns its path. */
  file(name: string, text: string): string {
    const file = path.join(this.dir, name);
    writeFileSync(file, text);
    return file;
  }

  /** The server's usual TLS lines (files of the test PKI). */
  serverTlsLines(): string {
    return `ca ${this.pki.files.ca}\ncert ${this.pki.files.serverCert}\nkey ${this.pki.files.serverKey}\n`;
  }

  clientTlsLines(): string {
    return `ca ${this.pki.files.ca}\ncert ${this.pki.files.clientCert}\nkey ${this.pki.files.clientKey}\nremote-cert-tls server\n`;
  }

  /**
   * Command-line flags of a stock `openvpn` server for the lab: subnet topology on `network`
   * (e.g. '10.161.0.0 255.255.255.0'), the lab's PKI and tls-crypt key, duplicate-cn, keepalive
   * 10 60, UDPv4 on `port`; `extra` flags go last.
   */
  stockServerArgs(network: string, port: number, extra: readonly string[] = []): string[] {
    const f = this.pki.files;
    return [
      ...['--mode', 'server', '--tls-server', '--dev', 'tun', '--topology', 'subnet', '--server', ...network.split(' ')],
      ...['--ca', f.ca, '--cert', f.serverCert, '--key', f.serverKey, '--dh', 'none', '--tls-crypt', this.keys.tlsCrypt],
      ...['--duplicate-cn', '--keepalive', '10', '60', '--proto', 'udp4', '--port', String(port)],
      ...extra,
    ];
  }

  /**
   * Starts `shardvpn --config` in the server namespace (with `env` added to this process's) and
   * waits until it serves. `nodeArgs` go to node before the script (profiling); `bin`: another
   * checkout's bin/shardvpn.js.
   */
  async startShardvpn(
    config: string,
    name = 'server.conf',
    extraArgs: string[] = [],
    env: NodeJS.ProcessEnv = {},
    nodeArgs: string[] = [],
    bin = BIN,
  ): Promise<LabProcess> {
    const file = this.file(name, config);
    const proc = track(
      'shardvpn',
      this.server.spawn(process.execPath, [...nodeArgs, bin, '--config', file, ...extraArgs], { env: { ...process.env, ...env } }),
    );
    this.processes.push(proc);
    await proc.waitFor(/Initialization Sequence Completed/);
    return proc;
  }

  /** Starts a stock openvpn in client namespace `i` and waits for its tunnel. */
  async startOpenvpnClient(i: number, config: string, waitFor: RegExp | null = /Initialization Sequence Completed/): Promise<LabProcess> {
    const file = this.file(`client${i}-${this.processes.length}.conf`, config);
    const proc = track(`openvpn client ${i}`, this.clients[i]!.spawn('openvpn', ['--config', file]));
    this.processes.push(proc);
    if (waitFor !== null) await proc.waitFor(waitFor);
    return proc;
  }

  /** Starts any program in a namespace, tracked for cleanup. */
  spawn(ns: NetworkNamespace, command: string, args: string[], name = command, options: SpawnOptions = {}): LabProcess {
    const proc = track(name, ns.spawn(command, args, options));
    this.processes.push(proc);
    return proc;
  }

  /**
   * `ping -c count` from a namespace; resolves with the number of replies.
   * A deadline (-w) instead of a per-reply wait: ping keeps probing until
   * `count` replies or the deadline, so one late or lost reply on a slow box
   * does not count as loss. Callers expecting 0 replies wait the full deadline.
   */
  ping(ns: NetworkNamespace, address: string, count = 3, extra: string[] = []): number {
    const deadline = Math.ceil(count * 0.2) + 5;
    try {
      const out = ns.exec('ping', ['-c', String(count), '-i', '0.2', '-w', String(deadline), ...extra, address], 30_000);
      const match = /(\d+) received/.exec(out);
      return match ? Number(match[1]) : 0;
    } catch (error) {
      const out = String((error as { stdout?: string }).stdout ?? '');
      const match = /(\d+) received/.exec(out);
      return match ? Number(match[1]) : 0;
    }
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.stop('SIGTERM', 3000)));
    for (const ns of this.clients) ns.remove();
    this.server.remove();
    this.pki.cleanup();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
