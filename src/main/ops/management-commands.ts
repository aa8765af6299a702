// The commands of OpenVPN's management interface (manage.c man_dispatch_command) for a server,
// worded as OpenVPN 2.6 words its replies. One session's command in, reply lines out; the
// session object (management.ts) owns the socket and the per-session switches.
import { isIPv4 } from 'node:net';
import type { ServerSignal, ServerView } from './server-view';
import { renderStatus, type StatusOptions } from './status';

/** manage.h MANAGEMENT_VERSION. */
export const MANAGEMENT_VERSION = 5;

/** One remembered log line (`log all`, `>LOG:`): unix seconds, OpenVPN's flag letters, text. */
export interface LogEntry {
  readonly time: number;
  /** msg_flags_string: 'I' info, 'W' warning, 'N' non-fatal error, 'F' fatal, 'D' debug, '' other. */
  readonly flags: string;
  readonly message: string;
}

export type ManagementStateName =
  | 'INITIAL' | 'CONNECTING' | 'WAIT' | 'AUTH' | 'GET_CONFIG' | 'ASSIGN_IP' | 'ADD_ROUTES' | 'CONNECTED'
  | 'RECONNECTING' | 'EXITING' | 'RESOLVE' | 'TCP_CONNECT' | 'AUTH_PENDING';

/** One state change (`state`, `>STATE:`), as management_set_state records it. */
export interface StateEntry {
  readonly time: number;
  readonly name: ManagementStateName;
  /** e.g. SUCCESS for CONNECTED. */
  readonly detail?: string;
  /** Local tunnel IPv4 address. */
  readonly localIp?: string;
  readonly remote?: { readonly address: string; readonly port: number };
  readonly local?: { readonly address: string; readonly port: number };
  /** Local tunnel IPv6 address. */
  readonly localIp6?: string;
}

/** log_entry_print for `log`: `time,flags,message`. */
export function formatLogEntry(e: LogEntry): string {
  return `${e.time},${e.flags},${e.message}`;
}

/** log_entry_print for `state`: time,NAME,detail,local ip,remote addr,port,local addr,port[,local ip6]. */
export function formatStateEntry(e: StateEntry): string {
  const sock = (s: StateEntry['remote']): string => (s === undefined ? ',' : `${s.address},${s.port}`);
  const six = e.localIp6 !== undefined && e.localIp6 !== '' ? `,${e.localIp6}` : '';
  return `${e.time},${e.name},${e.detail ?? ''},${e.localIp ?? ''},${sock(e.remote)},${sock(e.local)}${six}`;
}

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

const HELP: readonly string[] = [
  'Commands:',
  'bytecount n            : Show bytes in/out, update every n secs (0=off).',
  'echo [on|off] [N|all]  : Like log, but only show messages in echo buffer.',
  'exit|quit              : Close management session.',
  'help                   : Print this message.',
  'kill cn                : Kill the client instance(s) having common name cn.',
  'kill IP:port           : Kill the client instance connecting from IP:port.',
  'load-stats             : Show global server load stats.',
  'log [on|off] [N|all]   : Turn on/off realtime log display',
  "                         + show last N lines or 'all' for entire history.",
  'pid                    : Show process ID of the current OpenVPN process.',
  'shard-restart n        : Restart shard worker n on its socket (its clients reconnect).',
  'client-auth CID KID    : Authenticate client-id/key-id CID/KID (MULTILINE)',
  'client-auth-nt CID KID : Authenticate client-id/key-id CID/KID',
  'client-pending-auth CID KID MSG timeout : Instruct OpenVPN to send AUTH_PENDING and INFO_PRE msg',
  '                                      to the client and wait for a final client-auth/client-deny',
  'client-deny CID KID R [CR] : Deny auth client-id/key-id CID/KID with log reason',
  '                         text R and optional client reason text CR',
  'client-kill CID [M]    : Kill client instance CID with message M (def=RESTART)',
  'env-filter [level]     : Set env-var filter level',
  'signal s               : Send signal s to daemon,',
  '                         s = SIGHUP|SIGTERM|SIGUSR1|SIGUSR2.',
  'state [on|off] [N|all] : Like log, but show state history.',
  'status [n]             : Show current daemon status info using format #n.',
  'verb [n]               : Set log verbosity level to n, or show if n is absent.',
  "version [n]            : Set client's version to n or show current version of daemon.",
  'END',
];

/** Commands OpenVPN knows that a shardvpn server does not implement (man_command_unsupported). */
const UNSUPPORTED = new Set([
  'auth-retry', 'certificate', 'cr-response',
  'forget-passwords', 'hold', 'mute', 'needok', 'needstr', 'net', 'password', 'pk-sig', 'pkcs11-id-count', 'pkcs11-id-get',
  'proxy', 'remote', 'remote-entry-count', 'remote-entry-get', 'rsa-sig', 'test', 'username',
]);

const SIGNALS: ReadonlySet<string> = new Set(['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2']);

/** man_need: false (and the error said) when fewer than n parameters follow the command. */
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

function need(p: readonly string[], n: number, atLeast: boolean, s: CommandSession): boolean {
  if (p.length - 1 >= n) return true;
  s.send(`ERROR: the '${p[0]}' command requires ${atLeast ? 'at least ' : ''}${n} parameter${n > 1 ? 's' : ''}`);
  return false;
}

/** man_history: on | off | N | all, for log, echo and state. */
function history(
  parm: string, type: 'log' | 'echo' | 'state', entries: readonly string[], setRealtime: (on: boolean) => void, s: CommandSession,
): void {
  if (parm === 'on' || parm === 'off') {
    setRealtime(parm === 'on');
    s.send(`SUCCESS: real-time ${type} notification set to ${parm === 'on' ? 'ON' : 'OFF'}`);
    return;
  }
  const n = parm === 'all' ? 0 : atoi(parm);
  if (parm !== 'all' && n <= 0) {
    s.send(`ERROR: ${type} parameter must be 'on' or 'off' or some number n or 'all'`);
    return;
  }
  // Oldest first, the last n (all when n is 0).
  const from = n === 0 ? 0 : Math.max(0, entries.length - n);
  for (let i = from; i < entries.length; i++) s.send(entries[i] as string);
  s.send('END');
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

/** Runs one tokenized command line (p[0] is the command). */
export function runCommand(p: readonly string[], host: CommandHost, s: CommandSession): void {
  const view = host.view;
  const cmd = p[0];
  if (cmd === undefined) return;
  switch (cmd) {
    case 'exit':
    case 'quit':
      s.quit();
      return;
    case 'help':
      s.send(`Management Interface for ${view.title}`);
      for (const line of HELP) s.send(line);
      return;
    case 'version':
      // `version n` only records the client's version, silently, as OpenVPN 2.6 does.
      if (p[1] !== undefined) return;
      s.send(`OpenVPN Version: ${view.title}`);
      s.send(`Management Version: ${MANAGEMENT_VERSION}`);
      s.send('END');
      return;
    case 'pid':
      s.send(`SUCCESS: pid=${view.pid}`);
      return;
    case 'verb': {
      if (p[1] === undefined) {
        s.send(`SUCCESS: verb=${view.verb()}`);
        return;
      }
      // OpenVPN's set_debug_level: 0..15, atoi() of the argument.
      const level = atoi(p[1]);
      if (level < 0 || level > 15) {
        s.send('ERROR: verb level is out of range');
        return;
      }
      view.setVerb(level);
      s.send('SUCCESS: verb level changed');
      return;
    }
    case 'nclients':
      s.send(`SUCCESS: nclients=${view.clients().length}`);
      return;
    case 'load-stats': {
      const stats = view.loadStats();
      s.send(`SUCCESS: nclients=${stats.nclients},bytesin=${stats.bytesIn},bytesout=${stats.bytesOut}`);
      return;
    }
    case 'env-filter': {
      const level = p[1] !== undefined ? atoi(p[1]) : 0;
      s.setEnvFilter(level);
      s.send(`SUCCESS: env_filter_level=${level}`);
      return;
    }
    case 'signal':
      if (!need(p, 1, false, s)) return;
      signal(p[1] as string, view, s);
      return;
    case 'status': {
      const requested = p[1] !== undefined ? atoi(p[1]) : 0;
      const version = requested === 0 ? view.statusVersion : requested;
      if (version !== 1 && version !== 2 && version !== 3) {
        s.send('ERROR: bad status format version number');
        return;
      }
      for (const line of renderStatus(view, version, host.now(), host.statusOptions)) s.send(line);
      return;
    }
    case 'kill':
      if (need(p, 1, false, s)) kill(p[1] as string, view, s);
      return;
    case 'client-kill': {
      if (!need(p, 1, true, s)) return;
      const cid = scanUnsigned(p[1] as string);
      if (cid === null) {
        s.send('ERROR: cannot parse CID');
        return;
      }
      const ok = view.clientKill(cid, p[2]);
      s.send(ok ? 'SUCCESS: client-kill command succeeded' : 'ERROR: client-kill command failed');
      return;
    }
    case 'client-auth':
    case 'client-auth-nt': {
      if (!need(p, 2, false, s)) return;
      const ids = clientAndKeyId(p[1] as string, p[2] as string, s);
      if (ids === null) return;
      const decide = (config: string): void => reportVerdict(view.clientAuth(ids.cid, ids.keyId, { allow: true, config }), 'client-auth', s);
      if (p[0] === 'client-auth-nt') return decide('');
      s.collectBlock((lines, tooLong) => {
        if (tooLong) s.send('ERROR: client-auth command failed: config block too long');
        else decide(lines.join('\n'));
      });
      return;
    }
    case 'client-pending-auth': {
      if (!need(p, 4, false, s)) return;
      const ids = clientAndKeyId(p[1] as string, p[2] as string, s);
      if (ids === null) return;
      const timeout = scanUnsigned(p[4] as string);
      if (timeout === null) {
        s.send('ERROR: cannot parse TIMEOUT');
        return;
      }
      if (view.clientPendingAuth(ids.cid, ids.keyId, p[3] as string, timeout)) s.send('SUCCESS: client-pending-auth command succeeded');
      else s.send('ERROR: client-pending-auth command failed. Extra parameter might be too long');
      return;
    }
    case 'client-deny': {
      if (!need(p, 3, true, s)) return;
      const ids = clientAndKeyId(p[1] as string, p[2] as string, s);
      if (ids === null) return;
      const verdict = { allow: false as const, reason: p[3] as string, ...(p[4] !== undefined ? { clientReason: p[4] } : {}) };
      reportVerdict(view.clientAuth(ids.cid, ids.keyId, verdict), 'client-deny', s);
      return;
    }
    case 'shard-restart': {
      // shardvpn's own: a wedged shard can be replaced without stopping the others.
      if (!need(p, 1, false, s)) return;
      const index = /^\d+$/.test(p[1] as string) ? Number(p[1]) : -1;
      s.send(view.restartShard(index) ? `SUCCESS: shard ${index} restarting` : `ERROR: no shard ${p[1] as string}`);
      return;
    }
    case 'bytecount':
      if (!need(p, 1, false, s)) return;
      s.setBytecount(Math.max(0, atoi(p[1] as string)));
      s.send('SUCCESS: bytecount interval changed');
      return;
    case 'log':
    case 'echo':
      if (!need(p, 1, true, s)) return;
      for (const parm of p.slice(1, 3)) {
        if (cmd === 'log') history(parm, 'log', host.logHistory().map(formatLogEntry), (on) => s.setLogRealtime(on), s);
        else history(parm, 'echo', [], (on) => s.setEchoRealtime(on), s);
      }
      return;
    case 'state':
      for (const parm of p.length === 1 ? ['1'] : p.slice(1, 3)) {
        history(parm, 'state', host.stateHistory().map(formatStateEntry), (on) => s.setStateRealtime(on), s);
      }
      return;
    default:
      if (UNSUPPORTED.has(cmd)) s.send(`ERROR: The '${cmd}' command is not supported by the current daemon mode`);
      else s.send("ERROR: unknown command, enter 'help' for more options");
  }
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
