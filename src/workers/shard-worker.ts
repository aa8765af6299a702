// Worker-thread entry point of a shard: builds the Shard from workerData, on the UDP socket the
// main thread opened for it and, unless client-to-client routes its packets through the main
// thread, the main thread's TUN device (descriptors belong to the process, not the thread): its
// own queue of it with tun-queues shard, else the single queue the main thread reads.
import { parentPort, workerData } from 'node:worker_threads';

import { reviveWrap } from '../shared/config/wrap';
import { counterView } from '../shared/counters';
import { claimDescriptor, dupDescriptor, TunDevice, UdpSocket } from '../shared/native';
import type { ShardConfig } from '../shared/shard-protocol';
import { Shard, type ShardIO } from './shard/loop';
import { SLOT } from './shard/sizes';
import { TcpLinks } from './shard/tcp-links';

/** TCP connections a shard holds beyond max-clients, for handshakes in progress. */
const TCP_HANDSHAKE_SLACK = 256;

if (parentPort === null) throw new Error('shard-worker must run in a worker thread');
const config = workerData as ShardConfig;
// Adopted, never closed here: the main thread keeps the queue for a replacement worker.
const tunQueue = config.tunQueueFd >= 0 ? TunDevice.adopt(config.tunQueueFd, config.tunName) : null;
const tun = config.clientToClient ? null : (tunQueue ?? TunDevice.adopt(config.tunFd, config.tunName));
const queue = { ...(tunQueue !== null ? { tunQueue } : {}), ...(tun !== null ? { tunOffload: () => tun.offload } : {}) };
let io: ShardIO;
if (config.transport === 'tcp') {
  // Our own copy, made here: one made by the main thread would leak if this worker died before
  // taking it over. Until it is claimed, the addon closes it if this worker is terminated; from
  // then on the server's listener closes it when this worker ends.
  const listenerFd = dupDescriptor(config.socketFd);
  const links = new TcpLinks({
    listenerFd,
    maxPacket: SLOT,
    noDelay: config.tcpNodelay,
    idleMs: config.handWindowS * 1000,
    maxConnections: config.maxClientsPerShard + TCP_HANDSHAKE_SLACK,
    counters: counterView(config.counters),
    log: (level, message) => {
      if (level <= config.verb) parentPort?.postMessage({ type: 'log', level, message: `shard ${config.shard}: ${message}` });
    },
  });
  // Only a listener that took the copy over closes it; otherwise the addon still will.
  if (links.listening) claimDescriptor(listenerFd);
  io = { link: links, peers: links, tun, ...queue };
} else {
  const socket = UdpSocket.adopt(config.socketFd, config.socketFamily, config.udpOffload, config.udpCoalesceUsecs);
  io = { link: socket, tun, ...queue, offload: () => socket.offload };
}
new Shard({ ...config, wrap: reviveWrap(config.wrap) }, parentPort, io);
