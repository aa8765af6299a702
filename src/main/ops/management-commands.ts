// The commands of OpenVPN's management interface (manage.c man_dispatch_command) for a server,
// worded as OpenVPN 2.6 words its replies. One session's command in, reply lines out; the
// session object (management.ts) owns the socket and the per-session switches. The commands are
// a table (name -> parameter counts, help lines, handler), as the config directives are.
import { isIPv4 } from 'node:net';
import type { ServerSignal, ServerView } from './server-view';
import { formatLogEntry, formatStateEntry, type LogEntry, type StateEntry } from './management-history';
import { renderStatus, type StatusOptions } from './status';

// The session side (management.ts) formats >LOG: and >STATE: with these.
export { formatLogEntry, formatStateEntry, type LogEntry, type ManagementStateName, type StateEntry } from './management-history';

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

/** C atoi: optional spaces and sign, then digits; 0 when none. */
export function atoi(text: string): number {
  const m = /^[\s]*([+-]?\d+)/.exec(text);
  if (m === null) return 0;
  const n = Number.parseInt(m[1] as string, 10);
  return Number.isFinite(n) ? Math.max(-2147483648, Math.min(2147483647, n)) : 0;
}

/** Commands OpenVPN knows that a shardvpn server does not implement (man_command_unsupported). */
const UNSUPPORTED = new Set([
  'auth-retry',
  'certificate',
  'cr-response',
  'forget-passwords',
  'hold',
  'mute',
  'needok',
  'needstr',
  'net',
  'password',
  'pk-sig',
  'pkcs11-id-count',
  'pkcs11-id-get',
  'proxy',
  'remote',
  'remote-entry-count',
  'remote-entry-get',
  'rsa-sig',
  'test',
  'username',
]);

const SIGNALS: ReadonlySet<string> = new Set(['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2']);

/** parse_cid / parse_uint of manage.c: decimal numbers, or an ERROR naming which. */
function clientAndKeyId(cidText: string, kidText: string, s: CommandSession): { cid: number; keyId: number } | null {
  const cid = scanUnsigned(cidText);
  if (cid === null) {
    s.send('ERROR: cannot parse CID');
    return null;
  }
  const keyId = scanUnsigned(kidText);
  if (keyId === null) {
    s.send('ERROR: cannot parse KID');
    return null;
  }
  return { cid, keyId };
}

/** sscanf("%u"): leading blanks, an optional +, the digits that follow; null without any. */
function scanUnsigned(text: string): number | null {
  const m = /^\s*\+?(\d+)/.exec(text);
  return m === null ? null : Number(m[1]);
}

/** report_command_status. */
function reportVerdict(ok: boolean, command: string, s: CommandSession): void {
  s.send(ok ? `SUCCESS: ${command} command succeeded` : `ERROR: ${command} command failed`);
}

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

/** man_kill: `kill cn` or `kill a.b.c.d:port`. */
function kill(victim: string, view: ServerView, s: CommandSession): void {
  // buf_parse on ':' twice: the text before the first colon, and between the first and second.
  const parts = victim.split(':');
  const p1 = parts[0] ?? '';
  const p2 = parts[1] ?? '';
  if (p1 !== '' && p2 !== '') {
    if (!isIPv4(p1)) {
      s.send(`ERROR: error parsing IP address: ${p1}`);
      return;
    }
    const port = atoi(p2);
    if (port <= 0 || port >= 65536) {
      s.send(`ERROR: port number is out of range: ${p2}`);
      return;
    }
    const n = view.killByAddress(p1, port);
    s.send(n > 0 ? `SUCCESS: ${n} client(s) at address ${p1}:${port} killed` : `ERROR: client at address ${p1}:${port} not found`);
  } else if (p1 !== '') {
    const n = view.killByCommonName(p1);
    s.send(n > 0 ? `SUCCESS: common name '${p1}' found, ${n} client(s) killed` : `ERROR: common name '${p1}' not found`);
  } else {
    s.send('ERROR: kill parse');
  }
}

/**
 * One command of the table. `min` and `max` count the parameters after the name: fewer than
 * `min` get man_need's ERROR (worded "at least" where more may follow), more than `max` are
 * ignored as manage.c ignores them.
 */
interface ManagementCommand {
  readonly min: number;
  readonly max: number;
  /** Its lines in `help`, in the table's order; none for aliases and unlisted commands. */
  readonly help?: readonly string[];
  run(p: readonly string[], host: CommandHost, s: CommandSession): void;
}

/** man_dispatch_command's commands, in the order `help` lists them (OpenVPN 2.6's wording). */
const COMMANDS: Readonly<Record<string, ManagementCommand>> = {
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
  help: {
    min: 0,
    max: 0,
    help: ['help                   : Print this message.'],
    run(_p, host, s) {
      s.send(`Management Interface for ${host.view.title}`);
      s.send('Commands:');
      for (const command of Object.values(COMMANDS)) for (const line of command.help ?? []) s.send(line);
      s.send('END');
    },
  },
  kill: {
    min: 1,
    max: 1,
    help: [
      'kill cn                : Kill the client instance(s) having common name cn.',
      'kill IP:port           : Kill the client instance connecting from IP:port.',
    ],
    run: (p, host, s) => kill(p[1] as string, host.view, s),
  },
  'load-stats': {
    min: 0,
    max: 0,
    help: ['load-stats             : Show global server load stats.'],
    run(_p, host, s) {
      const stats = host.view.loadStats();
      s.send(`SUCCESS: nclients=${stats.nclients},bytesin=${stats.bytesIn},bytesout=${stats.bytesOut}`);
    },
  },
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
  'client-auth': {
    min: 2,
    max: 2,
    help: ['client-auth CID KID    : Authenticate client-id/key-id CID/KID (MULTILINE)'],
    run(p, host, s) {
      const ids = clientAndKeyId(p[1] as string, p[2] as string, s);
      if (ids === null) return;
      s.collectBlock((lines, tooLong) => {
        if (tooLong) s.send('ERROR: client-auth command failed: config block too long');
        else allowClient(ids, lines.join('\n'), host.view, s);
      });
    },
  },
  'client-auth-nt': {
    min: 2,
    max: 2,
    help: ['client-auth-nt CID KID : Authenticate client-id/key-id CID/KID'],
    run(p, host, s) {
      const ids = clientAndKeyId(p[1] as string, p[2] as string, s);
      if (ids !== null) allowClient(ids, '', host.view, s);
    },
  },
  'client-pending-auth': {
    min: 4,
    max: 4,
    help: [
      'client-pending-auth CID KID MSG timeout : Instruct OpenVPN to send AUTH_PENDING and INFO_PRE msg',
      '                                      to the client and wait for a final client-auth/client-deny',
    ],
    run(p, host, s) {
      const ids = clientAndKeyId(p[1] as string, p[2] as string, s);
      if (ids === null) return;
      const timeout = scanUnsigned(p[4] as string);
      if (timeout === null) {
        s.send('ERROR: cannot parse TIMEOUT');
        return;
      }
      if (host.view.clientPendingAuth(ids.cid, ids.keyId, p[3] as string, timeout))
        s.send('SUCCESS: client-pending-auth command succeeded');
      else s.send('ERROR: client-pending-auth command failed. Extra parameter might be too long');
    },
  },
  'client-deny': {
    min: 3,
    max: 4,
    help: [
      'client-deny CID KID R [CR] : Deny auth client-id/key-id CID/KID with log reason',
      '                         text R and optional client reason text CR',
    ],
    run(p, host, s) {
      const ids = clientAndKeyId(p[1] as string, p[2] as string, s);
      if (ids === null) return;
      const verdict = { allow: false as const, reason: p[3] as string, ...(p[4] !== undefined ? { clientReason: p[4] } : {}) };
      reportVerdict(host.view.clientAuth(ids.cid, ids.keyId, verdict), 'client-deny', s);
    },
  },
  'client-kill': {
    min: 1,
    max: 2,
    help: ['client-kill CID [M]    : Kill client instance CID with message M (def=RESTART)'],
    run(p, host, s) {
      const cid = scanUnsigned(p[1] as string);
      if (cid === null) {
        s.send('ERROR: cannot parse CID');
        return;
      }
      reportVerdict(host.view.clientKill(cid, p[2]), 'client-kill', s);
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
  signal: {
    min: 1,
    max: 1,
    help: ['signal s               : Send signal s to daemon,', '                         s = SIGHUP|SIGTERM|SIGUSR1|SIGUSR2.'],
    run: (p, host, s) => signal(p[1] as string, host.view, s),
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
};

/** Runs one tokenized command line (p[0] is the command). */
export function runCommand(p: readonly string[], host: CommandHost, s: CommandSession): void {
  const name = p[0];
  if (name === undefined) return;
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command === undefined) {
    if (UNSUPPORTED.has(name)) s.send(`ERROR: The '${name}' command is not supported by the current daemon mode`);
    else s.send("ERROR: unknown command, enter 'help' for more options");
    return;
  }
  if (p.length - 1 < command.min) {
    // man_need
    const n = command.min;
    s.send(`ERROR: the '${name}' command requires ${command.max > n ? 'at least ' : ''}${n} parameter${n > 1 ? 's' : ''}`);
    return;
  }
  command.run(p, host, s);
}

/** client-auth / client-auth-nt: the client is admitted with this client-connect style config. */
function allowClient(ids: { cid: number; keyId: number }, config: string, view: ServerView, s: CommandSession): void {
  reportVerdict(view.clientAuth(ids.cid, ids.keyId, { allow: true, config }), 'client-auth', s);
}

function signal(name: string, view: ServerView, s: CommandSession): void {
  if (!SIGNALS.has(name)) {
    s.send(`ERROR: signal '${name}' is not a known signal type`);
    return;
  }
  // SIGINT ends OpenVPN the way SIGTERM does; the server view knows only SIGTERM.
  view.signal((name === 'SIGINT' ? 'SIGTERM' : name) as ServerSignal);
  s.send(`SUCCESS: signal ${name} thrown`);
}
