// The golden signals of some traffic over some seconds: request rate, error share, p50/p99
// latency, mTLS share, TCP throughput. One definition shared by graph edges, nodes and plots.
import { histogramQuantile } from './histogram';
import { addTraffic, emptyTraffic, type EdgeIdentity, type EdgeSeries, type EdgeTraffic } from './istio-traffic';

export interface TrafficNumbers {
  /** Requests in the interval. */
  requests: number;
  /** Requests per second. */
  rps: number;
  /** Share of requests that failed with 5xx (or a gRPC error), 0..1; null without requests. */
  errorRate: number | null;
  /** Share of 4xx, 0..1; null without requests. */
  clientErrorRate: number | null;
  /** Milliseconds; null without duration samples. */
  p50: number | null;
  p99: number | null;
  /** Share of requests (TCP: connections) the destination saw over mutual TLS; null when unknown. */
  mtlsShare: number | null;
  /** Response code -> requests per second. */
  codes: Record<string, number>;
  tcp?: { sentBytesPerSecond: number; receivedBytesPerSecond: number; connectionsPerSecond: number };
}

/**
 * Kiali's rule for not counting a request twice: the destination's report counts (it knows the
 * mTLS state and the real outcome); the source's report counts only where no destination report
 * exists — the destination has no proxy, or the request never reached it (`unreached`).
 */
export function countedInGraph(id: EdgeIdentity, meshedWorkloads: ReadonlySet<string>): boolean {
  if (id.reporter === 'destination') return true;
  if (id.reporter !== 'source') return false;
  return id.unreached || id.destinationWorkload === 'unknown' || !meshedWorkloads.has(`${id.destinationNamespace}/${id.destinationWorkload}`);
}

/** Traffic summed over series, with the part the destination reported kept apart for mTLS. */
export class TrafficSum {
  readonly traffic: EdgeTraffic = emptyTraffic();
  /** Requests and connections reported by destinations: the base of the mTLS share. */
  private destinationRequests = 0;
  private destinationMtlsRequests = 0;
  private destinationConnections = 0;
  private destinationMtlsConnections = 0;

  add(series: EdgeSeries): void {
    addTraffic(this.traffic, series.traffic);
    if (series.identity.reporter === 'destination') {
      this.destinationRequests += series.traffic.requests;
      this.destinationMtlsRequests += series.traffic.mtlsRequests;
      this.destinationConnections += series.traffic.tcpOpened;
      this.destinationMtlsConnections += series.traffic.tcpMtlsOpened;
    }
  }

  numbers(seconds: number): TrafficNumbers {
    const t = this.traffic;
    const per = (n: number) => (seconds > 0 ? n / seconds : 0);
    const codes: Record<string, number> = {};
    for (const [code, n] of [...t.codes].sort((a, b) => (a[0] < b[0] ? -1 : 1))) codes[code] = round(per(n));
    const p50 = histogramQuantile(0.5, t.duration);
    const p99 = histogramQuantile(0.99, t.duration);
    const mtlsShare =
      this.destinationRequests > 0
        ? this.destinationMtlsRequests / this.destinationRequests
        : this.destinationConnections > 0
          ? this.destinationMtlsConnections / this.destinationConnections
          : null;
    const isTcp = t.tcpOpened > 0 || t.tcpSentBytes > 0 || t.tcpReceivedBytes > 0;
    return {
      requests: round(t.requests),
      rps: round(per(t.requests)),
      errorRate: t.requests > 0 ? round(t.serverErrors / t.requests, 4) : null,
      clientErrorRate: t.requests > 0 ? round(t.clientErrors / t.requests, 4) : null,
      p50: p50 === undefined ? null : round(p50),
      p99: p99 === undefined ? null : round(p99),
      mtlsShare: mtlsShare === null ? null : round(mtlsShare, 4),
      codes,
      ...(isTcp
        ? { tcp: { sentBytesPerSecond: round(per(t.tcpSentBytes)), receivedBytesPerSecond: round(per(t.tcpReceivedBytes)), connectionsPerSecond: round(per(t.tcpOpened)) } }
        : {}),
    };
  }
}

function round(n: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
