// --http-proxy (proxy.c establish_http_proxy_passthru): a TCP client reaches its server through
// an HTTP proxy's CONNECT. The request names the server as the config does (the proxy resolves
// it), then the custom headers, Host, User-Agent and Basic authentication, in OpenVPN's order.
// Only status 200 opens the tunnel; anything else restarts the run, as OpenVPN's "HTTP proxy
// returned bad status" does. From then on the connection carries OpenVPN's TCP framing as a
// direct one would.
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';

import type { HttpProxy, HttpProxyOptions } from '../../shared/config';
import { remapName } from '../../shared/session/peer-verify';
import { parseAuthFile, promptLine } from './auth-user-pass';

/** The most a proxy's answer may take before its blank line: more is not a proxy talking. */
const MAX_RESPONSE_BYTES = 16 * 1024;
/** proxy.c reads the status line into a 512-byte buffer. */
const STATUS_LINE_MAX = 512;

export interface ProxyCredentials {
  username: string;
  password: string;
}

/** Read once per config, as OpenVPN keeps them (proxy.c's static user_pass): a reconnect after `user nobody` cannot read a root-only file. */
const kept = new WeakMap<HttpProxy, ProxyCredentials>();

/**
 * Basic authentication's username and password: the file's first two lines, or asked on the
 * terminal (misc.c get_user_pass); throws when there are none to be had.
 */
export function proxyCredentials(proxy: HttpProxy, where: { file: string; line: number }): ProxyCredentials | null {
  const auth = proxy.auth;
  if (auth === undefined) return null;
  let credentials = kept.get(proxy);
  if (credentials === undefined) {
    const noTerminal = 'http-proxy: no terminal to ask for the proxy username and password on; name a file of them';
    credentials =
      auth.kind === 'stdin'
        ? {
            username: promptLine('Enter HTTP Proxy Username: ', false, noTerminal),
            password: promptLine('Enter HTTP Proxy Password: ', true, noTerminal),
          }
        : parseAuthFile(readFileSync(auth.resolved, 'utf8'), where, 'http-proxy');
    kept.set(proxy, credentials);
  }
  return credentials;
}

/** The request's lines, without their CRLFs or the blank line that ends it. */
export function connectRequest(
  target: { host: string; port: number },
  options: HttpProxyOptions | undefined,
  credentials: ProxyCredentials | null,
): string[] {
  const lines = [`CONNECT ${target.host}:${target.port} HTTP/${options?.version ?? '1.0'}`];
  let hostSent = false;
  for (const header of options?.headers ?? []) {
    if (header.content !== undefined) {
      lines.push(`${header.name}: ${header.content}`);
      hostSent ||= header.name.toLowerCase() === 'host';
    } else {
      lines.push(header.name);
      hostSent ||= header.name.toLowerCase().startsWith('host:');
    }
  }
  if (!hostSent) lines.push(`Host: ${target.host}`);
  if (options?.agent !== undefined) lines.push(`User-Agent: ${options.agent}`);
  if (credentials !== null) {
    lines.push(`Proxy-Authorization: Basic ${Buffer.from(`${credentials.username}:${credentials.password}`, 'utf8').toString('base64')}`);
  }
  return lines;
}

export type PassthruResult = { ok: true; status: string; leftover: Buffer } | { ok: false; reason: string };

/**
 * Sends the request on `socket` (connected to the proxy) and reads the answer's head. The
 * socket is paused again afterwards; what came after the head (nothing, from a proxy that waits
 * for the client to speak first) is handed back for the link to read first.
 */
export function establishPassthru(
  socket: Socket,
  request: readonly string[],
  timeoutMs: number,
  stopped: () => boolean,
): Promise<PassthruResult> {
  return new Promise((settle) => {
    let head = Buffer.alloc(0);
    const done = (result: PassthruResult): void => {
      clearTimeout(timer);
      clearInterval(watch);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.pause();
      settle(result);
    };
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_RESPONSE_BYTES) done({ ok: false, reason: 'HTTP proxy answer too long' });
        return;
      }
      // The proxy's words go to the log: one line, at most what OpenVPN's buffer holds.
      const status = remapName(head.subarray(0, Math.min(head.indexOf('\r\n'), STATUS_LINE_MAX)).toString('latin1'));
      const code = /^HTTP\/\d+\.\d+ (\d{3})\b/.exec(status)?.[1];
      if (code !== '200') done({ ok: false, reason: `HTTP proxy returned bad status: '${status}'` });
      else done({ ok: true, status, leftover: head.subarray(end + 4) });
    };
    const onError = (error: NodeJS.ErrnoException): void => done({ ok: false, reason: `HTTP proxy: ${error.code ?? error.message}` });
    const onClose = (): void => done({ ok: false, reason: 'HTTP proxy closed the connection' });
    const timer = setTimeout(() => done({ ok: false, reason: 'HTTP proxy did not answer in time' }), timeoutMs);
    // A run stopped meanwhile gives up at once (as the TCP connect step does), not at the timeout.
    const watch = setInterval(() => {
      if (stopped()) done({ ok: false, reason: 'stopped' });
    }, 200);
    socket.on('data', onData);
    socket.once('error', onError);
    socket.once('close', onClose);
    socket.write(`${request.join('\r\n')}\r\n\r\n`);
  });
}
