// Builds the service registry (services, endpoints, workloads) from Kubernetes Services,
// ServiceEntries and WorkloadEntries, the way Istio's kube and serviceentry controllers do.
import type {
  ConfigResource,
  KubeServiceSpec,
  ServiceEntrySpec,
  WorkloadEntrySpec,
} from '../config/resources';
import { resourceKey } from '../config/resources';
import type { MeshConfig } from '../model/snapshot';
import { labelsMatch } from './hosts';
import { protocolForKubePort, protocolForServiceEntryPort } from './protocol';
import type { MeshEndpoint, MeshService, ServicePortInfo, ServiceRegistry, TlsMode, Workload } from './types';
import { TLS_MODE_LABEL } from './types';

/** Kubernetes annotation Istio reads for a Service's visibility. */
const EXPORT_TO_ANNOTATION = 'networking.istio.io/exportTo';

/**
 * Pure and deterministic: the same resources always give the same registry, with every map in
 * sorted key order. When two resources declare the same hostname, the first by resource key wins.
 */
export function buildServiceRegistry(resources: readonly ConfigResource[], mesh: MeshConfig): ServiceRegistry {
  const sorted = [...resources].sort((a, b) => compare(resourceKey(a), resourceKey(b)));
  const workloadEntries = sorted.filter((r): r is ConfigResource<'WorkloadEntry'> => r.kind === 'WorkloadEntry');
  const entriesByNamespace = new Map<string, WorkloadEntryIndex>();
  for (const we of workloadEntries) {
    let index = entriesByNamespace.get(we.metadata.namespace);
    if (!index) entriesByNamespace.set(we.metadata.namespace, (index = new WorkloadEntryIndex()));
    index.add(we);
  }
  const noEntries = new WorkloadEntryIndex();
  const inNamespace = (ns: string) => entriesByNamespace.get(ns) ?? noEntries;

  const services = new Map<string, MeshService>();
  const endpoints = new Map<string, MeshEndpoint[]>();
  const add = (svc: MeshService, eps: MeshEndpoint[]): void => {
    if (services.has(svc.hostname)) return;
    services.set(svc.hostname, svc);
    endpoints.set(svc.hostname, eps);
  };

  for (const r of sorted) {
    if (r.kind === 'Service') {
      const svc = kubeService(r as ConfigResource<'Service'>, mesh);
      add(svc, kubeServiceEndpoints(r as ConfigResource<'Service'>, svc, inNamespace(svc.namespace)));
    } else if (r.kind === 'ServiceEntry') {
      for (const [svc, eps] of serviceEntryServices(r as ConfigResource<'ServiceEntry'>, inNamespace(r.metadata.namespace))) add(svc, eps);
    }
  }

  const workloads = new Map<string, Workload>();
  for (const we of workloadEntries) workloads.set(`${we.metadata.namespace}/${we.metadata.name}`, toWorkload(we));

  return {
    services: sortedMap(services),
    endpoints: sortedMap(new Map([...endpoints].map(([h, eps]) => [h, [...eps].sort(compareEndpoints)]))),
    workloads: sortedMap(workloads),
  };
}

/**
 * The WorkloadEntries of one namespace, in resource order, with an index by label (`key=value`),
 * so selecting the endpoints of a service reads the entries carrying one of its selector's labels
 * instead of every entry of the namespace (1,000 services x 3,000 entries was 3 million label
 * matches per snapshot).
 */
class WorkloadEntryIndex {
  readonly all: ConfigResource<'WorkloadEntry'>[] = [];
  private readonly byLabel = new Map<string, ConfigResource<'WorkloadEntry'>[]>();

  add(we: ConfigResource<'WorkloadEntry'>): void {
    this.all.push(we);
    for (const [k, v] of Object.entries(we.spec.labels ?? {})) {
      const key = `${k}\u0000${v}`;
      const list = this.byLabel.get(key);
      if (list) list.push(we);
      else this.byLabel.set(key, [we]);
    }
  }

  /**
   * Entries that may match `selector` (a superset, in resource order): those with the selector's
   * rarest label; every entry for an empty selector. Callers still check labelsMatch.
   */
  candidates(selector: Record<string, string> | undefined): readonly ConfigResource<'WorkloadEntry'>[] {
    let best: readonly ConfigResource<'WorkloadEntry'>[] | undefined;
    for (const [k, v] of Object.entries(selector ?? {})) {
      const list = this.byLabel.get(`${k}\u0000${v}`) ?? [];
      if (!best || list.length < best.length) best = list;
    }
    return best ?? this.all;
  }
}

function kubeService(r: ConfigResource<'Service'>, mesh: MeshConfig): MeshService {
  const spec: KubeServiceSpec = r.spec ?? {};
  const { name, namespace } = r.metadata;
  const ports: ServicePortInfo[] = (spec.ports ?? []).map((p) => ({
    name: p.name ?? '',
    port: p.port,
    protocol: protocolForKubePort(p),
    ...(typeof p.targetPort === 'number' ? { targetPort: p.targetPort } : {}),
  }));
  const headless = spec.clusterIP === 'None';
  const exportTo = r.metadata.annotations?.[EXPORT_TO_ANNOTATION]
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return {
    hostname: `${name}.${namespace}.svc.${mesh.domainSuffix}`,
    namespace,
    name,
    ports,
    // Istio: headless Services are passthrough (ORIGINAL_DST); others get EDS endpoints.
    resolution: headless ? 'NONE' : 'STATIC',
    location: 'MESH_INTERNAL',
    addresses: spec.clusterIP && !headless ? [spec.clusterIP] : [],
    ...(exportTo && exportTo.length ? { exportTo } : {}),
    declaredBy: resourceKey(r),
  };
}

/**
 * Endpoints of a Service: WorkloadEntries in its namespace whose labels match its selector.
 * Port on the workload, in order: WorkloadEntry.ports[service port name], numeric targetPort,
 * WorkloadEntry.ports[string targetPort] (skipped when absent, as Kubernetes does), service port.
 */
function kubeServiceEndpoints(
  r: ConfigResource<'Service'>,
  svc: MeshService,
  entries: WorkloadEntryIndex,
): MeshEndpoint[] {
  const selector = r.spec?.selector;
  if (!selector || Object.keys(selector).length === 0) return [];
  const out: MeshEndpoint[] = [];
  for (const we of entries.candidates(selector)) {
    if (we.metadata.namespace !== svc.namespace || !we.spec.address) continue;
    if (!labelsMatch(selector, we.spec.labels ?? {})) continue;
    for (const kp of r.spec.ports ?? []) {
      const byName = kp.name !== undefined ? we.spec.ports?.[kp.name] : undefined;
      let port: number | undefined;
      if (byName !== undefined) port = byName;
      else if (typeof kp.targetPort === 'number') port = kp.targetPort;
      else if (typeof kp.targetPort === 'string') port = we.spec.ports?.[kp.targetPort];
      else port = kp.port;
      if (port === undefined) continue;
      out.push(endpointFor(we.spec, port, kp.port, workloadKey(we)));
    }
  }
  return out;
}

function serviceEntryServices(
  r: ConfigResource<'ServiceEntry'>,
  entries: WorkloadEntryIndex,
): [MeshService, MeshEndpoint[]][] {
  const spec: ServiceEntrySpec = r.spec;
  const namespace = r.metadata.namespace;
  const ports: ServicePortInfo[] = (spec.ports ?? []).map((p) => ({
    name: p.name,
    port: p.number,
    protocol: protocolForServiceEntryPort(p),
    ...(p.targetPort !== undefined ? { targetPort: p.targetPort } : {}),
  }));
  const resolution = spec.resolution ?? 'NONE';
  const out: [MeshService, MeshEndpoint[]][] = [];
  for (const host of spec.hosts ?? []) {
    const svc: MeshService = {
      hostname: host,
      namespace,
      name: host,
      ports,
      resolution,
      location: spec.location ?? 'MESH_EXTERNAL',
      addresses: [...(spec.addresses ?? [])],
      ...(spec.exportTo ? { exportTo: [...spec.exportTo] } : {}),
      declaredBy: resourceKey(r),
      ...(spec.subjectAltNames?.length ? { subjectAltNames: [...spec.subjectAltNames] } : {}),
    };
    const eps: MeshEndpoint[] = [];
    const portFor = (we: WorkloadEntrySpec, p: ServicePortInfo) => we.ports?.[p.name] ?? p.targetPort ?? p.port;
    if (spec.workloadSelector) {
      for (const we of entries.candidates(spec.workloadSelector.labels)) {
        if (we.metadata.namespace !== namespace || !we.spec.address) continue;
        if (!labelsMatch(spec.workloadSelector.labels, we.spec.labels ?? {})) continue;
        for (const p of ports) eps.push(endpointFor(we.spec, portFor(we.spec, p), p.port, workloadKey(we)));
      }
    } else if (spec.endpoints && spec.endpoints.length > 0) {
      for (const ep of spec.endpoints) {
        if (!ep.address) continue;
        for (const p of ports) eps.push(endpointFor(ep, portFor(ep, p), p.port));
      }
    } else if ((resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') && !host.startsWith('*')) {
      // Istio: a DNS ServiceEntry without endpoints resolves its own host name.
      for (const p of ports) eps.push({ address: host, port: p.targetPort ?? p.port, servicePort: p.port, labels: {}, tlsMode: 'disabled' });
    }
    out.push([svc, eps]);
  }
  return out;
}

function endpointFor(we: WorkloadEntrySpec, port: number, servicePort: number, workload?: string): MeshEndpoint {
  return {
    address: we.address as string,
    port,
    servicePort,
    labels: { ...(we.labels ?? {}) },
    ...(we.serviceAccount !== undefined || workload ? { serviceAccount: we.serviceAccount ?? 'default' } : {}),
    ...(we.locality !== undefined ? { locality: we.locality } : {}),
    ...(we.weight !== undefined ? { weight: we.weight } : {}),
    ...(we.network !== undefined ? { network: we.network } : {}),
    ...(workload ? { workload } : {}),
    tlsMode: tlsModeOf(we),
  };
}

/**
 * Istio's WorkloadEntry rule (serviceentry conversion): the `security.istio.io/tlsMode` label when
 * present, else `istio` when a service account is declared (the entry stands for a workload with a
 * sidecar and an identity), else `disabled`.
 */
export function tlsModeOf(we: WorkloadEntrySpec): TlsMode {
  const label = we.labels?.[TLS_MODE_LABEL];
  if (label !== undefined) return label;
  return we.serviceAccount ? 'istio' : 'disabled';
}

function toWorkload(we: ConfigResource<'WorkloadEntry'>): Workload {
  const s = we.spec;
  return {
    name: we.metadata.name,
    namespace: we.metadata.namespace,
    address: s.address ?? '',
    labels: { ...(s.labels ?? {}) },
    serviceAccount: s.serviceAccount ?? 'default',
    ports: { ...(s.ports ?? {}) },
    ...(s.locality !== undefined ? { locality: s.locality } : {}),
    ...(s.network !== undefined ? { network: s.network } : {}),
    ...(s.weight !== undefined ? { weight: s.weight } : {}),
    tlsMode: tlsModeOf(s),
  };
}

function workloadKey(we: ConfigResource<'WorkloadEntry'>): string {
  return `${we.metadata.namespace}/${we.metadata.name}`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareEndpoints(a: MeshEndpoint, b: MeshEndpoint): number {
  return (
    a.servicePort - b.servicePort ||
    compare(a.address, b.address) ||
    a.port - b.port ||
    compare(a.workload ?? '', b.workload ?? '')
  );
}

function sortedMap<V>(m: Map<string, V>): Map<string, V> {
  return new Map([...m].sort(([a], [b]) => compare(a, b)));
}
