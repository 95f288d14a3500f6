// Lookups built once per snapshot and read by every proxy's translation (Istio's PushContext
// indexes): DestinationRules by host, Sidecars by namespace, the label selectors that can tell two
// proxies apart, and which service endpoints each workload backs.
import type { ConfigResource } from '../../config/resources';
import type { MeshSnapshot } from '../../model/snapshot';
import { toFqdn } from '../../registry/hosts';
import type { MeshEndpoint, MeshService } from '../../registry/types';

type DestinationRuleResource = ConfigResource<'DestinationRule'>;

/** A DestinationRule with its resolved host and its position in namespace/name order. */
export interface IndexedDestinationRule {
  readonly dr: DestinationRuleResource;
  readonly host: string;
  readonly order: number;
}

/** One service endpoint backed by a workload, with its service. */
export interface WorkloadEndpoint {
  readonly service: MeshService;
  readonly endpoint: MeshEndpoint;
}

/** Immutable once built; one per snapshot. */
export interface SnapshotIndex {
  /** DestinationRules by exact FQDN host, in namespace/name order. */
  readonly drExact: ReadonlyMap<string, readonly IndexedDestinationRule[]>;
  /** DestinationRules with a wildcard host, in namespace/name order. */
  readonly drWildcard: readonly IndexedDestinationRule[];
  /**
   * The workloadSelector labels of every DestinationRule that has one, by the rule's namespace
   * (only rules in a proxy's own namespace test its labels; see findDestinationRule).
   */
  readonly drSelectorsByNamespace: ReadonlyMap<string, readonly (Record<string, string> | undefined)[]>;
  /** Distinct `sourceLabels` of VirtualService `http` matches (any VirtualService). */
  readonly httpSourceLabels: readonly Record<string, string>[];
  /** Distinct `sourceLabels` of VirtualService `tcp` and `tls` matches (any VirtualService). */
  readonly l4SourceLabels: readonly Record<string, string>[];
  /** Every Gateway's selector, in namespace/name order (see selectGateways). */
  readonly gatewaySelectors: readonly (Record<string, string> | undefined)[];
  /** Sidecar resources by namespace, in name order. */
  readonly sidecarsByNamespace: ReadonlyMap<string, readonly ConfigResource<'Sidecar'>[]>;
  /** Workload keys (`namespace/name`) in registry order. */
  readonly workloadKeys: readonly string[];
  /** `namespace|address` -> position in workloadKeys of the first workload with that address. */
  readonly workloadByAddress: ReadonlyMap<string, number>;
  /** Workload key -> the endpoints it backs, in registry order (hostname, then endpoint order). */
  readonly workloadEndpoints: ReadonlyMap<string, readonly WorkloadEndpoint[]>;
}

/** Builds the index: O(resources + endpoints), pure. */
export function buildSnapshotIndex(snapshot: MeshSnapshot): SnapshotIndex {
  const suffix = snapshot.meshConfig.domainSuffix;
  const drExact = new Map<string, IndexedDestinationRule[]>();
  const drWildcard: IndexedDestinationRule[] = [];
  const drSelectorsByNamespace = new Map<string, (Record<string, string> | undefined)[]>();
  snapshot.byKind.DestinationRule.forEach((dr, order) => {
    const host = toFqdn(dr.spec.host, dr.metadata.namespace, suffix);
    if (host.startsWith('*')) drWildcard.push({ dr, host, order });
    else pushTo(drExact, host, { dr, host, order });
    if (dr.spec.workloadSelector) pushTo(drSelectorsByNamespace, dr.metadata.namespace, dr.spec.workloadSelector.matchLabels);
  });

  const http = new DistinctSelectors();
  const l4 = new DistinctSelectors();
  for (const vs of snapshot.byKind.VirtualService) {
    for (const r of vs.spec.http ?? []) for (const m of r.match ?? []) http.add(m.sourceLabels);
    for (const r of vs.spec.tcp ?? []) for (const m of r.match ?? []) l4.add(m.sourceLabels);
    for (const r of vs.spec.tls ?? []) for (const m of r.match ?? []) l4.add(m.sourceLabels);
  }

  const sidecarsByNamespace = new Map<string, ConfigResource<'Sidecar'>[]>();
  for (const s of snapshot.byKind.Sidecar) pushTo(sidecarsByNamespace, s.metadata.namespace, s);

  const { registry } = snapshot;
  const workloadKeys: string[] = [];
  const workloadByAddress = new Map<string, number>();
  for (const [key, w] of registry.workloads) {
    const at = `${w.namespace}|${w.address}`;
    if (!workloadByAddress.has(at)) workloadByAddress.set(at, workloadKeys.length);
    workloadKeys.push(key);
  }
  const workloadEndpoints = new Map<string, WorkloadEndpoint[]>();
  for (const [host, eps] of registry.endpoints) {
    const service = registry.services.get(host);
    if (!service) continue;
    for (const endpoint of eps) if (endpoint.workload) pushTo(workloadEndpoints, endpoint.workload, { service, endpoint });
  }

  return {
    drExact,
    drWildcard,
    drSelectorsByNamespace,
    httpSourceLabels: http.list,
    l4SourceLabels: l4.list,
    gatewaySelectors: snapshot.byKind.Gateway.map((g) => g.spec.selector),
    sidecarsByNamespace,
    workloadKeys,
    workloadByAddress,
    workloadEndpoints,
  };
}

function pushTo<K, V>(m: Map<K, V[]>, key: K, value: V): void {
  const list = m.get(key);
  if (list) list.push(value);
  else m.set(key, [value]);
}

/** Collects selectors once each (by sorted content), in first-seen order. */
class DistinctSelectors {
  readonly list: Record<string, string>[] = [];
  private readonly seen = new Set<string>();

  add(selector: Record<string, string> | undefined): void {
    if (!selector) return;
    const key = JSON.stringify(Object.entries(selector).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.list.push(selector);
  }
}
