// MSS clamping (OpenVPN's --mssfix, mss.c): the MSS option of TCP SYN and SYN-ACK segments
// crossing the tunnel, both ways, is lowered so that a full-size segment still fits the
// configured size once encapsulated. Without it a 1500-byte tunnel packet becomes a 1540-odd
// byte datagram on a 1500-byte path and is fragmented (or dropped where fragments are).

export interface MssfixSetting {
  /** 0: off. */
  readonly size: number;
  /** `size` counts the outer IP and UDP headers too (the "mtu" flag, 2.6's default). */
  readonly encap: boolean;
  /** `size` is the inner packet size: only the inner IP and TCP headers come off. */
  readonly fixed: boolean;
}

const OUTER_IPV4_UDP = 20 + 8;
const OUTER_IPV6_UDP = 40 + 8;
/** packet-id and AEAD tag of a data packet (the only ciphers shardvpn runs). */
const AEAD_OVERHEAD = 4 + 16;
const INNER_IPV4_TCP = 20 + 20;
const IPV6_EXTRA = 20;

const TCP = 6;
const TCP_HEADER = 20;
const TCP_SYN = 0x02;
const OPT_EOL = 0;
const OPT_NOP = 1;
const OPT_MSS = 2;
const OPT_MSS_LENGTH = 4;

/**
 * The largest MSS for IPv4 TCP inside the tunnel (20 less for IPv6), as frame_calculate_mssfix
 * works it out for a UDP link and an AEAD cipher; 0 when mssfix is off. `dataV2`: packets carry
 * a peer-id (4 header bytes instead of 1). Default 1492 over IPv4 with P_DATA_V2: 1400.
 */
export function maxMss(setting: MssfixSetting, outerFamily: 4 | 6, dataV2: boolean): number {
  if (setting.size <= 0) return 0;
  if (setting.fixed) return Math.max(0, setting.size - INNER_IPV4_TCP);
  const outer = setting.encap ? (outerFamily === 6 ? OUTER_IPV6_UDP : OUTER_IPV4_UDP) : 0;
  const header = (dataV2 ? 4 : 1) + AEAD_OVERHEAD;
  return Math.max(0, setting.size - outer - header - INNER_IPV4_TCP);
}

/**
 * Lowers the MSS option of a TCP SYN in the IP packet at buf[offset, offset + length) to
 * `max` (IPv6: max - 20) and fixes the TCP checksum incrementally. Anything that is not a
 * whole, unfragmented TCP SYN with a well-formed MSS option is left alone. True if rewritten.
 */
export function clampMss(buf: Uint8Array, offset: number, length: number, max: number): boolean {
  if (max <= 0 || length < 20) return false;
  const version = buf[offset]! >> 4;
  let tcp: number;
  let limit = max;
  if (version === 4) {
    const ihl = (buf[offset]! & 0x0f) * 4;
    if (buf[offset + 9] !== TCP || ihl < 20) return false;
    if (((buf[offset + 2]! << 8) | buf[offset + 3]!) !== length) return false;
    if ((((buf[offset + 6]! & 0x1f) << 8) | buf[offset + 7]!) !== 0) return false;
    tcp = offset + ihl;
  } else if (version === 6) {
    // Like OpenVPN, only a TCP header right after the fixed header (no extension headers).
    if (length < 40 || buf[offset + 6] !== TCP) return false;
    if (((buf[offset + 4]! << 8) | buf[offset + 5]!) + 40 !== length) return false;
    tcp = offset + 40;
    limit = max - IPV6_EXTRA;
  } else {
    return false;
  }
  const end = offset + length;
  if (end - tcp < TCP_HEADER || (buf[tcp + 13]! & TCP_SYN) === 0 || limit <= 0) return false;
  const doff = (buf[tcp + 12]! >> 4) * 4;
  if (doff <= TCP_HEADER || tcp + doff > end) return false;
  let changed = false;
  for (let at = tcp + TCP_HEADER, left = doff - TCP_HEADER; left > 1;) {
    const kind = buf[at]!;
    if (kind === OPT_EOL) break;
    if (kind === OPT_NOP) {
      at++;
      left--;
      continue;
    }
    const optLength = buf[at + 1]!;
    if (optLength < 2 || optLength > left) break;
    if (kind === OPT_MSS && optLength === OPT_MSS_LENGTH) {
      const mss = (buf[at + 2]! << 8) | buf[at + 3]!;
      if (mss > limit) {
        buf[at + 2] = limit >> 8;
        buf[at + 3] = limit & 0xff;
        adjustChecksum(buf, tcp + 16, mss, limit);
        changed = true;
      }
    }
    at += optLength;
    left -= optLength;
  }
  return changed;
}

/** RFC 1624: HC' = ~(~HC + ~m + m') for one 16-bit word changing from m to m'. */
function adjustChecksum(buf: Uint8Array, at: number, from: number, to: number): void {
  const check = (buf[at]! << 8) | buf[at + 1]!;
  let sum = (~check & 0xffff) + (~from & 0xffff) + to;
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  const result = ~sum & 0xffff;
  buf[at] = result >> 8;
  buf[at + 1] = result & 0xff;
}
