// Control datagrams (P_CONTROL_*, P_ACK_V1) as they come off the shard's socket (mudp.c
// multi_get_create_instance_udp): a packet from a client's address goes to its session; one from
// an unknown address goes to the stateless responder, which answers a first reset with a cookie
// and only lets a client that echoes a valid cookie become a new ShardClient.
import { COUNTER } from '../../shared/counters';
import { ADDRESS_SIZE, type PeerAddresses } from '../../shared/native';
import { P_CONTROL_HARD_RESET_CLIENT_V2, P_CONTROL_HARD_RESET_CLIENT_V3 } from '../../shared/protocol/opcodes';
import { FirstPacketCheck } from '../../shared/session/first-packet-check';
import { StatelessResponder, type ResponderDropKind } from '../../shared/session/stateless-responder';
import { ShardClient, type ShardClientHost } from './client';
import { addressKey, type ClientTable } from './clients';
import type { LinkOut } from './link-out';
import { ResetReplyBudget } from './reset-reply-budget';

/** The counter of each kind of refused first packet. */
const DROP_COUNTER: Readonly<Record<ResponderDropKind, number>> = {
  malformed: COUNTER.dropControlMalformed,
  bad_hmac: COUNTER.dropControlBadHmac,
  cookie: COUNTER.dropControlCookie,
  refused: COUNTER.dropControl,
};

/** Refused control packets logged per shard and second; the rest are only counted. */
const DROP_LOGS_PER_SECOND = 10;

export class ControlIn {
  /** Off once the shard stops: no new sessions then. */
  acceptingClients = true;
  private readonly responder: StatelessResponder;
  private readonly firstPacket: FirstPacketCheck;
  private readonly resetBudget = new ResetReplyBudget();
  /** First resets that reached the budget during this readable turn. */
  private resetsThisTurn = 0;
  private dropLogSecond = -1;
  private dropLogCount = 0;

  constructor(
    private readonly host: ShardClientHost,
    private readonly clients: ClientTable,
    private readonly out: LinkOut,
  ) {
    const config = host.config;
    this.responder = new StatelessResponder({
      wrap: config.wrap,
      cookieKey: Buffer.from(config.cookieKey),
      handWindowS: config.handWindowS,
    });
    this.firstPacket = new FirstPacketCheck(config.wrap);
  }

  /** The control datagram memory[at, at + length) with opcode `op`, from entry `index` of `from`. */
  receive(memory: Uint8Array, at: number, length: number, op: number, from: PeerAddresses, index: number): void {
    const counters = this.host.counters;
    const key = addressKey(from.bytes, index);
    const existing = this.clients.atAddress(key);
    if (existing !== undefined) {
      const peerSid = existing.session.peerSessionId;
      // The sender's session id is in clear at bytes 1..8 of every control packet.
      if (peerSid === null || length < 9 || peerSid.equals(memory.subarray(at + 1, at + 9))) {
        const wire = Buffer.from(memory.subarray(at, at + length));
        existing.traffic.controlBytesIn += wire.length;
        existing.receiveControl(wire);
        return;
      }
      // Another session from this address: the client restarted, or the packet is forged. Only
      // a packet that passes the stateless exchange below (wrap key and cookie round trip)
      // replaces the client; anything else leaves it alone.
    }
    // A first packet that cannot be one is counted and dropped here, on the receive memory:
    // under a flood of garbage nothing is copied or allocated for it.
    const reject = this.firstPacket.check(memory, at, length);
    if (reject !== null) {
      counters[reject === 'bad_hmac' ? COUNTER.dropControlBadHmac : COUNTER.dropControlMalformed]++;
      this.logDrop(from, index, reject === 'bad_hmac' ? `${this.host.config.wrap.mode}: bad-hmac` : `not a first packet (${reject})`);
      return;
    }
    if (!this.acceptingClients) {
      // As OpenVPN, no new sessions while shutting down: a client told RESTART reconnects at once
      // and would otherwise finish a handshake with this dying shard, then wait forever for a
      // PUSH_REPLY that the restarted server knows nothing about.
      counters[COUNTER.dropControl]++;
      this.logDrop(from, index, 'connection attempt ignored while the server is shutting down');
      return;
    }
    if (op === P_CONTROL_HARD_RESET_CLIENT_V2 || op === P_CONTROL_HARD_RESET_CLIENT_V3) {
      this.resetsThisTurn++;
      if (!this.resetBudget.take(this.host.now())) {
        counters[COUNTER.dropControlOverload]++;
        return;
      }
    }
    const wire = Buffer.from(memory.subarray(at, at + length));
    const peer = from.get(index);
    const result = this.responder.handle(wire, peer.address, peer.port, this.host.now());
    switch (result.action) {
      case 'drop':
        counters[DROP_COUNTER[result.kind]]++;
        this.logDrop(from, index, result.reason);
        return;
      case 'reply':
        counters[COUNTER.statelessReplies]++;
        this.out.queueReply(from.bytes.subarray(index * ADDRESS_SIZE, (index + 1) * ADDRESS_SIZE), result.wire);
        return;
      case 'create': {
        if (existing !== undefined) existing.close('client restarted its session');
        const peerId = this.clients.acquirePeerId();
        if (peerId < 0) {
          counters[COUNTER.dropControl]++;
          this.host.log(1, `refusing ${peer.address}:${peer.port}: max-clients reached`);
          return;
        }
        const addressBytes = from.bytes.slice(index * ADDRESS_SIZE, (index + 1) * ADDRESS_SIZE);
        const client = new ShardClient(peerId, addressBytes, key, { ...peer }, this.host, result.stateless);
        this.clients.add(client);
        client.traffic.controlBytesIn += wire.length;
        client.session.start();
        client.receiveControl(wire);
        return;
      }
    }
  }

  /** Sends the stateless replies queued while a receive batch was handled. */
  flushReplies(): void {
    this.out.flushReplies();
  }

  /** A readable turn of `datagrams` ended, `drained` false when the socket still held more. */
  turnEnded(drained: boolean, datagrams: number): void {
    const resets = this.resetsThisTurn;
    this.resetsThisTurn = 0;
    const now = this.host.now();
    const before = this.resetBudget.answering(now);
    this.resetBudget.turnEnded(drained, datagrams, resets, now);
    const after = this.resetBudget.answering(now);
    if (before === 1 && after < 1)
      this.host.log(3, 'behind the socket with many first resets: answering only a share of them', 'control-drop');
    else if (before < 1 && after === 1) this.host.log(3, 'caught up: answering every first reset again', 'control-drop');
  }

  /**
   * A control packet from an unknown peer was refused (wrong tls-auth / tls-crypt key, bad
   * cookie, ...): the operator needs the reason, as OpenVPN's "TLS Error: ... from" lines give it,
   * but a flood of such packets must not become a flood of log lines, hence the per-second cap.
   * Verb 3, not OpenVPN's 1: some reasons are benign (late packets of a session just closed).
   */
  private logDrop(from: PeerAddresses, index: number, reason: string): void {
    const second = Math.floor(this.host.now() / 1000);
    if (second !== this.dropLogSecond) {
      this.dropLogSecond = second;
      this.dropLogCount = 0;
    }
    if (this.dropLogCount++ < DROP_LOGS_PER_SECOND) {
      const peer = from.get(index);
      this.host.log(3, `TLS Error: control packet from ${peer.address}:${peer.port} dropped: ${reason}`, 'control-drop');
    }
  }
}
