// What a management command works with (manage.c man_dispatch_command's context): the server
// and the shared histories (CommandHost), the management session that typed it (CommandSession),
// and the shape of one entry of the command table (management-commands.ts).
import type { ServerView } from './server-view';
import type { LogEntry, StateEntry } from './management-history';
import type { StatusOptions } from './status';

/** manage.h MANAGEMENT_VERSION. */
export const MANAGEMENT_VERSION = 5;

/** What a command may read and change: the server, the shared histories, this session. */
export interface CommandHost {
  readonly view: ServerView;
  readonly statusOptions: StatusOptions;
  /** Unix seconds. */
  now(): number;
  logHistory(): readonly LogEntry[];
  stateHistory(): readonly StateEntry[];
}

export interface CommandSession {
  send(line: string): void;
  /** quit/exit: close after the replies so far are flushed. */
  quit(): void;
  setBytecount(seconds: number): void;
  setLogRealtime(on: boolean): void;
  setStateRealtime(on: boolean): void;
  setEchoRealtime(on: boolean): void;
  setEnvFilter(level: number): void;
  /**
   * The lines that follow, up to a line `END`, go to `onEnd` instead of being commands (the
   * config block of client-auth); `tooLong` when more than a block may hold were sent.
   */
  collectBlock(onEnd: (lines: readonly string[], tooLong: boolean) => void): void;
}

/**
 * One command of the table. `min` and `max` count the parameters after the name: fewer than
 * `min` get man_need's ERROR (worded "at least" where more may follow), more than `max` are
 * ignored as manage.c ignores them.
 */
export interface ManagementCommand {
  readonly min: number;
  readonly max: number;
  /** Its lines in `help`, in the table's order; none for aliases and unlisted commands. */
  readonly help?: readonly string[];
  run(p: readonly string[], host: CommandHost, s: CommandSession): void;
}

/** C atoi: optional spaces and sign, then digits; 0 when none. */
export function atoi(text: string): number {
  const m = /^[\s]*([+-]?\d+)/.exec(text);
  if (m === null) return 0;
  const n = Number.parseInt(m[1] as string, 10);
  return Number.isFinite(n) ? Math.max(-2147483648, Math.min(2147483647, n)) : 0;
}
