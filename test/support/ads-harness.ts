// Starts the serve stage for tests: an AdsServer wired to the real translator on 127.0.0.1 and a
// free port, with its log lines and metrics kept in memory for assertions.
import { Registry } from 'prom-client';
import { createLogger, type LogLevel } from '../../src/log/logger';
import type { MeshSnapshot } from '../../src/model/snapshot';
import { AdsServer, type AdsServerOptions } from '../../src/xds/server/ads-server';
import { parseProxyNode, translateForProxy } from '../../src/xds/translate';

export interface AdsHarness {
  server: AdsServer;
  port: number;
  /** `127.0.0.1:<port>` */
  address: string;
  metrics: Registry;
  /** Parsed JSON log lines, oldest first. */
  logs: Record<string, unknown>[];
  logsOf(event: string): Record<string, unknown>[];
  close(): Promise<void>;
}

export interface AdsHarnessOptions extends Partial<Omit<AdsServerOptions, 'logger' | 'metrics'>> {
  /** Published (applied at once) before the server listens. */
  initial?: MeshSnapshot;
  logLevel?: LogLevel;
  /** Also write log lines to stderr (for debugging a failing test). */
  echoLogs?: boolean;
}

export async function startAdsHarness(options: AdsHarnessOptions = {}): Promise<AdsHarness> {
  const logs: Record<string, unknown>[] = [];
  const echo = options.echoLogs ?? process.env.WEFT_TEST_LOGS === '1';
  const logger = createLogger({
    level: options.logLevel ?? 'info',
    write: (line) => {
      logs.push(JSON.parse(line));
      if (echo) process.stderr.write(line + '\n');
    },
  });
  const metrics = new Registry();
  const server = new AdsServer({
    generate: translateForProxy,
    parseNode: parseProxyNode,
    ...options,
    logger,
    metrics,
  });
  if (options.initial) server.publish(options.initial);
  const port = await server.listen('127.0.0.1:0');
  return {
    server,
    port,
    address: `127.0.0.1:${port}`,
    metrics,
    logs,
    logsOf: (event) => logs.filter((l) => l.event === event),
    close: () => server.close(500),
  };
}

/** The value of a counter or gauge (summed over label sets matching `labels`). */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`metric ${name} is not registered`);
  const data = await metric.get();
  return data.values
    .filter((v) => Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want))
    .filter((v) => !('metricName' in v) || v.metricName === name || v.metricName === `${name}_count`)
    .reduce((sum, v) => sum + v.value, 0);
}
