// What every shard worker starts with (ShardConfig less the per-shard parts the pool fills in):
// the TLS material and control-channel wrap, the push, the data-ciphers and the timers, from
// the options of this run.
import { blockIpv6Source } from '../../shared/protocol/block-ipv6';
import { randomBytes } from 'node:crypto';

import type { Options } from '../../shared/config';
import type { TunDevice } from '../../shared/native';
import { occCipherFields } from '../../shared/protocol/data-format';
import { occOptionsString } from '../../shared/protocol/occ';
import type { WrapConfig } from '../../shared/session/control-wrap';
import type { TlsMaterial } from '../../shared/session/types';
import { compressionFraming, type DataChannelSettings } from '../run-checks';
import type { ShardTemplate } from './shard-pool';
import { peerChecks } from '../../shared/session/peer-verify';
import { parseMaterial } from '../../shared/config/material';
import { ephemeralAuthTokenKey, parseAuthTokenSecret } from '../../shared/protocol/auth-token';

/**
 * The tokens' HMAC key: auth-gen-token-secret's, else the running template's (a hitless reload
 * keeps it, so tokens outlive the reload) or a new one (a start or a restart, as OpenVPN's).
 */
function authTokenKey(options: Options, running: Uint8Array | undefined): Uint8Array {
  if (options.authGenTokenSecret !== undefined)
    return parseMaterial(options.authGenTokenSecret, 'auth-gen-token-secret', parseAuthTokenSecret);
  return running ?? ephemeralAuthTokenKey();
}

export interface TemplateInputs {
  readonly tun: TunDevice;
  readonly tls: TlsMaterial;
  readonly wrap: WrapConfig;
  readonly data: DataChannelSettings;
  /** A hitless reload: the running auth-gen-token key without a secret file. */
  readonly authTokenKey?: Uint8Array;
}

export function buildShardTemplate(options: Options, { tun, tls, wrap, data, authTokenKey: runningKey }: TemplateInputs): ShardTemplate {
  return {
    // One key for the whole run, so a client's HMAC cookie checks out on whichever shard it lands.
    cookieKey: randomBytes(32),
    tunFd: tun.fd,
    tunName: tun.name,
    clientToClient: options.clientToClient,
    tls,
    wrap,
    ...peerChecks(options),
    verifyClientCert: options.verifyClientCert,
    push: options.push,
    occOptions: occOptionsString({
      role: 'tls-server',
      transport: 'udp',
      tunMtu: options.tunMtu,
      ...occCipherFields(data.ciphers[0] ?? data.fallback ?? 'AES-256-GCM', data.auth),
    }),
    dataCiphers: data.ciphers,
    ...(data.fallback !== null ? { dataCiphersFallback: data.fallback } : {}),
    auth: data.auth,
    transport: options.proto.transport === 'udp' ? 'udp' : 'tcp',
    tcpNodelay: options.tcpNodelay,
    udpOffload: options.udpOffload,
    udpCoalesceUsecs: options.udpCoalesceUsecs,
    compressFraming: compressionFraming(options),
    handWindowS: options.handWindow,
    tlsTimeoutS: options.tlsTimeout,
    renegSec: options.renegSec,
    ...(options.renegSecMin !== undefined ? { renegSecMin: options.renegSecMin } : {}),
    renegBytes: Math.max(0, options.renegBytes),
    renegPkts: options.renegPkts,
    tranWindowS: options.tranWindow,
    pingS: options.ping,
    pingRestartS: options.pingRecTimeout,
    replayWindow: options.replayWindow,
    replayTime: options.replayTime,
    explicitExitNotify: options.explicitExitNotify,
    maxClientsPerShard: options.maxClients,
    userPassVerify: options.authUserPassVerify !== undefined,
    userPassChecked: options.authUserPassVerify !== undefined || options.managementClientAuth,
    authUserPassOptional: options.authUserPassOptional,
    authGenToken: options.authGenToken !== undefined ? { ...options.authGenToken, key: authTokenKey(options, runningKey) } : null,
    inactive: options.inactive ?? { seconds: 0, bytes: 0 },
    sessionTimeoutS: options.sessionTimeout ?? 0,
    blockIpv6: options.blockIpv6 ? { source: blockIpv6Source(options.ifconfigIpv6?.remote), tunMtu: options.tunMtu } : null,
    mssfix: options.mssfix,
    verb: options.verb,
  };
}
