// --session-timeout N (forward.c check_session_timeout): a session ends N seconds after its timer
// started, traffic or not. A client exits (SIGTERM, "Session timeout, exiting"); a server drops
// that client instance, as it drops one at --inactive, without telling it. The timer starts with
// the session (a client's run, a server's client instance) and again when a pushed value arrives
// (OpenVPN re-initialises its timers on an OPT_P_TIMER push).

/** When a session started at `start` (ms) times out; Infinity for 0 or no setting. */
export function sessionDeadline(seconds: number | undefined, start: number): number {
  return seconds === undefined || seconds <= 0 ? Infinity : start + seconds * 1000;
}
