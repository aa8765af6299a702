// How soon a dead shard worker is replaced. A worker that had served for a while is replaced at
// once (its clients reconnect within a second). One that dies again within STABLE_MS of its
// start (or before it was ever ready: its code cannot load as the server's `user`) is replaced
// after a delay that doubles with each such death in a row, up to RESTART_DELAY_MAX_MS: without
// it, a worker that cannot start was restarted hundreds of times a second, taking the whole CPU
// and flooding the log. A restart the operator asks for (management shard-restart) is no death.

/** A worker that served this long before it died counts as healthy: the back-off starts over. */
export const STABLE_MS = 2000;
/** The delay after the second quick death in a row; it doubles with each further one. */
export const RESTART_DELAY_FIRST_MS = 250;
export const RESTART_DELAY_MAX_MS = 30_000;

export class RestartBackoff {
  /** Quick deaths in a row. */
  private failures = 0;

  /**
   * A worker exited. `servedMs`: how long it had been ready (null: it never was). Returns the
   * delay in ms before its replacement starts.
   */
  exited(servedMs: number | null): number {
    if (servedMs !== null && servedMs >= STABLE_MS) this.failures = 0;
    this.failures++;
    if (this.failures === 1) return 0;
    return Math.min(RESTART_DELAY_FIRST_MS * 2 ** (this.failures - 2), RESTART_DELAY_MAX_MS);
  }

  /** Quick deaths in a row so far (0: the last worker served long enough, or none died). */
  get quickFailures(): number {
    return this.failures;
  }
}
