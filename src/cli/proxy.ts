// `weft proxy`: runs the Weft proxy for one workload (sidecar, from its WorkloadEntry) or as a
// gateway (selected by Gateway `selector` labels), configured entirely over ADS, with its own
// workload identity: a certificate for its SPIFFE id from the control plane's CA (istio-agent's
// part), used for mesh mTLS and, on the secure port, for the xDS connection itself.
import { availableParallelism } from 'node:os';
import { defaultStateDir, rootCertPath, workloadTokenPath } from '../ca/state-paths';
import { parseDuration } from '../config/validate/formats';
import type { LogLevel } from '../log/logger';
import { APP_ADDRESS_METADATA, appAddressFor } from '../model/proxy';
import type { ProxyOptions } from '../proxy/proxy';
import { CliError, parseCommandArgs, UsageError } from './cli-errors';
import type { CliIo } from './cli-io';
import { CONTROL_HELP, CONTROL_OPTION, ControlClient, parseHostPort } from './control-client';

export const PROXY_USAGE = `Usage:
  weft proxy --workload NAME [-n NS] [--xds HOST:PORT] [--control HOST:PORT] [--app-address IP]
  weft proxy --workload NAME --capture [-n NS] [--xds HOST:PORT] [--control HOST:PORT]
  weft proxy --gateway NAME [-n NS] --labels k=v[,k=v] [--address IP] [--xds HOST:PORT]

Sidecar mode takes the address, labels and service account of WorkloadEntry NAME from the control
plane and binds on that address: outbound 15001, inbound 15006, admin 15000 (loopback only),
Prometheus stats 15090, health 15021. The application listens on its app address (--app-address).
With --capture (transparent capture, Istio's INTERCEPTION_MODE REDIRECT) the sidecar runs inside
the workload's network namespace, where \`weft iptables\` redirects the app's outbound TCP to 15001
and inbound TCP to 15006; it binds those on all addresses and recovers each connection's original
destination with SO_ORIGINAL_DST (the native addon built at install). The app is unchanged: it
listens on its own port and calls services by name. Run it as the user whose traffic the rules
exclude (\`weft iptables -u\`); \`weft run --netns\` does all of this.
Gateway mode serves the listeners of every Gateway whose selector matches --labels, on --address
(default 127.0.0.1).

Identity: the proxy makes its own key and asks the CA for a certificate for
spiffe://<trust domain>/ns/<NS>/sa/<service account> (the WorkloadEntry's serviceAccount; for a
gateway --service-account), authenticated by the bootstrap token in --token-file, verifying the CA
with the mesh root in <state dir>/ca/root-cert.pem. It renews at about half the lifetime. Mesh mTLS
(SDS "default" and "ROOTCA") uses that certificate; the proxy is not ready until it has it.

Options:
      --workload NAME      WorkloadEntry this sidecar serves
      --gateway NAME       run as a gateway proxy with this name
  -n, --namespace NS       namespace of the workload or gateway (default "default")
      --labels k=v,...     gateway labels matched by Gateway.selector (e.g. istio=ingressgateway)
      --address IP         gateway bind address (default 127.0.0.1)
      --capture            transparent capture (see above); fails if SO_ORIGINAL_DST is unavailable
      --app-address IP     where the application listens (default: 127.(A+128).B.C for a workload
                           address 127.A.B.C, else 127.0.0.1)
      --xds HOST:PORT      control plane xDS address (default 127.0.0.1:15010, plaintext; the
                           secure port is 15012)
      --xds-auth MODE      mutual-tls | none: TLS to the control plane, verified with the mesh
                           root, with the workload certificate and token (default mutual-tls when
                           the --xds port is 15012, else none)
      --ca-address A       CA HOST:PORT, or "none" to run without an identity (then config that
                           needs mesh mTLS is refused) (default: the --xds address when
                           --xds-auth is mutual-tls, else 127.0.0.1:15012)
      --state-dir DIR      the control plane's state directory, for the mesh root and the default
                           token path (default $WEFT_STATE_DIR or .weft/state)
      --token-file FILE    bootstrap token (default <state dir>/tokens/<NS>/<NAME>.jwt)
      --service-account SA gateway identity (default "<NAME>-service-account", Istio's naming)
      --trust-domain TD    trust domain of the SPIFFE id (default cluster.local)
      --cert-ttl DURATION  requested certificate lifetime, e.g. 24h, 90m, 30s (default 24h; the CA
                           may shorten it)
      --drain-seconds N    on SIGTERM, how long in-flight requests may finish (default 5)
      --concurrency N      worker processes serving the listeners, or "auto" (one per CPU); the
                           main process keeps xDS, the certificate and the admin/stats/health
                           ports (default 1: one process does everything)
      --telemetry on|off   Istio's standard metrics on 15090 and peer metadata exchange (default on)
      --log-level LEVEL    debug | info | warn | error (default info)
${CONTROL_HELP}
`;

/** Istio's secure xDS/CA port: --xds on this port means mutual TLS unless told otherwise. */
const SECURE_XDS_PORT = 15012;
const DEFAULT_CA_ADDRESS = `127.0.0.1:${SECURE_XDS_PORT}`;

interface WorkloadInfo {
  name: string;
  namespace: string;
  address: string;
  labels: Record<string, string>;
  serviceAccount: string;
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const i = pair.indexOf('=');
    if (i <= 0) throw new UsageError(`--labels: "${pair}" is not key=value`, PROXY_USAGE);
    labels[pair.slice(0, i)] = pair.slice(i + 1);
  }
  return labels;
}

export async function runProxy(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs(
    argv,
    {
      workload: { type: 'string' },
      gateway: { type: 'string' },
      namespace: { type: 'string', short: 'n', default: 'default' },
      labels: { type: 'string' },
      address: { type: 'string', default: '127.0.0.1' },
      'app-address': { type: 'string' },
      capture: { type: 'boolean' },
      xds: { type: 'string', default: '127.0.0.1:15010' },
      'xds-auth': { type: 'string' },
      'ca-address': { type: 'string' },
      'state-dir': { type: 'string' },
      'token-file': { type: 'string' },
      'service-account': { type: 'string' },
      'trust-domain': { type: 'string', default: 'cluster.local' },
      'cert-ttl': { type: 'string', default: '24h' },
      'drain-seconds': { type: 'string', default: '5' },
      telemetry: { type: 'string', default: 'on' },
      concurrency: { type: 'string', default: '1' },
      'log-level': { type: 'string', default: 'info' },
      ...CONTROL_OPTION,
    },
    PROXY_USAGE,
  );
  if (Boolean(values.workload) === Boolean(values.gateway)) throw new UsageError('give exactly one of --workload NAME or --gateway NAME', PROXY_USAGE);
  const capture = Boolean(values.capture);
  if (capture && !values.workload) throw new UsageError('--capture is for sidecars (--workload NAME)', PROXY_USAGE);
  if (capture && values['app-address']) throw new UsageError('--capture and --app-address do not go together: a captured app listens on its own address', PROXY_USAGE);
  const xdsAddress = parseHostPort(values.xds!, '--xds', PROXY_USAGE);
  const xdsAuth = values['xds-auth'] ?? (xdsAddress.port === SECURE_XDS_PORT ? 'mutual-tls' : 'none');
  if (xdsAuth !== 'mutual-tls' && xdsAuth !== 'none') throw new UsageError(`--xds-auth must be mutual-tls or none, not "${xdsAuth}"`, PROXY_USAGE);
  const caFlag = values['ca-address'] ?? (xdsAuth === 'mutual-tls' ? xdsAddress.text : DEFAULT_CA_ADDRESS);
  const caAddress = caFlag === 'none' ? undefined : parseHostPort(caFlag, '--ca-address', PROXY_USAGE).text;
  if (xdsAuth === 'mutual-tls' && !caAddress) {
    throw new UsageError('--xds-auth mutual-tls needs the workload certificate, so it cannot go with --ca-address none', PROXY_USAGE);
  }
  if (values.telemetry !== 'on' && values.telemetry !== 'off') throw new UsageError(`--telemetry must be on or off, not "${values.telemetry}"`, PROXY_USAGE);
  const concurrency = values.concurrency === 'auto' ? availableParallelism() : Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) {
    throw new UsageError(`--concurrency must be a number of worker processes (1-256) or "auto", not "${values.concurrency}"`, PROXY_USAGE);
  }
  const ttlMs = parseDuration(values['cert-ttl']!);
  if (ttlMs === undefined || ttlMs < 1000) throw new UsageError(`--cert-ttl "${values['cert-ttl']}" is not a duration of at least 1s (e.g. 24h, 90m, 30s)`, PROXY_USAGE);
  const stateDir = values['state-dir'] ?? defaultStateDir(io.env);
  const namespace = values.namespace!;
  const domain = `${namespace}.svc.cluster.local`;
  let node: { id: string; metadata: Record<string, unknown> };
  let bindAddress: string;
  let serviceAccount: string;
  const name = (values.workload ?? values.gateway)!;
  if (values.workload) {
    const control = ControlClient.fromFlag(values.control, io.env, PROXY_USAGE);
    const workload = await control.get<WorkloadInfo>(`/api/v1/workloads/${encodeURIComponent(namespace)}/${encodeURIComponent(values.workload)}`);
    // Captured: 15001 must accept the REDIRECTed connections from loopback (the kernel rewrites a
    // locally generated packet's destination to 127.0.0.1) and 15006 those on the workload address.
    bindAddress = capture ? '0.0.0.0' : workload.address;
    // Kubernetes' rule: a pod without a service account runs as "default".
    serviceAccount = workload.serviceAccount || 'default';
    node = {
      id: `sidecar~${workload.address}~${workload.name}.${namespace}~${domain}`,
      metadata: {
        NAMESPACE: namespace,
        WORKLOAD_NAME: workload.name,
        LABELS: workload.labels,
        INSTANCE_IPS: workload.address,
        SERVICE_ACCOUNT: serviceAccount,
        // Standalone: no iptables; the sidecar binds the service ports on the workload address.
        // Captured: virtualOutbound/virtualInbound, original destinations from SO_ORIGINAL_DST.
        ...(capture
          ? { INTERCEPTION_MODE: 'REDIRECT' }
          : { INTERCEPTION_MODE: 'NONE', [APP_ADDRESS_METADATA]: values['app-address'] ?? appAddressFor(workload.address) }),
        PROXY_CONFIG: { proxyAdminPort: 15000 },
      },
    };
  } else {
    if (!values.labels) throw new UsageError('--gateway needs --labels (the labels its Gateway selector matches)', PROXY_USAGE);
    bindAddress = values.address!;
    serviceAccount = values['service-account'] ?? `${values.gateway}-service-account`;
    node = {
      id: `router~${bindAddress}~${values.gateway}.${namespace}~${domain}`,
      metadata: {
        NAMESPACE: namespace,
        WORKLOAD_NAME: values.gateway,
        LABELS: parseLabels(values.labels),
        INSTANCE_IPS: bindAddress,
        SERVICE_ACCOUNT: serviceAccount,
        PROXY_CONFIG: { proxyAdminPort: 15000 },
      },
    };
  }
  const rootPath = rootCertPath(stateDir);
  const tokenPath = values['token-file'] ?? workloadTokenPath(stateDir, namespace, name);
  const { createLogger } = await import('../log/logger');
  const { startProxy } = await import('../proxy/proxy');
  const { startMultiProcessProxy } = await import('../proxy/workers/primary');
  const logLevel = values['log-level'] as LogLevel;
  const logger = createLogger({ level: logLevel });
  let originalDestination: ProxyOptions['originalDestination'];
  if (capture) {
    if (concurrency > 1) throw new UsageError('--capture runs one process (--concurrency 1)', PROXY_USAGE);
    const { originalDestinationHook, CaptureUnavailableError } = await import('../capture/original-destination');
    try {
      originalDestination = originalDestinationHook((err) => logger.warn('original_destination_failed', { error: err }));
    } catch (err) {
      if (err instanceof CaptureUnavailableError) throw new CliError(`--capture: ${err.message}`);
      throw err;
    }
  }
  const options: ProxyOptions = {
    xdsAddress: xdsAddress.text,
    xdsMutualTls: xdsAuth === 'mutual-tls' ? { rootCertPath: rootPath, tokenPath } : undefined,
    identity: caAddress
      ? {
          caAddress,
          rootCertPath: rootPath,
          tokenPath,
          trustDomain: values['trust-domain'],
          namespace,
          serviceAccount,
          certTtlSeconds: Math.round(ttlMs / 1000),
        }
      : undefined,
    node,
    bindAddress,
    logger,
    telemetry: values.telemetry === 'on',
    originalDestination,
  };
  const proxy = concurrency > 1 ? await startMultiProcessProxy({ ...options, concurrency, logLevel }) : await startProxy(options);
  const drainMs = Number(values['drain-seconds']) * 1000;
  const stop = (signal: string) => {
    logger.info('shutdown_requested', { signal, drainMs });
    void proxy.close(drainMs);
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  proxy.ready.then(
    () => logger.info('proxy_ready', { node: node.id, address: bindAddress, listeners: proxy.listeners(), identity: proxy.identityStatus()?.identity }),
    (err: Error) => logger.error('proxy_not_ready', { error: err }),
  );
  await proxy.closed;
  return 0;
}
