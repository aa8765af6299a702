// One key_state (ssl_common.h): a key_id with its own reliability windows, TLS session, key
// method 2 exchange and, once done, data channel keys. ControlSession drives it.

import { randomBytes } from 'node:crypto';
import { TlsStreamSplitter } from '../protocol/fragment-tls';
import type { KeyMethod2Message, KeySource } from '../protocol/key-method2';
import { PRE_MASTER_SIZE, RANDOM_SIZE } from '../protocol/key-method2';
import { ReliableRecv, ReliableSend } from '../protocol/reliable';
import type { TlsChannel } from './tls-channel';

/**
 * pre-start: our reset / soft reset (message id 0) is not acked yet (S_PRE_START).
 * start: TLS runs (S_START .. S_GOT_KEY). active: both key method 2 messages exchanged
 * (S_ACTIVE). keys: data keys handed out (S_GENERATED_KEYS). failed: dead, kept for nothing.
 */
export type KeyStateName = 'pre-start' | 'start' | 'active' | 'keys' | 'failed';

export class KeyState {
  state: KeyStateName = 'pre-start';
  readonly send: ReliableSend;
  readonly recv: ReliableRecv;
  readonly splitter = new TlsStreamSplitter();
  tls: TlsChannel | null = null;
  /** The TLS session was let go (releaseTls): control payload for this key is dropped. */
  tlsReleased = false;
  /** Ciphertext that arrived before the TLS object existed. */
  readonly early: Buffer[] = [];
  /** Peer certificate passed verifyPeer. */
  verified = false;
  readonly ownKeySource: KeySource;
  peerKm2: KeyMethod2Message | null = null;
  /** Plaintext not parsed yet (key method 2 blob, then NUL-terminated messages). */
  plain: Buffer = Buffer.alloc(0);
  /** Control messages written before the key was active. */
  readonly pendingMessages: string[] = [];
  /** When keys were generated (reneg-sec counts from here). */
  established = 0;
  /** When this key gives up if it has no keys by then (hand-window). */
  readonly handDeadline: number;
  /** Lame duck: retire at this time. */
  mustDie: number | null = null;
  /** reneg-sec for this key (server: with jitter). */
  renegAfterMs = 0;
  /**
   * Our key method 2 message has been written to TLS (true), and once all its bytes are in
   * messages: the packet-id after the last of them. The peer has the data keys once those are
   * acknowledged.
   */
  km2Written = false;
  km2EndPacketId: number | null = null;
  /** 'key-active' was emitted. */
  activeAnnounced = false;

  constructor(
    readonly keyId: number,
    role: 'client' | 'server',
    now: number,
    handWindowMs: number,
    tlsTimeoutMs: number,
    firstPacketId = 0,
    retransmit = true,
  ) {
    this.send = new ReliableSend({ initialTimeoutMs: tlsTimeoutMs, firstPacketId, retransmit });
    this.recv = new ReliableRecv({ firstPacketId });
    this.handDeadline = now + handWindowMs;
    this.ownKeySource =
      role === 'client'
        ? { preMaster: randomBytes(PRE_MASTER_SIZE), random1: randomBytes(RANDOM_SIZE), random2: randomBytes(RANDOM_SIZE) }
        : { random1: randomBytes(RANDOM_SIZE), random2: randomBytes(RANDOM_SIZE) };
  }

  /**
   * A lame duck whose successor is active carries only data-channel traffic until it expires
   * (tran-window, an hour by default): its TLS session, an SSL object with its buffers and a
   * node TLSSocket, is let go then rather than at expiry. OpenVPN keeps it; without this every
   * client that has renegotiated holds two.
   */
  releaseTls(): void {
    this.tls?.destroy();
    this.tls = null;
    this.tlsReleased = true;
    this.splitter.clear();
    this.early.length = 0;
    this.plain = Buffer.alloc(0);
  }

  /** Stop TLS and drop buffered bytes. */
  dispose(): void {
    this.tls?.destroy();
    this.tls = null;
    this.splitter.clear();
    this.early.length = 0;
    // keyBlock belongs to the host once announced ('keys'); it wipes it.
  }
}

/** key_id after `k`: 1..7, wrapping 7 -> 1 (0 only for a hard reset). */
export function nextKeyId(k: number): number {
  return k >= 7 ? 1 : k + 1;
}
