// The client's connection list across restarts (init.c next_connection_entry,
// socket_restart_pause): which remote to try next, when to give up (connect-retry-max), how
// long to wait first (connect-retry with backoff), and resolving the host name. A name with
// several addresses is tried address by address before the next remote (do_close_link_socket
// keeps the resolved list while addresses are left), and a restart after a completed
// connection goes back to the address that worked.
import { lookup } from 'node:dns/promises';

import type { ConnectionEntry } from '../../shared/config';

export interface RemoteAddress {
  family: 4 | 6;
  address: string;
}

/** `address`: the one to use without resolving again (null: resolve the entry's name). */
export type NextConnection =
  { ok: true; entry: ConnectionEntry; index: number; address: RemoteAddress | null } | { ok: false; reason: string };

export class ConnectionList {
  private current = -1;
  /** Set once a connection completed: the next restart retries the same remote first. */
  private noAdvance = false;
  /** RESTART,N or an AUTH_FAILED,TEMP advance: skip to the next entry. */
  advanceNext = false;
  private unsuccessfulAttempts = 0;
  /** A pause the server asked for (AUTH_FAILED,TEMP backoff), used once. */
  restartSleepS = 0;
  readonly entries: readonly ConnectionEntry[];
  /** The current entry's resolved addresses and the one in use. */
  private addresses: RemoteAddress[] = [];
  private addressIndex = 0;

  constructor(entries: readonly ConnectionEntry[], random: boolean, rng: () => number = Math.random) {
    const list = [...entries];
    if (random) {
      // remote-random: one shuffle at startup, as OpenVPN does.
      for (let i = list.length - 1; i > 0; i--) {
        const j = Math.floor(rng() * (i + 1));
        [list[i], list[j]] = [list[j]!, list[i]!];
      }
    }
    this.entries = list;
  }

  /** The entry for the next attempt; fails when connect-retry-max is used up. */
  next(connectRetryMax: number): NextConnection {
    if (this.entries.length === 0) return { ok: false, reason: "no remote to connect to: add 'remote HOST [PORT]'" };
    if (this.noAdvance && this.current >= 0 && !this.advanceNext) {
      this.noAdvance = false;
    } else if (this.addressIndex + 1 < this.addresses.length && !this.advanceNext) {
      // The same remote's next address: not an attempt of its own.
      this.addressIndex++;
    } else {
      this.noAdvance = false;
      this.advanceNext = false;
      this.addresses = [];
      this.addressIndex = 0;
      this.unsuccessfulAttempts++;
      this.current = (this.current + 1) % this.entries.length;
    }
    if (connectRetryMax > 0 && this.unsuccessfulAttempts > this.entries.length * connectRetryMax) {
      return { ok: false, reason: `All connections have been connect-retry-max (${connectRetryMax}) times unsuccessful, exiting` };
    }
    return { ok: true, entry: this.entries[this.current]!, index: this.current, address: this.addresses[this.addressIndex] ?? null };
  }

  /** The run resolved the current entry's name: the first address is tried now, the rest later. */
  resolved(addresses: readonly RemoteAddress[]): RemoteAddress | null {
    this.addresses = [...addresses];
    this.addressIndex = 0;
    return this.addresses[0] ?? null;
  }

  /** An AUTH_FAILED (push.c receive_auth_failed sets no_advance): the login is tried again on this remote. */
  retryCurrent(): void {
    this.noAdvance = true;
  }

  /** Initialization Sequence Completed: reset the failure count, stay on this remote. */
  completed(): void {
    this.unsuccessfulAttempts = 0;
    this.noAdvance = true;
  }

  /** Seconds to wait before the attempt (socket_restart_pause): connect-retry, doubled after 5 rounds, capped. */
  restartPauseS(entry: ConnectionEntry): number {
    let sec = entry.connectRetry;
    const backoff = Math.floor(this.unsuccessfulAttempts / this.entries.length) - 4;
    if (backoff > 0) sec = Math.max(sec, 1) * 2 ** Math.min(backoff, 15);
    if (sec > entry.connectRetryMaxWait) sec = entry.connectRetryMaxWait;
    if (this.restartSleepS > sec) sec = this.restartSleepS;
    this.restartSleepS = 0;
    return sec;
  }
}

export type Resolved = { ok: true; addresses: RemoteAddress[] } | { ok: false; reason: string };

/** dns.lookup of the remote host in the proto's family (udp4 / udp6 / udp): every address, in the resolver's order. */
export async function resolveRemote(host: string, family: 'any' | 'ipv4' | 'ipv6'): Promise<Resolved> {
  try {
    const all = await lookup(host, { all: true, family: family === 'ipv4' ? 4 : family === 'ipv6' ? 6 : 0 });
    if (all.length === 0) return { ok: false, reason: 'no address' };
    return { ok: true, addresses: all.map((a) => ({ family: a.family === 6 ? 6 : 4, address: a.address })) };
  } catch (error) {
    return { ok: false, reason: (error as NodeJS.ErrnoException).code ?? (error as Error).message };
  }
}
