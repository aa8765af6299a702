// Keepalive on the data channel (ping.c, ping.h; wire doc 6.7): the ping is an ordinary
// encrypted data packet whose plaintext is exactly these 16 bytes; it is consumed, never
// written to the tun device. Plus the --ping / --ping-restart timers, driven by injected time.

export const PING_STRING_SIZE = 16;
export const PING_MAGIC: Readonly<Uint8Array> = Uint8Array.of(
  0x2a,
  0x18,
  0x7b,
  0xf3,
  0x64,
  0x1e,
  0xb4,
  0xcb,
  0x07,
  0xed,
  0x2d,
  0x0a,
  0x98,
  0x1f,
  0xc7,
  0x48,
);
/** ping-restart a client uses until the server pushes its own (PRE_PULL_INITIAL_PING_RESTART). */
export const PRE_PULL_INITIAL_PING_RESTART_S = 120;

/** is_ping_msg: the plaintext is the magic and nothing else (the whole length must match). */
export function isPingMessage(memory: Uint8Array, offset: number, length: number): boolean {
  if (length !== PING_STRING_SIZE) return false;
  for (let i = 0; i < PING_STRING_SIZE; i++) {
    if (memory[offset + i] !== PING_MAGIC[i]) return false;
  }
  return true;
}

/** Writes the ping plaintext at `offset`; returns its length (16). */
export function writePingMessage(memory: Uint8Array, offset: number): number {
  memory.set(PING_MAGIC, offset);
  return PING_STRING_SIZE;
}

export type KeepaliveAction = 'none' | 'ping' | 'ping-restart' | 'ping-exit';

export interface KeepaliveSettings {
  /** --ping n: send a ping when nothing was sent for n seconds (0 = off). */
  pingS: number;
  /** --ping-restart n: restart when nothing authenticated arrived for n seconds (0 = off). */
  pingRestartS: number;
  /** --ping-exit n: exit instead (0 = off); checked before ping-restart. */
  pingExitS?: number;
  /**
   * How late the owner may look at the timer (its tick): the ping goes out this much early, so
   * the gap between two pings never exceeds n seconds. A peer counts ping-restart in whole
   * seconds (OpenVPN's `now`), so pings 1.2 s apart against `ping-restart 2` read as 2 s of
   * silence now and then. Default 0.
   */
  pingEarlyMs?: number;
}

/**
 * The --ping / --ping-restart / --ping-exit timers of one connection. Times are in ms. The
 * session calls sent() for every packet it sends on the link (control or data) and received()
 * for every authenticated data packet and valid control packet, then poll() when the timer
 * from nextDeadline() fires.
 */
export class KeepaliveTimer {
  private pingMs = 0;
  private restartMs = 0;
  private exitMs = 0;
  private earlyMs = 0;
  private lastSent: number;
  private lastReceived: number;

  constructor(settings: KeepaliveSettings, now: number) {
    this.lastSent = now;
    this.lastReceived = now;
    this.configure(settings, now);
  }

  /** New intervals (e.g. pushed ping / ping-restart); restarts the receive timeout as OpenVPN does. */
  configure(settings: KeepaliveSettings, now: number): void {
    for (const v of [settings.pingS, settings.pingRestartS, settings.pingExitS ?? 0]) {
      if (!Number.isFinite(v) || v < 0) throw new RangeError(`keepalive interval must be >= 0 seconds, got ${v}`);
    }
    this.pingMs = settings.pingS * 1000;
    this.restartMs = settings.pingRestartS * 1000;
    this.exitMs = (settings.pingExitS ?? 0) * 1000;
    this.earlyMs = Math.min(settings.pingEarlyMs ?? 0, this.pingMs / 2);
    this.lastReceived = now;
  }

  sent(now: number): void {
    this.lastSent = now;
  }

  received(now: number): void {
    this.lastReceived = now;
  }

  /**
   * What is due at `now`: 'ping-exit' / 'ping-restart' when the peer went silent, else 'ping'
   * when we have been silent (the timer then counts the ping as sent), else 'none'.
   */
  poll(now: number): KeepaliveAction {
    if (this.exitMs > 0 && now - this.lastReceived >= this.exitMs) return 'ping-exit';
    if (this.restartMs > 0 && now - this.lastReceived >= this.restartMs) return 'ping-restart';
    if (this.pingMs > 0 && now - this.lastSent >= this.pingMs - this.earlyMs) {
      this.lastSent = now;
      return 'ping';
    }
    return 'none';
  }

  /** When poll() next has something to say (ms), or Infinity when every timer is off. */
  nextDeadline(): number {
    let at = Infinity;
    if (this.pingMs > 0) at = Math.min(at, this.lastSent + this.pingMs - this.earlyMs);
    if (this.restartMs > 0) at = Math.min(at, this.lastReceived + this.restartMs);
    if (this.exitMs > 0) at = Math.min(at, this.lastReceived + this.exitMs);
    return at;
  }
}
