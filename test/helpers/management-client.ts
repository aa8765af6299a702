// A management interface client for tests against a live server: keeps every line it receives,
// waits for lines, and sends commands (reply lines up to SUCCESS/ERROR, or another last line).
import net from 'node:net';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 100 ms; fails after `timeoutMs`, with `context()` in the message. */
export async function waitUntil(what: string, check: () => boolean, timeoutMs: number, context: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${context()}`);
    await sleep(100);
  }
}

/** A management interface client that keeps every line and answers commands. */
export class ManagementClient {
  readonly lines: string[] = [];
  private buffer = '';
  private readonly socket: net.Socket;
  private closed = false;

  constructor(socketPath: string) {
    this.socket = net.connect(socketPath);
    this.socket.setEncoding('latin1');
    this.socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let eol: number;
      while ((eol = this.buffer.indexOf('\r\n')) >= 0) {
        this.lines.push(this.buffer.slice(0, eol));
        this.buffer = this.buffer.slice(eol + 2);
      }
    });
    this.socket.on('error', () => undefined);
    this.socket.on('close', () => (this.closed = true));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Waits for a line matching `pattern` at index `from` or later; resolves with its index. */
  async waitLine(pattern: RegExp, from = 0, timeoutMs = 10_000): Promise<number> {
    let index = -1;
    await waitUntil(
      `management line ${pattern}`,
      () => (index = this.lines.findIndex((l, i) => i >= from && pattern.test(l))) >= 0,
      timeoutMs,
      () => this.lines.slice(-40).join('\n'),
    );
    return index;
  }

  /** Sends a command; resolves with the reply lines (notifications, which start with '>', left out) up to `last`. */
  async command(command: string, last: RegExp = /^(?:SUCCESS|ERROR):/): Promise<string[]> {
    const from = this.lines.length;
    this.socket.write(`${command}\n`);
    const end = await this.waitLine(last, from);
    return this.lines.slice(from, end + 1).filter((l) => !l.startsWith('>'));
  }

  close(): void {
    this.socket.destroy();
  }
}
