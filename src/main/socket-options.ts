// What the link socket is set up with: its buffer sizes when the config sets no sndbuf / rcvbuf,
// and its routing (--mark, --bind-dev).
//
// Buffer sizes:
// Both ends read their socket in batches, and while one batch is sealed or opened a peer's burst
// must fit in the kernel's queue: with the usual 208 KiB default a single TCP stream through the
// tunnel lost about one datagram in seven here. The kernel caps the value at
// net.core.rmem_max / wmem_max.
import type { SocketRouting } from '../shared/native';
export const DEFAULT_SOCKET_BUFFER = 4 << 20;

/** --mark and --bind-dev as the link socket's routing settings (absent: none); `warn` hears what could not be set, as OpenVPN warns. */
export function socketRouting(options: { mark?: number; bindDev?: string }, warn: (problem: string) => void): { routing?: SocketRouting } {
  if (options.mark === undefined && options.bindDev === undefined) return {};
  return {
    routing: {
      ...(options.mark !== undefined ? { mark: options.mark } : {}),
      ...(options.bindDev !== undefined ? { device: options.bindDev } : {}),
      onProblem: warn,
    },
  };
}

export function socketBuffers(options: { rcvbuf?: number; sndbuf?: number }): { rcvbuf: number; sndbuf: number } {
  return { rcvbuf: options.rcvbuf ?? DEFAULT_SOCKET_BUFFER, sndbuf: options.sndbuf ?? DEFAULT_SOCKET_BUFFER };
}
