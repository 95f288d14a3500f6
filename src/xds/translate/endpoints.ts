// EDS: ClusterLoadAssignments per EDS cluster, endpoints grouped by locality (Istio's
// EndpointBuilder), filtered by the subset's labels; also the inline assignments of DNS clusters.
import { isIP } from 'node:net';
import { labelsMatch } from '../../registry/hosts';
import type { MeshEndpoint, MeshService } from '../../registry/types';
import { TRANSPORT_SOCKET_MATCH_METADATA } from './auto-mtls';
import type { OutboundClusterPlan } from './clusters';
import { mtlsMayBeDisabled, mtlsModeForPort, workloadMtls } from './peer-authentication';
import type { ProxyScope } from './scope';
import type { EnvoyResource } from './types';
import { withHiddenName } from './types';
import { locality, socketAddress } from './values';

export interface LocalityEndpointOptions {
  /** EDS (and gRPC) only take IP addresses; DNS clusters take host names. */
  ipOnly: boolean;
}

/**
 * Groups endpoints by locality (sorted by `region/zone/subzone`). Every group carries a locality
 * (possibly empty) and a load_balancing_weight equal to the sum of its endpoints' weights:
 * gRPC ignores localities without a weight.
 */
export function buildLocalityLbEndpoints(endpoints: readonly MeshEndpoint[], opts: LocalityEndpointOptions): Record<string, unknown>[] {
  const kept = opts.ipOnly ? endpoints.filter((ep) => isIP(ep.address) !== 0) : endpoints;
  if (kept.length === 0) return [];
  const first = kept[0].locality ?? '';
  // Usually every endpoint of a cluster is in one locality: no grouping needed.
  if (kept.every((ep) => (ep.locality ?? '') === first)) return [localityGroup(first, kept)];
  const groups = new Map<string, MeshEndpoint[]>();
  for (const ep of kept) {
    const key = ep.locality ?? '';
    const list = groups.get(key) ?? [];
    list.push(ep);
    groups.set(key, list);
  }
  return [...groups.keys()].sort().map((key) => localityGroup(key, groups.get(key) as MeshEndpoint[]));
}

function localityGroup(key: string, eps: readonly MeshEndpoint[]): Record<string, unknown> {
  let total = 0;
  const lbEndpoints = eps.map((ep) => {
    const weight = ep.weight && ep.weight > 0 ? ep.weight : 1;
    total += weight;
    const lbEndpoint: Record<string, unknown> = { endpoint: { address: socketAddress(ep.address, ep.port) }, health_status: 'HEALTHY' };
    const metadata: Record<string, unknown> = {};
    // Auto mTLS: clusters pick the mTLS transport socket for endpoints marked so (auto-mtls.ts).
    if (ep.tlsMode === 'istio') metadata[TRANSPORT_SOCKET_MATCH_METADATA] = { tlsMode: 'istio' };
    if (ep.workload) metadata.istio = endpointMetadata(ep);
    if (ep.tlsMode === 'istio' || ep.workload) lbEndpoint.metadata = { filter_metadata: metadata };
    lbEndpoint.load_balancing_weight = weight;
    return lbEndpoint;
  });
  return { locality: locality(key), lb_endpoints: lbEndpoints, load_balancing_weight: total };
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
  plans.forEach((p, i) => {
    if (p.discovery !== 'EDS') return;
    const endpoints = withPeerAuthentication(scope, p.service, planEndpoints[i]);
    out.push(
      shared.loadAssignments.get(p.name, endpoints, () =>
        withHiddenName({ cluster_name: p.name, endpoints: buildLocalityLbEndpoints(endpoints, { ipOnly: true }) }, p.name),
      ),
    );
  });
  return out;
}
