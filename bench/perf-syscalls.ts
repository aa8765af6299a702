// System calls of every thread of a process over an interval, counted by `perf stat` (tracepoints:
// raw_syscalls:sys_enter and the batched UDP calls), for the benchmarks that report calls per GB.
import { spawn } from 'node:child_process';

export const SYSCALL_EVENTS = [
  'raw_syscalls:sys_enter',
  'syscalls:sys_enter_sendmmsg',
  'syscalls:sys_enter_recvmmsg',
  'syscalls:sys_enter_read',
  'syscalls:sys_enter_write',
  'syscalls:sys_enter_writev',
  'syscalls:sys_enter_epoll_pwait',
] as const;

/** Starts `perf stat` on every thread of `pid`; stop() ends it and returns the counts, in SYSCALL_EVENTS order (NaN: unparsed). */
export function countSyscalls(pid: number): { stop(): Promise<number[]> } {
  const perf = spawn('perf', ['stat', '-x', ',', '-e', SYSCALL_EVENTS.join(','), '-p', String(pid)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let text = '';
  perf.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return {
    stop: () =>
      new Promise((resolve) => {
        perf.once('exit', () => {
          const counts = SYSCALL_EVENTS.map((event) => {
            const line = text.split('\n').find((l) => l.split(',')[2] === event);
            return line === undefined ? NaN : Number(line.split(',')[0]);
          });
          resolve(counts);
        });
        perf.kill('SIGINT');
      }),
  };
}
