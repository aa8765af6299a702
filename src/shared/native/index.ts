// The typed face of shardvpn's native addon (src/native): TUN devices, batched UDP, TCP listeners and the
// data-channel ciphers. Everything is batch-shaped: a PacketBatch is one block of memory with a
// start offset and a length per packet, so the kernel and OpenSSL work in the caller's memory
// (ring slots included) without copies. The offsets leave headroom for headers in front.
export { ADDRESS_SIZE, POLL_READABLE, POLL_WRITABLE, type TunOffloadState, type UdpOffloadState } from './addon';
export * from './batch';
export * from './crypto';
export * from './devices';
export * from './heap';
export * from './socket-routing';
export * from './tcp';
export * from './tls-context';
