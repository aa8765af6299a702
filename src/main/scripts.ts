// --up / --down / --route-up / --route-pre-down scripts with OpenVPN's environment (misc.c
// setenv_*, init.c do_up / run_up_down / do_route): the command line is split into words (no
// shell), OpenVPN's positional arguments are appended to up and down, and the variables describe
// the tunnel.
import { dnsEnvironment } from '../shared/protocol/dns-options';
import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';

import type { Options } from '../shared/config';
import type { Logger } from '../shared/log';
import type { ClientNetwork } from './client/tun-network';

export interface TunnelFacts {
  dev: string;
  network: ClientNetwork;
  /** The server a client talks to; a server's own scripts have none. */
  remote?: { host: string; address: string; port: number };
  /** The server's common name. */
  commonName?: string;
  netGateway?: string;
  configFile?: string;
}

/** Splits a command line like OpenVPN's parse_line: blanks separate, quotes group, backslash escapes. */
export function splitCommand(command: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < command.length; i++) {
    const c = command[i]!;
    if (quote !== null) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < command.length) word += command[++i];
      else word += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < command.length) {
      word += command[++i];
      inWord = true;
    } else if (c === ' ' || c === '\t') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** The environment OpenVPN gives --up / --down (without the process environment). */
export function tunnelEnvironment(
  options: Options,
  facts: TunnelFacts,
  scriptType: TunnelScript,
  context: 'init' | 'restart',
  signal?: string,
): Record<string, string> {
  const n = facts.network;
  const env: Record<string, string> = {
    ...options.setenv,
    script_type: scriptType,
    script_context: context,
    dev: facts.dev,
    dev_type: 'tun',
    tun_mtu: String(n.tunMtu),
    link_mtu: '0',
    verb: String(options.verb),
    daemon: options.daemon ? '1' : '0',
    daemon_log_redirect: '0',
    script_security: String(options.scriptSecurity),
  };
  if (facts.remote !== undefined) {
    env.proto_1 = 'udp';
    env.remote_1 = facts.remote.host;
    env.remote_port_1 = String(facts.remote.port);
    env.trusted_ip = facts.remote.address;
    env.trusted_port = String(facts.remote.port);
  }
  if (facts.configFile !== undefined) env.config = facts.configFile;
  if (facts.commonName !== undefined) env.common_name = facts.commonName;
  if (signal !== undefined) env.signal = signal;
  if (n.ifconfig !== undefined) {
    env.ifconfig_local = n.ifconfig.local;
    if (n.topology === 'subnet') env.ifconfig_netmask = n.ifconfig.remoteOrNetmask;
    else env.ifconfig_remote = n.ifconfig.remoteOrNetmask;
  }
  if (n.ifconfigIpv6 !== undefined) {
    env.ifconfig_ipv6_local = n.ifconfigIpv6.local;
    env.ifconfig_ipv6_netbits = String(n.ifconfigIpv6.bits);
    if (n.ifconfigIpv6.remote !== undefined) env.ifconfig_ipv6_remote = n.ifconfigIpv6.remote;
  }
  if (n.vpnGateway !== undefined) env.route_vpn_gateway = n.vpnGateway;
  if (n.vpnGateway6 !== undefined) env.route_ipv6_gateway = n.vpnGateway6;
  if (facts.netGateway !== undefined) env.route_net_gateway = facts.netGateway;
  n.routes.forEach((r, i) => {
    env[`route_network_${i + 1}`] = r.network;
    env[`route_netmask_${i + 1}`] = r.netmask;
    env[`route_gateway_${i + 1}`] = r.gateway ?? n.vpnGateway ?? '';
    if (r.metric !== undefined) env[`route_metric_${i + 1}`] = String(r.metric);
  });
  n.routes6.forEach((r, i) => {
    env[`route_ipv6_network_${i + 1}`] = `${r.network}/${r.bits}`;
    env[`route_ipv6_gateway_${i + 1}`] = r.gateway ?? n.vpnGateway6 ?? '';
  });
  n.dhcpOptions.forEach((line, i) => {
    env[`foreign_option_${i + 1}`] = line;
  });
  if (n.dns !== undefined) Object.assign(env, dnsEnvironment(n.dns));
  return env;
}

/** OpenVPN's positional arguments: dev tun_mtu link_mtu ifconfig_local ifconfig_remote_or_netmask init|restart. */
export function scriptArguments(facts: TunnelFacts, context: 'init' | 'restart'): string[] {
  const n = facts.network;
  return [facts.dev, String(n.tunMtu), '0', n.ifconfig?.local ?? '', n.ifconfig?.remoteOrNetmask ?? '', context];
}

/** The scripts about the tunnel device and its routes. */
export type TunnelScript = 'up' | 'down' | 'route-up' | 'route-pre-down';

/**
 * Runs `command` with the tunnel's environment and OpenVPN's positional arguments (which it
 * gives every one of these but route-up); resolves true on exit status 0.
 */
export function runScript(
  options: Options,
  command: string,
  facts: TunnelFacts,
  scriptType: TunnelScript,
  context: 'init' | 'restart',
  logger: Logger,
  signal?: string,
): Promise<boolean> {
  return execScript(
    options,
    command,
    scriptType === 'route-up' ? [] : scriptArguments(facts, context),
    tunnelEnvironment(options, facts, scriptType, context, signal),
    scriptType,
    logger,
  );
}

/**
 * A tunnel device going away with its scripts, in OpenVPN's order (init.c do_close_tun):
 * route-pre-down, the routes removed, the device closed, then down (with down-pre, down before
 * the close). `facts` null: nothing to tell the scripts, the device just goes. `signal` is the
 * one ending the run, as the scripts' `signal` variable spells it.
 */
export async function closeTunnel(
  options: Options,
  facts: TunnelFacts | null,
  signal: string,
  logger: Logger,
  steps: { removeRoutes: () => Promise<void>; closeDevice: () => void },
): Promise<void> {
  const run = async (command: string | undefined, type: TunnelScript): Promise<void> => {
    if (command !== undefined && facts !== null) await runScript(options, command, facts, type, 'init', logger, signal);
  };
  await run(options.routePreDown, 'route-pre-down');
  await steps.removeRoutes();
  if (options.downPre === true) await run(options.down, 'down');
  steps.closeDevice();
  if (options.downPre !== true) await run(options.down, 'down');
}

/** The directory scripts start in: the one `cd` named (OpenVPN changes into it), else ours. */
export function scriptDirectory(options: Options): string {
  return options.cd ?? process.cwd();
}

/** Where the files handed to scripts go (`tmp-dir`, relative to the directory of `cd`; default the system's). */
export function scriptTempDirectory(options: Options): string {
  return path.resolve(scriptDirectory(options), options.tmpDir ?? os.tmpdir());
}

/**
 * Runs an OpenVPN script (openvpn_run_script): the command's own words, then `args`; the
 * process environment plus `env`. Refused below script-security 2, as OpenVPN does. Resolves
 * true on exit status 0; never blocks the event loop.
 */
export function execScript(
  options: Options,
  command: string,
  args: readonly string[],
  env: Record<string, string>,
  directive: string,
  logger: Logger,
): Promise<boolean> {
  if (options.scriptSecurity < 2) {
    logger.log(
      1,
      `WARNING: External program may not be called unless '--script-security 2' or higher is enabled. See --help text or man page for detailed info.`,
    );
    logger.log(1, `WARNING: Failed running command (--${directive}): disallowed by script-security setting`);
    return Promise.resolve(false);
  }
  const words = splitCommand(command);
  if (words.length === 0) return Promise.resolve(false);
  logger.log(3, `${words.join(' ')} ${args.join(' ')}`);
  // OpenVPN runs a script with execve in the directory of `cd`: a program named without a
  // slash is a file in that directory (`auth-user-pass-verify checkpsw.sh via-env`), never a
  // search of PATH, and the script starts there.
  const dir = scriptDirectory(options);
  const program = words[0]!.includes('/') ? words[0]! : path.join(dir, words[0]!);
  return new Promise((resolve) => {
    execFile(
      program,
      [...words.slice(1), ...args],
      { cwd: dir, env: { ...process.env, ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        if (stdout.length > 0) process.stdout.write(stdout);
        if (stderr.length > 0) process.stderr.write(stderr);
        if (error) {
          const code = (error as NodeJS.ErrnoException & { code?: unknown }).code;
          logger.log(
            1,
            `WARNING: Failed running command (--${directive}): ${typeof code === 'number' ? `external program exited with error status: ${code}` : error.message}`,
          );
          resolve(false);
        } else {
          resolve(true);
        }
      },
    );
  });
}
