// The shape of the directive table: each directive declares how many arguments it takes,
// whether it may be an inline block or sit in a <connection> block, and a setter.

import * as net from 'node:net';
import { ConfigError } from './errors';
import { Directive } from './lexer';
import { ConnectionFields, FileRef, Options, PathRef, ProtoSpec, Where } from './options-types';

export interface BuildContext {
  readonly o: Options;
  /** Where connection options go: `o` itself, or the entry of the <connection> being read. */
  readonly ce: ConnectionFields & { remote?: string };
  readonly inConnection: boolean;
  warn(d: Where, message: string): void;
  /** Accepted now, refused by the runtime with this message. */
  unsupported(d: Directive, message: string): void;
  /** A key/cert reference: inline text, or a path resolved once the last `cd` is known. */
  fileRef(d: Directive): FileRef;
  /** A path resolved once the last `cd` is known, with `extra` fields beside it. */
  pathRef<T extends object>(d: Directive, p: string, extra: T): PathRef & T;
}

export interface DirectiveSpec {
  readonly min: number;
  readonly max: number;
  /** May be written as `<name>...</name>` (OpenVPN's OPT_P_INLINE). */
  readonly inline?: boolean;
  /** May appear inside `<connection>` (OpenVPN's OPT_P_CONNECTION). */
  readonly connection?: boolean;
  set(ctx: BuildContext, d: Directive, args: readonly string[]): void;
}

export type DirectiveTable = Readonly<Record<string, DirectiveSpec>>;

/** The options that are plain on/off switches. */
type FlagField = { [K in keyof Options]-?: Options[K] extends boolean | undefined ? K : never }[keyof Options];

/** A directive without arguments that turns one of those switches on (`persist-tun`, `float`, ...). */
export function flag(field: FlagField): DirectiveSpec {
  return {
    min: 0,
    max: 0,
    set(ctx) {
      ctx.o[field] = true;
    },
  };
}

/** The options that are any number (not a union of literal ones, such as a status version). */
type NumberField = {
  [K in keyof Options]-?: NonNullable<Options[K]> extends number ? (number extends NonNullable<Options[K]> ? K : never) : never;
}[keyof Options];

/** A directive of one whole number in [min, max] that sets one option (`verb`, `hand-window`, `sndbuf`, ...). */
export function integer(field: NumberField, what: string, min: number, max: number): DirectiveSpec {
  return {
    min: 1,
    max: 1,
    set(ctx, d, [n]) {
      ctx.o[field] = int(d, n as string, what, min, max);
    },
  };
}

export function fail(d: Where & { name: string }, detail: string): never {
  throw new ConfigError(d, d.name, detail);
}

const DECIMAL = /^[0-9]+$/;

/** A whole decimal number in [min, max]; OpenVPN's atoi would take "abc" as 0, we refuse. */
export function int(d: Directive, s: string, what: string, min: number, max: number): number {
  const n = DECIMAL.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    fail(d, `bad ${what} '${s}': expected a whole number from ${min} to ${max}`);
  }
  return n;
}

export function port(d: Directive, s: string): number {
  return int(d, s, 'port', 0, 65535);
}

export function oneOf<T extends string>(d: Directive, s: string, what: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(s)) return s as T;
  return fail(d, `bad ${what} '${s}': expected ${allowed.join(', ')}`);
}

export function ipv4(d: Directive, s: string, what: string): string {
  if (!net.isIPv4(s)) fail(d, `bad ${what} '${s}': expected an IPv4 address`);
  return s;
}

/** An IPv4 address or a host name (OpenVPN's ip_or_dns_addr_safe). */
export function ipv4OrHost(d: Directive, s: string, what: string): string {
  if (net.isIPv4(s) || /^[A-Za-z0-9][A-Za-z0-9.-]*$/.test(s)) return s;
  return fail(d, `bad ${what} '${s}': expected an IPv4 address or host name`);
}

// Address arithmetic is shared with the server (pool, routes): one implementation in ip-math.
export { ipv4ToNumber as ipv4ToInt, numberToIpv4 as intToIpv4, netmaskToBits as netmaskBits } from '../ip-math';

/** `ADDR/BITS` with an IPv6 address and bits in [min, max] (OpenVPN's get_ipv6_addr). */
export function ipv6Prefix(d: Directive, s: string, what: string, min: number, max: number): { address: string; netbits: number } {
  const slash = s.indexOf('/');
  const address = slash >= 0 ? s.slice(0, slash) : s;
  if (!net.isIPv6(address)) fail(d, `bad ${what} '${s}': expected an IPv6 address/bits`);
  const netbits = slash >= 0 ? int(d, s.slice(slash + 1), `${what} prefix length`, 0, 128) : 128;
  if (netbits < min || netbits > max) fail(d, `${what} '${s}': prefix length must be between /${min} and /${max}`);
  return { address, netbits };
}

export function ipv6(d: Directive, s: string, what: string): string {
  if (!net.isIPv6(s)) fail(d, `bad ${what} '${s}': expected an IPv6 address`);
  return s;
}

const PROTOS: Readonly<Record<string, ProtoSpec>> = {
  udp: { transport: 'udp', family: 'any' },
  udp4: { transport: 'udp', family: 'ipv4' },
  udp6: { transport: 'udp', family: 'ipv6' },
  tcp: { transport: 'tcp', family: 'any' },
  tcp4: { transport: 'tcp', family: 'ipv4' },
  tcp6: { transport: 'tcp', family: 'ipv6' },
  'tcp-server': { transport: 'tcp-server', family: 'any' },
  'tcp4-server': { transport: 'tcp-server', family: 'ipv4' },
  'tcp6-server': { transport: 'tcp-server', family: 'ipv6' },
  'tcp-client': { transport: 'tcp-client', family: 'any' },
  'tcp4-client': { transport: 'tcp-client', family: 'ipv4' },
  'tcp6-client': { transport: 'tcp-client', family: 'ipv6' },
};

/** OpenVPN's ascii2proto/ascii2af. */
export function proto(d: Directive, s: string): ProtoSpec {
  const p = PROTOS[s];
  if (p === undefined) return fail(d, `bad protocol '${s}': expected one of ${Object.keys(PROTOS).join(', ')}`);
  return { ...p };
}
