// HTTP/2 (prior knowledge, or ALPN h2 over TLS) to one endpoint with node:http2: Envoy's HTTP/2
// connection pool (connection-pool.ts). A session carries as many streams at once as
// max_concurrent_streams and the peer's SETTINGS allow; beyond that requests wait or another
// session opens, within max_connections. Sessions drain after max_requests_per_connection
// streams, max_connection_duration or a GOAWAY, and close after idle_timeout without streams.
// Used for gRPC clusters; carries trailers and trailers-only responses exactly.
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import type { Readable } from 'node:stream';
import { ConnectionPool, PooledConnection, PooledRequest, type PoolEndpoint, type PoolSettings } from './connection-pool';
import { classifyUpstreamError } from './http1-connector';
import { HOP_BY_HOP, UpstreamFailure, type UpstreamCall, type UpstreamHandler, type UpstreamRequest } from './upstream-call';

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_CANCEL, HTTP2_HEADER_STATUS } = http2.constants;

/** node:http2's assumption until the peer's SETTINGS arrive. */
const PEER_MAX_CONCURRENT_STREAMS = 1000;

function headersToList(headers: http2.IncomingHttpHeaders, skipPseudo = true): string[] {
  const out: string[] = [];
  for (const name of Object.keys(headers)) {
    if (skipPseudo && name.charCodeAt(0) === 58 /* : */) continue;
    if (HOP_BY_HOP.has(name)) continue;
    const v = headers[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const item of v) out.push(name, item);
    else out.push(name, String(v));
  }
  return out;
}

class Http2Connection extends PooledConnection {
  readonly session: http2.ClientHttp2Session;
  idleTimer: NodeJS.Timeout | null = null;

  constructor(
    socket: net.Socket,
    origin: string,
    private readonly maxStreams: number,
  ) {
    super(socket);
    this.session = http2.connect(origin, { createConnection: () => socket, peerMaxConcurrentStreams: PEER_MAX_CONCURRENT_STREAMS });
    // Streams receive the session's errors themselves.
    this.session.on('error', () => undefined);
    this.session.unref();
  }

  capacity(): number {
    const peer = this.session.remoteSettings?.maxConcurrentStreams ?? PEER_MAX_CONCURRENT_STREAMS;
    return Math.max(0, Math.min(this.maxStreams > 0 ? this.maxStreams : ConnectionPool.UNLIMITED, peer));
  }

  destroy(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.session.destroy();
    this.socket.destroy();
  }
}

class Http2Call extends PooledRequest<Http2Connection> {
  stream: http2.ClientHttp2Stream | null = null;
  private aborted = false;
  private gotHeaders = false;
  private trailers: string[] | null = null;
  private released = false;

  constructor(request: UpstreamRequest, handler: UpstreamHandler, private readonly h2: Http2Connector) {
    super(request, handler);
  }

  attach(stream: http2.ClientHttp2Stream, body: UpstreamRequest['body']): void {
    this.stream = stream;
    if (this.aborted) {
      stream.close(NGHTTP2_CANCEL);
      return;
    }
    stream.on('response', (headers, flags) => {
      const status = Number(headers[HTTP2_HEADER_STATUS]);
      if (status < 200 || this.finished) return;
      this.gotHeaders = true;
      const endStream = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      this.handler.onHeaders(status, headersToList(headers), endStream);
    });
    stream.on('data', (chunk: Buffer) => {
      if (this.aborted || this.finished) return;
      if (!this.handler.onData(chunk)) stream.pause();
    });
    stream.on('trailers', (headers) => {
      this.trailers = headersToList(headers);
    });
    stream.on('end', () => this.finish());
    stream.on('error', (err) => this.failWith(err));
    stream.on('close', () => {
      this.release();
      if (this.finished || this.aborted) return;
      const code = stream.rstCode;
      if (code === NGHTTP2_REFUSED_STREAM) this.fail(new UpstreamFailure('refused-stream', 'stream refused by the upstream', true));
      else if (code) this.fail(new UpstreamFailure('remote-reset', `stream reset with code ${code}`, !this.gotHeaders));
      else this.finish();
    });
    if (body === null) return;
    if (Buffer.isBuffer(body)) stream.end(body);
    else {
      (body as Readable).on('error', () => stream.close(NGHTTP2_CANCEL));
      (body as Readable).pipe(stream);
    }
  }

  /** The stream is over: its slot on the session is free. */
  release(): void {
    if (this.released || !this.conn) return;
    this.released = true;
    this.h2.ended(this.conn);
  }

  private finish(): void {
    if (this.finished || this.aborted) return;
    if (!this.gotHeaders) {
      this.fail(new UpstreamFailure('remote-reset', 'stream ended without response headers', true));
      return;
    }
    this.finished = true;
    this.handler.onEnd(this.trailers);
  }

  failWith(err: unknown): void {
    if (this.finished || this.aborted) return;
    this.fail(classifyUpstreamError(err, !this.gotHeaders, this.reused));
  }

  abort(): void {
    if (this.aborted || this.finished) return;
    this.aborted = true;
    if (this.waiting) {
      this.finished = true;
      this.h2.cancel(this);
      return;
    }
    this.stream?.close(NGHTTP2_CANCEL);
  }

  resume(): void {
    this.stream?.resume();
  }
}

export class Http2Connector extends ConnectionPool<Http2Connection> {
  protected readonly alpn = 'h2';
  protected readonly totalStat = 'upstream_cx_http2_total';
  private readonly tlsScheme: boolean;

  constructor(
    private readonly origin: string,
    endpoint: PoolEndpoint,
    settings: PoolSettings,
  ) {
    super(endpoint, settings);
    this.tlsScheme = Boolean(settings.tls);
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): UpstreamCall {
    const call = new Http2Call(request, handler, this);
    this.submit(call);
    return call;
  }

  protected wrap(socket: net.Socket): Http2Connection {
    const conn = new Http2Connection(socket, this.origin, this.settings.maxConcurrentStreams);
    const session = conn.session;
    session.on('goaway', () => {
      // No new streams on it; the ones in flight finish.
      conn.draining = true;
      if (conn.active === 0) this.closeConnection(conn);
    });
    session.on('close', () => this.connectionClosed(conn));
    // The peer may allow more (or fewer) streams than assumed.
    session.on('remoteSettings', () => this.hasRoom(conn));
    return conn;
  }

  protected expectedCapacity(): number {
    const max = this.settings.maxConcurrentStreams;
    return max > 0 ? max : ConnectionPool.UNLIMITED;
  }

  protected start(conn: Http2Connection, req: PooledRequest<Http2Connection>): void {
    if (conn.idleTimer) {
      clearTimeout(conn.idleTimer);
      conn.idleTimer = null;
    }
    const call = req as Http2Call;
    const request = req.request;
    const headers: http2.OutgoingHttpHeaders = {
      ':method': request.method,
      ':path': request.path,
      ':scheme': this.tlsScheme ? 'https' : 'http',
    };
    for (const name of Object.keys(request.headers)) {
      const v = request.headers[name];
      if (v === undefined) continue;
      if (name === 'host') headers[':authority'] = v as string;
      else if (name === 'te') {
        if (v === 'trailers') headers.te = v;
      } else if (!HOP_BY_HOP.has(name)) headers[name] = v;
    }
    let stream: http2.ClientHttp2Stream;
    try {
      stream = conn.session.request(headers, { endStream: request.body === null });
    } catch (err) {
      queueMicrotask(() => {
        call.release();
        call.failWith(err);
      });
      return;
    }
    call.attach(stream, request.body);
  }

  ended(conn: Http2Connection): void {
    this.requestEnded(conn, true);
    const idle = this.settings.idleTimeoutMs;
    if (conn.active === 0 && !conn.removed && idle > 0 && !conn.idleTimer) {
      conn.idleTimer = setTimeout(() => {
        conn.idleTimer = null;
        if (conn.active > 0 || conn.removed) return;
        this.resources.stats.upstream_cx_idle_timeout++;
        this.closeConnection(conn);
      }, idle);
      conn.idleTimer.unref();
    }
  }

  cancel(req: Http2Call): void {
    this.cancelWaiting(req);
  }
}
