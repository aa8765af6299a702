// A file the server rewrites whole for as long as the process runs (the status file, the
// ifconfig-pool-persist file), through a descriptor opened once, before the server drops root
// (`user`/`group`), and kept for the life of the process: installers point these files into
// directories only root may write (/etc/openvpn, /var/log/openvpn), where a process that became
// nobody could neither create a temporary file to rename over the old one nor open the file
// again after a restart (SIGUSR1). OpenVPN does the same (status.c status_open, kept across
// SIGUSR1 by init.c).
import { constants, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import path from 'node:path';

/** The process's kept files, by absolute path. */
const kept = new Map<string, KeptFile>();

export class KeptFile {
  private constructor(
    readonly path: string,
    private readonly fd: number,
  ) {}

  /**
   * The process's kept file at `file`: opened for reading and writing (close-on-exec, as libuv
   * opens every file) and created with mode 0600 if missing at the first call, the same
   * descriptor at every later one. Throws as openSync does.
   */
  static open(file: string): KeptFile {
    const absolute = path.resolve(file);
    let found = kept.get(absolute);
    if (found === undefined) {
      found = new KeptFile(absolute, openSync(absolute, constants.O_RDWR | constants.O_CREAT, 0o600));
      kept.set(absolute, found);
    }
    return found;
  }

  /**
   * open(), or null when the file cannot be opened for writing; `say` gets the reason (once per
   * call: the callers keep the null and say nothing more).
   */
  static tryOpen(file: string, say: (reason: string) => void): KeptFile | null {
    try {
      return KeptFile.open(file);
    } catch (error) {
      say((error as Error).message);
      return null;
    }
  }

  /** What the file holds now (read from its start: the descriptor is shared by every run). */
  read(): string {
    const bytes = Buffer.alloc(fstatSync(this.fd).size);
    let done = 0;
    while (done < bytes.length) {
      const n = readSync(this.fd, bytes, done, bytes.length - done, done);
      if (n === 0) break;
      done += n;
    }
    return bytes.subarray(0, done).toString('utf8');
  }

  /**
   * Replaces the content with `text`: written from the start, then cut to its length, so a
   * reader sees the new report (with, for an instant, the end of a longer old one), never an
   * empty file.
   */
  replace(text: string): void {
    const bytes = Buffer.from(text);
    let done = 0;
    while (done < bytes.length) done += writeSync(this.fd, bytes, done, bytes.length - done, done);
    ftruncateSync(this.fd, bytes.length);
  }
}
