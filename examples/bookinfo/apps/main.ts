// Entry point of a Bookinfo workload: `node dist/examples/bookinfo/apps/main.js SERVICE`, one
// process per workload, configured by the environment (see README.md beside this file). Logs one
// JSON line when it starts and one when it stops; SIGTERM / SIGINT finish in-flight requests first.
import { createLogger, type Logger } from '../../../src/log/logger';
import { detailsRoutes } from './details';
import { createRequestListener, ListenError, listen, type Route, type RunningServer } from './http-app';
import { httpbinRoutes } from './httpbin';
import { createMeshClient, type MeshClient } from './mesh-client';
import { productPageOptionsFromEnv, productPageRoutes } from './productpage';
import { ratingsRoutes } from './ratings';
import { reviewsOptionsFromEnv, reviewsRoutes } from './reviews';
import { isServiceName, loadWorkloadConfig, SERVICES, WorkloadConfigError, type WorkloadConfig } from './workload';

const USAGE = `usage: node dist/examples/bookinfo/apps/main.js ${SERVICES.join('|')}

environment:
  BIND_ADDRESS     address to listen on (default 127.0.0.1)
  PORT             port (default 9080; httpbin 8000; 0 picks a free one)
  SERVICE_VERSION  v1 | v2 | v3 (reviews v2: black stars, v3: red stars)
  WORKLOAD_NAME    e.g. reviews-v2; the pod-style name reviews reports is derived from it
  HTTP_PROXY       sidecar address; every outgoing call goes through it
`;

function routesFor(config: WorkloadConfig, client: MeshClient): Route[] {
  switch (config.service) {
    case 'productpage':
      return productPageRoutes(productPageOptionsFromEnv(), client);
    case 'details':
      return detailsRoutes();
    case 'reviews':
      return reviewsRoutes(reviewsOptionsFromEnv(config), client);
    case 'ratings':
      return ratingsRoutes({ version: config.version });
    case 'httpbin':
      return httpbinRoutes();
  }
}

export async function main(argv: string[]): Promise<number> {
  const service = argv[0];
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!isServiceName(service)) {
    process.stderr.write(`${service ? `unknown service "${service}"\n` : ''}${USAGE}`);
    return 2;
  }
  const baseLogger = createLogger({ write: (line) => process.stdout.write(line + '\n') });
  let config: WorkloadConfig;
  try {
    config = loadWorkloadConfig(service);
  } catch (err) {
    if (!(err instanceof WorkloadConfigError)) throw err;
    baseLogger.error('bad configuration', { service, error: err.message });
    process.stderr.write(`bookinfo ${service}: ${err.message}\n`);
    return 1;
  }
  const logger: Logger = baseLogger.child({ service, workload: config.workloadName });
  const client = createMeshClient(config.httpProxy);
  let server: RunningServer;
  try {
    server = await listen(createRequestListener(routesFor(config, client), logger), config.bindAddress, config.port);
  } catch (err) {
    if (!(err instanceof ListenError)) throw err;
    logger.error('listen failed', { code: err.code, error: err.message });
    process.stderr.write(`bookinfo ${service}: ${err.message}\n`);
    await client.close();
    return 1;
  }
  logger.info('started', {
    version: config.version,
    address: server.address,
    port: server.port,
    pod: config.podName,
    httpProxy: config.httpProxy ?? null,
    pid: process.pid,
  });

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  const stopping = Date.now();
  await server.stop();
  await client.close();
  logger.info('stopped', { signal, drainMs: Date.now() - stopping });
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`bookinfo: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
