// The shard's clients, found two ways (OpenVPN's multi_context hash tables): by peer-id, for
// P_DATA_V2 packets and the from-tun ring's tags (like wireguard-go's index table), and by real
// address (OpenVPN's m->hash), for control packets and P_DATA_V1.
import { ADDRESS_SIZE } from '../../shared/native';
import { PeerIdAllocator } from '../../shared/peer-id';
import type { ShardClient } from './client';

/** Map key of address entry `index` of a native address array (ADDRESS_SIZE bytes each). */
export function addressKey(bytes: Uint8Array, index: number): string {
  const at = index * ADDRESS_SIZE;
  return String.fromCharCode.apply(null, bytes.subarray(at, at + ADDRESS_SIZE) as unknown as number[]);
}

export class ClientTable {
  private readonly byPeer = new Map<number, ShardClient>();
  private readonly byAddress = new Map<string, ShardClient>();
  private readonly peerIds: PeerIdAllocator;

  constructor(
    shard: number,
    shardCount: number,
    private readonly maxClients: number,
  ) {
    this.peerIds = new PeerIdAllocator(shard, shardCount);
  }

  get size(): number {
    return this.byPeer.size;
  }

  values(): IterableIterator<ShardClient> {
    return this.byPeer.values();
  }

  byPeerId(peerId: number): ShardClient | undefined {
    return this.byPeer.get(peerId);
  }

  atAddress(key: string): ShardClient | undefined {
    return this.byAddress.get(key);
  }

  /** A peer-id for a new client, or -1 at max-clients or when the shard has none left. */
  acquirePeerId(): number {
    return this.byPeer.size < this.maxClients ? this.peerIds.acquire() : -1;
  }

  add(client: ShardClient): void {
    this.byPeer.set(client.peerId, client);
    this.byAddress.set(client.addressKey, client);
  }

  /** The client closed: forget it and free its peer-id. */
  remove(client: ShardClient): void {
    this.byPeer.delete(client.peerId);
    if (this.byAddress.get(client.addressKey) === client) this.byAddress.delete(client.addressKey);
    this.peerIds.release(client.peerId);
  }

  /** The client floated to address `key` (entry bytes `bytes`). */
  move(client: ShardClient, key: string, bytes: Uint8Array): void {
    this.byAddress.delete(client.addressKey);
    client.addressBytes = bytes;
    client.addressKey = key;
    this.byAddress.set(key, client);
  }
}
