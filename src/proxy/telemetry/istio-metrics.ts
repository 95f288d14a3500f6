// Istio's standard metrics (istio_requests_total, istio_request_duration_milliseconds,
// istio_request_bytes, istio_response_bytes, istio_tcp_*) with Istio's labels, in label order of
// istio/proxy's stats filter, kept as plain counters and bucket arrays and rendered in Prometheus
// text on scrape.
//
// Cheap on the request path: a label set is an `edge` (reporter, source, destination, protocol,
// security policy) resolved by the caller from objects it already holds, and within an edge the
// series of one response code / gRPC status / flags combination is found by one numeric map
// lookup; label text is escaped and joined once, when a series is created, never per request.

/** Envoy's default histogram buckets, which Istio's metrics use: milliseconds and bytes alike. */
export const ISTIO_BUCKETS: readonly number[] = Object.freeze([
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
]);

/** Label sets beyond this are not recorded (peer labels come from the network). */
export const DEFAULT_MAX_SERIES = 10_000;

export const UNKNOWN = 'unknown';

/** Source or destination labels, `unknown` already filled in for missing values. */
export interface PeerLabels {
  workload: string;
  canonicalService: string;
  canonicalRevision: string;
  namespace: string;
  principal: string;
  app: string;
  version: string;
  cluster: string;
}

export interface EdgeLabels {
  reporter: 'source' | 'destination';
  source: PeerLabels;
  destination: PeerLabels & { service: string; serviceName: string; serviceNamespace: string };
  /** `http`, `grpc` or `tcp`. */
  protocol: 'http' | 'grpc' | 'tcp';
  /** `mutual_tls`, `none`, or `unknown` (what a client-side reporter says, as in Istio). */
  securityPolicy: 'mutual_tls' | 'none' | 'unknown';
}

/** Envoy's response flags in the order ResponseFlagUtils::toShortString prints them. */
const FLAG_ORDER: readonly string[] = [
  'LH', 'UH', 'UT', 'LR', 'UR', 'UF', 'UC', 'UO', 'NR', 'DI', 'FI', 'RL', 'UAEX', 'RLSE', 'DC', 'URX', 'SI', 'IH', 'DPE',
  'UMSDR', 'RFCF', 'NFCF', 'DT', 'UPE', 'NC', 'OM', 'DF', 'DO', 'DR',
];

/** Response flags as Envoy prints them: `-` for none, else comma-joined in Envoy's order, each once. */
export function responseFlagsText(flags: readonly string[]): string {
  if (flags.length === 0) return '-';
  if (flags.length === 1) return flags[0];
  const rank = (f: string) => {
    const i = FLAG_ORDER.indexOf(f);
    return i < 0 ? FLAG_ORDER.length : i;
  };
  return [...new Set(flags)].sort((a, b) => rank(a) - rank(b)).join(',');
}

/** Prometheus label value escaping: backslash, double quote, newline. */
export function escapeLabelValue(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v;
}

function label(name: string, value: string): string {
  return `${name}="${escapeLabelValue(value)}"`;
}

/** The labels before request_protocol, in the stats filter's order. */
function peerInfoLabels(e: EdgeLabels): string {
  const s = e.source;
  const d = e.destination;
  return [
    label('reporter', e.reporter),
    label('source_workload', s.workload),
    label('source_canonical_service', s.canonicalService),
    label('source_canonical_revision', s.canonicalRevision),
    label('source_workload_namespace', s.namespace),
    label('source_principal', s.principal),
    label('source_app', s.app),
    label('source_version', s.version),
    label('source_cluster', s.cluster),
    label('destination_workload', d.workload),
    label('destination_workload_namespace', d.namespace),
    label('destination_principal', d.principal),
    label('destination_app', d.app),
    label('destination_version', d.version),
    label('destination_service', d.service),
    label('destination_canonical_service', d.canonicalService),
    label('destination_canonical_revision', d.canonicalRevision),
    label('destination_service_name', d.serviceName),
    label('destination_service_namespace', d.serviceNamespace),
    label('destination_cluster', d.cluster),
  ].join(',');
}

/** Counts per bucket (not cumulative; the last slot is +Inf), sum and count. */
export class Histogram {
  readonly counts = new Float64Array(ISTIO_BUCKETS.length + 1);
  sum = 0;
  count = 0;

  observe(v: number): void {
    let i = 0;
    const n = ISTIO_BUCKETS.length;
    while (i < n && v > ISTIO_BUCKETS[i]) i++;
    this.counts[i]++;
    this.sum += v;
    this.count++;
  }
}

export class HttpSeries {
  requests = 0;
  readonly duration = new Histogram();
  readonly requestBytes = new Histogram();
  readonly responseBytes = new Histogram();
  constructor(readonly labels: string) {}
}

export class TcpSeries {
  opened = 0;
  closed = 0;
  sent = 0;
  received = 0;
  constructor(readonly labels: string) {}
}

/** One HTTP label set without the response part: its series by code / gRPC status / flags. */
export class HttpEdge {
  /** Series without response flags, keyed by code * 32 + gRPC status + 1 (0: no gRPC status; statuses 0-16 are gRPC's). */
  private readonly plain = new Map<number, HttpSeries>();
  /** Series with response flags (rare), keyed by text. */
  private flagged: Map<string, HttpSeries> | null = null;

  constructor(
    private readonly metrics: IstioMetrics,
    /** Labels up to and including request_protocol. */
    private readonly head: string,
    /** `,connection_security_policy="..."`. */
    private readonly tail: string,
  ) {}

  /** The series for this response; undefined when the series limit is reached. */
  series(code: number, grpcStatus: number, flags: readonly string[]): HttpSeries | undefined {
    if (flags.length === 0 && grpcStatus < 31) {
      const key = code * 32 + (grpcStatus + 1);
      let s = this.plain.get(key);
      if (!s) {
        s = this.metrics.newHttpSeries(this.labelsFor(code, grpcStatus, '-'));
        if (s) this.plain.set(key, s);
      }
      return s;
    }
    const text = responseFlagsText(flags);
    const key = `${code}|${grpcStatus}|${text}`;
    const map = this.flagged ?? (this.flagged = new Map());
    let s = map.get(key);
    if (!s) {
      s = this.metrics.newHttpSeries(this.labelsFor(code, grpcStatus, text));
      if (s) map.set(key, s);
    }
    return s;
  }

  private labelsFor(code: number, grpcStatus: number, flags: string): string {
    const grpc = grpcStatus >= 0 ? String(grpcStatus) : '';
    return `${this.head},response_code="${code}",grpc_response_status="${grpc}",${label('response_flags', flags)}${this.tail}`;
  }
}

/** One TCP label set without the flags: its series by response flags. */
export class TcpEdge {
  private readonly byFlags = new Map<string, TcpSeries>();
  constructor(
    private readonly metrics: IstioMetrics,
    private readonly head: string,
    private readonly tail: string,
  ) {}

  series(flags: readonly string[]): TcpSeries | undefined {
    const text = responseFlagsText(flags);
    let s = this.byFlags.get(text);
    if (!s) {
      s = this.metrics.newTcpSeries(`${this.head},${label('response_flags', text)}${this.tail}`);
      if (s) this.byFlags.set(text, s);
    }
    return s;
  }
}

const HELP: Record<string, string> = {
  istio_requests_total: 'Requests handled by an Istio proxy.',
  istio_request_duration_milliseconds: 'Duration of requests.',
  istio_request_bytes: 'HTTP request body sizes.',
  istio_response_bytes: 'HTTP response body sizes.',
  istio_tcp_connections_opened_total: 'TCP connections opened.',
  istio_tcp_connections_closed_total: 'TCP connections closed.',
  istio_tcp_sent_bytes_total: 'Bytes sent to the downstream of TCP connections.',
  istio_tcp_received_bytes_total: 'Bytes received from the downstream of TCP connections.',
};

const BUCKET_LABELS = [...ISTIO_BUCKETS.map(String), '+Inf'];

/** The registry of one proxy. */
export class IstioMetrics {
  private readonly httpEdges = new Map<string, HttpEdge>();
  private readonly tcpEdges = new Map<string, TcpEdge>();
  private readonly http: HttpSeries[] = [];
  private readonly tcp: TcpSeries[] = [];
  /** Label sets refused because of the limit. */
  overflow = 0;

  constructor(private readonly maxSeries = DEFAULT_MAX_SERIES) {}

  /** The edge for these labels (equal labels give the same edge, whatever objects they came from). */
  httpEdge(e: EdgeLabels): HttpEdge {
    const head = `${peerInfoLabels(e)},${label('request_protocol', e.protocol)}`;
    const tail = `,${label('connection_security_policy', e.securityPolicy)}`;
    const key = head + tail;
    let edge = this.httpEdges.get(key);
    if (!edge) {
      edge = new HttpEdge(this, head, tail);
      this.httpEdges.set(key, edge);
    }
    return edge;
  }

  tcpEdge(e: EdgeLabels): TcpEdge {
    const head = `${peerInfoLabels(e)},${label('request_protocol', 'tcp')}`;
    const tail = `,${label('connection_security_policy', e.securityPolicy)}`;
    const key = head + tail;
    let edge = this.tcpEdges.get(key);
    if (!edge) {
      edge = new TcpEdge(this, head, tail);
      this.tcpEdges.set(key, edge);
    }
    return edge;
  }

  /** One request: Istio records duration in whole milliseconds and sizes in bytes. */
  recordRequest(series: HttpSeries | undefined, durationMs: number, requestBytes: number, responseBytes: number): void {
    if (!series) {
      this.overflow++;
      return;
    }
    series.requests++;
    series.duration.observe(Math.floor(durationMs));
    series.requestBytes.observe(requestBytes);
    series.responseBytes.observe(responseBytes);
  }

  /** @internal for edges: a new series, unless the limit is reached. */
  newHttpSeries(labels: string): HttpSeries | undefined {
    if (this.http.length + this.tcp.length >= this.maxSeries) return undefined;
    const s = new HttpSeries(labels);
    this.http.push(s);
    return s;
  }

  /** @internal for edges. */
  newTcpSeries(labels: string): TcpSeries | undefined {
    if (this.http.length + this.tcp.length >= this.maxSeries) {
      this.overflow++;
      return undefined;
    }
    const s = new TcpSeries(labels);
    this.tcp.push(s);
    return s;
  }

  get seriesCount(): number {
    return this.http.length + this.tcp.length;
  }

  /** Prometheus text exposition (HELP and TYPE per family; empty families are left out). */
  renderPrometheus(): string {
    const out: string[] = [];
    const family = (name: string, type: 'counter' | 'histogram') => out.push(`# HELP ${name} ${HELP[name]}`, `# TYPE ${name} ${type}`);
    if (this.http.length) {
      family('istio_requests_total', 'counter');
      for (const s of this.http) out.push(`istio_requests_total{${s.labels}} ${s.requests}`);
      const histogram = (name: string, pick: (s: HttpSeries) => Histogram) => {
        family(name, 'histogram');
        for (const s of this.http) {
          const h = pick(s);
          let cumulative = 0;
          for (let i = 0; i < BUCKET_LABELS.length; i++) {
            cumulative += h.counts[i];
            out.push(`${name}_bucket{${s.labels},le="${BUCKET_LABELS[i]}"} ${cumulative}`);
          }
          out.push(`${name}_sum{${s.labels}} ${h.sum}`, `${name}_count{${s.labels}} ${h.count}`);
        }
      };
      histogram('istio_request_duration_milliseconds', (s) => s.duration);
      histogram('istio_request_bytes', (s) => s.requestBytes);
      histogram('istio_response_bytes', (s) => s.responseBytes);
    }
    if (this.tcp.length) {
      const counter = (name: string, pick: (s: TcpSeries) => number) => {
        family(name, 'counter');
        for (const s of this.tcp) out.push(`${name}{${s.labels}} ${pick(s)}`);
      };
      counter('istio_tcp_connections_opened_total', (s) => s.opened);
      counter('istio_tcp_connections_closed_total', (s) => s.closed);
      counter('istio_tcp_sent_bytes_total', (s) => s.sent);
      counter('istio_tcp_received_bytes_total', (s) => s.received);
    }
    if (this.overflow) {
      out.push('# HELP weft_istio_metrics_overflow_total Requests and connections not recorded: the label set limit was reached.');
      out.push('# TYPE weft_istio_metrics_overflow_total counter', `weft_istio_metrics_overflow_total ${this.overflow}`);
    }
    return out.length ? out.join('\n') + '\n' : '';
  }
}
