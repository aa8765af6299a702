// The client's data channel from the server's PUSH_REPLY (push.c do_up / ssl_ncp.c
// check_pull_client_ncp, tls_session_update_crypto_params): the cipher the server chose checked
// against our data-ciphers, the peer-id, TLS-EKM or the PRF, and a DataChannelKey per key block
// the session derives. Shared by the client (src/main/client) and the load generator's simulated
// clients, which differ only in what they do with a failure.
import { DataChannelKey } from '../protocol/data-channel';
import type { DataCipherName } from '../protocol/data-format';
import { checkClientCipher, dataCipherName, normalizeCipherName, type NcpClientResult } from '../protocol/ncp';
import type { PushOptions } from '../protocol/push-options';
import type { KeyDerivationMethod } from './types';

/** What the client's data channel runs with after a PUSH_REPLY. */
export interface PushedDataChannel {
  readonly cipher: DataCipherName;
  /** The HMAC digest of a CBC cipher (`auth`); null for `auth none` or AEAD. */
  readonly auth: string | null;
  /** Peer-id to send in P_DATA_V2; null sends P_DATA_V1. */
  readonly peerId: number | null;
  /** What the session derives key blocks with (`key-derivation tls-ekm` or protocol-flags). */
  readonly keyDerivation: KeyDerivationMethod;
  /** protocol-flags cc-exit: explicit-exit-notify goes as the EXIT control message. */
  readonly ccExit: boolean;
}

/** The client's own side of the negotiation. */
export interface ClientCipherSettings {
  /** --data-ciphers. */
  readonly dataCiphers: readonly string[];
  /** `cipher` of the server's key method 2 options string, when the caller keeps it. */
  readonly occCipher: string | null;
  /** --data-ciphers-fallback. */
  readonly fallback: string | null;
  /** --auth: the CBC ciphers' HMAC digest (null: none). */
  readonly auth: string | null;
}

type NcpClientFailure = Extract<NcpClientResult, { ok: false }>['reason'];

export type PushNegotiation =
  | { readonly ok: true; readonly channel: PushedDataChannel }
  /** `unsupported-cipher`: allowed by the config, but not one this data channel runs. */
  | { readonly ok: false; readonly reason: NcpClientFailure | 'unsupported-cipher'; readonly detail: string };

/** The data channel a complete PUSH_REPLY sets up, or why it cannot. */
export function negotiatePushedDataChannel(pushed: PushOptions, local: ClientCipherSettings): PushNegotiation {
  const choice = checkClientCipher({
    dataCiphers: local.dataCiphers.map((name) => normalizeCipherName(name) ?? name),
    pushedCipher: pushed.cipher ?? null,
    occCipher: local.occCipher,
    fallback: local.fallback,
  });
  if (!choice.ok) return { ok: false, reason: choice.reason, detail: choice.detail };
  const cipher = dataCipherName(choice.cipher);
  if (cipher === null) return { ok: false, reason: 'unsupported-cipher', detail: `cipher '${choice.cipher}' is not supported` };
  const flags = pushed.protocolFlags ?? [];
  return {
    ok: true,
    channel: {
      cipher,
      auth: local.auth,
      peerId: pushed.peerId ?? null,
      keyDerivation: pushed.keyDerivation === 'tls-ekm' || flags.includes('tls-ekm') ? 'tls-ekm' : 'prf',
      ccExit: flags.includes('cc-exit'),
    },
  };
}

/** --replay-window n t; absent: the data channel's defaults. */
export interface ReplaySettings {
  readonly replayWindow?: number;
  readonly replayWindowTimeS?: number;
}

export type ClientKeyResult = { readonly ok: true; readonly key: DataChannelKey } | { readonly ok: false; readonly detail: string };

/** The client's DataChannelKey for key_id `keyId` from a session key block, which is wiped either way. */
export function clientDataChannelKey(
  block: Buffer,
  keyId: number,
  channel: PushedDataChannel,
  replay: ReplaySettings = {},
): ClientKeyResult {
  try {
    return {
      ok: true,
      key: DataChannelKey.fromKeyBlock(block, 'client', channel.cipher, keyId, { peerId: channel.peerId, auth: channel.auth, ...replay }),
    };
  } catch (error) {
    return { ok: false, detail: (error as Error).message };
  } finally {
    block.fill(0);
  }
}
