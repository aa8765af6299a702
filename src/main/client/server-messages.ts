// The server's control messages to a client other than PUSH_REPLY (forward.c
// check_incoming_control_channel, push.c receive_auth_failed, incoming_push_message's RESTART
// and HALT): AUTH_FAILED under auth-retry, RESTART and HALT end the run; INFO is logged.
import type { Options } from '../../shared/config';
import type { Logger } from '../../shared/log';
import type { ControlMessage } from '../../shared/protocol/control-message';
import type { ClientPersist, RunControl } from './run-context';

export interface ServerMessageContext {
  readonly options: Options;
  readonly persist: ClientPersist;
  readonly logger: Logger;
  readonly run: RunControl;
}

/** Does what `message` (the parsed `text`) asks of the run. */
export function reactToServerMessage(message: ControlMessage, text: string, ctx: ServerMessageContext): void {
  const { logger, run, persist } = ctx;
  switch (message.kind) {
    case 'auth-failed': {
      logger.log(1, `AUTH: Received control message: ${text}`);
      const list = persist.list;
      if (message.temp !== undefined) {
        if (list !== null) {
          if (message.temp.backoffS !== undefined) list.restartSleepS = message.temp.backoffS;
          if (message.temp.advance === 'remote') list.advanceNext = true;
        }
        run.softSignal('SIGUSR1', 'auth-temp-failure (server temporary reject)');
        return;
      }
      // push.c receive_auth_failed: the same remote again, and a refused session token is dropped
      // and the login tried with the username and password (asked again where they are not kept).
      list?.retryCurrent();
      if (persist.authToken !== null) {
        persist.authToken = null;
        run.softSignal('SIGUSR1', 'auth-failure (auth-token)');
        return;
      }
      const retry = ctx.options.authRetry ?? 'none';
      if (retry === 'none') {
        run.softSignal('SIGTERM', 'auth-failure');
      } else {
        if (retry === 'interact' || ctx.options.authUserPass?.kind !== 'stdin') persist.credentials = null;
        run.softSignal('SIGUSR1', 'auth-failure');
      }
      return;
    }
    case 'restart':
      logger.log(1, `${text} received from server`);
      if (message.flags.nextRemote && persist.list !== null) persist.list.advanceNext = true;
      run.softSignal('SIGUSR1', 'server-pushed-connection-reset');
      return;
    case 'halt':
      logger.log(1, `${text} received from server`);
      run.softSignal('SIGTERM', 'server-pushed-halt');
      return;
    case 'info':
    case 'info-pre':
      logger.log(1, text);
      return;
    default:
      logger.log(4, `Unknown control message: '${text}'`);
  }
}
