// Network and HTTP filter configs shared by every listener builder: the HTTP connection manager
// (with Istio's HTTP filter chain), tcp_proxy, and listener filters.
import type { RouteDestination } from '../../config/resources';
import type { PathNormalization } from '../../model/snapshot';
import type { RouteContext } from './routes';
import { destinationCluster } from './routes';
import { adsConfigSource, FILTER, TYPE } from './values';

type Json = Record<string, unknown>;

/**
 * HTTP filters by proxy role. Sidecars and gateways: cors, fault, router (Istio's order, minus
 * its telemetry/wasm filters). Inbound: router. Proxyless gRPC: fault, router (grpc-js-xds
 * supports only those; the router must be last).
 */
export type HttpFilterSet = 'outbound' | 'gateway' | 'inbound' | 'proxyless';

function httpFilters(set: HttpFilterSet, security: readonly Json[]): Json[] {
  return [...security, ...roleFilters(set)];
}

function roleFilters(set: HttpFilterSet): Json[] {
  const cors = { name: FILTER.Cors, typed_config: { '@type': TYPE.Cors } };
  const fault = { name: FILTER.Fault, typed_config: { '@type': TYPE.Fault } };
  const router = { name: FILTER.Router, typed_config: { '@type': TYPE.Router } };
  switch (set) {
    case 'outbound':
    case 'gateway':
      return [cors, fault, router];
    case 'proxyless':
      return [fault, router];
    case 'inbound':
      return [router];
  }
}

export interface HcmOptions {
  statPrefix?: string;
  /** RDS route configuration name (mutually exclusive with routeConfig). */
  rds?: string;
  /** Inline RouteConfiguration. */
  routeConfig?: Json;
  filters: HttpFilterSet;
  /** Gateways trust the downstream address (Istio: use_remote_address on gateways). */
  useRemoteAddress?: boolean;
  /** Authentication/authorization filters, first in the chain (security-filters.ts). */
  securityFilters?: readonly Json[];
  /** meshConfig.pathNormalization (inbound and gateways); others keep Envoy's normalize_path. */
  pathNormalization?: PathNormalization;
  /** The HCM's `tracing` (tracing.ts); absent: the HCM does not trace. */
  tracing?: Json;
}

/**
 * Istio's mapping of meshConfig.pathNormalization onto the HTTP connection manager: NONE leaves the
 * path alone; BASE (and DEFAULT) normalizes `.`/`..` segments (RFC 3986); MERGE_SLASHES also
 * merges `//`; DECODE_AND_MERGE_SLASHES also decodes `%2F`/`%5C` first, so `/a%2F..%2Fadmin` and
 * `//admin` reach routing and RBAC as `/admin`.
 */
function pathNormalizationFields(n: PathNormalization): Json {
  switch (n) {
    case 'NONE':
      return { normalize_path: false };
    case 'MERGE_SLASHES':
      return { normalize_path: true, merge_slashes: true };
    case 'DECODE_AND_MERGE_SLASHES':
      return { normalize_path: true, merge_slashes: true, path_with_escaped_slashes_action: 'UNESCAPE_AND_FORWARD' };
    default:
      return { normalize_path: true };
  }
}

/** The HttpConnectionManager typed config (no filter wrapper: api_listener uses it bare). */
export function httpConnectionManagerConfig(o: HcmOptions): Json {
  const proxyless = o.filters === 'proxyless';
  return {
    '@type': TYPE.HttpConnectionManager,
    ...(o.statPrefix ? { stat_prefix: o.statPrefix } : {}),
    ...(o.rds
      ? { rds: { config_source: proxyless ? { ads: {}, resource_api_version: 'V3' } : adsConfigSource(), route_config_name: o.rds } }
      : {}),
    ...(o.routeConfig ? { route_config: o.routeConfig } : {}),
    http_filters: httpFilters(o.filters, o.securityFilters ?? []),
    ...(o.tracing ? { tracing: o.tracing } : {}),
    ...(proxyless ? {} : { upgrade_configs: [{ upgrade_type: 'websocket' }], ...pathNormalizationFields(o.pathNormalization ?? 'BASE') }),
    ...(o.useRemoteAddress ? { use_remote_address: true } : {}),
  };
}

export function httpConnectionManager(o: HcmOptions): Json {
  return { name: FILTER.HttpConnectionManager, typed_config: httpConnectionManagerConfig(o) };
}

/** A chain's network filters: the security filters (network RBAC), then the terminal filter. */
export function withNetworkFilters(security: readonly Json[], terminal: Json): Json[] {
  return [...security, terminal];
}

/** tcp_proxy to one cluster. */
export function tcpProxy(cluster: string, statPrefix = cluster): Json {
  return { name: FILTER.TcpProxy, typed_config: { '@type': TYPE.TcpProxy, stat_prefix: statPrefix, cluster } };
}

/**
 * tcp_proxy for TCP/TLS route destinations: one destination -> cluster; several ->
 * weighted_clusters (zero weights skipped, as Istio does).
 */
export function tcpProxyForRoute(ctx: RouteContext, dests: readonly RouteDestination[], vsNamespace: string): Json | undefined {
  const resolved = dests
    .filter((d) => dests.length === 1 || (d.weight ?? 0) > 0)
    .map((d) => ({ cluster: destinationCluster(ctx, d.destination, vsNamespace).cluster, weight: d.weight ?? 0 }));
  if (resolved.length === 0) return undefined;
  if (resolved.length === 1) return tcpProxy(resolved[0].cluster);
  return {
    name: FILTER.TcpProxy,
    typed_config: {
      '@type': TYPE.TcpProxy,
      stat_prefix: resolved.map((r) => r.cluster).join(','),
      weighted_clusters: { clusters: resolved.map((r) => ({ name: r.cluster, weight: r.weight })) },
    },
  };
}

const LISTENER_FILTER_TYPES: Record<string, string> = {
  [FILTER.TlsInspector]: TYPE.TlsInspector,
  [FILTER.HttpInspector]: TYPE.HttpInspector,
  [FILTER.OriginalDst]: TYPE.OriginalDst,
};

export function listenerFilter(name: typeof FILTER.TlsInspector | typeof FILTER.HttpInspector | typeof FILTER.OriginalDst): Json {
  return { name, typed_config: { '@type': LISTENER_FILTER_TYPES[name] } };
}

/** ALPN values http_inspector reports for plaintext HTTP (Istio's sniffing match); a fresh list. */
export function plaintextHttpAlpn(): string[] {
  return ['http/1.1', 'h2c'];
}
