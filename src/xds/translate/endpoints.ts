// EDS: ClusterLoadAssignments per EDS cluster, endpoints grouped by locality (Istio's
// EndpointBuilder), filtered by the subset's labels; also the inline assignments of DNS clusters.
import { isIP } from 'node:net';
import { labelsMatch } from '../../registry/hosts';
import type { MeshEndpoint } from '../../registry/types';
import type { OutboundClusterPlan } from './clusters';
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
  const groups = new Map<string, MeshEndpoint[]>();
  for (const ep of endpoints) {
    if (opts.ipOnly && isIP(ep.address) === 0) continue;
    const key = ep.locality ?? '';
    const list = groups.get(key) ?? [];
    list.push(ep);
    groups.set(key, list);
  }
  return [...groups.keys()].sort().map((key) => {
    const eps = groups.get(key) as MeshEndpoint[];
    let total = 0;
    const lbEndpoints = eps.map((ep) => {
      const weight = ep.weight && ep.weight > 0 ? ep.weight : 1;
      total += weight;
      return {
        endpoint: { address: socketAddress(ep.address, ep.port) },
        health_status: 'HEALTHY',
        ...(ep.workload ? { metadata: { filter_metadata: { istio: endpointMetadata(ep) } } } : {}),
        load_balancing_weight: weight,
      };
    });
    return { locality: locality(key), lb_endpoints: lbEndpoints, load_balancing_weight: total };
  });
}

/** Istio's `istio.workload` metadata: `name;namespace;canonical-service;revision;cluster`. */
function endpointMetadata(ep: MeshEndpoint): Record<string, unknown> {
  const [namespace, name] = (ep.workload as string).split('/');
  const service = ep.labels['service.istio.io/canonical-name'] ?? ep.labels.app ?? name;
  const revision = ep.labels['service.istio.io/canonical-revision'] ?? ep.labels.version ?? 'latest';
  return {
    workload: `${name};${namespace};${service};${revision};Kubernetes`,
    ...(ep.serviceAccount ? { service_account: ep.serviceAccount } : {}),
  };
}

/** The endpoints behind one cluster: the service's instances on that port, within the subset. */
export function endpointsForCluster(scope: ProxyScope, plan: OutboundClusterPlan): MeshEndpoint[] {
  const all = scope.snapshot.registry.endpoints.get(plan.service.hostname) ?? [];
  const subsetLabels = plan.subset?.labels;
  return all.filter((ep) => ep.servicePort === plan.port.port && labelsMatch(subsetLabels, ep.labels));
}

/** One ClusterLoadAssignment per EDS cluster, named after the cluster (eds service_name). */
export function buildClusterLoadAssignments(scope: ProxyScope, plans: readonly OutboundClusterPlan[]): EnvoyResource[] {
  return plans
    .filter((p) => p.discovery === 'EDS')
    .map((p) =>
      withHiddenName(
        { cluster_name: p.name, endpoints: buildLocalityLbEndpoints(endpointsForCluster(scope, p), { ipOnly: true }) },
        p.name,
      ),
    );
}
