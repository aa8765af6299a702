// The management commands about the server as a whole (manage.c man_status, man_signal,
// man_load_stats, man_pid, man_version, verb): what it reports and the signals it takes,
// plus shardvpn's shard-restart.
import { MANAGEMENT_VERSION, atoi, type CommandSession, type ManagementCommand } from './management-command-types';
import type { ServerSignal, ServerView } from './server-view';
import { renderStatus } from './status';

const SIGNALS: ReadonlySet<string> = new Set(['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2']);

function signal(name: string, view: ServerView, s: CommandSession): void {
  if (!SIGNALS.has(name)) {
    s.send(`ERROR: signal '${name}' is not a known signal type`);
    return;
  }
  // SIGINT ends OpenVPN the way SIGTERM does; the server view knows only SIGTERM.
  view.signal((name === 'SIGINT' ? 'SIGTERM' : name) as ServerSignal);
  s.send(`SUCCESS: signal ${name} thrown`);
}

export const DAEMON_COMMANDS = {
  'load-stats': {
    min: 0,
    max: 0,
    help: ['load-stats             : Show global server load stats.'],
    run(_p, host, s) {
      const stats = host.view.loadStats();
      s.send(`SUCCESS: nclients=${stats.nclients},bytesin=${stats.bytesIn},bytesout=${stats.bytesOut}`);
    },
  },
  pid: {
    min: 0,
    max: 0,
    help: ['pid                    : Show process ID of the current OpenVPN process.'],
    run: (_p, host, s) => s.send(`SUCCESS: pid=${host.view.pid}`),
  },
  'shard-restart': {
    // shardvpn's own: a wedged shard can be replaced without stopping the others.
    min: 1,
    max: 1,
    help: ['shard-restart n        : Restart shard worker n on its socket (its clients reconnect).'],
    run(p, host, s) {
      const index = /^\d+$/.test(p[1] as string) ? Number(p[1]) : -1;
      s.send(host.view.restartShard(index) ? `SUCCESS: shard ${index} restarting` : `ERROR: no shard ${p[1] as string}`);
    },
  },
  signal: {
    min: 1,
    max: 1,
    help: ['signal s               : Send signal s to daemon,', '                         s = SIGHUP|SIGTERM|SIGUSR1|SIGUSR2.'],
    run: (p, host, s) => signal(p[1] as string, host.view, s),
  },
  status: {
    min: 0,
    max: 1,
    help: ['status [n]             : Show current daemon status info using format #n.'],
    run(p, host, s) {
      const requested = p[1] !== undefined ? atoi(p[1]) : 0;
      const version = requested === 0 ? host.view.statusVersion : requested;
      if (version !== 1 && version !== 2 && version !== 3) {
        s.send('ERROR: bad status format version number');
        return;
      }
      for (const line of renderStatus(host.view, version, host.now(), host.statusOptions)) s.send(line);
    },
  },
  verb: {
    min: 0,
    max: 1,
    help: ['verb [n]               : Set log verbosity level to n, or show if n is absent.'],
    run(p, host, s) {
      if (p[1] === undefined) {
        s.send(`SUCCESS: verb=${host.view.verb()}`);
        return;
      }
      // OpenVPN's set_debug_level: 0..15, atoi() of the argument.
      const level = atoi(p[1]);
      if (level < 0 || level > 15) {
        s.send('ERROR: verb level is out of range');
        return;
      }
      host.view.setVerb(level);
      s.send('SUCCESS: verb level changed');
    },
  },
  version: {
    min: 0,
    max: 1,
    help: ["version [n]            : Set client's version to n or show current version of daemon."],
    run(p, host, s) {
      // `version n` only records the client's version, silently, as OpenVPN 2.6 does.
      if (p[1] !== undefined) return;
      s.send(`OpenVPN Version: ${host.view.title}`);
      s.send(`Management Version: ${MANAGEMENT_VERSION}`);
      s.send('END');
    },
  },
  nclients: {
    min: 0,
    max: 0,
    run: (_p, host, s) => s.send(`SUCCESS: nclients=${host.view.clients().length}`),
  },
} satisfies Record<string, ManagementCommand>;
