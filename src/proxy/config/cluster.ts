// Cluster (CDS) -> CompiledCluster: discovery type, load balancer, circuit breaker thresholds (and
// retry budget), upstream protocol and connection lifetime, TCP keep-alive, outlier detection,
// transport sockets (TLS origination, per-endpoint matches).
import { compileLoadAssignmentInto } from './endpoints';
import type { CircuitBreakerThresholds, CompiledCluster, LbPolicy, OutlierDetectionSettings, TcpKeepaliveSettings } from './model';
import { compileUpstreamTls, UPSTREAM_TLS_CONTEXT, type TransportSocketMatch, type UpstreamTlsSettings } from './upstream-tls';
import { anyIsDecoded, anyTypeName, durationMs, join, Problems, wrapped, type Json, type Validation } from './validation';

const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const RAW_BUFFER = 'envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer';

const LB_POLICIES: ReadonlySet<string> = new Set(['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV', 'CLUSTER_PROVIDED']);

/** Envoy's circuit breaker defaults. */
export const DEFAULT_THRESHOLDS: CircuitBreakerThresholds = Object.freeze({
  maxConnections: 1024,
  maxPendingRequests: 1024,
  maxRequests: 1024,
  maxRetries: 3,
});

const TYPED_LB_POLICIES: Record<string, LbPolicy> = {
  'envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin': 'ROUND_ROBIN',
  'envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest': 'LEAST_REQUEST',
  'envoy.extensions.load_balancing_policies.random.v3.Random': 'RANDOM',
  'envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash': 'RING_HASH',
  'envoy.extensions.load_balancing_policies.maglev.v3.Maglev': 'MAGLEV',
};

function compileThresholds(cb: Json | undefined, problems: Problems, path: string): CircuitBreakerThresholds {
  if (!cb) return DEFAULT_THRESHOLDS;
  problems.fields(cb, path, ['thresholds'], ['per_host_thresholds']);
  const out: CircuitBreakerThresholds = { ...DEFAULT_THRESHOLDS };
  ((cb.thresholds ?? []) as Json[]).forEach((t, i) => {
    const p = join(join(path, 'thresholds'), i);
    problems.fields(t, p, ['priority', 'max_connections', 'max_pending_requests', 'max_requests', 'max_retries', 'retry_budget', 'track_remaining'], ['max_connection_pools']);
    // Only DEFAULT priority routing exists in Weft; HIGH thresholds never apply.
    if (t.priority && t.priority !== 'DEFAULT') return;
    const read = (k: string, d: number) => Number(wrapped<number>(t[k]) ?? d);
    out.maxConnections = read('max_connections', out.maxConnections);
    out.maxPendingRequests = read('max_pending_requests', out.maxPendingRequests);
    out.maxRequests = read('max_requests', out.maxRequests);
    out.maxRetries = read('max_retries', out.maxRetries);
    if (t.track_remaining === true) out.trackRemaining = true;
    if (t.retry_budget) {
      const b = t.retry_budget as Json;
      const bp = join(p, 'retry_budget');
      problems.fields(b, bp, ['budget_percent', 'min_retry_concurrency']);
      // Envoy's defaults: 20% of active requests, at least 3 concurrent retries.
      const percent = b.budget_percent === undefined ? 20 : Number(wrapped<number>(b.budget_percent) ?? 0);
      if (!(percent >= 0 && percent <= 100)) problems.add(join(bp, 'budget_percent'), 'must be within 0..100');
      out.retryBudget = { budgetPercent: percent, minRetryConcurrency: Number(wrapped<number>(b.min_retry_concurrency) ?? 3) };
    }
  });
  return Object.freeze(out);
}

/** Envoy's OutlierDetection with its defaults (cluster/v3/outlier_detection.proto). */
function compileOutlierDetection(o: Json | undefined, problems: Problems, path: string): OutlierDetectionSettings | undefined {
  if (!o) return undefined;
  problems.fields(
    o,
    path,
    [
      'consecutive_5xx',
      'interval',
      'base_ejection_time',
      'max_ejection_percent',
      'enforcing_consecutive_5xx',
      'enforcing_success_rate',
      'success_rate_minimum_hosts',
      'success_rate_request_volume',
      'success_rate_stdev_factor',
      'consecutive_gateway_failure',
      'enforcing_consecutive_gateway_failure',
      'split_external_local_origin_errors',
      'consecutive_local_origin_failure',
      'enforcing_consecutive_local_origin_failure',
      'enforcing_local_origin_success_rate',
      'failure_percentage_threshold',
      'enforcing_failure_percentage',
      'enforcing_failure_percentage_local_origin',
      'failure_percentage_minimum_hosts',
      'failure_percentage_request_volume',
      'max_ejection_time',
      'max_ejection_time_jitter',
      'always_eject_one_host',
    ],
    // No active health checking: nothing could uneject a host early.
    ['successful_active_health_check_uneject_host', 'monitors', 'detect_degraded_hosts'],
  );
  const num = (k: string, d: number) => Number(wrapped<number>(o[k]) ?? d);
  const percent = (k: string, d: number) => {
    const v = num(k, d);
    if (!(v >= 0 && v <= 100)) problems.add(join(path, k), 'must be within 0..100');
    return Math.min(100, Math.max(0, v)) / 100;
  };
  const baseEjectionTimeMs = durationMs(o.base_ejection_time, problems, join(path, 'base_ejection_time')) ?? 30_000;
  return {
    consecutive5xx: num('consecutive_5xx', 5),
    enforcing5xx: percent('enforcing_consecutive_5xx', 100),
    consecutiveGatewayFailure: num('consecutive_gateway_failure', 5),
    enforcingGatewayFailure: percent('enforcing_consecutive_gateway_failure', 0),
    consecutiveLocalOriginFailure: num('consecutive_local_origin_failure', 5),
    enforcingLocalOriginFailure: percent('enforcing_consecutive_local_origin_failure', 100),
    splitExternalLocalOriginErrors: o.split_external_local_origin_errors === true,
    intervalMs: durationMs(o.interval, problems, join(path, 'interval')) ?? 10_000,
    baseEjectionTimeMs,
    // Envoy: max_ejection_time defaults to 300s, and is never below base_ejection_time.
    maxEjectionTimeMs: Math.max(durationMs(o.max_ejection_time, problems, join(path, 'max_ejection_time')) ?? 300_000, baseEjectionTimeMs),
    maxEjectionTimeJitterMs: durationMs(o.max_ejection_time_jitter, problems, join(path, 'max_ejection_time_jitter')) ?? 0,
    maxEjectionPercent: Math.min(100, num('max_ejection_percent', 10)),
    alwaysEjectOneHost: o.always_eject_one_host === true,
    enforcingSuccessRate: percent('enforcing_success_rate', 100),
    enforcingLocalOriginSuccessRate: percent('enforcing_local_origin_success_rate', 100),
    successRateMinimumHosts: num('success_rate_minimum_hosts', 5),
    successRateRequestVolume: num('success_rate_request_volume', 100),
    successRateStdevFactor: num('success_rate_stdev_factor', 1900) / 1000,
    failurePercentageThreshold: percent('failure_percentage_threshold', 85) * 100,
    enforcingFailurePercentage: percent('enforcing_failure_percentage', 0),
    enforcingFailurePercentageLocalOrigin: percent('enforcing_failure_percentage_local_origin', 0),
    failurePercentageMinimumHosts: num('failure_percentage_minimum_hosts', 5),
    failurePercentageRequestVolume: num('failure_percentage_request_volume', 50),
  };
}

/** upstream_connection_options: TCP keep-alive on every upstream connection. */
function compileConnectionOptions(o: Json | undefined, problems: Problems, path: string): TcpKeepaliveSettings | undefined {
  if (!o) return undefined;
  problems.fields(o, path, ['tcp_keepalive'], ['set_local_interface_name_on_upstream_connections', 'happy_eyeballs_config']);
  const k = o.tcp_keepalive as Json | undefined;
  if (!k) return undefined;
  const kp = join(path, 'tcp_keepalive');
  problems.fields(k, kp, ['keepalive_probes', 'keepalive_time', 'keepalive_interval']);
  return Object.freeze({
    probes: Number(wrapped<number>(k.keepalive_probes) ?? 0),
    timeSeconds: Number(wrapped<number>(k.keepalive_time) ?? 0),
    intervalSeconds: Number(wrapped<number>(k.keepalive_interval) ?? 0),
  });
}

interface ProtocolSettings {
  protocol: CompiledCluster['protocol'];
  maxRequestsPerConnection: number;
  idleTimeoutMs: number;
  maxConnectionDurationMs: number;
  maxConcurrentStreams: number;
}

function compileCommonHttpOptions(c: Json | undefined, problems: Problems, path: string, out: ProtocolSettings): void {
  if (!c) return;
  problems.fields(c, path, ['idle_timeout', 'max_requests_per_connection', 'max_connection_duration'], [
    'max_headers_count',
    'headers_with_underscores_action',
    'max_stream_duration',
    'max_response_headers_kb',
  ]);
  const idle = durationMs(c.idle_timeout, problems, join(path, 'idle_timeout'));
  if (idle !== undefined) out.idleTimeoutMs = idle;
  const maxReq = wrapped<number>(c.max_requests_per_connection);
  if (maxReq !== undefined) out.maxRequestsPerConnection = Number(maxReq);
  const duration = durationMs(c.max_connection_duration, problems, join(path, 'max_connection_duration'));
  if (duration !== undefined) out.maxConnectionDurationMs = duration;
}

/** Only max_concurrent_streams matters upstream; the other HTTP/2 knobs are node:http2's. */
function compileHttp2Options(h: Json | undefined, out: ProtocolSettings): void {
  const streams = wrapped<number>(h?.max_concurrent_streams);
  if (streams !== undefined) out.maxConcurrentStreams = Number(streams);
}

function compileProtocol(raw: Json, problems: Problems): ProtocolSettings {
  const out: ProtocolSettings = { protocol: 'http1', maxRequestsPerConnection: 0, idleTimeoutMs: 3_600_000, maxConnectionDurationMs: 0, maxConcurrentStreams: 0 };
  if (raw.http2_protocol_options) out.protocol = 'http2';
  compileHttp2Options(raw.http2_protocol_options, out);
  if (raw.protocol_selection === 'USE_DOWNSTREAM_PROTOCOL') out.protocol = 'downstream';
  compileCommonHttpOptions(raw.common_http_protocol_options, problems, 'common_http_protocol_options', out);
  const maxReq = wrapped<number>(raw.max_requests_per_connection);
  if (maxReq !== undefined) out.maxRequestsPerConnection = Number(maxReq);
  for (const [key, any] of Object.entries((raw.typed_extension_protocol_options ?? {}) as Record<string, Json>)) {
    const p = join('typed_extension_protocol_options', key);
    if (anyTypeName(any) !== HTTP_PROTOCOL_OPTIONS || !any['@type']) {
      problems.add(p, `protocol options of type "${anyTypeName(any)}" are not supported by the Weft proxy`);
      continue;
    }
    problems.fields(any, p, ['common_http_protocol_options', 'explicit_http_config', 'use_downstream_protocol_config', 'auto_config'], [
      'upstream_http_protocol_options',
    ]);
    compileCommonHttpOptions(any.common_http_protocol_options, problems, join(p, 'common_http_protocol_options'), out);
    if (any.explicit_http_config) {
      const e = any.explicit_http_config as Json;
      if (e.http3_protocol_options) problems.add(join(p, 'explicit_http_config'), 'HTTP/3 upstreams are not supported');
      out.protocol = e.http2_protocol_options ? 'http2' : 'http1';
      compileHttp2Options(e.http2_protocol_options, out);
    } else if (any.use_downstream_protocol_config) {
      out.protocol = 'downstream';
      compileHttp2Options(any.use_downstream_protocol_config.http2_protocol_options, out);
    } else if (any.auto_config) {
      // ALPN selects the protocol; without TLS there is no ALPN, and Envoy then uses HTTP/1.1.
      if (any.auto_config.http3_protocol_options) problems.add(join(p, 'auto_config'), 'HTTP/3 upstreams are not supported');
      out.protocol = 'http1';
    }
  }
  return out;
}

function compileLbPolicy(raw: Json, problems: Problems): Pick<CompiledCluster, 'lbPolicy' | 'leastRequestChoiceCount' | 'ringHash' | 'maglevTableSize'> {
  const out = {
    lbPolicy: (raw.lb_policy ?? 'ROUND_ROBIN') as LbPolicy,
    leastRequestChoiceCount: 2,
    ringHash: { minRingSize: 1024, maxRingSize: 8 * 1024 * 1024 },
    maglevTableSize: 65537,
  };
  if (!LB_POLICIES.has(out.lbPolicy)) problems.add('lb_policy', `load balancer "${raw.lb_policy}" is not supported by the Weft proxy`);
  const readRing = (r: Json | undefined, p: string) => {
    if (!r) return;
    problems.fields(r, p, ['minimum_ring_size', 'maximum_ring_size', 'hash_function'], ['use_hostname_for_hashing', 'hash_balance_factor', 'consistent_hashing_lb_config', 'locality_weighted_lb_config']);
    const min = wrapped<number>(r.minimum_ring_size);
    const max = wrapped<number>(r.maximum_ring_size);
    if (min !== undefined) out.ringHash.minRingSize = Number(min);
    if (max !== undefined) out.ringHash.maxRingSize = Number(max);
  };
  const readMaglev = (m: Json | undefined, p: string) => {
    if (!m) return;
    problems.fields(m, p, ['table_size'], ['consistent_hashing_lb_config', 'locality_weighted_lb_config']);
    const size = wrapped<number>(m.table_size);
    if (size !== undefined) out.maglevTableSize = Number(size);
  };
  const readLeast = (l: Json | undefined, p: string) => {
    if (!l) return;
    problems.fields(l, p, ['choice_count'], ['active_request_bias', 'slow_start_config', 'locality_lb_config', 'enable_full_scan', 'selection_method']);
    const n = wrapped<number>(l.choice_count);
    if (n !== undefined) out.leastRequestChoiceCount = Math.max(2, Number(n));
  };
  readRing(raw.ring_hash_lb_config, 'ring_hash_lb_config');
  readMaglev(raw.maglev_lb_config, 'maglev_lb_config');
  readLeast(raw.least_request_lb_config, 'least_request_lb_config');
  if (raw.load_balancing_policy) {
    const policies = (raw.load_balancing_policy.policies ?? []) as Json[];
    const chosen = policies.find((pol) => TYPED_LB_POLICIES[anyTypeName(pol.typed_extension_config?.typed_config) ?? '']);
    if (!chosen) {
      problems.add('load_balancing_policy', 'none of the load balancing policies is supported by the Weft proxy');
    } else {
      const cfg = chosen.typed_extension_config.typed_config as Json;
      const p = 'load_balancing_policy';
      out.lbPolicy = TYPED_LB_POLICIES[anyTypeName(cfg)!];
      if (out.lbPolicy === 'RING_HASH') readRing(cfg, p);
      else if (out.lbPolicy === 'MAGLEV') readMaglev(cfg, p);
      else if (out.lbPolicy === 'LEAST_REQUEST') readLeast(cfg, p);
    }
  }
  return out;
}

/** The cluster's transport socket: plaintext (raw_buffer) or TLS origination. */
function compileTransportSocket(ts: Json | undefined, problems: Problems, path: string): UpstreamTlsSettings | undefined {
  if (!ts) return undefined;
  problems.fields(ts, path, ['name', 'typed_config']);
  const type = anyTypeName(ts.typed_config);
  if (!type || type === RAW_BUFFER) return undefined;
  if (type === UPSTREAM_TLS_CONTEXT && anyIsDecoded(ts.typed_config)) return compileUpstreamTls(ts.typed_config, problems, join(path, 'typed_config'));
  problems.add(path, `transport socket "${ts.name ?? type}" is not supported by the Weft proxy yet`);
  return undefined;
}

/** Per-endpoint transport sockets (Istio's auto mTLS: `tlsMode-istio` / `tlsMode-disabled`). */
function compileTransportSocketMatches(list: Json[] | undefined, problems: Problems): TransportSocketMatch[] | undefined {
  if (!list?.length) return undefined;
  return list.map((m, i) => {
    const p = join('transport_socket_matches', i);
    problems.fields(m, p, ['name', 'match', 'transport_socket']);
    if (!m.transport_socket) problems.add(join(p, 'transport_socket'), 'a transport socket match needs a transport_socket');
    return Object.freeze({
      name: String(m.name ?? ''),
      match: Object.freeze({ ...((m.match ?? {}) as Record<string, unknown>) }),
      tls: compileTransportSocket(m.transport_socket, problems, join(p, 'transport_socket')),
    });
  });
}

/** Validates and compiles one Cluster. */
export function compileCluster(raw: Json, version: string): Validation<CompiledCluster> {
  const name = String(raw.name ?? '');
  const problems = new Problems(`Cluster "${name}"`);
  problems.fields(
    raw,
    '',
    [
      'name',
      'type',
      'eds_cluster_config',
      'connect_timeout',
      'lb_policy',
      'load_assignment',
      'circuit_breakers',
      'typed_extension_protocol_options',
      'http2_protocol_options',
      'http_protocol_options',
      'common_http_protocol_options',
      'protocol_selection',
      'ring_hash_lb_config',
      'maglev_lb_config',
      'least_request_lb_config',
      'round_robin_lb_config',
      'common_lb_config',
      'load_balancing_policy',
      'per_connection_buffer_limit_bytes',
      'outlier_detection',
      'original_dst_lb_config',
      'transport_socket',
      'transport_socket_matches',
      'max_requests_per_connection',
      'upstream_connection_options',
    ],
    [
      'alt_stat_name',
      'metadata',
      'dns_lookup_family',
      'dns_refresh_rate',
      'dns_failure_refresh_rate',
      'respect_dns_ttl',
      'dns_resolvers',
      'use_tcp_for_dns_lookups',
      'typed_dns_resolver_config',
      'cleanup_interval',
      'close_connections_on_host_health_failure',
      'ignore_health_on_host_removal',
      'track_timeout_budgets',
      'track_cluster_stats',
      'connection_pool_per_downstream_connection',
      'wait_for_warm_on_init',
    ],
  );
  if (!name) problems.add('name', 'name is required');
  if (raw.health_checks?.length) problems.add('health_checks', 'active health checking is not supported by the Weft proxy');
  if (raw.filters?.length) problems.add('filters', 'upstream network filters are not supported by the Weft proxy');
  if (raw.cluster_type) problems.add('cluster_type', 'custom cluster types are not supported by the Weft proxy');
  const type = (raw.type ?? 'STATIC') as CompiledCluster['type'];
  if (!['STATIC', 'STRICT_DNS', 'LOGICAL_DNS', 'EDS', 'ORIGINAL_DST'].includes(type)) problems.add('type', `cluster type "${type}" is not supported`);
  let edsServiceName: string | undefined;
  if (type === 'EDS') {
    const eds = (raw.eds_cluster_config ?? {}) as Json;
    problems.fields(eds, 'eds_cluster_config', ['eds_config', 'service_name']);
    const source = (eds.eds_config ?? {}) as Json;
    if (!source.ads && !(source.api_config_source?.api_type === 'AGGREGATED_GRPC')) {
      problems.add('eds_cluster_config.eds_config', 'only ADS config sources are supported (eds_config: {ads: {}})');
    }
    edsServiceName = eds.service_name || name;
  }
  const tls = compileTransportSocket(raw.transport_socket, problems, 'transport_socket');
  const transportSocketMatches = compileTransportSocketMatches(raw.transport_socket_matches, problems);
  let healthyPanicThreshold = 50;
  let localityWeighted = false;
  if (raw.common_lb_config) {
    problems.fields(raw.common_lb_config, 'common_lb_config', ['healthy_panic_threshold', 'locality_weighted_lb_config'], [
      // Zone-aware routing needs the local cluster (local_cluster_name in the bootstrap), which
      // Istio never configures.
      'zone_aware_lb_config',
      'update_merge_window',
      'ignore_new_hosts_until_first_hc',
      'close_connections_on_host_set_change',
      'consistent_hashing_lb_config',
      'override_host_status',
    ]);
    const t = raw.common_lb_config.healthy_panic_threshold;
    if (t !== undefined) healthyPanicThreshold = Number(typeof t === 'object' ? t.value ?? 0 : t);
    localityWeighted = raw.common_lb_config.locality_weighted_lb_config !== undefined && raw.common_lb_config.locality_weighted_lb_config !== null;
  }
  let originalDstHeader: string | undefined;
  if (raw.original_dst_lb_config) {
    problems.fields(raw.original_dst_lb_config, 'original_dst_lb_config', ['use_http_header', 'http_header_name'], ['upstream_port_override', 'metadata_key']);
    if (raw.original_dst_lb_config.use_http_header) {
      originalDstHeader = String(raw.original_dst_lb_config.http_header_name || 'x-envoy-original-dst-host').toLowerCase();
    }
  }
  const protocol = compileProtocol(raw, problems);
  const lb = compileLbPolicy(raw, problems);
  if (type === 'ORIGINAL_DST' && lb.lbPolicy !== 'CLUSTER_PROVIDED' && raw.lb_policy) {
    problems.add('lb_policy', 'ORIGINAL_DST clusters need lb_policy CLUSTER_PROVIDED');
  }
  let loadAssignment: CompiledCluster['loadAssignment'];
  if (raw.load_assignment && type !== 'EDS') {
    loadAssignment = {
      clusterName: name,
      version,
      endpoints: compileLoadAssignmentInto(raw.load_assignment, problems, 'load_assignment'),
      raw: raw.load_assignment,
    };
  }
  return problems.result(
    Object.freeze({
      name,
      version,
      type,
      edsServiceName,
      connectTimeoutMs: durationMs(raw.connect_timeout, problems, 'connect_timeout') ?? 5000,
      ...lb,
      healthyPanicThreshold,
      localityWeighted,
      thresholds: compileThresholds(raw.circuit_breakers, problems, 'circuit_breakers'),
      ...protocol,
      tcpKeepalive: compileConnectionOptions(raw.upstream_connection_options, problems, 'upstream_connection_options'),
      perConnectionBufferLimitBytes: Number(wrapped<number>(raw.per_connection_buffer_limit_bytes) ?? 1024 * 1024),
      loadAssignment,
      originalDstHeader,
      outlierDetection: compileOutlierDetection(raw.outlier_detection, problems, 'outlier_detection'),
      tls,
      transportSocketMatches,
      raw,
    }),
  );
}
