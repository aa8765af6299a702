// --mark and --bind-dev on a link socket, UDP or a TCP listener (src/native/socket-routing.cc).
import { addon } from './addon';

/** --mark and --bind-dev for a link socket: set before its bind, best effort (as OpenVPN). */
export interface SocketRouting {
  /** SO_MARK (0: none). */
  mark?: number;
  /** SO_BINDTODEVICE ('' or absent: none). */
  device?: string;
  /** Told what could not be set (OpenVPN warns and goes on: no CAP_NET_ADMIN after `user`, say). */
  onProblem?: (problem: string) => void;
}

/** Applies `routing` to the socket `fd` (a no-op for none); a failure goes to routing.onProblem. */
export function setSocketRouting(fd: number, routing: SocketRouting | undefined): void {
  if (routing === undefined || ((routing.mark ?? 0) === 0 && (routing.device ?? '') === '')) return;
  const problem = addon.setSocketRouting(fd, routing.mark ?? 0, routing.device ?? '');
  if (problem !== '') routing.onProblem?.(problem);
}
