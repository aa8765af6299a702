// Real OpenVPN 2.6 servers, each with one real client connected, in a throw-away network
// namespace: the reference the status file and management tests compare shardvpn against.
// The client runs in the same namespace over loopback with --dev null, so only the server needs
// a TUN device. Management goes over a unix socket, which the test process (outside the
// namespace) can reach through the file system.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NetworkNamespace } from '../../lab/netns';
import { makeTestPki, type TestPki } from '../../lab/test-pki';

export interface RealServer {
  readonly version: 1 | 2 | 3;
  readonly statusFile: string;
  readonly managementPath: string;
  /** Server output so far. */
  log(): string;
}

export interface RealServerSet {
  readonly servers: readonly RealServer[];
  readonly pki: TestPki;
  cleanup(): void;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(what: string, check: () => boolean, timeoutMs: number, context: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${context()}`);
    await sleep(100);
  }
}

/**
 * Starts one server per status version (status file rewritten every second), each with a client
 * named "client" that has an iroute and iroute-ipv6, and waits until every status file lists it.
 */
export async function startRealServers(versions: readonly (1 | 2 | 3)[]): Promise<RealServerSet> {
  const pki = makeTestPki();
  let ns: NetworkNamespace | null = null;
  const cleanup = (): void => {
    ns?.remove();
    pki.cleanup();
  };
  try {
    ns = NetworkNamespace.create('ops');
    const ccd = join(pki.dir, 'ccd');
    mkdirSync(ccd);
    writeFileSync(join(ccd, 'client'), 'iroute 10.200.0.0 255.255.255.0\niroute-ipv6 fd99::/64\n');
    const servers: RealServer[] = [];
    const clientLogs: (() => string)[] = [];
    for (const [i, version] of versions.entries()) {
      const port = String(11940 + i);
      const statusFile = join(pki.dir, `status-${i}`);
      const managementPath = join(pki.dir, `mgmt-${i}.sock`);
      let out = '';
      const server = ns.spawn('openvpn', [
        '--mode',
        'server',
        '--tls-server',
        '--dev',
        'tun',
        '--topology',
        'subnet',
        '--server',
        `10.${70 + i}.0.0`,
        '255.255.255.0',
        '--server-ipv6',
        `fd7${i}::/64`,
        '--client-config-dir',
        ccd,
        '--route',
        '10.200.0.0',
        '255.255.255.0',
        '--route-ipv6',
        'fd99::/64',
        '--ca',
        pki.files.ca,
        '--cert',
        pki.files.serverCert,
        '--key',
        pki.files.serverKey,
        '--dh',
        'none',
        '--status',
        statusFile,
        '1',
        '--status-version',
        String(version),
        '--management',
        managementPath,
        'unix',
        '--local',
        '127.0.0.1',
        '--port',
        port,
        '--proto',
        'udp4',
        '--verb',
        '3',
      ]);
      server.stdout?.on('data', (c: Buffer) => (out += c.toString()));
      server.stderr?.on('data', (c: Buffer) => (out += c.toString()));
      servers.push({ version, statusFile, managementPath, log: () => out });
      let clientOut = '';
      const client = ns.spawn('openvpn', [
        '--client',
        '--dev',
        'null',
        '--remote',
        '127.0.0.1',
        port,
        '--proto',
        'udp4',
        '--ca',
        pki.files.ca,
        '--cert',
        pki.files.clientCert,
        '--key',
        pki.files.clientKey,
        '--ifconfig-noexec',
        '--route-nopull',
        '--verb',
        '3',
        '--connect-retry',
        '1',
      ]);
      client.stdout?.on('data', (c: Buffer) => (clientOut += c.toString()));
      client.stderr?.on('data', (c: Buffer) => (clientOut += c.toString()));
      clientLogs.push(() => clientOut);
    }
    for (const [i, server] of servers.entries()) {
      const clientLog = clientLogs[i] as () => string;
      const context = (): string => `server:\n${server.log()}\nclient:\n${clientLog()}`;
      await waitFor('the client to connect', () => clientLog().includes('Initialization Sequence Completed'), 20_000, context);
      // The iroute row appears once the status file is rewritten after the client is set up.
      await waitFor(
        'the status file to list the client',
        () => existsSync(server.statusFile) && readFileSync(server.statusFile, 'utf8').includes('10.200.0.0/24'),
        10_000,
        context,
      );
      await waitFor('the management socket', () => existsSync(server.managementPath), 5_000, context);
    }
    return { servers, pki, cleanup };
  } catch (error) {
    cleanup();
    throw error;
  }
}
