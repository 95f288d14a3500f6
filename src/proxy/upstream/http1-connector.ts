// HTTP/1.1 to one endpoint: Envoy's HTTP/1 connection pool (connection-pool.ts) whose connections
// are sockets the pool opened itself, written and parsed by http1-codec.ts (Node's llhttp, no
// client library in between: measured cheaper per request than undici, docs/PERFORMANCE.md). One
// request at a time per connection. An idle connection closes after at most 4 s (sooner when the
// server's Keep-Alive hint says so), shorter than common server idle timeouts, so a request rarely
// meets a connection the server is closing; when it does (the keep-alive race), the failure says
// the connection was reused and the router may send an idempotent request once more.
import type * as net from 'node:net';
import type { Readable } from 'node:stream';
import { BODY, chunkHeader, Http1Parser, LAST_CHUNK, normalizeHeaderList, ParseError, serializeHeaderMap, SKIP_BODY, UPGRADE, type MessageEvents, type MessageHead } from '../http/http1-codec';
import { ConnectionPool, PooledConnection, PooledRequest, type PoolEndpoint, type PoolSettings } from './connection-pool';
import { UpstreamFailure, type UpstreamCall, type UpstreamHandler, type UpstreamRequest } from './upstream-call';
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

/** Maps a Node socket or TLS error to an Envoy-style upstream failure. */
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

/** Idle connections close after this long at most (see the header). */
const MAX_IDLE_MS = 4_000;

/** Written by the proxy, never forwarded from the downstream request as is. */
const FRAMING = new Set(['content-length', 'transfer-encoding']);

/** `keep-alive: timeout=N` of a response: the server closes idle connections after N s. */
function keepAliveHintMs(headers: readonly string[]): number | undefined {
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (headers[i].length !== 10 || headers[i].toLowerCase() !== 'keep-alive') continue;
    const m = /timeout=(\d+)/i.exec(headers[i + 1]);
    if (m) return Number(m[1]) * 1000;
  }
  return undefined;
}

class Http1Connection extends PooledConnection implements MessageEvents {
  private readonly parser: Http1Parser;
  /** The request on this connection, until its response ended. */
  call: Http1Call | null = null;
  /** Why the socket failed, for the failure reported to a request in flight. */
  private socketError: Error | null = null;
  private idleMs: number;

  constructor(
    socket: net.Socket,
    idleTimeoutMs: number,
    private readonly onIdleTimeout: () => void,
  ) {
    super(socket);
    this.parser = new Http1Parser('response', this);
    this.idleMs = Math.min(idleTimeoutMs || MAX_IDLE_MS, MAX_IDLE_MS);
    socket.on('data', (chunk: Buffer) => this.onSocketData(chunk));
    socket.on('end', () => this.onSocketEnd());
    socket.on('error', (err) => {
      this.socketError = err;
    });
    socket.once('close', () => this.onSocketClose());
    // Any read or write re-arms it; it only closes a connection that carries no request.
    socket.setTimeout(this.idleMs);
    socket.on('timeout', () => {
      if (this.call || this.removed) return;
      this.onIdleTimeout();
      this.destroy();
    });
  }

  capacity(): number {
    return 1;
  }

  destroy(): void {
    // The parser is freed on 'close', never here: this may run inside one of its callbacks.
    this.socket.destroy();
  }

  send(call: Http1Call): void {
    this.call = call;
    call.write(this.socket);
  }

  private onSocketData(chunk: Buffer): void {
    try {
      const used = this.parser.execute(chunk);
      const call = this.call;
      if (call && call.upgradedTo === this.socket && used < chunk.length) this.socket.unshift(chunk.subarray(used));
    } catch (err) {
      this.failCall(new UpstreamFailure('protocol-error', `${(err as ParseError).code}: ${(err as Error).message}`, !this.call?.gotHeaders));
      this.destroy();
    }
  }

  private onSocketEnd(): void {
    try {
      this.parser.finish();
    } catch {
      // A truncated message: the close below reports it.
    }
    this.socket.end();
  }

  private onSocketClose(): void {
    this.parser.close();
    const call = this.call;
    if (!call) return;
    const err = this.socketError as NodeJS.ErrnoException | null;
    const detail = err ? `${err.code || err.name}: ${err.message}` : 'upstream closed the connection';
    if (err && TLS_ERROR.test(err.code ?? '')) this.failCall(new UpstreamFailure('connection-termination', `TLS error: ${detail}`, !call.gotHeaders, call.reused));
    else this.failCall(new UpstreamFailure('connection-termination', detail, !call.gotHeaders, call.reused));
  }

  private failCall(failure: UpstreamFailure): void {
    const call = this.call;
    this.call = null;
    call?.failed(failure);
  }

  // ---- response parser events ----
  onHead(head: MessageHead): number {
    const call = this.call;
    if (!call) throw new ParseError('WEFT_UNSOLICITED', 'response without a request');
    const hint = keepAliveHintMs(head.rawHeaders);
    if (hint !== undefined) {
      // Close a second before the server would, as undici does; too short a hint: no reuse.
      const ms = Math.min(this.idleMs, hint - 1000);
      if (ms <= 0) this.draining = true;
      else if (ms !== this.idleMs) this.socket.setTimeout((this.idleMs = ms));
    }
    if (!head.keepAlive) this.draining = true;
    if (head.status === 101 && head.upgrade && call.request.upgrade) {
      call.upgrade(head, this.socket);
      return UPGRADE;
    }
    if (head.status < 200) {
      call.informational = true;
      return BODY;
    }
    call.headers(head);
    return call.request.method === 'HEAD' ? SKIP_BODY : BODY;
  }

  onBody(chunk: Buffer): void {
    if (this.call && !this.call.data(chunk)) this.socket.pause();
  }

  onComplete(trailers: string[] | null): void {
    const call = this.call;
    if (!call) return;
    if (call.informational) {
      call.informational = false;
      return;
    }
    if (call.upgradedTo) return;
    this.call = null;
    call.complete(trailers);
  }
}

class Http1Call extends PooledRequest<Http1Connection> {
  gotHeaders = false;
  /** The last response was 1xx (not forwarded; the real one follows). */
  informational = false;
  upgradedTo: net.Socket | null = null;
  private aborted = false;
  private released = false;
  /** The request (head and body) is all written: only then may the connection carry another. */
  private sent = false;

  constructor(request: UpstreamRequest, handler: UpstreamHandler, private readonly h1: Http1Connector) {
    super(request, handler);
  }

  abort(): void {
    if (this.finished || this.aborted) return;
    this.aborted = true;
    this.finished = true;
    if (this.waiting) {
      this.h1.cancel(this);
      return;
    }
    this.stopBody();
    // HTTP/1.1 cannot cancel a request on a connection: the connection goes.
    const conn = this.conn;
    if (conn && !this.released) {
      this.released = true;
      conn.call = null;
      this.h1.ended(conn, false);
    }
  }

  resume(): void {
    if (!this.finished && this.conn) this.conn.socket.resume();
  }

  /** Writes the head and the body; a streamed body without a length goes chunked. */
  write(socket: net.Socket): void {
    const r = this.request;
    let head: string;
    let body = r.body;
    let chunked = false;
    try {
      head = `${r.method} ${r.path} HTTP/1.1\r\n` + serializeHeaderMap(r.headers, FRAMING);
    } catch (err) {
      queueMicrotask(() => this.failed(new UpstreamFailure('protocol-error', (err as Error).message, true)));
      return;
    }
    if (r.upgrade) head += `connection: upgrade\r\nupgrade: ${r.upgrade}\r\n`;
    if (body === null) {
      // A declared empty body keeps its content-length: 0 (POST without a body).
      const declared = r.headers['content-length'];
      if (declared === '0') head += 'content-length: 0\r\n';
    } else if (Buffer.isBuffer(body)) {
      head += `content-length: ${body.length}\r\n`;
    } else {
      const declared = r.headers['content-length'];
      if (typeof declared === 'string') head += `content-length: ${declared}\r\n`;
      else {
        head += 'transfer-encoding: chunked\r\n';
        chunked = true;
      }
    }
    head += '\r\n';
    if (body === null || Buffer.isBuffer(body)) {
      if (body && body.length) {
        socket.cork();
        socket.write(head, 'latin1');
        socket.write(body);
        socket.uncork();
      } else socket.write(head, 'latin1');
      this.sent = true;
      return;
    }
    socket.write(head, 'latin1');
    this.streamBody(socket, body, chunked);
  }

  private streamBody(socket: net.Socket, body: Readable, chunked: boolean): void {
    const onData = (chunk: Buffer) => {
      if (this.finished || chunk.length === 0) return;
      const ok = chunked ? (socket.cork(), socket.write(chunkHeader(chunk.length), 'latin1'), socket.write(chunk), socket.write('\r\n', 'latin1'), socket.uncork(), !socket.writableNeedDrain) : socket.write(chunk);
      if (!ok) {
        body.pause();
        socket.once('drain', () => body.resume());
      }
    };
    const onEnd = () => {
      cleanup();
      if (this.finished) return;
      if (chunked) socket.write(LAST_CHUNK, 'latin1');
      this.sent = true;
    };
    // The client went away mid-body: the upstream request cannot complete.
    const onClose = () => {
      if (body.readableEnded) return;
      cleanup();
      if (this.finished) return;
      this.finished = true;
      this.handler.onError(new UpstreamFailure('local-reset', 'downstream body ended early', !this.gotHeaders));
      this.abortConnection();
    };
    const cleanup = () => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('close', onClose);
      body.off('error', onClose);
    };
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('close', onClose);
    body.once('error', onClose);
    this.stopBody = cleanup;
  }

  private stopBody: () => void = () => undefined;

  private abortConnection(): void {
    const conn = this.conn;
    if (conn && !this.released) {
      this.released = true;
      conn.call = null;
      this.h1.ended(conn, false);
    }
  }

  headers(head: MessageHead): void {
    this.gotHeaders = true;
    if (!this.finished) this.handler.onHeaders(head.status, normalizeHeaderList(head.rawHeaders), false);
  }

  data(chunk: Buffer): boolean {
    if (this.finished) return true;
    return this.handler.onData(chunk);
  }

  complete(trailers: string[] | null): void {
    // A response that ended before the request did (an early 4xx) leaves the connection unusable.
    this.release(this.sent);
    if (this.finished) return;
    this.finished = true;
    this.stopBody();
    this.handler.onEnd(trailers ? normalizeHeaderList(trailers) : null);
  }

  failed(failure: UpstreamFailure): void {
    // An HTTP/1.1 connection that failed mid-request cannot carry another one.
    this.release(false);
    if (this.finished) return;
    this.finished = true;
    this.stopBody();
    this.handler.onError(failure);
  }

  upgrade(head: MessageHead, socket: net.Socket): void {
    this.upgradedTo = socket;
    if (this.conn && !this.released) {
      this.released = true;
      this.conn.call = null;
      this.h1.upgraded(this.conn);
    }
    this.finished = true;
    this.gotHeaders = true;
    // The socket is the upgraded stream's from here on: the pool's listeners come off it.
    socket.removeAllListeners('data');
    socket.removeAllListeners('end');
    socket.removeAllListeners('timeout');
    socket.setTimeout(0);
    if (this.aborted) {
      socket.destroy();
      return;
    }
    if (this.handler.onUpgrade) this.handler.onUpgrade(head.status, normalizeHeaderList(head.rawHeaders), socket);
    else socket.destroy();
  }

  /** The connection is done with this request. */
  private release(reusable: boolean): void {
    if (this.released || !this.conn) return;
    this.released = true;
    this.h1.ended(this.conn, reusable);
  }
}

export class Http1Connector extends ConnectionPool<Http1Connection> {
  protected readonly alpn = 'http/1.1';
  protected readonly totalStat = 'upstream_cx_http1_total';

  constructor(endpoint: PoolEndpoint, settings: PoolSettings) {
    super(endpoint, settings);
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): UpstreamCall {
    const call = new Http1Call(request, handler, this);
    this.submit(call);
    return call;
  }

  protected wrap(socket: net.Socket): Http1Connection {
    const conn: Http1Connection = new Http1Connection(socket, this.settings.idleTimeoutMs, () => this.idleTimedOut(conn));
    return conn;
  }

  protected expectedCapacity(): number {
    return 1;
  }

  protected start(conn: Http1Connection, req: PooledRequest<Http1Connection>): void {
    conn.send(req as Http1Call);
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
