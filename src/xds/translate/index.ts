// The pure translation (snapshot, proxy) -> Envoy resources, dispatching on the proxy's kind
// (sidecar, gateway router, proxyless gRPC) like Istio's per-type generators.
import type { MeshSnapshot } from '../../model/snapshot';
import type { ProxyNode } from '../../model/proxy';
import { TypeUrl } from '../protos';
import { buildInboundClusters, buildOutboundClusters, planOutboundClusters } from './clusters';
import { buildClusterLoadAssignments } from './endpoints';
import { buildGatewayResources } from './gateway';
import {
  buildOutboundListeners,
  buildVirtualInboundListener,
  buildVirtualOutboundListener,
  inboundPortsFor,
} from './listeners';
import { buildProxylessResources } from './proxyless';
import { buildOutboundRouteConfigurations } from './routes';
import { buildProxyScope } from './scope';
import type { EnvoyResource, GeneratedResources } from './types';

export type { EnvoyResource, GeneratedResources } from './types';
export { parseProxyNode } from './node';
export type { XdsNodeLike } from './node';

/**
 * Everything the proxy should receive, by type URL (Cluster, ClusterLoadAssignment, Listener,
 * RouteConfiguration), each map sorted by resource name. Pure and deterministic: reads only the
 * snapshot and the proxy, never the clock, the network or randomness; never mutates its inputs.
 */
export function translateForProxy(snapshot: MeshSnapshot, proxy: ProxyNode): GeneratedResources {
  const scope = buildProxyScope(snapshot, proxy);
  if (proxy.type === 'proxyless') {
    const r = buildProxylessResources(scope);
    return assemble(r.clusters, r.endpoints, r.listeners, r.routes);
  }
  const plans = planOutboundClusters(scope, { proxyless: false });
  const clusters = buildOutboundClusters(scope, plans, { proxyless: false });
  const endpoints = buildClusterLoadAssignments(scope, plans);
  if (proxy.type === 'router') {
    const gw = buildGatewayResources(scope);
    return assemble(clusters, endpoints, gw.listeners, gw.routes);
  }
  const inbound = inboundPortsFor(scope);
  clusters.push(...buildInboundClusters(inbound));
  const listeners = [buildVirtualOutboundListener(scope), ...buildOutboundListeners(scope)];
  const virtualInbound = buildVirtualInboundListener(inbound);
  if (virtualInbound) listeners.push(virtualInbound);
  return assemble(clusters, endpoints, listeners, buildOutboundRouteConfigurations(scope));
}

function assemble(
  clusters: EnvoyResource[],
  endpoints: EnvoyResource[],
  listeners: EnvoyResource[],
  routes: EnvoyResource[],
): GeneratedResources {
  return {
    [TypeUrl.Cluster]: byName(clusters),
    [TypeUrl.ClusterLoadAssignment]: byName(endpoints),
    [TypeUrl.Listener]: byName(listeners),
    [TypeUrl.RouteConfiguration]: byName(routes),
  };
}

/** Sorted by name; the first resource of a name wins (names are unique by construction). */
function byName(resources: EnvoyResource[]): ReadonlyMap<string, EnvoyResource> {
  const m = new Map<string, EnvoyResource>();
  for (const r of [...resources].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (!m.has(r.name)) m.set(r.name, r);
  }
  return m;
}
