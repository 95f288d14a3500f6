// HTTP/2 (prior knowledge, or ALPN h2 over TLS) to one endpoint with node:http2: Envoy's HTTP/2
// connection pool (connection-pool.ts). A session carries as many streams at once as
// max_concurrent_streams and the peer's SETTINGS allow; beyond that requests wait or another
// session opens, within max_connections. Sessions drain after max_requests_per_connection
// streams, max_connection_duration or a GOAWAY, and close after idle_timeout without streams.
// Used for gRPC clusters; carries trailers and trailers-only responses exactly.
//
// Until the peer's SETTINGS arrive a new session takes at most 100 streams, nghttp2's assumption
// (so Envoy's codec's and node:http2's default): a backlog handed to a fresh connection must not
// exceed what servers commonly allow (nginx 128, Go 250, grpc-go unlimited), or the excess is
// refused. Once an endpoint's SETTINGS were seen, its new connections assume what they said
// (as Envoy caches an origin's HTTP/2 settings), and the pool opens connections for a backlog
// by that number. A stream the upstream refuses (RST_STREAM REFUSED_STREAM, or above a GOAWAY's last
// stream id) never reached its application (RFC 9113 8.7), so it goes back to the pool and is
// sent again, a few times at most, when its body can be replayed; only then does it fail as
// `refused-stream` (Envoy's remote_refused_stream_reset, retried under retry_on refused-stream).
//
// Per-request cost: stream events go to shared functions (the call hangs off the stream), the
// request body is forwarded by two listeners instead of pipe(), response headers and trailers
// are read from node's raw header lists, the idle timer is armed once per idle period, and the
// peer's stream limit is cached from its SETTINGS.
import * as http2 from 'node:http2';
import { performance } from 'node:perf_hooks';
import type * as net from 'node:net';
import type { Readable } from 'node:stream';
import { ConnectionPool, PooledConnection, PooledRequest, type PoolEndpoint, type PoolSettings } from './connection-pool';
import { classifyUpstreamError } from './http1-connector';
import { HOP_BY_HOP, UpstreamFailure, type UpstreamCall, type UpstreamHandler, type UpstreamRequest } from './upstream-call';

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM, HTTP2_HEADER_STATUS } = http2.constants;

/** Streams a new session may carry before the peer's SETTINGS say how many it allows (nghttp2's default). */
export const INITIAL_PEER_MAX_CONCURRENT_STREAMS = 100;
/** How often one request goes back to the pool after refused streams before it fails. */
const MAX_REFUSED_REQUEUES = 3;
/** Request body bytes kept until the response starts, so a refused stream can be sent again. */
const REFUSED_REPLAY_LIMIT = 64 * 1024;

/** node's raw header list `[name, value, ...]` without pseudo-headers and hop-by-hop headers. */
function rawHeadersToList(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i];
    if (name.charCodeAt(0) === 58 /* : */ || HOP_BY_HOP.has(name)) continue;
    out.push(name, raw[i + 1]);
  }
  return out;
}

class Http2Connection extends PooledConnection {
  readonly session: http2.ClientHttp2Session;
  idleTimer: NodeJS.Timeout | null = null;
  /** When the last stream ended (the idle timer checks it rather than being re-armed per stream). */
  idleSince = 0;
  constructor(
    socket: net.Socket,
    origin: string,
    private readonly maxStreams: number,
    /** The peer's SETTINGS_MAX_CONCURRENT_STREAMS; until its SETTINGS arrive, what is assumed. */
    public peerMaxStreams: number,
  ) {
    super(socket);
    this.session = http2.connect(origin, { createConnection: () => socket, peerMaxConcurrentStreams: peerMaxStreams });
    // Streams receive the session's errors themselves.
    this.session.on('error', () => undefined);
    this.session.unref();
  }

  capacity(): number {
    return Math.max(0, Math.min(this.maxStreams > 0 ? this.maxStreams : ConnectionPool.UNLIMITED, this.peerMaxStreams));
  }

  destroy(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.session.destroy();
    this.socket.destroy();
  }
}

const kCall = Symbol('weft.h2call');
type CallStream = http2.ClientHttp2Stream & { [kCall]?: Http2Call };
type BodySource = Readable & { [kCall]?: Http2Call };

// Stream and body events, shared by every request (`this` is the stream or the body).
function onStreamResponse(this: CallStream, headers: http2.IncomingHttpHeaders, flags: number, raw: string[]): void {
  this[kCall]?.onResponse(headers, flags, raw);
}
function onStreamData(this: CallStream, chunk: Buffer): void {
  const call = this[kCall];
  if (call && !call.aborted && !call.finished && !call.handler.onData(chunk)) this.pause();
}
function onStreamTrailers(this: CallStream, _headers: http2.IncomingHttpHeaders, _flags: number, raw: string[]): void {
  const call = this[kCall];
  if (call) call.trailers = rawHeadersToList(raw);
}
function onStreamEnd(this: CallStream): void {
  this[kCall]?.finish();
}
function onStreamError(this: CallStream, err: Error): void {
  // A refused stream is decided on 'close' (it may go back to the pool).
  if (this.rstCode === NGHTTP2_REFUSED_STREAM) return;
  this[kCall]?.failWith(err);
}
function onStreamClose(this: CallStream): void {
  this[kCall]?.onClose(this);
}
function onStreamDrain(this: CallStream): void {
  const call = this[kCall];
  if (call && call.stream === this) call.body?.resume();
}
function onBodyData(this: BodySource, chunk: Buffer): void {
  this[kCall]?.bodyData(chunk);
}
function onBodyEnd(this: BodySource): void {
  this[kCall]?.bodyEnd();
}
function onBodyError(this: BodySource): void {
  const stream = this[kCall]?.stream;
  if (stream && !stream.destroyed) stream.close(NGHTTP2_CANCEL);
}

class Http2Call extends PooledRequest<Http2Connection> {
  stream: CallStream | null = null;
  aborted = false;
  private gotHeaders = false;
  trailers: string[] | null = null;
  private released = false;
  /** A streamed request body (a Buffer body is sent whole from `request.body`). */
  body: BodySource | null = null;
  private bodyEnded = false;
  /** Body chunks sent so far, while a refused stream could still be sent again; null past the limit. */
  private sentChunks: Buffer[] | null = [];
  private sentBytes = 0;
  private requeues = 0;

  constructor(request: UpstreamRequest, handler: UpstreamHandler, private readonly h2: Http2Connector) {
    super(request, handler);
  }

  attach(stream: CallStream): void {
    this.stream = stream;
    stream[kCall] = this;
    stream.on('error', onStreamError);
    stream.on('close', onStreamClose);
    if (this.aborted) {
      stream.close(NGHTTP2_CANCEL);
      return;
    }
    stream.on('response', onStreamResponse);
    stream.on('data', onStreamData);
    stream.on('trailers', onStreamTrailers);
    stream.on('end', onStreamEnd);
    const body = this.request.body;
    if (body === null) return;
    if (Buffer.isBuffer(body)) {
      stream.end(body);
      return;
    }
    if (this.body === null) {
      // First stream: forward the body as it arrives (data/end; what pipe() does, without its
      // per-request listeners and closures). A body an earlier call forwarded keeps its
      // listeners; they now serve this call.
      const source = body as BodySource;
      this.body = source;
      const listening = source[kCall] !== undefined;
      source[kCall] = this;
      if (!listening) {
        source.on('data', onBodyData);
        source.on('end', onBodyEnd);
        source.on('error', onBodyError);
      }
      if (source.readableEnded) this.bodyEnd();
      return;
    }
    // Sent again after a refused stream: what was sent before, then the rest as it comes.
    for (const chunk of this.sentChunks!) stream.write(chunk);
    if (this.bodyEnded) stream.end();
    else this.body.resume();
  }

  bodyData(chunk: Buffer): void {
    const stream = this.stream;
    if (this.sentChunks !== null) {
      // Waiting for a stream again (after a refusal), every chunk is kept: it is sent on the next one.
      if (stream !== null && (this.gotHeaders || this.sentBytes + chunk.length > REFUSED_REPLAY_LIMIT)) this.sentChunks = null;
      else {
        this.sentChunks.push(chunk);
        this.sentBytes += chunk.length;
      }
    }
    if (stream === null || stream.destroyed || this.finished || this.aborted) return;
    if (!stream.write(chunk)) {
      this.body!.pause();
      stream.once('drain', onStreamDrain);
    }
  }

  bodyEnd(): void {
    this.bodyEnded = true;
    const stream = this.stream;
    if (stream !== null && !stream.destroyed && !this.finished && !this.aborted) stream.end();
  }

  onResponse(headers: http2.IncomingHttpHeaders, flags: number, raw: string[]): void {
    const status = headers[HTTP2_HEADER_STATUS] as unknown as number;
    if (status < 200 || this.finished) return;
    this.gotHeaders = true;
    this.sentChunks = null;
    this.handler.onHeaders(status, rawHeadersToList(raw), (flags & NGHTTP2_FLAG_END_STREAM) !== 0);
  }

  onClose(stream: CallStream): void {
    this.release();
    if (this.finished || this.aborted) return;
    const code = stream.rstCode;
    if (code === NGHTTP2_REFUSED_STREAM && !this.gotHeaders) {
      // Never processed upstream: safe to send again, even for non-idempotent requests.
      if (this.requeues < MAX_REFUSED_REQUEUES && (this.body === null || this.sentChunks !== null)) {
        this.requeues++;
        stream[kCall] = undefined;
        this.stream = null;
        this.conn = null;
        this.released = false;
        this.body?.pause();
        this.h2.requeue(this);
        return;
      }
      this.fail(new UpstreamFailure('refused-stream', 'stream refused by the upstream', true));
    } else if (code) this.fail(new UpstreamFailure('remote-reset', `stream reset with code ${code}`, !this.gotHeaders));
    else this.finish();
  }

  /** The stream is over: its slot on the session is free. */
  release(): void {
    if (this.released || !this.conn) return;
    this.released = true;
    this.h2.ended(this.conn);
  }

  finish(): void {
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
  private readonly scheme: string;
  /**
   * The endpoint's SETTINGS_MAX_CONCURRENT_STREAMS as its last SETTINGS said: what a new
   * connection assumes before its own arrive (Envoy's cached HTTP/2 settings of an origin).
   */
  private peerMaxStreams: number | undefined = undefined;

  constructor(
    private readonly origin: string,
    endpoint: PoolEndpoint,
    settings: PoolSettings,
  ) {
    super(endpoint, settings);
    this.scheme = settings.tls ? 'https' : 'http';
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): UpstreamCall {
    const call = new Http2Call(request, handler, this);
    this.submit(call);
    return call;
  }

  /** A refused stream's request waits for a slot again (the session now knows the peer's limit). */
  requeue(call: Http2Call): void {
    this.submit(call);
  }

  protected wrap(socket: net.Socket): Http2Connection {
    const conn = new Http2Connection(socket, this.origin, this.settings.maxConcurrentStreams, this.peerMaxStreams ?? INITIAL_PEER_MAX_CONCURRENT_STREAMS);
    const session = conn.session;
    session.on('goaway', () => {
      // No new streams on it; the ones in flight finish.
      conn.draining = true;
      if (conn.active === 0) this.closeConnection(conn);
    });
    session.on('close', () => this.connectionClosed(conn));
    // The peer may allow more (or fewer) streams than assumed. Without the setting: no limit.
    session.on('remoteSettings', (settings: http2.Settings) => {
      const max = Math.min(settings.maxConcurrentStreams ?? ConnectionPool.UNLIMITED, ConnectionPool.UNLIMITED);
      conn.peerMaxStreams = max;
      this.peerMaxStreams = max;
      this.hasRoom(conn);
    });
    return conn;
  }

  /** Streams a connection being opened will take: as configured, and as the endpoint said (when it did). */
  protected expectedCapacity(): number {
    const max = this.settings.maxConcurrentStreams;
    return Math.min(max > 0 ? max : ConnectionPool.UNLIMITED, this.peerMaxStreams ?? ConnectionPool.UNLIMITED);
  }

  protected start(conn: Http2Connection, req: PooledRequest<Http2Connection>): void {
    const call = req as Http2Call;
    const request = req.request;
    const headers: http2.OutgoingHttpHeaders = {
      ':method': request.method,
      ':path': request.path,
      ':scheme': this.scheme,
    };
    const source = request.headers;
    for (const name in source) {
      const v = source[name];
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
    call.attach(stream);
  }

  ended(conn: Http2Connection): void {
    this.requestEnded(conn, true);
    if (conn.active > 0 || conn.removed) return;
    const idle = this.settings.idleTimeoutMs;
    if (idle <= 0) return;
    conn.idleSince = performance.now();
    if (!conn.idleTimer) this.armIdleTimer(conn, idle);
  }

  /** One timer per idle period: streams starting and ending meanwhile only move `idleSince`. */
  private armIdleTimer(conn: Http2Connection, delayMs: number): void {
    conn.idleTimer = setTimeout(() => {
      conn.idleTimer = null;
      if (conn.active > 0 || conn.removed) return;
      const idle = this.settings.idleTimeoutMs;
      const left = conn.idleSince + idle - performance.now();
      if (left > 1) {
        this.armIdleTimer(conn, left);
        return;
      }
      this.resources.stats.upstream_cx_idle_timeout++;
      this.closeConnection(conn);
    }, delayMs);
    conn.idleTimer.unref();
  }

  cancel(req: Http2Call): void {
    this.cancelWaiting(req);
  }
}
