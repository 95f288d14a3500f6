// The `weft` command: one entry point, one small module per subcommand.
import { parseArgs } from 'node:util';
import { createLogger } from '../log/logger';
import { ControlPlane } from '../control/control-plane';
import { runAnalyze } from './analyze';

const VERSION: string = require('../../../package.json').version;

const USAGE = `weft — a service mesh that speaks Istio

Usage: weft <command> [options]

Commands:
  control    run the control plane (xDS on 127.0.0.1:15010, HTTP on 127.0.0.1:15014)
  analyze    validate Istio YAML files or directories offline
  version    print the version

Run 'weft <command> --help' for a command's options.
`;

const CONTROL_USAGE = `Usage: weft control --config-dir DIR [options]

Reads every *.yaml/*.yml under DIR (watched: changes are pushed live) and serves xDS v3.

Options:
  --config-dir DIR          directory of Istio/Kubernetes YAML (required)
  --xds-address HOST:PORT   plaintext xDS gRPC address (default 127.0.0.1:15010)
  --http-address HOST:PORT  /ready, /metrics, /debug/* (default 127.0.0.1:15014)
  --log-level LEVEL         debug | info | warn | error (default info)
`;

const ANALYZE_USAGE = `Usage: weft analyze PATH...

Validates Istio YAML (files or directories) without a running control plane. Prints one line per
problem (kind/name, file, field path, message) and exits 1 when any error is found.
`;

async function runControl(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'config-dir': { type: 'string' },
      'xds-address': { type: 'string', default: '127.0.0.1:15010' },
      'http-address': { type: 'string', default: '127.0.0.1:15014' },
      'log-level': { type: 'string', default: 'info' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(CONTROL_USAGE);
    return 0;
  }
  if (!values['config-dir']) throw new Error('--config-dir is required\n\n' + CONTROL_USAGE);
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

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const out = (line: string) => process.stdout.write(line + '\n');
  switch (command) {
    case 'control':
      return runControl(rest);
    case 'analyze':
      if (rest.includes('--help') || rest.includes('-h')) {
        process.stdout.write(ANALYZE_USAGE);
        return 0;
      }
      return runAnalyze(rest, out);
    case 'version':
    case '--version':
      out(`weft ${VERSION}`);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`weft: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`weft: ${err.message}\n`);
      process.exit(1);
    },
  );
}
