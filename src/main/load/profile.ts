// The load generator's client profile: a client config (.ovpn) read once on the main thread
// into plain data (PEM text, wrap keys, credentials, the resolved server address) that every
// worker clones. Mistakes come back as one message a person can act on.
import { lookup } from 'node:dns/promises';
import { existsSync, readFileSync } from 'node:fs';

import { buildOptions, ConfigError, parseConfigFile, type Options } from '../../shared/config';
import { readMaterial } from '../../shared/config/material';
import { loadTlsMaterial } from '../../shared/config/tls-material';
import { loadWrap } from '../../shared/config/wrap';
import type { LoadProfile } from '../../shared/load/task';
import { buildPeerInfo, IV_PROTO_DATA_V2, IV_PROTO_TLS_KEY_EXPORT } from '../../shared/protocol/key-method2';
import { cipherUnavailable } from '../../shared/protocol/data-format';
import { dataCipherName, normalizeCipherName } from '../../shared/protocol/ncp';
import { authDigest } from '../run-checks';
import { occOptionsString } from '../../shared/protocol/occ';
import { VERSION } from '../version';
import type { LoadOptions } from './options';
import { peerChecks } from '../../shared/session/peer-verify';

export type ProfileResult = { ok: true; profile: LoadProfile; warnings: string[] } | { ok: false; error: string };

function credentialsFrom(text: string, where: string): { username: string; password: string } | string {
  const lines = text.split(/\r?\n/);
  const username = lines[0] ?? '';
  const password = lines[1] ?? '';
  if (username === '') return `${where}: no username on the first line (username, then password on the second)`;
  if (password === '') return `${where}: no password on the second line (the load generator cannot ask for one)`;
  if (username.length > 127 || password.length > 127) return `${where}: username and password must be at most 127 characters`;
  return { username, password };
}

function credentials(options: Options, file: string | null): { username: string; password: string } | null | string {
  if (file !== null) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      return `--auth-user-pass ${file}: cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`;
    }
    return credentialsFrom(text, `--auth-user-pass ${file}`);
  }
  const ref = options.authUserPass;
  if (ref === undefined) return null;
  if (ref.kind === 'stdin')
    return 'the profile asks for auth-user-pass on the terminal; give --auth-user-pass FILE (username and password lines)';
  return credentialsFrom(readMaterial(ref, 'auth-user-pass'), `${ref.file}:${ref.line}: auth-user-pass`);
}

/** Reads the profile named in `opts` and resolves the server it points at. */
export async function loadProfile(opts: LoadOptions): Promise<ProfileResult> {
  if (!existsSync(opts.profile)) return { ok: false, error: `--profile ${opts.profile}: no such file` };
  let options: Options;
  const warnings: string[] = [];
  try {
    const built = buildOptions(parseConfigFile(opts.profile));
    options = built.options;
    for (const w of built.warnings) warnings.push(`${w.file}:${w.line}: ${w.message}`);
  } catch (error) {
    return { ok: false, error: `--profile ${opts.profile}: ${(error as Error).message}` };
  }
  if (options.mode === 'server' || options.tlsServer)
    return {
      ok: false,
      error: `--profile ${opts.profile}: this is a server config; give a client profile (client or tls-client, remote, ca/cert/key)`,
    };
  const connection = options.connections[0];
  const host = opts.remote ?? connection?.remote;
  if (host === undefined) return { ok: false, error: `--profile ${opts.profile}: no 'remote' line; add one or give --remote HOST` };
  const fields = connection ?? options;
  const proto = connection?.proto ?? options.proto;
  if (options.compression.framing !== 'none')
    return {
      ok: false,
      error: `--profile ${opts.profile}: the load generator's clients send no compression framing; remove comp-lzo / compress`,
    };
  if (proto.transport === 'tcp-server')
    return {
      ok: false,
      error: `--profile ${opts.profile}: proto tcp-server is a server's; a client profile says proto tcp-client (or udp)`,
    };
  const port = opts.port ?? connection?.remotePort ?? options.remotePort;

  try {
    const tls = loadTlsMaterial(options);
    const wrap = loadWrap(options, fields, 'client');
    const creds = credentials(options, opts.authUserPass);
    if (typeof creds === 'string') return { ok: false, error: creds };
    const dataCiphers: string[] = [];
    for (const c of options.dataCiphers) {
      const name = normalizeCipherName(c);
      if (name !== null && dataCipherName(name) !== null && cipherUnavailable(dataCipherName(name)!) === null) dataCiphers.push(name);
      else warnings.push(`data-ciphers: '${c}' is not an AEAD cipher shardvpn speaks; left out`);
    }
    if (dataCiphers.length === 0)
      return {
        ok: false,
        error: `--profile ${opts.profile}: data-ciphers has no cipher shardvpn runs (AES-256-GCM, AES-128-GCM, CHACHA20-POLY1305, AES-128/192/256-CBC)`,
      };
    const family = proto.family === 'ipv6' ? 6 : proto.family === 'ipv4' ? 4 : 0;
    let resolved: { address: string; family: number };
    try {
      resolved = await lookup(host, { family });
    } catch (error) {
      return {
        ok: false,
        error: `remote ${host}: cannot resolve it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
      };
    }
    const fam: 4 | 6 = resolved.family === 6 ? 6 : 4;
    const profile: LoadProfile = {
      tls,
      wrap,
      ...peerChecks(options),
      username: creds?.username ?? null,
      password: creds?.password ?? null,
      dataCiphers,
      dataCiphersFallback: options.dataCiphersFallback ?? null,
      auth: authDigest(options),
      address: resolved.address,
      family: fam,
      transport: proto.transport === 'udp' ? 'udp' : 'tcp',
      port,
      // No `cipher`: the simulated clients leave the choice to NCP (IV_CIPHERS).
      occOptions: occOptionsString({
        role: 'tls-client',
        transport: proto.transport === 'udp' ? 'udp' : 'tcp-client',
        tunMtu: fields.tunMtu,
        cipher: null,
        auth: null,
        keysize: 256,
      }),
      peerInfo: buildPeerInfo({
        version: '2.6.14',
        platform: 'linux',
        ncp: 2,
        ciphers: dataCiphers,
        proto: IV_PROTO_DATA_V2 | IV_PROTO_TLS_KEY_EXPORT,
        extra: [['IV_GUI_VER', `shardvpn-load_${VERSION}`]],
      }),
      explicitExitNotify: fields.explicitExitNotify,
      handWindowMs: options.handWindow * 1000,
      tlsTimeoutMs: options.tlsTimeout * 1000,
    };
    return { ok: true, profile, warnings };
  } catch (error) {
    if (error instanceof ConfigError) return { ok: false, error: error.message };
    return { ok: false, error: `--profile ${opts.profile}: ${(error as Error).message}` };
  }
}
