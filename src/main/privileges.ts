// `user` / `group`: drop root once the TUN device and the sockets are open, as OpenVPN does.
// Like OpenVPN, a later restart (SIGHUP/SIGUSR1) then cannot open a new TUN device or read
// root-only key files: persist-tun keeps the device and persist-key the keys over SIGUSR1.
import { accessSync, constants } from 'node:fs';

import type { Options } from '../shared/config';
import type { Logger } from '../shared/log';

let dropped = false;

/**
 * `loadedLater`: files the process still loads after the drop (a restarted shard worker's
 * code); a warning names any the new user cannot read.
 */
export function dropPrivileges(options: Options, logger: Logger, loadedLater: readonly string[] = []): void {
  if (dropped || (options.user === undefined && options.group === undefined)) return;
  try {
    if (options.group !== undefined) {
      process.setgroups?.([options.group]);
      process.setgid?.(options.group);
      logger.log(1, `GID set to ${options.group}`);
    }
    if (options.user !== undefined) {
      process.setuid?.(options.user);
      logger.log(1, `UID set to ${options.user}`);
    }
    dropped = true;
    if (!options.persistTun) logger.log(1, 'WARNING: without persist-tun a restart cannot reopen the TUN device after dropping privileges');
    if (!options.persistKey) logger.log(1, 'WARNING: without persist-key a restart reads the key files again, now without root');
    for (const file of loadedLater) {
      try {
        accessSync(file, constants.R_OK);
      } catch {
        logger.log(
          1,
          `WARNING: ${options.user ?? `group ${options.group ?? ''}`} cannot read ${file}: a restart or a restarted shard will fail (install shardvpn where that user can read it)`,
        );
      }
    }
  } catch (error) {
    throw new Error(`cannot drop privileges to user '${options.user ?? ''}' group '${options.group ?? ''}': ${(error as Error).message}`, {
      cause: error,
    });
  }
}
