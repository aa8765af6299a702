// A client's data-channel keys (the key_state slots of OpenVPN's tls_multi): one per key_id, the
// one we send on, a renegotiated one that waits for the client's proof, and key blocks that came
// before the cipher was negotiated. A key leaves its slot when it is destroyed, so a slot holding
// a key means the key is usable.
import type { DataCipherName } from '../../shared/protocol/data-format';
import { DataChannelKey, type DataChannelKeyOptions } from '../../shared/protocol/data-channel';
import type { ClientTraffic } from './client-traffic';

export type KeyOptions = Omit<DataChannelKeyOptions, 'cipher' | 'keyId' | 'slices'>;

export class ClientKeys {
  /** Data keys by key_id. */
  readonly byId: (DataChannelKey | null)[] = new Array<DataChannelKey | null>(8).fill(null);
  /** The newest active key: our packets go out on it. */
  send: DataChannelKey | null = null;
  /**
   * A renegotiated key we may not send on yet: the client derives it only after our key
   * method 2 reply, so we switch when its first authentic packet on that key arrives.
   */
  pendingSend: DataChannelKey | null = null;
  private readonly blocks = new Map<number, Buffer>();

  constructor(private readonly traffic: ClientTraffic) {}

  /** Whether `key` is still installed (not retired, not destroyed by close). */
  holds(key: DataChannelKey): boolean {
    return this.byId[key.keyId] === key;
  }

  /** Key material for `keyId` from the control session; install() makes a key of it. */
  stash(keyId: number, block: Buffer): void {
    this.blocks.set(keyId, block);
  }

  /** Makes keys of the stashed key blocks (then wiped); returns how many. */
  install(cipher: DataCipherName, options: KeyOptions): number {
    let installed = 0;
    for (const [keyId, block] of this.blocks) {
      this.blocks.delete(keyId);
      const previous = this.byId[keyId];
      if (previous !== null) {
        this.traffic.retire(previous);
        previous.destroy();
      }
      const key = DataChannelKey.fromKeyBlock(block, 'server', cipher, keyId, options);
      block.fill(0);
      this.byId[keyId] = key;
      // The first key sends at once; a renegotiated one once the client has shown it has it.
      // The old key keeps decrypting until it is retired.
      if (this.send === null) this.send = key;
      else this.pendingSend = key;
      installed++;
    }
    return installed;
  }

  /** The client has key `key` (an authentic packet on it, or it acknowledged our key method 2 reply): send on it if it was pending. */
  confirm(key: DataChannelKey): void {
    if (key === this.pendingSend) {
      this.send = key;
      this.pendingSend = null;
    }
  }

  /** The session retired `keyId` (end of the transition window): destroy it unless we still send on it. */
  retire(keyId: number): void {
    const key = this.byId[keyId];
    if (key === null) return;
    if (key === this.pendingSend) this.pendingSend = null;
    if (key === this.send) return;
    this.traffic.retire(key);
    key.destroy();
    this.byId[keyId] = null;
  }

  /** Wipes every key (the client closed). */
  destroyAll(): void {
    for (let i = 0; i < this.byId.length; i++) {
      this.byId[i]?.destroy();
      this.byId[i] = null;
    }
    this.send = null;
  }
}
