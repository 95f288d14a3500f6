// HTTP/1.1 to one endpoint: Envoy's HTTP/1 connection pool (connection-pool.ts) whose connections
// are undici Clients, each given one socket the pool opened itself (so it counts, times and
// closes connections as Envoy does), driven through `dispatch` with a handler — no promise or
// stream wrapper per request. An idle connection closes after at most 4 s (sooner when the
// server's Keep-Alive hint says so), shorter than common server idle timeouts, so a request rarely
// meets a connection the server is closing; when it does (the keep-alive race), the failure says
// the connection was reused and the router may send an idempotent request once more.
import type * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { Client } from 'undici';
import { ConnectionPool, PooledConnection, PooledRequest, type PoolEndpoint, type PoolSettings } from './connection-pool';
import { HOP_BY_HOP, UpstreamFailure, type UpstreamCall, type UpstreamHandler, type UpstreamRequest } from './upstream-call';
import { TLS_ERROR } from './upstream-socket';

export type { PoolSettings } from './connection-pool';
export { upstreamClientTls } from './upstream-socket';

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

/** Maps a Node/undici error to an Envoy-style upstream failure. */
export function classifyUpstreamError(err: unknown, beforeHeaders: boolean, reused = false): UpstreamFailure {
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
  return new UpstreamFailure('connection-termination', detail, beforeHeaders, reused);
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

/** Idle connections close after this long at most (see the header). */
const MAX_IDLE_MS = 4_000;

class Http1Connection extends PooledConnection {
  readonly client: Client;
  private socketForClient: net.Socket | null;

  constructor(socket: net.Socket, origin: string, settings: PoolSettings, onIdleTimeout: () => void) {
    super(socket);
    this.socketForClient = socket;
    const idle = settings.idleTimeoutMs;
    this.client = new Client(origin, {
      // The pool opened the socket; undici gets exactly that one. A later connect (the socket died
      // as a request was handed over) fails that request as a connection reset on a reused
      // connection, so the router may retry it.
      connect: (_opts, callback) => {
        const s = this.socketForClient;
        this.socketForClient = null;
        // Asynchronously: undici ignores a connect that completes while it is still resuming.
        queueMicrotask(() => {
          if (s && !s.destroyed) callback(null, s);
          else callback(new UpstreamFailure('connection-termination', 'upstream connection closed before the request was sent', true, true), null);
        });
      },
      pipelining: 1,
      // The router's timers (route timeout, per-try timeout) govern; undici's would fire first.
      headersTimeout: 0,
      bodyTimeout: 0,
      keepAliveTimeout: Math.min(idle || MAX_IDLE_MS, MAX_IDLE_MS),
      keepAliveMaxTimeout: Math.max(1, Math.min(idle || 600_000, 600_000)),
      strictContentLength: false,
    });
    this.client.on('disconnect', (_origin, _targets, err) => {
      if ((err as Error | undefined)?.message === 'socket idle timeout') onIdleTimeout();
    });
  }

  capacity(): number {
    return 1;
  }

  destroy(): void {
    this.client.destroy().catch(() => undefined);
    this.socket.destroy();
  }
}

class Http1Call extends PooledRequest<Http1Connection> {
  private abortFn: ((err?: Error) => void) | null = null;
  private resumeFn: (() => void) | null = null;
  private aborted = false;
  private gotHeaders = false;
  private released = false;

  constructor(request: UpstreamRequest, handler: UpstreamHandler, private readonly h1: Http1Connector) {
    super(request, handler);
  }

  abort(): void {
    if (this.finished || this.aborted) return;
    this.aborted = true;
    if (this.waiting) {
      this.finished = true;
      this.h1.cancel(this);
      return;
    }
    this.abortFn?.(new UpstreamFailure('local-reset', 'aborted by the proxy', !this.gotHeaders));
  }

  resume(): void {
    this.resumeFn?.();
  }

  /** The connection is done with this request. */
  private release(reusable: boolean): void {
    if (this.released || !this.conn) return;
    this.released = true;
    this.h1.ended(this.conn, reusable);
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
    if (!this.aborted && !this.finished) this.handler.onHeaders(statusCode, rawHeadersToList(rawHeaders), false);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.aborted || this.finished) return true;
    return this.handler.onData(chunk);
  }

  onComplete(trailers: Buffer[] | null): void {
    this.release(true);
    if (this.finished) return;
    this.finished = true;
    if (!this.aborted) this.handler.onEnd(trailers && trailers.length ? rawHeadersToList(trailers) : null);
  }

  onError(err: Error): void {
    // An HTTP/1.1 connection that failed mid-request cannot carry another one.
    this.release(false);
    if (this.finished) return;
    this.finished = true;
    // After abort() the router has moved on; it expects nothing more from this call.
    if (!this.aborted) this.handler.onError(classifyUpstreamError(err, !this.gotHeaders, this.reused));
  }

  onUpgrade(statusCode: number, rawHeaders: Buffer[] | string[], socket: Duplex): void {
    if (this.conn && !this.released) {
      this.released = true;
      this.h1.upgraded(this.conn);
    }
    this.finished = true;
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

export class Http1Connector extends ConnectionPool<Http1Connection> {
  protected readonly alpn = 'http/1.1';
  protected readonly totalStat = 'upstream_cx_http1_total';
  private readonly origin: string;

  constructor(origin: string, endpoint: PoolEndpoint, settings: PoolSettings) {
    super(endpoint, settings);
    this.origin = origin;
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): UpstreamCall {
    const call = new Http1Call(request, handler, this);
    this.submit(call);
    return call;
  }

  protected wrap(socket: net.Socket): Http1Connection {
    const conn: Http1Connection = new Http1Connection(socket, this.origin, this.settings, () => this.idleTimedOut(conn));
    return conn;
  }

  protected expectedCapacity(): number {
    return 1;
  }

  protected start(conn: Http1Connection, req: PooledRequest<Http1Connection>): void {
    const r = req.request;
    try {
      conn.client.dispatch(
        {
          origin: this.origin,
          method: r.method as 'GET',
          path: r.path,
          headers: r.headers as Record<string, string>,
          body: r.body,
          upgrade: r.upgrade ?? null,
          // A fixed name: undici reconnects when it changes, and TLS here is the pool's, not undici's.
          ...(this.settings.tls ? { servername: this.settings.tls.sni || 'upstream' } : {}),
        } as never,
        req as never,
      );
    } catch (err) {
      queueMicrotask(() => (req as Http1Call).onError(err as Error));
    }
  }

  /** Called by a request when its connection is done with it. */
  ended(conn: Http1Connection, reusable: boolean): void {
    this.requestEnded(conn, reusable);
  }

  /** An upgrade took the socket: the connection leaves the pool but counts until it closes. */
  upgraded(conn: Http1Connection): void {
    conn.active--;
    this.resources.requests--;
    this.detach(conn);
  }

  cancel(req: Http1Call): void {
    this.cancelWaiting(req);
  }
}
