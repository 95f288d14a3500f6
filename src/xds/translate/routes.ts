// RDS: VirtualService HTTP routes compiled to Envoy routes (Istio's route/route.go), the default
// route of a service, and the sidecar's outbound route configurations (per port, and `http_proxy`).
import type {
  CorsPolicy,
  Destination,
  HTTPFaultInjection,
  HTTPMatchRequest,
  HTTPRedirect,
  HTTPRetry,
  HTTPRoute,
  HTTPRouteDestination,
  StringMatch,
} from '../../config/resources';
import { labelsMatch, toFqdn } from '../../registry/hosts';
import { isHttpProtocol } from '../../registry/protocol';
import type { MeshService, Protocol } from '../../registry/types';
import {
  ALLOW_ANY_VHOST,
  BLOCK_ALL_VHOST,
  DEFAULT_ROUTE_NAME,
  HTTP_PROXY_ROUTE_CONFIG,
  PASSTHROUGH_CLUSTER,
  hostPort,
  outboundClusterName,
  outboundRouteConfigName,
} from './names';
import { effectivePolicy, findDestinationRule, findSubset } from './policies';
import type { ProxyScope, VirtualServiceResource } from './scope';
import { meshVirtualServiceFor } from './scope';
import type { EnvoyResource } from './types';
import {
  FILTER,
  TYPE,
  durationSeconds,
  envoyDuration,
  fractionalPercent,
  headerMatcher,
  headerMutations,
  integerPercent,
  sortedEntries,
  stringMatcher,
} from './values';

type Json = Record<string, unknown>;

/** Where routes are being compiled for. */
export interface RouteContext {
  readonly scope: ProxyScope;
  /** The port whose traffic these routes serve (match.port filter, default destination port). */
  readonly listenerPort: number;
  /** Gateway keys this route table serves: `mesh` for sidecars, `ns/name` for gateways. */
  readonly gateways: readonly string[];
  /** Proxyless gRPC accepts only route actions (no redirect / direct response). */
  readonly proxyless: boolean;
}

/** Istio's DefaultPolicy (retry/retry.go). */
export function defaultRetryPolicy(): Json {
  return {
    retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
    num_retries: 2,
    retriable_status_codes: [503],
    // Retries go to a host not tried before, when there is one.
    retry_host_predicate: [
      {
        name: 'envoy.retry_host_predicates.previous_hosts',
        typed_config: { '@type': 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate' },
      },
    ],
    host_selection_retry_max_attempts: 5,
  };
}

/** Istio's retry.ConvertPolicy: unset -> default; attempts <= 0 -> none; else default overridden. */
export function retryPolicy(retries: HTTPRetry | undefined): Json | undefined {
  const out = defaultRetryPolicy();
  if (!retries) return out;
  if (!retries.attempts || retries.attempts <= 0) return undefined;
  out.num_retries = retries.attempts;
  if (retries.retryOn) {
    const codes: number[] = [];
    const parts: string[] = [];
    for (const raw of retries.retryOn.split(',')) {
      const part = raw.trim();
      if (!part) continue;
      if (/^\d{3}$/.test(part)) codes.push(Number(part));
      else parts.push(part);
    }
    let retryOn = parts.join(',');
    if (codes.length > 0 && !retryOn.includes('retriable-status-codes')) retryOn += retryOn ? ',retriable-status-codes' : 'retriable-status-codes';
    out.retry_on = retryOn;
    if (codes.length > 0) out.retriable_status_codes = codes;
    else delete out.retriable_status_codes;
  }
  if (retries.perTryTimeout) out.per_try_timeout = envoyDuration(retries.perTryTimeout);
  const extra = retries as HTTPRetry & { retryIgnorePreviousHosts?: boolean; backoff?: string };
  // retryIgnorePreviousHosts false: retries may land on a host already tried.
  if (extra.retryIgnorePreviousHosts === false) {
    delete out.retry_host_predicate;
    delete out.host_selection_retry_max_attempts;
  }
  if (extra.backoff) out.retry_back_off = { base_interval: envoyDuration(extra.backoff) };
  if (retries.retryRemoteLocalities) {
    // Retries go to other priorities (with locality failover: other localities) first.
    out.retry_priority = {
      name: 'envoy.retry_priorities.previous_priorities',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig',
        update_frequency: retries.attempts,
      },
    };
  }
  return out;
}

/** Normalizes a VirtualService gateway reference to `ns/name` (or `mesh`). */
export function gatewayKey(ref: string, vsNamespace: string): string {
  if (ref === 'mesh') return ref;
  return ref.includes('/') ? ref : `${vsNamespace}/${ref}`;
}

/** Istio's GetDestinationCluster: explicit port, else the service's only port, else the listener port. */
export function destinationCluster(ctx: RouteContext, dest: Destination, vsNamespace: string): { cluster: string; host: string; port: number } {
  const host = toFqdn(dest.host, vsNamespace, ctx.scope.mesh.domainSuffix);
  const svc = ctx.scope.snapshot.registry.services.get(host);
  let port = ctx.listenerPort;
  if (dest.port?.number) port = dest.port.number;
  else if (svc && svc.ports.length === 1) port = svc.ports[0].port;
  return { cluster: outboundClusterName(host, port, dest.subset ?? ''), host, port };
}

/** The hash_policy for a destination whose DestinationRule asks for consistent hashing. */
function hashPolicyFor(ctx: RouteContext, host: string, port: number, subsetName: string | undefined): Json[] | undefined {
  const svc = ctx.scope.snapshot.registry.services.get(host);
  const dr = findDestinationRule(ctx.scope, host, svc?.namespace ?? ctx.scope.proxy.namespace);
  if (!dr) return undefined;
  const subset = subsetName ? findSubset(dr.spec, subsetName) : undefined;
  const ch = effectivePolicy(dr.spec, port, subset).loadBalancer?.consistentHash;
  if (!ch) return undefined;
  if (ch.httpHeaderName) return [{ header: { header_name: ch.httpHeaderName } }];
  if (ch.httpCookie) {
    return [
      {
        cookie: {
          name: ch.httpCookie.name,
          ...(ch.httpCookie.path ? { path: ch.httpCookie.path } : {}),
          ...(ch.httpCookie.ttl ? { ttl: envoyDuration(ch.httpCookie.ttl) } : {}),
        },
      },
    ];
  }
  if (ch.useSourceIp) return [{ connection_properties: { source_ip: true } }];
  if (ch.httpQueryParameterName) return [{ query_parameter: { name: ch.httpQueryParameterName } }];
  return undefined;
}

/** Whether a match condition applies to this proxy and port (Istio filters these per proxy). */
function matchApplies(ctx: RouteContext, m: HTTPMatchRequest, vsNamespace: string): boolean {
  if (m.port !== undefined && m.port !== ctx.listenerPort) return false;
  if (m.sourceLabels && !labelsMatch(m.sourceLabels, ctx.scope.proxy.labels)) return false;
  if (m.sourceNamespace && m.sourceNamespace !== ctx.scope.proxy.namespace) return false;
  if (m.gateways && m.gateways.length > 0) {
    if (!m.gateways.some((g) => ctx.gateways.includes(gatewayKey(g, vsNamespace)))) return false;
  }
  return true;
}

/** Istio's TranslateRouteMatch. */
export function translateRouteMatch(m: HTTPMatchRequest | undefined): Json {
  const out: Json = {};
  const uri = m?.uri;
  if (uri?.exact !== undefined) out.path = uri.exact;
  else if (uri?.prefix !== undefined) out.prefix = uri.prefix;
  else if (uri?.regex !== undefined) out.safe_regex = { regex: uri.regex };
  else out.prefix = '/';
  if (m?.ignoreUriCase) out.case_sensitive = false;
  const headers: Json[] = [];
  // Header names are case-insensitive: lower-cased, then sorted for a deterministic order.
  const lower = (o: Record<string, StringMatch> | undefined) => sortedEntries(Object.fromEntries(sortedEntries(o).map(([k, v]) => [k.toLowerCase(), v])));
  for (const [name, sm] of lower(m?.headers)) headers.push(headerMatcher(name, sm));
  for (const [name, sm] of lower(m?.withoutHeaders)) headers.push(headerMatcher(name, sm, true));
  if (m?.method) headers.push(headerMatcher(':method', m.method));
  if (m?.authority) headers.push(headerMatcher(':authority', m.authority));
  if (m?.scheme) headers.push(headerMatcher(':scheme', m.scheme));
  if (headers.length) out.headers = headers;
  const query: Json[] = [];
  for (const [name, sm] of sortedEntries(m?.queryParams)) {
    const matcher = stringMatcher(sm);
    query.push(matcher ? { name, string_match: matcher } : { name, present_match: true });
  }
  if (query.length) out.query_parameters = query;
  return out;
}

function isCatchAllMatch(m: HTTPMatchRequest | undefined): boolean {
  if (!m) return true;
  const keys = Object.keys(m).filter((k) => k !== 'name' && (m as Record<string, unknown>)[k] !== undefined);
  if (keys.length === 0) return true;
  return keys.length === 1 && keys[0] === 'uri' && (m.uri?.prefix === '/' || m.uri?.regex === '*');
}

/**
 * Compiles one VirtualService's `http` routes for a route table: one Envoy route per applicable
 * match (in order), stopping after a catch-all as Istio does.
 */
export function buildVirtualServiceRoutes(ctx: RouteContext, vs: VirtualServiceResource): Json[] {
  const out: Json[] = [];
  const ns = vs.metadata.namespace;
  const rules = vs.spec.http ?? [];
  for (let i = 0; i < rules.length; i++) {
    const http = rules[i];
    if (ctx.proxyless && (http.redirect || http.directResponse)) continue; // gRPC rejects non-route actions
    // Delegation is not supported yet; a rule with nowhere to send traffic is invalid in Istio.
    if (http.delegate || (!http.redirect && !http.directResponse && !(http.route ?? []).some((d) => d.destination))) continue;
    const matches: { m: HTTPMatchRequest | undefined; j?: number }[] =
      http.match && http.match.length > 0 ? http.match.map((m, j) => ({ m, j })).filter(({ m }) => matchApplies(ctx, m, ns)) : [{ m: undefined }];
    if (matches.length === 0) continue;
    for (const { m, j } of matches) out.push(translateRoute(ctx, vs, http, m, { http: i, match: j }));
    if (matches.some(({ m }) => isCatchAllMatch(m))) break;
  }
  return out;
}

/** Metadata namespace of the VirtualService rule a route came from (see configMetadata). */
export const ROUTE_ORIGIN_METADATA = 'weft';

/**
 * Istio's route metadata (`istio.config`: the VirtualService's config path), and Weft's
 * `weft: {http_index, match_index}`: which `http[i].match[j]` of it the route is, so `weft route`
 * and operators reading a config dump can name the rule without re-deriving the translation.
 */
function configMetadata(vs: VirtualServiceResource, at: { http: number; match?: number }): Json {
  return {
    filter_metadata: {
      istio: { config: `/apis/networking.istio.io/v1alpha3/namespaces/${vs.metadata.namespace}/virtual-service/${vs.metadata.name}` },
      [ROUTE_ORIGIN_METADATA]: { http_index: at.http, ...(at.match !== undefined ? { match_index: at.match } : {}) },
    },
  };
}

/** Istio's translateRoute for one HTTPRoute and one of its match conditions. */
function translateRoute(ctx: RouteContext, vs: VirtualServiceResource, http: HTTPRoute, m: HTTPMatchRequest | undefined, at: { http: number; match?: number }): Json {
  const name = http.name && m?.name ? `${http.name}.${m.name}` : (http.name ?? m?.name);
  const route: Json = { ...(name ? { name } : {}), match: translateRouteMatch(m), metadata: configMetadata(vs, at) };
  const ns = vs.metadata.namespace;
  const perFilter: Json = {};
  appendHeaders(route, headerMutations(http.headers?.request), headerMutations(http.headers?.response));
  if (http.redirect) {
    route.redirect = redirectAction(http.redirect, ctx.listenerPort);
  } else if (http.directResponse) {
    const body = http.directResponse.body;
    route.direct_response = {
      status: http.directResponse.status,
      ...(body?.string !== undefined ? { body: { inline_string: body.string } } : {}),
      ...(body?.bytes !== undefined ? { body: { inline_bytes: body.bytes } } : {}),
    };
  } else {
    route.route = routeAction(ctx, http, ns, route);
  }
  if (http.fault) {
    const fault = faultConfig(http.fault);
    if (fault) perFilter[FILTER.Fault] = fault;
  }
  if (http.corsPolicy && !ctx.proxyless) perFilter[FILTER.Cors] = corsPolicy(http.corsPolicy);
  if (Object.keys(perFilter).length) route.typed_per_filter_config = perFilter;
  return route;
}

function appendHeaders(target: Json, req: { add: Json[]; remove: string[] }, resp: { add: Json[]; remove: string[] }): void {
  const push = (field: string, values: unknown[]) => {
    if (values.length === 0) return;
    target[field] = [...((target[field] as unknown[]) ?? []), ...values];
  };
  push('request_headers_to_add', req.add);
  push('request_headers_to_remove', req.remove);
  push('response_headers_to_add', resp.add);
  push('response_headers_to_remove', resp.remove);
}

const REDIRECT_CODES: Record<number, string> = {
  301: 'MOVED_PERMANENTLY',
  302: 'FOUND',
  303: 'SEE_OTHER',
  307: 'TEMPORARY_REDIRECT',
  308: 'PERMANENT_REDIRECT',
};

/** Istio's applyRedirect. */
function redirectAction(r: HTTPRedirect, listenerPort: number): Json {
  const out: Json = {};
  if (r.authority) out.host_redirect = r.authority;
  if (r.uri) out.path_redirect = r.uri;
  if (r.scheme) out.scheme_redirect = r.scheme;
  if (r.port) out.port_redirect = r.port;
  else if (r.derivePort === 'FROM_REQUEST_PORT') out.port_redirect = listenerPort;
  out.response_code = REDIRECT_CODES[r.redirectCode ?? 301] ?? 'MOVED_PERMANENTLY';
  return out;
}

function routeAction(ctx: RouteContext, http: HTTPRoute, vsNamespace: string, route: Json): Json {
  const action: Json = {};
  const dests = http.route ?? [];
  if (dests.length === 1) {
    const d = destinationCluster(ctx, dests[0].destination, vsNamespace);
    action.cluster = d.cluster;
    // Destination-level header operations fold into the route for a single destination.
    appendHeaders(route, headerMutations(dests[0].headers?.request), headerMutations(dests[0].headers?.response));
    const hash = hashPolicyFor(ctx, d.host, d.port, dests[0].destination.subset);
    if (hash) action.hash_policy = hash;
  } else {
    action.weighted_clusters = { clusters: weightedClusters(ctx, dests, vsNamespace) };
  }
  const timeout = http.timeout ? envoyDuration(http.timeout) : '0s';
  action.timeout = timeout;
  // Istio still sets the deprecated max_grpc_timeout to the route timeout.
  action.max_grpc_timeout = timeout;
  const retry = retryPolicy(http.retries);
  if (retry) action.retry_policy = retry;
  const mirrors = mirrorPolicies(ctx, http, vsNamespace);
  if (mirrors.length) action.request_mirror_policies = mirrors;
  if (http.rewrite?.uriRegexRewrite) {
    action.regex_rewrite = { pattern: { regex: http.rewrite.uriRegexRewrite.match }, substitution: http.rewrite.uriRegexRewrite.rewrite };
  } else if (http.rewrite?.uri !== undefined) {
    action.prefix_rewrite = http.rewrite.uri;
  }
  if (http.rewrite?.authority) action.host_rewrite_literal = http.rewrite.authority;
  return action;
}

/** Istio skips zero-weight destinations when a route has several. */
function weightedClusters(ctx: RouteContext, dests: HTTPRouteDestination[], vsNamespace: string): Json[] {
  const out: Json[] = [];
  for (const d of dests) {
    if (!d.weight) continue;
    const { cluster } = destinationCluster(ctx, d.destination, vsNamespace);
    const entry: Json = { name: cluster, weight: d.weight };
    appendHeaders(entry, headerMutations(d.headers?.request), headerMutations(d.headers?.response));
    out.push(entry);
  }
  return out;
}

/** Istio's mirror translation: `mirror` + mirrorPercentage (default 100%), and `mirrors`. */
function mirrorPolicies(ctx: RouteContext, http: HTTPRoute, vsNamespace: string): Json[] {
  const out: Json[] = [];
  const policy = (dest: Destination, fraction: Json | undefined) => {
    if (!fraction) return;
    out.push({ cluster: destinationCluster(ctx, dest, vsNamespace).cluster, runtime_fraction: { default_value: fraction } });
  };
  if (http.mirror) {
    let fraction: Json | undefined;
    if (http.mirrorPercentage) fraction = (http.mirrorPercentage.value ?? 0) > 0 ? fractionalPercent(http.mirrorPercentage) : undefined;
    else if (http.mirrorPercent !== undefined) fraction = http.mirrorPercent > 0 ? integerPercent(http.mirrorPercent) : undefined;
    else fraction = { numerator: 100, denominator: 'HUNDRED' };
    policy(http.mirror, fraction);
  }
  for (const m of http.mirrors ?? []) {
    const fraction = m.percentage
      ? (m.percentage.value ?? 0) > 0
        ? fractionalPercent(m.percentage)
        : undefined
      : { numerator: 100, denominator: 'HUNDRED' };
    policy(m.destination, fraction);
  }
  return out;
}

/** Istio's translateFault; exponential delays and non-HTTP aborts beyond grpcStatus are dropped. */
function faultConfig(f: HTTPFaultInjection): Json | undefined {
  const out: Json = { '@type': TYPE.Fault };
  if (f.delay?.fixedDelay) {
    out.delay = {
      fixed_delay: envoyDuration(f.delay.fixedDelay),
      percentage: f.delay.percentage ? fractionalPercent(f.delay.percentage) : integerPercent(f.delay.percent),
    };
  }
  if (f.abort && (f.abort.httpStatus !== undefined || f.abort.grpcStatus !== undefined)) {
    const abort: Json = {
      // Envoy reads an unset percentage as 0%; spelled out because gRPC rejects it unset.
      percentage: f.abort.percentage ? fractionalPercent(f.abort.percentage) : { numerator: 0, denominator: 'HUNDRED' },
    };
    if (f.abort.httpStatus !== undefined) abort.http_status = f.abort.httpStatus;
    else abort.grpc_status = grpcStatusCode(f.abort.grpcStatus as string);
    out.abort = abort;
  }
  return out.delay || out.abort ? out : undefined;
}

const GRPC_STATUS = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',
  'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE',
  'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
];

function grpcStatusCode(name: string): number {
  const i = GRPC_STATUS.indexOf(name.toUpperCase());
  return i >= 0 ? i : 2;
}

/** Istio's TranslateCORSPolicy (per-route envoy.filters.http.cors CorsPolicy). */
function corsPolicy(c: CorsPolicy): Json {
  const out: Json = { '@type': TYPE.CorsPolicy };
  if (c.allowOrigins) out.allow_origin_string_match = c.allowOrigins.map((m) => stringMatcher(m)).filter(Boolean);
  else if (c.allowOrigin) out.allow_origin_string_match = c.allowOrigin.map((exact) => ({ exact }));
  if (c.allowMethods?.length) out.allow_methods = c.allowMethods.join(',');
  if (c.allowHeaders?.length) out.allow_headers = c.allowHeaders.join(',');
  if (c.exposeHeaders?.length) out.expose_headers = c.exposeHeaders.join(',');
  if (c.maxAge) out.max_age = String(durationSeconds(c.maxAge));
  if (c.allowCredentials !== undefined) out.allow_credentials = c.allowCredentials;
  out.filter_enabled = { default_value: { numerator: 100, denominator: 'HUNDRED' } };
  out.forward_not_matching_preflights = c.unmatchedPreflights !== 'IGNORE';
  return out;
}

/** The route of a service without a VirtualService: everything to `outbound|port||host`. */
export function defaultRoute(ctx: RouteContext, service: MeshService, port: number): Json {
  const cluster = outboundClusterName(service.hostname, port);
  const hash = hashPolicyFor(ctx, service.hostname, port, undefined);
  return {
    name: DEFAULT_ROUTE_NAME,
    match: { prefix: '/' },
    route: {
      cluster,
      timeout: '0s',
      retry_policy: defaultRetryPolicy(),
      ...(hash ? { hash_policy: hash } : {}),
      max_grpc_timeout: '0s',
    },
    decorator: { operation: `${service.hostname}:${port}/*` },
  };
}

/**
 * Istio's generateVirtualHostDomains for a sidecar. With `withPort` false (per-port route
 * configs, which set ignore_port_in_host_matching) names come without ports; with `withPort` true
 * (`http_proxy`) each name also appears as `name:port`. Same-namespace Kubernetes services add
 * `name`, `name.ns.svc`, `name.ns`; other namespaces `name.ns`, `name.ns.svc`; then addresses.
 */
export function virtualHostDomains(service: MeshService, port: number, proxyNamespace: string, domainSuffix: string, withPort: boolean): string[] {
  const out: string[] = [];
  const add = (d: string) => {
    out.push(d);
    if (withPort) out.push(`${d}:${port}`);
  };
  add(service.hostname);
  const tail = `.svc.${domainSuffix}`;
  if (service.hostname.endsWith(tail)) {
    const base = service.hostname.slice(0, -tail.length); // name.ns
    const dot = base.indexOf('.');
    if (dot > 0) {
      const name = base.slice(0, dot);
      const ns = base.slice(dot + 1);
      if (ns === proxyNamespace) {
        add(name);
        add(`${base}.svc`);
        add(base);
      } else {
        add(base);
        add(`${base}.svc`);
      }
    }
  }
  for (const a of service.addresses) if (a && a !== '0.0.0.0' && !a.includes('/')) add(a);
  return out;
}

/** Istio's buildCatchAllVirtualHost: PassthroughCluster (ALLOW_ANY) or a 502 (REGISTRY_ONLY). */
export function catchAllVirtualHost(scope: ProxyScope): Json {
  if (scope.outboundTrafficPolicy === 'ALLOW_ANY') {
    return {
      name: ALLOW_ANY_VHOST,
      domains: ['*'],
      routes: [
        {
          name: ALLOW_ANY_VHOST,
          match: { prefix: '/' },
          route: { cluster: PASSTHROUGH_CLUSTER, timeout: '0s', max_grpc_timeout: '0s' },
        },
      ],
      include_request_attempt_count: true,
    };
  }
  return {
    name: BLOCK_ALL_VHOST,
    domains: ['*'],
    routes: [{ name: BLOCK_ALL_VHOST, match: { prefix: '/' }, direct_response: { status: 502 } }],
    include_request_attempt_count: true,
  };
}

/** Service ports routed through an HCM on a sidecar: HTTP family, plus UNKNOWN (sniffed). */
export function isRoutedHttpPort(protocol: Protocol): boolean {
  return isHttpProtocol(protocol) || protocol === 'UNKNOWN';
}

/** Virtual hosts for every HTTP service port of the sidecar, keyed by port. */
function serviceVirtualHosts(scope: ProxyScope, withPort: boolean): Map<number, Json[]> {
  const byPort = new Map<number, Json[]>();
  for (const service of scope.services) {
    const vs = meshVirtualServiceFor(scope, service.hostname, 'http');
    for (const p of service.ports) {
      if (!isRoutedHttpPort(p.protocol)) continue;
      const ctx: RouteContext = { scope, listenerPort: p.port, gateways: ['mesh'], proxyless: false };
      const routes = vs ? buildVirtualServiceRoutes(ctx, vs) : [defaultRoute(ctx, service, p.port)];
      // Istio: a VirtualService whose rules all filtered out for this proxy leaves no virtual host.
      if (routes.length === 0) continue;
      const domains = virtualHostDomains(service, p.port, scope.proxy.namespace, scope.mesh.domainSuffix, withPort);
      const list = byPort.get(p.port) ?? [];
      list.push({ name: hostPort(service.hostname, p.port), domains, routes, include_request_attempt_count: true });
      byPort.set(p.port, list);
    }
  }
  return byPort;
}

/** Envoy rejects a domain that appears in two virtual hosts: the first (by name order) keeps it. */
function dedupeDomains(vhosts: Json[]): Json[] {
  const seen = new Set<string>();
  const out: Json[] = [];
  for (const vh of vhosts) {
    const domains = (vh.domains as string[]).filter((d) => {
      const key = d.toLowerCase();
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    if (domains.length > 0) out.push({ ...vh, domains });
  }
  return out;
}

function byName(a: Json, b: Json): number {
  const x = a.name as string;
  const y = b.name as string;
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * The sidecar's outbound route configurations: one per HTTP service port, named by the port
 * ("9080", ports ignored in host matching), and `http_proxy` with every HTTP service port (names
 * with `:port`; port 80 also bare), used by the 15001 HTTP listener. Each ends with the catch-all
 * virtual host of the outbound traffic policy.
 */
export function buildOutboundRouteConfigurations(scope: ProxyScope): EnvoyResource[] {
  const out: EnvoyResource[] = [];
  const perPort = serviceVirtualHosts(scope, false);
  for (const port of [...perPort.keys()].sort((a, b) => a - b)) {
    const vhosts = dedupeDomains([...(perPort.get(port) as Json[])].sort(byName));
    out.push({
      name: outboundRouteConfigName(port),
      virtual_hosts: [...vhosts, catchAllVirtualHost(scope)],
      validate_clusters: false,
      ignore_port_in_host_matching: true,
    });
  }
  const all: Json[] = [];
  for (const [port, vhosts] of serviceVirtualHosts(scope, true)) {
    for (const vh of vhosts) {
      // Istio's mergeAllVirtualHosts: off port 80, only `host:port` names can select the service.
      const domains = port === 80 ? (vh.domains as string[]) : (vh.domains as string[]).filter((d) => d.includes(':'));
      all.push({ ...vh, domains });
    }
  }
  out.push({
    name: HTTP_PROXY_ROUTE_CONFIG,
    virtual_hosts: [...dedupeDomains(all.sort(byName)), catchAllVirtualHost(scope)],
    validate_clusters: false,
  });
  return out;
}

/** Istio's inbound route: everything to the inbound cluster, no timeout. */
export function inboundRouteConfiguration(name: string, cluster: string, port: number): Json {
  return {
    name,
    virtual_hosts: [
      {
        name: `inbound|http|${port}`,
        domains: ['*'],
        routes: [
          {
            name: DEFAULT_ROUTE_NAME,
            match: { prefix: '/' },
            route: { cluster, timeout: '0s', max_grpc_timeout: '0s' },
            decorator: { operation: `${cluster}/*` },
          },
        ],
      },
    ],
    validate_clusters: false,
  };
}

