// Responses the proxy makes itself, worded as Envoy words them so Istio users recognise them
// ("no healthy upstream", "upstream request timeout", ...), and their gRPC form
// (trailers-only with grpc-status) for gRPC requests.
import type { Exchange } from './exchange';

/** Envoy's response flags (the short form access logs print). */
export type ResponseFlag =
  | 'UH' // no healthy upstream
  | 'UF' // upstream connection failure
  | 'UO' // upstream overflow (circuit breaker)
  | 'NR' // no route
  | 'URX' // upstream retry limit exceeded
  | 'UT' // upstream request timeout
  | 'UC' // upstream connection termination
  | 'UR' // upstream remote reset
  | 'DC' // downstream connection termination
  | 'DI' // fault delay injected
  | 'FI' // fault abort injected
  | 'NC' // no cluster found
  | 'UPE' // upstream protocol error
  | 'DPE'; // downstream protocol error

export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** Envoy's Grpc::Utility::httpToGrpcStatus. */
export function httpToGrpcStatus(status: number): number {
  switch (status) {
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}

export function isGrpcRequest(headers: Record<string, string | string[] | undefined>): boolean {
  const ct = headers['content-type'];
  return typeof ct === 'string' && ct.startsWith('application/grpc');
}

export interface LocalReplyOptions {
  status: number;
  body?: string | Buffer;
  /** Extra response headers, flat list, lower-case names. */
  headers?: string[];
  /** For gRPC requests: the grpc-status to send (default: mapped from `status`). */
  grpcStatus?: number;
  grpc: boolean;
  head: boolean;
  contentType?: string;
}

/** Envoy's message for an upstream reset before response headers. */
export function upstreamResetBody(reason: string): string {
  return `upstream connect error or disconnect/reset before headers. reset reason: ${reason}`;
}

export function sendLocalReply(exchange: Exchange, o: LocalReplyOptions): void {
  if (exchange.headersSent) {
    exchange.reset();
    return;
  }
  const extra = o.headers ?? [];
  if (o.grpc) {
    const grpcStatus = o.grpcStatus ?? httpToGrpcStatus(o.status);
    const message = o.body === undefined ? '' : String(o.body);
    const headers = ['content-type', 'application/grpc', 'grpc-status', String(grpcStatus), ...extra];
    if (message) headers.push('grpc-message', encodeURIComponent(message).replace(/%20/g, ' '));
    exchange.respond(200, headers, true);
    return;
  }
  const body = o.body === undefined ? undefined : typeof o.body === 'string' ? Buffer.from(o.body) : o.body;
  const headers = [...extra];
  if (body && body.length) headers.push('content-type', o.contentType ?? 'text/plain', 'content-length', String(body.length));
  else headers.push('content-length', '0');
  if (!body || body.length === 0 || o.head) {
    exchange.respond(o.status, headers, true);
    return;
  }
  exchange.respond(o.status, headers, false);
  exchange.write(body);
  exchange.end(null);
}
