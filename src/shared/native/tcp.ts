// TCP listening sockets with SO_REUSEPORT and the descriptor helpers the shard pool needs.
import { addon } from './addon';
import type { SocketRouting } from './socket-routing';

export interface TcpListenerOptions {
  family: 4 | 6;
  dualStack: boolean;
  address: string;
  port: number;
  /** Several listeners on one port, the kernel spreading connections over them. */
  reusePort: boolean;
  backlog?: number;
  routing?: SocketRouting;
}

/**
 * A listening TCP socket's descriptor (non-blocking, close-on-exec), for net.Server.listen({ fd })
 * in the thread that serves it. Until a server takes it over, closeDescriptor() frees it.
 */
export function openTcpListener(options: TcpListenerOptions): number {
  const opened = addon.openTcpListener(
    options.family,
    options.reusePort,
    options.dualStack,
    options.address,
    options.port,
    options.backlog ?? 1024,
    options.routing?.mark ?? 0,
    options.routing?.device ?? '',
  );
  if (opened.routingProblem !== '') options.routing?.onProblem?.(opened.routingProblem);
  return opened.fd;
}

export function closeDescriptor(fd: number): void {
  addon.closeDescriptor(fd);
}

/**
 * A second descriptor of the same socket (close-on-exec), closed when this thread ends unless
 * claimDescriptor says something here took it over.
 */
export function dupDescriptor(fd: number): number {
  return addon.dupDescriptor(fd);
}

/** A copy from dupDescriptor now belongs to a handle that closes it (a listening net.Server). */
export function claimDescriptor(fd: number): void {
  addon.claimDescriptor(fd);
}

/** The local port a socket descriptor is bound to. */
export function socketPort(fd: number): number {
  return addon.socketPort(fd);
}
