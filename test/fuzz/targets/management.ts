// The management interface as a client's bytes reach it (management-session.ts: bounded line
// assembly, the password prompt, client-auth config blocks; management-commands.ts: the command
// table and each command's parameters), over a stand-in socket and a fake server with two
// clients, one waiting for client-auth. Replies are CRLF lines; no command may fail with an
// exception (the session would answer "ERROR: <exception>" and log "command ... failed").
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { ManagementSession, MAX_COMMAND_LINE } from '../../../src/main/ops/management-session';
import type { ServerInternals } from '../../../src/main/ops/management-session';
import { FakeServerView, client } from '../../helpers/fake-server-view';
import { Finding } from '../finding';

const MAX_PENDING_OUTPUT = 256 * 1024;

/** Enough of a net.Socket for a session: what it writes is kept, nothing goes anywhere. */
class StandInSocket extends EventEmitter {
  written = '';
  destroyed = false;
  writableLength = 0;
  setNoDelay(): this {
    return this;
  }
  write(text: string): boolean {
    this.written += text;
    this.writableLength += text.length;
    return true;
  }
  end(): this {
    return this;
  }
  destroy(): this {
    this.destroyed = true;
    return this;
  }
}

export function fuzz(data: Buffer): void {
  const view = new FakeServerView([
    client({ cid: 0, commonName: 'alice', bytesReceived: 11, bytesSent: 22 }),
    client({ cid: 1, commonName: 'bob', realAddress: { family: 6, address: '2001:db8::7', port: 443 } }),
  ]);
  view.clientAuthEnabled = true;
  view.waiting.set(1, 0);
  const failures: string[] = [];
  // The first byte picks whether a password is asked (then the second line is it).
  const password = (data[0] ?? 0) & 1 ? 'hunter2' : undefined;
  const internals: ServerInternals = {
    view,
    password,
    maxPendingOutput: MAX_PENDING_OUTPUT,
    logger: (message) => {
      if (/ failed: /.test(message)) failures.push(message);
    },
    host: { view, statusOptions: {}, now: () => 1_700_000_200, logHistory: () => [], stateHistory: () => [] },
    forget: () => undefined,
  };
  const socket = new StandInSocket();
  const session = new ManagementSession(socket as unknown as Socket, internals);
  const body = data.subarray(1);
  // Fed in two reads, cut where the input says, as TCP may cut it.
  const cut = body.length === 0 ? 0 : (data[0]! >> 1) % body.length;
  socket.emit('data', body.subarray(0, cut));
  socket.emit('data', body.subarray(cut));
  session.close();
  if (failures.length > 0) throw new Finding(failures.join('\n'));
  for (const line of socket.written.split('\r\n').slice(0, -1)) {
    if (line.includes('\n') || line.includes('\r')) throw new Finding(`reply line with a line break: ${JSON.stringify(line)}`);
  }
  if (socket.writableLength > MAX_PENDING_OUTPUT + 64 * MAX_COMMAND_LINE && !session.closed) throw new Finding('unbounded output');
}
