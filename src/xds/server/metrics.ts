// Prometheus metrics of the ADS server, under Istio's pilot_* names so existing Istio dashboards
// and alerts read them unchanged. Registered only when a registry is passed in.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { SHORT_TYPE_NAMES, type TypeUrl } from '../protos';

/** Istio's metric label for a type URL: cds, eds, lds, rds, sds (or the message name). */
export function metricTypeLabel(typeUrl: string): string {
  const short = SHORT_TYPE_NAMES[typeUrl as TypeUrl];
  return short ? short.toLowerCase() : typeUrl.slice(typeUrl.lastIndexOf('.') + 1);
}

const SECONDS_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const SIZE_BUCKETS = [1_000, 10_000, 100_000, 1_000_000, 10_000_000];

/** Every metric the server records; all methods are no-ops without a registry. */
export interface XdsMetrics {
  connectedProxies(count: number): void;
  responseSent(typeUrl: string, bytes: number): void;
  proxyPushed(seconds: number): void;
  sendCompleted(seconds: number): void;
  rejected(typeUrl: string): void;
  converged(seconds: number): void;
  snapshotApplied(debounceSeconds: number): void;
  internalError(): void;
}

const noop = () => {};
export const NO_XDS_METRICS: XdsMetrics = {
  connectedProxies: noop,
  responseSent: noop,
  proxyPushed: noop,
  sendCompleted: noop,
  rejected: noop,
  converged: noop,
  snapshotApplied: noop,
  internalError: noop,
};

export function createXdsMetrics(registry: Registry | undefined): XdsMetrics {
  if (!registry) return NO_XDS_METRICS;
  const registers = [registry];
  const xds = new Gauge({ name: 'pilot_xds', help: 'Number of endpoints connected to this pilot using XDS.', registers });
  const pushes = new Counter({
    name: 'pilot_xds_pushes',
    help: 'Pilot build and send errors for lds, rds, cds and eds.',
    labelNames: ['type'],
    registers,
  });
  const pushTime = new Histogram({
    name: 'pilot_xds_push_time',
    help: 'Total time in seconds Pilot takes to push lds, rds, cds and eds to one proxy.',
    buckets: SECONDS_BUCKETS,
    registers,
  });
  const sendTime = new Histogram({
    name: 'pilot_xds_send_time',
    help: 'Total time in seconds Pilot takes to send generated configuration.',
    buckets: SECONDS_BUCKETS,
    registers,
  });
  const rejects = new Counter({
    name: 'pilot_total_xds_rejects',
    help: 'Total number of XDS responses from pilot rejected by proxy.',
    labelNames: ['type'],
    registers,
  });
  const convergence = new Histogram({
    name: 'pilot_proxy_convergence_time',
    help: 'Delay in seconds between config change and a proxy receiving all required configuration.',
    buckets: SECONDS_BUCKETS,
    registers,
  });
  const configSize = new Histogram({
    name: 'pilot_xds_config_size_bytes',
    help: 'Distribution of configuration sizes pushed to clients',
    labelNames: ['type'],
    buckets: SIZE_BUCKETS,
    registers,
  });
  const debounce = new Histogram({
    name: 'pilot_debounce_time',
    help: 'Delay in seconds between the first config enters debouncing and the merged push request is pushed into the push queue.',
    buckets: SECONDS_BUCKETS,
    registers,
  });
  const internalErrors = new Counter({
    name: 'pilot_total_xds_internal_errors',
    help: 'Total number of internal XDS errors in pilot.',
    registers,
  });
  const snapshotPushes = new Counter({
    name: 'weft_xds_snapshot_pushes_total',
    help: 'Snapshots applied by the ADS server (each one evaluated against every connected proxy).',
    registers,
  });
  return {
    connectedProxies: (count) => xds.set(count),
    responseSent: (typeUrl, bytes) => {
      const type = metricTypeLabel(typeUrl);
      pushes.inc({ type });
      configSize.observe({ type }, bytes);
    },
    proxyPushed: (seconds) => pushTime.observe(seconds),
    sendCompleted: (seconds) => sendTime.observe(seconds),
    rejected: (typeUrl) => rejects.inc({ type: metricTypeLabel(typeUrl) }),
    converged: (seconds) => convergence.observe(seconds),
    snapshotApplied: (debounceSeconds) => {
      snapshotPushes.inc();
      debounce.observe(debounceSeconds);
    },
    internalError: () => internalErrors.inc(),
  };
}
