// Test support: resources as the proxy receives them (JSON -> protobuf bytes -> JSON, the same
// codec the ADS stream uses), so tests see exactly what decoding produces.
import { decodeResource, encodeResource, TypeUrl } from '../../../src/xds/protos';
import type { Json } from '../../../src/proxy/config/validation';


export function received(typeUrl: string, resource: Json): Json {
  return decodeResource<Json>(typeUrl, encodeResource(typeUrl, resource));
}

export const rds = (r: Json) => received(TypeUrl.RouteConfiguration, r);
export const lds = (r: Json) => received(TypeUrl.Listener, r);
export const cds = (r: Json) => received(TypeUrl.Cluster, r);
export const eds = (r: Json) => received(TypeUrl.ClusterLoadAssignment, r);

export const TYPES = {
  hcm: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  tcpProxy: 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  fault: 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
  cors: 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors',
  corsPolicy: 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy',
  rbac: 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
  httpProtocolOptions: 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  previousHosts: 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate',
  httpInspector: 'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector',
  originalDst: 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst',
};

/** A minimal request for matcher tests. */
export function requestView(o: {
  method?: string;
  authority?: string;
  path?: string;
  headers?: Record<string, string>;
  remoteAddress?: string;
}): import('../../../src/proxy/config/model').RequestView {
  const path = o.path ?? '/';
  const headers = o.headers ?? {};
  const authority = (o.authority ?? 'example.com').toLowerCase();
  const method = o.method ?? 'GET';
  const q = path.indexOf('?');
  return {
    method,
    authority,
    path,
    scheme: 'http',
    headers,
    remoteAddress: o.remoteAddress ?? '127.0.0.1',
    tls: undefined,
    destinationPort: 80,
    pathOnly: () => (q < 0 ? path : path.slice(0, q)),
    query: () => new URLSearchParams(q < 0 ? '' : path.slice(q + 1)) as unknown as Map<string, string>,
    header: (name: string) => {
      if (name === ':method') return method;
      if (name === ':authority') return authority;
      if (name === ':path') return path;
      return headers[name];
    },
  };
}
