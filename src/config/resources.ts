// Istio and Kubernetes resource shapes, exactly as users write them in YAML. Field names follow
// Istio's API (networking.istio.io / security.istio.io) so a user's existing YAML reads unchanged.

export interface ObjectMeta {
  name: string;
  namespace: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  resourceVersion?: string;
  /** RFC 3339, as Kubernetes sets it; security policies use it for precedence (oldest wins). */
  creationTimestamp?: string;
}

/** Where a resource came from: a file and its document index, or an API call. */
export interface ResourceOrigin {
  file?: string;
  /** 0-based index of the YAML document inside the file. */
  document?: number;
  source: 'file' | 'api' | 'kubernetes' | 'test';
}

/** A resource after parsing and validation. `spec` is typed per kind. */
export interface ConfigResource<K extends ResourceKind = ResourceKind, S = SpecOf<K>> {
  apiVersion: string;
  kind: K;
  metadata: ObjectMeta;
  spec: S;
  origin?: ResourceOrigin;
}

export type ResourceKind =
  | 'VirtualService'
  | 'DestinationRule'
  | 'Gateway'
  | 'ServiceEntry'
  | 'WorkloadEntry'
  | 'Sidecar'
  | 'Service'
  | 'PeerAuthentication'
  | 'AuthorizationPolicy'
  | 'RequestAuthentication'
  | 'Telemetry';

export type SpecOf<K extends ResourceKind> = K extends 'VirtualService'
  ? VirtualServiceSpec
  : K extends 'DestinationRule'
    ? DestinationRuleSpec
    : K extends 'Gateway'
      ? GatewaySpec
      : K extends 'ServiceEntry'
        ? ServiceEntrySpec
        : K extends 'WorkloadEntry'
          ? WorkloadEntrySpec
          : K extends 'Sidecar'
            ? SidecarSpec
            : K extends 'Service'
              ? KubeServiceSpec
              : K extends 'Telemetry'
                ? TelemetrySpec
                : Record<string, unknown>;

/** Stable identity of a resource: `Kind/namespace/name`. */
export function resourceKey(r: { kind: string; metadata: { namespace: string; name: string } }): string {
  return `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`;
}

// ---------------------------------------------------------------------------------------------
// networking.istio.io VirtualService

export interface StringMatch {
  exact?: string;
  prefix?: string;
  regex?: string;
}

export interface HTTPMatchRequest {
  name?: string;
  uri?: StringMatch;
  scheme?: StringMatch;
  method?: StringMatch;
  authority?: StringMatch;
  headers?: Record<string, StringMatch>;
  port?: number;
  sourceLabels?: Record<string, string>;
  gateways?: string[];
  queryParams?: Record<string, StringMatch>;
  ignoreUriCase?: boolean;
  withoutHeaders?: Record<string, StringMatch>;
  sourceNamespace?: string;
  statPrefix?: string;
}

export interface PortSelector {
  number?: number;
}

export interface Destination {
  host: string;
  subset?: string;
  port?: PortSelector;
}

export interface HeaderOperations {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}

export interface Headers {
  request?: HeaderOperations;
  response?: HeaderOperations;
}

export interface HTTPRouteDestination {
  destination: Destination;
  weight?: number;
  headers?: Headers;
}

export interface HTTPRedirect {
  uri?: string;
  authority?: string;
  port?: number;
  derivePort?: 'FROM_PROTOCOL_DEFAULT' | 'FROM_REQUEST_PORT';
  scheme?: string;
  redirectCode?: number;
}

export interface HTTPDirectResponse {
  status: number;
  body?: { string?: string; bytes?: string };
}

export interface RegexRewrite {
  match: string;
  rewrite: string;
}

export interface HTTPRewrite {
  uri?: string;
  authority?: string;
  uriRegexRewrite?: RegexRewrite;
}

export interface HTTPRetry {
  attempts?: number;
  perTryTimeout?: string;
  retryOn?: string;
  retryRemoteLocalities?: boolean;
}

export interface Percent {
  value?: number;
}

export interface HTTPFaultInjection {
  delay?: { fixedDelay?: string; exponentialDelay?: string; percentage?: Percent; percent?: number };
  abort?: { httpStatus?: number; grpcStatus?: string; http2Error?: string; percentage?: Percent };
}

export interface CorsPolicy {
  allowOrigins?: StringMatch[];
  allowOrigin?: string[];
  allowMethods?: string[];
  allowHeaders?: string[];
  exposeHeaders?: string[];
  maxAge?: string;
  allowCredentials?: boolean;
  unmatchedPreflights?: 'UNSPECIFIED' | 'FORWARD' | 'IGNORE';
}

export interface HTTPRoute {
  name?: string;
  match?: HTTPMatchRequest[];
  route?: HTTPRouteDestination[];
  redirect?: HTTPRedirect;
  directResponse?: HTTPDirectResponse;
  delegate?: { name?: string; namespace?: string };
  rewrite?: HTTPRewrite;
  timeout?: string;
  retries?: HTTPRetry;
  fault?: HTTPFaultInjection;
  mirror?: Destination;
  mirrors?: { destination: Destination; percentage?: Percent }[];
  mirrorPercentage?: Percent;
  mirrorPercent?: number;
  corsPolicy?: CorsPolicy;
  headers?: Headers;
}

export interface L4MatchAttributes {
  destinationSubnets?: string[];
  port?: number;
  sourceLabels?: Record<string, string>;
  gateways?: string[];
  sourceNamespace?: string;
}

export interface RouteDestination {
  destination: Destination;
  weight?: number;
}

export interface TCPRoute {
  match?: L4MatchAttributes[];
  route?: RouteDestination[];
}

export interface TLSMatchAttributes extends L4MatchAttributes {
  sniHosts: string[];
}

export interface TLSRoute {
  match: TLSMatchAttributes[];
  route?: RouteDestination[];
}

export interface VirtualServiceSpec {
  hosts?: string[];
  gateways?: string[];
  http?: HTTPRoute[];
  tls?: TLSRoute[];
  tcp?: TCPRoute[];
  exportTo?: string[];
}

// ---------------------------------------------------------------------------------------------
// networking.istio.io DestinationRule

export interface ConsistentHashLB {
  httpHeaderName?: string;
  httpCookie?: { name: string; path?: string; ttl?: string };
  useSourceIp?: boolean;
  httpQueryParameterName?: string;
  ringHash?: { minimumRingSize?: number };
  maglev?: { tableSize?: number };
  minimumRingSize?: number;
}

export interface LocalityLoadBalancerSetting {
  distribute?: { from?: string; to?: Record<string, number> }[];
  failover?: { from?: string; to?: string }[];
  failoverPriority?: string[];
  enabled?: boolean;
}

export interface LoadBalancerSettings {
  simple?: 'UNSPECIFIED' | 'LEAST_CONN' | 'RANDOM' | 'PASSTHROUGH' | 'ROUND_ROBIN' | 'LEAST_REQUEST';
  consistentHash?: ConsistentHashLB;
  localityLbSetting?: LocalityLoadBalancerSetting;
  warmupDurationSecs?: string;
}

export interface ConnectionPoolSettings {
  tcp?: {
    maxConnections?: number;
    connectTimeout?: string;
    tcpKeepalive?: { probes?: number; time?: string; interval?: string };
    maxConnectionDuration?: string;
    idleTimeout?: string;
  };
  http?: {
    http1MaxPendingRequests?: number;
    http2MaxRequests?: number;
    maxRequestsPerConnection?: number;
    maxRetries?: number;
    idleTimeout?: string;
    h2UpgradePolicy?: 'DEFAULT' | 'DO_NOT_UPGRADE' | 'UPGRADE';
    useClientProtocol?: boolean;
    maxConcurrentStreams?: number;
  };
}

export interface OutlierDetection {
  splitExternalLocalOriginErrors?: boolean;
  consecutiveLocalOriginFailures?: number;
  consecutiveGatewayErrors?: number;
  consecutive5xxErrors?: number;
  consecutiveErrors?: number;
  interval?: string;
  baseEjectionTime?: string;
  maxEjectionPercent?: number;
  minHealthPercent?: number;
}

export interface ClientTLSSettings {
  mode?: 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';
  clientCertificate?: string;
  privateKey?: string;
  caCertificates?: string;
  credentialName?: string;
  subjectAltNames?: string[];
  sni?: string;
  insecureSkipVerify?: boolean;
}

export interface PortTrafficPolicy {
  port?: PortSelector;
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: OutlierDetection;
  tls?: ClientTLSSettings;
}

export interface TrafficPolicy {
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: OutlierDetection;
  tls?: ClientTLSSettings;
  portLevelSettings?: PortTrafficPolicy[];
  tunnel?: { protocol?: string; targetHost: string; targetPort: number };
  proxyProtocol?: { version?: string };
}

export interface Subset {
  name: string;
  labels?: Record<string, string>;
  trafficPolicy?: TrafficPolicy;
}

export interface DestinationRuleSpec {
  host: string;
  trafficPolicy?: TrafficPolicy;
  subsets?: Subset[];
  exportTo?: string[];
  workloadSelector?: { matchLabels?: Record<string, string> };
}

// ---------------------------------------------------------------------------------------------
// networking.istio.io Gateway

export interface ServerTLSSettings {
  httpsRedirect?: boolean;
  mode?: 'PASSTHROUGH' | 'SIMPLE' | 'MUTUAL' | 'AUTO_PASSTHROUGH' | 'ISTIO_MUTUAL' | 'OPTIONAL_MUTUAL';
  serverCertificate?: string;
  privateKey?: string;
  caCertificates?: string;
  credentialName?: string;
  subjectAltNames?: string[];
  minProtocolVersion?: string;
  maxProtocolVersion?: string;
  cipherSuites?: string[];
}

export interface GatewayServer {
  port: { number: number; protocol: string; name?: string; targetPort?: number };
  bind?: string;
  hosts: string[];
  tls?: ServerTLSSettings;
  name?: string;
}

export interface GatewaySpec {
  servers: GatewayServer[];
  selector?: Record<string, string>;
}

// ---------------------------------------------------------------------------------------------
// networking.istio.io ServiceEntry / WorkloadEntry / Sidecar

export interface ServicePort {
  number: number;
  protocol?: string;
  name: string;
  targetPort?: number;
}

export interface WorkloadEntrySpec {
  address?: string;
  ports?: Record<string, number>;
  labels?: Record<string, string>;
  network?: string;
  locality?: string;
  weight?: number;
  serviceAccount?: string;
}

export interface ServiceEntrySpec {
  hosts: string[];
  addresses?: string[];
  ports?: ServicePort[];
  location?: 'MESH_EXTERNAL' | 'MESH_INTERNAL';
  resolution?: 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN';
  endpoints?: WorkloadEntrySpec[];
  workloadSelector?: { labels?: Record<string, string> };
  exportTo?: string[];
  subjectAltNames?: string[];
}

export interface IstioEgressListener {
  port?: { number: number; protocol?: string; name?: string };
  bind?: string;
  captureMode?: 'DEFAULT' | 'IPTABLES' | 'NONE';
  hosts: string[];
}

export interface IstioIngressListener {
  port: { number: number; protocol?: string; name?: string };
  bind?: string;
  captureMode?: 'DEFAULT' | 'IPTABLES' | 'NONE';
  defaultEndpoint?: string;
}

export interface SidecarSpec {
  workloadSelector?: { labels?: Record<string, string> };
  ingress?: IstioIngressListener[];
  egress?: IstioEgressListener[];
  outboundTrafficPolicy?: { mode?: 'REGISTRY_ONLY' | 'ALLOW_ANY'; egressProxy?: Destination };
}

// ---------------------------------------------------------------------------------------------
// Kubernetes core/v1 Service (how a service is declared on plain machines)

export interface KubeServicePort {
  name?: string;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
  appProtocol?: string;
  port: number;
  targetPort?: number | string;
}

export interface KubeServiceSpec {
  selector?: Record<string, string>;
  ports?: KubeServicePort[];
  clusterIP?: string;
  type?: string;
}

// ---------------------------------------------------------------------------------------------
// telemetry.istio.io Telemetry

export interface TelemetryProviderRef {
  name: string;
}

export interface TelemetryCustomTag {
  literal?: { value: string };
  environment?: { name: string; defaultValue?: string };
  header?: { name: string; defaultValue?: string };
}

export type WorkloadMode = 'CLIENT_AND_SERVER' | 'CLIENT' | 'SERVER';

export interface TelemetryTracing {
  match?: { mode?: WorkloadMode };
  providers?: TelemetryProviderRef[];
  randomSamplingPercentage?: number;
  disableSpanReporting?: boolean;
  customTags?: Record<string, TelemetryCustomTag>;
  useRequestIdForTraceSampling?: boolean;
}

export interface TelemetryAccessLogging {
  match?: { mode?: WorkloadMode };
  providers?: TelemetryProviderRef[];
  disabled?: boolean;
  filter?: { expression?: string };
}

export interface TelemetryMetricsOverride {
  match?: { metric?: string; customMetric?: string; mode?: WorkloadMode };
  disabled?: boolean;
  tagOverrides?: Record<string, { operation?: 'UPSERT' | 'REMOVE'; value?: string }>;
}

export interface TelemetryMetrics {
  providers?: TelemetryProviderRef[];
  overrides?: TelemetryMetricsOverride[];
  reportingInterval?: string;
}

export interface TelemetrySpec {
  selector?: { matchLabels?: Record<string, string> };
  targetRef?: { group?: string; kind: string; name: string };
  targetRefs?: { group?: string; kind: string; name: string }[];
  tracing?: TelemetryTracing[];
  accessLogging?: TelemetryAccessLogging[];
  metrics?: TelemetryMetrics[];
}
