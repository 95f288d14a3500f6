// `weft control`: runs the control plane on a directory of Istio YAML until SIGTERM/SIGINT.
import { createLogger } from '../log/logger';
import { ControlPlane } from '../control/control-plane';
import { parseCommandArgs, UsageError } from './cli-errors';

export const CONTROL_USAGE = `Usage: weft control --config-dir DIR [options]

Reads every *.yaml/*.yml under DIR (watched: changes are pushed live) and serves xDS v3. Resources
applied with \`weft apply\` are written into DIR too (new ones under DIR/applied/).

Options:
  --config-dir DIR          directory of Istio/Kubernetes YAML (required)
  --xds-address HOST:PORT   plaintext xDS gRPC address (default 127.0.0.1:15010)
  --http-address HOST:PORT  /ready, /metrics, /debug/*, the config API /api/v1/* (default 127.0.0.1:15014)
  --log-level LEVEL         debug | info | warn | error (default info)
`;

export async function runControl(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs(
    argv,
    {
      'config-dir': { type: 'string' },
      'xds-address': { type: 'string', default: '127.0.0.1:15010' },
      'http-address': { type: 'string', default: '127.0.0.1:15014' },
      'log-level': { type: 'string', default: 'info' },
    },
    CONTROL_USAGE,
  );
  if (!values['config-dir']) throw new UsageError('--config-dir is required', CONTROL_USAGE);
  const logger = createLogger({ level: values['log-level'] as 'info', fields: { component: 'control' } });
  const cp = new ControlPlane({
    configDir: values['config-dir'],
    xdsAddress: values['xds-address']!,
    httpAddress: values['http-address']!,
    logger,
  });
  await cp.start();
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info('shutdown_requested', { signal });
      cp.stop().then(resolve, resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}
