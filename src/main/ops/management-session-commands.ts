// The management commands that set this management session's own switches or read the shared
// histories (manage.c man_bytecount, man_history for log / echo / state, man_env_filter, quit).
import { atoi, type ManagementCommand } from './management-command-types';
import { formatLogEntry, formatStateEntry } from './management-history';

/** man_history: on | off | N | all, for log, echo and state. */
function history(
  parm: string,
  type: 'log' | 'echo' | 'state',
  entries: readonly string[],
  setRealtime: (on: boolean) => void,
  send: (line: string) => void,
): void {
  if (parm === 'on' || parm === 'off') {
    setRealtime(parm === 'on');
    send(`SUCCESS: real-time ${type} notification set to ${parm === 'on' ? 'ON' : 'OFF'}`);
    return;
  }
  const n = parm === 'all' ? 0 : atoi(parm);
  if (parm !== 'all' && n <= 0) {
    send(`ERROR: ${type} parameter must be 'on' or 'off' or some number n or 'all'`);
    return;
  }
  // Oldest first, the last n (all when n is 0).
  const from = n === 0 ? 0 : Math.max(0, entries.length - n);
  for (let i = from; i < entries.length; i++) send(entries[i] as string);
  send('END');
}

export const SESSION_COMMANDS = {
  bytecount: {
    min: 1,
    max: 1,
    help: ['bytecount n            : Show bytes in/out, update every n secs (0=off).'],
    run(p, _host, s) {
      s.setBytecount(Math.max(0, atoi(p[1] as string)));
      s.send('SUCCESS: bytecount interval changed');
    },
  },
  echo: {
    min: 1,
    max: 2,
    help: ['echo [on|off] [N|all]  : Like log, but only show messages in echo buffer.'],
    run(p, _host, s) {
      for (const parm of p.slice(1, 3))
        history(
          parm,
          'echo',
          [],
          (on) => s.setEchoRealtime(on),
          (line) => s.send(line),
        );
    },
  },
  exit: {
    min: 0,
    max: 0,
    help: ['exit|quit              : Close management session.'],
    run: (_p, _host, s) => s.quit(),
  },
  quit: { min: 0, max: 0, run: (_p, _host, s) => s.quit() },
  log: {
    min: 1,
    max: 2,
    help: [
      'log [on|off] [N|all]   : Turn on/off realtime log display',
      "                         + show last N lines or 'all' for entire history.",
    ],
    run(p, host, s) {
      for (const parm of p.slice(1, 3))
        history(
          parm,
          'log',
          host.logHistory().map(formatLogEntry),
          (on) => s.setLogRealtime(on),
          (line) => s.send(line),
        );
    },
  },
  'env-filter': {
    min: 0,
    max: 1,
    help: ['env-filter [level]     : Set env-var filter level'],
    run(p, _host, s) {
      const level = p[1] !== undefined ? atoi(p[1]) : 0;
      s.setEnvFilter(level);
      s.send(`SUCCESS: env_filter_level=${level}`);
    },
  },
  state: {
    min: 0,
    max: 2,
    help: ['state [on|off] [N|all] : Like log, but show state history.'],
    run(p, host, s) {
      for (const parm of p.length === 1 ? ['1'] : p.slice(1, 3)) {
        history(
          parm,
          'state',
          host.stateHistory().map(formatStateEntry),
          (on) => s.setStateRealtime(on),
          (line) => s.send(line),
        );
      }
    },
  },
} satisfies Record<string, ManagementCommand>;
