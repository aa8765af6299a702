// OpenVPN 2.6's --dns options (options.c "dns", dns.c), in a client's config or pushed by its
// server: search domains, and DNS servers by priority with their addresses, the domains they
// resolve, DNSSEC, transport and SNI. A client hands them to its scripts as dns_* variables and,
// as 2.6 does outside Windows, also as `dhcp-option DNS|DNS6|DOMAIN-SEARCH` foreign options in
// place of the ones they supersede, so scripts written for dhcp-option (update-resolv-conf) see them.
import { isIP } from 'node:net';

import { formatIPv6, parseIPv6 } from '../ip-address';

export interface DnsServerAddress {
  readonly address: string;
  readonly port?: number;
}

export interface DnsServer {
  readonly priority: number;
  readonly addresses: DnsServerAddress[];
  readonly resolveDomains: string[];
  dnssec?: 'yes' | 'optional' | 'no';
  transport?: 'plain' | 'DoH' | 'DoT';
  sni?: string;
}

export interface DnsOptions {
  readonly searchDomains: string[];
  /** Sorted by priority, lowest (most preferred) first, one per priority. */
  readonly servers: DnsServer[];
}

/** As dns.h: a server takes at most this many addresses. */
const MAX_ADDRESSES = 8;

export function emptyDnsOptions(): DnsOptions {
  return { searchDomains: [], servers: [] };
}

/** The server of `priority`, made in its place by priority if there is none yet (dns_server_get). */
function serverOf(o: DnsOptions, priority: number): DnsServer {
  let at = 0;
  while (at < o.servers.length && o.servers[at]!.priority < priority) at++;
  const found = o.servers[at];
  if (found !== undefined && found.priority === priority) return found;
  const made: DnsServer = { priority, addresses: [], resolveDomains: [] };
  o.servers.splice(at, 0, made);
  return made;
}

/** `1.2.3.4`, `1.2.3.4:853`, `ab::cd` or `[ab::cd]:853` (dns_server_addr_parse); null when malformed. */
function parseServerAddress(text: string): DnsServerAddress | null {
  const first = text.indexOf(':');
  const last = text.lastIndexOf(':');
  let address = text;
  let portText: string | undefined;
  if (first < 0 || first === last) {
    if (last >= 0) {
      address = text.slice(0, last);
      portText = text.slice(last + 1);
    }
    if (isIP(address) !== 4) return null;
  } else {
    if (text.startsWith('[')) {
      const close = text.indexOf(']');
      if (close < 0 || text[close + 1] !== ':') return null;
      address = text.slice(1, close);
      portText = text.slice(close + 2);
    }
    if (isIP(address) !== 6) return null;
    // As OpenVPN prints it back (inet_ntop): lower case, the longest zero run shortened.
    const bytes = new Uint8Array(16);
    if (!parseIPv6(address, bytes)) return null;
    address = formatIPv6(bytes);
  }
  if (portText === undefined) return { address };
  const port = /^[0-9]+$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65535)) return null;
  return { address, port };
}

/**
 * Applies one `dns ...` option (its words after `dns`) to `o`; `pulled`: pushed by the server
 * (priorities from 0 only). Returns OpenVPN's complaint for a malformed option, else null.
 */
export function applyDnsOption(o: DnsOptions, words: readonly string[], pulled: boolean): string | null {
  const [kind, priorityText, field, ...rest] = words;
  if (kind === 'search-domains' && words.length > 1) {
    o.searchDomains.push(...words.slice(1));
    return null;
  }
  if (kind !== 'server' || priorityText === undefined || field === undefined || rest.length === 0) {
    return `--dns: unknown option type '${kind ?? ''}' or missing or unknown parameter`;
  }
  const priority = /^[+-]?[0-9]+$/.test(priorityText) ? Number(priorityText) : NaN;
  if (!(priority >= (pulled ? 0 : -128) && priority <= 127)) return `--dns server: invalid priority value '${priorityText}'`;
  const server = serverOf(o, priority);
  switch (field) {
    case 'address':
      for (const text of rest) {
        const parsed = parseServerAddress(text);
        if (parsed === null || server.addresses.length >= MAX_ADDRESSES) {
          return `--dns server ${priority}: malformed address or maximum exceeded '${text}'`;
        }
        server.addresses.push(parsed);
      }
      return null;
    case 'resolve-domains':
      server.resolveDomains.push(...rest);
      return null;
    case 'dnssec':
      if (rest.length !== 1 || (rest[0] !== 'yes' && rest[0] !== 'optional' && rest[0] !== 'no')) {
        return `--dns server ${priority}: malformed dnssec value '${rest.join(' ')}'`;
      }
      server.dnssec = rest[0];
      return null;
    case 'transport':
      if (rest.length !== 1 || (rest[0] !== 'plain' && rest[0] !== 'DoH' && rest[0] !== 'DoT')) {
        return `--dns server ${priority}: malformed transport value '${rest.join(' ')}'`;
      }
      server.transport = rest[0];
      return null;
    case 'sni':
      if (rest.length !== 1) break;
      server.sni = rest[0]!;
      return null;
  }
  return `--dns server ${priority}: unknown option type '${field}' or missing or unknown parameter`;
}

/** The options as `dns ...` lines (what a PUSH_REPLY carries). */
export function dnsOptionLines(o: DnsOptions): string[] {
  const lines: string[] = [];
  if (o.searchDomains.length > 0) lines.push(`dns search-domains ${o.searchDomains.join(' ')}`);
  for (const s of o.servers) {
    const at = `dns server ${s.priority}`;
    if (s.addresses.length > 0) lines.push(`${at} address ${s.addresses.map(formatServerAddress).join(' ')}`);
    if (s.resolveDomains.length > 0) lines.push(`${at} resolve-domains ${s.resolveDomains.join(' ')}`);
    if (s.dnssec !== undefined) lines.push(`${at} dnssec ${s.dnssec}`);
    if (s.transport !== undefined) lines.push(`${at} transport ${s.transport}`);
    if (s.sni !== undefined) lines.push(`${at} sni ${s.sni}`);
  }
  return lines;
}

function formatServerAddress(a: DnsServerAddress): string {
  if (a.port === undefined) return a.address;
  return isIP(a.address) === 6 ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

/** dns_options_verify: a server without an address is an error; null when all have one. */
export function dnsOptionsProblem(o: DnsOptions): string | null {
  const bare = o.servers.find((s) => s.addresses.length === 0);
  return bare === undefined ? null : `ERROR: dns server ${bare.priority} does not have an address assigned`;
}

/**
 * The config's options with the pushed ones (dns_options_postprocess_pull): a pushed server
 * replaces the config's of the same priority, the others keep their place by priority; the
 * pushed search domains follow the config's.
 */
export function mergePulledDns(local: DnsOptions | undefined, pulled: DnsOptions | undefined): DnsOptions | undefined {
  if (pulled === undefined) return local;
  if (local === undefined) return pulled;
  const servers = [...pulled.servers, ...local.servers.filter((s) => !pulled.servers.some((p) => p.priority === s.priority))];
  servers.sort((a, b) => a.priority - b.priority);
  return { searchDomains: [...local.searchDomains, ...pulled.searchDomains], servers };
}

/** The scripts' dns_* variables (setenv_dns_options): servers numbered from 1 in priority order. */
export function dnsEnvironment(o: DnsOptions): Record<string, string> {
  const env: Record<string, string> = {};
  o.searchDomains.forEach((d, i) => (env[`dns_search_domain_${i + 1}`] = d));
  o.servers.forEach((s, n) => {
    const i = n + 1;
    s.addresses.forEach((a, j) => {
      env[`dns_server_${i}_address_${j + 1}`] = a.address;
      if (a.port !== undefined) env[`dns_server_${i}_port_${j + 1}`] = String(a.port);
    });
    s.resolveDomains.forEach((d, j) => (env[`dns_server_${i}_resolve_domain_${j + 1}`] = d));
    if (s.dnssec !== undefined) env[`dns_server_${i}_dnssec`] = s.dnssec;
    if (s.transport !== undefined) env[`dns_server_${i}_transport`] = s.transport;
    if (s.sni !== undefined) env[`dns_server_${i}_sni`] = s.sni;
  });
  return env;
}

/**
 * The dhcp-option lines scripts see as foreign options (foreign_options_copy_dns): with --dns
 * servers, their addresses replace `dhcp-option DNS`; with search domains, they replace
 * `dhcp-option DOMAIN-SEARCH`; the other lines stay, in order, before them.
 */
export function dnsForeignOptions(o: DnsOptions | undefined, dhcpOptions: readonly string[]): string[] {
  if (o === undefined || (o.servers.length === 0 && o.searchDomains.length === 0)) return [...dhcpOptions];
  const kept = dhcpOptions.filter(
    (line) =>
      !(
        (o.servers.length > 0 && line.startsWith('dhcp-option DNS')) ||
        (o.searchDomains.length > 0 && line.startsWith('dhcp-option DOMAIN-SEARCH'))
      ),
  );
  for (const s of o.servers) for (const a of s.addresses) kept.push(`dhcp-option ${isIP(a.address) === 6 ? 'DNS6' : 'DNS'} ${a.address}`);
  for (const d of o.searchDomains) kept.push(`dhcp-option DOMAIN-SEARCH ${d}`);
  return kept;
}
