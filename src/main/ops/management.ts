// OpenVPN's management interface (manage.c) for a shardvpn server: `management IP PORT [pw-file]`
// or `management PATH unix [pw-file]`. Line based, replies end with \r\n. Unlike OpenVPN, which
// serves one management client at a time, any number may be connected, each with its own
// bytecount, log/state real-time switches and env filter; one client's misbehaviour (garbage,
// floods, slow reading, vanishing mid-command) never touches the others. This file is the
// listener and what all clients share (log and state history, >CLIENT notifications); one
// client's connection is management-session.ts, the commands management-commands.ts.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { formatLogEntry, formatStateEntry, type LogEntry, type StateEntry } from './management-commands';
import { describeListen, removeStaleUnixSocket, type ManagementListen } from './management-listen';
import { clientNotification } from './management-notify';
import { ManagementSession, type ServerInternals } from './management-session';
import type { ClientEvent, ServerView } from './server-view';
import type { StatusOptions } from './status';

export type { LogEntry, ManagementStateName, StateEntry } from './management-commands';
export { managementListenFromOptions, readManagementPassword, type ManagementListen } from './management-listen';
export { MAX_COMMAND_LINE } from './management-session';

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
    for (const session of this.sessions) session.notify(clientNotification(event, nClients, session.envFilter));
  }
}
