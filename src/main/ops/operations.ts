// The operator-facing services of a running server: the status file, the management interface
// and the Prometheus endpoint, started from the config and stopped with the run.
import type http from 'node:http';

import type { Options } from '../../shared/config';
import type { Logger } from '../../shared/log';
import { managementListenFromOptions, ManagementServer, readManagementPassword } from './management';
import { createRegistry, serveMetrics } from './metrics';
import type { RunningServer } from '../server/server';
import { StatusFileWriter } from './status';

export interface Operations {
  stop(): Promise<void>;
}

export async function startOperations(server: RunningServer, options: Options, logger: Logger): Promise<Operations> {
  const stops: (() => Promise<void> | void)[] = [];
  const stopAll = async (): Promise<void> => {
    for (const stop of stops.reverse()) await stop();
  };
  try {
    if (options.status !== undefined) {
      const writer = new StatusFileWriter({
        path: options.status.resolved,
        source: server,
        version: options.statusVersion,
        intervalSeconds: options.status.intervalSeconds,
        logger: (message) => logger.log(1, message),
      });
      writer.start();
      stops.push(() => writer.stop());
    }
    if (options.management !== undefined) {
      const listen = managementListenFromOptions(options.management);
      if (!listen.ok) throw new Error(listen.reason);
      const management = new ManagementServer({
        listen: listen.listen,
        view: server,
        ...(listen.passwordFile !== undefined ? { password: readManagementPassword(listen.passwordFile) } : {}),
        logger: (message) => logger.log(3, `MANAGEMENT: ${message}`),
      });
      await management.start();
      const unsubscribe = logger.subscribe((line) => management.log(line.slice(20)));
      management.setState({
        name: 'CONNECTED',
        detail: 'SUCCESS',
        ...(options.ifconfig !== undefined ? { localIp: options.ifconfig.local } : {}),
        ...(options.ifconfigIpv6 !== undefined ? { localIp6: options.ifconfigIpv6.local } : {}),
      });
      logger.log(
        1,
        `MANAGEMENT: ${listen.listen.kind === 'unix' ? `unix domain socket listening on ${listen.listen.path}` : `TCP Socket listening on [AF_INET]${listen.listen.host}:${listen.listen.port}`}`,
      );
      stops.push(async () => {
        unsubscribe();
        await management.close();
      });
    }
    if (options.metricsListen !== undefined) {
      const registry = createRegistry({
        shards: () => server.shards.shards,
        pump: () => server.pump.counters,
        tunOffload: () => server.tunOffload(),
        pool: () => server.poolUsage(),
        clients: () => server.clients(),
        perClient: options.metricsPerClient,
      });
      const http: http.Server = await serveMetrics(registry, options.metricsListen.address, options.metricsListen.port);
      logger.log(1, `metrics on http://${options.metricsListen.address}:${options.metricsListen.port}/metrics`);
      stops.push(() => new Promise<void>((resolve) => http.close(() => resolve())));
    }
  } catch (error) {
    await stopAll();
    throw error;
  }
  return { stop: stopAll };
}
