// IPv4/IPv6 text <-> bytes, without DNS and without throwing on hostile text.
import { isIPv4, isIPv6 } from 'node:net';

/** Parses dotted-quad IPv4 into 4 bytes at out[offset..]; false when not IPv4. */
export function parseIPv4(text: string, out: Uint8Array, offset = 0): boolean {
  if (!isIPv4(text)) return false;
  const parts = text.split('.');
  for (let i = 0; i < 4; i++) out[offset + i] = Number(parts[i]);
  return true;
}

/** Parses IPv6 text (with ::, an embedded IPv4 tail; no zone id) into 16 bytes; false when not IPv6. */
export function parseIPv6(text: string, out: Uint8Array, offset = 0): boolean {
  if (!isIPv6(text) || text.includes('%')) return false;
  const words: number[] = [];
  const halves = text.split('::');
  const toWords = (part: string): number[] => {
    if (part === '') return [];
    const result: number[] = [];
    for (const group of part.split(':')) {
      if (group.includes('.')) {
        const v4 = new Uint8Array(4);
        parseIPv4(group, v4);
        result.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        result.push(parseInt(group, 16));
      }
    }
    return result;
  };
  const head = toWords(halves[0]);
  const tail = halves.length > 1 ? toWords(halves[1]) : [];
  words.push(...head);
  for (let i = head.length + tail.length; i < 8; i++) words.push(0);
  words.push(...tail);
  for (let i = 0; i < 8; i++) {
    out[offset + i * 2] = words[i] >> 8;
    out[offset + i * 2 + 1] = words[i] & 0xff;
  }
  return true;
}

export function formatIPv4(bytes: Uint8Array, offset = 0): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

/** RFC 5952 text form: lower case, longest run of two or more zero words as ::. */
export function formatIPv6(bytes: Uint8Array, offset = 0): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((bytes[offset + i * 2] << 8) | bytes[offset + i * 2 + 1]);
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number): string =>
    words
      .slice(from, to)
      .map((w) => w.toString(16))
      .join(':');
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}

/** The IPv6 address `n` above `text` (carrying across all 128 bits); null when not IPv6. */
export function addToIPv6(text: string, n: number): string | null {
  const bytes = new Uint8Array(16);
  if (!parseIPv6(text, bytes)) return null;
  let carry = n;
  for (let i = 15; i >= 0 && carry > 0; i--) {
    const sum = bytes[i] + (carry % 256);
    bytes[i] = sum & 0xff;
    carry = Math.floor(carry / 256) + (sum >> 8);
  }
  return formatIPv6(bytes);
}
