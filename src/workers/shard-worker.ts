// Worker-thread entry point of a shard: builds the Shard from workerData.
import { parentPort, workerData } from 'node:worker_threads';

import { reviveWrap } from '../shared/config/wrap';
import type { ShardConfig } from '../shared/shard-protocol';
import { Shard } from './shard';

if (parentPort === null) throw new Error('shard-worker must run in a worker thread');
const config = workerData as ShardConfig;
new Shard({ ...config, wrap: reviveWrap(config.wrap) }, parentPort);
