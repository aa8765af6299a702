// OpenVPN-style log lines ("2026-11-26 14:00:00 message") filtered by verb level.

export type LogSink = (line: string) => void;

function pad(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** Local time as OpenVPN's otime.c time_string prints it (2.6): YYYY-MM-DD HH:MM:SS. */
export function timeString(unixSeconds: number = Date.now() / 1000): string {
  const d = new Date(Math.floor(unixSeconds) * 1000);
  const year = String(d.getFullYear()).padStart(4, '0');
  return `${year}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export class Logger {
  private readonly listeners = new Set<LogSink>();
  /**
   * --mute N (error.c dont_mute): after N consecutive lines of one category the rest are held
   * back until a line of another category comes, which first says how many were. A line given no
   * category is never held back (OpenVPN's M_INFO messages have mute level 0): it ends a run like
   * another category does, so "Initialization Sequence Completed" shows however low N is.
   * 0: nothing is muted.
   */
  mute = 0;
  private muteCategory = '';
  private muteCount = 0;

  constructor(
    public verb: number,
    private readonly sink: LogSink = (line) => process.stdout.write(line + '\n'),
  ) {}

  /**
   * Logs `message` when `level` <= verb (1: errors and major events, 3: normal, 4+: detail);
   * `category` groups repetitive messages for --mute.
   */
  log(level: number, message: string, category = ''): void {
    if (level > this.verb) return;
    if (this.mute > 0 && !this.passesMute(category)) return;
    this.write(message);
  }

  private passesMute(category: string): boolean {
    if (category !== '' && category === this.muteCategory) {
      if (this.muteCount === this.mute) this.write('NOTE: --mute triggered...');
      return ++this.muteCount <= this.mute;
    }
    const suppressed = this.muteCount - this.mute;
    if (suppressed > 0) this.write(`${suppressed} variation(s) on previous ${this.mute} message(s) suppressed by --mute`);
    this.muteCount = 1;
    this.muteCategory = category;
    return true;
  }

  private write(message: string): void {
    const line = `${timeString()} ${message}`;
    this.sink(line);
    for (const listener of this.listeners) listener(line);
  }

  error(message: string): void {
    this.log(0, message);
  }

  /** Also delivers each line to `listener` (the management interface's log). */
  subscribe(listener: LogSink): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
