// One management client's connection (manage.c man_connection: man_read, command_line_add,
// man_check_password, man_output_list): the password prompt, bounded line assembly, the
// client-auth config block, the commands run through management-commands.ts, and this client's
// bytecount timer and real-time switches. Its misbehaviour (garbage, floods, slow reading,
// vanishing mid-command) closes it alone.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import { tokenizeLine } from '../../shared/config/lexer';
import { MANAGEMENT_VERSION, type CommandHost, type CommandSession } from './management-command-types';
import { runCommand } from './management-commands';
import type { ServerView } from './server-view';

/** OpenVPN's command_line buffer: a longer line is discarded. */
export const MAX_COMMAND_LINE = 1024;
/** Lines a client-auth config block may hold (OpenVPN bounds its in-extra buffer too). */
const MAX_BLOCK_LINES = 1000;
/** manage.h MANAGEMENT_N_PASSWORD_RETRIES. */
const PASSWORD_TRIES = 3;
const GREETING = `>INFO:OpenVPN Management Interface Version ${MANAGEMENT_VERSION} -- type 'help' for more info`;

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/** What every session of one ManagementServer shares with it. */
export interface ServerInternals {
  readonly view: ServerView;
  readonly password: string | undefined;
  readonly maxPendingOutput: number;
  readonly host: CommandHost;
  readonly logger: (message: string) => void;
  forget(session: ManagementSession): void;
}

export class ManagementSession implements CommandSession {
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
