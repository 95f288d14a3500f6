// Spans for requests through an HTTP connection manager that traces (Envoy's HttpTracerUtility
// with the OpenTelemetry tracer): join the caller's trace or start one (sampling decided once, by
// the caller when it decided, else at random), one span per request — SERVER on inbound HCMs,
// CLIENT on outbound ones, or SERVER plus a CLIENT child per upstream attempt when the HCM says
// spawn_upstream_span (gateways) — with Envoy's and Istio's tags, the context injected into the
// upstream request, and the span exported when the stream ends.
//
// Unsampled requests still get ids and propagate them (flag 00), so the next hops honour the
// decision; they build no attributes and export nothing.
import { performance } from 'node:perf_hooks';
import type { Resource, resourceFromAttributes as ResourceFromAttributes } from '@opentelemetry/resources';
import type { Logger } from '../../log/logger';
import type { RequestRecord } from '../access-log';
import type { TrafficDirection } from '../config/model';
import type { ClusterManager } from '../upstream/cluster-manager';
import { OtlpHttpExporter, type ExportableSpan, type ExportLimits, type ExportStats } from './otlp-exporter';
import { extractContext, IdGenerator, injectContext, type SpanContext } from './propagation';
import type { CustomTag, TracingSettings } from './tracing-config';

type Headers = Record<string, string | string[] | undefined>;

/** OpenTelemetry API SpanKind values (the serializer adds one for the OTLP enum). */
const SPAN_KIND = { SERVER: 1, CLIENT: 2 } as const;
const STATUS_UNSET = 0;
const STATUS_ERROR = 2;
const SCOPE = Object.freeze({ name: 'weft-proxy', version: '0.1.0' });

/** What a span reads from the request when it ends (HttpStream provides it). */
export interface TracedRequest {
  readonly scheme: string;
  readonly remoteAddress: string;
  readonly route?: { readonly operation?: string };
  header(name: string): string | undefined;
  metadata(filter: string): Record<string, unknown> | undefined;
  record(): RequestRecord;
}

export interface TracerOptions {
  /** The xDS node id (the `node_id` tag). */
  nodeId: string;
  /** The node's locality zone (the `zone` tag), when it has one. */
  zone?: string;
  /** Where exports find the collector's cluster (http_uri.cluster). */
  clusters?: ClusterManager;
  logger: Logger;
  random: () => number;
  /** Process environment for `environment` custom tags (default process.env). */
  env?: NodeJS.ProcessEnv;
  limits?: ExportLimits;
}

/** One per proxy: ids, exporters (one per collector endpoint), resources, counters. */
export class Tracer {
  readonly ids = new IdGenerator();
  readonly stats: ExportStats = { spans_sent: 0, spans_dropped: 0, http_reports_sent: 0, http_reports_success: 0, http_reports_failed: 0 };
  /** Requests that joined or started a trace, sampled or not (Weft's own counters). */
  sampled = 0;
  notSampled = 0;
  private readonly exporters = new Map<string, OtlpHttpExporter>();
  private readonly resources = new Map<string, Resource>();
  private readonly env: NodeJS.ProcessEnv;

  constructor(readonly options: TracerOptions) {
    this.env = options.env ?? process.env;
  }

  /**
   * The span of a request entering an HCM that traces: joins the incoming context (keeping its
   * sampling decision) or starts a trace, sampled at the configured random rate.
   */
  startRequest(headers: Headers, settings: TracingSettings, direction: TrafficDirection | undefined): RequestSpan {
    const incoming = extractContext(headers);
    let sampled = incoming.sampled;
    if (sampled === undefined) sampled = this.options.random() < settings.randomSampling;
    if (sampled && settings.overallSampling < 1) sampled = this.options.random() < settings.overallSampling;
    if (sampled) this.sampled++;
    else this.notSampled++;
    const parent = incoming.parent;
    const context: SpanContext = {
      traceId: parent?.traceId ?? this.ids.traceId(),
      spanId: this.ids.spanId(),
      sampled,
      ...(parent?.traceState ? { traceState: parent.traceState } : {}),
    };
    return new RequestSpan(this, settings, direction, context, parent?.spanId);
  }

  /** Hands a finished span to its collector's exporter. */
  export(settings: TracingSettings, span: ExportableSpan): void {
    let exporter = this.exporters.get(settings.endpoint.key);
    if (!exporter) {
      exporter = new OtlpHttpExporter(settings.endpoint, { clusters: this.options.clusters, logger: this.options.logger, stats: this.stats, limits: this.options.limits });
      this.exporters.set(settings.endpoint.key, exporter);
    }
    exporter.enqueue(span);
  }

  resource(serviceName: string): Resource {
    let r = this.resources.get(serviceName);
    if (!r) {
      // Loaded with the first span: a proxy that never traces does not carry it.
      const { resourceFromAttributes } = require('@opentelemetry/resources') as { resourceFromAttributes: typeof ResourceFromAttributes };
      r = resourceFromAttributes({ 'service.name': serviceName });
      this.resources.set(serviceName, r);
    }
    return r;
  }

  customTagValue(tag: CustomTag, request: TracedRequest): string | undefined {
    const s = tag.source;
    switch (s.kind) {
      case 'literal':
        return s.value;
      case 'environment':
        return this.env[s.name] ?? s.defaultValue;
      case 'request-header':
        return request.header(s.name) ?? s.defaultValue;
      case 'request-metadata': {
        let value: unknown = request.metadata(s.filter);
        for (const key of s.path) value = value && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
        if (value === undefined || value === null) return s.defaultValue;
        return typeof value === 'string' ? value : JSON.stringify(value);
      }
    }
  }

  /** Sends everything queued (tests, shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.exporters.values()].map((e) => e.flush()));
  }

  async close(): Promise<void> {
    await Promise.all([...this.exporters.values()].map((e) => e.close()));
    this.exporters.clear();
  }

  /** Envoy-style /stats lines. */
  statLines(): string[] {
    const p = 'tracing.opentelemetry';
    return [
      ...Object.entries(this.stats).map(([k, v]) => `${p}.${k}: ${v}`),
      `tracing.weft.requests_sampled: ${this.sampled}`,
      `tracing.weft.requests_not_sampled: ${this.notSampled}`,
    ];
  }
}

/** Epoch milliseconds (sub-millisecond precision) as the [seconds, nanoseconds] HrTime OTLP takes. */
function hrTime(epochMs: number): [number, number] {
  const seconds = Math.floor(epochMs / 1000);
  return [seconds, Math.round((epochMs - seconds * 1000) * 1e6)];
}

function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

function spanContextFn(ctx: SpanContext): () => { traceId: string; spanId: string; traceFlags: number; traceState?: { serialize(): string } } {
  const value = {
    traceId: ctx.traceId,
    spanId: ctx.spanId,
    traceFlags: ctx.sampled ? 1 : 0,
    ...(ctx.traceState ? { traceState: { serialize: () => ctx.traceState as string } } : {}),
  };
  return () => value;
}

function buildSpan(
  tracer: Tracer,
  settings: TracingSettings,
  name: string,
  kind: number,
  ctx: SpanContext,
  parentSpanId: string | undefined,
  remoteParent: boolean,
  startMs: number,
  attributes: Record<string, string>,
  error: boolean,
): ExportableSpan {
  const endMs = nowMs();
  const span = {
    name,
    kind,
    spanContext: spanContextFn(ctx),
    ...(parentSpanId ? { parentSpanContext: { traceId: ctx.traceId, spanId: parentSpanId, traceFlags: ctx.sampled ? 1 : 0, isRemote: remoteParent } } : {}),
    startTime: hrTime(startMs),
    endTime: hrTime(endMs),
    duration: hrTime(endMs - startMs),
    status: { code: error ? STATUS_ERROR : STATUS_UNSET },
    attributes,
    links: [],
    events: [],
    ended: true,
    resource: tracer.resource(settings.serviceName),
    instrumentationScope: SCOPE,
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
  return span as unknown as ExportableSpan;
}

/** The span of one downstream request. */
export class RequestSpan {
  readonly startMs = nowMs();
  private ended = false;

  constructor(
    private readonly tracer: Tracer,
    readonly settings: TracingSettings,
    /** The listener's traffic_direction (Envoy: OUTBOUND is egress, anything else ingress). */
    private readonly direction: TrafficDirection | undefined,
    readonly context: SpanContext,
    /** The caller's span (remote parent), when the request joined a trace. */
    readonly parentSpanId: string | undefined,
  ) {}

  get sampled(): boolean {
    return this.context.sampled === true;
  }

  /**
   * Before an upstream attempt: puts the trace context in the upstream request's headers — this
   * span's, or with spawn_upstream_span a new CLIENT child's, which is returned to be ended with
   * the attempt.
   */
  upstream(headers: Headers, cluster: string): UpstreamSpan | undefined {
    if (!this.settings.spawnUpstreamSpan) {
      injectContext(headers, this.context, this.parentSpanId);
      return undefined;
    }
    const child: SpanContext = { traceId: this.context.traceId, spanId: this.tracer.ids.spanId(), sampled: this.context.sampled, ...(this.context.traceState ? { traceState: this.context.traceState } : {}) };
    injectContext(headers, child, this.context.spanId);
    return new UpstreamSpan(this.tracer, this, child, cluster);
  }

  /** Ends the span with what the request became; exports it when sampled. Idempotent. */
  end(request: TracedRequest): void {
    if (this.ended) return;
    this.ended = true;
    if (!this.sampled) return;
    const r = request.record();
    const s = this.settings;
    const egress = this.direction === 'OUTBOUND';
    // Envoy: the route decorator names the span, else "ingress" / "egress <host>".
    const name = request.route?.operation ?? (egress ? `egress ${r.authority}` : 'ingress');
    const kind = s.spawnUpstreamSpan || !egress ? SPAN_KIND.SERVER : SPAN_KIND.CLIENT;
    const path = r.path.length > s.maxPathTagLength ? r.path.slice(0, s.maxPathTagLength) : r.path;
    const error = r.status === 0 || r.status >= 500;
    const attributes: Record<string, string> = {
      component: 'proxy',
      node_id: this.tracer.options.nodeId,
      ...(this.tracer.options.zone ? { zone: this.tracer.options.zone } : {}),
      'guid:x-request-id': r.requestId ?? '',
      'http.url': `${request.scheme}://${r.authority}${path}`,
      'http.method': r.method,
      downstream_cluster: request.header('x-envoy-downstream-service-cluster') ?? '-',
      user_agent: r.userAgent ?? '-',
      'http.protocol': r.protocol,
      'peer.address': request.remoteAddress,
      request_size: String(r.bytesReceived),
      response_size: String(r.bytesSent),
      response_flags: r.flags.length ? r.flags.join(',') : '-',
      ...(r.upstreamCluster ? { upstream_cluster: r.upstreamCluster, 'upstream_cluster.name': r.upstreamCluster } : {}),
      ...(r.upstreamHost ? { upstream_address: r.upstreamHost } : {}),
      'http.status_code': String(r.status),
    };
    if (error) attributes.error = 'true';
    for (const tag of s.customTags) {
      const value = this.tracer.customTagValue(tag, request);
      if (value !== undefined) attributes[tag.tag] = value;
    }
    this.tracer.export(s, buildSpan(this.tracer, s, name, kind, this.context, this.parentSpanId, true, this.startMs, attributes, error));
  }
}

/** A CLIENT span for one upstream attempt (spawn_upstream_span). */
export class UpstreamSpan {
  private readonly startMs = nowMs();
  private ended = false;

  constructor(
    private readonly tracer: Tracer,
    private readonly parent: RequestSpan,
    readonly context: SpanContext,
    private readonly cluster: string,
  ) {}

  /** Ends with the attempt: its status (0 when it failed without one) and the host it went to. */
  end(status: number, upstreamHost: string | undefined): void {
    if (this.ended) return;
    this.ended = true;
    if (this.context.sampled !== true) return;
    const error = status === 0 || status >= 500;
    const attributes: Record<string, string> = {
      component: 'proxy',
      node_id: this.tracer.options.nodeId,
      upstream_cluster: this.cluster,
      'upstream_cluster.name': this.cluster,
      ...(upstreamHost ? { upstream_address: upstreamHost } : {}),
      'http.status_code': String(status),
    };
    if (error) attributes.error = 'true';
    const s = this.parent.settings;
    this.tracer.export(
      s,
      buildSpan(this.tracer, s, `router ${this.cluster} egress`, SPAN_KIND.CLIENT, this.context, this.parent.context.spanId, false, this.startMs, attributes, error),
    );
  }
}
