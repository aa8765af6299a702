// Our side of an interop test against a real openvpn: one ControlSession over a plain UDP
// socket, its timers on the real clock, and every event it raised.
import type * as dgram from 'node:dgram';

import { ControlSession } from '../src/shared/session/control-session';
import type { ControlSessionConfig, SessionEvent } from '../src/shared/session/types';

export class UdpSessionHost {
  readonly events: SessionEvent[] = [];
  session: ControlSession | null = null;
  /** Where the session's packets go; nothing is sent while null. */
  remote: { address: string; port: number } | null = null;
  onEvent: (e: SessionEvent, s: ControlSession) => void = () => undefined;
  private timer: NodeJS.Timeout | null = null;

  constructor(readonly sock: dgram.Socket) {}

  attach(cfg: ControlSessionConfig): ControlSession {
    const s: ControlSession = new ControlSession(cfg, {
      sendPacket: (w) => this.send(w),
      onEvent: (e) => {
        this.events.push(e);
        this.onEvent(e, s);
        this.schedule();
      },
      now: () => performance.now(),
    });
    this.session = s;
    return s;
  }

  send(w: Buffer): void {
    if (this.remote !== null) this.sock.send(w, this.remote.port, this.remote.address);
  }

  /** Arms one timer for the session's next timeout; call after anything that may move it. */
  schedule(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const t = this.session?.nextTimeout();
    if (t === null || t === undefined) return;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.session?.tick();
        this.schedule();
      },
      Math.max(0, t - performance.now()),
    );
  }

  close(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.session?.close();
    this.sock.close();
  }
}
