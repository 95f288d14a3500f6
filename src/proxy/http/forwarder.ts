// The router filter's upstream half: circuit breaking, host selection (with consistent hashing),
// the upstream request with rewritten headers and path, per-try and route timeouts, retries with
// jittered backoff on Envoy's retry_on conditions, mirroring, and Envoy's failure replies.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import type { CompiledRoute, ForwardAction, MirrorPolicy, RequestView, RetryPolicy, WeightedClusterChoice } from '../config/model';
import { combineHashes, murmur3 } from '../upstream/hash';
import type { Host } from '../upstream/host';
import { HOP_BY_HOP, UpstreamFailure as UpstreamFailureImpl, type UpstreamCall, type UpstreamFailure, type UpstreamHandler, type UpstreamRequest } from '../upstream/upstream-call';
import type { UpstreamCluster } from '../upstream/upstream-cluster';
import { applyRequestEdits, getHeader } from './header-mutation';
import type { HttpStream } from './http-stream';
import { splitHostPort } from './http-stream';
import { upstreamResetBody, type ResponseFlag } from './local-reply';
import { ReplayableBody } from './replayable-body';
import { mirrorsFor, retryPolicyFor } from './route-matching';
import type { UpstreamSpan } from '../tracing/tracer';

type HeaderMap = Record<string, string | string[] | undefined>;

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** One upstream attempt; stale callbacks (after a retry or abort) are dropped here. */
class Attempt implements UpstreamHandler {
  call: UpstreamCall | null = null;
  perTryTimer: NodeJS.Timeout | null = null;
  gotHeaders = false;
  finished = false;
  readonly startHr = performance.now();
  status = 0;
  /** With spawn_upstream_span: this attempt's CLIENT span. */
  span: UpstreamSpan | undefined = undefined;

  constructor(
    private readonly f: Forwarder,
    readonly host: Host,
    readonly isRetry: boolean,
  ) {}

  onHeaders(status: number, headers: string[], endStream: boolean): void {
    if (!this.finished) this.f.onHeaders(this, status, headers, endStream);
  }
  onData(chunk: Buffer): boolean {
    return this.finished ? true : this.f.onData(this, chunk);
  }
  onEnd(trailers: string[] | null): void {
    if (!this.finished) this.f.onEnd(this, trailers);
  }
  onError(failure: UpstreamFailure): void {
    if (!this.finished) this.f.onError(this, failure);
  }
  onUpgrade(status: number, headers: string[], socket: import('node:stream').Duplex): void {
    if (this.finished) socket.destroy();
    else this.f.onUpgrade(this, status, headers, socket);
  }
}

/** Decides whether a response or a failure may be retried under a retry policy. */
export function retriableResponse(policy: RetryPolicy, status: number, headers: readonly string[]): boolean {
  const on = policy.on;
  if (on.has('5xx') && status >= 500) return true;
  if (on.has('gateway-error') && (status === 502 || status === 503 || status === 504)) return true;
  if (on.has('retriable-4xx') && status === 409) return true;
  if (on.has('retriable-status-codes') && policy.retriableStatusCodes.has(status)) return true;
  if (on.has('envoy-ratelimited') && getHeader(headers, 'x-envoy-ratelimited') !== undefined) return true;
  if (on.has('retriable-headers') && policy.retriableHeaders.length) {
    const lookup = (name: string) => getHeader(headers, name);
    if (policy.retriableHeaders.some((h) => h.test(lookup))) return true;
  }
  if (policy.grpcStatuses.size) {
    const grpcStatus = getHeader(headers, 'grpc-status');
    if (grpcStatus !== undefined && policy.grpcStatuses.has(Number(grpcStatus))) return true;
  }
  return false;
}

export function retriableFailure(policy: RetryPolicy, failure: UpstreamFailure | 'timeout'): boolean {
  const on = policy.on;
  // Envoy never retries a circuit breaker overflow: retrying would only add load.
  if (failure !== 'timeout' && failure.kind === 'overflow') return false;
  if (on.has('5xx') || on.has('gateway-error') || on.has('reset')) return true;
  if (failure === 'timeout') return false;
  if (on.has('connect-failure') && failure.kind === 'connect-failure') return true;
  if (on.has('refused-stream') && failure.kind === 'refused-stream') return true;
  if (on.has('reset-before-request') && failure.kind === 'connect-failure') return true;
  return false;
}

/** Envoy's fully jittered exponential backoff: uniform in [0, min((2^n - 1) x base, max)]. */
export function retryBackoffMs(policy: RetryPolicy, retryNumber: number, random: () => number): number {
  const ceiling = Math.min((2 ** retryNumber - 1) * policy.backoffBaseMs, policy.backoffMaxMs);
  return Math.floor(random() * ceiling);
}

export class Forwarder {
  private readonly retry: RetryPolicy | undefined;
  private retriesLeft: number;
  private retryNumber = 0;
  private readonly protocol: 'http1' | 'http2';
  private readonly request: UpstreamRequest;
  private replay: ReplayableBody | null = null;
  private current: Attempt | null = null;
  private tried: Set<Host> | null = null;
  private globalTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private responded = false;
  private hash: number | undefined;
  private hashComputed = false;
  private retryCounted = false;
  private transparentRetryUsed = false;

  constructor(
    private readonly s: HttpStream,
    private readonly action: ForwardAction,
    private readonly cluster: UpstreamCluster,
    private readonly suppressEnvoyHeaders: boolean,
  ) {
    this.retry = retryPolicyFor(action, s.vh);
    this.retriesLeft = this.retry?.numRetries ?? 0;
    const p = cluster.config.protocol;
    this.protocol = p === 'http2' || (p === 'downstream' && s.exchange.protocol === 'HTTP/2') ? 'http2' : 'http1';
    this.request = { method: s.method, path: s.path, headers: s.headers, body: null };
  }

  start(): void {
    const s = this.s;
    // Circuit breakers are checked by the endpoint's connection pool (an `overflow` failure).
    this.prepareRequest();
    const timeoutMs = this.routeTimeoutMs();
    if (timeoutMs > 0) this.globalTimer = setTimeout(() => this.onGlobalTimeout(), timeoutMs);
    const mirrors = mirrorsFor(this.action, s.vh);
    for (const m of mirrors) this.mirror(m);
    this.attempt(false);
  }

  /** The route timeout for this request (0: none); see ForwardAction.grpcTimeout. */
  private routeTimeoutMs(): number {
    const a = this.action;
    const g = a.grpcTimeout;
    if (g && this.s.grpc) {
      const header = this.s.headers['grpc-timeout'];
      const fromHeader = typeof header === 'string' ? parseGrpcTimeout(header) : undefined;
      if (fromHeader !== undefined) return g.maxMs > 0 ? Math.min(fromHeader, g.maxMs) : fromHeader;
      if (g.mode === 'max_grpc_timeout') return g.maxMs; // infinity (0) unless capped
    }
    return a.timeoutMs;
  }

  /** Upstream headers and path: hop-by-hop removal, rewrites, header edits, forwarding headers. */
  private prepareRequest(): void {
    const s = this.s;
    const a = this.action;
    const h = s.headers as HeaderMap;
    for (const name of HOP_BY_HOP) if (h[name] !== undefined) h[name] = undefined;
    if (h.te !== undefined && h.te !== 'trailers') h.te = undefined;
    // The downstream connection answers Expect: 100-continue itself (http1-server.ts); the upstream
    // gets the body without it.
    if (h.expect !== undefined) h.expect = undefined;
    // Authority (host rewrites) and path (prefix/regex rewrite).
    const authority = upstreamAuthority(a, s.choice, s);
    if (authority !== s.authority && a.appendXForwardedHost) appendHeader(h, 'x-forwarded-host', s.authority);
    h.host = authority;
    const route = s.route!;
    const path = upstreamPath(a, route, s.path);
    if (path !== s.path) {
      if (!this.suppressEnvoyHeaders) h['x-envoy-original-path'] = s.path;
      this.request.path = path;
    }
    // Header edits: by default most specific first, so route-config-level edits land last and
    // win; most_specific_header_mutations_wins reverses the order.
    const levels = [s.choice?.requestHeaders, route.requestHeaders, s.vh?.requestHeaders, s.rc?.requestHeaders];
    if (s.rc?.mostSpecificHeaderMutationsWins) levels.reverse();
    for (const edits of levels) if (edits) applyRequestEdits(h, edits, s);
    if (h['x-forwarded-proto'] === undefined) h['x-forwarded-proto'] = s.scheme;
    // Upgrades (websocket) the HCM or the route allows; others are forwarded as plain requests.
    const up = s.exchange.upgradeProtocol;
    if (up && (up === 'websocket' ? s.hcm.websocket || a.upgrades.has('websocket') : a.upgrades.has(up))) this.request.upgrade = up;
    if (s.hcm.useRemoteAddress && !s.hcm.skipXffAppend && s.remoteAddress) appendHeader(h, 'x-forwarded-for', s.remoteAddress, ',');
    s.runtime.telemetry?.onUpstreamRequest(s, h);
    // Body: replayable when a retry or a mirror may need it again.
    const body = s.exchange.body;
    if (body) {
      const needsReplay = this.retriesLeft > 0 || this.action.mirrors.length > 0 || (s.vh?.mirrors.length ?? 0) > 0;
      if (needsReplay) this.replay = new ReplayableBody(body, this.cluster.config.perConnectionBufferLimitBytes);
      else this.request.body = body;
    }
  }

  private requestHash(): number | undefined {
    if (this.hashComputed) return this.hash;
    this.hashComputed = true;
    const lb = this.cluster.config.lbPolicy;
    if (lb !== 'RING_HASH' && lb !== 'MAGLEV') return undefined;
    const s = this.s;
    let hash: number | undefined;
    for (const p of this.action.hashPolicies) {
      let value: string | undefined;
      switch (p.kind) {
        case 'header': {
          value = s.header(p.name);
          if (value !== undefined && p.regexRewrite) value = value.replace(p.regexRewrite.pattern, p.regexRewrite.substitution);
          break;
        }
        case 'cookie': {
          value = readCookie(s.headers.cookie, p.name);
          if (value === undefined && p.ttlMs !== undefined) {
            // Envoy generates the cookie and sets it on the response, so the client sticks.
            value = randomBytes(8).toString('hex');
            const attrs = [`${p.name}="${value}"`];
            if (p.ttlMs > 0) attrs.push(`Max-Age=${Math.floor(p.ttlMs / 1000)}`);
            if (p.path) attrs.push(`Path=${p.path}`);
            attrs.push('HttpOnly');
            (s.extraResponseHeaders ?? (s.extraResponseHeaders = [])).push('set-cookie', attrs.join('; '));
          }
          break;
        }
        case 'source-ip':
          value = s.remoteAddress || undefined;
          break;
        case 'query':
          value = s.query().get(p.name);
          break;
      }
      if (value === undefined) continue;
      hash = combineHashes(hash, murmur3(value));
      if (p.terminal) break;
    }
    this.hash = hash;
    return hash;
  }

  private pickHost(): Host | undefined {
    const cluster = this.cluster;
    if (cluster.config.type === 'ORIGINAL_DST') {
      const headerName = cluster.config.originalDstHeader;
      const target = (headerName && typeof this.s.headers[headerName] === 'string' ? (this.s.headers[headerName] as string) : undefined) ?? this.s.authority;
      const { host, port } = splitHostPort(target);
      const address = host.replace(/^\[|\]$/g, '');
      const portNumber = Number(port ?? 80);
      // Never pass a request through to the listener it came in on (it would loop).
      const ex = this.s.exchange;
      if (!address || (portNumber === ex.localPort && (address === ex.localAddress || address === 'localhost'))) return undefined;
      return cluster.originalDestination(address, portNumber);
    }
    const policy = this.retry;
    const priorities = policy?.avoidPreviousPriorities && this.tried ? new Set([...this.tried].map((h) => h.priority)) : undefined;
    return cluster.pickHost(this.requestHash(), policy?.avoidPreviousHosts ? this.tried ?? undefined : undefined, policy?.hostSelectionMaxAttempts ?? 1, priorities);
  }

  private attempt(isRetry: boolean): void {
    const s = this.s;
    if (s.done) return;
    const host = this.pickHost();
    if (!host) {
      if (isRetry) this.cluster.counters.activeRetries--;
      this.cluster.stats.upstream_cx_none_healthy++;
      this.clearTimers();
      s.localReply(503, { flag: 'UH', details: 'no_healthy_upstream', body: 'no healthy upstream' });
      return;
    }
    if (this.retry?.avoidPreviousHosts || this.retry?.avoidPreviousPriorities) (this.tried ?? (this.tried = new Set())).add(host);
    const attempt = new Attempt(this, host, isRetry);
    this.current = attempt;
    s.attempts++;
    if (s.vh?.includeAttemptCount) this.request.headers['x-envoy-attempt-count'] = String(s.attempts);
    s.runtime.telemetry?.onUpstreamAttempt(s, host, this.request.headers);
    if (s.span) attempt.span = s.span.upstream(this.request.headers, this.cluster.config.name);
    if (this.replay) {
      try {
        this.request.body = this.replay.reader(true) as Buffer | Readable;
      } catch {
        this.request.body = null;
      }
    }
    const cluster = this.cluster;
    cluster.counters.activeRequests++;
    cluster.stats.upstream_rq_total++;
    host.active++;
    host.stats.rqTotal++;
    const perTry = this.retry?.perTryTimeoutMs ?? 0;
    if (perTry > 0) attempt.perTryTimer = setTimeout(() => this.onPerTryTimeout(attempt), perTry);
    attempt.call = host.connector(this.protocol).dispatch(this.request, attempt);
  }

  /** Closes the books on an attempt (counters, outlier detection). */
  private endAttempt(a: Attempt, outcome: { status?: number; failure?: UpstreamFailure | 'timeout' }): void {
    if (a.finished) return;
    a.finished = true;
    if (a.perTryTimer) clearTimeout(a.perTryTimer);
    a.perTryTimer = null;
    a.span?.end(outcome.status ?? 0, a.host.key);
    const cluster = this.cluster;
    const host = a.host;
    cluster.counters.activeRequests--;
    host.active--;
    if (a.isRetry) cluster.counters.activeRetries--;
    if (outcome.status !== undefined) {
      const st = outcome.status;
      const c = cluster.stats;
      c.upstream_rq_completed++;
      if (st >= 500) c.upstream_rq_5xx++;
      else if (st >= 400) c.upstream_rq_4xx++;
      else if (st >= 300) c.upstream_rq_3xx++;
      else c.upstream_rq_2xx++;
      if (st >= 500) host.stats.rqError++;
      else host.stats.rqSuccess++;
      cluster.recordOutcome(host, { kind: 'http', status: st });
    } else if (outcome.failure) {
      host.stats.rqError++;
      const f = outcome.failure;
      if (f === 'timeout') {
        host.stats.rqTimeout++;
        cluster.recordOutcome(host, { kind: 'timeout' });
      } else if (f.kind !== 'local-reset' && f.kind !== 'overflow') {
        // Connect failures are counted by the connection pool; an overflow never left the proxy.
        if (f.kind !== 'connect-failure') cluster.stats.upstream_rq_rx_reset++;
        cluster.recordOutcome(host, { kind: 'local-origin-failure' });
      }
    }
  }

  /** Whether one more attempt is allowed now (counts a retry overflow when the budget is spent). */
  private retryAllowed(): boolean {
    const policy = this.retry;
    if (!policy) return false;
    if (this.retriesLeft <= 0) {
      if (policy.numRetries > 0) this.cluster.stats.upstream_rq_retry_limit_exceeded++;
      return false;
    }
    if (this.replay && !this.replay.replayable) return false;
    if (policy.retriableRequestHeaders.length) {
      const lookup = (name: string) => this.s.header(name);
      if (!policy.retriableRequestHeaders.some((h) => h.test(lookup))) return false;
    }
    if (!this.cluster.canRetry()) {
      this.cluster.stats.upstream_rq_retry_overflow++;
      return false;
    }
    return true;
  }

  /** Schedules the next attempt after Envoy's jittered backoff. Call after retryAllowed(). */
  private scheduleRetry(): void {
    const policy = this.retry!;
    this.retriesLeft--;
    this.retryNumber++;
    this.retryCounted = true;
    this.cluster.stats.upstream_rq_retry++;
    this.cluster.stats.upstream_rq_retry_backoff_exponential++;
    this.cluster.counters.activeRetries++;
    const delay = retryBackoffMs(policy, this.retryNumber, this.s.runtime.random);
    this.current = null;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.s.done) {
        this.cluster.counters.activeRetries--;
        return;
      }
      this.attempt(true);
    }, delay);
  }

  onHeaders(a: Attempt, status: number, headers: string[], endStream: boolean): void {
    const s = this.s;
    a.gotHeaders = true;
    a.status = status;
    const policy = this.retry;
    if (policy && retriableResponse(policy, status, headers)) {
      if (this.retryAllowed()) {
        a.call?.abort();
        this.endAttempt(a, { status });
        this.scheduleRetry();
        return;
      }
      // Retries exhausted (or not allowed): this response goes to the client, flagged URX.
      if (policy.numRetries > 0) s.flags.push('URX');
    }
    this.commitHeaders(a, status, headers, endStream);
    if (endStream) {
      this.endAttempt(a, { status });
      this.complete(status);
    }
  }

  private commitHeaders(a: Attempt, status: number, headers: string[], endStream: boolean): void {
    const s = this.s;
    if (a.perTryTimer) {
      // Envoy ignores the per-try timeout once the response has started downstream.
      clearTimeout(a.perTryTimer);
      a.perTryTimer = null;
    }
    if (this.retryCounted && status < 500) this.cluster.stats.upstream_rq_retry_success++;
    this.responded = true;
    s.upstreamHost = a.host.key;
    s.upstreamEndpoint = a.host;
    s.status = status;
    s.details = 'via_upstream';
    if (s.grpc) readGrpcStatus(s, headers);
    const serviceTime = Math.round(performance.now() - a.startHr);
    s.upstreamServiceTimeMs = serviceTime;
    let list = headers;
    if (!this.suppressEnvoyHeaders) list.push('x-envoy-upstream-service-time', String(serviceTime));
    if (s.vh?.includeAttemptCountInResponse) list.push('x-envoy-attempt-count', String(s.attempts));
    list = s.finalizeResponseHeaders(list);
    if (endStream && !headers.includes('content-length') && s.exchange.protocol !== 'HTTP/2' && s.method !== 'HEAD' && status !== 204 && status !== 304) {
      list.push('content-length', '0');
    }
    s.exchange.respond(status, list, endStream);
  }

  /** The upstream switched protocols: join the streams; timeouts no longer apply. */
  onUpgrade(a: Attempt, status: number, headers: string[], socket: import('node:stream').Duplex): void {
    const s = this.s;
    this.clearTimers();
    if (a.perTryTimer) clearTimeout(a.perTryTimer);
    a.perTryTimer = null;
    this.responded = true;
    s.upstreamHost = a.host.key;
    s.upstreamEndpoint = a.host;
    s.status = status;
    s.details = 'via_upstream';
    if (!s.exchange.upgrade) {
      socket.destroy();
      this.endAttempt(a, { failure: new UpstreamFailureImpl('protocol-error', 'upgrade on a stream that cannot switch', false) });
      s.finish(502);
      return;
    }
    s.exchange.upgrade(status, headers, socket);
    socket.once('close', () => {
      this.endAttempt(a, { status });
      s.finish(status);
    });
  }

  onData(a: Attempt, chunk: Buffer): boolean {
    const ex = this.s.exchange;
    if (ex.write(chunk)) return true;
    ex.onDrain(() => a.call?.resume());
    return false;
  }

  onEnd(a: Attempt, trailers: string[] | null): void {
    this.endAttempt(a, { status: a.status });
    if (trailers && this.s.grpc) readGrpcStatus(this.s, trailers);
    this.s.exchange.end(trailers);
    this.complete(a.status);
  }

  onError(a: Attempt, failure: UpstreamFailure): void {
    const s = this.s;
    this.endAttempt(a, { failure });
    if (this.responded) {
      // Mid-response failure: nothing to retry; cut the downstream stream as Envoy does.
      s.flags.push(failure.kind === 'connection-termination' ? 'UC' : 'UR');
      this.clearTimers();
      s.exchange.reset();
      s.finish(s.status);
      return;
    }
    const policy = this.retry;
    const retriable = !!policy && retriableFailure(policy, failure);
    if (retriable && this.retryAllowed()) {
      this.scheduleRetry();
      return;
    }
    // Keep-alive race: the upstream closed a pooled connection as we reused it (Istio's classic
    // 503 UC). An idempotent request that got no response byte is safe to send once more, on a
    // connection that has carried nothing yet.
    if (
      !this.transparentRetryUsed &&
      failure.kind === 'connection-termination' &&
      failure.beforeHeaders &&
      failure.reusedConnection &&
      IDEMPOTENT.has(s.method) &&
      (this.request.body === null || (this.replay?.replayable ?? false))
    ) {
      this.transparentRetryUsed = true;
      this.request.freshConnection = true;
      this.cluster.counters.activeRetries++;
      this.attempt(true);
      return;
    }
    if (retriable && policy!.numRetries > 0) s.flags.push('URX');
    this.clearTimers();
    switch (failure.kind) {
      case 'connect-failure': {
        // A failed TLS handshake (bad SAN, unknown CA, missing SDS secret) is named as Envoy's
        // "transport failure reason", in the body and in the details (no spaces there).
        const tls = failure.detail.startsWith('TLS error: ') ? failure.detail.slice('TLS error: '.length) : undefined;
        if (tls) s.upstreamTransportFailureReason = failure.detail;
        s.localReply(503, {
          flag: 'UF',
          details: tls ? `upstream_reset_before_response_started{connection_failure|TLS_error:_${tls.replace(/\s+/g, '_')}}` : 'upstream_reset_before_response_started{connection_failure}',
          body: upstreamResetBody(tls ? `connection failure, transport failure reason: TLS_error: ${tls}` : 'connection failure'),
        });
        break;
      }
      case 'refused-stream':
        s.localReply(503, { flag: 'UR', details: 'upstream_reset_before_response_started{remote_refused_stream_reset}', body: upstreamResetBody('remote refused stream reset') });
        break;
      case 'remote-reset':
        s.localReply(503, { flag: 'UR', details: 'upstream_reset_before_response_started{remote_reset}', body: upstreamResetBody('remote reset') });
        break;
      case 'protocol-error':
        s.localReply(503, { flag: 'UPE', details: 'upstream_reset_before_response_started{protocol_error}', body: upstreamResetBody('protocol error') });
        break;
      case 'overflow':
        // Envoy's router marks circuit-breaker rejections with x-envoy-overloaded.
        s.localReply(503, {
          flag: 'UO',
          details: 'upstream_reset_before_response_started{overflow}',
          body: upstreamResetBody('overflow'),
          ...(this.suppressEnvoyHeaders ? {} : { headers: ['x-envoy-overloaded', 'true'] }),
        });
        break;
      default:
        s.localReply(503, { flag: 'UC', details: 'upstream_reset_before_response_started{connection_termination}', body: upstreamResetBody('connection termination') });
    }
  }

  private onPerTryTimeout(a: Attempt): void {
    a.perTryTimer = null;
    if (a.finished || this.responded) return;
    const s = this.s;
    this.cluster.stats.upstream_rq_per_try_timeout++;
    a.call?.abort();
    this.endAttempt(a, { failure: 'timeout' });
    const policy = this.retry!;
    const retriable = retriableFailure(policy, 'timeout');
    if (retriable && this.retryAllowed()) {
      this.scheduleRetry();
      return;
    }
    if (retriable && policy.numRetries > 0) s.flags.push('URX');
    this.clearTimers();
    this.cluster.stats.upstream_rq_timeout++;
    s.localReply(504, { flag: 'UT', details: 'upstream_per_try_timeout', body: 'upstream request timeout' });
  }

  private onGlobalTimeout(): void {
    this.globalTimer = null;
    const s = this.s;
    if (s.done) return;
    this.cluster.stats.upstream_rq_timeout++;
    s.httpStats.downstream_rq_timeout++;
    const a = this.current;
    if (a && !a.finished) {
      a.call?.abort();
      this.endAttempt(a, { failure: 'timeout' });
    }
    this.clearTimers();
    if (this.responded) {
      s.flags.push('UT');
      s.exchange.reset();
      s.finish(s.status);
      return;
    }
    s.localReply(504, { flag: 'UT', details: 'upstream_response_timeout', body: 'upstream request timeout' });
  }

  onDownstreamAbort(): void {
    const a = this.current;
    if (a && !a.finished) {
      a.call?.abort();
      this.cluster.stats.upstream_rq_tx_reset++;
      this.endAttempt(a, { failure: undefined });
    }
    this.clearTimers();
  }

  private clearTimers(): void {
    if (this.globalTimer) clearTimeout(this.globalTimer);
    this.globalTimer = null;
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.cluster.counters.activeRetries--;
    }
  }

  private complete(status: number): void {
    this.clearTimers();
    if (this.replay) this.s.bodyBytes = this.replay.bytes;
    this.s.finish(status);
  }

  /** Sends a copy of the request to the mirror cluster; its response is discarded. */
  private mirror(m: MirrorPolicy): void {
    const s = this.s;
    if (m.probability < 1 && s.runtime.random() >= m.probability) return;
    const cluster = s.runtime.clusters.get(m.cluster);
    if (!cluster) return;
    const host = cluster.pickHost(undefined);
    if (!host) return;
    const headers: HeaderMap = { ...s.headers };
    // Envoy marks shadow traffic by suffixing the authority's host with "-shadow".
    const { host: name, port } = splitHostPort(String(headers.host ?? s.authority));
    headers.host = `${name}-shadow${port ? ':' + port : ''}`;
    let body: Buffer | Readable | null = null;
    if (s.exchange.body) {
      if (!this.replay) this.replay = new ReplayableBody(s.exchange.body, this.cluster.config.perConnectionBufferLimitBytes);
      try {
        body = this.replay.reader(false) as Buffer | Readable;
      } catch {
        return;
      }
    }
    const protocol = cluster.config.protocol === 'http2' ? 'http2' : 'http1';
    let timer: NodeJS.Timeout | null = null;
    const call = host.connector(protocol).dispatch(
      { method: s.method, path: this.request.path, headers, body },
      {
        onHeaders: () => undefined,
        onData: () => true,
        onEnd: () => timer && clearTimeout(timer),
        onError: () => timer && clearTimeout(timer),
      },
    );
    const limit = this.routeTimeoutMs();
    if (limit > 0) {
      timer = setTimeout(() => call.abort(), limit);
      timer.unref();
    }
  }
}

/** The upstream :authority after the host rewrites (weighted cluster's literal first, as Envoy). */
export function upstreamAuthority(a: ForwardAction, choice: WeightedClusterChoice | undefined, req: RequestView): string {
  const h = req.headers;
  if (choice?.hostRewriteLiteral) return choice.hostRewriteLiteral;
  if (a.hostRewriteLiteral) return a.hostRewriteLiteral;
  if (a.hostRewriteHeader && typeof h[a.hostRewriteHeader] === 'string') return h[a.hostRewriteHeader] as string;
  if (a.hostRewritePathRegex) return req.pathOnly().replace(a.hostRewritePathRegex.pattern, a.hostRewritePathRegex.substitution);
  return req.authority;
}

/** The upstream :path after prefix_rewrite or regex_rewrite (the query string is kept). */
export function upstreamPath(a: ForwardAction, route: CompiledRoute, path: string): string {
  if (a.prefixRewrite !== undefined) return rewritePrefix(path, route.path.kind, route.path.value, a.prefixRewrite);
  if (a.regexRewrite) {
    const q = path.indexOf('?');
    const only = q >= 0 ? path.slice(0, q) : path;
    return only.replace(a.regexRewrite.pattern, a.regexRewrite.substitution) + (q >= 0 ? path.slice(q) : '');
  }
  return path;
}

/**
 * Envoy's prefix_rewrite: the matched prefix is swapped for `rewrite`; for exact-path and regex
 * routes the matched part is the whole path (the query string stays).
 */
export function rewritePrefix(path: string, kind: string, matched: string, rewrite: string): string {
  const q = path.indexOf('?');
  const query = q >= 0 ? path.slice(q) : '';
  let out: string;
  if (kind === 'prefix' || kind === 'separated-prefix') out = rewrite + path.slice(matched.length);
  else if (kind === 'any') out = rewrite + path;
  else out = rewrite + query;
  return out === '' || out[0] === '?' ? '/' + out : out;
}

/** grpc-status of a response's headers (trailers-only) or trailers, for the metrics. */
function readGrpcStatus(s: HttpStream, list: readonly string[]): void {
  const v = getHeader(list, 'grpc-status');
  if (v !== undefined && /^\d+$/.test(v)) s.grpcStatus = Number(v);
}

function appendHeader(h: HeaderMap, name: string, value: string, sep = ','): void {
  const prev = h[name];
  if (prev === undefined) h[name] = value;
  else h[name] = `${Array.isArray(prev) ? prev.join(sep) : prev}${sep}${value}`;
}

export function readCookie(header: string | string[] | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  const text = Array.isArray(header) ? header.join('; ') : header;
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      let v = part.slice(eq + 1).trim();
      if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
      return v;
    }
  }
  return undefined;
}

/** gRPC's timeout header: an integer and a unit (H, M, S, m, u, n). */
export function parseGrpcTimeout(value: string): number | undefined {
  const m = /^(\d{1,8})([HMSmun])$/.exec(value.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };
  return Math.max(1, Math.ceil(n * unit[m[2]]));
}

export type { ResponseFlag };
