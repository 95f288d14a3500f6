// OTLP/HTTP span export (protobuf, opentelemetry-proto's ExportTraceServiceRequest encoded by
// @opentelemetry/otlp-transformer): a bounded queue, batches sent on a timer or as soon as a few
// spans wait, at most two requests in flight, each with the configured timeout. A collector that
// is down or slow costs dropped spans, never a request: enqueue() never blocks and never throws.
import * as http from 'node:http';
import type { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { Logger } from '../../log/logger';
import type { ClusterManager } from '../upstream/cluster-manager';
import type { OtlpEndpoint } from './tracing-config';

/** A finished span in the shape the OTLP serializer reads (the SDK's ReadableSpan). */
let serializer: typeof ProtobufTraceSerializer | undefined;
/** Loaded with the first batch: proxies that never trace never pay the OTLP encoder's memory. */
function traceSerializer(): typeof ProtobufTraceSerializer {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (serializer ??= (require('@opentelemetry/otlp-transformer') as { ProtobufTraceSerializer: typeof ProtobufTraceSerializer }).ProtobufTraceSerializer);
}

export type ExportableSpan = NonNullable<Parameters<typeof ProtobufTraceSerializer.serializeRequest>[0]>[number];

/** Envoy's tracing.opentelemetry.* counters, kept per proxy. */
export interface ExportStats {
  spans_sent: number;
  spans_dropped: number;
  http_reports_sent: number;
  http_reports_success: number;
  http_reports_failed: number;
}

export interface ExportLimits {
  /** Spans waiting beyond this are dropped. */
  maxQueueSize: number;
  maxBatchSize: number;
  /** A batch goes out as soon as this many spans wait (Envoy's min_flush_spans). */
  minFlushSpans: number;
  /** ...or this long after the first of them arrived. */
  flushIntervalMs: number;
  maxInFlight: number;
}

export const DEFAULT_EXPORT_LIMITS: ExportLimits = Object.freeze({
  maxQueueSize: 2048,
  maxBatchSize: 512,
  minFlushSpans: 5,
  flushIntervalMs: 1000,
  maxInFlight: 2,
});

/** Failed exports are logged at most this often (a down collector would otherwise flood the log). */
const FAILURE_LOG_INTERVAL_MS = 30_000;

export class OtlpHttpExporter {
  private queue: ExportableSpan[] = [];
  private timer: NodeJS.Timeout | null = null;
  private inFlight = 0;
  private readonly pending = new Set<Promise<void>>();
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  private readonly url: URL;
  private lastFailureLog = 0;
  private closed = false;

  constructor(
    readonly endpoint: OtlpEndpoint,
    private readonly deps: { clusters?: ClusterManager; logger: Logger; stats: ExportStats; limits?: ExportLimits },
  ) {
    this.url = new URL(endpoint.uri);
  }

  private get limits(): ExportLimits {
    return this.deps.limits ?? DEFAULT_EXPORT_LIMITS;
  }

  /** Queues a finished span; drops it when the queue is full or the exporter is closed. */
  enqueue(span: ExportableSpan): void {
    if (this.closed || this.queue.length >= this.limits.maxQueueSize) {
      this.deps.stats.spans_dropped++;
      return;
    }
    this.queue.push(span);
    if (this.queue.length >= this.limits.minFlushSpans) this.send();
    else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.send();
      }, this.limits.flushIntervalMs);
      this.timer.unref();
    }
  }

  /** Sends what is queued now and waits for every export in flight. */
  async flush(): Promise<void> {
    while (this.queue.length > 0 || this.pending.size > 0) {
      while (this.queue.length > 0 && this.inFlight < this.limits.maxInFlight) this.send();
      if (this.pending.size === 0) return;
      await Promise.race([...this.pending]);
    }
  }

  /** Flushes what is queued for at most `graceMs`, then drops anything later. */
  async close(graceMs = 1000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.flush(), new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.agent.destroy();
  }

  private send(): void {
    if (this.queue.length === 0 || this.inFlight >= this.limits.maxInFlight) return;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const batch = this.queue.length <= this.limits.maxBatchSize ? this.queue : this.queue.slice(0, this.limits.maxBatchSize);
    this.queue = batch === this.queue ? [] : this.queue.slice(batch.length);
    let body: Uint8Array | undefined;
    try {
      body = traceSerializer().serializeRequest(batch);
    } catch (err) {
      this.failed(batch.length, `cannot encode spans: ${(err as Error).message}`);
      return;
    }
    if (!body) return;
    this.inFlight++;
    this.deps.stats.http_reports_sent++;
    const done = this.post(body).then(
      (status) => {
        if (status >= 200 && status < 300) {
          this.deps.stats.http_reports_success++;
          this.deps.stats.spans_sent += batch.length;
        } else {
          this.failed(batch.length, `collector answered ${status}`);
        }
      },
      (err: Error) => this.failed(batch.length, err.message),
    );
    const tracked = done.finally(() => {
      this.inFlight--;
      this.pending.delete(tracked);
      // Spans that waited for a free slot go out now rather than after another interval.
      if (!this.closed && this.queue.length >= this.limits.minFlushSpans) this.send();
      else if (!this.closed && this.queue.length > 0 && !this.timer) {
        this.timer = setTimeout(() => {
          this.timer = null;
          this.send();
        }, this.limits.flushIntervalMs);
        this.timer.unref();
      }
    });
    this.pending.add(tracked);
  }

  private failed(spans: number, reason: string): void {
    this.deps.stats.http_reports_failed++;
    this.deps.stats.spans_dropped += spans;
    const now = Date.now();
    if (now - this.lastFailureLog < FAILURE_LOG_INTERVAL_MS) return;
    this.lastFailureLog = now;
    this.deps.logger.warn('trace_export_failed', {
      collector: this.endpoint.uri,
      spans,
      reason,
      hint: 'spans are dropped until the collector is reachable; requests are not affected',
    });
  }

  /**
   * The collector's address: an endpoint of http_uri.cluster when the proxy has that cluster
   * (a collector in the mesh), else the URI's own host and port.
   */
  private target(): { host: string; port: number } {
    const cluster = this.endpoint.cluster ? this.deps.clusters?.get(this.endpoint.cluster) : undefined;
    const host = cluster?.pickHost(undefined);
    if (host) return { host: host.address, port: host.port };
    return { host: this.url.hostname.replace(/^\[|\]$/g, ''), port: Number(this.url.port || 80) };
  }

  private post(body: Uint8Array): Promise<number> {
    const { host, port } = this.target();
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host,
          port,
          method: 'POST',
          path: `${this.url.pathname}${this.url.search}`,
          agent: this.agent,
          headers: {
            host: this.url.host,
            'content-type': 'application/x-protobuf',
            'content-length': body.length,
            ...Object.fromEntries(this.endpoint.headers),
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        },
      );
      req.setTimeout(this.endpoint.timeoutMs, () => req.destroy(new Error(`no answer within ${this.endpoint.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }
}
