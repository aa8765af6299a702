// A classic BPF program for SO_ATTACH_REUSEPORT_CBPF that steers each datagram to the shard
// that owns its client, using OpenVPN's own fields (the program sees the UDP payload at 0):
// - P_DATA_V2: shard = peer-id mod N (shardvpn gives each client a peer-id naming its shard);
// - P_DATA_V1: an out-of-range index, so the kernel falls back to its 4-tuple hash;
// - control packets: shard = first byte of the sender's session id mod N (in clear under
//   tls-auth and tls-crypt), so a client's whole handshake lands on one shard.
import { P_DATA_V1, P_DATA_V2 } from '../../shared/protocol/opcodes';

const BPF_LD_B_ABS = 0x30;
const BPF_LD_W_ABS = 0x20;
const BPF_ALU_RSH_K = 0x74;
const BPF_ALU_AND_K = 0x54;
const BPF_ALU_MOD_K = 0x94;
const BPF_JMP_JEQ_K = 0x15;
const BPF_RET_A = 0x16;
const BPF_RET_K = 0x06;

/**
 * The program for a group of `shardCount` sockets. Data-channel peer-ids name their shard by
 * the same rule as peer-id.ts shardOfPeerId (peer-id mod N).
 */
export function steeringProgram(shardCount: number): Uint32Array {
  if (!Number.isInteger(shardCount) || shardCount < 1) throw new RangeError(`shard count ${shardCount}`);
  // prettier-ignore
  return Uint32Array.of(
    BPF_LD_B_ABS, 0, 0, 0,            // 0: A = payload[0]
    BPF_ALU_RSH_K, 0, 0, 3,           // 1: A = opcode
    BPF_JMP_JEQ_K, 0, 4, P_DATA_V2,   // 2: P_DATA_V2 ? 3 : 7
    BPF_LD_W_ABS, 0, 0, 0,            // 3: A = payload[0..3] (big-endian)
    BPF_ALU_AND_K, 0, 0, 0xffffff,    // 4: A = peer-id
    BPF_ALU_MOD_K, 0, 0, shardCount,  // 5: A %= N
    BPF_RET_A, 0, 0, 0,               // 6: socket A
    BPF_JMP_JEQ_K, 0, 1, P_DATA_V1,   // 7: P_DATA_V1 ? 8 : 9
    BPF_RET_K, 0, 0, 0xffffffff,      // 8: out of range: the kernel's hash
    BPF_LD_B_ABS, 0, 0, 1,            // 9: A = session id [0]
    BPF_ALU_MOD_K, 0, 0, shardCount,  // 10: A %= N
    BPF_RET_A, 0, 0, 0,               // 11: socket A
  );
}
