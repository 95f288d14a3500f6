// Lookups built once per snapshot and read by every proxy's translation (Istio's PushContext
// indexes): DestinationRules by host, Sidecars by namespace, security policies by namespace, the
// label selectors that can tell two proxies apart, and which service endpoints each workload backs.
import type { ConfigResource, ObjectMeta } from '../../config/resources';
import type { MeshSnapshot } from '../../model/snapshot';
import { toFqdn } from '../../registry/hosts';
import type { MeshEndpoint, MeshService } from '../../registry/types';
import type {
  AuthorizationPolicyResource,
  PeerAuthenticationResource,
  RequestAuthenticationResource,
  TargetablePolicy,
} from './security-selection';
import { compareByAge, GATEWAY_NAME_LABEL, targetRefsOf } from './security-selection';

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
  readonly security: SecurityIndex;
}

/** security.istio.io policies, indexed once per snapshot. */
export interface SecurityIndex {
  /** Each kind's policies by namespace, in Istio's order (oldest first, then name). */
  readonly peerAuthentications: ReadonlyMap<string, readonly PeerAuthenticationResource[]>;
  readonly authorizationPolicies: ReadonlyMap<string, readonly AuthorizationPolicyResource[]>;
  readonly requestAuthentications: ReadonlyMap<string, readonly RequestAuthenticationResource[]>;
  /**
   * By namespace, the distinct label selectors of all three kinds, written as selectors over proxy
   * labels (a Gateway targetRef becomes `{gateway.networking.k8s.io/gateway-name: <name>}`): which
   * of them a proxy's labels satisfy decides which policies apply to it (ProxySignature).
   */
  readonly selectorsByNamespace: ReadonlyMap<string, readonly Record<string, string>[]>;
  /** Namespaces with a PeerAuthentication that says DISABLE (at any level or port): EDS checks their endpoints. */
  readonly mtlsDisabledNamespaces: ReadonlySet<string>;
  /**
   * Memo of resolved workload mTLS settings by labels object and namespace (peer-authentication.ts).
   * The only mutable part of the index: a cache of a pure function of the snapshot.
   */
  readonly peerAuthenticationMemo: WeakMap<object, unknown>;
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
    security: buildSecurityIndex(snapshot),
  };
}

function buildSecurityIndex(snapshot: MeshSnapshot): SecurityIndex {
  const byNamespace = <T extends { metadata: ObjectMeta }>(list: readonly T[]): Map<string, T[]> => {
    const m = new Map<string, T[]>();
    for (const r of list) pushTo(m, r.metadata.namespace, r);
    for (const l of m.values()) l.sort(compareByAge);
    return m;
  };
  const peerAuthentications = byNamespace(snapshot.byKind.PeerAuthentication as unknown as PeerAuthenticationResource[]);
  const authorizationPolicies = byNamespace(snapshot.byKind.AuthorizationPolicy as unknown as AuthorizationPolicyResource[]);
  const requestAuthentications = byNamespace(snapshot.byKind.RequestAuthentication as unknown as RequestAuthenticationResource[]);

  const selectors = new Map<string, DistinctSelectors>();
  const addSelector = (ns: string, selector: Record<string, string> | undefined) => {
    if (!selector || Object.keys(selector).length === 0) return;
    let d = selectors.get(ns);
    if (!d) selectors.set(ns, (d = new DistinctSelectors()));
    d.add(selector);
  };
  const kinds = [snapshot.byKind.PeerAuthentication, snapshot.byKind.AuthorizationPolicy, snapshot.byKind.RequestAuthentication];
  for (const p of kinds.flat() as unknown as TargetablePolicy[]) {
    addSelector(p.metadata.namespace, p.spec.selector?.matchLabels);
    for (const ref of targetRefsOf(p.spec)) addSelector(p.metadata.namespace, { [GATEWAY_NAME_LABEL]: ref.name });
  }

  const mtlsDisabledNamespaces = new Set<string>();
  for (const [ns, policies] of peerAuthentications) {
    for (const p of policies) {
      if (p.spec.mtls?.mode === 'DISABLE' || Object.values(p.spec.portLevelMtls ?? {}).some((m) => m.mode === 'DISABLE')) mtlsDisabledNamespaces.add(ns);
    }
  }

  return {
    peerAuthentications,
    authorizationPolicies,
    requestAuthentications,
    selectorsByNamespace: new Map([...selectors].map(([ns, d]) => [ns, d.list])),
    mtlsDisabledNamespaces,
    peerAuthenticationMemo: new WeakMap(),
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
