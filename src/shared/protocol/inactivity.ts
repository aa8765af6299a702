// --inactive SECONDS [BYTES] (forward.c register_activity, check_inactivity_timeout): the timer
// restarts whenever the tunnel (TUN reads and writes, not keepalive pings) has carried BYTES more
// since it last restarted (any traffic when BYTES is 0), and runs out after SECONDS without. A
// client exits then; a server drops that client.

export interface InactiveSetting {
  readonly seconds: number;
  readonly bytes: number;
}

export class InactivityTimer {
  private counted = 0;
  private seen = 0;

  /** `start`: when the timer starts (host clock, ms); `setting` undefined or 0 seconds: never. */
  constructor(
    private readonly setting: InactiveSetting | undefined,
    private since: number,
  ) {}

  /** `total`: the tunnel bytes moved so far (a running total); true once the timeout ran out. */
  expired(total: number, now: number): boolean {
    const setting = this.setting;
    if (setting === undefined || setting.seconds <= 0) return false;
    const moved = total - this.seen;
    this.seen = total;
    if (moved > 0) {
      this.counted += moved;
      if (this.counted >= setting.bytes) {
        this.counted = 0;
        this.since = now;
      }
    }
    return now - this.since >= setting.seconds * 1000;
  }

  /**
   * When expired() would next say true if no traffic moved (ms), or Infinity when off. Traffic
   * moved since the last expired() only makes the real deadline later.
   */
  deadline(): number {
    const setting = this.setting;
    return setting === undefined || setting.seconds <= 0 ? Infinity : this.since + setting.seconds * 1000;
  }
}
