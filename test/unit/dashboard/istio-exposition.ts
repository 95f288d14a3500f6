// Test support: Prometheus text in the shape a proxy serves Istio's standard metrics, for one
// or more edges, so the dashboard's math is tested on what it will really read.

export interface EdgeSpec {
  reporter: 'source' | 'destination';
  from: string;
  to: string;
  /** Default "<to without -vN>". */
  service?: string;
  namespace?: string;
  /** response code -> cumulative count */
  codes: Record<string, number>;
  /** cumulative bucket counts for Istio's bounds up to 100 ms: [<=1, <=5, <=10, <=25, <=50, <=100, +Inf] */
  durations?: number[];
  mtls?: boolean;
  flags?: string;
  protocol?: string;
}

const BOUNDS = ['1', '5', '10', '25', '50', '100', '+Inf'];

const appOf = (w: string) => w.replace(/-v\d+$/, '');
const versionOf = (w: string) => /-(v\d+)$/.exec(w)?.[1] ?? 'unknown';

function labelsOf(e: EdgeSpec): string {
  const ns = e.namespace ?? 'default';
  const service = e.service ?? appOf(e.to);
  const labels: Record<string, string> = {
    reporter: e.reporter,
    source_workload: e.from,
    source_workload_namespace: e.from === 'unknown' ? 'unknown' : e.from === 'istio-ingressgateway' ? 'istio-system' : ns,
    source_principal: e.from === 'unknown' ? 'unknown' : `spiffe://cluster.local/ns/${ns}/sa/${e.from}`,
    source_app: e.from === 'unknown' ? 'unknown' : appOf(e.from),
    source_version: e.from === 'unknown' ? 'unknown' : versionOf(e.from),
    destination_workload: e.to,
    destination_workload_namespace: e.to === 'unknown' ? 'unknown' : ns,
    destination_app: e.to === 'unknown' ? 'unknown' : appOf(e.to),
    destination_version: e.to === 'unknown' ? 'unknown' : versionOf(e.to),
    destination_service: service.includes('.') ? service : `${service}.${ns}.svc.cluster.local`,
    destination_service_name: service,
    destination_service_namespace: service.includes('.') ? 'unknown' : ns,
    request_protocol: e.protocol ?? 'http',
    connection_security_policy: e.reporter === 'source' ? 'unknown' : e.mtls ? 'mutual_tls' : 'none',
  };
  return Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',');
}

/** The exposition text of one proxy reporting `edges`. */
export function istioExposition(edges: EdgeSpec[]): string {
  const lines = ['# TYPE istio_requests_total counter'];
  for (const e of edges) {
    for (const [code, n] of Object.entries(e.codes)) {
      lines.push(`istio_requests_total{response_code="${code}",grpc_response_status="",response_flags="${e.flags ?? '-'}",${labelsOf(e)}} ${n}`);
    }
  }
  lines.push('# TYPE istio_request_duration_milliseconds histogram');
  for (const e of edges) {
    if (!e.durations) continue;
    const total = Object.values(e.codes).reduce((a, b) => a + b, 0);
    BOUNDS.forEach((le, i) => lines.push(`istio_request_duration_milliseconds_bucket{${labelsOf(e)},response_code="200",le="${le}"} ${e.durations![i]}`));
    lines.push(`istio_request_duration_milliseconds_sum{${labelsOf(e)},response_code="200"} ${total * 10}`);
    lines.push(`istio_request_duration_milliseconds_count{${labelsOf(e)},response_code="200"} ${total}`);
  }
  lines.push('# TYPE envoy_server_live gauge', 'envoy_server_live 1');
  return lines.join('\n') + '\n';
}
