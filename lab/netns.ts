// Network namespaces for tests: each test makes its own, named with a random suffix, and
// removes it (and everything inside) in cleanup, even when the test fails.
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export function ip(args: readonly string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export class NetworkNamespace {
  private readonly children = new Set<ChildProcess>();
  private removed = false;

  private constructor(readonly name: string) {}

  /** Creates `svt-<prefix>-<random>` with lo up. */
  static create(prefix: string): NetworkNamespace {
    const name = `svt-${prefix}-${randomBytes(3).toString('hex')}`;
    ip(['netns', 'add', name]);
    const ns = new NetworkNamespace(name);
    try {
      ns.ip(['link', 'set', 'lo', 'up']);
    } catch (error) {
      ns.remove();
      throw error;
    }
    return ns;
  }

  /** Runs `ip ARGS` inside the namespace. */
  ip(args: readonly string[]): string {
    return ip(['-n', this.name, ...args]);
  }

  /** Runs a command inside the namespace and returns its stdout. */
  exec(command: string, args: readonly string[], timeoutMs = 20_000): string {
    return execFileSync('ip', ['netns', 'exec', this.name, command, ...args], {
      encoding: 'utf8',
      timeout: timeoutMs,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  /** Starts a process inside the namespace; it is killed (by PID) on remove(). */
  spawn(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, command, ...args], { stdio: 'pipe', ...options });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Kills what was started here and deletes the namespace (its devices go with it). */
  remove(): void {
    if (this.removed) return;
    this.removed = true;
    for (const child of this.children) {
      if (child.exitCode === null && child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    try {
      ip(['netns', 'delete', this.name]);
    } catch {
      // already deleted
    }
  }
}

/** Runs a node script inside a namespace and resolves with its exit code and output. */
export function runNodeIn(
  ns: NetworkNamespace,
  script: string,
  args: readonly string[],
  timeoutMs = 20_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = ns.spawn(process.execPath, [script, ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
