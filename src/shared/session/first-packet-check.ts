// The checks a server makes on a datagram from an address it has no session for, on the
// receive memory itself, before it copies, allocates or computes an HMAC (the cheap part of
// ssl_pkt.c tls_pre_decrypt_lite): an opcode a first packet may have, key_id 0, a session id,
// and the shortest length the control-channel wrap allows; with tls-auth or tls-crypt, the HMAC
// too, and with tls-crypt-v2 the WKc's tag under the server key (in the addon, through persistent
// OpenSSL contexts). A flood of garbage, truncated or forged datagrams
// then costs a few byte reads (or one HMAC) each and leaves nothing for the garbage collector.
import {
  P_ACK_V1,
  P_CONTROL_HARD_RESET_CLIENT_V2,
  P_CONTROL_HARD_RESET_CLIENT_V3,
  P_CONTROL_V1,
  P_CONTROL_WKC_V1,
  P_KEY_ID_MASK,
  P_OPCODE_SHIFT,
  SID_SIZE,
} from '../protocol/opcodes';
import { CONTROL_HEADER_SIZE, TLS_CRYPT_V2_MAX_WKC_LEN } from '../protocol/packet';
import { tlsAuthKeys, tlsAuthOverhead, tlsAuthVerifier } from '../protocol/tls-auth';
import { type TlsAuthHmac, TlsCryptCheck } from '../native';
import { TLS_CRYPT_OVERHEAD, TLS_CRYPT_TAG_SIZE, tlsCryptKeys, tlsCryptV2WkcCheck } from '../protocol/tls-crypt';
import type { WrapConfig } from './control-wrap';

/** ack count (1) + message packet-id (4): the shortest body of a message opcode. */
const MESSAGE_BODY_MIN = 5;
/** ack count (1): the shortest body of a P_ACK_V1. */
const ACK_BODY_MIN = 1;

/**
 * Why a first packet was refused before any work; null: it goes on to the responder. All but
 * `bad_hmac` mean malformed; `bad_hmac`: a tls-auth or tls-crypt packet whose HMAC does not verify.
 */
export type FirstPacketReject = 'short' | 'opcode' | 'key_id' | 'session_id' | 'bad_hmac';

export class FirstPacketCheck {
  /** Bytes the wrap adds between the header and the body. */
  private readonly wrapOverhead: number;
  /** tls-auth or tls-crypt (one static key): the HMAC checked in place, before the responder copies anything. */
  private readonly hmac: TlsAuthHmac | TlsCryptCheck | null = null;
  /** tls-crypt-v2 server: the WKc a first packet ends in, checked in place with the server key. */
  private readonly wkc: TlsCryptCheck | null = null;

  constructor(wrap: WrapConfig) {
    switch (wrap.mode) {
      case 'none':
        this.wrapOverhead = 0;
        break;
      case 'tls-auth': {
        const keys = tlsAuthKeys(wrap.key, wrap.direction, wrap.digest ?? 'SHA1');
        this.wrapOverhead = tlsAuthOverhead(keys);
        this.hmac = tlsAuthVerifier(keys);
        break;
      }
      case 'tls-crypt': {
        this.wrapOverhead = TLS_CRYPT_OVERHEAD;
        const keys = tlsCryptKeys(wrap.key, 'server');
        this.hmac = new TlsCryptCheck(keys.decryptCipher, keys.decryptHmac);
        break;
      }
      case 'tls-crypt-v2-server':
        // Each client's key comes out of its WKc, which the responder unwraps once the WKc's
        // own tag (under the server key) has verified here.
        this.wrapOverhead = TLS_CRYPT_OVERHEAD;
        this.wkc = tlsCryptV2WkcCheck(wrap.serverKey);
        break;
      default:
        this.wrapOverhead = TLS_CRYPT_OVERHEAD;
    }
  }

  /** Checks memory[at, at + length), reading bytes only. */
  check(memory: Uint8Array, at: number, length: number): FirstPacketReject | null {
    if (length < CONTROL_HEADER_SIZE) return 'short';
    const first = memory[at]!;
    const opcode = first >> P_OPCODE_SHIFT;
    if (
      opcode !== P_CONTROL_HARD_RESET_CLIENT_V2 &&
      opcode !== P_CONTROL_HARD_RESET_CLIENT_V3 &&
      opcode !== P_CONTROL_V1 &&
      opcode !== P_CONTROL_WKC_V1 &&
      opcode !== P_ACK_V1
    )
      return 'opcode';
    if ((first & P_KEY_ID_MASK) !== 0) return 'key_id';
    const body = opcode === P_ACK_V1 ? ACK_BODY_MIN : MESSAGE_BODY_MIN;
    if (length < CONTROL_HEADER_SIZE + this.wrapOverhead + body) return 'short';
    let sid = 0;
    for (let k = 1; k <= SID_SIZE; k++) sid |= memory[at + k]!;
    if (sid === 0) return 'session_id';
    if (this.wkc !== null) {
      // A tls-crypt-v2 server takes only packets that carry a WKc from an unknown peer.
      if (opcode !== P_CONTROL_HARD_RESET_CLIENT_V3 && opcode !== P_CONTROL_WKC_V1) return 'opcode';
      // The WKc's length is the packet's last two bytes (tls_crypt_v2_extract_client_key): one
      // that cannot be is malformed; a WKc of a possible length must verify.
      const wkcLength = (memory[at + length - 2]! << 8) | memory[at + length - 1]!;
      if (wkcLength < TLS_CRYPT_TAG_SIZE + 2 || wkcLength > TLS_CRYPT_V2_MAX_WKC_LEN || wkcLength > length - 1) return 'short';
      if (!this.wkc.verifyWkc(memory, at, length)) return 'bad_hmac';
    } else if (opcode === P_CONTROL_HARD_RESET_CLIENT_V3) {
      return 'opcode';
    }
    if (this.hmac !== null && !this.hmac.verify(memory, at, length)) return 'bad_hmac';
    return null;
  }
}
