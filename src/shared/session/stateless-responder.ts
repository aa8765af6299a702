// The server side of the 2.6 stateless UDP handshake (wire doc 3; ssl_pkt.c
// tls_pre_decrypt_lite, tls_reset_standalone, check_session_hmac_and_pkt_id; mudp.c
// do_pre_decrypt_check). For datagrams from an address with no session: answers a client's
// hard reset with a HARD_RESET_SERVER_V2 whose session id is an HMAC cookie, keeping nothing,
// and tells the host to create a ControlSession only when the client echoes a valid cookie.

import {
  P_ACK_V1,
  P_CONTROL_HARD_RESET_CLIENT_V2,
  P_CONTROL_HARD_RESET_CLIENT_V3,
  P_CONTROL_HARD_RESET_SERVER_V2,
  P_CONTROL_V1,
  P_CONTROL_WKC_V1,
} from '../protocol/opcodes';
import {
  CONTROL_HEADER_SIZE,
  EARLY_NEG_FLAG_RESEND_WKC,
  buildControlPacket,
  buildEarlyNegFlags,
  isSessionIdDefined,
  parseControlBody,
  parseControlHeader,
} from '../protocol/packet';
import { EARLY_NEG_MASK, EARLY_NEG_START } from '../protocol/packet-id';
import { SessionIdHmac, checkCookieEcho } from '../protocol/session-cookie';
import { tlsCryptV2ExtractClientKey } from '../protocol/tls-crypt';
import { ControlWrap, type WrapConfig } from './control-wrap';
import type { StatelessStart } from './types';

/**
 * What a dropped first packet was: `malformed` (not a first packet a client sends), `bad_hmac`
 * (failed the tls-auth / tls-crypt / tls-crypt-v2 check), `cookie` (a well-formed echo whose
 * cookie is wrong or too old), `refused` (well formed and authentic, but not accepted here).
 */
export type ResponderDropKind = 'malformed' | 'bad_hmac' | 'cookie' | 'refused';

export type ResponderResult =
  /** Ignore the datagram: count it by `kind`, log `reason`. */
  | { readonly action: 'drop'; readonly kind: ResponderDropKind; readonly reason: string }
  /** Send `wire` back to the sender; nothing was allocated for it. */
  | { readonly action: 'reply'; readonly wire: Buffer }
  /**
   * Create a server ControlSession for this address with `stateless` (null: the old stateful
   * path, e.g. a pre-2.6 tls-crypt-v2 client), call start(), then hand it this same datagram
   * with receivePacket().
   */
  | { readonly action: 'create'; readonly stateless: StatelessStart | null };

function drop(kind: ResponderDropKind, reason: string): ResponderResult {
  return { action: 'drop', kind, reason };
}

export interface StatelessResponderOptions {
  readonly wrap: WrapConfig;
  /** Shared by all shards of a server so any shard can check a cookie; random if absent. */
  readonly cookieKey?: Buffer;
  /** --hand-window seconds (cookie lifetime), default 60. */
  readonly handWindowS?: number;
  /** --tls-crypt-v2 ... force-cookie: refuse clients that cannot do early negotiation. */
  readonly forceCookie?: boolean;
}

export class StatelessResponder {
  private readonly hmac: SessionIdHmac;
  /**
   * Checks the wrap of every first packet but a tls-crypt-v2 one (whose key is per client):
   * unwrap without replay state keeps nothing, so one serves all, and a flood costs no
   * allocation per packet here.
   */
  private readonly sharedWrap: ControlWrap;

  constructor(private readonly opts: StatelessResponderOptions) {
    this.hmac = new SessionIdHmac(opts.cookieKey, opts.handWindowS ?? 60);
    this.sharedWrap = new ControlWrap(opts.wrap, 'server');
  }

  /** A datagram from `address`:`port` that matched no session; `now` in ms. */
  handle(wire: Buffer, address: string, port: number, now: number): ResponderResult {
    const h = parseControlHeader(wire);
    if (!h.ok) return drop('malformed', h.reason);
    const { opcode, keyId, sessionId } = h.value;
    if (keyId !== 0) return drop('malformed', 'key_id != 0 from an unknown peer');
    if (!isSessionIdDefined(sessionId)) return drop('malformed', 'zero session id');
    const known =
      opcode === P_CONTROL_HARD_RESET_CLIENT_V2 ||
      opcode === P_CONTROL_HARD_RESET_CLIENT_V3 ||
      opcode === P_CONTROL_V1 ||
      opcode === P_CONTROL_WKC_V1 ||
      opcode === P_ACK_V1;
    if (!known) return drop('malformed', `opcode ${opcode} from an unknown peer`);
    const v2server = this.opts.wrap.mode === 'tls-crypt-v2-server';
    if (opcode === P_CONTROL_HARD_RESET_CLIENT_V3 && !v2server) return drop('malformed', 'tls-crypt-v2 reset without tls-crypt-v2');
    if (opcode === P_CONTROL_HARD_RESET_CLIENT_V2 && v2server) return drop('malformed', 'tls-crypt-v2 server needs a V3 reset');

    // Authenticate without replay state (CO_IGNORE_PACKET_ID); a tls-crypt-v2 server first
    // needs the client's key from the WKc.
    let clientKey: Buffer | undefined;
    if (v2server && (opcode === P_CONTROL_HARD_RESET_CLIENT_V3 || opcode === P_CONTROL_WKC_V1)) {
      const x = tlsCryptV2ExtractClientKey((this.opts.wrap as { serverKey: Buffer }).serverKey, wire);
      // A WKc whose tag does not verify is forged; one that is missing or cut wrong is malformed.
      if (!x.ok) return drop(x.reason === 'bad-tag' || x.reason === 'too-short' ? 'bad_hmac' : 'malformed', `WKc: ${x.reason}`);
      clientKey = x.key2;
    } else if (v2server) {
      return drop('malformed', 'tls-crypt-v2: no WKc from an unknown peer');
    }
    const wrap = clientKey !== undefined ? new ControlWrap(this.opts.wrap, 'server', { clientKey }) : this.sharedWrap;
    const u = wrap.unwrap(wire, now, false);
    if (!u.ok) return drop(u.reason === 'truncated' ? 'malformed' : 'bad_hmac', u.reason);
    const plain = u.packet;

    if (opcode === P_CONTROL_HARD_RESET_CLIENT_V2 || opcode === P_CONTROL_HARD_RESET_CLIENT_V3) {
      const b = parseControlBody(opcode, plain.subarray(CONTROL_HEADER_SIZE));
      if (!b.ok) return drop('malformed', b.reason);
      if (b.value.kind !== 'message' || b.value.messageId !== 0) return drop('malformed', 'hard reset with message id != 0');
      let tlv: Buffer = Buffer.alloc(0);
      if (opcode === P_CONTROL_HARD_RESET_CLIENT_V3) {
        // Only a client whose replay id starts at EARLY_NEG_START understands TLVs and the WKC_V1 echo.
        if ((u.replayId & EARLY_NEG_MASK) >>> 0 !== EARLY_NEG_START) {
          if (this.opts.forceCookie === true) return drop('refused', 'tls-crypt-v2 client without early negotiation (force-cookie)');
          return { action: 'create', stateless: null };
        }
        tlv = buildEarlyNegFlags(EARLY_NEG_FLAG_RESEND_WKC);
      }
      const cookie = this.hmac.calculate(address, port, sessionId, now);
      const reply = buildControlPacket({
        kind: 'message',
        opcode: P_CONTROL_HARD_RESET_SERVER_V2,
        keyId: 0,
        sessionId: cookie,
        acks: [0],
        remoteSessionId: sessionId,
        messageId: 0,
        payload: tlv,
      });
      // A fresh wrap per reply: replay id 1, timestamp now (tls_reset_standalone); no wrap at all
      // keeps no replay state.
      const out =
        this.opts.wrap.mode === 'none'
          ? reply
          : new ControlWrap(this.opts.wrap, 'server', clientKey !== undefined ? { clientKey } : {}).wrap(reply, now);
      if (out === null) return drop('refused', 'cannot wrap reply');
      return { action: 'reply', wire: out };
    }

    const echo = checkCookieEcho(this.hmac, plain, opcode === P_ACK_V1, address, port, now);
    if (!echo.ok) return drop(echo.reason === 'bad-cookie' ? 'cookie' : 'malformed', `cookie: ${echo.reason}`);
    return {
      action: 'create',
      stateless: {
        ownSessionId: echo.serverSid,
        peerSessionId: echo.clientSid,
        ...(clientKey !== undefined ? { tlsCryptV2ClientKey: clientKey } : {}),
      },
    };
  }
}
