// `weft proxy`: runs the Weft proxy for one workload (sidecar, from its WorkloadEntry) or as a
// gateway (selected by Gateway `selector` labels), configured entirely over ADS.
import { parseCommandArgs, UsageError } from './cli-errors';
import type { CliIo } from './cli-io';
import { CONTROL_HELP, CONTROL_OPTION, ControlClient, parseHostPort } from './control-client';

export const PROXY_USAGE = `Usage:
  weft proxy --workload NAME [-n NS] [--xds HOST:PORT] [--control HOST:PORT]
  weft proxy --gateway NAME [-n NS] --labels k=v[,k=v] [--address IP] [--xds HOST:PORT]

Sidecar mode takes the address, labels and service account of WorkloadEntry NAME from the control
plane and binds on that address: outbound 15001, inbound 15006, admin 15000 (loopback only),
Prometheus stats 15090, health 15021. Gateway mode serves the listeners of every Gateway whose
selector matches --labels, on --address (default 127.0.0.1).

Options:
      --workload NAME      WorkloadEntry this sidecar serves
      --gateway NAME       run as a gateway proxy with this name
  -n, --namespace NS       namespace of the workload or gateway (default "default")
      --labels k=v,...     gateway labels matched by Gateway.selector (e.g. istio=ingressgateway)
      --address IP         gateway bind address (default 127.0.0.1)
      --xds HOST:PORT      control plane xDS address (default 127.0.0.1:15010)
      --drain-seconds N    on SIGTERM, how long in-flight requests may finish (default 5)
      --log-level LEVEL    debug | info | warn | error (default info)
${CONTROL_HELP}
`;

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
      xds: { type: 'string', default: '127.0.0.1:15010' },
      'drain-seconds': { type: 'string', default: '5' },
      'log-level': { type: 'string', default: 'info' },
      ...CONTROL_OPTION,
    },
    PROXY_USAGE,
  );
  if (Boolean(values.workload) === Boolean(values.gateway)) throw new UsageError('give exactly one of --workload NAME or --gateway NAME', PROXY_USAGE);
  parseHostPort(values.xds!, '--xds', PROXY_USAGE);
  const namespace = values.namespace!;
  const domain = `${namespace}.svc.cluster.local`;
  let node: { id: string; metadata: Record<string, unknown> };
  let bindAddress: string;
  if (values.workload) {
    const control = ControlClient.fromFlag(values.control, io.env, PROXY_USAGE);
    const workload = await control.get<WorkloadInfo>(`/api/v1/workloads/${encodeURIComponent(namespace)}/${encodeURIComponent(values.workload)}`);
    bindAddress = workload.address;
    node = {
      id: `sidecar~${workload.address}~${workload.name}.${namespace}~${domain}`,
      metadata: {
        NAMESPACE: namespace,
        WORKLOAD_NAME: workload.name,
        LABELS: workload.labels,
        INSTANCE_IPS: workload.address,
        SERVICE_ACCOUNT: workload.serviceAccount,
        PROXY_CONFIG: { proxyAdminPort: 15000 },
      },
    };
  } else {
    if (!values.labels) throw new UsageError('--gateway needs --labels (the labels its Gateway selector matches)', PROXY_USAGE);
    bindAddress = values.address!;
    node = {
      id: `router~${bindAddress}~${values.gateway}.${namespace}~${domain}`,
      metadata: {
        NAMESPACE: namespace,
        WORKLOAD_NAME: values.gateway,
        LABELS: parseLabels(values.labels),
        INSTANCE_IPS: bindAddress,
        PROXY_CONFIG: { proxyAdminPort: 15000 },
      },
    };
  }
  const { createLogger } = await import('../log/logger');
  const { startProxy } = await import('../proxy/proxy');
  const logger = createLogger({ level: values['log-level'] as 'info' });
  const proxy = await startProxy({ xdsAddress: values.xds!, node, bindAddress, logger });
  const drainMs = Number(values['drain-seconds']) * 1000;
  const stop = (signal: string) => {
    logger.info('shutdown_requested', { signal, drainMs });
    void proxy.close(drainMs);
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  proxy.ready.then(
    () => logger.info('proxy_ready', { node: node.id, address: bindAddress, listeners: proxy.listeners() }),
    (err: Error) => logger.error('proxy_not_ready', { error: err }),
  );
  await proxy.closed;
  return 0;
}
