// The largest ifconfig pool, in addresses (or /30 blocks with topology net30).
//
// OpenVPN 2.6 refuses a larger pool (IFCONFIG_POOL_MAX in pool.h, 65,536), which caps one
// OpenVPN server at that many clients. A shardvpn concentrator holds more, so its cap is 2^20
// (a /12 with topology subnet): a config OpenVPN accepts behaves the same here, and one with a
// larger pool runs here only. The pool's entries are made as they are first handed out, so a
// large pool costs memory only for the clients it has seen.
export const POOL_MAX_ADDRESSES = 1 << 20;

/** The shortest netmask `server` takes (OpenVPN: IFCONFIG_POOL_MIN_NETBITS, /16): the pool's cap. */
export const POOL_MIN_NETBITS = 32 - Math.log2(POOL_MAX_ADDRESSES);
