// What the parts of one client run (connect, control channel, tunnel, timeouts) share: the
// state the process keeps across SIGUSR1 restarts (OpenVPN's c->persist), and the run's own
// way to end itself.
import type { TunDevice } from '../../shared/native';
import type { ServerSignal } from '../ops/server-view';
import type { Credentials } from './auth-user-pass';
import type { ConnectionList } from './remotes';
import type { TunnelFacts } from '../scripts';
import type { AppliedNetwork } from './tun-network';

/** A session token the server pushed (auth-gen-token), with the username it goes with. */
export interface SessionToken {
  username: string;
  token: string;
}

/** What outlives a run; ClientProcess holds it. */
export interface ClientPersist {
  readonly list: ConnectionList | null;
  /** auth-user-pass, read once; null: read (or asked) again at the next run. */
  credentials: Credentials | null;
  /**
   * The session token the server pushed (auth-gen-token), sent instead of the password from then
   * on, at renegotiations and reconnects, until an AUTH_FAILED drops it (OpenVPN's auth_token).
   */
  authToken: SessionToken | null;
  /** persist-tun: the device and what is on it, kept over SIGUSR1. */
  tun: TunDevice | null;
  applied: AppliedNetwork | null;
  /** What the kept device's scripts saw, for its route-pre-down and down if it must go after all. */
  keptFacts: TunnelFacts | null;
  /** Raised above 0 by a fatal error the run hit (the process then exits with it). */
  exitStatus: number;
  /** The signal that is ending the run (its down script and persist-tun read it). */
  readonly lastSignal: ServerSignal | null;
  readonly configFile?: string;
}

/** How a part of the run asks whether the run is ending, and ends it. */
export interface RunControl {
  /** The run is ending or stopped: a step that awaited something gives up. */
  isOver(): boolean;
  /** A signal the run raises itself (OpenVPN's register_signal with a soft source). */
  softSignal(signal: ServerSignal, text: string): void;
}

/** The server this run talks to. */
export interface RemoteEndpoint {
  readonly family: 4 | 6;
  readonly address: string;
  readonly port: number;
}
