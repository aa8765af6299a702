// OpenVPN's management interface (manage.c) for a shardvpn server: `management IP PORT [pw-file]`
// or `management PATH unix [pw-file]`. Line based, replies end with \r\n. Unlike OpenVPN, which
// serves one management client at a time, any number may be connected, each with its own
// bytecount, log/state real-time switches and env filter; one client's misbehaviour (garbage,
// floods, slow reading, vanishing mid-command) never touches the others.
import { createHash, timingSafeEqual } from 'node:crypto';
import { lstatSync, readFileSync, unlinkSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tokenizeLine } from '../../shared/config/lexer';
import { bitsToNetmask, numberToIpv4, ipv4ToNumber } from '../../shared/ip-math';
import {
  MANAGEMENT_VERSION,
  formatLogEntry,
  formatStateEntry,
  runCommand,
  type CommandHost,
  type CommandSession,
  type LogEntry,
  type StateEntry,
} from './management-commands';
import type { ClientEvent, ServerView } from './server-view';
import type { StatusOptions } from './status';

export type { LogEntry, ManagementStateName, StateEntry } from './management-commands';

export type ManagementListen =
  { readonly kind: 'tcp'; readonly host: string; readonly port: number } | { readonly kind: 'unix'; readonly path: string };

export interface ManagementServerOptions {
  readonly listen: ManagementListen;
  readonly view: ServerView;
  /** From the pw-file (see readManagementPassword); absent: no password asked. */
  readonly password?: string;
  /** Milliseconds since the epoch; default Date.now. */
  readonly clock?: () => number;
  /** `--management-log-cache`: log lines kept for `log all`; default 1000 as in OpenVPN. */
  readonly logCacheSize?: number;
  /** A client whose unread output exceeds this many bytes is disconnected; default 1 MiB. */
  readonly maxPendingOutput?: number;
  readonly statusOptions?: StatusOptions;
  /** Operator-facing notes (client connected, dropped for flooding, ...). */
  readonly logger?: (message: string) => void;
}

/** OpenVPN's command_line buffer: a longer line is discarded. */
export const MAX_COMMAND_LINE = 1024;
/** Lines a client-auth config block may hold (OpenVPN bounds its in-extra buffer too). */
const MAX_BLOCK_LINES = 1000;
/** manage.h MANAGEMENT_N_PASSWORD_RETRIES. */
const PASSWORD_TRIES = 3;
const GREETING = `>INFO:OpenVPN Management Interface Version ${MANAGEMENT_VERSION} -- type 'help' for more info`;

/** The parsed `management` directive (options-types `management`) as a listen spec. */
export function managementListenFromOptions(m: {
  readonly address: string;
  readonly port: string;
  readonly unix: boolean;
  readonly passwordFile?: string;
}): { ok: true; listen: ManagementListen; passwordFile?: string } | { ok: false; reason: string } {
  const pw = m.passwordFile !== undefined ? { passwordFile: m.passwordFile } : {};
  if (m.unix) return { ok: true, listen: { kind: 'unix', path: m.address }, ...pw };
  if (!/^\d{1,5}$/.test(m.port) || Number(m.port) > 65535) {
    return { ok: false, reason: `management ${m.address} ${m.port}: the port must be a number from 0 to 65535` };
  }
  return { ok: true, listen: { kind: 'tcp', host: m.address, port: Number(m.port) }, ...pw };
}

/** The management password: the first line of pw-file, as OpenVPN reads it. Throws a clear Error. */
export function readManagementPassword(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`management password file ${path}: cannot read it: ${(error as Error).message}`, { cause: error });
  }
  const first = (text.split('\n')[0] ?? '').replace(/\r$/, '');
  if (first === '') throw new Error(`management password file ${path}: the first line must hold the password`);
  return first;
}

function describeListen(l: ManagementListen): string {
  return l.kind === 'tcp' ? `management ${l.host} ${l.port}` : `management ${l.path} unix`;
}

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/** env_filter_match (manage.c): which `>CLIENT:ENV` variables a filter level lets through. */
const FILTERED_ENV = [
  'username=',
  'password=',
  'X509_0_CN=',
  'tls_serial_',
  'untrusted_ip=',
  'ifconfig_local=',
  'ifconfig_netmask=',
  'daemon_start_time=',
  'daemon_pid=',
  'dev=',
  'ifconfig_pool_remote_ip=',
  'ifconfig_pool_netmask=',
  'time_duration=',
  'bytes_sent=',
  'bytes_received=',
  'session_id=',
  'session_state=',
];
function envPasses(item: string, level: number): boolean {
  if (level === 0) return true;
  if (level <= 1 && item.startsWith('X509_')) return true;
  if (level <= 2) return FILTERED_ENV.some((prefix) => item.startsWith(prefix));
  return false;
}

/** >CLIENT:ADDRESS prints IPv4 networks with a netmask (MAPF_SUBNET): 10.1.0.0/255.255.255.0. */
function addressForNotification(address: string): string {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(address);
  if (m === null) return address;
  const bits = Number(m[2]);
  if (bits > 32 || ipv4ToNumber(m[1] as string) < 0) return address;
  return `${m[1]}/${numberToIpv4(bitsToNetmask(bits))}`;
}

class ManagementSession implements CommandSession {
  verified: boolean;
  closed = false;
  private tries = 0;
  private readonly line = Buffer.alloc(MAX_COMMAND_LINE);
  private lineLength = 0;
  private overflow = false;
  /** A client-auth config block being read (lines until END). */
  private block: { lines: string[]; tooLong: boolean; onEnd: (lines: readonly string[], tooLong: boolean) => void } | null = null;
  private bytecountTimer: NodeJS.Timeout | null = null;
  logRealtime = false;
  stateRealtime = false;
  envFilter = 0;

  constructor(
    private readonly socket: Socket,
    private readonly internals: ServerInternals,
  ) {
    this.verified = internals.password === undefined;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => this.close());
    socket.on('close', () => this.close());
    if (this.verified) this.send(GREETING);
    else this.write('ENTER PASSWORD:');
  }

  send(line: string): void {
    this.write(`${line}\r\n`);
  }

  private write(text: string): void {
    if (this.closed) return;
    this.socket.write(text);
    if (this.socket.writableLength > this.internals.maxPendingOutput) {
      this.internals.logger(`MANAGEMENT: client dropped: more than ${this.internals.maxPendingOutput} bytes of output unread`);
      this.close();
    }
  }

  /** Flushes what was said, then closes; a peer that never closes its side is cut off after 1 s. */
  quit(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopBytecount();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  close(): void {
    this.closed = true;
    this.stopBytecount();
    if (!this.socket.destroyed) this.socket.destroy();
    this.internals.forget(this);
  }

  setBytecount(seconds: number): void {
    this.stopBytecount();
    if (seconds <= 0) return;
    this.bytecountTimer = setInterval(() => this.sendBytecounts(), seconds * 1000);
    this.bytecountTimer.unref();
  }

  setLogRealtime(on: boolean): void {
    this.logRealtime = on;
  }

  setStateRealtime(on: boolean): void {
    this.stateRealtime = on;
  }

  setEchoRealtime(): void {
    // shardvpn has no --echo messages to show.
  }

  setEnvFilter(level: number): void {
    this.envFilter = level;
  }

  collectBlock(onEnd: (lines: readonly string[], tooLong: boolean) => void): void {
    this.block = { lines: [], tooLong: false, onEnd };
  }

  private stopBytecount(): void {
    if (this.bytecountTimer !== null) clearInterval(this.bytecountTimer);
    this.bytecountTimer = null;
  }

  private sendBytecounts(): void {
    try {
      for (const c of this.internals.view.clients()) {
        if (this.closed) return;
        this.send(`>BYTECOUNT_CLI:${c.cid},${c.bytesReceived},${c.bytesSent}`);
      }
    } catch (error) {
      this.internals.logger(`MANAGEMENT: bytecount failed: ${(error as Error).message}`);
    }
  }

  /**
   * command_line_add: keep printable ASCII and newlines, drop every other byte (binary garbage,
   * CR, NUL). A line longer than MAX_COMMAND_LINE is discarded up to its newline and answered with
   * one ERROR, so memory stays bounded and the client learns why nothing happened.
   */
  private onData(chunk: Buffer): void {
    let processed = false;
    for (let i = 0; i < chunk.length && !this.closed; i++) {
      const b = chunk[i] as number;
      if (b === 0x0a) {
        processed = true;
        this.onLine();
      } else if (b >= 0x20 && b <= 0x7e) {
        if (this.lineLength < MAX_COMMAND_LINE) this.line[this.lineLength++] = b;
        else this.overflow = true;
      }
    }
    // man_read prompts once per read that processed a line while the password is still due.
    if (processed && !this.verified && !this.closed) this.write('ENTER PASSWORD:');
  }

  private onLine(): void {
    const text = this.line.toString('latin1', 0, this.lineLength);
    const overflow = this.overflow;
    this.lineLength = 0;
    this.overflow = false;
    if (!this.verified) {
      this.checkPassword(overflow ? null : text);
      return;
    }
    const block = this.block;
    if (block !== null) {
      if (text === 'END') {
        this.block = null;
        block.onEnd(block.lines, block.tooLong);
      } else if (overflow || block.lines.length >= MAX_BLOCK_LINES) {
        block.tooLong = true;
      } else {
        block.lines.push(text);
      }
      return;
    }
    if (overflow) {
      this.send(`ERROR: command line longer than ${MAX_COMMAND_LINE} bytes, discarded`);
      return;
    }
    const tokens = tokenizeLine(text);
    if (!tokens.ok) {
      this.send(`ERROR: ${tokens.reason}`);
      return;
    }
    try {
      runCommand(tokens.tokens, this.internals.host, this);
    } catch (error) {
      this.internals.logger(`MANAGEMENT: command '${tokens.tokens[0] ?? ''}' failed: ${(error as Error).message}`);
      this.send(`ERROR: ${(error as Error).message}`);
    }
  }

  /** man_check_password. OpenVPN shows nothing but the next prompt on a wrong password. */
  private checkPassword(text: string | null): void {
    const expected = this.internals.password;
    if (expected === undefined) return;
    if (text !== null && timingSafeEqual(digest(text), digest(expected))) {
      this.verified = true;
      this.send('SUCCESS: password is correct');
      this.send(GREETING);
      return;
    }
    if (++this.tries >= PASSWORD_TRIES) {
      this.internals.logger(`MANAGEMENT: client connection rejected after ${PASSWORD_TRIES} failed password attempts`);
      this.quit();
    }
  }

  notify(lines: readonly string[]): void {
    if (!this.verified) return;
    for (const line of lines) this.send(line);
  }
}

interface ServerInternals {
  readonly view: ServerView;
  readonly password: string | undefined;
  readonly maxPendingOutput: number;
  readonly host: CommandHost;
  readonly logger: (message: string) => void;
  forget(session: ManagementSession): void;
}

export class ManagementServer {
  private server: Server | null = null;
  private readonly sessions = new Set<ManagementSession>();
  private readonly logs: LogEntry[] = [];
  private readonly states: StateEntry[] = [];
  private unsubscribe: (() => void) | null = null;
  private readonly clock: () => number;
  private readonly logCacheSize: number;
  private readonly internals: ServerInternals;

  constructor(private readonly options: ManagementServerOptions) {
    this.clock = options.clock ?? Date.now;
    this.logCacheSize = Math.max(1, options.logCacheSize ?? 1000);
    const logger = options.logger ?? (() => undefined);
    this.internals = {
      view: options.view,
      password: options.password,
      maxPendingOutput: options.maxPendingOutput ?? 1024 * 1024,
      logger,
      host: {
        view: options.view,
        statusOptions: options.statusOptions ?? {},
        now: () => this.now(),
        logHistory: () => this.logs,
        stateHistory: () => this.states,
      },
      forget: (session) => this.sessions.delete(session),
    };
  }

  /** Resolves once listening; rejects with an Error naming the directive (address in use, ...). */
  start(): Promise<void> {
    if (this.server !== null) return Promise.resolve();
    const listen = this.options.listen;
    const where = describeListen(listen);
    if (listen.kind === 'unix') {
      const stale = removeStaleUnixSocket(listen.path);
      if (!stale.ok) return Promise.reject(new Error(`${where}: ${stale.reason}`));
    }
    const server = createServer((socket) => this.accept(socket));
    return new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException): void => {
        server.close();
        const code = error.code !== undefined ? ` (${error.code})` : '';
        const hint = error.code === 'EADDRINUSE' ? 'address already in use' : error.message;
        reject(new Error(`${where}: cannot listen: ${hint}${code}`));
      };
      server.once('error', onError);
      const listening = (): void => {
        server.off('error', onError);
        server.on('error', (error) => this.internals.logger(`${where}: ${error.message}`));
        this.server = server;
        this.unsubscribe = this.options.view.onClientEvent((event) => this.onClientEvent(event));
        resolve();
      };
      if (listen.kind === 'tcp') server.listen(listen.port, listen.host, listening);
      else server.listen(listen.path, listening);
    });
  }

  /** Closes the listener and every client. */
  async close(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    for (const session of [...this.sessions]) session.close();
    const server = this.server;
    this.server = null;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The bound TCP address (port 0 picks one) or unix path; null before start(). */
  address(): AddressInfo | string | null {
    return this.server?.address() ?? null;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** A log line for `log all` and `>LOG:` (flags as msg_flags_string: 'I', 'W', 'N', 'F', 'D', ''). */
  log(message: string, flags = 'I'): void {
    const entry: LogEntry = { time: this.now(), flags, message: message.replace(/[\r\n]+/g, ' ') };
    this.logs.push(entry);
    if (this.logs.length > this.logCacheSize) this.logs.splice(0, this.logs.length - this.logCacheSize);
    const line = `>LOG:${formatLogEntry(entry)}`;
    for (const session of this.sessions) if (session.logRealtime) session.notify([line]);
  }

  /** Records a state change for `state` and `>STATE:` (a server reports CONNECTING, ASSIGN_IP, CONNECTED). */
  setState(state: Omit<StateEntry, 'time'> & { readonly time?: number }): void {
    const entry: StateEntry = { ...state, time: state.time ?? this.now() };
    this.states.push(entry);
    if (this.states.length > this.logCacheSize) this.states.splice(0, this.states.length - this.logCacheSize);
    const line = `>STATE:${formatStateEntry(entry)}`;
    for (const session of this.sessions) if (session.stateRealtime) session.notify([line]);
  }

  private now(): number {
    return Math.floor(this.clock() / 1000);
  }

  private accept(socket: Socket): void {
    if (this.server === null) {
      socket.destroy();
      return;
    }
    const session = new ManagementSession(socket, this.internals);
    if (!session.closed) this.sessions.add(session);
  }

  private onClientEvent(event: ClientEvent): void {
    let nClients = 0;
    if (event.type === 'connect' || event.type === 'established') {
      try {
        nClients = this.options.view.clients().length;
      } catch {
        nClients = 0;
      }
    }
    for (const session of this.sessions) {
      const lines: string[] = [];
      // man_output_extra_env: n_clients goes through the same env filter as the rest.
      const nClientsLine = envPasses(`n_clients=${nClients}`, session.envFilter) ? [`>CLIENT:ENV,n_clients=${nClients}`] : [];
      const env = (vars: Readonly<Record<string, string>>): void => {
        for (const [name, value] of Object.entries(vars)) {
          const item = `${name}=${value}`.replace(/[\r\n]/g, ' ');
          if (envPasses(item, session.envFilter)) lines.push(`>CLIENT:ENV,${item}`);
        }
        lines.push('>CLIENT:ENV,END');
      };
      switch (event.type) {
        case 'connect':
          lines.push(`>CLIENT:CONNECT,${event.cid},${event.keyId}`, ...nClientsLine);
          env(event.env);
          break;
        case 'established':
          lines.push(`>CLIENT:ESTABLISHED,${event.cid}`, ...nClientsLine);
          env(event.env);
          break;
        case 'disconnect':
          lines.push(`>CLIENT:DISCONNECT,${event.cid}`);
          env(event.env);
          break;
        case 'address':
          lines.push(`>CLIENT:ADDRESS,${event.cid},${addressForNotification(event.address)},${event.primary ? 1 : 0}`);
          break;
      }
      session.notify(lines);
    }
  }
}

/** OpenVPN unlinks the socket path before binding; we do so only when it is a socket. */
function removeStaleUnixSocket(path: string): { ok: true } | { ok: false; reason: string } {
  try {
    const st = lstatSync(path);
    if (!st.isSocket()) return { ok: false, reason: `${path} exists and is not a socket; refusing to replace it` };
    unlinkSync(path);
    return { ok: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { ok: true };
    return { ok: false, reason: `cannot replace ${path}: ${(error as Error).message}` };
  }
}
