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

  constructor(
    public verb: number,
    private readonly sink: LogSink = (line) => process.stdout.write(line + '\n'),
  ) {}

  /** Logs `message` when `level` <= verb (1: errors and major events, 3: normal, 4+: detail). */
  log(level: number, message: string): void {
    if (level > this.verb) return;
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
