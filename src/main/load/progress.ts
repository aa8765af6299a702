// The live progress of `shardvpn load` on stderr. On a terminal: a cli-progress bar, over the
// clients during the connect phase, then over the time left once every client has connected or
// failed (the hold phase). Elsewhere (a log file, CI): one plain line per update, as before. Both
// show the same counts; the final report on stdout does not depend on either.
import { SingleBar } from 'cli-progress';

import { connectRate, progressLine } from './report';

/** The counts the workers report, summed over them. */
export interface ProgressCounts {
  readonly started: number;
  readonly connected: number;
  readonly failed: number;
  /** Inner IP bytes sent and received so far, shown with --bandwidth (null: not shown). */
  readonly traffic?: { readonly sent: number; readonly received: number } | null;
}

/** What the bar shows: its position `value` of `total`, and the words beside it. */
export interface BarState {
  readonly phase: 'connect' | 'hold';
  readonly value: number;
  readonly total: number;
  readonly detail: string;
}

/**
 * The bar at `elapsedMs` into a run planned to last `runMs`. Connect phase: clients that have
 * connected or failed, of those requested. Hold phase (from `settledMs`, when the last client
 * connected or failed): seconds held of the time left then, with the seconds still to go.
 */
export function barState(elapsedMs: number, runMs: number, requested: number, counts: ProgressCounts, settledMs: number | null): BarState {
  const { started, connected, failed } = counts;
  const rate = connectRate(connected, elapsedMs, settledMs);
  if (settledMs === null) {
    const inProgress = Math.max(0, started - connected - failed);
    return {
      phase: 'connect',
      value: connected + failed,
      total: requested,
      detail: `${connected + failed}/${requested}  connected ${connected}  failed ${failed}  in progress ${inProgress}  ${rate} conn/s`,
    };
  }
  const holdMs = Math.max(0, runMs - settledMs);
  const heldMs = Math.min(holdMs, Math.max(0, elapsedMs - settledMs));
  return {
    phase: 'hold',
    value: Math.round(heldMs / 100) / 10,
    total: Math.round(holdMs / 100) / 10,
    detail: `${Math.ceil((holdMs - heldMs) / 1000)} s left  connected ${connected}/${requested}  failed ${failed}  ${rate} conn/s`,
  };
}

export interface ProgressView {
  update(elapsedMs: number, counts: ProgressCounts, settledMs: number | null): void;
  /** Ends the display (the bar gives the line back and shows the cursor again). */
  stop(): void;
}

/** Where the progress goes: process.stderr, or a stand-in for it. */
export type ProgressStream = NodeJS.WritableStream & { isTTY?: boolean };

/** A bar when `stream` is a terminal, plain lines otherwise. */
export function createProgressView(stream: ProgressStream, requested: number, runMs: number): ProgressView {
  return stream.isTTY === true ? barView(stream, requested, runMs) : linesView(stream, requested);
}

function linesView(stream: ProgressStream, requested: number): ProgressView {
  return {
    update(elapsedMs, { started, connected, failed, traffic }, settledMs) {
      stream.write(`${progressLine(elapsedMs, requested, started, connected, failed, settledMs, traffic ?? null)}\n`);
    },
    stop: () => undefined,
  };
}

function barView(stream: ProgressStream, requested: number, runMs: number): ProgressView {
  const bar = new SingleBar({
    stream,
    format: '{phase} |{bar}| {detail}',
    barsize: 30,
    barCompleteChar: '\u2588',
    barIncompleteChar: '\u2591',
    hideCursor: true,
    linewrap: false,
    // The command's own SIGINT handler closes the clients; the bar stops when the run ends.
    gracefulExit: false,
    // Updates come once a second from the caller; the bar redraws only when they change it.
    fps: 2,
  });
  let started = false;
  return {
    update(elapsedMs, counts, settledMs) {
      const state = barState(elapsedMs, runMs, requested, counts, settledMs);
      const payload = { phase: state.phase.padEnd(7), detail: state.detail };
      if (!started) {
        bar.start(state.total, state.value, payload);
        started = true;
        return;
      }
      bar.setTotal(state.total);
      bar.update(state.value, payload);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
