// The data-channel ciphers of the addon: AEAD and CBC + HMAC keys that seal and open batches of
// packets in place with one persistent OpenSSL context per direction.
import {
  addon,
  type NativeAeadKey,
  type NativeCbcHmacKey,
  type NativeTlsAuthHmac,
  type NativeTlsCryptCheck,
  type NativeTlsCryptDirection,
} from './addon';
import type { PacketBatch } from './batch';

export type AeadCipherName = 'AES-128-GCM' | 'AES-256-GCM' | 'CHACHA20-POLY1305';

/** Where the parts of an AEAD packet sit, relative to each packet's start. */
export interface AeadLayout {
  aadOffset: number;
  aadLength: number;
  /** The per-packet nonce field; the rest of the 12-byte nonce is the implicit IV. */
  nonceOffset: number;
  nonceLength: number;
  tagOffset: number;
  /** The payload runs from here to the end of the packet. */
  payloadOffset: number;
}

export function aeadLayout(layout: AeadLayout): Uint32Array {
  return Uint32Array.of(layout.aadOffset, layout.aadLength, layout.nonceOffset, layout.nonceLength, layout.tagOffset, layout.payloadOffset);
}

const EMPTY = new Uint8Array(0);

/**
 * How a key seals and opens: 'evp' is OpenSSL's EVP interface; 'openssl-cores' is ChaCha20-Poly1305
 * composed from OpenSSL's ChaCha20 and Poly1305 cores (src/native/chacha-poly.h), where the running
 * Node exports them.
 */
export type AeadImplementation = 'evp' | 'openssl-cores';

/** One data-channel key: a persistent OpenSSL context per direction; wiped on destroy or GC. */
export class AeadKey {
  private readonly handle: NativeAeadKey;

  constructor(
    cipher: AeadCipherName,
    seal: { key: Uint8Array; implicitIv: Uint8Array } | null,
    open: { key: Uint8Array; implicitIv: Uint8Array } | null,
    /** preferEvp: ChaCha20-Poly1305 on EVP even where the cores are available (tests, benches). */
    options: { preferEvp?: boolean } = {},
  ) {
    this.handle = new addon.AeadKey(
      cipher,
      seal?.key ?? EMPTY,
      seal?.implicitIv ?? EMPTY,
      open?.key ?? EMPTY,
      open?.implicitIv ?? EMPTY,
      options.preferEvp === true,
    );
  }

  get cipher(): string {
    return this.handle.cipher;
  }
  get implementation(): AeadImplementation {
    return this.handle.implementation;
  }
  /** Encrypts `count` packets in place, writing each tag. `layout` from aeadLayout(). */
  seal(batch: PacketBatch, count: number, layout: Uint32Array): void {
    this.handle.seal(batch.memory, batch.offsets, batch.lengths, count, layout);
  }
  /** Authenticates and decrypts in place; results[i] = 1 authentic, 0 not. Returns failures. */
  open(batch: PacketBatch, count: number, layout: Uint32Array, results: Uint8Array): number {
    return this.handle.open(batch.memory, batch.offsets, batch.lengths, count, layout, results);
  }
  /** Wipes the key now rather than at garbage collection. */
  destroy(): void {
    this.handle.destroy();
  }
}

export type CbcCipherName = 'AES-128-CBC' | 'AES-192-CBC' | 'AES-256-CBC' | 'BF-CBC';

/**
 * One CBC + HMAC data-channel key (OpenVPN's non-AEAD data channel): a persistent cipher and
 * HMAC context per direction; wiped on destroy or GC. `digest` null is `auth none`.
 */
export class CbcHmacKey {
  private readonly handle: NativeCbcHmacKey;
  readonly ivLength: number;
  readonly blockSize: number;
  /** HMAC bytes in each packet (0 with `auth none`). */
  readonly macLength: number;

  constructor(
    cipher: CbcCipherName,
    digest: string | null,
    seal: { key: Uint8Array; hmacKey: Uint8Array } | null,
    open: { key: Uint8Array; hmacKey: Uint8Array } | null,
  ) {
    this.handle = new addon.CbcHmacKey(
      cipher,
      digest ?? '',
      seal?.key ?? EMPTY,
      seal?.hmacKey ?? EMPTY,
      open?.key ?? EMPTY,
      open?.hmacKey ?? EMPTY,
    );
    [this.ivLength, this.blockSize, this.macLength] = this.handle.sizes();
  }

  /**
   * Pads, encrypts and authenticates `count` packets in place. Packet i is [header][HMAC][IV]
   * [plaintext] with lengths[i] covering all of it; lengths[i] grows by the padding, which must
   * fit in batch.capacity.
   */
  seal(batch: PacketBatch, count: number, headerLength: number): void {
    this.handle.seal(batch.memory, batch.offsets, batch.lengths, count, headerLength, batch.capacity);
  }
  /** Checks each HMAC, decrypts in place and strips the padding (lengths[i] shrinks); results[i] = 1 when authentic. */
  open(batch: PacketBatch, count: number, headerLength: number, results: Uint8Array): number {
    return this.handle.open(batch.memory, batch.offsets, batch.lengths, count, headerLength, results);
  }
  destroy(): void {
    this.handle.destroy();
  }
}

/**
 * One direction of a tls-auth key: the HMAC of the `--auth` digest over the swapped layout
 * (swap_hmac), through one persistent OpenSSL HMAC context keyed once, as OpenVPN's key_ctx:
 * signing or verifying a control packet allocates nothing and schedules no key.
 */
export class TlsAuthHmac {
  private readonly handle: NativeTlsAuthHmac;

  /** `digest`: the HMAC's digest as OpenSSL names it ("sha1", "sha256", ...); `hmacKey`: this direction's key, as long as the digest. */
  constructor(digest: string, hmacKey: Uint8Array) {
    this.handle = new addon.TlsAuthHmac(digest, hmacKey);
  }
  /** Whether memory[at, at + length), a tls-auth packet in wire layout, carries a valid HMAC. */
  verify(memory: Uint8Array, at: number, length: number): boolean {
    return this.handle.verify(memory, at, length);
  }
  /** Writes the HMAC of `packet` (wire layout, replay id and body in place) into its HMAC field. */
  sign(packet: Uint8Array): void {
    this.handle.sign(packet);
  }
  destroy(): void {
    this.handle.destroy();
  }
}

/**
 * The tls-crypt authenticity check of one receive direction (decrypt, then HMAC-SHA256 of header
 * and plaintext, as tls_crypt_unwrap), through persistent OpenSSL contexts: refusing a forged
 * packet allocates nothing. The plaintext is not kept; a packet that passes is unwrapped again.
 */
export class TlsCryptCheck {
  private readonly handle: NativeTlsCryptCheck;

  /** `cipherKey`: the 32-byte AES-256-CTR key, `hmacKey`: the 32-byte HMAC key, both of the receive direction. */
  constructor(cipherKey: Uint8Array, hmacKey: Uint8Array) {
    this.handle = new addon.TlsCryptCheck(cipherKey, hmacKey);
  }
  /** Whether memory[at, at + length) carries a valid tag. */
  verify(memory: Uint8Array, at: number, length: number): boolean {
    return this.handle.verify(memory, at, length);
  }
  /**
   * Keyed with a tls-crypt-v2 server key's Ke and Ka: whether memory[at, at + length) ends in a
   * WKc (length in its last two bytes) whose tag verifies.
   */
  verifyWkc(memory: Uint8Array, at: number, length: number): boolean {
    return this.handle.verifyWkc(memory, at, length);
  }
  destroy(): void {
    this.handle.destroy();
  }
}

/**
 * One direction of a tls-crypt key (tls_crypt_wrap / tls_crypt_unwrap) with its AES-256-CTR and
 * HMAC-SHA256 contexts keyed once, as OpenVPN keeps them: a control packet costs no algorithm
 * fetch, key schedule or JavaScript cipher object. Wiped on destroy or GC.
 */
export class TlsCryptDirection {
  private readonly handle: NativeTlsCryptDirection;

  /** `cipherKey`: the 32-byte AES-256-CTR key, `hmacKey`: the 32-byte HMAC key of this direction. */
  constructor(cipherKey: Uint8Array, hmacKey: Uint8Array) {
    this.handle = new addon.TlsCryptDirection(cipherKey, hmacKey);
  }
  /** packet = [header 17][tag 32][plaintext]: writes the tag and encrypts the plaintext in place. */
  seal(packet: Uint8Array): void {
    this.handle.seal(packet);
  }
  /**
   * Decrypts wire's body into out[9..] (out[0..9) = opcode and session id) and checks the tag in
   * constant time; out.length must be wire.length - 40. False (out zeroed) when not authentic.
   */
  open(wire: Uint8Array, out: Uint8Array): boolean {
    return this.handle.open(wire, out);
  }
  destroy(): void {
    this.handle.destroy();
  }
}
