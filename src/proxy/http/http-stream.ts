// One HTTP request through the HTTP connection manager: authority and path (including
// forward-proxy absolute URIs, path normalization), x-request-id, route selection, the HTTP
// filter chain (jwt_authn, rbac, fault, cors, router) and the route action (forward, redirect,
// direct response); then stats and the access log record. Forwarding itself is in forwarder.ts.
import { randomUUID } from 'node:crypto';
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import type {
  CompiledRoute,
  CompiledRouteConfig,
  CompiledVirtualHost,
  CorsSettings,
  DownstreamTlsInfo,
  FaultSettings,
  ForwardAction,
  HttpConnectionManagerConfig,
  HttpFilterConfig,
  RedirectAction,
  RequestView,
  WeightedClusterChoice,
} from '../config/model';
import { requestHeader } from '../config/model';
import { findVirtualHost } from '../config/route-config';
import type { AuthzSubject } from '../config/rbac';
import type { JwksCache } from '../authn/jwks-cache';
import type { AccessLogWriters, RequestRecord } from '../access-log';
import { formatAccessLog, formatJsonAccessLog } from '../access-log';
import type { Logger } from '../../log/logger';
import type { ProxyStats, HttpStats } from '../stats';
import type { ClusterManager } from '../upstream/cluster-manager';
import type { Host } from '../upstream/host';
import type { ProxyTelemetry } from '../telemetry/proxy-telemetry';
import type { Exchange } from './exchange';
import { Forwarder, rewritePrefix } from './forwarder';
import { applyResponseEdits, setHeader } from './header-mutation';
import { applyJwtAuthn } from './jwt-authn-filter';
import { applyRbac } from './rbac-filter';
import { GrpcStatus, httpToGrpcStatus, isGrpcRequest, sendLocalReply, type ResponseFlag } from './local-reply';
import { filterOverride, parseQuery, selectRoute } from './route-matching';
import type { RequestSpan, Tracer } from '../tracing/tracer';

/**
 * What an HTTP stream needs from the running proxy. Deliberately no registry of streams in
 * flight: a long-lived collection written per request keeps young objects alive across
 * scavenges (measured: 10x the GC time). Shutdown reaches streams through their sockets.
 */
export interface HttpRuntime {
  clusters: ClusterManager;
  routeConfig(name: string): CompiledRouteConfig | undefined;
  stats: ProxyStats;
  accessLogs: AccessLogWriters;
  onRequest?: (record: RequestRecord) => void;
  random: () => number;
  logger: Logger;
  /** Faults in progress (for max_active_faults). */
  activeFaults: { count: number };
  /** Remote JWKS of jwt_authn providers, shared by every config generation (created on first use). */
  jwks?: JwksCache;
  /** Istio metrics and metadata exchange; absent when telemetry is off. */
  telemetry?: ProxyTelemetry;
  /** Spans for HCMs with `tracing`; without it they do not trace. */
  tracer?: Tracer;
}

export class HttpStream implements RequestView {
  // RequestView
  readonly method: string;
  authority: string;
  path: string;
  readonly scheme: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly remoteAddress: string;
  readonly tls: DownstreamTlsInfo | undefined;
  readonly destinationPort: number;
  private pathOnlyCache: string | undefined;
  private queryCache: Map<string, string> | undefined;
  /** What path normalization asks for (path_with_escaped_slashes_action). */
  private readonly pathAction: PathAction;
  /** Dynamic metadata per filter namespace (Envoy's StreamInfo dynamic metadata); null until written. */
  dynamicMetadata: Map<string, Record<string, unknown>> | null = null;
  /** The request as RBAC matchers see it, built by the first RBAC filter. */
  authzSubject?: AuthzSubject;
  private clientAddressCache: string | undefined;

  readonly startTime = Date.now();
  readonly startHr = performance.now();
  readonly httpStats: HttpStats;
  readonly grpc: boolean;
  readonly flags: ResponseFlag[] = [];
  status = 0;
  details = '';
  done = false;

  rc?: CompiledRouteConfig;
  vh?: CompiledVirtualHost;
  route?: CompiledRoute;
  choice?: WeightedClusterChoice;
  clusterName?: string;
  /** Response headers added by filters (CORS) and hash policies (cookies). */
  extraResponseHeaders: string[] | null = null;
  upstreamHost?: string;
  attempts = 0;
  upstreamServiceTimeMs?: number;
  bodyBytes = 0;
  /** The request's span, when its HCM traces. */
  span: RequestSpan | undefined = undefined;
  // For telemetry/: peer metadata headers seen each way, the endpoint that answered, gRPC status.
  downstreamPeer: string | undefined = undefined;
  upstreamPeer: string | undefined = undefined;
  upstreamEndpoint: Host | undefined = undefined;
  grpcStatus: number | undefined = undefined;
  upstreamTransportFailureReason: string | undefined = undefined;
  private forwarder: Forwarder | null = null;
  private faultTimer: NodeJS.Timeout | null = null;
  private faultActive = false;
  private readonly originalPath: string;

  constructor(
    readonly exchange: Exchange,
    readonly hcm: HttpConnectionManagerConfig,
    readonly runtime: HttpRuntime,
    readonly listenerName: string,
  ) {
    this.method = exchange.method;
    this.scheme = exchange.scheme;
    this.headers = exchange.headers;
    this.remoteAddress = exchange.remoteAddress;
    this.tls = exchange.tls;
    this.destinationPort = exchange.localPort;
    this.httpStats = runtime.stats.http(hcm.statPrefix);
    this.grpc = isGrpcRequest(exchange.headers);
    let authority = exchange.rawAuthority;
    let path = exchange.target;
    if (path.charCodeAt(0) !== 47 /* / */ && path !== '*') {
      // Absolute-form request target (a forward-proxy request, e.g. via HTTP_PROXY): the URI's
      // authority wins over the Host header, as RFC 9112 3.2.2 and Envoy say.
      const parsed = splitAbsoluteUri(path);
      if (parsed) {
        authority = parsed.authority;
        path = parsed.path;
      }
    }
    this.authority = authority.toLowerCase();
    this.originalPath = path;
    const sanitized = sanitizePath(path, hcm);
    this.pathAction = sanitized.action;
    this.path = sanitized.path;
  }

  /** Replaces :path (a filter removed a query parameter); matchers see the new one. */
  setPath(path: string): void {
    this.path = path;
    this.pathOnlyCache = undefined;
    this.queryCache = undefined;
  }

  // ---- dynamic metadata ----
  metadata(filter: string): Record<string, unknown> | undefined {
    return this.dynamicMetadata?.get(filter);
  }

  /** Merges `fields` into the namespace `filter` (Envoy's setDynamicMetadata merges too). */
  setMetadata(filter: string, fields: Record<string, unknown>): void {
    const all = this.dynamicMetadata ?? (this.dynamicMetadata = new Map());
    const existing = all.get(filter);
    if (existing) Object.assign(existing, fields);
    else all.set(filter, { ...fields });
  }

  /**
   * The trusted client address (Envoy's remote address, what RBAC remote_ip matches): with
   * use_remote_address the peer, or the xff_num_trusted_hops-th x-forwarded-for entry from the
   * right; without it the last entry after skipping xff_num_trusted_hops; the peer when
   * x-forwarded-for has no such (valid) entry.
   */
  clientAddress(): string {
    if (this.clientAddressCache !== undefined) return this.clientAddressCache;
    const hops = this.hcm.xffNumTrustedHops;
    let address = this.remoteAddress;
    if (!this.hcm.useRemoteAddress || hops > 0) {
      const raw = this.headers['x-forwarded-for'];
      if (raw !== undefined) {
        const list = (Array.isArray(raw) ? raw.join(',') : raw).split(',');
        const index = list.length - (this.hcm.useRemoteAddress ? hops : hops + 1);
        const entry = index >= 0 ? list[index].trim() : '';
        if (entry && net.isIP(entry)) address = entry;
      }
    }
    this.clientAddressCache = address;
    return address;
  }

  // ---- RequestView ----
  pathOnly(): string {
    if (this.pathOnlyCache === undefined) {
      const q = this.path.indexOf('?');
      this.pathOnlyCache = q < 0 ? this.path : this.path.slice(0, q);
    }
    return this.pathOnlyCache;
  }

  query(): ReadonlyMap<string, string> {
    if (!this.queryCache) this.queryCache = parseQuery(this.path);
    return this.queryCache;
  }

  header(name: string): string | undefined {
    return requestHeader(this, name);
  }

  // ---- lifecycle ----
  start(): void {
    const s = this.httpStats;
    s.downstream_rq_total++;
    s.downstream_rq_active++;
    if (this.exchange.protocol === 'HTTP/2') s.downstream_rq_http2_total++;
    else s.downstream_rq_http1_total++;
    this.exchange.onAbort(() => this.onDownstreamAbort());

    if (this.hcm.generateRequestId) {
      const id = this.headers['x-request-id'];
      if (id === undefined || id === '') this.headers['x-request-id'] = randomUUID();
    }
    if (this.hcm.tracing && this.runtime.tracer) this.span = this.runtime.tracer.startRequest(this.headers, this.hcm.tracing, this.hcm.trafficDirection);
    if (this.pathAction !== 'continue') {
      // Envoy: escaped slashes rejected (or a redirect a gRPC client cannot follow) is a 400; a
      // redirect sends the client to the unescaped, normalized path.
      if (this.pathAction === 'reject' || this.grpc) {
        s.downstream_rq_failed_path_normalization++;
        this.localReply(400, { details: 'path_normalization_failed' });
      } else {
        s.downstream_rq_redirected_with_normalized_path++;
        this.localReply(307, { details: 'path_normalization_failed', headers: ['location', this.path] });
      }
      return;
    }
    this.matchRoute();
    // The filters run with or without a route (Envoy: the router answers 404 NR), so an
    // authorization filter is never skipped because no route matched.
    this.runFilters(0);
  }

  /**
   * Virtual host, route and cluster for the request as it is now. Run again when a filter
   * changed what routing sees (jwt_authn clear_route_cache): Envoy's clearRouteCache().
   */
  matchRoute(): void {
    const rc = this.hcm.inlineRouteConfig ?? (this.hcm.routeConfigName ? this.runtime.routeConfig(this.hcm.routeConfigName) : undefined);
    this.rc = rc;
    const vh = rc ? findVirtualHost(rc, this.authority) : undefined;
    this.vh = vh;
    const route = vh ? selectRoute(vh, this, this.runtime.random) : undefined;
    this.route = route;
    this.choice = undefined;
    this.clusterName = undefined;
    if (!route) return;
    const action = route.action;
    if (action.kind === 'forward') {
      if (action.weighted) {
        const w = action.weighted;
        const target = this.runtime.random() * w.total;
        let i = 0;
        while (i < w.cumulative.length - 1 && w.cumulative[i] <= target) i++;
        this.choice = w.choices[i];
        this.clusterName = this.choice.name;
      } else if (action.cluster) {
        this.clusterName = action.cluster;
      } else if (action.clusterHeader) {
        const v = this.header(action.clusterHeader);
        this.clusterName = v ?? '';
      }
    }
  }

  /** Runs the HTTP filters from index `from`; a filter that stops (delay, async check) resumes here. */
  runFilters(from: number): void {
    const filters = this.hcm.filters;
    for (let i = from; i < filters.length; i++) {
      if (this.done) return;
      const f = filters[i];
      switch (f.kind) {
        case 'fault':
          if (this.applyFault(f, i)) return;
          break;
        case 'cors':
          if (this.applyCors()) return;
          break;
        case 'jwt_authn':
          if (applyJwtAuthn(this, f, i)) return;
          break;
        case 'rbac':
          if (applyRbac(this, f)) return;
          break;
        case 'router':
          this.runAction(f);
          return;
      }
    }
  }

  /** Most specific per-filter config wins: weighted cluster > route > virtual host > filter. */
  private filterSetting<K extends 'fault' | 'cors'>(kind: K): (K extends 'fault' ? FaultSettings : CorsSettings) | null | undefined {
    type T = (K extends 'fault' ? FaultSettings : CorsSettings) | null | undefined;
    return filterOverride(kind, this.choice, this.route, this.vh) as T;
  }

  /** Returns true when the stream stops here (delayed or aborted). */
  private applyFault(filter: Extract<HttpFilterConfig, { kind: 'fault' }>, index: number): boolean {
    const override = this.filterSetting('fault');
    const settings = override === undefined ? filter.settings : override;
    if (!settings) return false;
    if (settings.upstreamCluster && settings.upstreamCluster !== this.clusterName) return false;
    const lookup = (name: string) => this.header(name);
    for (const h of settings.headers) if (!h.test(lookup)) return false;
    const active = this.runtime.activeFaults;
    if (settings.maxActiveFaults !== undefined && active.count >= settings.maxActiveFaults) return false;
    const random = this.runtime.random;
    const delay = settings.delay && settings.delay.probability > 0 && random() < settings.delay.probability ? settings.delay : undefined;
    const abort = settings.abort && settings.abort.probability > 0 && random() < settings.abort.probability ? settings.abort : undefined;
    const doAbort = () => {
      if (!abort) return false;
      this.httpStats.fault_aborts_injected++;
      const status = abort.httpStatus ?? 200;
      this.localReply(status, {
        flag: 'FI',
        details: 'fault_filter_abort',
        body: 'fault filter abort',
        grpcStatus: abort.grpcStatus,
      });
      return true;
    };
    if (delay) {
      this.httpStats.fault_delays_injected++;
      this.flags.push('DI');
      active.count++;
      this.faultActive = true;
      this.faultTimer = setTimeout(() => {
        this.faultTimer = null;
        this.releaseFault();
        if (this.done) return;
        if (!doAbort()) this.runFilters(index + 1);
      }, delay.fixedDelayMs);
      return true;
    }
    return doAbort();
  }

  private releaseFault(): void {
    if (this.faultActive) {
      this.faultActive = false;
      this.runtime.activeFaults.count--;
    }
  }

  /** CORS (Envoy's cors filter). Returns true when a preflight was answered here. */
  private applyCors(): boolean {
    const policy = this.filterSetting('cors');
    if (!policy) return false;
    const origin = this.header('origin');
    if (!origin) return false;
    if (policy.enabled < 1 && this.runtime.random() >= policy.enabled) return false;
    const allowed = policy.allowOrigin.some((m) => m(origin));
    const preflight = this.method === 'OPTIONS' && this.headers['access-control-request-method'] !== undefined;
    if (preflight) {
      if (!allowed) {
        if (policy.forwardNotMatchingPreflights) return false;
        this.localReply(200, { details: 'cors_response' });
        return true;
      }
      this.httpStats.cors_preflight++;
      const h = ['access-control-allow-origin', origin];
      if (policy.allowCredentials) h.push('access-control-allow-credentials', 'true');
      if (policy.allowMethods) h.push('access-control-allow-methods', policy.allowMethods);
      if (policy.allowHeaders) h.push('access-control-allow-headers', policy.allowHeaders);
      if (policy.maxAge) h.push('access-control-max-age', policy.maxAge);
      if (policy.allowPrivateNetworkAccess && this.headers['access-control-request-private-network'] === 'true') {
        h.push('access-control-allow-private-network', 'true');
      }
      this.localReply(200, { details: 'cors_response', headers: h });
      return true;
    }
    if (allowed) {
      const h = this.extraResponseHeaders ?? (this.extraResponseHeaders = []);
      h.push('access-control-allow-origin', origin);
      if (policy.allowCredentials) h.push('access-control-allow-credentials', 'true');
      if (policy.exposeHeaders) h.push('access-control-expose-headers', policy.exposeHeaders);
    }
    return false;
  }

  private runAction(router: Extract<HttpFilterConfig, { kind: 'router' }>): void {
    const route = this.route;
    if (!route) {
      this.httpStats.no_route++;
      this.localReply(404, { flag: 'NR', details: this.rc ? 'route_not_found' : 'route_configuration_not_found' });
      return;
    }
    const action = route.action;
    if (action.kind === 'direct') {
      this.httpStats.rq_direct_response++;
      this.localReply(action.status, { details: 'direct_response', body: action.body, rawBody: true });
      return;
    }
    if (action.kind === 'redirect') {
      this.httpStats.rq_redirect++;
      this.localReply(action.status, { details: 'redirect', headers: ['location', this.redirectLocation(action)] });
      return;
    }
    this.forward(action, router.suppressEnvoyHeaders);
  }

  private forward(action: ForwardAction, suppressEnvoyHeaders: boolean): void {
    const name = this.clusterName ?? '';
    const cluster = name ? this.runtime.clusters.get(name) : undefined;
    if (!cluster) {
      this.httpStats.no_cluster++;
      this.localReply(action.clusterNotFoundStatus, { flag: 'NC', details: 'cluster_not_found' });
      return;
    }
    this.forwarder = new Forwarder(this, action, cluster, suppressEnvoyHeaders);
    this.forwarder.start();
  }

  private redirectLocation(a: RedirectAction): string {
    return redirectLocation(a, this, this.route);
  }

  /**
   * Response headers on their way out: route/virtual host/route config edits (most specific
   * first, so the least specific wins on conflicts, Envoy's default), filter additions, server.
   */
  finalizeResponseHeaders(list: string[]): string[] {
    let out = this.runtime.telemetry ? this.runtime.telemetry.onResponseHeaders(this, list) : list;
    const levels = [this.choice?.responseHeaders, this.route?.responseHeaders, this.vh?.responseHeaders, this.rc?.responseHeaders];
    if (this.rc?.mostSpecificHeaderMutationsWins) levels.reverse();
    for (const edits of levels) if (edits) out = applyResponseEdits(out, edits, this);
    if (this.extraResponseHeaders) out.push(...this.extraResponseHeaders);
    const hcm = this.hcm;
    if (hcm.serverHeader === 'overwrite') out = setHeader(out, 'server', hcm.serverName ?? 'weft');
    else if (hcm.serverHeader === 'append-if-absent' && !out.includes('server')) out.push('server', hcm.serverName ?? 'weft');
    if (hcm.alwaysSetRequestIdInResponse) {
      const id = this.headers['x-request-id'];
      if (typeof id === 'string') out = setHeader(out, 'x-request-id', id);
    }
    return out;
  }

  /** A response made by the proxy. Ends the stream. */
  localReply(
    status: number,
    o: { flag?: ResponseFlag; details: string; body?: string | Buffer; headers?: string[]; grpcStatus?: number; rawBody?: boolean },
  ): void {
    if (this.done) return;
    if (o.flag) this.flags.push(o.flag);
    this.details = o.details;
    if (this.exchange.headersSent) {
      this.exchange.reset();
      this.finish(this.status);
      return;
    }
    const headers = this.finalizeResponseHeaders(o.headers ? [...o.headers] : []);
    // gRPC clients get trailers-only replies with a grpc-status; a grpc abort of the fault filter
    // on a non-gRPC request answers 200 as Envoy does.
    const grpc = this.grpc || o.grpcStatus !== undefined;
    if (grpc) this.grpcStatus = o.grpcStatus ?? (o.flag === 'UT' ? GrpcStatus.DEADLINE_EXCEEDED : httpToGrpcStatus(status));
    sendLocalReply(this.exchange, {
      status,
      body: o.body,
      headers,
      grpc,
      grpcStatus: this.grpcStatus,
      head: this.method === 'HEAD',
    });
    this.finish(grpc ? 200 : status);
  }

  private onDownstreamAbort(): void {
    if (this.done) return;
    this.flags.push('DC');
    this.httpStats.downstream_rq_rx_reset++;
    if (this.faultTimer) {
      clearTimeout(this.faultTimer);
      this.faultTimer = null;
      this.releaseFault();
    }
    this.forwarder?.onDownstreamAbort();
    this.finish(this.exchange.headersSent ? this.status : 0);
  }

  /** Records the finished request. Idempotent. */
  finish(status: number): void {
    if (this.done) return;
    this.done = true;
    this.status = status;
    this.releaseFault();
    const s = this.httpStats;
    s.downstream_rq_active--;
    s.downstream_rq_completed++;
    if (status >= 200 && status < 300) s.downstream_rq_2xx++;
    else if (status >= 500) s.downstream_rq_5xx++;
    else if (status >= 400) s.downstream_rq_4xx++;
    else if (status >= 300) s.downstream_rq_3xx++;
    else if (status >= 100) s.downstream_rq_1xx++;
    const stats = this.runtime.stats;
    for (const f of this.flags) stats.flag(f);
    this.runtime.telemetry?.recordHttp(this);
    this.span?.end(this);
    const logs = this.hcm.accessLogs;
    if (logs.length === 0 && !this.runtime.onRequest) return;
    const record = this.record();
    for (const log of logs) {
      const line = log.jsonFormat ? formatJsonAccessLog(record, log.jsonFormat) : formatAccessLog(record, log.format);
      this.runtime.accessLogs.writer(log.path).write(line);
    }
    this.runtime.onRequest?.(record);
  }

  record(): RequestRecord {
    const ua = this.headers['user-agent'];
    const xff = this.headers['x-forwarded-for'];
    const rid = this.headers['x-request-id'];
    return {
      startTime: this.startTime,
      durationMs: performance.now() - this.startHr,
      listener: this.listenerName,
      protocol: this.exchange.protocol,
      method: this.method,
      path: this.originalPath,
      authority: this.authority,
      status: this.status,
      flags: [...this.flags],
      details: this.details,
      routeName: this.route?.name || undefined,
      upstreamCluster: this.clusterName,
      upstreamHost: this.upstreamHost,
      attempts: this.attempts,
      bytesReceived: this.bodyBytes || this.exchange.bytesReceived(),
      bytesSent: this.exchange.bytesSent(),
      requestId: typeof rid === 'string' ? rid : undefined,
      userAgent: typeof ua === 'string' ? ua : undefined,
      forwardedFor: typeof xff === 'string' ? xff : undefined,
      upstreamServiceTimeMs: this.upstreamServiceTimeMs,
      downstreamRemoteAddress: this.remoteAddress,
      downstreamRemotePort: this.exchange.remotePort,
      downstreamLocalAddress: this.exchange.localAddress,
      downstreamLocalPort: this.exchange.localPort,
      requestedServerName: this.tls?.serverName,
      downstreamPeerUriSan: this.tls?.peerUriSans[0],
      upstreamPeerUriSan: this.upstreamEndpoint && this.runtime.telemetry?.upstreamPeerPrincipal(this.upstreamEndpoint),
      upstreamTransportFailureReason: this.upstreamTransportFailureReason,
      rbacAudit: this.dynamicMetadata?.get('envoy.common')?.access_log_hint === true ? true : undefined,
      dynamicMetadata: this.dynamicMetadata ?? undefined,
    };
  }
}

/** The Location of a redirect route for a request (Envoy's redirect action, with its rewrites). */
export function redirectLocation(a: RedirectAction, req: RequestView, route: CompiledRoute | undefined): string {
  const { host: origHost, port: origPort } = splitHostPort(req.authority);
  const scheme = a.scheme ?? req.scheme;
  let host = origHost;
  let port: string | undefined = origPort;
  if (a.host) {
    const h = splitHostPort(a.host);
    host = h.host;
    port = h.port ?? (a.port ? undefined : port);
  }
  if (a.port) port = String(a.port);
  else if (a.scheme && a.scheme !== req.scheme && !a.host) port = undefined; // scheme change drops the old port
  if ((scheme === 'https' && port === '443') || (scheme === 'http' && port === '80')) port = undefined;
  const pathOnly = req.pathOnly();
  const queryIndex = req.path.indexOf('?');
  let query = queryIndex >= 0 ? req.path.slice(queryIndex) : '';
  let path = pathOnly;
  if (a.path) {
    path = a.path;
    if (a.path.includes('?')) query = '';
  } else if (a.prefixRewrite !== undefined && route) {
    path = rewritePrefix(pathOnly, route.path.kind, route.path.value, a.prefixRewrite);
  } else if (a.regexRewrite) {
    path = pathOnly.replace(a.regexRewrite.pattern, a.regexRewrite.substitution);
  }
  if (a.stripQuery) query = '';
  return `${scheme}://${host}${port ? ':' + port : ''}${path}${query}`;
}

export type PathAction = 'continue' | 'reject' | 'redirect';

/**
 * The HCM's path sanitation before any filter or route sees the path, in Envoy's order
 * (ConnectionManagerUtility::maybeNormalizePath): drop a #fragment (Envoy as Istio runs it strips
 * it), then path_with_escaped_slashes_action (%2F and %5C, any case), then normalize_path, then
 * merge_slashes. The query string is never touched.
 */
export function sanitizePath(target: string, hcm: Pick<HttpConnectionManagerConfig, 'normalizePath' | 'mergeSlashes' | 'escapedSlashes'>): { path: string; action: PathAction } {
  let path = target;
  const hash = path.indexOf('#');
  if (hash >= 0) path = path.slice(0, hash);
  if (path.charCodeAt(0) !== 47 /* / */) return { path, action: 'continue' };
  let action: PathAction = 'continue';
  const escaped = hcm.escapedSlashes;
  if (escaped && escaped !== 'keep') {
    const q = path.indexOf('?');
    const only = q >= 0 ? path.slice(0, q) : path;
    if (only.includes('%') && ESCAPED_SLASH.test(only)) {
      if (escaped === 'reject') return { path, action: 'reject' };
      if (escaped === 'redirect') action = 'redirect';
      path = only.replace(ESCAPED_SLASH_ALL, (m) => (m[2] === 'F' || m[2] === 'f' ? '/' : '\\')) + (q >= 0 ? path.slice(q) : '');
    }
  }
  if (hcm.normalizePath || hcm.mergeSlashes) path = normalizePath(path, hcm.normalizePath, hcm.mergeSlashes);
  return { path, action };
}

const ESCAPED_SLASH = /%(2f|5c)/i;
const ESCAPED_SLASH_ALL = /%(2f|5c)/gi;
const ESCAPED_OCTET = /%([0-9a-fA-F]{2})/g;
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/**
 * Envoy's normalize_path (its snapshot of Chromium's path canonicalizer: backslashes are
 * slashes, percent-encoded unreserved characters are decoded, so %2e is a dot, and RFC 3986
 * 5.2.4 dot segments are removed), then merge_slashes. The query string is left alone. Fast
 * path: nothing to do.
 */
export function normalizePath(path: string, dots: boolean, slashes: boolean): string {
  const q = path.indexOf('?');
  let p = q >= 0 ? path.slice(0, q) : path;
  const query = q >= 0 ? path.slice(q) : '';
  if (dots) {
    if (p.includes('\\')) p = p.replace(/\\/g, '/');
    if (p.includes('%')) {
      p = p.replace(ESCAPED_OCTET, (m, hex: string) => {
        const c = String.fromCharCode(parseInt(hex, 16));
        return UNRESERVED.test(c) ? c : m;
      });
    }
    if (p.includes('/.')) {
      const segments = p.split('/');
      const out: string[] = [];
      for (let i = 1; i < segments.length; i++) {
        const seg = segments[i];
        if (seg === '.') continue;
        if (seg === '..') out.pop();
        else out.push(seg);
      }
      const last = segments[segments.length - 1];
      p = '/' + out.join('/');
      // "/a/b/.." and "/a/." name a directory: keep its trailing slash.
      if ((last === '.' || last === '..') && !p.endsWith('/')) p += '/';
    }
  }
  if (slashes && p.includes('//')) p = p.replace(/\/{2,}/g, '/');
  return p + query;
}

/** `http://host:port/p?q` -> authority `host:port`, path `/p?q`. */
export function splitAbsoluteUri(uri: string): { authority: string; path: string; scheme: string } | undefined {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)([^#]*)/.exec(uri);
  if (!m) return undefined;
  let authority = m[2];
  const at = authority.lastIndexOf('@');
  if (at >= 0) authority = authority.slice(at + 1); // drop userinfo
  let path = m[3] || '/';
  if (path[0] === '?') path = '/' + path;
  return { scheme: m[1].toLowerCase(), authority, path };
}

export function splitHostPort(authority: string): { host: string; port?: string } {
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    const host = authority.slice(0, end + 1);
    const rest = authority.slice(end + 1);
    return { host, port: rest.startsWith(':') ? rest.slice(1) : undefined };
  }
  const colon = authority.lastIndexOf(':');
  if (colon > 0 && authority.indexOf(':') === colon) return { host: authority.slice(0, colon), port: authority.slice(colon + 1) };
  return { host: authority };
}
