// `weft control`: runs the control plane on a directory of Istio YAML until SIGTERM/SIGINT.
import { defaultStateDir } from '../ca/state-paths';
import { parseDuration } from '../config/validate/formats';
import { createLogger } from '../log/logger';
import { ControlPlane } from '../control/control-plane';
import { parseCommandArgs, UsageError } from './cli-errors';

export const CONTROL_USAGE = `Usage: weft control --config-dir DIR [options]

Reads every *.yaml/*.yml under DIR (watched: changes are pushed live) and serves xDS v3. Resources
applied with \`weft apply\` are written into DIR too (new ones under DIR/applied/). Runs the mesh
certificate authority: its root is STATE/ca/root-cert.pem, and every WorkloadEntry gets a bootstrap
token in STATE/tokens/NS/NAME.jwt that its proxy exchanges for a certificate on the secure address.

Options:
  --config-dir DIR                  directory of Istio/Kubernetes YAML (required)
  --mesh-config FILE                Istio's MeshConfig YAML (the \`mesh\` key of the istio ConfigMap, or that
                                    ConfigMap): trustDomain, rootNamespace, defaultConfig.tracing,
                                    extensionProviders, defaultProviders, ...; watched, like DIR
  --xds-address HOST:PORT           plaintext xDS gRPC address (default 127.0.0.1:15010; keep it on loopback)
  --secure-xds-address HOST:PORT    TLS address of the CA and authenticated xDS (default 127.0.0.1:15012;
                                    "off" disables it)
  --http-address HOST:PORT          /ready, /metrics, /debug/*, the config API /api/v1/* (default 127.0.0.1:15014)
  --state-dir DIR                   CA files, bootstrap tokens and the config history (default
                                    $WEFT_STATE_DIR, else .weft/state)
  --history-size N                  config versions kept in STATE/history (default 100)
  --ca-certs-dir DIR                sign with this CA (Istio's plug-in layout: ca-cert.pem, ca-key.pem,
                                    root-cert.pem, cert-chain.pem) instead of a self-signed root
  --max-workload-cert-ttl DURATION  longest workload certificate lifetime, e.g. 2160h or 90d (default 90d)
  --log-level LEVEL                 debug | info | warn | error (default info)
`;

/** HOST:PORT (or [v6]:PORT) to bind; port 0 picks a free one. */
function isListenAddress(text: string): boolean {
  const m = /^(\[[^\]]+\]|[^:[\]]+):(\d+)$/.exec(text);
  return m !== null && Number(m[2]) <= 65535;
}

/** A Go duration (Istio's flag form, e.g. 2160h) or whole days (90d), in seconds. */
function parseTtlSeconds(text: string): number {
  const days = /^(\d+)d$/.exec(text);
  const ms = days ? Number(days[1]) * 86_400_000 : parseDuration(text);
  if (ms === undefined || !(ms >= 1000)) throw new UsageError(`--max-workload-cert-ttl "${text}" is not a duration of at least 1s (e.g. 2160h or 90d)`, CONTROL_USAGE);
  return Math.floor(ms / 1000);
}

export async function runControl(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs(
    argv,
    {
      'config-dir': { type: 'string' },
      'mesh-config': { type: 'string' },
      'xds-address': { type: 'string', default: '127.0.0.1:15010' },
      'secure-xds-address': { type: 'string', default: '127.0.0.1:15012' },
      'http-address': { type: 'string', default: '127.0.0.1:15014' },
      'state-dir': { type: 'string' },
      'ca-certs-dir': { type: 'string' },
      'max-workload-cert-ttl': { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      'history-size': { type: 'string' },
    },
    CONTROL_USAGE,
  );
  if (!values['config-dir']) throw new UsageError('--config-dir is required', CONTROL_USAGE);
  const secure = values['secure-xds-address']!;
  if (secure !== 'off' && !isListenAddress(secure)) throw new UsageError(`--secure-xds-address "${secure}" is not HOST:PORT or off`, CONTROL_USAGE);
  const maxTtl = values['max-workload-cert-ttl'] !== undefined ? parseTtlSeconds(values['max-workload-cert-ttl']) : undefined;
  const historySize = values['history-size'] !== undefined ? Number(values['history-size']) : undefined;
  if (historySize !== undefined && !(Number.isInteger(historySize) && historySize >= 1)) {
    throw new UsageError(`--history-size "${values['history-size']}" is not a whole number of versions (at least 1)`, CONTROL_USAGE);
  }
  const logger = createLogger({ level: values['log-level'] as 'info', fields: { component: 'control' } });
  const cp = new ControlPlane({
    configDir: values['config-dir'],
    ...(values['mesh-config'] ? { meshConfigFile: values['mesh-config'] } : {}),
    xdsAddress: values['xds-address']!,
    httpAddress: values['http-address']!,
    stateDir: values['state-dir'] ?? defaultStateDir(),
    ...(secure !== 'off' ? { secureXdsAddress: secure } : {}),
    ...(values['ca-certs-dir'] ? { caCertsDir: values['ca-certs-dir'] } : {}),
    ...(maxTtl !== undefined ? { maxWorkloadCertTtlSeconds: maxTtl } : {}),
    ...(historySize !== undefined ? { historySize } : {}),
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
