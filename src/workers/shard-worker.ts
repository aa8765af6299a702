// Worker-thread entry point of a shard: builds the Shard from workerData, on the UDP socket the
// main thread opened for it and, unless client-to-client routes its packets through the main
// thread, the main thread's TUN device (descriptors belong to the process, not the thread).
import { parentPort, workerData } from 'node:worker_threads';

import { reviveWrap } from '../shared/config/wrap';
import { TunDevice, UdpSocket } from '../shared/native';
import type { ShardConfig } from '../shared/shard-protocol';
import { Shard } from './shard/loop';

if (parentPort === null) throw new Error('shard-worker must run in a worker thread');
const config = workerData as ShardConfig;
new Shard({ ...config, wrap: reviveWrap(config.wrap) }, parentPort, {
  link: UdpSocket.adopt(config.socketFd, config.socketFamily),
  tun: config.clientToClient ? null : TunDevice.adopt(config.tunFd, config.tunName),
});
