// The downstream side of HTTP/1.1: one client connection, parsed by http1-codec.ts, its requests
// handed to the HTTP connection manager one at a time as `Exchange`s (pipelined requests wait
// their turn), responses written with their framing (content-length, chunked with trailers, or
// close-delimited for HTTP/1.0 clients), keep-alive, Expect: 100-continue, Upgrade and CONNECT.
// A response head and a body that is ready in the same tick leave in one write.
import { STATUS_CODES } from 'node:http';
import type * as net from 'node:net';
import { Readable, type Duplex } from 'node:stream';
import type { DownstreamTlsInfo } from '../config/model';
import { downstreamTlsInfo } from '../listener/downstream-tls-info';
import type { DownstreamProtocol, Exchange } from './exchange';
import { chunkHeader, headerListToMap, Http1Parser, LAST_CHUNK, ParseError, serializeHeaderList, type MessageEvents, type MessageHead } from './http1-codec';

/** What a connection needs from its listener. */
export interface Http1ConnectionOwner {
  /** A request is ready to be served (its turn came). */
  onRequest(exchange: Http1Exchange, socket: net.Socket): void;
  /** CONNECT: the socket is the tunnel's from here; `head` is what followed the request head. */
  onConnect(target: string, socket: net.Socket, head: Buffer): void;
  /** The listener is draining: close connections after their current response. */
  readonly draining: boolean;
  /** Close a connection idle this long (ms). */
  readonly idleTimeoutMs: number;
}

/** The facts of a connection every request on it shares (socket getters call into C++). */
interface ConnectionFacts {
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  tls: DownstreamTlsInfo | undefined;
}

let cachedDate = '';
let cachedDateSecond = -1;

/** The Date header value, rendered once per second. */
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== cachedDateSecond) {
    cachedDateSecond = second;
    cachedDate = new Date(now).toUTCString();
  }
  return cachedDate;
}

const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';

export class Http1ServerConnection implements MessageEvents {
  private readonly parser: Http1Parser;
  private readonly facts: ConnectionFacts;
  /** Requests whose response is not finished, in arrival order; the first one is being served. */
  private readonly queue: Http1Exchange[] = [];
  /** The request whose head or body the parser is reading now. */
  private incoming: Http1Exchange | null = null;
  /** The request that turned the connection into something else (CONNECT, Upgrade). */
  private detaching: { exchange: Http1Exchange | null; target: string } | null = null;
  private clientEnded = false;
  private closed = false;

  constructor(
    readonly socket: net.Socket,
    private readonly owner: Http1ConnectionOwner,
  ) {
    this.parser = new Http1Parser('request', this);
    this.facts = {
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      localAddress: socket.localAddress ?? '',
      localPort: socket.localPort ?? 0,
      tls: downstreamTlsInfo(socket),
    };
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.once('close', () => this.onClose());
    socket.setTimeout(owner.idleTimeoutMs);
    socket.on('timeout', this.onTimeout);
  }

  /** Closes the connection if it carries no request now (draining listeners). */
  closeIfIdle(): void {
    if (this.queue.length === 0 && this.incoming === null && !this.detaching) this.socket.destroy();
  }

  private readonly onTimeout = (): void => {
    // Idle between requests (Envoy's idle_timeout); a request in flight has its own timeouts.
    if (this.queue.length === 0 && !this.detaching) this.socket.destroy();
  };

  private readonly onData = (chunk: Buffer): void => {
    let used: number;
    try {
      used = this.parser.execute(chunk);
    } catch (err) {
      // Bytes after a request that said Connection: close (or an HTTP/1.0 one): that request is
      // still served, nothing after it is read (RFC 9112 9.6).
      if ((err as ParseError).code === 'HPE_CLOSED_CONNECTION') {
        this.socket.off('data', this.onData);
        this.socket.pause();
        return;
      }
      this.badRequest(err as ParseError);
      return;
    }
    const d = this.detaching;
    if (d) this.detach(d, chunk.subarray(used));
  };

  private readonly onEnd = (): void => {
    this.clientEnded = true;
    try {
      this.parser.finish();
    } catch {
      // A request cut short: its body stream errors on close.
    }
    // Envoy does not serve half-closed HTTP/1.1 clients: requests in flight are reset (DC), so an
    // upstream that is silent (long poll, SSE) does not hold the connection and its pool slot.
    if (this.detaching) return;
    if (this.queue.length === 0) this.socket.end();
    else this.socket.destroy();
  };

  private onClose(): void {
    this.closed = true;
    this.parser.close();
    const incoming = this.incoming;
    this.incoming = null;
    if (incoming?.body && !incoming.body.readableEnded) incoming.body.destroy(new Error('client closed the connection'));
    for (const exchange of this.queue.splice(0)) exchange.connectionLost();
  }

  /** A malformed request: 400 (431 for an oversized head), then close, as node:http did. */
  private badRequest(err: ParseError): void {
    this.socket.off('data', this.onData);
    if (this.queue.length > 0 || !this.socket.writable) {
      this.socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    this.socket.end(`HTTP/1.1 ${status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
  }

  // ---- request parser events ----
  onHead(head: MessageHead): number {
    const exchange = new Http1Exchange(this, head, this.facts);
    if (head.upgrade) {
      // CONNECT and Upgrade: nothing after this head is HTTP/1.1 for us to parse.
      this.detaching = head.method === 'CONNECT' ? { exchange: null, target: head.url } : { exchange, target: '' };
      return 0;
    }
    this.incoming = exchange;
    this.queue.push(exchange);
    if (this.queue.length === 1) this.serve(exchange);
    // Pipelining: read no further until the responses catch up.
    else this.socket.pause();
    return 0;
  }

  onBody(chunk: Buffer): void {
    const body = this.incoming?.body;
    if (body && !body.push(chunk)) this.socket.pause();
  }

  onComplete(): void {
    const incoming = this.incoming;
    if (!incoming) return;
    this.incoming = null;
    incoming.requestComplete = true;
    incoming.body?.push(null);
    if (incoming.responseEnded && !incoming.closeAfter) this.advance(incoming);
  }

  private detach(d: { exchange: Http1Exchange | null; target: string }, rest: Buffer): void {
    this.detaching = null;
    const socket = this.socket;
    socket.off('data', this.onData);
    socket.off('end', this.onEnd);
    socket.off('timeout', this.onTimeout);
    socket.setTimeout(0);
    if (d.exchange === null) {
      this.owner.onConnect(d.target, socket, rest);
      return;
    }
    d.exchange.upgradeHead = rest;
    d.exchange.requestComplete = true;
    d.exchange.closeAfter = true;
    this.queue.push(d.exchange);
    this.serve(d.exchange);
  }

  private serve(exchange: Http1Exchange): void {
    if (exchange.expectsContinue) this.socket.write(CONTINUE, 'latin1');
    this.owner.onRequest(exchange, this.socket);
  }

  /** Whether responses should announce the connection's end (client asked, or the listener drains). */
  get draining(): boolean {
    return this.owner.draining || this.clientEnded;
  }

  /** `exchange`'s response is out: close, or serve the next pipelined request. */
  responseDone(exchange: Http1Exchange): void {
    if (this.closed) return;
    if (exchange.closeAfter) {
      this.socket.end();
      return;
    }
    // Answered before its head was even fully processed (a local reply from inside the head's
    // callback): the request ends in this same parse; go on from there.
    if (!exchange.requestComplete) return;
    this.advance(exchange);
  }

  private advance(done: Http1Exchange): void {
    const i = this.queue.indexOf(done);
    if (i >= 0) this.queue.splice(i, 1);
    const next = this.queue[0];
    if (next) this.serve(next);
    else if (this.clientEnded) this.socket.end();
    if (this.queue.length <= 1 && this.socket.isPaused()) this.socket.resume();
  }

  /** The request body's reader wants more. */
  resumeReading(): void {
    if (this.queue.length <= 1 && !this.closed) this.socket.resume();
  }
}

export class Http1Exchange implements Exchange {
  readonly protocol: DownstreamProtocol;
  readonly method: string;
  readonly target: string;
  readonly rawAuthority: string;
  readonly scheme: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly tls: DownstreamTlsInfo | undefined;
  readonly body: Readable | null;
  readonly upgradeProtocol?: string;
  readonly expectsContinue: boolean;
  /** The whole request (head and body) has been read. */
  requestComplete = false;
  /** The connection closes after this response. */
  closeAfter: boolean;
  /** Bytes after an Upgrade request's head (the upgraded protocol's first bytes); null otherwise. */
  upgradeHead: Buffer | null = null;
  private sent = 0;
  private responded = false;
  private finished = false;
  /** The response is all written. */
  responseEnded = false;
  private abortCallback: (() => void) | null = null;
  /** Response framing. */
  private chunked = false;
  private noBody = false;
  /** Head (and body) not written yet: what the same tick writes leaves in one write. */
  private pending: (string | Buffer)[] | null = null;
  private flushScheduled = false;

  constructor(
    private readonly conn: Http1ServerConnection,
    head: MessageHead,
    facts: ConnectionFacts,
  ) {
    this.protocol = head.versionMinor === 0 ? 'HTTP/1.0' : 'HTTP/1.1';
    this.method = head.method;
    this.target = head.url || '/';
    const headers = headerListToMap(head.rawHeaders);
    this.headers = headers;
    const host = headers.host;
    this.rawAuthority = typeof host === 'string' ? host : '';
    this.scheme = facts.tls ? 'https' : 'http';
    this.remoteAddress = facts.remoteAddress;
    this.remotePort = facts.remotePort;
    this.localAddress = facts.localAddress;
    this.localPort = facts.localPort;
    this.tls = facts.tls;
    this.closeAfter = !head.keepAlive;
    const expect = headers.expect;
    this.expectsContinue = head.versionMinor === 1 && typeof expect === 'string' && expect.toLowerCase() === '100-continue';
    if (head.upgrade) {
      const protocol = headers.upgrade;
      if (typeof protocol === 'string' && protocol.toLowerCase() === 'websocket') this.upgradeProtocol = 'websocket';
    }
    const cl = headers['content-length'];
    const hasBody = !head.upgrade && ((cl !== undefined && cl !== '0') || headers['transfer-encoding'] !== undefined);
    this.body = hasBody ? new Readable({ read: () => conn.resumeReading() }) : null;
  }

  get headersSent(): boolean {
    return this.responded;
  }

  bytesReceived(): number {
    return Number(this.headers['content-length'] ?? 0);
  }

  bytesSent(): number {
    return this.sent;
  }

  onAbort(callback: () => void): void {
    this.abortCallback = callback;
  }

  /** The connection closed under this request. */
  connectionLost(): void {
    if (this.body && !this.body.readableEnded) this.body.destroy(new Error('client closed the connection'));
    if (this.finished) return;
    this.finished = true;
    this.pending = null;
    this.abortCallback?.();
  }

  respond(status: number, headers: string[], endStream: boolean): void {
    if (this.responded || this.finished) return;
    this.responded = true;
    const method = this.method;
    this.noBody = method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200);
    let hasLength = false;
    let hasDate = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i];
      if (name === 'content-length') hasLength = true;
      else if (name === 'date') hasDate = true;
    }
    // A response before the request body is all in: what is left of that body cannot be told
    // apart from a next request without reading it, so the connection closes after (Envoy too).
    if (this.conn.draining || (!this.requestComplete && this.body !== null)) this.closeAfter = true;
    let framing = '';
    if (!this.noBody && !hasLength) {
      if (endStream) framing = 'content-length: 0\r\n';
      else if (this.protocol === 'HTTP/1.1') {
        framing = 'transfer-encoding: chunked\r\n';
        this.chunked = true;
      } else this.closeAfter = true; // HTTP/1.0: the body ends with the connection
    }
    if (this.closeAfter) framing += 'connection: close\r\n';
    else if (this.protocol === 'HTTP/1.0') framing += 'connection: keep-alive\r\n';
    if (!hasDate) framing += 'date: ' + httpDate() + '\r\n';
    let lines: string;
    try {
      lines = serializeHeaderList(headers);
    } catch {
      // A header the config or upstream made that cannot be written: Envoy answers 502.
      lines = 'content-length: 0\r\n';
      status = 502;
      endStream = true;
      framing = 'connection: close\r\n';
      this.closeAfter = true;
      this.chunked = false;
    }
    const head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n${lines}${framing}\r\n`;
    this.pending = [head];
    if (endStream) this.end(null);
    else this.scheduleFlush();
  }

  write(chunk: Buffer): boolean {
    if (this.finished || this.noBody || chunk.length === 0) return true;
    this.sent += chunk.length;
    if (this.pending) {
      if (this.chunked) this.pending.push(chunkHeader(chunk.length), chunk, '\r\n');
      else this.pending.push(chunk);
      return true;
    }
    const socket = this.conn.socket;
    if (this.chunked) {
      socket.cork();
      socket.write(chunkHeader(chunk.length), 'latin1');
      socket.write(chunk);
      socket.write('\r\n', 'latin1');
      socket.uncork();
      return !socket.writableNeedDrain;
    }
    return socket.write(chunk);
  }

  end(trailers: string[] | null): void {
    if (this.finished) return;
    this.finished = true;
    let tail = '';
    if (this.chunked) {
      tail = LAST_CHUNK;
      if (trailers && trailers.length) {
        try {
          tail = '0\r\n' + serializeHeaderList(trailers) + '\r\n';
        } catch {
          // Trailers that cannot be written are dropped; the body is complete.
        }
      }
    }
    if (this.pending) {
      if (tail) this.pending.push(tail);
      this.flush();
    } else if (tail) this.conn.socket.write(tail, 'latin1');
    this.responseEnded = true;
    this.conn.responseDone(this);
  }

  reset(): void {
    this.finished = true;
    this.pending = null;
    this.conn.socket.destroy();
  }

  onDrain(callback: () => void): void {
    this.conn.socket.once('drain', callback);
  }

  upgrade(status: number, headers: string[], upstream: Duplex): void {
    const socket = this.conn.socket;
    if (this.upgradeHead === null || this.finished) {
      upstream.destroy();
      return;
    }
    this.finished = true;
    this.responded = true;
    let head = `HTTP/1.1 ${status} Switching Protocols\r\n`;
    try {
      head += serializeHeaderList(headers);
    } catch {
      upstream.destroy();
      socket.destroy();
      return;
    }
    head += 'connection: Upgrade\r\n';
    if (this.upgradeProtocol) head += `upgrade: ${this.upgradeProtocol}\r\n`;
    socket.write(head + '\r\n', 'latin1');
    if (this.upgradeHead.length) upstream.write(this.upgradeHead);
    // Either side going away takes the other with it (a destroyed socket emits no 'end' for pipe).
    upstream.on('error', () => undefined);
    socket.once('close', () => upstream.destroy());
    upstream.once('close', () => socket.destroy());
    socket.pipe(upstream);
    upstream.pipe(socket);
    socket.resume();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    process.nextTick(() => {
      this.flushScheduled = false;
      if (this.pending) this.flush();
    });
  }

  /** One write for everything pending: the head, and the body when it came in the same tick. */
  private flush(): void {
    const parts = this.pending!;
    this.pending = null;
    const socket = this.conn.socket;
    if (parts.length === 1) {
      socket.write(parts[0] as string, 'latin1');
      return;
    }
    let size = 0;
    for (const p of parts) size += p.length;
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    for (const p of parts) {
      if (typeof p === 'string') at += out.write(p, at, 'latin1');
      else at += p.copy(out, at);
    }
    socket.write(at === size ? out : out.subarray(0, at));
  }
}
