// The one request abstraction between the router and a connection pool: dispatch a request with
// a handler, get headers/data/end/error back, abort or apply backpressure through the call.
import type { Readable } from 'node:stream';

export interface UpstreamRequest {
  method: string;
  /** Path with query string. */
  path: string;
  /** Lower-case names; `host` carries the authority; undefined values are skipped. */
  headers: Record<string, string | string[] | undefined>;
  body: Buffer | Readable | null;
  /** Set for Upgrade requests (websocket). */
  upgrade?: string;
  /** Only a connection that has carried no request yet may take it (after a keep-alive race). */
  freshConnection?: boolean;
}

/**
 * Why an upstream attempt failed. Maps to Envoy's reset reasons and response flags:
 * connect-failure -> UF, connection-termination -> UC, remote-reset / refused-stream -> UR,
 * overflow -> UO, local-reset -> (aborted by us).
 */
export type UpstreamFailureKind =
  | 'connect-failure'
  | 'connection-termination'
  | 'remote-reset'
  | 'refused-stream'
  | 'overflow'
  | 'local-reset'
  | 'protocol-error';

export class UpstreamFailure extends Error {
  readonly code: string;
  constructor(
    readonly kind: UpstreamFailureKind,
    readonly detail: string,
    /** True when no response byte had arrived before the failure. */
    readonly beforeHeaders: boolean,
    /** True when the connection had carried an earlier request (a keep-alive race is possible). */
    readonly reusedConnection = false,
  ) {
    super(`upstream ${kind}: ${detail}`);
    this.code = `WEFT_UPSTREAM_${kind.toUpperCase().replace(/-/g, '_')}`;
  }
}

export interface UpstreamHandler {
  /** Response headers, flat `[name, value, ...]` with lower-case names, hop-by-hop removed. */
  onHeaders(status: number, headers: string[], endStream: boolean): void;
  /** Returns false to ask for a pause; the caller resumes with `call.resume()`. */
  onData(chunk: Buffer): boolean;
  onEnd(trailers: string[] | null): void;
  onError(failure: UpstreamFailure): void;
  /** 101 Switching Protocols: the raw upstream socket, after the response head. */
  onUpgrade?(status: number, headers: string[], socket: import('node:stream').Duplex): void;
}

export interface UpstreamCall {
  abort(): void;
  resume(): void;
}

/** Something that can carry requests to one endpoint (an HTTP/1.1 pool or an HTTP/2 session). */
export interface EndpointConnector {
  /**
   * Sends the request on a free connection, or queues it for one within the cluster's circuit
   * breakers; beyond them the handler gets an `overflow` failure. Handler calls never happen
   * before dispatch returns.
   */
  dispatch(request: UpstreamRequest, handler: UpstreamHandler): UpstreamCall;
  /** Open and opening connections (for /clusters). */
  connections(): number;
  /** Finish in-flight requests, then close. */
  close(): Promise<void>;
  /** Close now, failing in-flight requests. */
  destroy(): void;
}

/**
 * Headers that describe one hop and never cross the proxy (RFC 9110 7.6.1), plus h2 specials.
 * `te` is handled apart: `te: trailers` (gRPC) is forwarded, any other value is dropped.
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'trailer',
  'proxy-authenticate',
  'proxy-authorization',
  'http2-settings',
]);
