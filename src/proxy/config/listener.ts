// Listener (LDS) -> CompiledListener: filter chains with their match, the HTTP connection manager
// (codec, RDS name or inline routes, HTTP filter chain) or tcp_proxy.
import * as net from 'node:net';
import { compileDownstreamTransportSocket } from './downstream-tls';
import { socketAddress } from './endpoints';
import { compileHttpFilters } from './http-filters';
import { compileNetworkRbac, NETWORK_RBAC_TYPE, type NetworkRbacConfig } from './rbac';
import type {
  AccessLogConfig,
  CidrRange,
  CompiledFilterChain,
  CompiledListener,
  CompiledRouteConfig,
  FilterChainMatch,
  HttpConnectionManagerConfig,
  TcpProxyConfig,
  TrafficDirection,
} from './model';
import { compileRouteConfig } from './route-config';
import { compileTracing } from '../tracing/tracing-config';
import { anyIsDecoded, anyTypeName, durationMs, join, Problems, wrapped, type Json, type Validation } from './validation';

const HCM_TYPE = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const TCP_PROXY_TYPE = 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const FILE_ACCESS_LOG = 'envoy.extensions.access_loggers.file.v3.FileAccessLog';
const STDOUT_ACCESS_LOG = 'envoy.extensions.access_loggers.stream.v3.StdoutAccessLog';
const STDERR_ACCESS_LOG = 'envoy.extensions.access_loggers.stream.v3.StderrAccessLog';

const LISTENER_FILTERS: Record<string, 'http' | 'tls' | 'original-dst'> = {
  'envoy.extensions.filters.listener.http_inspector.v3.HttpInspector': 'http',
  'envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector': 'tls',
  'envoy.extensions.filters.listener.original_dst.v3.OriginalDst': 'original-dst',
};

export function parseCidr(address: string, prefixLen: number | undefined, problems: Problems, path: string): CidrRange | undefined {
  const family = net.isIP(address);
  if (!family) {
    problems.add(path, `"${address}" is not an IP address`);
    return undefined;
  }
  const bytes = ipBytes(address);
  const max = family === 4 ? 32 : 128;
  const len = prefixLen === undefined ? max : Number(prefixLen);
  if (len < 0 || len > max) problems.add(path, `prefix length ${len} is out of range for ${address}`);
  return { bytes, prefixLen: Math.min(len, max) };
}

/** 4 bytes for IPv4 (also for IPv4-mapped IPv6), 16 for IPv6. */
export function ipBytes(address: string): Uint8Array {
  if (address.startsWith('::ffff:') && net.isIPv4(address.slice(7))) address = address.slice(7);
  if (net.isIPv4(address)) return Uint8Array.from(address.split('.').map(Number));
  const [head, tail] = address.split('::');
  const parse = (s: string | undefined) => (s ? s.split(':') : []);
  const headParts = parse(head);
  const tailParts = tail === undefined ? [] : parse(tail);
  const expand = (parts: string[]): number[] =>
    parts.flatMap((p) => {
      if (p.includes('.')) {
        const b = p.split('.').map(Number);
        return [(b[0] << 8) | b[1], (b[2] << 8) | b[3]];
      }
      return [parseInt(p, 16)];
    });
  const h = expand(headParts);
  const t = expand(tailParts);
  const groups = [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
}

export function cidrContains(range: CidrRange, ip: Uint8Array): boolean {
  if (range.bytes.length !== ip.length) return false;
  let bits = range.prefixLen;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((range.bytes[i] & mask) !== (ip[i] & mask)) return false;
  }
  return true;
}

function compileCidrs(list: Json[] | undefined, problems: Problems, path: string): CidrRange[] {
  return (list ?? [])
    .map((r, i) => {
      const p = join(path, i);
      problems.fields(r, p, ['address_prefix', 'prefix_len']);
      return parseCidr(String(r.address_prefix ?? ''), wrapped<number>(r.prefix_len), problems, p);
    })
    .filter((c): c is CidrRange => !!c);
}

function compileMatch(m: Json | undefined, problems: Problems, path: string): FilterChainMatch {
  const match = (m ?? {}) as Json;
  problems.fields(match, path, [
    'destination_port',
    'prefix_ranges',
    'source_prefix_ranges',
    'source_ports',
    'transport_protocol',
    'application_protocols',
    'server_names',
    'source_type',
  ]);
  if (match.source_type && match.source_type !== 'ANY') problems.add(join(path, 'source_type'), `source_type ${match.source_type} is not supported`);
  const transport = match.transport_protocol || undefined;
  if (transport && transport !== 'raw_buffer' && transport !== 'tls') {
    problems.add(join(path, 'transport_protocol'), `transport protocol "${transport}" is not supported`);
  }
  return {
    destinationPort: wrapped<number>(match.destination_port) !== undefined ? Number(wrapped<number>(match.destination_port)) : undefined,
    prefixRanges: compileCidrs(match.prefix_ranges, problems, join(path, 'prefix_ranges')),
    sourcePrefixRanges: compileCidrs(match.source_prefix_ranges, problems, join(path, 'source_prefix_ranges')),
    sourcePorts: ((match.source_ports ?? []) as unknown[]).map(Number),
    transportProtocol: transport,
    applicationProtocols: (match.application_protocols ?? []) as string[],
    serverNames: (match.server_names ?? []) as string[],
  };
}

export function compileAccessLogs(list: Json[] | undefined, problems: Problems, path: string): AccessLogConfig[] {
  const out: AccessLogConfig[] = [];
  (list ?? []).forEach((a, i) => {
    const p = join(join(path, 'access_log'), i);
    problems.fields(a, p, ['name', 'typed_config']);
    if (a.filter) problems.add(join(p, 'filter'), 'access log filters are not supported by the Weft proxy');
    const cfg = (a.typed_config ?? {}) as Json;
    const type = anyTypeName(cfg);
    let target: string;
    if (type === FILE_ACCESS_LOG && anyIsDecoded(cfg)) target = String(cfg.path ?? '/dev/stdout');
    else if (type === STDOUT_ACCESS_LOG && anyIsDecoded(cfg)) target = '/dev/stdout';
    else if (type === STDERR_ACCESS_LOG && anyIsDecoded(cfg)) target = '/dev/stderr';
    else {
      problems.add(join(p, 'typed_config'), `access logger of type "${type}" is not supported by the Weft proxy`);
      return;
    }
    problems.fields(cfg, join(p, 'typed_config'), ['path', 'format', 'json_format', 'log_format']);
    const entry: AccessLogConfig = { path: target };
    if (cfg.format) entry.format = String(cfg.format);
    if (cfg.json_format) entry.jsonFormat = cfg.json_format as Record<string, string>;
    if (cfg.log_format) {
      const lf = cfg.log_format as Json;
      problems.fields(lf, join(p, 'typed_config.log_format'), ['text_format', 'json_format', 'text_format_source'], ['omit_empty_values', 'content_type', 'formatters', 'json_format_options']);
      if (lf.text_format) entry.format = String(lf.text_format);
      if (lf.text_format_source?.inline_string) entry.format = String(lf.text_format_source.inline_string);
      if (lf.json_format) entry.jsonFormat = lf.json_format as Record<string, string>;
    }
    out.push(entry);
  });
  return out;
}

function compileHcm(h: Json, problems: Problems, path: string, version: string): HttpConnectionManagerConfig {
  problems.fields(
    h,
    path,
    [
      'codec_type',
      'stat_prefix',
      'rds',
      'route_config',
      'http_filters',
      'common_http_protocol_options',
      'http_protocol_options',
      'http2_protocol_options',
      'server_name',
      'server_header_transformation',
      'stream_idle_timeout',
      'request_timeout',
      'access_log',
      'use_remote_address',
      'xff_num_trusted_hops',
      'skip_xff_append',
      'generate_request_id',
      'preserve_external_request_id',
      'always_set_request_id_in_response',
      'upgrade_configs',
      'normalize_path',
      'merge_slashes',
      'path_with_escaped_slashes_action',
      'tracing',
    ],
    [
      // Hardening knobs with no effect on where or how a request is forwarded.
      'add_user_agent',
      'max_request_headers_kb',
      'request_headers_timeout',
      'drain_timeout',
      'delayed_close_timeout',
      'internal_address_config',
      'via',
      'forward_client_cert_details',
      'set_current_client_cert_details',
      'proxy_100_continue',
      'represent_ipv4_remote_address_as_ipv4_mapped_ipv6',
      'request_id_extension',
      'stream_error_on_invalid_http_message',
      'strip_trailing_host_dot',
      'strip_matching_host_port',
      'strip_any_host_port',
      'scheme_header_transformation',
      'append_x_forwarded_port',
      'add_proxy_protocol_connection_state',
      'proxy_status_config',
      'early_header_mutation_extensions',
    ],
  );
  if (h.scoped_routes) problems.add(join(path, 'scoped_routes'), 'scoped routes are not supported by the Weft proxy');
  if (h.local_reply_config) problems.add(join(path, 'local_reply_config'), 'local_reply_config is not supported by the Weft proxy');
  if (h.original_ip_detection_extensions?.length) problems.add(join(path, 'original_ip_detection_extensions'), 'not supported by the Weft proxy');
  let routeConfigName: string | undefined;
  let inlineRouteConfig: CompiledRouteConfig | undefined;
  if (h.rds) {
    problems.fields(h.rds, join(path, 'rds'), ['config_source', 'route_config_name']);
    const source = (h.rds.config_source ?? {}) as Json;
    if (!source.ads && source.api_config_source?.api_type !== 'AGGREGATED_GRPC') {
      problems.add(join(path, 'rds.config_source'), 'only ADS config sources are supported (config_source: {ads: {}})');
    }
    routeConfigName = String(h.rds.route_config_name ?? '');
    if (!routeConfigName) problems.add(join(path, 'rds.route_config_name'), 'route_config_name is required');
  } else if (h.route_config) {
    const compiled = compileRouteConfig({ name: 'inline', ...h.route_config }, version);
    if (compiled.valid) inlineRouteConfig = compiled.result;
    else for (const e of compiled.errors) problems.add(join(path, 'route_config'), e);
  } else {
    problems.add(path, 'one of rds or route_config is required');
  }
  const codec = (h.codec_type ?? 'AUTO') as HttpConnectionManagerConfig['codec'];
  if (!['AUTO', 'HTTP1', 'HTTP2'].includes(codec)) problems.add(join(path, 'codec_type'), `codec ${codec} is not supported`);
  const common = (h.common_http_protocol_options ?? {}) as Json;
  problems.fields(common, join(path, 'common_http_protocol_options'), ['idle_timeout'], [
    'max_connection_duration',
    'max_headers_count',
    'max_stream_duration',
    'headers_with_underscores_action',
    'max_requests_per_connection',
    'max_response_headers_kb',
  ]);
  if (h.http_protocol_options) {
    problems.fields(h.http_protocol_options, join(path, 'http_protocol_options'), ['allow_absolute_url', 'accept_http_10', 'default_host_for_http_10'], [
      'header_key_format',
      'enable_trailers',
      'allow_chunked_length',
      'override_stream_error_on_invalid_http_message',
      'send_fully_qualified_url',
      'ignore_http_11_upgrade',
    ]);
  }
  let websocket = false;
  ((h.upgrade_configs ?? []) as Json[]).forEach((u, i) => {
    const p = join(join(path, 'upgrade_configs'), i);
    problems.fields(u, p, ['upgrade_type', 'enabled']);
    if (u.filters?.length) problems.add(join(p, 'filters'), 'upgrade filter chains are not supported');
    const type = String(u.upgrade_type ?? '').toLowerCase();
    if (type === 'websocket') websocket = wrapped<boolean>(u.enabled) !== false;
    else problems.add(join(p, 'upgrade_type'), `upgrade type "${u.upgrade_type}" is not supported (only websocket)`);
  });
  const serverHeaders: Record<string, HttpConnectionManagerConfig['serverHeader']> = {
    OVERWRITE: 'overwrite',
    APPEND_IF_ABSENT: 'append-if-absent',
    PASS_THROUGH: 'pass-through',
  };
  return {
    kind: 'http',
    statPrefix: String(h.stat_prefix ?? ''),
    routeConfigName,
    inlineRouteConfig,
    codec,
    filters: compileHttpFilters(h.http_filters, problems, path),
    generateRequestId: wrapped<boolean>(h.generate_request_id) !== false,
    preserveExternalRequestId: h.preserve_external_request_id === true,
    alwaysSetRequestIdInResponse: h.always_set_request_id_in_response === true,
    useRemoteAddress: wrapped<boolean>(h.use_remote_address) === true,
    xffNumTrustedHops: Number(h.xff_num_trusted_hops ?? 0),
    skipXffAppend: h.skip_xff_append === true,
    streamIdleTimeoutMs: notYet(durationMs(h.stream_idle_timeout, problems, join(path, 'stream_idle_timeout')), problems, join(path, 'stream_idle_timeout')),
    requestTimeoutMs: notYet(durationMs(h.request_timeout, problems, join(path, 'request_timeout')), problems, join(path, 'request_timeout')),
    idleTimeoutMs: durationMs(common.idle_timeout, problems, join(path, 'common_http_protocol_options.idle_timeout')) ?? 3_600_000,
    serverName: h.server_name || undefined,
    serverHeader: serverHeaders[h.server_header_transformation ?? 'OVERWRITE'] ?? 'overwrite',
    websocket,
    normalizePath: wrapped<boolean>(h.normalize_path) === true,
    mergeSlashes: h.merge_slashes === true,
    escapedSlashes: escapedSlashesAction(h.path_with_escaped_slashes_action, problems, join(path, 'path_with_escaped_slashes_action')),
    accessLogs: compileAccessLogs(h.access_log, problems, path),
    ...(h.tracing ? { tracing: compileTracing(h.tracing, problems, join(path, 'tracing')) } : {}),
  };
}

/** path_with_escaped_slashes_action; IMPLEMENTATION_SPECIFIC_DEFAULT is Envoy's KEEP_UNCHANGED. */
function escapedSlashesAction(value: unknown, problems: Problems, path: string): HttpConnectionManagerConfig['escapedSlashes'] {
  const actions: Record<string, HttpConnectionManagerConfig['escapedSlashes']> = {
    IMPLEMENTATION_SPECIFIC_DEFAULT: 'keep',
    KEEP_UNCHANGED: 'keep',
    REJECT_REQUEST: 'reject',
    UNESCAPE_AND_REDIRECT: 'redirect',
    UNESCAPE_AND_FORWARD: 'forward',
  };
  const action = actions[String(value ?? 'IMPLEMENTATION_SPECIFIC_DEFAULT')];
  if (!action) problems.add(path, `unknown action "${value}"`);
  return action ?? 'keep';
}

/** Stream timers the proxy does not run yet: only absent or 0 (disabled) is accepted. */
function notYet(ms: number | undefined, problems: Problems, path: string): number {
  if (ms) problems.add(path, 'a non-zero value is not supported by the Weft proxy yet (use the route timeout)');
  return 0;
}

function compileTcpProxy(t: Json, problems: Problems, path: string): TcpProxyConfig {
  problems.fields(
    t,
    path,
    ['stat_prefix', 'cluster', 'weighted_clusters', 'idle_timeout', 'max_connect_attempts', 'access_log'],
    ['max_downstream_connection_duration', 'access_log_flush_interval', 'access_log_options', 'upstream_idle_timeout', 'downstream_idle_timeout'],
  );
  for (const k of ['metadata_match', 'hash_policy', 'tunneling_config', 'on_demand']) {
    if (t[k] && (!Array.isArray(t[k]) || t[k].length)) problems.add(join(path, k), `tcp_proxy ${k} is not supported by the Weft proxy`);
  }
  let weighted: TcpProxyConfig['weighted'];
  if (t.weighted_clusters) {
    const names: string[] = [];
    const cumulative: number[] = [];
    let total = 0;
    ((t.weighted_clusters.clusters ?? []) as Json[]).forEach((c, i) => {
      const p = join(join(path, 'weighted_clusters.clusters'), i);
      problems.fields(c, p, ['name', 'weight'], ['metadata_match']);
      total += Number(c.weight ?? 0);
      names.push(String(c.name ?? ''));
      cumulative.push(total);
    });
    if (total <= 0) problems.add(join(path, 'weighted_clusters'), 'the sum of weights must be positive');
    weighted = { names, cumulative, total };
  } else if (!t.cluster) {
    problems.add(path, 'one of cluster or weighted_clusters is required');
  }
  return {
    kind: 'tcp',
    statPrefix: String(t.stat_prefix ?? ''),
    cluster: t.cluster || undefined,
    weighted,
    idleTimeoutMs: durationMs(t.idle_timeout, problems, join(path, 'idle_timeout')) ?? 3_600_000,
    maxConnectAttempts: Math.max(1, Number(wrapped<number>(t.max_connect_attempts) ?? 1)),
    accessLogs: compileAccessLogs(t.access_log, problems, path),
  };
}

function compileFilterChain(fc: Json, problems: Problems, path: string, version: string, direction?: TrafficDirection): CompiledFilterChain | undefined {
  problems.fields(fc, path, ['filter_chain_match', 'filters', 'name', 'transport_socket'], ['metadata', 'transport_socket_connect_timeout']);
  const tls = compileDownstreamTransportSocket(fc.transport_socket, problems, join(path, 'transport_socket'));
  if (fc.use_proxy_proto) problems.add(join(path, 'use_proxy_proto'), 'PROXY protocol is not supported');
  const filters = (fc.filters ?? []) as Json[];
  let terminal: CompiledFilterChain['terminal'] | undefined;
  const networkRbac: NetworkRbacConfig[] = [];
  filters.forEach((f, i) => {
    const p = join(join(path, 'filters'), i);
    problems.fields(f, p, ['name', 'typed_config']);
    const type = anyTypeName(f.typed_config);
    const last = i === filters.length - 1;
    if (type === HCM_TYPE && anyIsDecoded(f.typed_config)) {
      terminal = compileHcm(f.typed_config, problems, join(p, 'typed_config'), version);
      if (!last) problems.add(p, 'http_connection_manager must be the last network filter');
    } else if (type === NETWORK_RBAC_TYPE && anyIsDecoded(f.typed_config)) {
      networkRbac.push(compileNetworkRbac(String(f.name ?? ''), f.typed_config, problems, join(p, 'typed_config')));
    } else if (type === TCP_PROXY_TYPE && anyIsDecoded(f.typed_config)) {
      terminal = compileTcpProxy(f.typed_config, problems, join(p, 'typed_config'));
      if (!last) problems.add(p, 'tcp_proxy must be the last network filter');
    } else {
      problems.add(p, `network filter "${f.name}" of type "${type ?? 'none'}" is not supported by the Weft proxy`);
    }
  });
  if (!terminal) {
    if (filters.length === 0) problems.add(join(path, 'filters'), 'a filter chain needs a terminal filter (http_connection_manager or tcp_proxy)');
    return undefined;
  }
  if (direction) terminal.trafficDirection = direction;
  if (networkRbac.length) {
    // Evaluated by tcp_proxy when it accepts the connection; HTTP chains use the HTTP RBAC filter.
    if (terminal.kind === 'tcp') terminal.rbac = networkRbac;
    else problems.add(join(path, 'filters'), 'network RBAC ahead of http_connection_manager is not supported by the Weft proxy (use the HTTP RBAC filter)');
  }
  const chain: CompiledFilterChain = { name: String(fc.name ?? ''), match: compileMatch(fc.filter_chain_match, problems, join(path, 'filter_chain_match')), terminal };
  if (tls) chain.tls = tls;
  return chain;
}

/** Validates and compiles one Listener. */
export function compileListener(raw: Json, version: string): Validation<CompiledListener> {
  const name = String(raw.name ?? '');
  const problems = new Problems(`Listener "${name}"`);
  problems.fields(
    raw,
    '',
    ['name', 'address', 'filter_chains', 'default_filter_chain', 'use_original_dst', 'bind_to_port', 'listener_filters', 'access_log'],
    [
      'listener_filters_timeout',
      'continue_on_listener_filters_timeout',
      'traffic_direction',
      'per_connection_buffer_limit_bytes',
      'metadata',
      'drain_type',
      // Socket options and transparent/freebind serve iptables capture (issue 10); on loopback
      // addresses they have no effect.
      'socket_options',
      'transparent',
      'freebind',
      'connection_balance_config',
      'enable_reuse_port',
      'reuse_port',
      'tcp_backlog_size',
      'max_connections_to_accept_per_socket_event',
      'ignore_global_conn_limit',
      'stat_prefix',
      'tcp_fast_open_queue_length',
      // Refused below with a specific message.
      'additional_addresses',
      'filter_chain_matcher',
      'udp_listener_config',
      'api_listener',
      'internal_listener',
      'enable_mptcp',
    ],
  );
  if (raw.api_listener) {
    problems.add('api_listener', 'api_listener is for proxyless gRPC clients; the Weft proxy serves socket listeners only');
    return problems.result(undefined as never);
  }
  for (const k of ['additional_addresses', 'filter_chain_matcher', 'udp_listener_config', 'api_listener', 'internal_listener', 'enable_mptcp']) {
    if (raw[k] && (!Array.isArray(raw[k]) || raw[k].length)) problems.add(k, `${k} is not supported by the Weft proxy`);
  }
  if (!name) problems.add('name', 'name is required');
  const addr = socketAddress(raw.address, problems, 'address');
  const inspectors = new Set<'http' | 'tls' | 'original-dst'>();
  ((raw.listener_filters ?? []) as Json[]).forEach((f, i) => {
    const p = join('listener_filters', i);
    problems.fields(f, p, ['name', 'typed_config'], ['filter_disabled']);
    const kind = LISTENER_FILTERS[anyTypeName(f.typed_config) ?? ''];
    if (kind) inspectors.add(kind);
    else problems.add(p, `listener filter "${f.name}" is not supported by the Weft proxy`);
  });
  const direction = raw.traffic_direction === 'INBOUND' || raw.traffic_direction === 'OUTBOUND' ? (raw.traffic_direction as TrafficDirection) : undefined;
  const filterChains: CompiledFilterChain[] = [];
  ((raw.filter_chains ?? []) as Json[]).forEach((fc, i) => {
    const c = compileFilterChain(fc, problems, join('filter_chains', i), version, direction);
    if (c) filterChains.push(c);
  });
  const defaultFilterChain = raw.default_filter_chain
    ? compileFilterChain(raw.default_filter_chain, problems, 'default_filter_chain', version, direction)
    : undefined;
  if (filterChains.length === 0 && !defaultFilterChain && !raw.use_original_dst) {
    problems.add('filter_chains', 'a listener needs at least one filter chain');
  }
  const routeConfigNames = new Set<string>();
  for (const c of [...filterChains, ...(defaultFilterChain ? [defaultFilterChain] : [])]) {
    if (c.terminal.kind === 'http' && c.terminal.routeConfigName) routeConfigNames.add(c.terminal.routeConfigName);
  }
  return problems.result(
    Object.freeze({
      name,
      version,
      address: addr?.address ?? '0.0.0.0',
      port: addr?.port ?? 0,
      bindToPort: wrapped<boolean>(raw.bind_to_port) !== false,
      useOriginalDst: wrapped<boolean>(raw.use_original_dst) === true,
      filterChains,
      defaultFilterChain,
      inspectors,
      routeConfigNames: [...routeConfigNames],
      accessLogs: compileAccessLogs(raw.access_log, problems, ''),
      raw,
    }),
  );
}
