// OpenVPN's openvpn_main: an outer loop per SIGHUP (re-read the config), an inner run per
// SIGUSR1 (restart with the same config), SIGUSR2 for statistics, SIGTERM/SIGINT to exit.
import type { Options } from '../shared/config';
import type { Logger } from '../shared/log';
import type { ServerSignal } from './ops/server-view';

export interface Running {
  /** Stops this run, ended by `signal`; `notify` tells peers (explicit-exit-notify / RESTART). */
  stop(notify: boolean, signal: ServerSignal): Promise<void>;
  logStatistics(): void;
  /**
   * A server's hitless SIGHUP (reload-mode hitless): applies the new options to this run, or says
   * which directives need a restart. Absent: SIGHUP restarts, as in OpenVPN.
   */
  reload?(options: Options): { applied: true } | { applied: false; restartFor: string[] };
}

export interface LifecycleHooks {
  loadOptions(): Options;
  /**
   * `raise(signal)` stands for an outside signal (a process signal, the management `signal`
   * command); `raise(signal, reason)` for one the run raises itself (OpenVPN's soft signals,
   * logged as SIGUSR1[soft,ping-restart]).
   */
  start(options: Options, raise: (signal: ServerSignal, reason?: string) => void): Promise<Running>;
  /** Whether a stop for this signal should tell the peers. */
  notifyOn(options: Options, signal: ServerSignal): boolean;
  logger: Logger;
}

const HANDLED: readonly NodeJS.Signals[] = ['SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGTERM', 'SIGINT'];

/** Runs until SIGTERM/SIGINT; resolves with the process exit code. */
export async function runLifecycle(hooks: LifecycleHooks): Promise<number> {
  /** `name`: what the log calls it (SIGINT acts as SIGTERM but is logged as itself, as in OpenVPN). */
  const queue: { signal: ServerSignal; reason: string | undefined; name?: string }[] = [];
  let wake: (() => void) | null = null;
  const raise = (signal: ServerSignal, reason?: string): void => {
    queue.push({ signal, reason });
    wake?.();
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signal !== 'SIGINT') return raise(signal as ServerSignal);
    queue.push({ signal: 'SIGTERM', reason: undefined, name: 'SIGINT' });
    wake?.();
  };
  for (const signal of HANDLED) process.on(signal, onSignal);
  const nextSignal = async (): Promise<{ signal: ServerSignal; reason: string | undefined; name?: string }> => {
    while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    wake = null;
    return queue.shift()!;
  };
  try {
    let options = hooks.loadOptions();
    for (;;) {
      const running = await hooks.start(options, raise);
      let next: { signal: ServerSignal; reason: string | undefined; name?: string };
      /** A SIGHUP's configuration that needs the restart below (undefined: load it then). */
      let reloaded: Options | undefined;
      for (;;) {
        next = await nextSignal();
        if (next.signal === 'SIGUSR2') {
          running.logStatistics();
          continue;
        }
        next = remapUsr1(next, options);
        if (next.signal !== 'SIGHUP' || running.reload === undefined || next.reason !== undefined) break;
        const outcome = reloadInPlace(hooks, running, options, next.name ?? next.signal);
        if (outcome.kind === 'restart') {
          reloaded = outcome.options;
          break;
        }
        if (outcome.kind === 'applied') options = outcome.options;
      }
      const signal = next.signal;
      const source = next.reason === undefined ? 'hard,' : `soft,${next.reason}`;
      hooks.logger.log(1, `${next.name ?? signal}[${source}] received, process ${signal === 'SIGTERM' ? 'exiting' : 'restarting'}`);
      await running.stop(hooks.notifyOn(options, signal), signal);
      if (signal === 'SIGTERM') return 0;
      if (signal === 'SIGHUP') {
        try {
          options = reloaded ?? hooks.loadOptions();
        } catch (error) {
          // A broken edit must not take a running server down: keep the last good config.
          hooks.logger.error(`SIGHUP: the new configuration is refused, restarting with the previous one: ${(error as Error).message}`);
        }
      }
    }
  } finally {
    for (const signal of HANDLED) process.off(signal, onSignal);
  }
}

/**
 * --remap-usr1 SIGHUP|SIGTERM (sig.c remap_signal): on a client, a SIGUSR1, sent or raised by the
 * run itself (ping-restart, a server's RESTART), acts as that signal instead and is logged as it.
 * A server does not remap its own signals (multi_process_signal); its client instances end on
 * either signal, so there it changes nothing.
 */
function remapUsr1<T extends { signal: ServerSignal; name?: string }>(next: T, options: Options): T {
  if (next.signal !== 'SIGUSR1' || options.remapUsr1 === undefined || options.mode === 'server') return next;
  return { ...next, signal: options.remapUsr1, name: options.remapUsr1 };
}

type InPlace = { kind: 'applied'; options: Options } | { kind: 'kept' } | { kind: 'restart'; options: Options | undefined };

/**
 * SIGHUP on a run that can reload: the new configuration applied in place (reload-mode hitless),
 * refused with the running one kept, or handed to a full restart (reload-mode restart, or a
 * change the running server cannot take).
 */
function reloadInPlace(hooks: LifecycleHooks, running: Running, current: Options, name: string): InPlace {
  let fresh: Options;
  try {
    fresh = hooks.loadOptions();
  } catch (error) {
    if (current.reloadMode === 'restart') return { kind: 'restart', options: undefined };
    hooks.logger.error(`${name}: the new configuration is refused, the running one stays: ${(error as Error).message}`);
    return { kind: 'kept' };
  }
  if (fresh.reloadMode === 'restart') return { kind: 'restart', options: fresh };
  hooks.logger.log(1, `${name}[hard,] received, reloading the configuration`);
  try {
    const outcome = running.reload!(fresh);
    if (outcome.applied) return { kind: 'applied', options: fresh };
    hooks.logger.log(1, `${name}: ${outcome.restartFor.join(', ')} changed, which needs a restart`);
    return { kind: 'restart', options: fresh };
  } catch (error) {
    hooks.logger.error(`${name}: the new configuration is refused, the running one stays: ${(error as Error).message}`);
    return { kind: 'kept' };
  }
}
