// CDS: outbound clusters per service port and DestinationRule subset, and Istio's
// BlackHole/Passthrough clusters (Istio's cluster_builder and cluster_traffic_policy, with Istio's
// defaults). Inbound clusters are in inbound.ts, mesh mTLS in auto-mtls.ts.
import type {
  ClientTLSSettings,
  ConnectionPoolSettings,
  LoadBalancerSettings,
  OutlierDetection,
  Subset,
} from '../../config/resources';
import { isHttp2Protocol } from '../../registry/protocol';
import type { MeshEndpoint, MeshService, Protocol, ServicePortInfo } from '../../registry/types';
import type { UpstreamMtls } from './auto-mtls';
import { planUpstreamMtls, upstreamMtlsFields } from './auto-mtls';
import {
  buildClusterLoadAssignments,
  buildLocalityLbEndpoints,
  endpointsForCluster,
  localityLbSettingFor,
  localitySignature,
  sameEndpointInputs,
  withPeerAuthentication,
} from './endpoints';
import { BLACKHOLE_CLUSTER, PASSTHROUGH_CLUSTER, outboundClusterName } from './names';
import type { EffectivePolicy } from './policies';
import { effectivePolicy, findDestinationRule } from './policies';
import type { DestinationRuleResource, ProxyScope } from './scope';
import { sameJson } from './shared-resources';
import type { EnvoyResource } from './types';
import { adsConfigSource, FILTER, TYPE, durationSeconds, envoyDuration } from './values';

/** Istio's mesh default connectTimeout. */
export const DEFAULT_CONNECT_TIMEOUT = '10s';
/** Istio's mesh default dnsRefreshRate. */
const DEFAULT_DNS_REFRESH_RATE = '60s';
const UINT32_MAX = 4294967295;

export type ClusterDiscovery = 'EDS' | 'STRICT_DNS' | 'LOGICAL_DNS' | 'ORIGINAL_DST';

/** One outbound cluster to build: the service port, its subset, and the policy that applies. */
export interface OutboundClusterPlan {
  readonly name: string;
  readonly service: MeshService;
  readonly port: ServicePortInfo;
  readonly subset?: Subset;
  readonly destinationRule?: DestinationRuleResource;
  readonly policy: EffectivePolicy;
  readonly discovery: ClusterDiscovery;
}

export interface ClusterOptions {
  /** Proxyless gRPC: only EDS/LOGICAL_DNS, ROUND_ROBIN or RING_HASH, no Envoy-only extras. */
  readonly proxyless: boolean;
}

/**
 * The clusters of one service under its DestinationRule (or none): `outbound|port||host` per port
 * (UDP excluded) plus `outbound|port|subset|host` per subset of the rule; by port, then subset order.
 */
function planServiceClusters(service: MeshService, dr: DestinationRuleResource | undefined, opts: ClusterOptions): OutboundClusterPlan[] {
  const plans: OutboundClusterPlan[] = [];
  const ports = [...service.ports].filter((p) => p.protocol !== 'UDP').sort((a, b) => a.port - b.port);
  for (const port of ports) {
    const subsets: (Subset | undefined)[] = [undefined, ...(dr?.spec.subsets ?? [])];
    for (const subset of subsets) {
      const policy = effectivePolicy(dr?.spec, port.port, subset);
      plans.push({
        name: outboundClusterName(service.hostname, port.port, subset?.name),
        service,
        port,
        ...(subset ? { subset } : {}),
        ...(dr ? { destinationRule: dr } : {}),
        policy,
        discovery: discoveryFor(service, policy, opts),
      });
    }
  }
  return plans;
}

/** Outbound clusters and the ClusterLoadAssignments of their EDS clusters. */
export interface OutboundClusterResources {
  readonly clusters: readonly EnvoyResource[];
  readonly loadAssignments: readonly EnvoyResource[];
  /** Equal for two results (of one snapshot) exactly when they list the same resources. */
  readonly key: string;
}

/**
 * Every outbound cluster the proxy needs (each visible service's clusters, sorted by hostname,
 * then BlackHoleCluster and PassthroughCluster except for proxyless gRPC) and the
 * ClusterLoadAssignments of the EDS ones. Within a snapshot a service's clusters depend only on
 * the service and the DestinationRule that applies, so proxies that resolve the same rule
 * (whatever their namespace) reuse that service's resources without planning them again.
 */
export function buildOutboundClusterResources(scope: ProxyScope, opts: ClusterOptions): OutboundClusterResources {
  const clusters: EnvoyResource[] = [];
  const loadAssignments: EnvoyResource[] = [];
  // Locality-aware EDS differs per proxy locality: proxies elsewhere do not share it.
  const where = localitySignature(scope.snapshot, scope.snapshotIndex, scope.proxy);
  const keys: string[] = [`${opts.proxyless ? 'grpc' : 'envoy'}${where ? `@${where}` : ''}`];
  const { services: perService } = scope.shared;
  for (const service of scope.services) {
    if (opts.proxyless && service.resolution === 'NONE') continue; // gRPC has no original-destination clusters
    const dr = findDestinationRule(scope, service.hostname, service.namespace);
    const key = `${keys[0]}|${service.hostname}|${dr ? `${dr.metadata.namespace}/${dr.metadata.name}` : ''}`;
    let built = perService.get(key);
    if (!built) {
      const plans = planServiceClusters(service, dr, opts);
      const endpoints = plans.map((p) => endpointsForCluster(scope, p));
      built = { clusters: buildPlannedClusters(scope, plans, endpoints, opts), loadAssignments: buildClusterLoadAssignments(scope, plans, endpoints) };
      perService.set(key, built);
    }
    clusters.push(...built.clusters);
    loadAssignments.push(...built.loadAssignments);
    keys.push(key);
  }
  if (!opts.proxyless) clusters.push(...(scope.shared.catchAllClusters ?? [blackHoleCluster(), passthroughCluster()]));
  return { clusters, loadAssignments, key: keys.join('\n') };
}

function discoveryFor(service: MeshService, policy: EffectivePolicy, opts: ClusterOptions): ClusterDiscovery {
  if (opts.proxyless) return service.resolution === 'DNS' || service.resolution === 'DNS_ROUND_ROBIN' ? 'LOGICAL_DNS' : 'EDS';
  switch (service.resolution) {
    case 'DNS':
      return 'STRICT_DNS';
    case 'DNS_ROUND_ROBIN':
      return 'LOGICAL_DNS';
    case 'NONE':
      return 'ORIGINAL_DST';
    default:
      // Istio: loadBalancer.simple PASSTHROUGH turns an EDS cluster into ORIGINAL_DST.
      return policy.loadBalancer?.simple === 'PASSTHROUGH' ? 'ORIGINAL_DST' : 'EDS';
  }
}

/**
 * The clusters of the plans, each looked up by its name and inputs first, so equal inputs give the
 * same object across proxies and snapshots.
 */
function buildPlannedClusters(
  scope: ProxyScope,
  plans: readonly OutboundClusterPlan[],
  planEndpoints: readonly (readonly MeshEndpoint[])[],
  opts: ClusterOptions,
): EnvoyResource[] {
  const out: EnvoyResource[] = [];
  for (const [i, plan] of plans.entries()) {
    const dns = plan.discovery === 'STRICT_DNS' || plan.discovery === 'LOGICAL_DNS';
    const endpoints = planEndpoints[i];
    const dnsEndpoints = dns ? withPeerAuthentication(scope, plan.service, endpoints) : undefined;
    // Proxyless gRPC gets no mesh mTLS (it would need grpc-js-xds certificate providers).
    const mtls = opts.proxyless
      ? undefined
      : planUpstreamMtls(scope, {
          service: plan.service,
          port: plan.port.port,
          subset: plan.subset?.name,
          tls: plan.policy.tls,
          discovery: plan.discovery,
          endpoints,
        });
    const inputs = outboundClusterInputs(plan, opts, dnsEndpoints, mtls);
    out.push(scope.shared.clusters.get(plan.name, inputs, () => buildOutboundCluster(plan, opts, dnsEndpoints, mtls)));
  }
  return out;
}


/**
 * Everything buildOutboundCluster reads besides what the cluster name already fixes (host, port,
 * subset): keep the two in step. `policy` is the merged EffectivePolicy, so a DestinationRule edit
 * that does not touch this cluster's port or subset leaves it equal.
 */
export interface OutboundClusterInputs {
  readonly proxyless: boolean;
  readonly discovery: ClusterDiscovery;
  readonly serviceName: string;
  readonly serviceNamespace: string;
  readonly protocol: Protocol;
  readonly subset: string | undefined;
  readonly destinationRule: string | undefined;
  readonly policy: EffectivePolicy;
  readonly dnsEndpoints: readonly MeshEndpoint[] | undefined;
  /** Istio mTLS to the endpoints (auto-mtls.ts), which folds in SANs, PeerAuthentication and meshConfig. */
  readonly mtls: UpstreamMtls | undefined;
}

function outboundClusterInputs(
  plan: OutboundClusterPlan,
  opts: ClusterOptions,
  dnsEndpoints: readonly MeshEndpoint[] | undefined,
  mtls: UpstreamMtls | undefined,
): OutboundClusterInputs {
  const dr = plan.destinationRule;
  return {
    proxyless: opts.proxyless,
    discovery: plan.discovery,
    serviceName: plan.service.name,
    serviceNamespace: plan.service.namespace,
    protocol: plan.port.protocol,
    subset: plan.subset?.name,
    destinationRule: dr ? `${dr.metadata.namespace}/${dr.metadata.name}` : undefined,
    policy: plan.policy,
    dnsEndpoints,
    mtls,
  };
}

export function sameOutboundClusterInputs(a: OutboundClusterInputs, b: OutboundClusterInputs): boolean {
  return (
    a.proxyless === b.proxyless &&
    a.discovery === b.discovery &&
    a.serviceName === b.serviceName &&
    a.serviceNamespace === b.serviceNamespace &&
    a.protocol === b.protocol &&
    a.subset === b.subset &&
    a.destinationRule === b.destinationRule &&
    sameJson(a.policy, b.policy) &&
    sameJson(a.mtls, b.mtls) &&
    (a.dnsEndpoints === undefined || b.dnsEndpoints === undefined
      ? a.dnsEndpoints === b.dnsEndpoints
      : sameEndpointInputs(a.dnsEndpoints, b.dnsEndpoints))
  );
}

function buildOutboundCluster(
  plan: OutboundClusterPlan,
  opts: ClusterOptions,
  dnsEndpoints: readonly MeshEndpoint[] | undefined,
  mtls: UpstreamMtls | undefined,
): EnvoyResource {
  const { policy, service, port } = plan;
  const cluster: EnvoyResource = { name: plan.name, type: plan.discovery === 'EDS' ? 'EDS' : plan.discovery };
  if (plan.discovery === 'EDS') {
    cluster.eds_cluster_config = { eds_config: adsConfigSource(), service_name: plan.name };
  } else if (plan.discovery === 'STRICT_DNS' || plan.discovery === 'LOGICAL_DNS') {
    let eps = dnsEndpoints ?? [];
    // Envoy and gRPC take exactly one host for LOGICAL_DNS.
    if (plan.discovery === 'LOGICAL_DNS') eps = eps.slice(0, 1);
    cluster.load_assignment = { cluster_name: plan.name, endpoints: buildLocalityLbEndpoints(eps, { ipOnly: false }) };
    if (!opts.proxyless) {
      cluster.dns_refresh_rate = DEFAULT_DNS_REFRESH_RATE;
      cluster.respect_dns_ttl = true;
      cluster.dns_lookup_family = 'V4_ONLY';
    }
  }
  cluster.connect_timeout = policy.connectionPool?.tcp?.connectTimeout
    ? envoyDuration(policy.connectionPool.tcp.connectTimeout)
    : DEFAULT_CONNECT_TIMEOUT;
  Object.assign(cluster, loadBalancing(policy.loadBalancer, plan.discovery, opts));
  Object.assign(cluster, connectionPool(policy.connectionPool, port.protocol, opts));
  if (policy.outlierDetection) Object.assign(cluster, outlierDetection(policy.outlierDetection));
  if (!opts.proxyless && plan.discovery === 'EDS' && localityLbSettingFor(policy)?.distribute?.length) {
    // Locality weights (EDS load_balancing_weight per locality) count only with this set. Istio
    // sets it whenever locality balancing is enabled; Weft only when `distribute` gives weights.
    cluster.common_lb_config = { ...((cluster.common_lb_config as Record<string, unknown>) ?? {}), locality_weighted_lb_config: {} };
  }
  if (mtls) {
    Object.assign(cluster, upstreamMtlsFields(mtls));
  } else if (!opts.proxyless && policy.tls) {
    const ts = upstreamTls(policy.tls, service);
    if (ts) cluster.transport_socket = ts;
  }
  cluster.metadata = { filter_metadata: { istio: clusterMetadata(plan) } };
  return cluster;
}

function clusterMetadata(plan: OutboundClusterPlan): Record<string, unknown> {
  const dr = plan.destinationRule;
  const { service } = plan;
  const out: Record<string, unknown> = {};
  if (dr) out.config = `/apis/networking.istio.io/v1alpha3/namespaces/${dr.metadata.namespace}/destination-rule/${dr.metadata.name}`;
  out.default_original_port = plan.port.port;
  out.services = [{ host: service.hostname, name: service.name, namespace: service.namespace }];
  if (plan.subset) out.subset = plan.subset.name;
  return out;
}

/**
 * Istio's applyLoadBalancer: LEAST_REQUEST by default (ROUND_ROBIN for gRPC, which has no
 * LEAST_REQUEST); consistentHash -> RING_HASH (minimum ring 1024) or MAGLEV; ORIGINAL_DST
 * clusters use CLUSTER_PROVIDED.
 */
function loadBalancing(lb: LoadBalancerSettings | undefined, discovery: ClusterDiscovery, opts: ClusterOptions): Record<string, unknown> {
  if (discovery === 'ORIGINAL_DST') return { lb_policy: 'CLUSTER_PROVIDED' };
  const ch = lb?.consistentHash;
  if (ch) {
    if (ch.maglev && !opts.proxyless) {
      return { lb_policy: 'MAGLEV', ...(ch.maglev.tableSize ? { maglev_lb_config: { table_size: ch.maglev.tableSize } } : {}) };
    }
    const minimum = ch.ringHash?.minimumRingSize ?? ch.minimumRingSize ?? 1024;
    return { lb_policy: 'RING_HASH', ring_hash_lb_config: { minimum_ring_size: minimum } };
  }
  if (opts.proxyless) return { lb_policy: 'ROUND_ROBIN' };
  switch (lb?.simple) {
    case 'ROUND_ROBIN':
      return { lb_policy: 'ROUND_ROBIN' };
    case 'RANDOM':
      return { lb_policy: 'RANDOM' };
    default:
      return { lb_policy: 'LEAST_REQUEST' };
  }
}

/** Istio's getDefaultCircuitBreakerThresholds: effectively unlimited, tracking remaining. */
export function defaultThresholds(): Record<string, unknown> {
  return {
    max_connections: UINT32_MAX,
    max_pending_requests: UINT32_MAX,
    max_requests: UINT32_MAX,
    max_retries: UINT32_MAX,
    track_remaining: true,
  };
}

/**
 * Istio's applyConnectionPool: circuit breaker thresholds from tcp.maxConnections,
 * http.http1MaxPendingRequests / http2MaxRequests / maxRetries; HTTP protocol options from
 * idleTimeout (http's, else tcp's), maxRequestsPerConnection, maxConnectionDuration; TCP keepalive;
 * HTTP/2 upstream for http2/grpc ports (and h2UpgradePolicy UPGRADE on HTTP/1.1 ports, unless
 * useClientProtocol, which follows the downstream's protocol).
 *
 * Protocol options use Cluster's own `common_http_protocol_options` / `http2_protocol_options`
 * fields, not Istio's typed_extension_protocol_options (envoy.extensions.upstreams.http.v3),
 * because that proto is not in the set ../protos.ts loads; Envoy v3 still honours both fields.
 */
function connectionPool(cp: ConnectionPoolSettings | undefined, protocol: Protocol, opts: ClusterOptions): Record<string, unknown> {
  const thresholds = defaultThresholds();
  const out: Record<string, unknown> = {};
  const common: Record<string, unknown> = {};
  if (cp?.http) {
    if (cp.http.http2MaxRequests) thresholds.max_requests = cp.http.http2MaxRequests;
    if (cp.http.http1MaxPendingRequests) thresholds.max_pending_requests = cp.http.http1MaxPendingRequests;
    if (cp.http.maxRetries) thresholds.max_retries = cp.http.maxRetries;
    if (cp.http.idleTimeout) common.idle_timeout = envoyDuration(cp.http.idleTimeout);
    if (cp.http.maxRequestsPerConnection) common.max_requests_per_connection = cp.http.maxRequestsPerConnection;
  }
  if (cp?.tcp) {
    if (cp.tcp.maxConnections) thresholds.max_connections = cp.tcp.maxConnections;
    if (cp.tcp.maxConnectionDuration) common.max_connection_duration = envoyDuration(cp.tcp.maxConnectionDuration);
    if (cp.tcp.idleTimeout && !common.idle_timeout) common.idle_timeout = envoyDuration(cp.tcp.idleTimeout);
    const ka = cp.tcp.tcpKeepalive;
    if (ka && !opts.proxyless) {
      out.upstream_connection_options = {
        tcp_keepalive: {
          ...(ka.probes ? { keepalive_probes: ka.probes } : {}),
          ...(ka.time ? { keepalive_time: durationSeconds(ka.time) } : {}),
          ...(ka.interval ? { keepalive_interval: durationSeconds(ka.interval) } : {}),
        },
      };
    }
  }
  out.circuit_breakers = { thresholds: [thresholds] };
  if (opts.proxyless) return out;
  if (Object.keys(common).length > 0) out.common_http_protocol_options = common;
  const clientProtocol = cp?.http?.useClientProtocol === true;
  // Istio's shouldH2Upgrade: useClientProtocol wins; DEFAULT follows the mesh (DO_NOT_UPGRADE).
  const upgrade = protocol === 'HTTP' && !clientProtocol && cp?.http?.h2UpgradePolicy === 'UPGRADE';
  if (isHttp2Protocol(protocol) || upgrade || clientProtocol) {
    out.http2_protocol_options = cp?.http?.maxConcurrentStreams ? { max_concurrent_streams: cp.http.maxConcurrentStreams } : {};
  }
  if (clientProtocol) out.protocol_selection = 'USE_DOWNSTREAM_PROTOCOL';
  return out;
}

/**
 * Istio's applyOutlierDetection: success-rate ejection off; consecutive 5xx / gateway errors
 * enforced at 100% when non-zero; local-origin split; panic threshold from minHealthPercent
 * (0 disables Envoy's 50% default, as Istio does).
 */
function outlierDetection(od: OutlierDetection): Record<string, unknown> {
  const out: Record<string, unknown> = { enforcing_success_rate: 0 };
  if (od.consecutive5xxErrors !== undefined) {
    out.consecutive_5xx = od.consecutive5xxErrors;
    out.enforcing_consecutive_5xx = od.consecutive5xxErrors > 0 ? 100 : 0;
  }
  if (od.consecutiveGatewayErrors !== undefined) {
    out.consecutive_gateway_failure = od.consecutiveGatewayErrors;
    out.enforcing_consecutive_gateway_failure = od.consecutiveGatewayErrors > 0 ? 100 : 0;
  }
  if (od.consecutiveErrors && od.consecutive5xxErrors === undefined && od.consecutiveGatewayErrors === undefined) {
    // Deprecated field: Istio maps it to gateway errors only (istio/api#617).
    out.consecutive_gateway_failure = od.consecutiveErrors;
    out.enforcing_consecutive_gateway_failure = 100;
    out.enforcing_consecutive_5xx = 0;
  }
  if (od.interval) out.interval = envoyDuration(od.interval);
  if (od.baseEjectionTime) out.base_ejection_time = envoyDuration(od.baseEjectionTime);
  if (od.maxEjectionPercent && od.maxEjectionPercent > 0) out.max_ejection_percent = od.maxEjectionPercent;
  if (od.splitExternalLocalOriginErrors) {
    out.split_external_local_origin_errors = true;
    if (od.consecutiveLocalOriginFailures && od.consecutiveLocalOriginFailures > 0) {
      out.consecutive_local_origin_failure = od.consecutiveLocalOriginFailures;
      out.enforcing_consecutive_local_origin_failure = 100;
    }
    out.enforcing_local_origin_success_rate = 0;
  }
  return {
    outlier_detection: out,
    common_lb_config: { healthy_panic_threshold: { value: od.minHealthPercent ?? 0 } },
  };
}

/**
 * DestinationRule tls SIMPLE / MUTUAL with file-mounted certificates (Istio's file mode); ISTIO_MUTUAL
 * is auto-mtls.ts's, credentialName (SDS) is not translated yet. SNI defaults to the host.
 */
function upstreamTls(tls: ClientTLSSettings, service: MeshService): Record<string, unknown> | undefined {
  if (tls.mode !== 'SIMPLE' && tls.mode !== 'MUTUAL') return undefined;
  const common: Record<string, unknown> = {};
  if (tls.mode === 'MUTUAL' && tls.clientCertificate && tls.privateKey) {
    common.tls_certificates = [{ certificate_chain: { filename: tls.clientCertificate }, private_key: { filename: tls.privateKey } }];
  }
  if (tls.caCertificates && !tls.insecureSkipVerify) {
    common.validation_context = {
      trusted_ca: { filename: tls.caCertificates },
      ...(tls.subjectAltNames?.length ? { match_subject_alt_names: tls.subjectAltNames.map((exact) => ({ exact })) } : {}),
    };
  }
  const sni = tls.sni ?? (service.hostname.startsWith('*') ? undefined : service.hostname);
  return {
    name: FILTER.TlsTransportSocket,
    typed_config: { '@type': TYPE.UpstreamTlsContext, common_tls_context: common, ...(sni ? { sni } : {}) },
  };
}

/** Istio's BlackHoleCluster: a static cluster with no endpoints. */
export function blackHoleCluster(): EnvoyResource {
  return { name: BLACKHOLE_CLUSTER, type: 'STATIC', connect_timeout: DEFAULT_CONNECT_TIMEOUT };
}

/** Istio's PassthroughCluster: to the original destination of the connection. */
export function passthroughCluster(): EnvoyResource {
  return {
    name: PASSTHROUGH_CLUSTER,
    type: 'ORIGINAL_DST',
    connect_timeout: DEFAULT_CONNECT_TIMEOUT,
    lb_policy: 'CLUSTER_PROVIDED',
    circuit_breakers: { thresholds: [defaultThresholds()] },
  };
}
