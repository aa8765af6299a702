// Which socket the link binds, as OpenVPN 2.6 decides it (socket.c resolve_bind_local and
// socket_bind): `local` given as an address or a name picks the family (its first address in
// the proto's family); without `local`, udp6/tcp6 bind `::` and plain udp/tcp and udp4/tcp4
// bind `0.0.0.0` (the first passive address getaddrinfo gives for no host: the stock 2.6 binary
// logs "Could not determine IPv4/IPv6 protocol. Using AF_INET"). An IPv6 socket takes IPv4 peers
// too (IPV6_V6ONLY off) unless `bind ipv6only`.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

import type { ConnectionFields } from '../shared/config';

export interface LinkLocal {
  family: 4 | 6;
  /** IPV6_V6ONLY off: IPv4 peers arrive as v4-mapped addresses on the IPv6 socket. */
  dualStack: boolean;
  address: string;
}

export type LinkLocalResult = { ok: true; local: LinkLocal } | { ok: false; reason: string };

type Entry = Pick<ConnectionFields, 'proto' | 'local' | 'bindIpv6Only'>;

/** OpenVPN's print_sockaddr, as its link logs show an address: [AF_INET]1.2.3.4:1194, [AF_INET6]::1:1194. */
export function printSockaddr(family: 4 | 6, address: string, port: number): string {
  return `[AF_INET${family === 6 ? '6' : ''}]${address}:${port}`;
}

/**
 * The address to bind for `entry`; `peerFamily` is the family of the remote a client connects
 * to (its socket must be of that family), undefined on a server.
 */
export async function resolveLinkLocal(entry: Entry, peerFamily?: 4 | 6): Promise<LinkLocalResult> {
  const want: 4 | 6 | undefined = peerFamily ?? (entry.proto.family === 'ipv4' ? 4 : entry.proto.family === 'ipv6' ? 6 : undefined);
  const local = entry.local;
  let family: 4 | 6;
  let address: string;
  if (local === undefined) {
    family = want ?? 4;
    address = family === 4 ? '0.0.0.0' : '::';
  } else {
    const literal = isIP(local);
    if (literal !== 0) {
      family = literal === 4 ? 4 : 6;
      address = local;
    } else {
      try {
        const found = await lookup(local, { family: want ?? 0 });
        family = found.family === 6 ? 6 : 4;
        address = found.address;
      } catch (error) {
        return {
          ok: false,
          reason: `local '${local}' does not resolve: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        };
      }
    }
    if (want !== undefined && family !== want) {
      return {
        ok: false,
        reason: `local '${local}' has no ${want === 4 ? 'IPv4' : 'IPv6'} address to bind (the ${peerFamily !== undefined ? 'remote is' : 'proto is'} ${want === 4 ? 'IPv4' : 'IPv6'})`,
      };
    }
  }
  return { ok: true, local: { family, dualStack: family === 6 && !entry.bindIpv6Only, address } };
}
