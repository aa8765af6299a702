// The compression framing of data-channel payloads (comp.h, compstub.c, lzo.c, comp-lz4.c) as
// OpenVPN 2.6 runs it by default: shardvpn never compresses (2.6's allow-compression default
// sends uncompressed), but a peer configured with comp-lzo or compress frames every payload,
// pings included, and the framing must match:
//   prefix (comp-lzo, compress lzo):  [0xFA][packet]; a compressed one starts 0x66 (LZO)
//   swap   (compress, compress lz4):  the first byte moved to the end, 0xFB in its place;
//                                     a compressed one starts 0x69 (LZ4)
//   v2     (compress stub-v2, lz4-v2): the packet as it is, unless it starts with 0x50, then
//                                     [0x50][0x00][packet]; [0x50][n > 0] is compressed
// A compressed payload from the peer is dropped and counted: shardvpn has no decompressor.
import type { CompressFraming } from '../config/options-types';

export type FramingKind = 'none' | 'prefix' | 'swap' | 'v2';

const NO_COMPRESS_BYTE = 0xfa;
const NO_COMPRESS_BYTE_SWAP = 0xfb;
const LZO_COMPRESS_BYTE = 0x66;
const LZ4_COMPRESS_BYTE = 0x69;
const ALGV2_INDICATOR_BYTE = 0x50;
const ALGV2_UNCOMPRESSED_BYTE = 0;

/** Bytes framing may add in front of a payload, and after it. */
export const FRAMING_HEADROOM = 2;
export const FRAMING_TAILROOM = 1;

/** The framing a `comp-lzo` / `compress` setting puts on the wire; null for `compress migrate`. */
export function framingKind(framing: CompressFraming): FramingKind | null {
  switch (framing) {
    case 'none':
      return 'none';
    case 'comp-lzo-no':
    case 'lzo':
      return 'prefix';
    case 'stub':
    case 'lz4':
      return 'swap';
    case 'stub-v2':
    case 'lz4-v2':
      return 'v2';
    case 'migrate':
      return null;
  }
}

/** The framing a pushed `comp-lzo [mode]` or `compress [alg]` option sets, or undefined for another option. */
export function pushedFraming(option: string): FramingKind | undefined {
  const [name, arg] = option.trim().split(/\s+/);
  if (name === 'comp-lzo') return 'prefix';
  if (name !== 'compress') return undefined;
  if (arg === undefined || arg === 'stub' || arg === 'lz4') return 'swap';
  if (arg === 'lzo') return 'prefix';
  if (arg === 'stub-v2' || arg === 'lz4-v2') return 'v2';
  return undefined;
}

export type UnframeResult = 'ok' | 'compressed' | 'bad';

/**
 * Frames and unframes payloads in place; the resulting position is left in `start` and
 * `length` (reused fields, so nothing is allocated per packet).
 */
export class CompressFramer {
  start = 0;
  length = 0;

  constructor(public kind: FramingKind) {}

  /**
   * Frames the payload at memory[start, start + length), which must have FRAMING_HEADROOM
   * bytes free before it and FRAMING_TAILROOM after.
   */
  frame(memory: Uint8Array, start: number, length: number): void {
    // OpenVPN leaves an empty payload as it is (compress: `if (buf->len <= 0) return`).
    switch (length === 0 ? 'none' : this.kind) {
      case 'none':
        break;
      case 'prefix':
        memory[--start] = NO_COMPRESS_BYTE;
        length++;
        break;
      case 'swap':
        memory[start + length] = memory[start]!;
        memory[start] = NO_COMPRESS_BYTE_SWAP;
        length++;
        break;
      case 'v2':
        if (length > 0 && memory[start] === ALGV2_INDICATOR_BYTE) {
          memory[--start] = ALGV2_UNCOMPRESSED_BYTE;
          memory[--start] = ALGV2_INDICATOR_BYTE;
          length += 2;
        }
        break;
    }
    this.start = start;
    this.length = length;
  }

  /** Takes the framing off a received payload; 'compressed' and 'bad' payloads are to be dropped. */
  unframe(memory: Uint8Array, start: number, length: number): UnframeResult {
    this.start = start;
    this.length = length;
    if (this.kind === 'none' || length === 0) return 'ok';
    const head = memory[start]!;
    switch (this.kind) {
      case 'prefix':
        if (head === LZO_COMPRESS_BYTE) return 'compressed';
        if (head !== NO_COMPRESS_BYTE) return 'bad';
        this.start = start + 1;
        this.length = length - 1;
        return 'ok';
      case 'swap':
        if (head === LZ4_COMPRESS_BYTE || head === LZO_COMPRESS_BYTE) return 'compressed';
        if (head !== NO_COMPRESS_BYTE_SWAP) return 'bad';
        this.length = length - 1;
        memory[start] = memory[start + length - 1]!;
        return 'ok';
      case 'v2':
        if (head !== ALGV2_INDICATOR_BYTE) return 'ok';
        if (length < 2) return 'bad';
        if (memory[start + 1] !== ALGV2_UNCOMPRESSED_BYTE) return 'compressed';
        this.start = start + 2;
        this.length = length - 2;
        return 'ok';
    }
  }
}
