// A file the server rewrites whole for as long as it runs (the status file, the
// ifconfig-pool-persist file), through a descriptor opened once, before the server drops root
// (`user`/`group`). OpenVPN does the same (status.c status_open): installers point these files
// into directories only root may write (/etc/openvpn, /var/log/openvpn), where a process that
// became nobody could neither create a temporary file to rename over the old one nor open the
// file again, but can still write through the descriptor it kept.
import { closeSync, constants, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';

export class KeptFile {
  private constructor(
    readonly path: string,
    private fd: number,
  ) {}

  /** Opens `path` for reading and writing (close-on-exec, as libuv opens every file), creating it (mode 0600) if it is missing; throws as openSync does. */
  static open(path: string): KeptFile {
    return new KeptFile(path, openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600));
  }

  /** What the file holds now. */
  read(): string {
    return readFileSync(this.descriptor(), 'utf8');
  }

  /**
   * Replaces the content with `text`: written from the start, then cut to its length, so a
   * reader sees the new report (with, for an instant, the end of a longer old one), never an
   * empty file.
   */
  replace(text: string): void {
    const fd = this.descriptor();
    const bytes = Buffer.from(text);
    let done = 0;
    while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, done);
    ftruncateSync(fd, bytes.length);
  }

  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }

  private descriptor(): number {
    if (this.fd < 0) throw new Error(`${this.path}: closed`);
    return this.fd;
  }
}
