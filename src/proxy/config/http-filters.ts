// The HTTP filters the proxy implements (jwt_authn, rbac, fault, cors, router), compiled from an
// HCM filter chain and from per-route `typed_per_filter_config`. Any other filter is refused
// unless optional.
import { compileJwtAuthn, JWT_AUTHN_TYPE } from './jwt-authn';
import { compileHttpRbac, HTTP_RBAC_TYPE } from './rbac';
import { compileHeaderMatcher, compileStringMatcher } from './string-matcher';
import type { CorsSettings, FaultSettings, FilterOverrides, HttpFilterConfig } from './model';
import {
  anyIsDecoded,
  anyTypeName,
  durationMs,
  fractionalPercent,
  join,
  runtimeFractionalPercent,
  wrapped,
  type Json,
  type Problems,
} from './validation';

export const FAULT_TYPE = 'envoy.extensions.filters.http.fault.v3.HTTPFault';
export const CORS_FILTER_TYPE = 'envoy.extensions.filters.http.cors.v3.Cors';
export const CORS_POLICY_TYPE = 'envoy.extensions.filters.http.cors.v3.CorsPolicy';
export const ROUTER_TYPE = 'envoy.extensions.filters.http.router.v3.Router';
const FILTER_CONFIG_TYPE = 'envoy.config.route.v3.FilterConfig';

/** Compiles envoy.extensions.filters.http.fault.v3.HTTPFault. */
export function compileFault(f: Json, problems: Problems, path: string): FaultSettings {
  problems.fields(
    f,
    path,
    ['delay', 'abort', 'upstream_cluster', 'headers', 'max_active_faults', 'downstream_nodes'],
    [
      // Runtime keys: Weft has no runtime layer, so the configured defaults always apply.
      'delay_percent_runtime',
      'abort_percent_runtime',
      'delay_duration_runtime',
      'abort_http_status_runtime',
      'max_active_faults_runtime',
      'response_rate_limit_percent_runtime',
      'abort_grpc_status_runtime',
      'disable_downstream_cluster_stats',
    ],
  );
  if (f.downstream_nodes?.length) problems.add(join(path, 'downstream_nodes'), 'downstream_nodes is not supported by the Weft proxy');
  const settings: FaultSettings = { headers: [] };
  if (f.delay) {
    const p = join(path, 'delay');
    problems.fields(f.delay, p, ['fixed_delay', 'percentage']);
    const fixed = durationMs(f.delay.fixed_delay, problems, join(p, 'fixed_delay'));
    if (fixed === undefined) problems.add(join(p, 'fixed_delay'), 'only fixed_delay is supported (header_delay is not)');
    settings.delay = { fixedDelayMs: fixed ?? 0, probability: fractionalPercent(f.delay.percentage, problems, join(p, 'percentage')) };
  }
  if (f.abort) {
    const p = join(path, 'abort');
    problems.fields(f.abort, p, ['http_status', 'grpc_status', 'percentage']);
    const httpStatus = f.abort.http_status !== undefined ? Number(f.abort.http_status) : undefined;
    const grpcStatus = f.abort.grpc_status !== undefined ? Number(f.abort.grpc_status) : undefined;
    if (httpStatus === undefined && grpcStatus === undefined) {
      problems.add(p, 'abort needs http_status or grpc_status (header_abort is not supported)');
    }
    if (httpStatus !== undefined && (httpStatus < 200 || httpStatus >= 600)) {
      problems.add(join(p, 'http_status'), `abort status ${httpStatus} is outside [200, 600)`);
    }
    settings.abort = { httpStatus, grpcStatus, probability: fractionalPercent(f.abort.percentage, problems, join(p, 'percentage')) };
  }
  if (f.upstream_cluster) settings.upstreamCluster = String(f.upstream_cluster);
  if (f.headers?.length) {
    settings.headers = (f.headers as Json[]).map((h, i) => compileHeaderMatcher(h, problems, join(join(path, 'headers'), i)));
  }
  const maxActive = wrapped<number>(f.max_active_faults);
  if (maxActive !== undefined) settings.maxActiveFaults = Number(maxActive);
  return settings;
}

/** Compiles a CORS policy (route.v3.CorsPolicy or the cors filter's CorsPolicy; same fields). */
export function compileCors(c: Json, problems: Problems, path: string): CorsSettings {
  problems.fields(c, path, [
    'allow_origin_string_match',
    'allow_methods',
    'allow_headers',
    'expose_headers',
    'max_age',
    'allow_credentials',
    'filter_enabled',
    'shadow_enabled',
    'allow_private_network_access',
    'forward_not_matching_preflights',
  ]);
  return {
    allowOrigin: ((c.allow_origin_string_match ?? []) as Json[]).map((m, i) =>
      compileStringMatcher(m, problems, join(join(path, 'allow_origin_string_match'), i)),
    ),
    allowMethods: c.allow_methods || undefined,
    allowHeaders: c.allow_headers || undefined,
    exposeHeaders: c.expose_headers || undefined,
    maxAge: c.max_age || undefined,
    allowCredentials: wrapped<boolean>(c.allow_credentials) === true,
    enabled: c.filter_enabled ? runtimeFractionalPercent(c.filter_enabled, problems, join(path, 'filter_enabled')) : 1,
    shadow: c.shadow_enabled ? runtimeFractionalPercent(c.shadow_enabled, problems, join(path, 'shadow_enabled')) : 0,
    allowPrivateNetworkAccess: wrapped<boolean>(c.allow_private_network_access) === true,
    // Envoy's default is to forward preflights that do not match the policy upstream.
    forwardNotMatchingPreflights: wrapped<boolean>(c.forward_not_matching_preflights) !== false,
  };
}

/**
 * Compiles `typed_per_filter_config` of a route, virtual host or weighted cluster. `null` in the
 * result means "disabled at this level"; absent means "inherit".
 */
export function compileFilterOverrides(map: Json | undefined, problems: Problems, path: string): FilterOverrides {
  const overrides: FilterOverrides = {};
  if (!map) return overrides;
  for (const [filterName, rawAny] of Object.entries(map)) {
    const p = join(join(path, 'typed_per_filter_config'), filterName);
    let any = rawAny as Json;
    let optional = false;
    if (anyTypeName(any) === FILTER_CONFIG_TYPE) {
      problems.fields(any, p, ['config', 'is_optional', 'disabled']);
      optional = any.is_optional === true;
      if (any.disabled === true) {
        const kind = filterKindByName(filterName);
        if (kind) overrides[kind] = null;
        else if (!optional) problems.add(p, `disabling filter "${filterName}" per route is not supported by the Weft proxy`);
        continue;
      }
      any = any.config as Json;
    }
    const type = anyTypeName(any);
    if (type === FAULT_TYPE && anyIsDecoded(any)) overrides.fault = compileFault(any, problems, p);
    else if (type === CORS_POLICY_TYPE && anyIsDecoded(any)) overrides.cors = compileCors(any, problems, p);
    else if (!optional) problems.add(p, `per-route config of type "${type}" is not supported by the Weft proxy`);
  }
  return overrides;
}

function filterKindByName(name: string): keyof FilterOverrides | undefined {
  if (name.includes('fault')) return 'fault';
  if (name.includes('cors')) return 'cors';
  return undefined;
}

/**
 * Compiles an HCM `http_filters` list. The last filter must be the router (Envoy's rule); unknown
 * filters are refused unless `is_optional` (Envoy then skips them) or `disabled`.
 */
export function compileHttpFilters(list: Json[] | undefined, problems: Problems, path: string): HttpFilterConfig[] {
  const filters: HttpFilterConfig[] = [];
  const items = list ?? [];
  items.forEach((f, i) => {
    const p = join(join(path, 'http_filters'), i);
    problems.fields(f, p, ['name', 'typed_config', 'is_optional', 'disabled'], ['config_discovery']);
    const name = String(f.name ?? '');
    if (f.config_discovery) problems.add(join(p, 'config_discovery'), 'filter config discovery (ECDS) is not supported');
    const type = anyTypeName(f.typed_config);
    if (f.disabled === true) return; // disabled by default and enabled per route: not supported, so skip
    if (type === ROUTER_TYPE) {
      const cfg = (f.typed_config ?? {}) as Json;
      problems.fields(cfg, join(p, 'typed_config'), ['suppress_envoy_headers'], [
        'dynamic_stats',
        'start_child_span',
        'upstream_log',
        'upstream_log_options',
        'strict_check_headers',
        'respect_expected_rq_timeout',
        'suppress_grpc_request_failure_code_stats',
      ]);
      filters.push({ kind: 'router', name, suppressEnvoyHeaders: cfg.suppress_envoy_headers === true });
      if (i !== items.length - 1) problems.add(p, 'the router filter must be the last HTTP filter');
    } else if (type === FAULT_TYPE && anyIsDecoded(f.typed_config)) {
      const cfg = f.typed_config as Json;
      const hasBase = Object.keys(cfg).some((k) => k !== '@type');
      filters.push({ kind: 'fault', name, settings: hasBase ? compileFault(cfg, problems, join(p, 'typed_config')) : undefined });
    } else if (type === CORS_FILTER_TYPE) {
      filters.push({ kind: 'cors', name });
    } else if (type === HTTP_RBAC_TYPE && anyIsDecoded(f.typed_config)) {
      filters.push({ kind: 'rbac', name, settings: compileHttpRbac(f.typed_config as Json, problems, join(p, 'typed_config')) });
    } else if (type === JWT_AUTHN_TYPE && anyIsDecoded(f.typed_config)) {
      filters.push({ kind: 'jwt_authn', name, settings: compileJwtAuthn(f.typed_config as Json, problems, join(p, 'typed_config')) });
    } else if (f.is_optional === true) {
      // Envoy skips optional filters it does not know.
    } else {
      problems.add(p, `HTTP filter "${name}" of type "${type ?? 'none'}" is not supported by the Weft proxy`);
    }
  });
  if (!filters.some((f) => f.kind === 'router')) problems.add(join(path, 'http_filters'), 'no router filter: the chain must end with envoy.filters.http.router');
  return filters;
}
