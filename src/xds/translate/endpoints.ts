// EDS: ClusterLoadAssignments per EDS cluster, endpoints grouped by locality (Istio's
// EndpointBuilder), filtered by the subset's labels; also the inline assignments of DNS clusters.
// Locality-aware balancing (Istio's loadbalancer package) is per proxy: priorities by how close
// each locality is to the proxy's own (failover, failoverPriority), or locality weights
// (distribute), from the DestinationRule's localityLbSetting or the mesh default (enabled).
import { isIP } from 'node:net';
import type { LocalityLoadBalancerSetting } from '../../config/resources';
import type { MeshSnapshot } from '../../model/snapshot';
import type { ProxyNode } from '../../model/proxy';
import { labelsMatch } from '../../registry/hosts';
import { localityMatches, localityPriority, parseLocality, topologyLabels, type Locality } from '../../registry/topology';
import type { MeshEndpoint, MeshService } from '../../registry/types';
import { TRANSPORT_SOCKET_MATCH_METADATA } from './auto-mtls';
import type { OutboundClusterPlan } from './clusters';
import { proxyWorkloadKey } from './inbound';
import { mtlsMayBeDisabled, mtlsModeForPort, workloadMtls } from './peer-authentication';
import type { EffectivePolicy } from './policies';
import type { ProxyScope } from './scope';
import type { SnapshotIndex } from './snapshot-index';
import type { EnvoyResource } from './types';
import { withHiddenName } from './types';
import { locality, socketAddress } from './values';

export interface LocalityEndpointOptions {
  /** EDS (and gRPC) only take IP addresses; DNS clusters take host names. */
  ipOnly: boolean;
  /** Locality-aware balancing relative to one proxy; absent: every locality at priority 0. */
  balancing?: LocalityBalancing;
}

/** Where the proxy runs, for locality-aware balancing. */
export interface ProxyLocality {
  readonly text: string;
  readonly locality: Locality;
  /** The proxy's labels with the topology labels of its locality and network (failoverPriority). */
  readonly labels: Readonly<Record<string, string>>;
}

/** One cluster's locality-aware balancing for one proxy. */
export interface LocalityBalancing {
  readonly proxy: ProxyLocality;
  readonly setting: LocalityLoadBalancerSetting;
  /** Failover needs outlier detection (Envoy would never leave priority 0 otherwise), as in Istio. */
  readonly failover: boolean;
}

/** Istio's mesh default localityLbSetting: enabled, nothing else. */
const MESH_LOCALITY_LB: LocalityLoadBalancerSetting = Object.freeze({ enabled: true });

/**
 * Istio's GetLocalityLbSetting: the DestinationRule's setting (none when it says `enabled: false`),
 * else the mesh default.
 */
export function localityLbSettingFor(policy: EffectivePolicy): LocalityLoadBalancerSetting | undefined {
  const s = policy.loadBalancer?.localityLbSetting;
  if (s) return s.enabled === false ? undefined : s;
  return MESH_LOCALITY_LB;
}

/** The balancing to apply to one cluster's endpoints for this proxy, if any. */
export function localityBalancingFor(proxy: ProxyLocality | undefined, policy: EffectivePolicy): LocalityBalancing | undefined {
  if (!proxy) return undefined;
  const setting = localityLbSettingFor(policy);
  if (!setting) return undefined;
  const failover = policy.outlierDetection !== undefined;
  if (!setting.distribute?.length && !failover) return undefined;
  return { proxy, setting, failover };
}

/**
 * The proxy's locality: its WorkloadEntry's `locality`. Undefined for a proxy without one (a
 * gateway, or a workload with no locality): it gets no locality-aware balancing.
 */
export function proxyLocalityOf(snapshot: MeshSnapshot, index: SnapshotIndex, proxy: ProxyNode): ProxyLocality | undefined {
  const key = proxyWorkloadKey(snapshot, index, proxy);
  const workload = key === undefined ? undefined : snapshot.registry.workloads.get(key);
  if (!workload?.locality) return undefined;
  return {
    text: workload.locality,
    locality: parseLocality(workload.locality),
    labels: { ...topologyLabels(workload.locality, workload.network), ...proxy.labels },
  };
}

const failoverLabelMemo = new WeakMap<MeshSnapshot, readonly string[]>();

/** Every label name a DestinationRule's failoverPriority mentions, sorted. */
function failoverPriorityLabels(snapshot: MeshSnapshot): readonly string[] {
  let names = failoverLabelMemo.get(snapshot);
  if (!names) {
    const set = new Set<string>();
    const visit = (lb: { localityLbSetting?: LocalityLoadBalancerSetting } | undefined) => {
      for (const entry of lb?.localityLbSetting?.failoverPriority ?? []) set.add(entry.split('=')[0]);
    };
    for (const dr of snapshot.byKind.DestinationRule) {
      const policies = [dr.spec.trafficPolicy, ...(dr.spec.subsets ?? []).map((s) => s.trafficPolicy)];
      for (const p of policies) {
        visit(p?.loadBalancer);
        for (const pls of p?.portLevelSettings ?? []) visit(pls.loadBalancer);
      }
    }
    names = [...set].sort();
    failoverLabelMemo.set(snapshot, names);
  }
  return names;
}

/**
 * What a proxy's ClusterLoadAssignments depend on besides the snapshot and its view: its locality
 * and the labels failoverPriority compares. '' for a proxy without a locality (no locality-aware
 * balancing), so such proxies keep sharing everything.
 */
export function localitySignature(snapshot: MeshSnapshot, index: SnapshotIndex, proxy: ProxyNode): string {
  const where = proxyLocalityOf(snapshot, index, proxy);
  if (!where) return '';
  const labels = failoverPriorityLabels(snapshot).map((name) => where.labels[name] ?? '');
  return labels.length ? `${where.text}|${JSON.stringify(labels)}` : where.text;
}

/** The memo key part for one cluster's balancing: everything applyLocalityBalancing reads. */
function balancingKey(b: LocalityBalancing | undefined): string {
  if (!b) return '';
  const s = b.setting;
  const labels = (s.failoverPriority ?? []).map((entry) => b.proxy.labels[entry.split('=')[0]] ?? '');
  return JSON.stringify([b.proxy.text, b.failover, s.distribute ?? null, s.failover ?? null, s.failoverPriority ?? null, labels]);
}

/** A locality group of endpoints on its way to LocalityLbEndpoints. */
interface LocalityGroup {
  readonly key: string;
  readonly locality: Locality;
  endpoints: readonly MeshEndpoint[];
  weight: number;
  priority: number;
}

/**
 * Groups endpoints by locality (sorted by `region/zone/subzone`). Every group carries a locality
 * (possibly empty) and a load_balancing_weight equal to the sum of its endpoints' weights:
 * gRPC ignores localities without a weight. With `balancing`, groups get priorities or weights.
 */
export function buildLocalityLbEndpoints(endpoints: readonly MeshEndpoint[], opts: LocalityEndpointOptions): Record<string, unknown>[] {
  const kept = opts.ipOnly ? endpoints.filter((ep) => isIP(ep.address) !== 0) : endpoints;
  if (kept.length === 0) return [];
  const first = kept[0].locality ?? '';
  let groups: LocalityGroup[];
  // Usually every endpoint of a cluster is in one locality: no grouping needed.
  if (kept.every((ep) => (ep.locality ?? '') === first)) groups = [group(first, kept)];
  else {
    const byKey = new Map<string, MeshEndpoint[]>();
    for (const ep of kept) {
      const key = ep.locality ?? '';
      const list = byKey.get(key) ?? [];
      list.push(ep);
      byKey.set(key, list);
    }
    groups = [...byKey.keys()].sort().map((key) => group(key, byKey.get(key) as MeshEndpoint[]));
  }
  if (opts.balancing) groups = applyLocalityBalancing(groups, opts.balancing);
  return groups.map(localityGroup);
}

function endpointWeight(ep: MeshEndpoint): number {
  return ep.weight && ep.weight > 0 ? ep.weight : 1;
}

function group(key: string, eps: readonly MeshEndpoint[]): LocalityGroup {
  return { key, locality: parseLocality(key), endpoints: eps, weight: eps.reduce((a, ep) => a + endpointWeight(ep), 0), priority: 0 };
}

/** Istio's ApplyLocalityLoadBalancer: distribute (weights), else failover (priorities). */
function applyLocalityBalancing(groups: LocalityGroup[], b: LocalityBalancing): LocalityGroup[] {
  const s = b.setting;
  if (s.distribute?.length) {
    applyLocalityWeights(groups, b.proxy.locality, s.distribute);
    return groups;
  }
  if (!b.failover) return groups;
  if (s.failoverPriority?.length) {
    const split = applyFailoverPriorities(groups, b.proxy.labels, s.failoverPriority);
    // An explicit failover goes on top of failoverPriority; without it, labels alone decide.
    if (s.failover?.length) applyLocalityFailover(split, b.proxy.locality, s.failover);
    return split;
  }
  applyLocalityFailover(groups, b.proxy.locality, s.failover ?? []);
  return groups;
}

/**
 * Istio's applyLocalityWeights: the first rule whose `from` matches the proxy's locality sets each
 * matching locality's weight (split over the groups a wildcard matches, by their own weight);
 * localities no `to` entry names keep no endpoints.
 */
function applyLocalityWeights(groups: LocalityGroup[], proxy: Locality, distribute: NonNullable<LocalityLoadBalancerSetting['distribute']>): void {
  const rule = distribute.find((d) => d.from !== undefined && localityMatches(proxy, d.from));
  if (!rule) return;
  const unmatched = new Set(groups.map((_, i) => i));
  for (const [to, weight] of Object.entries(rule.to ?? {})) {
    const matched = [...unmatched].filter((i) => localityMatches(groups[i].locality, to));
    const total = matched.reduce((a, i) => a + groups[i].weight, 0);
    for (const i of matched) {
      unmatched.delete(i);
      const w = (groups[i].weight * weight) / total;
      if (w > 0) groups[i].weight = Math.ceil(w);
    }
  }
  for (const i of unmatched) groups[i].endpoints = [];
}

/**
 * Istio's applyLocalityFailover: priority 0 for the proxy's subzone, 1 its zone, 2 its region,
 * 3 other regions — 4 for those a `failover` rule from the proxy's region does not name —
 * added to any priority failoverPriority gave (x5), then renumbered 0..N without gaps.
 */
function applyLocalityFailover(groups: LocalityGroup[], proxy: Locality, failover: NonNullable<LocalityLoadBalancerSetting['failover']>): void {
  for (const g of groups) {
    let p = localityPriority(proxy, g.locality);
    if (p === 3) {
      const rule = failover.find((f) => f.from === proxy.region);
      if (rule && g.locality.region !== rule.to) p = 4;
    }
    g.priority = g.priority * 5 + p;
  }
  renumberPriorities(groups);
}

/**
 * Istio's applyFailoverPriorities: within each locality, endpoints whose labels match the proxy's
 * on every failoverPriority label (`name`, or `name=value` to compare with a fixed value) are
 * priority 0; a first mismatch at label j (of n) gives priority n - j. Each locality splits into
 * one group per priority, then priorities are renumbered without gaps.
 */
function applyFailoverPriorities(groups: readonly LocalityGroup[], proxyLabels: Readonly<Record<string, string>>, failoverPriority: readonly string[]): LocalityGroup[] {
  const names = failoverPriority.map((e) => e.split('=')[0]);
  const fixed = new Map<string, string>();
  for (const e of failoverPriority) {
    const parts = e.split('=');
    if (parts.length === 2) fixed.set(parts[0], parts[1]);
  }
  const lowest = names.length;
  const out: LocalityGroup[] = [];
  for (const g of groups) {
    const byPriority = new Map<number, MeshEndpoint[]>();
    for (const ep of g.endpoints) {
      const labels = { ...topologyLabels(ep.locality, ep.network), ...ep.labels };
      let priority = 0;
      for (let j = 0; j < names.length; j++) {
        const want = fixed.has(names[j]) ? fixed.get(names[j]) : proxyLabels[names[j]];
        if (want !== labels[names[j]]) {
          priority = lowest - j;
          break;
        }
      }
      const list = byPriority.get(priority) ?? [];
      list.push(ep);
      byPriority.set(priority, list);
    }
    for (const p of [...byPriority.keys()].sort((a, b) => a - b)) {
      const eps = byPriority.get(p)!;
      out.push({ ...g, endpoints: eps, weight: eps.reduce((a, ep) => a + endpointWeight(ep), 0), priority: p });
    }
  }
  renumberPriorities(out);
  return out;
}

/** Envoy needs priorities 0..N without gaps; keeps their order. */
function renumberPriorities(groups: LocalityGroup[]): void {
  const used = [...new Set(groups.map((g) => g.priority))].sort((a, b) => a - b);
  for (const g of groups) g.priority = used.indexOf(g.priority);
}

function localityGroup(g: LocalityGroup): Record<string, unknown> {
  const lbEndpoints = g.endpoints.map((ep) => {
    const weight = endpointWeight(ep);
    const lbEndpoint: Record<string, unknown> = { endpoint: { address: socketAddress(ep.address, ep.port) }, health_status: 'HEALTHY' };
    const metadata: Record<string, unknown> = {};
    // Auto mTLS: clusters pick the mTLS transport socket for endpoints marked so (auto-mtls.ts).
    if (ep.tlsMode === 'istio') metadata[TRANSPORT_SOCKET_MATCH_METADATA] = { tlsMode: 'istio' };
    if (ep.workload) metadata.istio = endpointMetadata(ep);
    if (ep.tlsMode === 'istio' || ep.workload) lbEndpoint.metadata = { filter_metadata: metadata };
    lbEndpoint.load_balancing_weight = weight;
    return lbEndpoint;
  });
  return { locality: locality(g.key), lb_endpoints: lbEndpoints, load_balancing_weight: g.weight, ...(g.priority > 0 ? { priority: g.priority } : {}) };
}

/** Istio's `istio.workload` metadata: `name;namespace;canonical-service;revision;cluster`. */
function endpointMetadata(ep: MeshEndpoint): Record<string, unknown> {
  const [namespace, name] = (ep.workload as string).split('/');
  const service = ep.labels['service.istio.io/canonical-name'] ?? ep.labels.app ?? name;
  const revision = ep.labels['service.istio.io/canonical-revision'] ?? ep.labels.version ?? 'latest';
  const out: Record<string, unknown> = { workload: `${name};${namespace};${service};${revision};Kubernetes` };
  if (ep.serviceAccount) out.service_account = ep.serviceAccount;
  return out;
}

/**
 * Whether buildLocalityLbEndpoints gives the same output for two endpoint lists: compares exactly
 * the fields it reads (keep the two in step).
 */
export function sameEndpointInputs(a: readonly MeshEndpoint[], b: readonly MeshEndpoint[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!sameEndpoint(a[i], b[i])) return false;
  return true;
}

function sameEndpoint(a: MeshEndpoint, b: MeshEndpoint): boolean {
  if (a === b) return true;
  const la = a.labels;
  const lb = b.labels;
  return (
    a.address === b.address &&
    a.port === b.port &&
    a.locality === b.locality &&
    a.weight === b.weight &&
    a.workload === b.workload &&
    a.serviceAccount === b.serviceAccount &&
    a.tlsMode === b.tlsMode &&
    la['service.istio.io/canonical-name'] === lb['service.istio.io/canonical-name'] &&
    la.app === lb.app &&
    la['service.istio.io/canonical-revision'] === lb['service.istio.io/canonical-revision'] &&
    la.version === lb.version
  );
}

/** The endpoints behind one cluster: the service's instances on that port, within the subset. */
export function endpointsForCluster(scope: ProxyScope, plan: OutboundClusterPlan): MeshEndpoint[] {
  const all = scope.snapshot.registry.endpoints.get(plan.service.hostname) ?? [];
  const subsetLabels = plan.subset?.labels;
  return all.filter((ep) => ep.servicePort === plan.port.port && labelsMatch(subsetLabels, ep.labels));
}

/**
 * The endpoints with the tlsMode clients should use: a sidecar endpoint whose own
 * PeerAuthentication is DISABLE on its port is `disabled`, so auto mTLS sends it plaintext (Istio's
 * EDS mtlsChecker). Returns the same list when nothing changes.
 */
export function withPeerAuthentication(scope: ProxyScope, service: MeshService, endpoints: readonly MeshEndpoint[]): readonly MeshEndpoint[] {
  const index = scope.snapshotIndex;
  if (index.security.mtlsDisabledNamespaces.size === 0) return endpoints;
  let out: MeshEndpoint[] | undefined;
  endpoints.forEach((ep, i) => {
    if (ep.tlsMode !== 'istio') return;
    const namespace = ep.workload ? ep.workload.slice(0, ep.workload.indexOf('/')) : service.namespace;
    if (!mtlsMayBeDisabled(scope.snapshot, index, namespace)) return;
    if (mtlsModeForPort(workloadMtls(scope.snapshot, index, namespace, ep.labels), ep.port) !== 'DISABLE') return;
    out ??= [...endpoints];
    out[i] = { ...ep, tlsMode: 'disabled' };
  });
  return out ?? endpoints;
}

/**
 * One ClusterLoadAssignment per EDS cluster, named after the cluster (eds service_name), from the
 * plans' endpoints (endpointsForCluster, in plan order). An assignment is a function of the
 * cluster name and its endpoints only, so it is looked up by exactly those: unchanged services
 * keep the same object across proxies and snapshots.
 */
export function buildClusterLoadAssignments(
  scope: ProxyScope,
  plans: readonly OutboundClusterPlan[],
  planEndpoints: readonly (readonly MeshEndpoint[])[],
): EnvoyResource[] {
  const out: EnvoyResource[] = [];
  const { shared } = scope;
  let where: ProxyLocality | undefined | null = null;
  plans.forEach((p, i) => {
    if (p.discovery !== 'EDS') return;
    const endpoints = withPeerAuthentication(scope, p.service, planEndpoints[i]);
    if (where === null) where = proxyLocalityOf(scope.snapshot, scope.snapshotIndex, scope.proxy);
    const balancing = localityBalancingFor(where, p.policy);
    // Assignments balanced for one proxy's locality are remembered under that locality too.
    const key = balancing ? `${p.name}|${balancingKey(balancing)}` : p.name;
    out.push(
      shared.loadAssignments.get(key, endpoints, () =>
        withHiddenName({ cluster_name: p.name, endpoints: buildLocalityLbEndpoints(endpoints, { ipOnly: true, balancing }) }, p.name),
      ),
    );
  });
  return out;
}
