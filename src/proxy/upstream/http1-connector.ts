// HTTP/1.1 to one endpoint: an undici Pool of keep-alive connections, driven through
// `dispatch` with a handler (no promise or stream wrapper per request; measured fastest). TLS
// endpoints get a connect function that looks the TLS material up per new connection, so a
// rotated certificate is used from the next connection on; plaintext pools are untouched.
import type { Duplex } from 'node:stream';
import { buildConnector, Pool } from 'undici';
import type { UpstreamTlsSettings } from '../config/upstream-tls';
import { SecureContextCache, type ClientTls } from '../identity/secure-contexts';
import { HOP_BY_HOP, UpstreamFailure, type EndpointConnector, type UpstreamCall, type UpstreamHandler, type UpstreamRequest } from './upstream-call';

export interface PoolSettings {
  /** Connections this endpoint may open; 0 or Infinity: no limit. */
  maxConnections: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  /** 0: unlimited. */
  maxRequestsPerConnection: number;
  /** TLS origination; compared by identity (a new cluster config makes new pools). */
  tls?: UpstreamTlsSettings;
  /** Resolves `tls` (SDS secrets) per handshake; a cache without secrets when absent. */
  contexts?: SecureContextCache;
}

const NO_SECRETS = new SecureContextCache(undefined);

/** TLS material for a new connection now; a missing SDS secret is a connection failure (UF). */
export function upstreamClientTls(t: UpstreamTlsSettings, contexts: SecureContextCache | undefined): ClientTls {
  try {
    return (contexts ?? NO_SECRETS).client(t);
  } catch (err) {
    throw new UpstreamFailure('connect-failure', `TLS error: ${(err as Error).message}`, true);
  }
}

/**
 * undici's connect for a TLS endpoint: the material is resolved for every new connection, and
 * one undici connector (with its TLS session cache, for resumption) is kept per material version,
 * so sessions made with a replaced certificate are not resumed.
 */
export function upstreamTlsConnector(t: UpstreamTlsSettings, contexts: SecureContextCache | undefined, timeoutMs: number): buildConnector.connector {
  let current: { key: string; connect: buildConnector.connector } | undefined;
  return (opts, callback) => {
    let material: ClientTls;
    try {
      material = upstreamClientTls(t, contexts);
    } catch (err) {
      callback(err as Error, null);
      return;
    }
    if (!current || current.key !== material.key) current = { key: material.key, connect: buildConnector({ ...material.options, timeout: timeoutMs }) };
    // The configured SNI, not the request's Host: Envoy sends only what `sni` says.
    current.connect({ ...opts, servername: t.sni }, callback);
  };
}

const CONNECT_ERRORS = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CONNECT',
]);

const TLS_ERROR = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED|SELF_SIGNED_CERT|HOSTNAME_MISMATCH)/;

/** Maps a Node/undici error to an Envoy-style upstream failure. */
export function classifyUpstreamError(err: unknown, beforeHeaders: boolean): UpstreamFailure {
  if (err instanceof UpstreamFailure) return err;
  const e = err as { code?: string; message?: string; name?: string };
  const code = e?.code ?? '';
  const detail = `${code || e?.name || 'error'}: ${e?.message ?? String(err)}`;
  if (CONNECT_ERRORS.has(code)) return new UpstreamFailure('connect-failure', detail, true);
  // A failed TLS handshake is a connection failure to Envoy ("transport failure reason: TLS error").
  if (TLS_ERROR.test(code)) return new UpstreamFailure('connect-failure', `TLS error: ${detail}`, true);
  if (code === 'UND_ERR_ABORTED' || e?.name === 'AbortError') return new UpstreamFailure('local-reset', detail, beforeHeaders);
  if (code.startsWith('HPE_') || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || code === 'UND_ERR_INVALID_ARG') {
    return new UpstreamFailure('protocol-error', detail, beforeHeaders);
  }
  return new UpstreamFailure('connection-termination', detail, beforeHeaders);
}

/** Converts undici's raw header buffers to lower-case string pairs without hop-by-hop headers. */
export function rawHeadersToList(raw: Buffer[] | string[] | null | undefined): string[] {
  const out: string[] = [];
  if (!raw) return out;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toString('latin1').toLowerCase();
    if (HOP_BY_HOP.has(name)) continue;
    out.push(name, raw[i + 1].toString('latin1'));
  }
  return out;
}

class Http1Call implements UpstreamCall {
  private abortFn: ((err?: Error) => void) | null = null;
  private resumeFn: (() => void) | null = null;
  private aborted = false;
  private gotHeaders = false;
  private done = false;

  constructor(private readonly handler: UpstreamHandler) {}

  abort(): void {
    if (this.done || this.aborted) return;
    this.aborted = true;
    this.abortFn?.(new UpstreamFailure('local-reset', 'aborted by the proxy', !this.gotHeaders));
  }

  resume(): void {
    this.resumeFn?.();
  }

  // ---- undici's dispatch handler protocol ----
  onConnect(abort: (err?: Error) => void): void {
    this.abortFn = abort;
    if (this.aborted) abort(new UpstreamFailure('local-reset', 'aborted by the proxy', true));
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx informational: not forwarded
    this.resumeFn = resume;
    this.gotHeaders = true;
    if (!this.aborted) this.handler.onHeaders(statusCode, rawHeadersToList(rawHeaders), false);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.aborted) return true;
    return this.handler.onData(chunk);
  }

  onComplete(trailers: Buffer[] | null): void {
    this.done = true;
    if (!this.aborted) this.handler.onEnd(trailers && trailers.length ? rawHeadersToList(trailers) : null);
  }

  onError(err: Error): void {
    if (this.done) return;
    this.done = true;
    // After abort() the router has moved on; it expects nothing more from this call.
    if (!this.aborted) this.handler.onError(classifyUpstreamError(err, !this.gotHeaders));
  }

  onUpgrade(statusCode: number, rawHeaders: Buffer[] | string[], socket: Duplex): void {
    this.done = true;
    this.gotHeaders = true;
    if (this.aborted) {
      socket.destroy();
      return;
    }
    const headers = rawHeadersToList(rawHeaders);
    if (this.handler.onUpgrade) this.handler.onUpgrade(statusCode, headers, socket);
    else socket.destroy();
  }
}

export class Http1Connector implements EndpointConnector {
  private readonly pool: Pool;

  constructor(origin: string, settings: PoolSettings) {
    const limit = settings.maxConnections > 0 && Number.isFinite(settings.maxConnections) && settings.maxConnections < 2 ** 31 ? settings.maxConnections : null;
    this.pool = new Pool(origin, {
      connections: limit,
      pipelining: 1,
      // Our own timers (route timeout, per-try timeout) govern; undici's would fire first.
      headersTimeout: 0,
      bodyTimeout: 0,
      connectTimeout: settings.connectTimeoutMs > 0 ? settings.connectTimeoutMs : 10_000,
      // Shorter than common server idle timeouts, so the pool closes first and a request
      // rarely meets a connection the server is closing (the keep-alive race).
      keepAliveTimeout: Math.min(settings.idleTimeoutMs || 4_000, 4_000),
      keepAliveMaxTimeout: Math.max(1, settings.idleTimeoutMs || 600_000),
      maxRequestsPerClient: settings.maxRequestsPerConnection > 0 ? settings.maxRequestsPerConnection : undefined,
      strictContentLength: false,
      ...(settings.tls ? { connect: upstreamTlsConnector(settings.tls, settings.contexts, settings.connectTimeoutMs > 0 ? settings.connectTimeoutMs : 10_000) } : {}),
    });
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): UpstreamCall {
    const call = new Http1Call(handler);
    try {
      this.pool.dispatch(
        {
          method: request.method as 'GET',
          path: request.path,
          headers: request.headers as Record<string, string>,
          body: request.body,
          upgrade: request.upgrade ?? null,
          ...(request.servername ? { servername: request.servername } : {}),
        } as never,
        call as never,
      );
    } catch (err) {
      queueMicrotask(() => call.onError(err as Error));
    }
    return call;
  }

  connections(): number {
    return this.pool.stats.connected;
  }

  close(): Promise<void> {
    return this.pool.close().catch(() => undefined);
  }

  destroy(): void {
    this.pool.destroy().catch(() => undefined);
  }
}
