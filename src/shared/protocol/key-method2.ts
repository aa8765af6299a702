// Key method 2: the first TLS plaintext each side sends (ssl.c key_method_2_write/read,
// write_string/read_string, push_peer_info; wire doc 4). Layout:
//
//   u32 0 || u8 key method (low 4 bits = 2) || [pre_master 48, client only] || random1 32 ||
//   random2 32 || options || username || password || peer-info
//
// where each string is u16 length (counting a trailing NUL) || bytes || NUL, and an absent
// string is just u16 0.

export const KEY_METHOD_2 = 2;
export const KEY_METHOD_MASK = 0x0f;
export const PRE_MASTER_SIZE = 48;
export const RANDOM_SIZE = 32;
/** Max options string incl. NUL (TLS_OPTIONS_LEN). */
export const TLS_OPTIONS_LEN = 512;
/** USER_PASS_LEN in builds without PKCS#11; with PKCS#11 OpenVPN accepts 4096. */
export const USER_PASS_LEN = 128;
/** One key-method-2 blob must fit one 2048-byte TLS plaintext read (TLS_CHANNEL_BUF_SIZE). */
export const TLS_CHANNEL_BUF_SIZE = 2048;

/** Key source material of one side (struct key_source). preMaster only from the TLS client. */
export interface KeySource {
  readonly preMaster?: Buffer;
  readonly random1: Buffer;
  readonly random2: Buffer;
}

export interface KeyMethod2Message {
  readonly keySource: KeySource;
  /** OCC options string ("V4,dev-type tun,..."). */
  readonly options: string;
  /** null: written as an absent string (u16 0). */
  readonly username: string | null;
  readonly password: string | null;
  /** IV_* lines, each ending in "\n"; null for absent (a p2mp server sends none). */
  readonly peerInfo: string | null;
}

/**
 * Encodes the blob; `fromClient` says whether pre_master is written. Throws on bad input
 * from our own code (wrong key source sizes, strings over their limits).
 */
export function encodeKeyMethod2(msg: KeyMethod2Message, fromClient: boolean): Buffer {
  const ks = msg.keySource;
  if (fromClient && (ks.preMaster === undefined || ks.preMaster.length !== PRE_MASTER_SIZE)) {
    throw new Error(`key method 2: client needs a ${PRE_MASTER_SIZE}-byte pre_master`);
  }
  if (ks.random1.length !== RANDOM_SIZE || ks.random2.length !== RANDOM_SIZE) {
    throw new Error(`key method 2: random1/random2 must be ${RANDOM_SIZE} bytes`);
  }
  const strings = [
    encodeString(msg.options, TLS_OPTIONS_LEN, 'options'),
    encodeString(msg.username, -1, 'username'),
    encodeString(msg.password, -1, 'password'),
    encodeString(msg.peerInfo, -1, 'peer-info'),
  ];
  const parts: Buffer[] = [Buffer.from([0, 0, 0, 0, KEY_METHOD_2])];
  if (fromClient) parts.push(ks.preMaster!);
  parts.push(ks.random1, ks.random2, ...strings);
  const out = Buffer.concat(parts);
  if (out.length > TLS_CHANNEL_BUF_SIZE) {
    throw new Error(`key method 2 message is ${out.length} bytes, more than ${TLS_CHANNEL_BUF_SIZE}`);
  }
  return out;
}

function encodeString(s: string | null, maxLen: number, what: string): Buffer {
  if (s === null) return Buffer.alloc(2);
  const bytes = Buffer.from(s, 'utf8');
  if (bytes.includes(0)) throw new Error(`key method 2: ${what} contains a NUL byte`);
  const len = bytes.length + 1;
  if (len > 0xffff || (maxLen >= 0 && len > maxLen)) throw new Error(`key method 2: ${what} too long (${len} bytes)`);
  const out = Buffer.allocUnsafe(2 + len);
  out.writeUInt16BE(len, 0);
  bytes.copy(out, 2);
  out[2 + len - 1] = 0;
  return out;
}

export type KeyMethod2Rejection =
  | 'truncated' // ends inside a fixed field or a string (may also mean: read more of the stream)
  | 'bad-key-method' // low 4 bits of the method byte are not 2
  | 'bad-options'; // options string absent or over TLS_OPTIONS_LEN

export type KeyMethod2DecodeResult =
  | {
      readonly ok: true;
      readonly message: KeyMethod2Message;
      /** OpenVPN's answer to an over-long username/password: AUTH_FAILED, not a parse error. */
      readonly userPassTooLong: boolean;
      /** Bytes used; OpenVPN discards whatever else came in the same read. */
      readonly consumed: number;
    }
  | { readonly ok: false; readonly reason: KeyMethod2Rejection };

export interface DecodeKeyMethod2Options {
  /** Username/password limit incl. NUL; default USER_PASS_LEN (128). */
  readonly userPassLen?: number;
  /**
   * OpenVPN tolerates a blob that ends before the peer-info string (peer-info then absent).
   * Default true; set false when reading from a stream where more bytes may follow.
   */
  readonly peerInfoOptional?: boolean;
}

/**
 * Decodes a peer's blob; `fromClient` says whether a pre_master is expected (true on a server).
 * Hostile bytes give a typed rejection, never an exception.
 */
export function decodeKeyMethod2(buf: Buffer, fromClient: boolean, opts: DecodeKeyMethod2Options = {}): KeyMethod2DecodeResult {
  const userPassLen = opts.userPassLen ?? USER_PASS_LEN;
  const fixed = 5 + (fromClient ? PRE_MASTER_SIZE : 0) + 2 * RANDOM_SIZE;
  if (buf.length < 5) return { ok: false, reason: 'truncated' };
  // The leading u32 is ignored by OpenVPN (it was never checked).
  if ((buf[4]! & KEY_METHOD_MASK) !== KEY_METHOD_2) return { ok: false, reason: 'bad-key-method' };
  if (buf.length < fixed) return { ok: false, reason: 'truncated' };
  let off = 5;
  let preMaster: Buffer | undefined;
  if (fromClient) {
    preMaster = Buffer.from(buf.subarray(off, off + PRE_MASTER_SIZE));
    off += PRE_MASTER_SIZE;
  }
  const random1 = Buffer.from(buf.subarray(off, off + RANDOM_SIZE));
  off += RANDOM_SIZE;
  const random2 = Buffer.from(buf.subarray(off, off + RANDOM_SIZE));
  off += RANDOM_SIZE;

  const options = readString(buf, off);
  if (options === null) return { ok: false, reason: 'truncated' };
  if (options.text === null || options.len > TLS_OPTIONS_LEN) return { ok: false, reason: 'bad-options' };
  off = options.next;

  const user = readString(buf, off);
  if (user === null) return { ok: false, reason: 'truncated' };
  off = user.next;
  const pass = readString(buf, off);
  if (pass === null) return { ok: false, reason: 'truncated' };
  off = pass.next;

  let peerInfo: string | null = null;
  if (off < buf.length || opts.peerInfoOptional === false) {
    const pi = readString(buf, off);
    if (pi === null) return { ok: false, reason: 'truncated' };
    peerInfo = pi.text;
    off = pi.next;
  }
  const userPassTooLong = user.len > userPassLen || pass.len > userPassLen;
  const keySource: KeySource = preMaster === undefined ? { random1, random2 } : { preMaster, random1, random2 };
  return {
    ok: true,
    message: {
      keySource,
      options: options.text,
      username: userPassTooLong ? null : user.text,
      password: userPassTooLong ? null : pass.text,
      peerInfo,
    },
    userPassTooLong,
    consumed: off,
  };
}

// A string: null text for length 0; text stops at the first NUL like C. null result = truncated.
function readString(buf: Buffer, off: number): { text: string | null; len: number; next: number } | null {
  if (off + 2 > buf.length) return null;
  const len = buf.readUInt16BE(off);
  const start = off + 2;
  if (start + len > buf.length) return null;
  if (len === 0) return { text: null, len, next: start };
  let end = buf.indexOf(0, start);
  if (end < 0 || end >= start + len) end = start + len - 1; // last byte is forced to NUL
  return { text: buf.toString('utf8', start, end), len, next: start + len };
}

// ---- peer-info (IV_ variables) ------------------------------------------------------------

/** IV_PROTO bits (ssl.h). */
export const IV_PROTO_DATA_V2 = 1 << 1;
export const IV_PROTO_REQUEST_PUSH = 1 << 2;
export const IV_PROTO_TLS_KEY_EXPORT = 1 << 3;
export const IV_PROTO_AUTH_PENDING_KW = 1 << 4;
export const IV_PROTO_NCP_P2P = 1 << 5;
export const IV_PROTO_DNS_OPTION = 1 << 6;
export const IV_PROTO_CC_EXIT_NOTIFY = 1 << 7;
export const IV_PROTO_AUTH_FAIL_TEMP = 1 << 8;
export const IV_PROTO_DYN_TLS_CRYPT = 1 << 9;
export const IV_PROTO_DATA_EPOCH = 1 << 10;
export const IV_PROTO_DNS_OPTION_V2 = 1 << 11;
export const IV_PROTO_PUSH_UPDATE = 1 << 12;

export interface PeerInfoFields {
  readonly version?: string; // IV_VER
  readonly platform?: string; // IV_PLAT
  readonly tcpNonLinear?: boolean; // IV_TCPNL=1
  readonly mtu?: number; // IV_MTU (tun-max-mtu)
  readonly ncp?: number; // IV_NCP (2 = AES-128-GCM and AES-256-GCM)
  readonly ciphers?: readonly string[]; // IV_CIPHERS, ':'-separated
  readonly proto?: number; // IV_PROTO bit field
  /** Further NAME=value pairs in order (IV_LZO_STUB, IV_GUI_VER, UV_*, ...). */
  readonly extra?: ReadonlyArray<readonly [string, string]>;
}

/** Builds the peer-info string in push_peer_info's order; every line ends with "\n". */
export function buildPeerInfo(f: PeerInfoFields): string {
  const lines: string[] = [];
  const add = (name: string, value: string): void => {
    if (/[\n\0]/.test(value) || /[=\n\0]/.test(name)) throw new Error(`peer-info ${name}: invalid characters`);
    lines.push(`${name}=${value}\n`);
  };
  if (f.version !== undefined) add('IV_VER', f.version);
  if (f.platform !== undefined) add('IV_PLAT', f.platform);
  if (f.tcpNonLinear === true) add('IV_TCPNL', '1');
  if (f.mtu !== undefined) add('IV_MTU', String(f.mtu));
  if (f.ncp !== undefined) add('IV_NCP', String(f.ncp));
  if (f.ciphers !== undefined) add('IV_CIPHERS', f.ciphers.join(':'));
  if (f.proto !== undefined) add('IV_PROTO', String(f.proto));
  for (const [k, v] of f.extra ?? []) add(k, v);
  return lines.join('');
}

/** Splits peer-info into NAME -> value (later lines win, as env vars would). */
export function parsePeerInfo(s: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of s.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    m.set(line.slice(0, eq), line.slice(eq + 1).replace(/\r$/, ''));
  }
  return m;
}

/** Typed view of the variables a server acts on; absent or malformed numbers become undefined. */
export function peerInfoFields(s: string): PeerInfoFields {
  const m = parsePeerInfo(s);
  const num = (k: string): number | undefined => {
    const v = m.get(k);
    if (v === undefined || !/^\d{1,9}$/.test(v.trim())) return undefined;
    return Number(v.trim());
  };
  const known = new Set(['IV_VER', 'IV_PLAT', 'IV_TCPNL', 'IV_MTU', 'IV_NCP', 'IV_CIPHERS', 'IV_PROTO']);
  const ciphers = m.get('IV_CIPHERS');
  const version = m.get('IV_VER');
  const platform = m.get('IV_PLAT');
  const mtu = num('IV_MTU');
  const ncp = num('IV_NCP');
  const proto = num('IV_PROTO');
  return {
    ...(version !== undefined ? { version } : {}),
    ...(platform !== undefined ? { platform } : {}),
    tcpNonLinear: m.get('IV_TCPNL') === '1',
    ...(mtu !== undefined ? { mtu } : {}),
    ...(ncp !== undefined ? { ncp } : {}),
    ...(ciphers !== undefined ? { ciphers: ciphers.split(':').filter((c) => c.length > 0) } : {}),
    ...(proto !== undefined ? { proto } : {}),
    extra: [...m].filter(([k]) => !known.has(k)),
  };
}

/** IV_PROTO as OpenVPN reads it (0 when absent). */
export function peerInfoProto(s: string | null): number {
  if (s === null) return 0;
  const v = peerInfoFields(s).proto;
  return v ?? 0;
}
