// The main thread's authority over clients (OpenVPN's multi_connection_established side):
// max-clients and duplicate-cn, client-config-dir files, the ifconfig pool and the route table.
// Shards ask; this answers with the addresses and per-client push options.
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { buildOptions, parseConfigText } from '../../shared/config';
import type { Options } from '../../shared/config';
import { ipv4ToNumber, netmaskToBits } from '../../shared/ip-math';
import { withoutRemoved, type PushOptions } from '../../shared/protocol/push-options';
import type { ClientAssignment, ClientStats } from '../../shared/shard-protocol';
import type { ClientRecord } from '../ops/server-view';
import type { IfconfigPool } from './ifconfig-pool';
import type { RouteTable } from '../../shared/route-table';

export interface ClientEntry {
  cid: number;
  peerId: number;
  shard: number;
  commonName: string;
  username: string | null;
  realAddress: { family: 4 | 6; address: string; port: number };
  poolIndex: number;
  virtual4: string | null;
  virtual6: string | null;
  iroutes: string[];
  established: boolean;
  cipher: string;
  connectedSince: number;
  stats: ClientStats | null;
  /** Hex serial number of the client's certificate (a reload's CRL check); null without one. */
  certSerial: string | null;
  /** What the configuration gave this client (settingsKey): a reload compares it with the new one. */
  settingsKey: string;
}

export type AuthDecision = { ok: true; assignment: ClientAssignment; entry: ClientEntry } | { ok: false; reason: string; log: string };

export interface CcdSettings {
  disabled: boolean;
  ifconfigPush?: { local: string; remoteNetmask: string };
  ifconfigIpv6Push?: { local: string; netbits: number; remote?: string };
  iroutes: { network: string; netmask: string }[];
  iroutesIpv6: string[];
  push: string[];
  pushReset: boolean;
  /** push-remove prefixes: dropped from the global push list (this file's own pushes are already filtered). */
  pushRemove: string[];
  /** session-timeout for this client (OpenVPN's OPT_P_TIMER in a client instance's file). */
  sessionTimeout?: number;
}

/** A common name usable as a file name in client-config-dir (OpenVPN refuses the rest). */
function safeCommonName(cn: string): boolean {
  return cn.length > 0 && cn.length <= 64 && /^[A-Za-z0-9_.@-]+$/.test(cn) && cn !== '.' && cn !== '..';
}

export class ClientRegistry {
  private readonly byPeer = new Map<number, ClientEntry>();
  private nextCid = 0;
  totalBytesIn = 0;
  totalBytesOut = 0;

  constructor(
    private options: Options,
    private readonly pool: IfconfigPool | null,
    private readonly routes: RouteTable,
  ) {}

  /** A hitless reload: new clients are admitted under `options` (max-clients, client-config-dir, push). */
  reconfigure(options: Options): void {
    this.options = options;
  }

  /**
   * What the configuration gives a client, as comparable text: its client-config-dir file, the
   * global push list (unless the file has push-reset) and the global iroutes. What a
   * client-connect script wrote is not run again on a reload, so it is not part of it.
   */
  settingsKey(commonName: string): string {
    const o = this.options;
    const ccd = o.clientConfigDir === undefined ? null : this.loadCcd(o.clientConfigDir.resolved, commonName);
    const pushReset = ccd !== null && typeof ccd !== 'string' && ccd.pushReset;
    const exclusiveRefused = o.clientConfigDir !== undefined && o.ccdExclusive && ccd === null;
    return JSON.stringify({ ccd, exclusiveRefused, push: pushReset ? [] : o.push, iroutes: o.iroutes, iroutesIpv6: o.iroutesIpv6 });
  }

  get size(): number {
    return this.byPeer.size;
  }

  entries(): IterableIterator<ClientEntry> {
    return this.byPeer.values();
  }

  get(peerId: number): ClientEntry | undefined {
    return this.byPeer.get(peerId);
  }

  /** Other clients with this common name (for duplicate-cn handling). */
  withCommonName(cn: string): ClientEntry[] {
    return [...this.byPeer.values()].filter((e) => e.commonName === cn);
  }

  /**
   * Admits a client: client-config-dir, then `dynamic` (what its client-connect script wrote),
   * then a pool address where neither gave one. `cid`: keep the id of an earlier admission
   * (a client re-admitted with its client-connect output).
   */
  authorize(request: {
    peerId: number;
    shard: number;
    commonName: string;
    username: string | null;
    realAddress: ClientEntry['realAddress'];
    certSerial?: string | null;
    dynamic?: CcdSettings;
    cid?: number;
  }): AuthDecision {
    const o = this.options;
    const cn = request.commonName;
    if (this.byPeer.size >= o.maxClients)
      return { ok: false, reason: '', log: `MULTI: new connection by client '${cn}' refused: max-clients (${o.maxClients}) reached` };
    let ccd: CcdSettings | null = null;
    if (o.clientConfigDir !== undefined) {
      const loaded = this.loadCcd(o.clientConfigDir.resolved, cn);
      if (typeof loaded === 'string') return { ok: false, reason: '', log: loaded };
      ccd = loaded;
      if (ccd === null && o.ccdExclusive)
        return { ok: false, reason: '', log: `client '${cn}': no client-config-dir file and ccd-exclusive is set` };
      if (ccd?.disabled) return { ok: false, reason: '', log: `client '${cn}': disabled by its client-config-dir file` };
    }
    ccd = mergeClientConfig(ccd, request.dynamic ?? null);
    if (ccd?.disabled) return { ok: false, reason: '', log: `client '${cn}': disabled by its client-connect script` };
    const push: PushOptions = { extra: [...(ccd?.push ?? [])] };
    let poolIndex = -1;
    let virtual4: string | null = null;
    let virtual6: string | null = null;
    if (ccd?.ifconfigPush !== undefined) {
      virtual4 = ccd.ifconfigPush.local;
      push.ifconfig = { local: ccd.ifconfigPush.local, remoteOrNetmask: ccd.ifconfigPush.remoteNetmask };
    }
    if (ccd?.ifconfigIpv6Push !== undefined) {
      virtual6 = ccd.ifconfigIpv6Push.local;
      push.ifconfigIpv6 = {
        local: virtual6,
        prefixLength: ccd.ifconfigIpv6Push.netbits,
        ...(ccd.ifconfigIpv6Push.remote !== undefined ? { remote: ccd.ifconfigIpv6Push.remote } : {}),
      };
    }
    if (this.pool !== null && (virtual4 === null || (virtual6 === null && o.ifconfigIpv6Pool !== undefined))) {
      const lease = this.pool.acquire(cn);
      if (lease === null) return { ok: false, reason: '', log: `MULTI: no free address in the ifconfig pool for '${cn}'` };
      poolIndex = lease.index;
      if (virtual4 === null && lease.ipv4 !== undefined) {
        virtual4 = lease.ipv4.local;
        push.ifconfig = { local: lease.ipv4.local, remoteOrNetmask: lease.ipv4.remoteNetmask };
      }
      if (virtual6 === null && lease.ipv6 !== undefined) {
        virtual6 = lease.ipv6.address;
        push.ifconfigIpv6 = {
          local: lease.ipv6.address,
          prefixLength: lease.ipv6.netbits,
          ...(o.ifconfigIpv6 !== undefined ? { remote: o.ifconfigIpv6.local } : {}),
        };
      }
    }
    const iroutes4 = [...o.iroutes, ...(ccd?.iroutes ?? [])].flatMap((r) => {
      const bits = netmaskToBits(ipv4ToNumber(r.netmask));
      return bits < 0 ? [] : [{ network: r.network, bits }];
    });
    const iroutes6 = [...o.iroutesIpv6, ...(ccd?.iroutesIpv6 ?? [])].map((text) => {
      const [network, bits] = text.split('/');
      return { network: network ?? '', bits: Number(bits ?? 128) };
    });
    // push-remove ifconfig / ifconfig-ipv6: the address is assigned (routes, source check) but not pushed.
    if (ccd?.pushRemove.includes('ifconfig') === true) delete push.ifconfig;
    if (ccd?.pushRemove.includes('ifconfig-ipv6') === true) delete push.ifconfigIpv6;
    const entry: ClientEntry = {
      cid: request.cid ?? this.nextCid++,
      peerId: request.peerId,
      shard: request.shard,
      commonName: cn,
      username: request.username,
      realAddress: request.realAddress,
      poolIndex,
      virtual4,
      virtual6,
      iroutes: [...iroutes4.map((r) => `${r.network}/${r.bits}`), ...iroutes6.map((r) => `${r.network}/${r.bits}`)],
      established: false,
      cipher: '',
      connectedSince: Math.floor(Date.now() / 1000),
      stats: null,
      certSerial: request.certSerial ?? null,
      settingsKey: this.settingsKey(cn),
    };
    this.byPeer.set(request.peerId, entry);
    if (virtual4 !== null) this.routes.learnHost4(virtual4, request.peerId);
    if (virtual6 !== null) this.routes.learnHost6(virtual6, request.peerId);
    for (const r of iroutes4) this.routes.learnIroute4(r.network, r.bits, request.peerId);
    for (const r of iroutes6) this.routes.learnIroute6(r.network, r.bits, request.peerId);
    return {
      ok: true,
      entry,
      assignment: {
        push,
        virtual4,
        virtual6,
        iroutes4,
        iroutes6,
        pushReset: ccd?.pushReset ?? false,
        pushRemove: ccd?.pushRemove ?? [],
        ...(ccd?.sessionTimeout !== undefined ? { sessionTimeoutS: ccd.sessionTimeout } : {}),
      },
    };
  }

  /** The client is gone: its addresses and routes are free again. */
  release(peerId: number, bytesIn = 0, bytesOut = 0): ClientEntry | undefined {
    const entry = this.byPeer.get(peerId);
    if (entry === undefined) return undefined;
    this.byPeer.delete(peerId);
    this.routes.forget(peerId);
    if (entry.poolIndex >= 0) this.pool?.release(entry.poolIndex);
    this.totalBytesIn += bytesIn;
    this.totalBytesOut += bytesOut;
    return entry;
  }

  /** Every client of a shard (the shard died). */
  releaseShard(shard: number): ClientEntry[] {
    const gone = [...this.byPeer.values()].filter((e) => e.shard === shard);
    for (const entry of gone) this.release(entry.peerId, entry.stats?.bytesReceived ?? 0, entry.stats?.bytesSent ?? 0);
    return gone;
  }

  records(): ClientRecord[] {
    return [...this.byPeer.values()]
      .filter((e) => e.established)
      .map((e) => ({
        cid: e.cid,
        peerId: e.peerId,
        shard: e.shard,
        commonName: e.commonName,
        username: e.username,
        realAddress: e.stats?.realAddress ?? e.realAddress,
        virtualAddress: e.virtual4,
        virtualAddressIpv6: e.virtual6,
        bytesReceived: e.stats?.bytesReceived ?? 0,
        bytesSent: e.stats?.bytesSent ?? 0,
        connectedSince: e.connectedSince,
        lastRef: e.stats?.lastRef ?? e.connectedSince,
        cipher: e.cipher,
        iroutes: e.iroutes,
      }));
  }

  /** Reads client-config-dir/CN; null when absent, a message string when it is bad. */
  private loadCcd(dir: string, cn: string): CcdSettings | null | string {
    if (!safeCommonName(cn)) return null;
    const file = path.join(dir, cn);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return null;
    }
    const settings = parseClientConfig(text, file);
    return typeof settings === 'string' ? `client-config-dir file for '${cn}' refused: ${settings}` : settings;
  }
}

/**
 * Per-client config text (a client-config-dir file, or what a client-connect script wrote):
 * push, push-reset, ifconfig-push, ifconfig-ipv6-push, iroute, disable, session-timeout. A message when bad.
 */
export function parseClientConfig(text: string, file: string): CcdSettings | string {
  try {
    const all = parseConfigText(text, file);
    const directives = all.filter((d) => d.name !== 'disable');
    const { options } = buildOptions(directives);
    return {
      disabled: all.some((d) => d.name === 'disable'),
      ...(options.ifconfigPush !== undefined ? { ifconfigPush: options.ifconfigPush } : {}),
      ...(options.ifconfigIpv6Push !== undefined ? { ifconfigIpv6Push: options.ifconfigIpv6Push } : {}),
      iroutes: options.iroutes,
      iroutesIpv6: options.iroutesIpv6,
      push: options.push,
      pushReset: directives.some((d) => d.name === 'push-reset'),
      pushRemove: options.pushRemove,
      ...(options.sessionTimeout !== undefined ? { sessionTimeout: options.sessionTimeout } : {}),
    };
  } catch (error) {
    return (error as Error).message;
  }
}

/** A client-config-dir file's settings, then a client-connect script's on top (OpenVPN's order). */
export function mergeClientConfig(first: CcdSettings | null, then: CcdSettings | null): CcdSettings | null {
  if (first === null || then === null) return then ?? first;
  return {
    disabled: first.disabled || then.disabled,
    ...((then.ifconfigPush ?? first.ifconfigPush) !== undefined ? { ifconfigPush: (then.ifconfigPush ?? first.ifconfigPush)! } : {}),
    ...((then.ifconfigIpv6Push ?? first.ifconfigIpv6Push) !== undefined
      ? { ifconfigIpv6Push: (then.ifconfigIpv6Push ?? first.ifconfigIpv6Push)! }
      : {}),
    iroutes: [...first.iroutes, ...then.iroutes],
    iroutesIpv6: [...first.iroutesIpv6, ...then.iroutesIpv6],
    // The script's push-remove also drops what the file pushed (OpenVPN applies it to the list as it stands).
    push: then.pushReset ? [...then.push] : [...withoutRemoved(first.push, then.pushRemove), ...then.push],
    pushReset: first.pushReset || then.pushReset,
    pushRemove: [...first.pushRemove, ...then.pushRemove],
    ...((then.sessionTimeout ?? first.sessionTimeout) !== undefined
      ? { sessionTimeout: (then.sessionTimeout ?? first.sessionTimeout)! }
      : {}),
  };
}
