// Proxyless gRPC (Istio's grpcgen): api_listeners named `host:port` (and its short forms) with an
// HTTP connection manager over RDS, one route configuration per listener, EDS/LOGICAL_DNS
// clusters that @grpc/grpc-js-xds accepts (ROUND_ROBIN or RING_HASH only), and their endpoints.
import { splitKubeHost } from '../../registry/hosts';
import type { MeshService } from '../../registry/types';
import { buildOutboundClusterResources } from './clusters';
import { httpConnectionManagerConfig } from './filters';
import { hostPort } from './names';
import type { RouteContext } from './routes';
import { buildVirtualServiceRoutes, defaultRoute } from './routes';
import type { ProxyScope } from './scope';
import { meshVirtualServiceFor } from './scope';
import type { EnvoyResource } from './types';

/**
 * The names a gRPC client may dial a service port by (`xds:///<name>`): the FQDN form, and for
 * Kubernetes-style hosts `name.ns` and `name.ns.svc`, plus bare `name` in the client's namespace.
 */
export function proxylessListenerNames(service: MeshService, port: number, proxyNamespace: string, domainSuffix: string): string[] {
  const names = [hostPort(service.hostname, port)];
  const kube = splitKubeHost(service.hostname, domainSuffix);
  if (kube) {
    names.push(hostPort(`${kube.name}.${kube.namespace}`, port), hostPort(`${kube.name}.${kube.namespace}.svc`, port));
    if (kube.namespace === proxyNamespace) names.push(hostPort(kube.name, port));
  }
  return names;
}

export function buildProxylessResources(scope: ProxyScope): {
  clusters: readonly EnvoyResource[];
  endpoints: readonly EnvoyResource[];
  listeners: EnvoyResource[];
  routes: EnvoyResource[];
} {
  const { clusters, loadAssignments: endpoints } = buildOutboundClusterResources(scope, { proxyless: true });
  const listeners: EnvoyResource[] = [];
  const routes: EnvoyResource[] = [];
  for (const service of scope.services) {
    if (service.resolution === 'NONE') continue;
    const vs = meshVirtualServiceFor(scope, service.hostname, 'http');
    for (const p of service.ports) {
      if (p.protocol === 'UDP') continue;
      const ctx: RouteContext = { scope, listenerPort: p.port, gateways: ['mesh'], proxyless: true };
      const vhostRoutes = vs ? buildVirtualServiceRoutes(ctx, vs) : [defaultRoute(ctx, service, p.port)];
      for (const name of proxylessListenerNames(service, p.port, scope.proxy.namespace, scope.mesh.domainSuffix)) {
        listeners.push({
          name,
          api_listener: { api_listener: httpConnectionManagerConfig({ rds: name, filters: 'proxyless' }) },
        });
        routes.push({ name, virtual_hosts: [{ name, domains: [name], routes: vhostRoutes }], validate_clusters: false });
      }
    }
  }
  return { clusters, endpoints, listeners, routes };
}
