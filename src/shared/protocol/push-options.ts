// PUSH_REPLY build and parse (push.c send_push_reply / send_push_options / prepare_push_reply,
// process_incoming_push_reply; options.c apply_push_options / apply_pull_filter; wire doc 7.2).
// Options are config-file lines separated by ','; a reply too long for one 1024-byte message
// is split, every part but the last ending in ',push-continuation 2' and the last in
// ',push-continuation 1'.

import { applyDnsOption, dnsOptionLines, dnsOptionsProblem, emptyDnsOptions, type DnsOptions } from './dns-options';
import { parseIPv4, parseIPv6 } from '../ip-address';
import { PUSH_BUNDLE_SIZE } from './control-message';

export const PUSH_REPLY = 'PUSH_REPLY';
/** send_push_reply keeps 84 bytes spare for trailing options and the continuation marker. */
const PUSH_SAFE_CAP = PUSH_BUNDLE_SIZE - 84;
/** OPTION_PARM_SIZE: buf_parse cuts pushed option lines at 255 characters. */
export const MAX_PUSH_OPTION_LENGTH = 255;
/** Our own bound on one multi-part reply, against a peer that never stops continuing. */
export const MAX_PUSH_OPTIONS = 1024;

export interface PushRoute {
  network: string;
  netmask?: string;
  gateway?: string;
  metric?: string;
}

export interface PushRouteIpv6 {
  /** ADDR/BITS */
  network: string;
  gateway?: string;
  metric?: string;
}

export interface PushOptions {
  /** `ifconfig LOCAL NETMASK` (topology subnet) or `ifconfig LOCAL PEER` (net30 / p2p). */
  ifconfig?: { local: string; remoteOrNetmask: string };
  /** `ifconfig-ipv6 ADDR/BITS [REMOTE]` */
  ifconfigIpv6?: { local: string; prefixLength: number; remote?: string };
  routes?: PushRoute[];
  routesIpv6?: PushRouteIpv6[];
  routeGateway?: string;
  routeIpv6Gateway?: string;
  topology?: 'net30' | 'p2p' | 'subnet';
  peerId?: number;
  cipher?: string;
  ping?: number;
  pingRestart?: number;
  /** session-timeout N (OPT_P_TIMER): the client's run ends N seconds after the push. */
  sessionTimeout?: number;
  keyDerivation?: 'tls-ekm';
  /** e.g. ['cc-exit', 'tls-ekm', 'dyn-tls-crypt'] */
  protocolFlags?: string[];
  /** `dhcp-option TYPE [VALUE...]`, value = the rest of the line. */
  dhcpOptions?: { type: string; value?: string }[];
  /** `redirect-gateway [FLAGS...]` (an empty list is the bare option). */
  redirectGateway?: string[];
  explicitExitNotify?: number;
  blockOutsideDns?: boolean;
  /** block-ipv6: answer IPv6 from TUN with ICMPv6 no-route instead of sending it. */
  blockIpv6?: boolean;
  /** `dns ...` options (2.6), as pushed (priorities from 0). */
  dns?: DnsOptions;
  tunMtu?: number;
  authToken?: string;
  /**
   * Other option lines, verbatim: on build appended after the typed user options; on parse
   * every option this file does not type (kept in order).
   */
  extra?: string[];
}

export type PullFilterAction = 'accept' | 'ignore' | 'reject';
/** --pull-filter accept|ignore|reject TEXT: the first rule whose text prefixes the option wins. */
export interface PullFilter {
  action: PullFilterAction;
  text: string;
}

export type PushBuildResult = { ok: true; messages: string[] } | { ok: false; reason: 'bad-option' | 'option-too-long'; detail: string };

export type PushRejectReason =
  'not-push-reply' | 'option-too-long' | 'bad-option' | 'rejected-by-filter' | 'too-many-options' | 'bad-continuation';

export type PushParseResult = { ok: true; options: PushOptions } | { ok: false; reason: PushRejectReason; detail: string };

export type PushReplyStep =
  | { ok: true; complete: false }
  | { ok: true; complete: true; options: PushOptions }
  | { ok: false; reason: PushRejectReason; detail: string };

// ------------------------------------------------------------------------------------------
// Build

/** One argument as parse_line reads it back: quoted (with \\ escapes) when empty or holding a blank, quote or backslash. */
function word(w: string): string {
  return w === '' || /[ \t"\\]/.test(w) ? `"${w.replace(/["\\]/g, '\\$&')}"` : w;
}

/** An option line from its name and arguments, each written so it parses back as one argument. */
function words(...ws: (string | undefined)[]): string {
  return ws
    .filter((w): w is string => w !== undefined)
    .map((w, i) => (i === 0 ? w : word(w)))
    .join(' ');
}

function optionLines(o: PushOptions): string[] {
  const lines: string[] = [];
  // Global push list first (user `push` lines, then the server helper, then keepalive) ...
  for (const r of o.routes ?? []) lines.push(words('route', r.network, r.netmask, r.gateway, r.metric));
  for (const r of o.routesIpv6 ?? []) lines.push(words('route-ipv6', r.network, r.gateway, r.metric));
  for (const d of o.dhcpOptions ?? []) lines.push(d.value !== undefined ? `dhcp-option ${d.type} ${d.value}` : `dhcp-option ${d.type}`);
  if (o.redirectGateway !== undefined) lines.push(words('redirect-gateway', ...o.redirectGateway));
  if (o.blockOutsideDns) lines.push('block-outside-dns');
  if (o.blockIpv6) lines.push('block-ipv6');
  if (o.dns !== undefined) lines.push(...dnsOptionLines(o.dns));
  if (o.explicitExitNotify !== undefined) lines.push(`explicit-exit-notify ${o.explicitExitNotify}`);
  for (const e of o.extra ?? []) lines.push(e);
  if (o.routeGateway !== undefined) lines.push(`route-gateway ${o.routeGateway}`);
  if (o.routeIpv6Gateway !== undefined) lines.push(`route-ipv6-gateway ${o.routeIpv6Gateway}`);
  if (o.topology !== undefined) lines.push(`topology ${o.topology}`);
  if (o.ping !== undefined) lines.push(`ping ${o.ping}`);
  if (o.pingRestart !== undefined) lines.push(`ping-restart ${o.pingRestart}`);
  if (o.sessionTimeout !== undefined) lines.push(`session-timeout ${o.sessionTimeout}`);
  // ... then the per-client part in prepare_push_reply's order.
  if (o.ifconfigIpv6 !== undefined) {
    const v = o.ifconfigIpv6;
    lines.push(`ifconfig-ipv6 ${v.local}/${v.prefixLength}${v.remote !== undefined ? ` ${v.remote}` : ''}`);
  }
  if (o.ifconfig !== undefined) lines.push(`ifconfig ${o.ifconfig.local} ${o.ifconfig.remoteOrNetmask}`);
  if (o.peerId !== undefined) lines.push(`peer-id ${o.peerId}`);
  if (o.authToken !== undefined) lines.push(`auth-token ${o.authToken}`);
  if (o.cipher !== undefined) lines.push(`cipher ${o.cipher}`);
  if (o.protocolFlags !== undefined && o.protocolFlags.length > 0) lines.push(words('protocol-flags', ...o.protocolFlags));
  if (o.keyDerivation !== undefined) lines.push(`key-derivation ${o.keyDerivation}`);
  if (o.tunMtu !== undefined) lines.push(`tun-mtu ${o.tunMtu}`);
  return lines;
}

/**
 * The PUSH_REPLY message(s) for `options` (texts without the NUL), split like send_push_reply:
 * before an option that would reach 940 bytes the part is closed with ',push-continuation 2';
 * a multi-part reply's last part ends with ',push-continuation 1'. No options: 'PUSH_REPLY'.
 */
export function buildPushReply(options: PushOptions): PushBuildResult {
  const lines = optionLines(options);
  for (const line of lines) {
    if (line.length === 0 || line.includes(',') || !/^[\x20-\x7e]+$/.test(line)) {
      return {
        ok: false,
        reason: 'bad-option',
        detail: `push option ${JSON.stringify(line)} is empty, has a comma or a non-printable character`,
      };
    }
    if (line.length > MAX_PUSH_OPTION_LENGTH || PUSH_REPLY.length + line.length >= PUSH_SAFE_CAP) {
      return {
        ok: false,
        reason: 'option-too-long',
        detail: `push option of ${line.length} characters is too long: ${line.slice(0, 40)}...`,
      };
    }
  }
  const messages: string[] = [];
  let current = PUSH_REPLY;
  for (const line of lines) {
    if (current.length + line.length >= PUSH_SAFE_CAP) {
      messages.push(`${current},push-continuation 2`);
      current = PUSH_REPLY;
    }
    current += `,${line}`;
  }
  if (messages.length > 0) current += ',push-continuation 1';
  messages.push(current);
  return { ok: true, messages };
}

// ------------------------------------------------------------------------------------------
// Parse

/** parse_line, simplified: words split on blanks; "double quotes" group, backslash escapes in them. */
function splitWords(line: string): string[] | null {
  const words: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && (line[i] === ' ' || line[i] === '\t')) i++;
    if (i >= line.length) break;
    let word = '';
    if (line[i] === '"') {
      i++;
      for (;;) {
        if (i >= line.length) return null;
        const c = line[i++]!;
        if (c === '"') break;
        if (c === '\\' && i < line.length) word += line[i++];
        else word += c;
      }
    } else {
      while (i < line.length && line[i] !== ' ' && line[i] !== '\t') word += line[i++];
    }
    words.push(word);
  }
  return words;
}

const scratch = new Uint8Array(16);
const isIPv4 = (s: string): boolean => parseIPv4(s, scratch, 0);
const isIPv6 = (s: string): boolean => parseIPv6(s, scratch, 0);

function uint(s: string | undefined, max: number): number | null {
  if (s === undefined || !/^\d{1,10}$/.test(s)) return null;
  const n = Number(s);
  return n <= max ? n : null;
}

/** Applies one option line to `o`; returns an error text for a known option with bad arguments. */
function applyOption(o: PushOptions, line: string, words: string[], state: { continuation: number }): string | null {
  const [name, a, b, c, d] = words;
  const n = words.length;
  const bad = (): string => `bad arguments: ${line}`;
  switch (name) {
    case 'push-continuation': {
      const v = uint(a, 2);
      if (v === null || n !== 2) return bad();
      state.continuation = v;
      return null;
    }
    case 'ifconfig':
      if (n !== 3 || !isIPv4(a!) || !isIPv4(b!)) return bad();
      o.ifconfig = { local: a!, remoteOrNetmask: b! };
      return null;
    case 'ifconfig-ipv6': {
      if (n < 2 || n > 3) return bad();
      const slash = a!.indexOf('/');
      const addr = slash < 0 ? a! : a!.slice(0, slash);
      const bits = slash < 0 ? 128 : uint(a!.slice(slash + 1), 128);
      if (bits === null || !isIPv6(addr) || (b !== undefined && !isIPv6(b))) return bad();
      o.ifconfigIpv6 = b !== undefined ? { local: addr, prefixLength: bits, remote: b } : { local: addr, prefixLength: bits };
      return null;
    }
    case 'route': {
      if (n < 2 || n > 5) return bad();
      const r: PushRoute = { network: a! };
      if (b !== undefined) r.netmask = b;
      if (c !== undefined) r.gateway = c;
      if (d !== undefined) r.metric = d;
      (o.routes ??= []).push(r);
      return null;
    }
    case 'route-ipv6': {
      if (n < 2 || n > 4) return bad();
      const r: PushRouteIpv6 = { network: a! };
      if (b !== undefined) r.gateway = b;
      if (c !== undefined) r.metric = c;
      (o.routesIpv6 ??= []).push(r);
      return null;
    }
    case 'route-gateway':
      if (n !== 2) return bad();
      o.routeGateway = a!;
      return null;
    case 'topology':
      if (n !== 2 || (a !== 'net30' && a !== 'p2p' && a !== 'subnet')) return bad();
      o.topology = a;
      return null;
    case 'peer-id': {
      const v = uint(a, 0xffffff);
      if (v === null || n !== 2) return bad();
      o.peerId = v;
      return null;
    }
    case 'cipher':
      if (n !== 2) return bad();
      o.cipher = a!;
      return null;
    case 'ping':
    case 'ping-restart':
    case 'tun-mtu':
    case 'session-timeout':
    case 'explicit-exit-notify': {
      const v = a === undefined && name === 'explicit-exit-notify' ? 1 : uint(a, 0x7fffffff);
      if (v === null || n > 2) return bad();
      if (name === 'ping') o.ping = v;
      else if (name === 'ping-restart') o.pingRestart = v;
      else if (name === 'tun-mtu') o.tunMtu = v;
      else if (name === 'session-timeout') o.sessionTimeout = v;
      else o.explicitExitNotify = v;
      return null;
    }
    case 'key-derivation':
      if (n !== 2 || a !== 'tls-ekm') return bad();
      o.keyDerivation = 'tls-ekm';
      return null;
    case 'protocol-flags':
      // Unknown flags are kept: the session decides what it honours.
      o.protocolFlags = words.slice(1);
      return null;
    case 'dhcp-option':
      // TYPE is one word (DNS, DOMAIN, ...): an empty or quoted one with blanks is no option
      // OpenVPN knows, and would not survive being pushed on.
      if (n < 2 || a === '' || /[ \t]/.test(a!)) return bad();
      (o.dhcpOptions ??= []).push(n > 2 ? { type: a!, value: words.slice(2).join(' ') } : { type: a! });
      return null;
    case 'redirect-gateway':
      o.redirectGateway = words.slice(1);
      return null;
    case 'block-outside-dns':
      if (n !== 1) return bad();
      o.blockOutsideDns = true;
      return null;
    case 'dns':
      o.dns ??= emptyDnsOptions();
      if (applyDnsOption(o.dns, words.slice(1), true) !== null) return bad();
      return null;
    case 'route-ipv6-gateway':
      if (n !== 2 || !isIPv6(a!)) return bad();
      o.routeIpv6Gateway = a!;
      return null;
    case 'block-ipv6':
      if (n !== 1) return bad();
      o.blockIpv6 = true;
      return null;
    case 'auth-token':
      if (n !== 2) return bad();
      o.authToken = a!;
      return null;
    default:
      (o.extra ??= []).push(line);
      return null;
  }
}

/** Push option lines without those that start with one of `prefixes` (push.c push_remove_option). */
export function withoutRemoved(lines: readonly string[], prefixes: readonly string[]): string[] {
  return prefixes.length === 0 ? [...lines] : lines.filter((line) => !prefixes.some((p) => line.startsWith(p)));
}

/**
 * Collects the parts of one PUSH_REPLY (several with push-continuation) into PushOptions,
 * applying --pull-filter rules to each option. Hostile input gives { ok: false }, never a throw.
 */
export class PushReplyCollector {
  private options: PushOptions = {};
  private count = 0;

  constructor(private readonly filters: readonly PullFilter[] = []) {}

  /** Feeds one control message (a 'PUSH_REPLY...' text without NUL). */
  add(message: string): PushReplyStep {
    if (!message.startsWith(PUSH_REPLY)) return this.fail('not-push-reply', message.slice(0, 40));
    const body = message.slice(PUSH_REPLY.length);
    if (body !== '' && !body.startsWith(',')) return this.fail('not-push-reply', message.slice(0, 40));
    const state = { continuation: 0 };
    for (const raw of body === '' ? [] : body.slice(1).split(',')) {
      if (raw.length > MAX_PUSH_OPTION_LENGTH) return this.fail('option-too-long', raw.slice(0, 40));
      const line = raw.replace(/^[ \t]+/, '');
      if (!/^[\x20-\x7e]*$/.test(line)) return this.fail('bad-option', JSON.stringify(line));
      let verdict: PullFilterAction = 'accept';
      for (const f of this.filters) {
        if (line.startsWith(f.text)) {
          verdict = f.action;
          break;
        }
      }
      if (verdict === 'reject') return this.fail('rejected-by-filter', line);
      if (verdict === 'ignore') continue;
      const words = splitWords(line);
      if (words === null) return this.fail('bad-option', `unterminated quote: ${line}`);
      if (words.length === 0) continue;
      if (++this.count > MAX_PUSH_OPTIONS) return this.fail('too-many-options', `more than ${MAX_PUSH_OPTIONS} options`);
      const error = applyOption(this.options, line, words, state);
      if (error !== null) return this.fail('bad-option', error);
    }
    if (state.continuation === 2) return { ok: true, complete: false };
    // options_postprocess_pull: a pushed dns server without an address fails the whole push.
    const dnsProblem = this.options.dns === undefined ? null : dnsOptionsProblem(this.options.dns);
    if (dnsProblem !== null) return this.fail('bad-option', dnsProblem);
    const options = this.options;
    this.reset();
    return { ok: true, complete: true, options };
  }

  /** Forgets a partial reply (new session, or after a failure). */
  reset(): void {
    this.options = {};
    this.count = 0;
  }

  private fail(reason: PushRejectReason, detail: string): PushReplyStep {
    this.reset();
    return { ok: false, reason, detail };
  }
}

/** Parses a whole PUSH_REPLY given as its message(s); a reply that says it continues is 'bad-continuation'. */
export function parsePushReply(messages: string | readonly string[], filters: readonly PullFilter[] = []): PushParseResult {
  const list = typeof messages === 'string' ? [messages] : messages;
  const collector = new PushReplyCollector(filters);
  for (let i = 0; i < list.length; i++) {
    const step = collector.add(list[i]!);
    if (!step.ok) return step;
    if (step.complete) {
      if (i !== list.length - 1)
        return { ok: false, reason: 'bad-continuation', detail: `reply complete after part ${i + 1} of ${list.length}` };
      return { ok: true, options: step.options };
    }
  }
  return { ok: false, reason: 'bad-continuation', detail: 'last part asks for push-continuation' };
}

// IV_PROTO bits (wire doc 8.2) that decide the per-client protocol options.
const IV_PROTO_TLS_KEY_EXPORT = 1 << 3;
const IV_PROTO_CC_EXIT_NOTIFY = 1 << 7;
const IV_PROTO_DYN_TLS_CRYPT = 1 << 9;

/**
 * `key-derivation tls-ekm` or `protocol-flags ...` for a client with IV_PROTO `ivProto`, as
 * multi_client_set_protocol_options + prepare_push_reply choose them. Only features we
 * implement are offered: `local.tlsEkm` (we derive keys by TLS-EKM) and `local.dynTlsCrypt`.
 */
export function pushedProtocolOptions(
  ivProto: number,
  local: { tlsEkm: boolean; dynTlsCrypt: boolean },
): Pick<PushOptions, 'keyDerivation' | 'protocolFlags'> {
  const ekm = local.tlsEkm && (ivProto & IV_PROTO_TLS_KEY_EXPORT) !== 0;
  const ccExit = (ivProto & IV_PROTO_CC_EXIT_NOTIFY) !== 0;
  const dyn = local.dynTlsCrypt && (ivProto & IV_PROTO_DYN_TLS_CRYPT) !== 0;
  const flags: string[] = [];
  const out: Pick<PushOptions, 'keyDerivation' | 'protocolFlags'> = {};
  if (ccExit) {
    flags.push('cc-exit');
    if (ekm) flags.push('tls-ekm');
  } else if (ekm) {
    out.keyDerivation = 'tls-ekm';
  }
  if (dyn) flags.push('dyn-tls-crypt');
  if (flags.length > 0) out.protocolFlags = flags;
  return out;
}
