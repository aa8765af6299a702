// OpenVPN 2.6's server status report (multi.c multi_print_status), versions 1, 2 and 3, and the
// writer that keeps `--status FILE n` up to date. The same lines feed the management `status`
// command, which ends them with \r\n instead of \n.
import { KeptFile } from '../../shared/kept-file';
import { timeString } from '../../shared/log';
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../../shared/ip-address';
import type { ClientRecord, ServerView } from './server-view';
import { UNDEF_COMMON_NAME } from '../../shared/session/peer-verify';

export type StatusVersion = 1 | 2 | 3;

/** What the report reads of the server. */
export type StatusSource = Pick<ServerView, 'title' | 'clients'>;

export interface StatusOptions {
  /** GLOBAL_STATS "Max bcast/mcast queue length" (OpenVPN's mbuf high-water mark); default 0. */
  readonly maxBcastQueueLength?: number;
  /** GLOBAL_STATS dco_enabled; shardvpn has no kernel offload, so default false. */
  readonly dcoEnabled?: boolean;
}

const scratch = new Uint8Array(16);

/** A virtual IPv6 address in inet_ntop form; '' when absent or unparsable (IA_EMPTY_IF_UNDEF). */
function printIn6(text: string | null): string {
  if (text === null || !parseIPv6(text, scratch)) return '';
  for (let i = 0; i < 16; i++) if (scratch[i] !== 0) return formatIPv6(scratch);
  return '';
}

/** A virtual IPv4 address; '' when absent or 0.0.0.0 (IA_EMPTY_IF_UNDEF). */
function printIn4(text: string | null): string {
  if (text === null || !parseIPv4(text, scratch)) return '';
  if (scratch[0] === 0 && scratch[1] === 0 && scratch[2] === 0 && scratch[3] === 0) return '';
  return formatIPv4(scratch);
}

/**
 * mroute_addr_print of a client's real address: IPv4 and v4-mapped IPv6 as `a.b.c.d:port`; other
 * IPv6 as the bare address without a port (OpenVPN finds `v6addr:port` too ambiguous).
 */
export function formatRealAddress(real: ClientRecord['realAddress']): string {
  if (real.family === 4) return `${real.address}:${real.port}`;
  if (!parseIPv6(real.address, scratch)) return real.address;
  let mapped = scratch[10] === 0xff && scratch[11] === 0xff;
  for (let i = 0; i < 10 && mapped; i++) if (scratch[i] !== 0) mapped = false;
  if (mapped) return `${formatIPv4(scratch, 12)}:${real.port}`;
  return formatIPv6(scratch);
}

/** An iroute (`network/bits`) as mroute_addr_print writes it: IPv6 canonicalised, the rest as given. */
function printIroute(route: string): string {
  const slash = route.indexOf('/');
  const network = slash < 0 ? route : route.slice(0, slash);
  const bits = slash < 0 ? '' : route.slice(slash);
  if (network.includes(':') && parseIPv6(network, scratch)) return formatIPv6(scratch) + bits;
  return route;
}

const undef = (s: string | null): string => (s === null || s === '' ? UNDEF_COMMON_NAME : s);

/** Routing table entries of one client, in the order OpenVPN learns them: IPv4, IPv6, iroutes. */
function routesOf(client: ClientRecord): string[] {
  const routes: string[] = [];
  const v4 = printIn4(client.virtualAddress);
  if (v4 !== '') routes.push(v4);
  const v6 = printIn6(client.virtualAddressIpv6);
  if (v6 !== '') routes.push(v6);
  for (const iroute of client.iroutes) routes.push(printIroute(iroute));
  return routes;
}

/** The report as lines without terminators, exactly as multi_print_status prints them. */
export function renderStatus(source: StatusSource, version: StatusVersion, nowSeconds: number, options: StatusOptions = {}): string[] {
  const now = Math.floor(nowSeconds);
  const clients = source.clients();
  const maxQueue = options.maxBcastQueueLength ?? 0;
  const lines: string[] = [];
  if (version === 1) {
    lines.push('OpenVPN CLIENT LIST', `Updated,${timeString(now)}`, 'Common Name,Real Address,Bytes Received,Bytes Sent,Connected Since');
    for (const c of clients) {
      lines.push(
        `${undef(c.commonName)},${formatRealAddress(c.realAddress)},${c.bytesReceived},${c.bytesSent},${timeString(c.connectedSince)}`,
      );
    }
    lines.push('ROUTING TABLE', 'Virtual Address,Common Name,Real Address,Last Ref');
    for (const c of clients) {
      const tail = `,${undef(c.commonName)},${formatRealAddress(c.realAddress)},${timeString(c.lastRef)}`;
      for (const route of routesOf(c)) lines.push(route + tail);
    }
    lines.push('GLOBAL STATS', `Max bcast/mcast queue length,${maxQueue}`, 'END');
    return lines;
  }
  const sep = version === 3 ? '\t' : ',';
  const row = (...fields: readonly (string | number)[]): string => fields.join(sep);
  lines.push(row('TITLE', source.title), row('TIME', timeString(now), now));
  lines.push(
    row(
      'HEADER',
      'CLIENT_LIST',
      'Common Name',
      'Real Address',
      'Virtual Address',
      'Virtual IPv6 Address',
      'Bytes Received',
      'Bytes Sent',
      'Connected Since',
      'Connected Since (time_t)',
      'Username',
      'Client ID',
      'Peer ID',
      'Data Channel Cipher',
    ),
  );
  for (const c of clients) {
    lines.push(
      row(
        'CLIENT_LIST',
        undef(c.commonName),
        formatRealAddress(c.realAddress),
        printIn4(c.virtualAddress),
        printIn6(c.virtualAddressIpv6),
        c.bytesReceived,
        c.bytesSent,
        timeString(c.connectedSince),
        Math.floor(c.connectedSince),
        undef(c.username),
        c.cid,
        c.peerId,
        c.cipher,
      ),
    );
  }
  lines.push(row('HEADER', 'ROUTING_TABLE', 'Virtual Address', 'Common Name', 'Real Address', 'Last Ref', 'Last Ref (time_t)'));
  for (const c of clients) {
    for (const route of routesOf(c)) {
      lines.push(
        row('ROUTING_TABLE', route, undef(c.commonName), formatRealAddress(c.realAddress), timeString(c.lastRef), Math.floor(c.lastRef)),
      );
    }
  }
  lines.push(
    row('GLOBAL_STATS', 'Max bcast/mcast queue length', maxQueue),
    row('GLOBAL_STATS', 'dco_enabled', options.dcoEnabled ? 1 : 0),
    'END',
  );
  return lines;
}

/** The report as text: `\n` line ends for the file, `\r\n` for the management interface. */
export function statusText(
  source: StatusSource,
  version: StatusVersion,
  nowSeconds: number,
  eol: '\n' | '\r\n',
  options: StatusOptions = {},
): string {
  return renderStatus(source, version, nowSeconds, options)
    .map((line) => line + eol)
    .join('');
}

export interface StatusFileWriterOptions {
  /** `--status FILE`. */
  readonly path: string;
  readonly source: StatusSource;
  /** `--status-version`; default 1 as in OpenVPN. */
  readonly version?: StatusVersion;
  /** `--status FILE n`; default 60 s. */
  readonly intervalSeconds?: number;
  /** Milliseconds since the epoch; default Date.now. */
  readonly clock?: () => number;
  /** Where failed writes are reported; the timer never throws. */
  readonly logger?: (message: string) => void;
  readonly statusOptions?: StatusOptions;
}

/**
 * Keeps the status file current, as OpenVPN does: through a descriptor opened by start() (before
 * the server drops root) and kept by the process, the whole report rewritten in place each time
 * (KeptFile).
 */
export class StatusFileWriter {
  private timer: NodeJS.Timeout | null = null;
  private file: KeptFile | null = null;
  private openFailed = false;
  private readonly clock: () => number;
  private readonly logger: (message: string) => void;
  private readonly intervalMs: number;

  constructor(private readonly options: StatusFileWriterOptions) {
    this.clock = options.clock ?? Date.now;
    this.logger = options.logger ?? (() => undefined);
    const seconds = options.intervalSeconds ?? 60;
    if (!Number.isFinite(seconds) || seconds <= 0)
      throw new RangeError(`status ${options.path} ${seconds}: the interval must be a positive number of seconds`);
    this.intervalMs = seconds * 1000;
  }

  /** Opens the file now, writes once, then every interval. Idempotent. */
  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.writeNow(), this.intervalMs);
    this.timer.unref();
    this.writeNow();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Writes the report now. Never throws: failures go to the logger. */
  writeNow(): void {
    const target = this.options.path;
    const file = this.opened();
    if (file === null) return;
    let text: string;
    try {
      text = statusText(this.options.source, this.options.version ?? 1, this.clock() / 1000, '\n', this.options.statusOptions);
    } catch (error) {
      this.logger(`status ${target}: could not render the report: ${describe(error)}`);
      return;
    }
    try {
      file.replace(text);
    } catch (error) {
      this.logger(`status ${target}: write failed: ${describe(error)}`);
    }
  }

  /** The kept file, opened at the first call; null (said once) when it cannot be opened. */
  private opened(): KeptFile | null {
    if (this.file !== null || this.openFailed) return this.file;
    this.file = KeptFile.tryOpen(this.options.path, (reason) =>
      this.logger(`status ${this.options.path}: cannot open for writing: ${reason}`),
    );
    this.openFailed = this.file === null;
    return this.file;
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
