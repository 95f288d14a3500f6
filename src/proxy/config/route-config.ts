// RouteConfiguration (RDS) -> CompiledRouteConfig: virtual host lookup tables, route matchers,
// weighted cluster pickers, retry/timeout/mirror/hash/rewrite/redirect settings, all built here.
import type {
  CompiledRoute,
  CompiledRouteConfig,
  CompiledVirtualHost,
  DirectResponseAction,
  ForwardAction,
  HashPolicy,
  MirrorPolicy,
  PathMatch,
  RedirectAction,
  RetryCondition,
  RetryPolicy,
  RouteActionConfig,
  WeightedClusterChoice,
  WeightedClusters,
} from './model';
import { compileRequestResponseEdits } from './header-edits';
import { compileCors, compileFilterOverrides } from './http-filters';
import { compileHeaderMatcher, compileQueryMatcher, compileSubstitution } from './string-matcher';
import {
  durationMs,
  join,
  Problems,
  regexMatcher,
  runtimeFractionalPercent,
  wrapped,
  type Json,
  type Validation,
} from './validation';

/** Envoy's default route timeout when `timeout` is absent (Istio always sets it, 0s = none). */
export const DEFAULT_ROUTE_TIMEOUT_MS = 15_000;

const RETRY_CONDITIONS = new Set<RetryCondition>([
  '5xx',
  'gateway-error',
  'reset',
  'reset-before-request',
  'connect-failure',
  'envoy-ratelimited',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
  'retriable-headers',
  'http3-post-connect-failure',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
]);

/** gRPC retry conditions and the grpc-status each one retries (Envoy's router). */
const GRPC_RETRY_STATUS: Partial<Record<RetryCondition, number>> = {
  cancelled: 1,
  'deadline-exceeded': 4,
  'resource-exhausted': 8,
  internal: 13,
  unavailable: 14,
};

const PREVIOUS_HOSTS_TYPE = 'envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate';

const REDIRECT_CODES: Record<string, number> = {
  MOVED_PERMANENTLY: 301,
  FOUND: 302,
  SEE_OTHER: 303,
  TEMPORARY_REDIRECT: 307,
  PERMANENT_REDIRECT: 308,
};

const CLUSTER_NOT_FOUND_CODES: Record<string, number> = {
  SERVICE_UNAVAILABLE: 503,
  NOT_FOUND: 404,
  INTERNAL_SERVER_ERROR: 500,
};

export function compileRetryPolicy(r: Json, problems: Problems, path: string): RetryPolicy {
  problems.fields(
    r,
    path,
    [
      'retry_on',
      'num_retries',
      'per_try_timeout',
      'per_try_idle_timeout',
      'retry_host_predicate',
      'host_selection_retry_max_attempts',
      'retriable_status_codes',
      'retry_back_off',
      'retriable_headers',
      'retriable_request_headers',
      'retry_priority',
    ],
    ['rate_limited_retry_back_off'],
  );
  let avoidPreviousPriorities = false;
  if (r.retry_priority) {
    const type = r.retry_priority.typed_config?.['@type'] ?? '';
    // Istio's retryRemoteLocalities: retries leave the priorities (localities) already tried.
    if (type.endsWith('PreviousPrioritiesConfig') || r.retry_priority.name === 'envoy.retry_priorities.previous_priorities') avoidPreviousPriorities = true;
    else problems.add(join(path, 'retry_priority'), `retry priority "${r.retry_priority.name ?? type}" is not supported (only previous_priorities)`);
  }
  const on = new Set<RetryCondition>();
  for (const raw of String(r.retry_on ?? '').split(',')) {
    const c = raw.trim();
    if (!c) continue;
    if (!RETRY_CONDITIONS.has(c as RetryCondition)) problems.add(join(path, 'retry_on'), `unknown retry condition "${c}"`);
    else on.add(c as RetryCondition);
  }
  let avoidPreviousHosts = false;
  ((r.retry_host_predicate ?? []) as Json[]).forEach((pred, i) => {
    const p = join(join(path, 'retry_host_predicate'), i);
    const type = pred.typed_config?.['@type'] ?? pred.typed_config?.type_url ?? '';
    if (type.endsWith(PREVIOUS_HOSTS_TYPE) || pred.name === 'envoy.retry_host_predicates.previous_hosts') {
      avoidPreviousHosts = true;
    } else {
      problems.add(p, `retry host predicate "${pred.name ?? type}" is not supported (only previous_hosts)`);
    }
  });
  const backoff = (r.retry_back_off ?? {}) as Json;
  problems.fields(backoff, join(path, 'retry_back_off'), ['base_interval', 'max_interval']);
  const base = durationMs(backoff.base_interval, problems, join(path, 'retry_back_off.base_interval')) ?? 25;
  const max = durationMs(backoff.max_interval, problems, join(path, 'retry_back_off.max_interval')) ?? base * 10;
  const grpcStatuses = new Set<number>();
  for (const c of on) if (GRPC_RETRY_STATUS[c] !== undefined) grpcStatuses.add(GRPC_RETRY_STATUS[c]!);
  return {
    on,
    grpcStatuses,
    numRetries: Number(wrapped<number>(r.num_retries) ?? 1),
    perTryTimeoutMs: durationMs(r.per_try_timeout, problems, join(path, 'per_try_timeout')) ?? 0,
    perTryIdleTimeoutMs: durationMs(r.per_try_idle_timeout, problems, join(path, 'per_try_idle_timeout')) ?? 0,
    retriableStatusCodes: new Set<number>(((r.retriable_status_codes ?? []) as unknown[]).map(Number)),
    retriableHeaders: ((r.retriable_headers ?? []) as Json[]).map((h, i) =>
      compileHeaderMatcher(h, problems, join(join(path, 'retriable_headers'), i)),
    ),
    retriableRequestHeaders: ((r.retriable_request_headers ?? []) as Json[]).map((h, i) =>
      compileHeaderMatcher(h, problems, join(join(path, 'retriable_request_headers'), i)),
    ),
    avoidPreviousHosts,
    avoidPreviousPriorities,
    hostSelectionMaxAttempts: Math.max(1, Number(r.host_selection_retry_max_attempts ?? 1)),
    backoffBaseMs: base,
    backoffMaxMs: Math.max(base, max),
  };
}

function compileHashPolicy(h: Json, problems: Problems, path: string): HashPolicy | undefined {
  problems.fields(h, path, ['header', 'cookie', 'connection_properties', 'query_parameter', 'terminal']);
  const terminal = h.terminal === true;
  if (h.header) {
    problems.fields(h.header, join(path, 'header'), ['header_name', 'regex_rewrite']);
    return {
      kind: 'header',
      name: String(h.header.header_name ?? '').toLowerCase(),
      regexRewrite: compileSubstitution(h.header.regex_rewrite, problems, join(path, 'header.regex_rewrite')),
      terminal,
    };
  }
  if (h.cookie) {
    problems.fields(h.cookie, join(path, 'cookie'), ['name', 'ttl', 'path']);
    return {
      kind: 'cookie',
      name: String(h.cookie.name ?? ''),
      ttlMs: durationMs(h.cookie.ttl, problems, join(path, 'cookie.ttl')),
      path: h.cookie.path || undefined,
      terminal,
    };
  }
  if (h.connection_properties) {
    problems.fields(h.connection_properties, join(path, 'connection_properties'), ['source_ip']);
    return { kind: 'source-ip', terminal };
  }
  if (h.query_parameter) {
    problems.fields(h.query_parameter, join(path, 'query_parameter'), ['name']);
    return { kind: 'query', name: String(h.query_parameter.name ?? ''), terminal };
  }
  problems.add(path, 'hash policy has no supported specifier (header, cookie, connection_properties, query_parameter)');
  return undefined;
}

function compileMirrors(list: Json[] | undefined, problems: Problems, path: string): MirrorPolicy[] {
  return (list ?? []).map((m, i) => {
    const p = join(join(path, 'request_mirror_policies'), i);
    problems.fields(m, p, ['cluster', 'runtime_fraction', 'trace_sampled'], ['disable_shadow_host_suffix_append']);
    if (!m.cluster) problems.add(join(p, 'cluster'), 'mirror cluster is required (cluster_header is not supported)');
    return {
      cluster: String(m.cluster ?? ''),
      probability: m.runtime_fraction ? runtimeFractionalPercent(m.runtime_fraction, problems, join(p, 'runtime_fraction')) : 1,
      traceSampled: wrapped<boolean>(m.trace_sampled),
    };
  });
}

function compileWeightedClusters(w: Json, problems: Problems, path: string): WeightedClusters {
  problems.fields(w, path, ['clusters', 'total_weight'], ['runtime_key_prefix']);
  const choices: WeightedClusterChoice[] = [];
  const cumulative: number[] = [];
  let total = 0;
  ((w.clusters ?? []) as Json[]).forEach((c, i) => {
    const p = join(join(path, 'clusters'), i);
    problems.fields(
      c,
      p,
      [
        'name',
        'weight',
        'request_headers_to_add',
        'request_headers_to_remove',
        'response_headers_to_add',
        'response_headers_to_remove',
        'typed_per_filter_config',
        'host_rewrite_literal',
      ],
      ['metadata_match'],
    );
    if (c.metadata_match) problems.add(join(p, 'metadata_match'), 'subset load balancing (metadata_match) is not supported');
    if (!c.name) problems.add(join(p, 'name'), 'cluster name is required (cluster_header is not supported)');
    const weight = Number(wrapped<number>(c.weight) ?? 0);
    total += weight;
    cumulative.push(total);
    choices.push({
      name: String(c.name ?? ''),
      weight,
      ...compileRequestResponseEdits(c, problems, p),
      hostRewriteLiteral: c.host_rewrite_literal || undefined,
      filters: compileFilterOverrides(c.typed_per_filter_config, problems, p),
    });
  });
  if (choices.length === 0) problems.add(join(path, 'clusters'), 'weighted_clusters needs at least one cluster');
  const declaredTotal = wrapped<number>(w.total_weight);
  if (declaredTotal !== undefined && Number(declaredTotal) !== total) {
    problems.add(join(path, 'total_weight'), `total_weight ${declaredTotal} differs from the sum of weights ${total}`);
  }
  if (total === 0 && choices.length > 0) problems.add(join(path, 'clusters'), 'the sum of weights must be positive');
  return { choices, cumulative, total };
}

function compileForward(a: Json, problems: Problems, path: string, routeCors: { cors?: Json }): ForwardAction {
  problems.fields(
    a,
    path,
    [
      'cluster',
      'cluster_header',
      'weighted_clusters',
      'cluster_not_found_response_code',
      'prefix_rewrite',
      'regex_rewrite',
      'host_rewrite_literal',
      'auto_host_rewrite',
      'host_rewrite_header',
      'host_rewrite_path_regex',
      'append_x_forwarded_host',
      'timeout',
      'idle_timeout',
      'retry_policy',
      'request_mirror_policies',
      'hash_policy',
      'cors',
      'max_grpc_timeout',
      'grpc_timeout_offset',
      'upgrade_configs',
      'max_stream_duration',
    ],
    ['priority', 'include_vh_rate_limits', 'internal_redirect_action'],
  );
  if (a.cors) routeCors.cors = a.cors;
  let clusterNotFoundStatus = 503;
  if (a.cluster_not_found_response_code) {
    clusterNotFoundStatus = CLUSTER_NOT_FOUND_CODES[a.cluster_not_found_response_code] ?? 503;
  }
  const specifiers = ['cluster', 'cluster_header', 'weighted_clusters'].filter((k) => a[k]);
  if (specifiers.length !== 1) problems.add(path, 'exactly one of cluster, cluster_header, weighted_clusters is required');
  const upgrades = new Set<string>();
  ((a.upgrade_configs ?? []) as Json[]).forEach((u, i) => {
    const p = join(join(path, 'upgrade_configs'), i);
    problems.fields(u, p, ['upgrade_type', 'enabled']);
    if (wrapped<boolean>(u.enabled) !== false) upgrades.add(String(u.upgrade_type ?? '').toLowerCase());
  });
  let grpcTimeout: ForwardAction['grpcTimeout'];
  if (a.max_stream_duration) {
    const p = join(path, 'max_stream_duration');
    problems.fields(a.max_stream_duration, p, ['max_stream_duration', 'grpc_timeout_header_max'], ['grpc_timeout_header_offset']);
    const msd = durationMs(a.max_stream_duration.max_stream_duration, problems, join(p, 'max_stream_duration'));
    if (msd) problems.add(join(p, 'max_stream_duration'), 'a non-zero max_stream_duration is not supported (use timeout)');
    const max = durationMs(a.max_stream_duration.grpc_timeout_header_max, problems, join(p, 'grpc_timeout_header_max'));
    if (max !== undefined) grpcTimeout = { mode: 'grpc_timeout_header_max', maxMs: max };
  }
  if (a.max_grpc_timeout !== undefined && !grpcTimeout) {
    grpcTimeout = { mode: 'max_grpc_timeout', maxMs: durationMs(a.max_grpc_timeout, problems, join(path, 'max_grpc_timeout')) ?? 0 };
  }
  const timeoutMs = durationMs(a.timeout, problems, join(path, 'timeout'));
  return {
    kind: 'forward',
    cluster: a.cluster || undefined,
    clusterHeader: a.cluster_header ? String(a.cluster_header).toLowerCase() : undefined,
    weighted: a.weighted_clusters ? compileWeightedClusters(a.weighted_clusters, problems, join(path, 'weighted_clusters')) : undefined,
    clusterNotFoundStatus,
    timeoutMs: timeoutMs ?? DEFAULT_ROUTE_TIMEOUT_MS,
    idleTimeoutMs: noIdleTimeout(durationMs(a.idle_timeout, problems, join(path, 'idle_timeout')), problems, join(path, 'idle_timeout')),
    retry: a.retry_policy ? compileRetryPolicy(a.retry_policy, problems, join(path, 'retry_policy')) : undefined,
    hashPolicies: ((a.hash_policy ?? []) as Json[])
      .map((h, i) => compileHashPolicy(h, problems, join(join(path, 'hash_policy'), i)))
      .filter((h): h is HashPolicy => !!h),
    mirrors: compileMirrors(a.request_mirror_policies, problems, path),
    prefixRewrite: typeof a.prefix_rewrite === 'string' && 'prefix_rewrite' in a ? a.prefix_rewrite : undefined,
    regexRewrite: compileSubstitution(a.regex_rewrite, problems, join(path, 'regex_rewrite')),
    hostRewriteLiteral: a.host_rewrite_literal || undefined,
    hostRewriteHeader: a.host_rewrite_header ? String(a.host_rewrite_header).toLowerCase() : undefined,
    hostRewritePathRegex: compileSubstitution(a.host_rewrite_path_regex, problems, join(path, 'host_rewrite_path_regex')),
    autoHostRewrite: wrapped<boolean>(a.auto_host_rewrite) === true,
    appendXForwardedHost: a.append_x_forwarded_host === true,
    upgrades,
    grpcTimeout,
  };
}

function noIdleTimeout(ms: number | undefined, problems: Problems, path: string): number {
  if (ms) problems.add(path, 'a non-zero route idle_timeout is not supported by the Weft proxy yet (use timeout)');
  return 0;
}

function compileRedirect(r: Json, problems: Problems, path: string): RedirectAction {
  problems.fields(r, path, [
    'https_redirect',
    'scheme_redirect',
    'host_redirect',
    'port_redirect',
    'path_redirect',
    'prefix_rewrite',
    'regex_rewrite',
    'response_code',
    'strip_query',
  ]);
  let status = 301;
  if (r.response_code) {
    const code = REDIRECT_CODES[r.response_code];
    if (!code) problems.add(join(path, 'response_code'), `unknown redirect response code "${r.response_code}"`);
    else status = code;
  }
  return {
    kind: 'redirect',
    scheme: r.https_redirect ? 'https' : r.scheme_redirect || undefined,
    host: r.host_redirect || undefined,
    port: r.port_redirect ? Number(r.port_redirect) : undefined,
    path: r.path_redirect || undefined,
    prefixRewrite: 'prefix_rewrite' in r ? String(r.prefix_rewrite ?? '') : undefined,
    regexRewrite: compileSubstitution(r.regex_rewrite, problems, join(path, 'regex_rewrite')),
    status,
    stripQuery: r.strip_query === true,
  };
}

function compileDirect(d: Json, problems: Problems, path: string): DirectResponseAction {
  problems.fields(d, path, ['status', 'body']);
  const status = Number(d.status ?? 0);
  if (status < 200 || status >= 600) problems.add(join(path, 'status'), `status ${status} is outside [200, 600)`);
  let body: Buffer | undefined;
  if (d.body) {
    problems.fields(d.body, join(path, 'body'), ['inline_string', 'inline_bytes']);
    if (typeof d.body.inline_string === 'string') body = Buffer.from(d.body.inline_string);
    else if (d.body.inline_bytes !== undefined) body = Buffer.from(d.body.inline_bytes, 'base64');
  }
  return { kind: 'direct', status, body };
}

export function compilePathMatch(m: Json, problems: Problems, path: string): PathMatch {
  const caseSensitive = wrapped<boolean>(m.case_sensitive) !== false;
  const fold = (s: string) => (caseSensitive ? s : s.toLowerCase());
  if (typeof m.prefix === 'string') return { kind: m.prefix === '' ? 'any' : 'prefix', value: fold(m.prefix), caseSensitive };
  if (typeof m.path === 'string') return { kind: 'path', value: fold(m.path), caseSensitive };
  if (typeof m.path_separated_prefix === 'string') return { kind: 'separated-prefix', value: fold(m.path_separated_prefix), caseSensitive };
  if (m.safe_regex) {
    // Envoy: case_sensitive does not apply to safe_regex.
    const regex = regexMatcher(m.safe_regex, problems, join(path, 'safe_regex'));
    return { kind: 'regex', value: m.safe_regex.regex, regex, caseSensitive: true };
  }
  // protobuf decoding drops `prefix: ""` (the default); a match with no path specifier then means
  // the empty prefix, which matches everything.
  return { kind: 'any', value: '', caseSensitive };
}

function compileRoute(r: Json, problems: Problems, path: string): CompiledRoute {
  problems.fields(
    r,
    path,
    [
      'name',
      'match',
      'route',
      'redirect',
      'direct_response',
      'typed_per_filter_config',
      'request_headers_to_add',
      'request_headers_to_remove',
      'response_headers_to_add',
      'response_headers_to_remove',
    ],
    ['metadata', 'decorator', 'tracing', 'per_request_buffer_limit_bytes', 'stat_prefix'],
  );
  const operation = typeof r.decorator?.operation === 'string' && r.decorator.operation !== '' ? (r.decorator.operation as string) : undefined;
  const m = (r.match ?? {}) as Json;
  const mp = join(path, 'match');
  problems.fields(m, mp, [
    'prefix',
    'path',
    'safe_regex',
    'path_separated_prefix',
    'case_sensitive',
    'runtime_fraction',
    'headers',
    'query_parameters',
    'grpc',
  ]);
  const routeCors: { cors?: Json } = {};
  let action: RouteActionConfig;
  if (r.route) action = compileForward(r.route, problems, join(path, 'route'), routeCors);
  else if (r.redirect) action = compileRedirect(r.redirect, problems, join(path, 'redirect'));
  else if (r.direct_response) action = compileDirect(r.direct_response, problems, join(path, 'direct_response'));
  else {
    problems.add(path, 'route has no supported action (route, redirect, direct_response)');
    action = { kind: 'direct', status: 500 };
  }
  const filters = compileFilterOverrides(r.typed_per_filter_config, problems, path);
  if (routeCors.cors && filters.cors === undefined) filters.cors = compileCors(routeCors.cors, problems, join(path, 'route.cors'));
  return {
    name: String(r.name ?? ''),
    path: compilePathMatch(m, problems, mp),
    headers: ((m.headers ?? []) as Json[]).map((h, i) => compileHeaderMatcher(h, problems, join(join(mp, 'headers'), i))),
    query: ((m.query_parameters ?? []) as Json[]).map((q, i) => compileQueryMatcher(q, problems, join(join(mp, 'query_parameters'), i))),
    fraction: m.runtime_fraction ? runtimeFractionalPercent(m.runtime_fraction, problems, join(mp, 'runtime_fraction')) : 1,
    grpcOnly: !!m.grpc,
    action,
    ...compileRequestResponseEdits(r, problems, path),
    filters,
    ...(operation ? { operation } : {}),
  };
}

function compileVirtualHost(v: Json, problems: Problems, path: string): CompiledVirtualHost {
  problems.fields(
    v,
    path,
    [
      'name',
      'domains',
      'routes',
      'request_headers_to_add',
      'request_headers_to_remove',
      'response_headers_to_add',
      'response_headers_to_remove',
      'cors',
      'typed_per_filter_config',
      'retry_policy',
      'request_mirror_policies',
      'include_request_attempt_count',
      'include_attempt_count_in_response',
      'require_tls',
    ],
    ['virtual_clusters', 'metadata', 'per_request_buffer_limit_bytes', 'include_is_timeout_retry_header'],
  );
  if (v.require_tls && v.require_tls !== 'NONE') problems.add(join(path, 'require_tls'), 'require_tls is not supported');
  const filters = compileFilterOverrides(v.typed_per_filter_config, problems, path);
  if (v.cors && filters.cors === undefined) filters.cors = compileCors(v.cors, problems, join(path, 'cors'));
  const domains = ((v.domains ?? []) as string[]).map((d) => String(d).toLowerCase());
  if (domains.length === 0) problems.add(join(path, 'domains'), 'a virtual host needs at least one domain');
  return {
    name: String(v.name ?? ''),
    domains,
    routes: ((v.routes ?? []) as Json[]).map((r, i) => compileRoute(r, problems, join(join(path, 'routes'), i))),
    ...compileRequestResponseEdits(v, problems, path),
    retry: v.retry_policy ? compileRetryPolicy(v.retry_policy, problems, join(path, 'retry_policy')) : undefined,
    filters,
    mirrors: compileMirrors(v.request_mirror_policies, problems, path),
    includeAttemptCount: v.include_request_attempt_count === true,
    includeAttemptCountInResponse: v.include_attempt_count_in_response === true,
  };
}

/** Validates and compiles one RouteConfiguration. */
export function compileRouteConfig(raw: Json, version: string): Validation<CompiledRouteConfig> {
  const name = String(raw.name ?? '');
  const problems = new Problems(`RouteConfiguration "${name}"`);
  problems.fields(
    raw,
    '',
    [
      'name',
      'virtual_hosts',
      'request_headers_to_add',
      'request_headers_to_remove',
      'response_headers_to_add',
      'response_headers_to_remove',
      'ignore_port_in_host_matching',
      'most_specific_header_mutations_wins',
    ],
    ['validate_clusters', 'max_direct_response_body_size_bytes', 'metadata'],
  );
  if (!name) problems.add('name', 'name is required');
  const ignorePort = raw.ignore_port_in_host_matching === true;
  const virtualHosts = ((raw.virtual_hosts ?? []) as Json[]).map((v, i) => compileVirtualHost(v, problems, join('virtual_hosts', i)));
  const exact = new Map<string, CompiledVirtualHost>();
  const suffixes: { suffix: string; vhost: CompiledVirtualHost }[] = [];
  const prefixes: { prefix: string; vhost: CompiledVirtualHost }[] = [];
  let catchAll: CompiledVirtualHost | undefined;
  const seen = new Set<string>();
  virtualHosts.forEach((vh, i) => {
    for (const domain of vh.domains) {
      const d = ignorePort ? stripPort(domain) : domain;
      if (seen.has(d)) {
        problems.add(join('virtual_hosts', i), `domain "${domain}" is already used by another virtual host`);
        continue;
      }
      seen.add(d);
      if (d === '*') catchAll = vh;
      else if (d.startsWith('*')) suffixes.push({ suffix: d.slice(1), vhost: vh });
      else if (d.endsWith('*')) prefixes.push({ prefix: d.slice(0, -1), vhost: vh });
      else if (d.includes('*')) problems.add(join('virtual_hosts', i), `domain "${domain}" has a wildcard in the middle`);
      else exact.set(d, vh);
    }
  });
  suffixes.sort((a, b) => b.suffix.length - a.suffix.length);
  prefixes.sort((a, b) => b.prefix.length - a.prefix.length);
  return problems.result(
    Object.freeze({
      name,
      version,
      virtualHosts,
      exact,
      suffixes,
      prefixes,
      catchAll,
      ...compileRequestResponseEdits(raw, problems, ''),
      ignorePortInHostMatching: ignorePort,
      mostSpecificHeaderMutationsWins: raw.most_specific_header_mutations_wins === true,
      raw,
    }),
  );
}

function stripPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end > 0 ? host.slice(0, end + 1) : host;
  }
  const colon = host.lastIndexOf(':');
  return colon > 0 && host.indexOf(':') === colon ? host.slice(0, colon) : host;
}

/**
 * Envoy's virtual host selection: exact domain, then the longest `*suffix`, then the longest
 * `prefix*`, then `*`. `authority` must be lower-case.
 */
export function findVirtualHost(rc: CompiledRouteConfig, authority: string): CompiledVirtualHost | undefined {
  const host = rc.ignorePortInHostMatching ? stripPort(authority) : authority;
  const exact = rc.exact.get(host);
  if (exact) return exact;
  for (const s of rc.suffixes) if (host.length > s.suffix.length && host.endsWith(s.suffix)) return s.vhost;
  for (const p of rc.prefixes) if (host.length > p.prefix.length && host.startsWith(p.prefix)) return p.vhost;
  return rc.catchAll;
}
