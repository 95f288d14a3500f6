// The proxy's compiled configuration model: what validated xDS resources become. Everything here
// is built once when config arrives and is immutable afterwards; the request path only reads it.
import type { HeaderPredicate, QueryPredicate, StringPredicate } from './string-matcher';
import type { JwtAuthnSettings } from './jwt-authn';
import type { NetworkRbacConfig, RbacFilterSettings } from './rbac';
import type { DownstreamTlsSettings } from './downstream-tls';
import type { TransportSocketMatch, TransportSocketMetadata, UpstreamTlsSettings } from './upstream-tls';
import type { TracingSettings } from '../tracing/tracing-config';
import type { Json } from './validation';
import type { EndpointPeer } from '../telemetry/peer-metadata';

// ---------------------------------------------------------------------------------------------
// Requests as the matchers see them

/** A read-only view of one downstream request, with lazily derived parts. */
export interface RequestView {
  readonly method: string;
  /** :authority (or Host), lower-cased. */
  readonly authority: string;
  /** :path including the query string. */
  readonly path: string;
  readonly scheme: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly remoteAddress: string;
  /** The downstream connection's TLS facts; undefined for plaintext connections. */
  readonly tls: DownstreamTlsInfo | undefined;
  /** Port the connection was addressed to (the original destination for captured connections). */
  readonly destinationPort: number;
  /** :path without the query string. */
  pathOnly(): string;
  query(): ReadonlyMap<string, string>;
  /** A header (or pseudo-header :method/:authority/:path/:scheme) as one comma-joined value. */
  header(name: string): string | undefined;
}

/** RequestView.header for any view: pseudo-headers from the view, `host` falls back to :authority. */
export function requestHeader(view: Omit<RequestView, 'header'>, name: string): string | undefined {
  if (name.charCodeAt(0) === 58 /* : */) {
    switch (name) {
      case ':authority':
        return view.authority;
      case ':method':
        return view.method;
      case ':path':
        return view.path;
      case ':scheme':
        return view.scheme;
      default:
        return undefined;
    }
  }
  const v = view.headers[name];
  if (v === undefined) return name === 'host' ? view.authority : undefined;
  return Array.isArray(v) ? v.join(',') : v;
}

/** What a TLS-terminating listener learned about a downstream connection. */
export interface DownstreamTlsInfo {
  /** SNI the client sent. */
  readonly serverName?: string;
  /** Negotiated version, e.g. 'TLSv1.3'. */
  readonly version?: string;
  /**
   * The verified client certificate's identity, Envoy's `principal_name`: its first URI SAN
   * (for mesh peers `spiffe://<trust-domain>/ns/<ns>/sa/<sa>`), else first DNS SAN, else subject.
   * Undefined when the client presented no (verified) certificate.
   */
  readonly peerPrincipal?: string;
  /** All URI SANs of the verified client certificate. */
  readonly peerUriSans: readonly string[];
}

// ---------------------------------------------------------------------------------------------
// Header edits

export interface HeaderAddition {
  key: string;
  /** A constant value, or a formatter evaluated per request (Envoy's %COMMAND%s). */
  value: string | ((req: RequestView) => string);
  /** APPEND_IF_EXISTS_OR_ADD, ADD_IF_ABSENT, OVERWRITE_IF_EXISTS_OR_ADD, OVERWRITE_IF_EXISTS. */
  action: 'append' | 'add-if-absent' | 'overwrite-or-add' | 'overwrite-if-exists';
  keepEmptyValue: boolean;
}

export interface HeaderEdits {
  add: readonly HeaderAddition[];
  remove: readonly string[];
}

export const NO_HEADER_EDITS: HeaderEdits = Object.freeze({ add: [], remove: [] });

// ---------------------------------------------------------------------------------------------
// HTTP filter settings (per route overrides come from typed_per_filter_config)

export interface FaultSettings {
  delay?: { fixedDelayMs: number; probability: number };
  abort?: { httpStatus?: number; grpcStatus?: number; probability: number };
  /** Only requests to these upstream clusters are faulted (empty: all). */
  upstreamCluster?: string;
  headers: readonly HeaderPredicate[];
  maxActiveFaults?: number;
}

export interface CorsSettings {
  allowOrigin: readonly StringPredicate[];
  allowMethods?: string;
  allowHeaders?: string;
  exposeHeaders?: string;
  maxAge?: string;
  allowCredentials: boolean;
  /** Probability the policy is enforced (filter_enabled). */
  enabled: number;
  /** shadow_enabled: evaluated but not enforced. */
  shadow: number;
  allowPrivateNetworkAccess: boolean;
  forwardNotMatchingPreflights: boolean;
}

/** Per-filter overrides, keyed by the filter name used in the HCM filter chain. */
export interface FilterOverrides {
  fault?: FaultSettings | null;
  cors?: CorsSettings | null;
}

// ---------------------------------------------------------------------------------------------
// Routes

export type RetryCondition =
  | '5xx'
  | 'gateway-error'
  | 'reset'
  | 'reset-before-request'
  | 'connect-failure'
  | 'envoy-ratelimited'
  | 'retriable-4xx'
  | 'refused-stream'
  | 'retriable-status-codes'
  | 'retriable-headers'
  | 'http3-post-connect-failure'
  | 'cancelled'
  | 'deadline-exceeded'
  | 'internal'
  | 'resource-exhausted'
  | 'unavailable';

export interface RetryPolicy {
  on: ReadonlySet<RetryCondition>;
  /** gRPC status codes the gRPC conditions (cancelled, unavailable, ...) retry. */
  grpcStatuses: ReadonlySet<number>;
  numRetries: number;
  /** 0: no per-try timeout. */
  perTryTimeoutMs: number;
  perTryIdleTimeoutMs: number;
  retriableStatusCodes: ReadonlySet<number>;
  retriableHeaders: readonly HeaderPredicate[];
  retriableRequestHeaders: readonly HeaderPredicate[];
  /** retry_host_predicate previous_hosts: avoid hosts already tried. */
  avoidPreviousHosts: boolean;
  /** retry_priority previous_priorities: retries leave the priorities already tried. */
  avoidPreviousPriorities?: boolean;
  hostSelectionMaxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
}

export type HashPolicy =
  | { kind: 'header'; name: string; regexRewrite?: { pattern: RegExp; substitution: string }; terminal: boolean }
  | { kind: 'cookie'; name: string; ttlMs?: number; path?: string; terminal: boolean }
  | { kind: 'source-ip'; terminal: boolean }
  | { kind: 'query'; name: string; terminal: boolean };

export interface MirrorPolicy {
  cluster: string;
  probability: number;
  traceSampled?: boolean;
}

export interface WeightedClusterChoice {
  name: string;
  weight: number;
  requestHeaders: HeaderEdits;
  responseHeaders: HeaderEdits;
  hostRewriteLiteral?: string;
  filters: FilterOverrides;
}

export interface WeightedClusters {
  choices: readonly WeightedClusterChoice[];
  /** Running sums of weights, for a binary search on a random number. */
  cumulative: readonly number[];
  total: number;
}

export interface ForwardAction {
  kind: 'forward';
  cluster?: string;
  clusterHeader?: string;
  weighted?: WeightedClusters;
  clusterNotFoundStatus: number;
  /** Envoy default 15s when unset; 0 disables. */
  timeoutMs: number;
  idleTimeoutMs: number;
  retry?: RetryPolicy;
  hashPolicies: readonly HashPolicy[];
  mirrors: readonly MirrorPolicy[];
  prefixRewrite?: string;
  regexRewrite?: { pattern: RegExp; substitution: string };
  hostRewriteLiteral?: string;
  hostRewriteHeader?: string;
  hostRewritePathRegex?: { pattern: RegExp; substitution: string };
  autoHostRewrite: boolean;
  appendXForwardedHost: boolean;
  upgrades: ReadonlySet<string>;
  /**
   * gRPC timeouts (gRPC requests only). `max_grpc_timeout` (deprecated, Istio still sets it):
   * the grpc-timeout header, or infinity without one, replaces `timeout`, capped at the max (0 = no
   * cap). `grpc_timeout_header_max`: only a grpc-timeout header replaces it, capped likewise.
   */
  grpcTimeout?: { mode: 'max_grpc_timeout' | 'grpc_timeout_header_max'; maxMs: number };
}

export interface RedirectAction {
  kind: 'redirect';
  scheme?: string;
  host?: string;
  port?: number;
  path?: string;
  prefixRewrite?: string;
  regexRewrite?: { pattern: RegExp; substitution: string };
  status: number;
  stripQuery: boolean;
}

export interface DirectResponseAction {
  kind: 'direct';
  status: number;
  body?: Buffer;
}

export type RouteActionConfig = ForwardAction | RedirectAction | DirectResponseAction;

export interface PathMatch {
  kind: 'prefix' | 'path' | 'regex' | 'separated-prefix' | 'any';
  value: string;
  regex?: RegExp;
  caseSensitive: boolean;
}

export interface CompiledRoute {
  name: string;
  path: PathMatch;
  headers: readonly HeaderPredicate[];
  query: readonly QueryPredicate[];
  /** runtime_fraction probability (1 = always). */
  fraction: number;
  grpcOnly: boolean;
  action: RouteActionConfig;
  requestHeaders: HeaderEdits;
  responseHeaders: HeaderEdits;
  filters: FilterOverrides;
  retryDefault?: RetryPolicy;
  /** decorator.operation: the name of the request's span. */
  operation?: string;
}

export interface CompiledVirtualHost {
  name: string;
  domains: readonly string[];
  routes: readonly CompiledRoute[];
  requestHeaders: HeaderEdits;
  responseHeaders: HeaderEdits;
  retry?: RetryPolicy;
  filters: FilterOverrides;
  mirrors: readonly MirrorPolicy[];
  /** x-envoy-attempt-count on upstream requests / on downstream responses. */
  includeAttemptCount: boolean;
  includeAttemptCountInResponse: boolean;
}

export interface CompiledRouteConfig {
  name: string;
  version: string;
  virtualHosts: readonly CompiledVirtualHost[];
  /** Exact domains (lower-cased) -> virtual host. */
  exact: ReadonlyMap<string, CompiledVirtualHost>;
  /** `*.example.com` style, longest suffix first. */
  suffixes: readonly { suffix: string; vhost: CompiledVirtualHost }[];
  /** `example.*` style, longest prefix first. */
  prefixes: readonly { prefix: string; vhost: CompiledVirtualHost }[];
  catchAll?: CompiledVirtualHost;
  ignorePortInHostMatching: boolean;
  /** Envoy default false: less specific levels (route config) apply last and win. */
  mostSpecificHeaderMutationsWins: boolean;
  requestHeaders: HeaderEdits;
  responseHeaders: HeaderEdits;
  /** The resource as received, for /config_dump. */
  raw: Json;
}

// ---------------------------------------------------------------------------------------------
// Listeners

export interface CidrRange {
  /** 4 or 16 bytes. */
  bytes: Uint8Array;
  prefixLen: number;
}

export interface FilterChainMatch {
  destinationPort?: number;
  prefixRanges: readonly CidrRange[];
  sourcePrefixRanges: readonly CidrRange[];
  sourcePorts: readonly number[];
  transportProtocol?: string;
  applicationProtocols: readonly string[];
  serverNames: readonly string[];
}

export type HttpFilterConfig =
  | { kind: 'fault'; name: string; settings?: FaultSettings }
  | { kind: 'cors'; name: string }
  | { kind: 'rbac'; name: string; settings: RbacFilterSettings }
  | { kind: 'jwt_authn'; name: string; settings: JwtAuthnSettings }
  | { kind: 'router'; name: string; suppressEnvoyHeaders: boolean };

export interface HttpConnectionManagerConfig {
  kind: 'http';
  statPrefix: string;
  /** RDS name, or undefined when the route config is inline. */
  routeConfigName?: string;
  inlineRouteConfig?: CompiledRouteConfig;
  codec: 'AUTO' | 'HTTP1' | 'HTTP2';
  filters: readonly HttpFilterConfig[];
  generateRequestId: boolean;
  preserveExternalRequestId: boolean;
  alwaysSetRequestIdInResponse: boolean;
  useRemoteAddress: boolean;
  xffNumTrustedHops: number;
  skipXffAppend: boolean;
  /** Always 0: non-zero values are refused until the proxy runs these timers. */
  streamIdleTimeoutMs: number;
  requestTimeoutMs: number;
  /** Idle keep-alive connections close after this (Envoy default 1h). */
  idleTimeoutMs: number;
  serverName?: string;
  serverHeader: 'overwrite' | 'append-if-absent' | 'pass-through';
  websocket: boolean;
  /** RFC 3986 dot-segment removal / collapsing of repeated slashes, before routing. */
  normalizePath: boolean;
  mergeSlashes: boolean;
  /** path_with_escaped_slashes_action (%2F, %5C); absent: KEEP_UNCHANGED. */
  escapedSlashes?: 'keep' | 'reject' | 'redirect' | 'forward';
  accessLogs: readonly AccessLogConfig[];
  /** The listener's traffic_direction (which side reports Istio's metrics); undefined: UNSPECIFIED. */
  trafficDirection?: TrafficDirection;
  /** HCM `tracing`; absent: requests are not traced (trace headers pass through untouched). */
  tracing?: TracingSettings;
}

/** Envoy's listener traffic_direction (UNSPECIFIED is left undefined). */
export type TrafficDirection = 'INBOUND' | 'OUTBOUND';

export interface AccessLogConfig {
  path: string;
  /** Text format (Envoy command operators) or JSON. */
  format?: string;
  jsonFormat?: Record<string, string>;
}

export interface TcpProxyConfig {
  kind: 'tcp';
  statPrefix: string;
  cluster?: string;
  weighted?: { names: readonly string[]; cumulative: readonly number[]; total: number };
  idleTimeoutMs: number;
  maxConnectAttempts: number;
  accessLogs: readonly AccessLogConfig[];
  /** Network RBAC filters ahead of tcp_proxy, evaluated in order when a connection is accepted. */
  rbac?: readonly NetworkRbacConfig[];
  /** The listener's traffic_direction; undefined: UNSPECIFIED. */
  trafficDirection?: TrafficDirection;
}

export interface CompiledFilterChain {
  name: string;
  match: FilterChainMatch;
  terminal: HttpConnectionManagerConfig | TcpProxyConfig;
  /** DownstreamTlsContext: the chain terminates TLS; undefined: plaintext. */
  tls?: DownstreamTlsSettings;
}

export interface CompiledListener {
  name: string;
  version: string;
  address: string;
  port: number;
  bindToPort: boolean;
  /** use_original_dst: this listener hands connections to the listener owning the destination. */
  useOriginalDst: boolean;
  filterChains: readonly CompiledFilterChain[];
  defaultFilterChain?: CompiledFilterChain;
  /** listener_filters present: http_inspector / tls_inspector / original_dst. */
  inspectors: ReadonlySet<'http' | 'tls' | 'original-dst'>;
  /** Route config names the listener needs (RDS subscription). */
  routeConfigNames: readonly string[];
  /** Listener-level access logs (connections no filter chain accepted). */
  accessLogs: readonly AccessLogConfig[];
  raw: Json;
}

// ---------------------------------------------------------------------------------------------
// Clusters and endpoints

export type LbPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'RING_HASH' | 'MAGLEV' | 'CLUSTER_PROVIDED';

export interface CircuitBreakerThresholds {
  maxConnections: number;
  maxPendingRequests: number;
  maxRequests: number;
  maxRetries: number;
  /**
   * Envoy's retry_budget: active retries may be `budgetPercent` of the active and pending
   * requests, but never fewer than `minRetryConcurrency`. When set, it replaces maxRetries.
   */
  retryBudget?: { budgetPercent: number; minRetryConcurrency: number };
  /** track_remaining: publish the circuit_breakers.default.remaining_* gauges. */
  trackRemaining?: boolean;
}

/** Upstream TCP keep-alive (upstream_connection_options.tcp_keepalive), seconds; 0: OS default. */
export interface TcpKeepaliveSettings {
  probes: number;
  timeSeconds: number;
  intervalSeconds: number;
}

export interface CompiledCluster {
  name: string;
  version: string;
  type: 'STATIC' | 'STRICT_DNS' | 'LOGICAL_DNS' | 'EDS' | 'ORIGINAL_DST';
  /** EDS service name (defaults to the cluster name). */
  edsServiceName?: string;
  connectTimeoutMs: number;
  lbPolicy: LbPolicy;
  leastRequestChoiceCount: number;
  ringHash: { minRingSize: number; maxRingSize: number };
  maglevTableSize: number;
  healthyPanicThreshold: number;
  thresholds: CircuitBreakerThresholds;
  protocol: 'http1' | 'http2' | 'downstream';
  /** 0: unlimited. */
  maxRequestsPerConnection: number;
  idleTimeoutMs: number;
  /** common_http_protocol_options.max_connection_duration; 0: none. */
  maxConnectionDurationMs: number;
  /** http2_protocol_options.max_concurrent_streams; 0: the peer's SETTINGS decide. */
  maxConcurrentStreams: number;
  /** upstream_connection_options.tcp_keepalive; undefined: keep-alive off (Envoy's default). */
  tcpKeepalive?: TcpKeepaliveSettings;
  /** common_lb_config.locality_weighted_lb_config: pick a locality by weight, then a host in it. */
  localityWeighted: boolean;
  perConnectionBufferLimitBytes: number;
  /** STATIC / DNS clusters carry their endpoints inline. */
  loadAssignment?: CompiledLoadAssignment;
  /** For ORIGINAL_DST with use_http_header. */
  originalDstHeader?: string;
  outlierDetection?: OutlierDetectionSettings;
  /** TLS origination (transport_socket UpstreamTlsContext); undefined: plaintext. */
  tls?: UpstreamTlsSettings;
  /** transport_socket_matches: chosen per endpoint from its metadata, before `tls`. */
  transportSocketMatches?: readonly TransportSocketMatch[];
  raw: Json;
}

/** Envoy's outlier_detection: consecutive errors, success rate and failure percentage. Enforcing values are 0..1. */
export interface OutlierDetectionSettings {
  consecutive5xx: number;
  enforcing5xx: number;
  consecutiveGatewayFailure: number;
  enforcingGatewayFailure: number;
  consecutiveLocalOriginFailure: number;
  enforcingLocalOriginFailure: number;
  splitExternalLocalOriginErrors: boolean;
  intervalMs: number;
  baseEjectionTimeMs: number;
  maxEjectionTimeMs: number;
  maxEjectionTimeJitterMs: number;
  maxEjectionPercent: number;
  alwaysEjectOneHost: boolean;
  enforcingSuccessRate: number;
  enforcingLocalOriginSuccessRate: number;
  successRateMinimumHosts: number;
  successRateRequestVolume: number;
  /** Divided by 1000, as Envoy's success_rate_stdev_factor. */
  successRateStdevFactor: number;
  failurePercentageThreshold: number;
  enforcingFailurePercentage: number;
  enforcingFailurePercentageLocalOrigin: number;
  failurePercentageMinimumHosts: number;
  failurePercentageRequestVolume: number;
}

export type HealthStatus = 'HEALTHY' | 'UNHEALTHY' | 'DRAINING' | 'TIMEOUT' | 'DEGRADED' | 'UNKNOWN';

export interface CompiledEndpoint {
  address: string;
  port: number;
  weight: number;
  health: HealthStatus;
  hostname?: string;
  locality?: string;
  /** The locality group's load_balancing_weight (locality-weighted balancing); undefined: none. */
  localityWeight?: number;
  priority: number;
  /** `envoy.transport_socket_match` metadata of the endpoint and of its locality. */
  transportSocketMetadata?: TransportSocketMetadata;
  /** Istio's endpoint metadata (`istio.workload`, tlsMode): who the endpoint is, for telemetry. */
  peer?: EndpointPeer;
}

export interface CompiledLoadAssignment {
  clusterName: string;
  version: string;
  endpoints: readonly CompiledEndpoint[];
  raw: Json;
}
