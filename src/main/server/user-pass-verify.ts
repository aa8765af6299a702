// --auth-user-pass-verify (ssl_verify.c verify_user_pass_script): a client's username and
// password, sent in its key method 2 message, are checked by the operator's script; exit status
// 0 admits the client, anything else answers AUTH_FAILED. via-file hands the script a 0600 temp
// file of two lines (username, password) as its last argument and removes it afterwards;
// via-env sets `password` only at script-security 3, as OpenVPN filters password variables
// below that. The script runs in a child process, so other clients are served meanwhile (OpenVPN
// blocks its whole event loop here). Deferred authentication (exit status 2 with an
// auth_control_file) is not offered and counts as a failure.
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import type { Options } from '../../shared/config';
import type { Logger } from '../../shared/log';
import { peerInfoEnvironment, scriptEnvironment } from './client-scripts';
import { execScript, scriptTempDirectory } from '../scripts';

export interface UserPassRequest {
  commonName: string;
  username: string;
  password: string;
  realAddress: { address: string; port: number };
  /** The client's IV_* lines, passed on as variables. */
  peerInfo: string | null;
  /** auth-gen-token's session_id and session_state, where tokens are made. */
  session?: Record<string, string>;
}

/** The variables OpenVPN sets for the script (set_verify_user_pass_env and friends). */
function verifyEnvironment(options: Options, request: UserPassRequest, configFile: string | undefined): Record<string, string> {
  const env: Record<string, string> = {
    username: request.username,
    common_name: request.commonName,
    untrusted_ip: request.realAddress.address,
    untrusted_port: String(request.realAddress.port),
  };
  if (configFile !== undefined) env.config = configFile;
  return scriptEnvironment(options, 'user-pass-verify', { ...env, ...(request.session ?? {}), ...peerInfoEnvironment(request.peerInfo) });
}

export async function verifyUserPass(options: Options, request: UserPassRequest, logger: Logger, configFile?: string): Promise<boolean> {
  const verify = options.authUserPassVerify;
  if (verify === undefined) return true;
  const env = verifyEnvironment(options, request, configFile);
  if (verify.method === 'via-env') {
    if (options.scriptSecurity >= 3) env.password = request.password;
    return execScript(options, verify.script, [], env, 'auth-user-pass-verify', logger);
  }
  const file = path.join(scriptTempDirectory(options), `openvpn_up_${process.pid}_${randomBytes(8).toString('hex')}.tmp`);
  try {
    writeFileSync(file, `${request.username}\n${request.password}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    logger.log(1, `TLS Auth Error: could not write username/password to file: ${file}: ${(error as Error).message}`);
    return false;
  }
  try {
    return await execScript(options, verify.script, [file], env, 'auth-user-pass-verify', logger);
  } finally {
    rmSync(file, { force: true });
  }
}
