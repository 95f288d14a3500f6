// Resource names exactly as Istio spells them, so `istioctl proxy-config` habits carry over.

export type TrafficDirection = 'inbound' | 'outbound';

/** Istio's BuildSubsetKey: `outbound|9080|v1|reviews.default.svc.cluster.local`, `inbound|9080||`. */
export function clusterName(direction: TrafficDirection, port: number, subset = '', host = ''): string {
  return `${direction}|${port}|${subset}|${host}`;
}

export function outboundClusterName(host: string, port: number, subset = ''): string {
  return clusterName('outbound', port, subset, host);
}

/** Inbound clusters are keyed by the workload (target) port only. */
export function inboundClusterName(port: number): string {
  return clusterName('inbound', port);
}

/** Parses a cluster name back into its parts (Istio's ParseSubsetKey). */
export function parseClusterName(
  name: string,
): { direction: TrafficDirection; port: number; subset: string; host: string } | undefined {
  const parts = name.split('|');
  if (parts.length !== 4 || (parts[0] !== 'inbound' && parts[0] !== 'outbound')) return undefined;
  const port = Number(parts[1]);
  if (!Number.isInteger(port)) return undefined;
  return { direction: parts[0], port, subset: parts[2], host: parts[3] };
}

/** Istio's special clusters. */
export const BLACKHOLE_CLUSTER = 'BlackHoleCluster';
export const PASSTHROUGH_CLUSTER = 'PassthroughCluster';

/** Sidecar capture listeners and ports (Istio's numbers). */
export const VIRTUAL_OUTBOUND_LISTENER = 'virtualOutbound';
export const VIRTUAL_INBOUND_LISTENER = 'virtualInbound';
export const VIRTUAL_OUTBOUND_PORT = 15001;
export const VIRTUAL_INBOUND_PORT = 15006;
export const WILDCARD_ADDRESS = '0.0.0.0';

/** Istio's RDSHttpProxy: the all-ports route configuration behind the HTTP proxy listener. */
export const HTTP_PROXY_ROUTE_CONFIG = 'http_proxy';

/** Catch-all virtual hosts (Istio util.Passthrough / util.BlackHole). */
export const ALLOW_ANY_VHOST = 'allow_any';
export const BLOCK_ALL_VHOST = 'block_all';

/** Istio's name for a VirtualService-less default route. */
export const DEFAULT_ROUTE_NAME = 'default';

/** Per-port listeners: `0.0.0.0_9080`. */
export function listenerName(address: string, port: number): string {
  return `${address}_${port}`;
}

/** Sidecar outbound route configurations are named by port: "9080". */
export function outboundRouteConfigName(port: number): string {
  return String(port);
}

/** Inbound HTTP route configuration name, the inbound cluster name (Istio). */
export function inboundRouteConfigName(port: number): string {
  return inboundClusterName(port);
}

/** Gateway plain-HTTP route configurations: `http.8080`. */
export function gatewayHttpRouteConfigName(port: number): string {
  return `http.${port}`;
}

/** Gateway TLS-terminated server route configurations (Istio's GatewayRDSRouteName). */
export function gatewayHttpsRouteConfigName(port: number, portName: string, gatewayName: string, gatewayNamespace: string): string {
  return `https.${port}.${portName}.${gatewayName}.${gatewayNamespace}`;
}

/** `host:port` — virtual host names and proxyless listener / route names. */
export function hostPort(host: string, port: number): string {
  return `${host}:${port}`;
}
