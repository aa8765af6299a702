// The `shardvpn` command line: OpenVPN's flags and config files, plus shardvpn's own.
import { readFileSync } from 'node:fs';
import { buildOptions, ConfigError, parseArgv, type BuildResult, type Directive, type Options } from '../shared/config';
import { Logger } from '../shared/log';
import { DEFAULT_PORT, DEFAULT_TUNNEL, defaultDataDir, defaultServerOptions, ensureDefaultSetup } from './default-setup';
import { runLifecycle } from './lifecycle';
import type { ServerSignal } from './ops/server-view';
import { runLoadCommand } from './load/command';
import { startOperations, type Operations } from './ops/operations';
import { ClientProcess } from './client/client';
import { dropPrivileges } from './privileges';
import { KeyKeeper } from './persist-key';
import { startServer, type RestartKeeper } from './server/server';
import { SHARD_WORKER } from './server/shard-pool';
import { runGenkey } from './tools/genkey';
import { showCiphers } from './tools/show-ciphers';
import { runTestCrypto } from './tools/test-crypto';
import { VERSION_BANNER } from './version';

const USAGE = `Usage: shardvpn [--config FILE] [options]

  shardvpn --config server.conf     run the server (or client) an OpenVPN config describes
  shardvpn                          run a server from the built-in configuration, creating a
                                    CA, certificates and a client profile in the data folder
                                    (SHARDVPN_DATA, default: data/ in shardvpn's own folder)
                                    on first run
  shardvpn --config client.ovpn     run a client against an OpenVPN 2.6 (or shardvpn) server
  shardvpn load --profile P.ovpn --clients N ...
                                    simulate N clients against an OpenVPN-protocol server
                                    (shardvpn load --help)
  --help                            show this text
  --version                         show the version
  --genkey TYPE FILE                write a key: secret, tls-auth, tls-crypt, tls-crypt-v2-server,
                                    tls-crypt-v2-client (with --tls-crypt-v2 SERVERKEY) or
                                    auth-token (for auth-gen-token-secret)
  --test-crypto                     self-test of every data-channel cipher
  --show-ciphers                    list the data-channel ciphers

OpenVPN 2.6 directives work as config lines and as --flags. shardvpn's own:
  workers N                         shard worker threads (default: the number of cores)
  metrics-listen ADDR PORT          Prometheus /metrics endpoint
  metrics-per-client                per-client series on /metrics
  reload-mode hitless|restart       SIGHUP applies the config in place (default) or restarts
  reload-changed-clients restart|drop
                                    on a hitless reload, clients whose settings changed
  udp-offload yes|no                UDP GSO/GRO on the link where the kernel has them (default yes)
  tun-offload yes|no                TUN TSO/USO split and TCP coalescing where the kernel has them (default yes)
  tun-queues single|shard           one TUN queue read by the main thread, or one per shard (default)

Signals: SIGHUP re-reads the config (a server applies it in place where it can, keeping its
clients), SIGUSR1 restarts, SIGUSR2 logs statistics, SIGTERM/SIGINT stop.`;

/** Arguments that make a whole config by themselves (otherwise they override the built-in one). */
function namesOwnConfig(directives: readonly Directive[]): boolean {
  const own = new Set(['config', 'mode', 'server', 'client', 'tls-server', 'tls-client', 'remote', 'pull']);
  return directives.some((d) => own.has(d.name));
}

function printWarnings(result: BuildResult): void {
  for (const warning of result.warnings) process.stderr.write(`WARNING: ${warning.file}:${warning.line}: ${warning.message}\n`);
}

export async function run(argv: readonly string[]): Promise<number> {
  if (argv[0] === 'load') return runLoadCommand(argv.slice(1));
  if (argv.includes('--version')) {
    console.log(VERSION_BANNER);
    return 0;
  }
  if (argv.includes('--help')) {
    console.log(USAGE);
    return 0;
  }
  if (argv.includes('--genkey')) return runGenkey(argv);
  if (argv.includes('--test-crypto')) return runTestCrypto();
  if (argv.includes('--show-ciphers')) {
    process.stdout.write(showCiphers());
    return 0;
  }
  const directives = parseArgv(argv);
  let load: () => BuildResult;
  if (namesOwnConfig(directives)) {
    load = () => buildOptions(parseArgv(argv));
  } else {
    const dataDir = defaultDataDir();
    const portArg = directives.find((d) => d.name === 'port')?.args[0];
    const port = portArg !== undefined ? Number(portArg) : DEFAULT_PORT;
    // Validate first, create last: a bad flag or a missing privilege leaves nothing behind.
    defaultServerOptions(dataDir, port, directives);
    if (!hasNetAdmin()) {
      console.error(
        'shardvpn: the built-in server needs root or CAP_NET_ADMIN to open its TUN device (run it as root, or grant the capability)',
      );
      return 1;
    }
    const setup = await ensureDefaultSetup(dataDir, port);
    console.log(`${setup.created ? 'Created' : 'Using'} the built-in server's keys in ${setup.dataDir}`);
    console.log(`Client profile for a stock OpenVPN 2.6 client: ${setup.profile}`);
    const remote = process.env.SHARDVPN_REMOTE;
    if (!setup.created && remote && !readFileSync(setup.profile, 'utf8').includes(`\nremote ${remote} `)) {
      console.log(
        `Note: SHARDVPN_REMOTE=${remote} is not the address in the existing ${setup.profile}; delete it to have it written again`,
      );
    }
    console.log(
      `Tunnel ${DEFAULT_TUNNEL.network}/24 (server ${DEFAULT_TUNNEL.server}) on UDP port ${port}; connect with: openvpn --config ${setup.profile}`,
    );
    load = () => defaultServerOptions(dataDir, port, parseArgv(argv));
  }
  const first = load();
  printWarnings(first);
  const logger = new Logger(first.options.verb);
  if (first.options.mode !== 'server') return runClient(first, load, logger, configFileOf(argv));
  const loadOptions = optionsLoader(first, load, logger);
  const keeper: RestartKeeper = { tun: null, keys: new KeyKeeper() };
  return runLifecycle({
    logger,
    loadOptions,
    start: async (options, raise) => {
      const server = await startServer(options, logger, raise, keeper);
      let operations: Operations;
      try {
        operations = await startOperations(server, options, logger);
      } catch (error) {
        await server.stop(false, 'SIGTERM');
        throw error;
      }
      dropPrivileges(options, logger, [SHARD_WORKER]);
      // Announced once the status file, management and metrics are up too, as OpenVPN does.
      logger.log(1, 'Initialization Sequence Completed');
      return {
        logStatistics: () => server.logStatistics(),
        reload: (next: Options) => server.reload(next),
        stop: async (notify: boolean, signal: ServerSignal) => {
          await operations.stop();
          await server.stop(notify, signal);
        },
      };
    },
    notifyOn: (options) => options.explicitExitNotify > 0,
  });
}

/**
 * The lifecycle's options loader: the config already read at start first, then a fresh read on
 * each SIGHUP (warnings printed, verb applied to the logger).
 */
function optionsLoader(first: BuildResult, load: () => BuildResult, logger: Logger): () => Options {
  let initial: BuildResult | null = first;
  return () => {
    const result = initial ?? load();
    if (initial === null) printWarnings(result);
    initial = null;
    logger.verb = result.options.verb;
    logger.mute = result.options.mute;
    return result.options;
  };
}

/** The config file named on the command line (scripts see it as $config). */
function configFileOf(argv: readonly string[]): string | undefined {
  if (argv.length === 1 && !argv[0]!.startsWith('--')) return argv[0];
  const at = argv.lastIndexOf('--config');
  return at >= 0 ? argv[at + 1] : undefined;
}

/** Client mode (tunnel_point_to_point): one thread, the same lifecycle loop as the server. */
async function runClient(first: BuildResult, load: () => BuildResult, logger: Logger, configFile: string | undefined): Promise<number> {
  const loadOptions = optionsLoader(first, load, logger);
  const client = new ClientProcess(logger, configFile);
  const code = await runLifecycle({
    logger,
    loadOptions,
    start: (options, raise) => client.start(options, raise),
    notifyOn: (options, signal) => client.notifyOn(options, signal),
  });
  return Math.max(code, client.exitStatus);
}

export function main(argv: readonly string[]): void {
  run(argv).then(
    (code) => process.exit(code),
    (error: unknown) => {
      if (error instanceof ConfigError) {
        process.stderr.write(`Options error: ${error.message}\nUse --help for more information.\n`);
      } else {
        const err = error as NodeJS.ErrnoException;
        process.stderr.write(`shardvpn: ${err.message ?? String(error)}\n`);
        if (process.env.SHARDVPN_DEBUG) process.stderr.write(`${err.stack ?? ''}\n`);
      }
      process.exit(1);
    },
  );
}

/** CAP_NET_ADMIN (bit 12) in the effective set: what opening a TUN device takes. */
function hasNetAdmin(): boolean {
  try {
    const match = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return match !== null && (BigInt(`0x${match[1]}`) & (1n << 12n)) !== 0n;
  } catch {
    return process.getuid?.() === 0;
  }
}
