// `shardvpn load` flags, parsed with node:util parseArgs. Every mistake gives one line that
// says what to write instead; nothing here touches the network or the profile's files.
import { isIP } from 'node:net';
import os from 'node:os';
import { parseArgs } from 'node:util';

import { MAX_ECHO_PACKET, MIN_ECHO_PACKET } from '../../shared/load/icmp-echo';

/** Seconds between a lost session (or a failed new attempt) and the next attempt: openvpn's connect-retry default is 1 s. */
export const RECONNECT_DELAY_S = 1;

export interface LoadOptions {
  readonly profile: string;
  readonly remote: string | null;
  readonly port: number | null;
  readonly authUserPass: string | null;
  readonly clients: number;
  /** Connections started per second; 0: all at once. */
  readonly rate: number;
  readonly durationS: number;
  readonly threads: number;
  /** Per client; 0: no traffic. */
  readonly pps: number;
  /** Bulk mode: each client keeps `window` echo requests in flight, sent and received in batches. */
  readonly bandwidth: boolean;
  /** Echo requests in flight per client in bulk mode. */
  readonly window: number;
  readonly size: number;
  readonly target: string | null;
  readonly handshakeTimeoutS: number;
  /** A client that loses its session starts a new one (new socket), as openvpn's ping-restart does. */
  readonly reconnect: boolean;
  /** Local addresses the clients' sockets bind to, client i to sources[i % length]; empty: the kernel picks. */
  readonly sources: readonly string[];
  readonly json: string | null;
  readonly quiet: boolean;
}

export type LoadOptionsResult = { ok: true; options: LoadOptions } | { ok: true; help: true } | { ok: false; error: string };

/** Echo requests in flight per client in bulk mode, by default and at most. */
export const DEFAULT_WINDOW = 64;
export const MAX_WINDOW = 512;
/** Default inner packet size in bulk mode: a full-sized packet under a 1500-byte tunnel MTU. */
export const BANDWIDTH_SIZE = 1400;

export const LOAD_USAGE = `Usage: shardvpn load --profile FILE [options]

Simulates many OpenVPN clients (UDP or TCP as the profile says, no TUN device) against a server and reports connects/s,
handshake latency, failures by reason and, with --pps, in-tunnel ICMP echo loss and RTT. With --bandwidth, every connected
client pushes bulk echo traffic (closed loop: --window requests in flight, sealed and sent in batches) and the report gives
Gbit/s and packets/s each way, loss and RTT (UDP profiles only).

  --profile FILE           client config (.ovpn): ca/cert/key, tls-auth/tls-crypt, remote, data-ciphers
  --remote HOST            server address (overrides the profile's remote)
  --port PORT              server port (overrides the profile)
  --auth-user-pass FILE    username and password lines (overrides the profile)
  --clients N              simulated clients (default 1)
  --rate R                 connections started per second; 0 = all at once (default 0)
  --duration S             seconds the run lasts; it also lasts until every client was started (default 10)
  --threads T              worker threads (default: number of CPUs, at most the client count)
  --pps P                  ICMP echo requests per second per client inside the tunnel (default 0: none)
  --bandwidth              bulk traffic: each client keeps --window echo requests in flight, sends a new batch as
                           replies come back (one sendmmsg per batch); a request unanswered for about 4 RTTs
                           (at most 1 s) gives its place up
  --window N               echo requests in flight per client with --bandwidth, 1..${MAX_WINDOW} (default ${DEFAULT_WINDOW})
  --size BYTES             inner IPv4 packet size of each echo request, ${MIN_ECHO_PACKET}..${MAX_ECHO_PACKET} (default 84;
                           ${BANDWIDTH_SIZE} with --bandwidth)
  --target ADDR            echo target (default: the pushed route-gateway, else the server's tunnel address)
  --handshake-timeout S    a client not connected after S seconds fails with 'timeout' (default 60)
  --reconnect              a client that loses its session (ping-restart, server RESTART, closed TCP connection)
                           starts a new one from a new socket after ${RECONNECT_DELAY_S} s, as openvpn does; retried until the end
  --source ADDR[,ADDR...]  local addresses to send from, the clients spread over them in turn (default: the kernel
                           picks one); each address gives about 28,000 clients their own source port, so more
                           clients than that need more addresses (add them to the interface first)
  --json FILE              also write the final report as JSON
  --quiet                  no live progress (a bar on a terminal, a line a second otherwise)
  -h, --help               this text
`;

function number(name: string, text: string | undefined, fallback: number, min: number, max: number, integer: boolean): number | string {
  if (text === undefined) return fallback;
  if (!/^-?\d+(\.\d+)?$/.test(text.trim())) return `--${name}: '${text}' is not a number`;
  const v = Number(text);
  if (integer && !Number.isInteger(v)) return `--${name}: '${text}' must be a whole number`;
  if (v < min || v > max) return `--${name}: ${text} is out of range (${min}..${max})`;
  return v;
}

const NUMERIC = new Set(['--clients', '--rate', '--duration', '--threads', '--pps', '--window', '--size', '--port', '--handshake-timeout']);

/** `--clients -3` as `--clients=-3`, so a negative number gets the range message, not parseArgs' "ambiguous". */
function joinNegativeNumbers(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (NUMERIC.has(a) && next !== undefined && /^-\d/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else {
      out.push(a);
    }
  }
  return out;
}

export function parseLoadArgs(argv: readonly string[]): LoadOptionsResult {
  let parsed;
  try {
    parsed = parseArgs({
      args: joinNegativeNumbers(argv),
      strict: true,
      allowPositionals: false,
      options: {
        profile: { type: 'string' },
        remote: { type: 'string' },
        port: { type: 'string' },
        'auth-user-pass': { type: 'string' },
        clients: { type: 'string' },
        rate: { type: 'string' },
        duration: { type: 'string' },
        threads: { type: 'string' },
        pps: { type: 'string' },
        bandwidth: { type: 'boolean' },
        window: { type: 'string' },
        size: { type: 'string' },
        target: { type: 'string' },
        'handshake-timeout': { type: 'string' },
        reconnect: { type: 'boolean' },
        source: { type: 'string' },
        json: { type: 'string' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    return { ok: false, error: `${(error as Error).message} (see shardvpn load --help)` };
  }
  const v = parsed.values;
  if (v.help === true) return { ok: true, help: true };
  if (v.profile === undefined || v.profile === '')
    return { ok: false, error: '--profile FILE is required: a client config (.ovpn) with ca, cert and key' };

  const clients = number('clients', v.clients, 1, 1, 1_000_000, true);
  if (typeof clients === 'string') return { ok: false, error: `${clients}; give the number of simulated clients, at least 1` };
  const checks: Array<[string, number | string]> = [];
  const rate = number('rate', v.rate, 0, 0, 1_000_000, false);
  const durationS = number('duration', v.duration, 10, 0.1, 86_400, false);
  const threads = number('threads', v.threads, Math.max(1, os.availableParallelism()), 1, 1024, true);
  const pps = number('pps', v.pps, 0, 0, 100_000, false);
  const bandwidth = v.bandwidth === true;
  const window = number('window', v.window, DEFAULT_WINDOW, 1, MAX_WINDOW, true);
  const size = number('size', v.size, bandwidth ? BANDWIDTH_SIZE : 84, MIN_ECHO_PACKET, MAX_ECHO_PACKET, true);
  const port = number('port', v.port, 0, 1, 65_535, true);
  const handshakeTimeoutS = number('handshake-timeout', v['handshake-timeout'], 60, 1, 3600, false);
  checks.push(
    ['rate', rate],
    ['duration', durationS],
    ['threads', threads],
    ['pps', pps],
    ['window', window],
    ['size', size],
    ['port', port],
    ['handshake-timeout', handshakeTimeoutS],
  );
  for (const [, value] of checks) if (typeof value === 'string') return { ok: false, error: value };
  if (!bandwidth && v.window !== undefined) return { ok: false, error: '--window applies only with --bandwidth' };
  if (bandwidth && v.pps !== undefined)
    return { ok: false, error: '--pps and --bandwidth exclude each other: --bandwidth sends as fast as replies come back' };
  if (v.remote === '') return { ok: false, error: '--remote: empty host name' };
  if (v.json === '') return { ok: false, error: '--json: empty file name' };
  const sources = v.source === undefined ? [] : v.source.split(',').map((a) => a.trim());
  const badSource = sources.find((a) => isIP(a) === 0);
  if (badSource !== undefined)
    return { ok: false, error: `--source: '${badSource}' is not an IPv4 or IPv6 address; give local addresses, comma-separated` };
  return {
    ok: true,
    options: {
      profile: v.profile,
      remote: v.remote ?? null,
      port: v.port === undefined ? null : (port as number),
      authUserPass: v['auth-user-pass'] ?? null,
      clients,
      rate: rate as number,
      durationS: durationS as number,
      threads: Math.min(threads as number, clients),
      pps: pps as number,
      bandwidth,
      window: window as number,
      size: size as number,
      target: v.target ?? null,
      handshakeTimeoutS: handshakeTimeoutS as number,
      reconnect: v.reconnect === true,
      sources,
      json: v.json ?? null,
      quiet: v.quiet === true,
    },
  };
}
