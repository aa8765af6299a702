// Which clients a periodic tick looks at (OpenVPN's multi timer wheel: multi_process_timeout
// visits only the instances whose timer fired). A client with work that can fall due at any time
// (a handshake, a close, traffic) is "hot" and looked at every tick; a client with nothing due
// before a time (quietUntil) is filed under the tick slot of that time and looked at only then.
// Anything that can bring its timers earlier (a packet, a session event) makes it hot again at
// once (wake). Two users: a shard's 200 ms tick over its connected clients (ShardClient), and
// the load generator's 20 ms poll over its simulated clients (SimulatedClient). With 10,000
// idle clients a tick visits the few that are due instead of walking all of them.

/** What the wheel needs of a client. */
export interface Tickable {
  /** 0: look every tick; otherwise nothing to do before this time (ms, the clock the ticks are given). */
  readonly quietUntil: number;
  readonly closed: boolean;
  /** The slot it is filed under, -1 when hot; owned by the wheel. */
  wheelSlot: number;
}

/** wheelSlot of a client taken from its slot for this tick: a second entry of it is skipped. */
const HARVESTED = -2;

export class TickWheel<T extends Tickable> {
  private readonly hot = new Set<T>();
  private readonly slots = new Map<number, T[]>();
  /** The last slot visited; -1 before the first tick. */
  private visited = -1;

  constructor(private readonly tickMs: number) {}

  /** Look at `client` from the next tick on (new, or its timers may have come earlier). */
  wake(client: T): void {
    client.wheelSlot = -1; // an entry left in a slot is stale now and skipped
    this.hot.add(client);
  }

  /** The client is gone. */
  remove(client: T): void {
    client.wheelSlot = -1;
    this.hot.delete(client);
  }

  /** Calls `visit` for every hot client and every client whose slot came, then files each again. */
  tick(now: number, visit: (client: T) => void): void {
    const slot = Math.floor(now / this.tickMs);
    const due: T[] = [];
    // Every slot since the last tick (a late tick, a blocked loop, catches up), in order.
    for (let s = this.visited < 0 ? slot : this.visited + 1; s <= slot; s++) {
      const filed = this.slots.get(s);
      if (filed === undefined) continue;
      this.slots.delete(s);
      for (const client of filed) {
        // Entries of an earlier filing are stale (woken since, or filed again in this slot).
        if (client.wheelSlot !== s) continue;
        client.wheelSlot = HARVESTED;
        due.push(client);
      }
    }
    this.visited = slot;
    for (const client of [...this.hot, ...due]) {
      visit(client);
      this.file(client, slot);
    }
  }

  /** How many clients are hot and how many filed entries wait (tests, diagnostics). */
  get sizes(): { hot: number; filed: number } {
    let filed = 0;
    for (const list of this.slots.values()) filed += list.length;
    return { hot: this.hot.size, filed };
  }

  private file(client: T, slot: number): void {
    if (client.closed) {
      this.remove(client);
      return;
    }
    const quiet = client.quietUntil;
    if (quiet === 0) {
      this.wake(client);
      return;
    }
    this.hot.delete(client);
    // The first slot whose tick time is at or after `quiet`, and never the one just visited.
    let at = Math.ceil(quiet / this.tickMs);
    if (at <= slot) at = slot + 1;
    client.wheelSlot = at;
    const list = this.slots.get(at);
    if (list === undefined) this.slots.set(at, [client]);
    else list.push(client);
  }
}
