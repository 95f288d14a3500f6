// Istio's standard metrics (istio_requests_total, istio_request_duration_milliseconds,
// istio_request_bytes / istio_response_bytes, istio_tcp_*) read out of one proxy's scrape and
// summed per edge: who called whom, as which reporter. Labels are Istio's
// (https://istio.io/latest/docs/reference/config/metrics/).
import { addBuckets, bucketDelta, type BucketCounts } from './histogram';
import type { ParsedExposition } from './prometheus-text';

/** One edge as one reporter saw it. Workload/app/version values are "unknown" when not known. */
export interface EdgeIdentity {
  /** "source" (the caller's proxy) or "destination" (the callee's). */
  reporter: string;
  sourceWorkload: string;
  sourceNamespace: string;
  sourceApp: string;
  sourceVersion: string;
  destinationWorkload: string;
  destinationNamespace: string;
  destinationApp: string;
  destinationVersion: string;
  /** The destination host as called (FQDN or external host). */
  destinationService: string;
  destinationServiceName: string;
  destinationServiceNamespace: string;
  /** http, grpc or tcp. */
  protocol: string;
  /**
   * The source's proxy answered itself (fault abort FI, no healthy upstream UH, connection
   * failure UF, overflow UO, no route NR, no cluster NC): the destination never saw the request,
   * so only the source's report has it.
   */
  unreached: boolean;
}

/** Counters of one edge; cumulative when scraped, deltas inside the history. */
export interface EdgeTraffic {
  requests: number;
  /** 5xx, or a gRPC status other than OK. */
  serverErrors: number;
  clientErrors: number;
  /** Requests with connection_security_policy="mutual_tls". */
  mtlsRequests: number;
  /** Response code -> requests. */
  codes: Map<string, number>;
  /** istio_request_duration_milliseconds buckets (ms). */
  duration: BucketCounts;
  durationCount: number;
  durationSumMs: number;
  requestBytes: number;
  responseBytes: number;
  tcpSentBytes: number;
  tcpReceivedBytes: number;
  tcpOpened: number;
  tcpClosed: number;
  tcpMtlsOpened: number;
}

export interface EdgeSeries {
  identity: EdgeIdentity;
  traffic: EdgeTraffic;
}

const UNREACHED_FLAGS = new Set(['FI', 'UH', 'UF', 'UO', 'NR', 'NC']);

const REQUEST_METRICS = new Set([
  'istio_requests_total',
  'istio_request_duration_milliseconds_bucket',
  'istio_request_duration_milliseconds_sum',
  'istio_request_duration_milliseconds_count',
  'istio_request_bytes_sum',
  'istio_response_bytes_sum',
  'istio_tcp_sent_bytes_total',
  'istio_tcp_received_bytes_total',
  'istio_tcp_connections_opened_total',
  'istio_tcp_connections_closed_total',
]);

export function emptyTraffic(): EdgeTraffic {
  return {
    requests: 0,
    serverErrors: 0,
    clientErrors: 0,
    mtlsRequests: 0,
    codes: new Map(),
    duration: new Map(),
    durationCount: 0,
    durationSumMs: 0,
    requestBytes: 0,
    responseBytes: 0,
    tcpSentBytes: 0,
    tcpReceivedBytes: 0,
    tcpOpened: 0,
    tcpClosed: 0,
    tcpMtlsOpened: 0,
  };
}

const label = (labels: Record<string, string>, name: string) => labels[name] || 'unknown';

function identityOf(labels: Record<string, string>, metric: string): EdgeIdentity {
  const flags = (labels.response_flags ?? '-').split(',');
  return {
    reporter: label(labels, 'reporter'),
    sourceWorkload: label(labels, 'source_workload'),
    sourceNamespace: label(labels, 'source_workload_namespace'),
    sourceApp: label(labels, 'source_app'),
    sourceVersion: label(labels, 'source_version'),
    destinationWorkload: label(labels, 'destination_workload'),
    destinationNamespace: label(labels, 'destination_workload_namespace'),
    destinationApp: label(labels, 'destination_app'),
    destinationVersion: label(labels, 'destination_version'),
    destinationService: label(labels, 'destination_service'),
    destinationServiceName: label(labels, 'destination_service_name'),
    destinationServiceNamespace: label(labels, 'destination_service_namespace'),
    protocol: metric.startsWith('istio_tcp_') ? 'tcp' : (labels.request_protocol || 'http'),
    unreached: flags.some((f) => UNREACHED_FLAGS.has(f)),
  };
}

/** A stable key for an identity (the map key of every per-edge table). */
export function identityKey(id: EdgeIdentity): string {
  return [
    id.reporter,
    id.sourceNamespace,
    id.sourceWorkload,
    id.sourceApp,
    id.sourceVersion,
    id.destinationNamespace,
    id.destinationWorkload,
    id.destinationApp,
    id.destinationVersion,
    id.destinationService,
    id.destinationServiceName,
    id.destinationServiceNamespace,
    id.protocol,
    id.unreached ? 'unreached' : 'reached',
  ].join('\u0000');
}

function isServerError(protocol: string, code: string, grpcStatus: string | undefined): boolean {
  if (protocol === 'grpc' && grpcStatus !== undefined && grpcStatus !== '' && grpcStatus !== '0') return true;
  return code.startsWith('5');
}

/**
 * The istio_* series of one scrape, summed per edge identity (response codes, flags and security
 * policy become counters of the edge instead of separate series).
 */
export function extractIstioTraffic(parsed: ParsedExposition): Map<string, EdgeSeries> {
  const edges = new Map<string, EdgeSeries>();
  for (const s of parsed.samples) {
    if (!REQUEST_METRICS.has(s.name) || !Number.isFinite(s.value)) continue;
    const identity = identityOf(s.labels, s.name);
    const key = identityKey(identity);
    let edge = edges.get(key);
    if (!edge) {
      edge = { identity, traffic: emptyTraffic() };
      edges.set(key, edge);
    }
    const t = edge.traffic;
    const mtls = s.labels.connection_security_policy === 'mutual_tls';
    switch (s.name) {
      case 'istio_requests_total': {
        const code = s.labels.response_code ?? '';
        t.requests += s.value;
        if (isServerError(identity.protocol, code, s.labels.grpc_response_status)) t.serverErrors += s.value;
        else if (code.startsWith('4')) t.clientErrors += s.value;
        if (mtls) t.mtlsRequests += s.value;
        t.codes.set(code || '0', (t.codes.get(code || '0') ?? 0) + s.value);
        break;
      }
      case 'istio_request_duration_milliseconds_bucket': {
        const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
        if (!Number.isNaN(le)) t.duration.set(le, (t.duration.get(le) ?? 0) + s.value);
        break;
      }
      case 'istio_request_duration_milliseconds_sum':
        t.durationSumMs += s.value;
        break;
      case 'istio_request_duration_milliseconds_count':
        t.durationCount += s.value;
        break;
      case 'istio_request_bytes_sum':
        t.requestBytes += s.value;
        break;
      case 'istio_response_bytes_sum':
        t.responseBytes += s.value;
        break;
      case 'istio_tcp_sent_bytes_total':
        t.tcpSentBytes += s.value;
        break;
      case 'istio_tcp_received_bytes_total':
        t.tcpReceivedBytes += s.value;
        break;
      case 'istio_tcp_connections_opened_total':
        t.tcpOpened += s.value;
        if (mtls) t.tcpMtlsOpened += s.value;
        break;
      case 'istio_tcp_connections_closed_total':
        t.tcpClosed += s.value;
        break;
    }
  }
  return edges;
}

const SCALAR_FIELDS = [
  'requests',
  'serverErrors',
  'clientErrors',
  'mtlsRequests',
  'durationCount',
  'durationSumMs',
  'requestBytes',
  'responseBytes',
  'tcpSentBytes',
  'tcpReceivedBytes',
  'tcpOpened',
  'tcpClosed',
  'tcpMtlsOpened',
] as const;

/**
 * later - earlier, or undefined when any counter went down: the proxy restarted and its counters
 * began again from zero (Prometheus' rate() treats a decrease the same way).
 */
export function trafficDelta(later: EdgeTraffic, earlier: EdgeTraffic | undefined): EdgeTraffic | undefined {
  if (!earlier) return cloneTraffic(later);
  const out = emptyTraffic();
  for (const f of SCALAR_FIELDS) {
    const d = later[f] - earlier[f];
    if (d < 0) return undefined;
    out[f] = d;
  }
  for (const [code, n] of later.codes) {
    const d = n - (earlier.codes.get(code) ?? 0);
    if (d < 0) return undefined;
    if (d > 0) out.codes.set(code, d);
  }
  out.duration = bucketDelta(later.duration, earlier.duration);
  for (const d of out.duration.values()) if (d < 0) return undefined;
  return out;
}

export function addTraffic(into: EdgeTraffic, more: EdgeTraffic): void {
  for (const f of SCALAR_FIELDS) into[f] += more[f];
  for (const [code, n] of more.codes) into.codes.set(code, (into.codes.get(code) ?? 0) + n);
  addBuckets(into.duration, more.duration);
}

export function cloneTraffic(t: EdgeTraffic): EdgeTraffic {
  const out = emptyTraffic();
  addTraffic(out, t);
  return out;
}

/** Whether the edge carried anything at all. */
export function hasTraffic(t: EdgeTraffic): boolean {
  return t.requests > 0 || t.tcpOpened > 0 || t.tcpSentBytes > 0 || t.tcpReceivedBytes > 0;
}
