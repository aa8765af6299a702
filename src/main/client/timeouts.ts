// The timeouts of one client run (forward.c process_coarse_timers in client mode):
// server-poll-timeout until the server first answers, --inactive, --session-timeout, and the keepalive's ping,
// ping-restart and ping-exit (before the push: 2.6's initial ping-restart of 120 s). The run
// feeds it the clock and its counters and does what it answers.
import type { ConnectionEntry, Options } from '../../shared/config';
import { InactivityTimer } from '../../shared/protocol/inactivity';
import { KeepaliveTimer, PRE_PULL_INITIAL_PING_RESTART_S } from '../../shared/protocol/ping';
import { sessionDeadline } from '../../shared/protocol/session-timeout';
import type { PushOptions } from '../../shared/protocol/push-options';
import type { ServerSignal } from '../ops/server-view';
import { UNDEF_COMMON_NAME } from '../../shared/session/peer-verify';

export type TimeoutAction =
  | { readonly kind: 'none' }
  /** Send a keepalive ping on the data channel. */
  | { readonly kind: 'ping' }
  /** End the run: log `log`, then raise `signal` with `reason`. */
  | { readonly kind: 'signal'; readonly signal: ServerSignal; readonly reason: string; readonly log: string };

const NONE: TimeoutAction = { kind: 'none' };
const PING: TimeoutAction = { kind: 'ping' };

/** What the run knows at a tick. */
export interface TimeoutFacts {
  /** Any packet came from the server (ends server-poll-timeout). */
  readonly heardFromServer: boolean;
  /** TUN bytes read and written so far (--inactive). */
  readonly tunnelBytes: number;
  /** The server's common name for the log, '' before TLS. */
  readonly serverCn: string;
}

export class RunTimeouts {
  private readonly keepalive: KeepaliveTimer;
  private readonly inactivity: InactivityTimer;
  /** --session-timeout: when the run ends (ms; Infinity: never). */
  private sessionEnds: number;
  private connectStart = 0;

  constructor(
    private readonly options: Options,
    private readonly entry: ConnectionEntry,
    now: number,
  ) {
    const restart =
      options.pingRecTimeout > 0 && options.pingRecAction === 'restart' ? options.pingRecTimeout : PRE_PULL_INITIAL_PING_RESTART_S;
    this.keepalive = new KeepaliveTimer({ pingS: options.ping, pingRestartS: restart, pingExitS: this.pingExitS() }, now);
    this.inactivity = new InactivityTimer(options.inactive, now);
    this.sessionEnds = sessionDeadline(options.sessionTimeout, now);
  }

  /** The first packet went to the server: server-poll-timeout counts from here. */
  connecting(now: number): void {
    this.connectStart = now;
  }

  /** Authentic data arrived (ping-restart). */
  received(now: number): void {
    this.keepalive.received(now);
  }

  /** Something went to the server (ping). */
  sent(now: number): void {
    this.keepalive.sent(now);
  }

  /** The pushed ping / ping-restart replace ours; the receive timeout starts again. */
  applyPush(pushed: PushOptions, now: number): void {
    const o = this.options;
    const pingS = pushed.ping ?? o.ping;
    const restartS = pushed.pingRestart ?? (o.pingRecAction === 'restart' ? o.pingRecTimeout : 0);
    this.keepalive.configure({ pingS, pingRestartS: restartS, pingExitS: this.pingExitS() }, now);
    // Any pushed timer option (OPT_P_TIMER) re-initialises every timer, session-timeout too.
    if (pushed.ping !== undefined || pushed.pingRestart !== undefined || pushed.sessionTimeout !== undefined)
      this.sessionEnds = sessionDeadline(pushed.sessionTimeout ?? this.options.sessionTimeout, now);
  }

  /** What is due at `now`, in OpenVPN's order. */
  poll(now: number, facts: TimeoutFacts): TimeoutAction {
    const pollTimeoutS = this.entry.connectTimeout;
    if (!facts.heardFromServer && pollTimeoutS > 0 && now - this.connectStart >= pollTimeoutS * 1000) {
      return { kind: 'signal', signal: 'SIGUSR1', reason: 'server_poll', log: 'Server poll timeout, restarting' };
    }
    if (this.inactivity.expired(facts.tunnelBytes, now)) {
      return { kind: 'signal', signal: 'SIGTERM', reason: 'inactive', log: 'Inactivity timeout (--inactive), exiting' };
    }
    if (now >= this.sessionEnds) return { kind: 'signal', signal: 'SIGTERM', reason: 'session-timeout', log: 'Session timeout, exiting' };
    const peer = facts.serverCn || UNDEF_COMMON_NAME;
    switch (this.keepalive.poll(now)) {
      case 'ping':
        return PING;
      case 'ping-restart':
        return {
          kind: 'signal',
          signal: 'SIGUSR1',
          reason: 'ping-restart',
          log: `[${peer}] Inactivity timeout (--ping-restart), restarting`,
        };
      case 'ping-exit':
        return { kind: 'signal', signal: 'SIGTERM', reason: 'ping-exit', log: `[${peer}] Inactivity timeout (--ping-exit), exiting` };
      case 'none':
        return NONE;
    }
  }

  private pingExitS(): number {
    return this.options.pingRecAction === 'exit' ? this.options.pingRecTimeout : 0;
  }
}
