// The operator's scripts around a client's session, with OpenVPN's variables:
// --client-connect and --client-disconnect (multi.c multi_client_connect_call_script,
// multi_client_disconnect_script) and --learn-address (multi.c multi_learn_addr). client-connect
// gets an empty temp file as its last argument and may write per-client config there (the
// client-config-dir syntax: push, push-reset, ifconfig-push, iroute, disable); a non-zero exit
// status refuses the client. learn-address hears `add ADDRESS CN` for each of a client's
// addresses and iroutes once it is admitted and `delete ADDRESS` when it leaves. The others'
// exit status is only logged (OpenVPN also drops a route whose `add` failed; shardvpn keeps it).
// All run in child processes: other clients are served meanwhile.
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import type { Options } from '../../shared/config';
import type { Logger } from '../../shared/log';
import { parseClientConfig, type CcdSettings } from './clients';
import { execScript, scriptTempDirectory } from '../scripts';

export type ClientConnectResult = { ok: true; dynamic: CcdSettings | null } | { ok: false; log: string };

/** OpenVPN's IV_* variables from a client's peer-info lines. */
export function peerInfoEnvironment(peerInfo: string | null): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of (peerInfo ?? '').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0 && /^IV_[A-Za-z0-9_]+$/.test(line.slice(0, eq))) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

/** The variables every server-side script gets, then its own. */
export function scriptEnvironment(options: Options, scriptType: string, env: Record<string, string>): Record<string, string> {
  return {
    ...options.setenv,
    script_type: scriptType,
    script_security: String(options.scriptSecurity),
    verb: String(options.verb),
    ...env,
  };
}

export async function runClientConnect(options: Options, clientEnv: Record<string, string>, logger: Logger): Promise<ClientConnectResult> {
  const command = options.clientConnect;
  if (command === undefined) return { ok: true, dynamic: null };
  const file = path.join(scriptTempDirectory(options), `openvpn_cc_${process.pid}_${randomBytes(8).toString('hex')}.tmp`);
  try {
    writeFileSync(file, '', { mode: 0o600, flag: 'wx' });
  } catch (error) {
    return { ok: false, log: `client-connect: cannot create ${file}: ${(error as Error).message}` };
  }
  try {
    if (!(await execScript(options, command, [file], scriptEnvironment(options, 'client-connect', clientEnv), 'client-connect', logger))) {
      return { ok: false, log: `client '${clientEnv.common_name ?? ''}': client-connect command failed` };
    }
    const text = readFileSync(file, 'utf8');
    if (text.trim() === '') return { ok: true, dynamic: null };
    const dynamic = parseClientConfig(text, `client-connect output for '${clientEnv.common_name ?? ''}'`);
    if (typeof dynamic === 'string')
      return { ok: false, log: `client '${clientEnv.common_name ?? ''}': client-connect output refused: ${dynamic}` };
    return { ok: true, dynamic };
  } finally {
    rmSync(file, { force: true });
  }
}

export function runLearnAddress(
  options: Options,
  operation: 'add' | 'delete',
  address: string,
  commonName: string,
  clientEnv: Record<string, string>,
  logger: Logger,
): void {
  const command = options.learnAddress;
  if (command === undefined) return;
  const args = operation === 'add' ? [operation, address, commonName] : [operation, address];
  void execScript(options, command, args, scriptEnvironment(options, 'learn-address', clientEnv), 'learn-address', logger);
}

export function runClientDisconnect(options: Options, clientEnv: Record<string, string>, logger: Logger): void {
  const command = options.clientDisconnect;
  if (command === undefined) return;
  void execScript(options, command, [], scriptEnvironment(options, 'client-disconnect', clientEnv), 'client-disconnect', logger);
}
