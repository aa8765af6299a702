// What a shard's client is set up with: the server side of its control session, and, once the
// main thread accepted it, the data cipher (NCP) and the PUSH_REPLY (push.c send_push_reply).
import type { DataCipherName } from '../../shared/protocol/data-format';
import { IV_PROTO_DATA_V2, peerInfoProto } from '../../shared/protocol/key-method2';
import { dataCipherName, occStringCipher, selectServerCipher } from '../../shared/protocol/ncp';
import { buildPushReply, pushedProtocolOptions, withoutRemoved } from '../../shared/protocol/push-options';
import type { ControlSessionConfig, StatelessStart } from '../../shared/session/types';
import type { ClientAssignment, ShardConfig } from '../../shared/shard-protocol';
import { peerChecks } from '../../shared/session/peer-verify';

export function sessionConfig(config: ShardConfig, family: 4 | 6, stateless: StatelessStart | null): ControlSessionConfig {
  return {
    role: 'server',
    tls: config.tls,
    wrap: config.wrap,
    keyMethod2: { options: config.occOptions, peerInfo: null },
    ...peerChecks(config),
    verifyClientCert: config.verifyClientCert,
    timing: {
      handWindowMs: config.handWindowS * 1000,
      tlsTimeoutMs: config.tlsTimeoutS * 1000,
      renegMs: config.renegSec * 1000,
      ...(config.renegSecMin !== undefined ? { renegMinMs: config.renegSecMin * 1000 } : {}),
      tranWindowMs: config.tranWindowS * 1000,
    },
    ipv6: family === 6,
    ...(stateless !== null ? { stateless } : {}),
    ...(config.transport === 'tcp' ? { stream: true } : {}),
  };
}

/** What the client told us in key method 2, and who it is to us. */
export interface PushInput {
  peerId: number;
  peerInfo: string | null;
  /** Its OCC options string (a 2.3 client names its cipher there). */
  occOptions: string;
  /** --auth-gen-token: the session token it is pushed (null: none). */
  authToken?: string | null;
}

export type PushPlan =
  | { ok: true; cipher: DataCipherName; messages: string[] }
  /** `detail` for our log, `reason` for the client's AUTH_FAILED. */
  | { ok: false; detail: string; reason: string };

/** The cipher and PUSH_REPLY messages for an accepted client. */
export function planPush(config: ShardConfig, client: PushInput, assignment: ClientAssignment, globalPush: readonly string[]): PushPlan {
  const choice = selectServerCipher({
    dataCiphers: config.dataCiphers,
    peerInfo: client.peerInfo,
    occCipher: occStringCipher(client.occOptions),
    ...(config.dataCiphersFallback !== undefined ? { fallback: config.dataCiphersFallback } : {}),
  });
  const cipher = choice.ok ? dataCipherName(choice.cipher) : null;
  if (!choice.ok || cipher === null) {
    return {
      ok: false,
      detail: `cipher negotiation failed: ${choice.ok ? choice.cipher : choice.detail}`,
      reason: choice.ok ? 'Data channel cipher negotiation failed (unsupported cipher)' : choice.clientReason,
    };
  }
  const ivProto = peerInfoProto(client.peerInfo);
  const push = buildPushReply({
    ...assignment.push,
    extra: [...(assignment.pushReset ? [] : withoutRemoved(globalPush, assignment.pushRemove)), ...(assignment.push.extra ?? [])],
    ...((ivProto & IV_PROTO_DATA_V2) !== 0 ? { peerId: client.peerId } : {}),
    ...(choice.push ? { cipher } : {}),
    ...(client.authToken !== undefined && client.authToken !== null ? { authToken: client.authToken } : {}),
    ...pushedProtocolOptions(ivProto, { tlsEkm: true, dynTlsCrypt: false }),
  });
  if (!push.ok) return { ok: false, detail: `cannot build PUSH_REPLY: ${push.detail}`, reason: 'push reply too long' };
  return { ok: true, cipher, messages: push.messages };
}
