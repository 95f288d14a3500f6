// The headers a Bookinfo service copies from its incoming request onto every outgoing call. The
// sidecars create the spans; the application only carries the context across, which is what ties
// productpage -> reviews -> ratings into one trace. Same list as Istio's samples (productpage.py
// getForwardHeaders, reviews' headers_to_propagate); see
// https://istio.io/latest/docs/tasks/observability/distributed-tracing/overview/#trace-context-propagation
import type { IncomingHttpHeaders } from 'node:http';

export const TRACE_CONTEXT_HEADERS: readonly string[] = [
  // Every application should propagate x-request-id: Istio uses it in access logs and for
  // consistent trace and log sampling.
  'x-request-id',
  // W3C Trace Context.
  'traceparent',
  'tracestate',
  // Zipkin B3, single- and multi-header forms.
  'b3',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
  // Lightstep, Datadog, Cloud Trace, gRPC binary context, SkyWalking.
  'x-ot-span-context',
  'x-datadog-trace-id',
  'x-datadog-parent-id',
  'x-datadog-sampling-priority',
  'x-cloud-trace-context',
  'grpc-trace-bin',
  'sw8',
];

/** Application headers the samples forward too: the signed-in user (routing key) and the client. */
export const APPLICATION_HEADERS: readonly string[] = ['end-user', 'user-agent'];

/** The subset of `incoming` named in `names` (lower-case), as single string values. */
export function pickHeaders(incoming: IncomingHttpHeaders, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = incoming[name];
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/** Trace context plus end-user and user-agent: what details, reviews and ratings calls carry. */
export function propagatedHeaders(incoming: IncomingHttpHeaders): Record<string, string> {
  return pickHeaders(incoming, [...TRACE_CONTEXT_HEADERS, ...APPLICATION_HEADERS]);
}
