// Text messages on the control channel after key method 2 (wire doc 7.1, 7.3; forward.c
// parse_incoming_control_channel_command, ssl_pkt.c extract_command_buffer, push.c).
// Each message is printable ASCII plus a terminating NUL, written in one TLS record.

/** A message, NUL included, must fit PUSH_BUNDLE_SIZE; the 2.6 reader's buffer is 2048. */
export const PUSH_BUNDLE_SIZE = 1024;
export const TLS_CHANNEL_BUF_SIZE = 2048;

export interface SignalFlags {
  /** `P`: keep the cached password (default purge). */
  keepPassword: boolean;
  /** `N`: advance to the next remote. */
  nextRemote: boolean;
}

export interface AuthFailedTemp {
  /** `backoff N` seconds, when given. */
  backoffS?: number;
  /** `advance no|addr|remote`, when given. */
  advance?: 'no' | 'addr' | 'remote';
  /** Text after `]:` (empty when none). */
  message: string;
}

export type ControlMessage =
  | { kind: 'push-request' }
  /** `body` is everything after `PUSH_REPLY`: '' or ',opt,opt...' (push-options.ts parses it). */
  | { kind: 'push-reply'; body: string }
  /** reason: text after `AUTH_FAILED,` (undefined for a bare AUTH_FAILED); temp: a TEMP[...] reason. */
  | { kind: 'auth-failed'; reason?: string; temp?: AuthFailedTemp }
  | { kind: 'restart'; flags: SignalFlags; text: string }
  | { kind: 'halt'; flags: SignalFlags; text: string }
  | { kind: 'info-pre'; text: string }
  | { kind: 'info'; text: string }
  | { kind: 'cr-response'; response: string }
  /** timeoutS from `timeout N`; keywords holds every comma-separated keyword as sent. */
  | { kind: 'auth-pending'; timeoutS?: number; keywords: string[] }
  | { kind: 'exit' }
  | { kind: 'unknown'; text: string };

function isPrintable(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

/** The text of a message plus its NUL, ready for one TLS write. Throws on text we must not send. */
export function encodeControlMessage(text: string): Buffer {
  if (!isPrintable(text)) throw new RangeError('control message must be printable ASCII');
  if (text.length + 1 > PUSH_BUNDLE_SIZE) throw new RangeError(`control message of ${text.length + 1} bytes exceeds ${PUSH_BUNDLE_SIZE}`);
  const out = Buffer.allocUnsafe(text.length + 1);
  out.write(text, 0, 'latin1');
  out[text.length] = 0;
  return out;
}

/**
 * Splits the TLS plaintext stream into NUL-terminated messages. Unlike OpenVPN (which drops an
 * unterminated tail of one SSL_read) a tail is kept for the next chunk, since a Node TLSSocket
 * may split or merge records; a tail longer than TLS_CHANNEL_BUF_SIZE is discarded. Each
 * message is chomped of trailing CR/LF; one with other non-printable bytes is dropped and
 * counted in `invalid`.
 */
export class ControlMessageReader {
  private pending: Buffer[] = [];
  private pendingLength = 0;
  private discarding = false;
  invalid = 0;
  oversized = 0;

  push(chunk: Uint8Array): string[] {
    const out: string[] = [];
    let start = 0;
    for (;;) {
      const nul = chunk.indexOf(0, start);
      if (nul < 0) break;
      this.take(chunk.subarray(start, nul), out);
      start = nul + 1;
    }
    const tail = chunk.subarray(start);
    if (tail.length > 0) {
      if (this.pendingLength + tail.length > TLS_CHANNEL_BUF_SIZE) {
        if (!this.discarding) this.oversized++;
        this.discarding = true;
        this.pending = [];
        this.pendingLength = 0;
      } else if (!this.discarding) {
        this.pending.push(Buffer.from(tail));
        this.pendingLength += tail.length;
      }
    }
    return out;
  }

  private take(part: Uint8Array, out: string[]): void {
    if (this.discarding) {
      // The rest of an oversized message: drop it up to its NUL.
      this.discarding = false;
      return;
    }
    let bytes: Buffer;
    if (this.pendingLength > 0) {
      if (this.pendingLength + part.length > TLS_CHANNEL_BUF_SIZE) {
        this.oversized++;
        this.pending = [];
        this.pendingLength = 0;
        return;
      }
      bytes = Buffer.concat([...this.pending, part]);
      this.pending = [];
      this.pendingLength = 0;
    } else {
      if (part.length > TLS_CHANNEL_BUF_SIZE) {
        this.oversized++;
        return;
      }
      bytes = Buffer.from(part.buffer, part.byteOffset, part.length);
    }
    let end = bytes.length;
    while (end > 0 && (bytes[end - 1] === 0x0a || bytes[end - 1] === 0x0d)) end--;
    for (let i = 0; i < end; i++) {
      const c = bytes[i]!;
      if (c < 0x20 || c > 0x7e) {
        this.invalid++;
        return;
      }
    }
    if (end === 0) return;
    out.push(bytes.toString('latin1', 0, end));
  }
}

// server_pushed_signal: after the keyword, ',' then the text; flags in a leading [...].
function parseSignal(text: string, keywordLength: number): { flags: SignalFlags; text: string } {
  const flags: SignalFlags = { keepPassword: false, nextRemote: false };
  let m = '';
  if (text.length > keywordLength + 1 && text.charCodeAt(keywordLength) === 0x2c) m = text.slice(keywordLength + 1);
  if (m.startsWith('[')) {
    for (let i = 1; i < m.length && m[i] !== ']'; i++) {
      if (m[i] === 'P') flags.keepPassword = true;
      else if (m[i] === 'N') flags.nextRemote = true;
    }
  }
  return { flags, text: m };
}

// options_util.c parse_auth_failed_temp: `TEMP[backoff N,advance X]:message`.
function parseAuthFailedTemp(afterTemp: string): AuthFailedTemp {
  const temp: AuthFailedTemp = { message: '' };
  let message = afterTemp;
  const close = afterTemp.indexOf(']');
  if (afterTemp.startsWith('[') && close >= 0) {
    message = afterTemp.slice(close + 1);
    for (const token of afterTemp.slice(1, close).split(',')) {
      const backoff = /^backoff (\d{1,9})$/.exec(token);
      if (backoff) temp.backoffS = Number(backoff[1]);
      else if (token === 'advance no' || token === 'advance addr' || token === 'advance remote') {
        temp.advance = token.slice('advance '.length) as 'no' | 'addr' | 'remote';
      }
    }
  }
  temp.message = message.startsWith(':') ? message.slice(1) : '';
  return temp;
}

/** Classifies one message by prefix, in OpenVPN's order. Never throws. */
export function parseControlMessage(text: string): ControlMessage {
  if (text.startsWith('AUTH_FAILED')) {
    if (!text.startsWith('AUTH_FAILED,')) return { kind: 'auth-failed' };
    const reason = text.slice('AUTH_FAILED,'.length);
    if (reason.startsWith('TEMP')) return { kind: 'auth-failed', reason, temp: parseAuthFailedTemp(reason.slice(4)) };
    return { kind: 'auth-failed', reason };
  }
  if (text.startsWith('PUSH_')) {
    if (text.startsWith('PUSH_REQUEST')) return { kind: 'push-request' };
    if (text.startsWith('PUSH_REPLY')) {
      const body = text.slice('PUSH_REPLY'.length);
      // process_incoming_push_reply: the next byte must be ',' or the end.
      if (body === '' || body.startsWith(',')) return { kind: 'push-reply', body };
    }
    return { kind: 'unknown', text };
  }
  if (text.startsWith('RESTART')) return { kind: 'restart', ...parseSignal(text, 7) };
  if (text.startsWith('HALT')) return { kind: 'halt', ...parseSignal(text, 4) };
  if (text.startsWith('INFO_PRE')) return { kind: 'info-pre', text: text.startsWith('INFO_PRE,') ? text.slice(9) : '' };
  if (text.startsWith('INFO')) return { kind: 'info', text: text.startsWith('INFO,') ? text.slice(5) : '' };
  if (text.startsWith('CR_RESPONSE')) return { kind: 'cr-response', response: text.startsWith('CR_RESPONSE,') ? text.slice(12) : '' };
  if (text.startsWith('AUTH_PENDING')) {
    const keywords = text.startsWith('AUTH_PENDING,')
      ? text
          .slice(13)
          .split(',')
          .filter((k) => k.length > 0)
      : [];
    let timeoutS: number | undefined;
    for (const k of keywords) {
      const m = /^timeout (\d{1,9})$/.exec(k);
      if (m) timeoutS = Number(m[1]);
    }
    return timeoutS === undefined ? { kind: 'auth-pending', keywords } : { kind: 'auth-pending', timeoutS, keywords };
  }
  if (text.startsWith('EXIT')) return { kind: 'exit' };
  return { kind: 'unknown', text };
}

function signalText(keyword: string, flags: Partial<SignalFlags> | undefined, text: string | undefined): string {
  const f = (flags?.keepPassword ? 'P' : '') + (flags?.nextRemote ? 'N' : '');
  const m = (f ? `[${f}]` : '') + (text ?? '');
  return m ? `${keyword},${m}` : keyword;
}

/** The text of a message we send (without the NUL; encodeControlMessage adds it). */
export function formatControlMessage(msg: ControlMessage): string {
  switch (msg.kind) {
    case 'push-request':
      return 'PUSH_REQUEST';
    case 'push-reply':
      return `PUSH_REPLY${msg.body}`;
    case 'auth-failed':
      if (msg.temp !== undefined) {
        const flags: string[] = [];
        if (msg.temp.backoffS !== undefined) flags.push(`backoff ${msg.temp.backoffS}`);
        if (msg.temp.advance !== undefined) flags.push(`advance ${msg.temp.advance}`);
        return `AUTH_FAILED,TEMP${flags.length > 0 ? `[${flags.join(',')}]` : ''}${msg.temp.message ? `:${msg.temp.message}` : ''}`;
      }
      return msg.reason !== undefined ? `AUTH_FAILED,${msg.reason}` : 'AUTH_FAILED';
    case 'restart':
    case 'halt': {
      // A text that already carries its [flags] is sent as is.
      const hasFlags = msg.text.startsWith('[');
      return signalText(msg.kind === 'restart' ? 'RESTART' : 'HALT', hasFlags ? undefined : msg.flags, msg.text);
    }
    case 'info-pre':
      return `INFO_PRE,${msg.text}`;
    case 'info':
      return `INFO,${msg.text}`;
    case 'cr-response':
      return `CR_RESPONSE,${msg.response}`;
    case 'auth-pending': {
      const keywords = msg.keywords.filter((k) => !k.startsWith('timeout '));
      if (msg.timeoutS !== undefined) keywords.unshift(`timeout ${msg.timeoutS}`);
      return keywords.length > 0 ? `AUTH_PENDING,${keywords.join(',')}` : 'AUTH_PENDING';
    }
    case 'exit':
      return 'EXIT';
    case 'unknown':
      return msg.text;
  }
}

/**
 * A control message as the log may show it, as misc.c sanitize_control_message writes it: from
 * `auth-token `, a session token (`SESS_ID_`) or `echo ` on, only `auth-token`, `SESS_ID` or
 * `echo` stays of the item, up to the next comma ("auth-token SESS_ID_AT_..." logs as
 * "auth-tokenSESS_ID").
 */
export function sanitizeControlMessage(text: string): string {
  let out = '';
  let redact = false;
  let keep = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (text.startsWith('SESS_ID_', i)) [redact, keep] = [true, 7];
    else if (text.startsWith('echo ', i)) [redact, keep] = [true, 4];
    else if (text.startsWith('auth-token ', i)) [redact, keep] = [true, 10];
    if (c === ',') [redact, keep] = [false, 0];
    if (!redact) out += c;
    else if (keep > 0) {
      out += c;
      keep--;
    }
  }
  return out;
}
