// A ServerView over plain data, recording what the operations side asked of it.
import type { ClientEvent, ClientRecord, ManagementVerdict, ServerSignal, ServerView } from '../../src/main/ops/server-view';
import type { ShardFault } from '../../src/shared/fault-injection';

export const TITLE = 'shardvpn 0.1.0 x86_64-pc-linux-gnu [SSL (OpenSSL)] [AEAD]';

export function client(overrides: Partial<ClientRecord> & { cid: number }): ClientRecord {
  return {
    peerId: overrides.cid,
    shard: 0,
    commonName: 'alice',
    username: null,
    realAddress: { family: 4, address: '198.51.100.7', port: 51820 },
    virtualAddress: '10.8.0.2',
    virtualAddressIpv6: null,
    bytesReceived: 0,
    bytesSent: 0,
    connectedSince: 1_700_000_000,
    lastRef: 1_700_000_100,
    cipher: 'AES-256-GCM',
    iroutes: [],
    ...overrides,
  };
}

export class FakeServerView implements ServerView {
  title = TITLE;
  pid = 4242;
  statusVersion: 1 | 2 | 3 = 1;
  list: ClientRecord[] = [];
  stats = { nclients: 0, bytesIn: 0, bytesOut: 0 };
  readonly signals: ServerSignal[] = [];
  readonly kills: string[] = [];
  private readonly listeners = new Set<(event: ClientEvent) => void>();

  constructor(clients: ClientRecord[] = []) {
    this.list = clients;
  }

  clients(): readonly ClientRecord[] {
    return this.list;
  }

  loadStats(): { nclients: number; bytesIn: number; bytesOut: number } {
    return this.stats;
  }

  killByCommonName(commonName: string): number {
    this.kills.push(`cn ${commonName}`);
    return this.list.filter((c) => c.commonName === commonName).length;
  }

  killByAddress(address: string, port: number): number {
    this.kills.push(`addr ${address}:${port}`);
    return this.list.filter((c) => c.realAddress.address === address && c.realAddress.port === port).length;
  }

  clientKill(cid: number, message?: string): boolean {
    this.kills.push(`cid ${cid} ${message ?? '(default)'}`);
    return this.list.some((c) => c.cid === cid);
  }

  signal(signal: ServerSignal): void {
    this.signals.push(signal);
  }

  level = 3;

  /** management-client-auth on, and the clients (cid -> key id) waiting for a verdict. */
  clientAuthEnabled = false;
  readonly waiting = new Map<number, number>();
  readonly verdicts: { cid: number; keyId: number; verdict: ManagementVerdict }[] = [];

  readonly pendingAuths: { cid: number; keyId: number; extra: string; timeoutS: number }[] = [];

  clientPendingAuth(cid: number, keyId: number, extra: string, timeoutS: number): boolean {
    if (!this.clientAuthEnabled || this.waiting.get(cid) !== keyId) return false;
    this.pendingAuths.push({ cid, keyId, extra, timeoutS });
    return true;
  }

  clientAuth(cid: number, keyId: number, verdict: ManagementVerdict): boolean {
    if (!this.clientAuthEnabled || this.waiting.get(cid) !== keyId) return false;
    this.waiting.delete(cid);
    this.verdicts.push({ cid, keyId, verdict });
    return true;
  }

  verb(): number {
    return this.level;
  }

  setVerb(level: number): void {
    this.level = level;
  }

  /** Shards this fake pretends to have; restarts are recorded. */
  shardCount = 2;
  readonly shardRestarts: number[] = [];

  restartShard(index: number): boolean {
    if (!Number.isInteger(index) || index < 0 || index >= this.shardCount) return false;
    this.shardRestarts.push(index);
    return true;
  }

  /** Faults asked for (shard-fault), as [shard, fault]. */
  readonly shardFaults: [number, ShardFault][] = [];

  injectShardFault(index: number, fault: ShardFault): boolean {
    if (!Number.isInteger(index) || index < 0 || index >= this.shardCount) return false;
    this.shardFaults.push([index, fault]);
    return true;
  }

  onClientEvent(listener: (event: ClientEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  emit(event: ClientEvent): void {
    for (const listener of this.listeners) listener(event);
  }
}
