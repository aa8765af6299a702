// Sizes of the shard's packet memory.

/** Datagrams per recvmmsg / sendmmsg call, packets per ring batch. */
export const BATCH = 64;
/** Room per packet: a full-size tunnel packet plus OpenVPN's headers. */
export const SLOT = 2048;

/** The shard's timer tick (ms): how often it looks at its clients' due timers. */
export const TICK_MS = 200;
