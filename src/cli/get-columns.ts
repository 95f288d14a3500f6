// The table columns `weft get` prints per kind: Istio's CRD printer columns (what kubectl shows
// for them) where Istio defines some, plus a few useful ones; `wide` columns only with -o wide.
// There is no AGE: the config directory does not record when a resource was created.
import type { ResourceKind } from '../config/resources';

/** A resource as the API returns it. */
export interface ApiResource {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; labels?: Record<string, string> };
  spec: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface Column {
  header: string;
  value: (r: ApiResource) => string;
  wide?: boolean;
}

/** kubectl renders array printer columns as JSON: `["reviews"]`. */
function jsonList(value: unknown): string {
  return Array.isArray(value) && value.length > 0 ? JSON.stringify(value) : '';
}

function labels(value: unknown): string {
  if (!value || typeof value !== 'object') return '<none>';
  const entries = Object.entries(value as Record<string, string>);
  return entries.length ? entries.map(([k, v]) => `${k}=${v}`).join(',') : '<none>';
}

function text(value: unknown): string {
  return value === undefined || value === null ? '' : String(value);
}

const SERVICE_COLUMNS: Column[] = [
  { header: 'TYPE', value: (r) => text(r.spec.type ?? 'ClusterIP') },
  { header: 'CLUSTER-IP', value: (r) => text(r.spec.clusterIP ?? '<none>') },
  { header: 'EXTERNAL-IP', value: (r) => (Array.isArray(r.spec.externalIPs) && r.spec.externalIPs.length ? r.spec.externalIPs.join(',') : '<none>') },
  {
    header: 'PORT(S)',
    value: (r) => ((r.spec.ports ?? []) as { port: number; protocol?: string }[]).map((p) => `${p.port}/${p.protocol ?? 'TCP'}`).join(',') || '<none>',
  },
  { header: 'SELECTOR', value: (r) => labels(r.spec.selector), wide: true },
];

export const COLUMNS: Record<ResourceKind, Column[]> = {
  VirtualService: [
    { header: 'GATEWAYS', value: (r) => jsonList(r.spec.gateways) },
    { header: 'HOSTS', value: (r) => jsonList(r.spec.hosts) },
    {
      header: 'ROUTES',
      value: (r) => ['http', 'tcp', 'tls'].filter((k) => Array.isArray(r.spec[k]) && r.spec[k].length).map((k) => `${k}:${r.spec[k].length}`).join(','),
      wide: true,
    },
  ],
  DestinationRule: [
    { header: 'HOST', value: (r) => text(r.spec.host) },
    { header: 'SUBSETS', value: (r) => ((r.spec.subsets ?? []) as { name: string }[]).map((s) => s.name).join(',') },
    { header: 'TLS', value: (r) => text(r.spec.trafficPolicy?.tls?.mode), wide: true },
  ],
  Gateway: [
    { header: 'SELECTOR', value: (r) => labels(r.spec.selector) },
    {
      header: 'SERVERS',
      value: (r) =>
        ((r.spec.servers ?? []) as { port?: { number?: number; protocol?: string }; hosts?: string[] }[])
          .map((s) => `${(s.port?.protocol ?? '').toLowerCase()}:${s.port?.number ?? ''}`)
          .join(','),
    },
    {
      header: 'HOSTS',
      value: (r) => jsonList([...new Set(((r.spec.servers ?? []) as { hosts?: string[] }[]).flatMap((s) => s.hosts ?? []))]),
      wide: true,
    },
  ],
  ServiceEntry: [
    { header: 'HOSTS', value: (r) => jsonList(r.spec.hosts) },
    { header: 'LOCATION', value: (r) => text(r.spec.location) },
    { header: 'RESOLUTION', value: (r) => text(r.spec.resolution) },
    {
      header: 'PORTS',
      value: (r) => ((r.spec.ports ?? []) as { number: number; protocol?: string }[]).map((p) => `${p.number}/${p.protocol ?? ''}`).join(','),
      wide: true,
    },
  ],
  WorkloadEntry: [
    { header: 'ADDRESS', value: (r) => text(r.spec.address) },
    { header: 'SERVICE ACCOUNT', value: (r) => text(r.spec.serviceAccount), wide: true },
    { header: 'LABELS', value: (r) => labels(r.spec.labels), wide: true },
  ],
  Sidecar: [
    { header: 'WORKLOAD SELECTOR', value: (r) => labels(r.spec.workloadSelector?.labels) },
    { header: 'EGRESS HOSTS', value: (r) => jsonList(((r.spec.egress ?? []) as { hosts?: string[] }[]).flatMap((e) => e.hosts ?? [])), wide: true },
  ],
  Service: SERVICE_COLUMNS,
  PeerAuthentication: [
    { header: 'MODE', value: (r) => text(r.spec.mtls?.mode) },
    { header: 'SELECTOR', value: (r) => labels(r.spec.selector?.matchLabels), wide: true },
  ],
  AuthorizationPolicy: [
    { header: 'ACTION', value: (r) => text(r.spec.action ?? 'ALLOW') },
    { header: 'RULES', value: (r) => String((r.spec.rules ?? []).length), wide: true },
  ],
  RequestAuthentication: [
    { header: 'ISSUERS', value: (r) => jsonList(((r.spec.jwtRules ?? []) as { issuer?: string }[]).map((j) => j.issuer)) },
  ],
  // Istio's CRD prints only AGE; the selector helps tell mesh, namespace and workload ones apart.
  Telemetry: [{ header: 'SELECTOR', value: (r) => labels(r.spec.selector?.matchLabels), wide: true }],
};
