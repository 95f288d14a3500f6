// One downstream request/response, the same shape over HTTP/1.1 (http1-server.ts) and HTTP/2
// (node:http2 core streams, below), so routing and forwarding are written once.
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import type { DownstreamTlsInfo } from '../config/model';
import { downstreamTlsInfo } from '../listener/downstream-tls-info';

export type DownstreamProtocol = 'HTTP/1.0' | 'HTTP/1.1' | 'HTTP/2';

export interface Exchange {
  readonly protocol: DownstreamProtocol;
  readonly method: string;
  /** Request target as received: origin-form path, or absolute URI for forward-proxy requests. */
  readonly target: string;
  /** :authority or Host as received (may be empty). */
  readonly rawAuthority: string;
  readonly scheme: string;
  /** Request headers (lower-case). Owned by the exchange's handler: it may edit them in place. */
  readonly headers: Record<string, string | string[] | undefined>;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** TLS facts of the downstream connection; undefined for plaintext. */
  readonly tls: DownstreamTlsInfo | undefined;
  /** The request body, or null when the request has none. */
  readonly body: Readable | null;
  /** Whether response headers went out. */
  readonly headersSent: boolean;
  /** Request body bytes (as declared; streamed bodies are counted by whoever reads them) / response body bytes written. */
  bytesReceived(): number;
  bytesSent(): number;
  respond(status: number, headers: string[], endStream: boolean): void;
  /** false: wait for onDrain before writing more. */
  write(chunk: Buffer): boolean;
  end(trailers: string[] | null): void;
  /** Abort the stream (HTTP/2 RST_STREAM, HTTP/1.1 connection close). */
  reset(): void;
  onDrain(callback: () => void): void;
  /** Called once if the client goes away before the response completed. */
  onAbort(callback: () => void): void;
  /** The protocol the client asked to switch to (e.g. websocket), when it can be honoured. */
  readonly upgradeProtocol?: string;
  /** 101 Switching Protocols from the upstream: send the head, then join the two streams. */
  upgrade?(status: number, headers: string[], upstream: Duplex): void;
}

function listToObject(list: string[], into: Record<string, string | string[]>): void {
  for (let i = 0; i + 1 < list.length; i += 2) {
    const name = list[i];
    const prev = into[name];
    if (prev === undefined) into[name] = list[i + 1];
    else if (Array.isArray(prev)) prev.push(list[i + 1]);
    else into[name] = [prev, list[i + 1]];
  }
}

const { HTTP2_HEADER_METHOD, HTTP2_HEADER_PATH, HTTP2_HEADER_AUTHORITY, HTTP2_HEADER_SCHEME, NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM } = http2.constants;

/** The connection's facts, read once per HTTP/2 session (its socket is a Proxy: every read traps). */
interface SessionFacts {
  readonly socket: net.Socket | undefined;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly tls: DownstreamTlsInfo | undefined;
}
const kFacts = Symbol('weft.h2SessionFacts');
const kExchange = Symbol('weft.h2Exchange');
type FactsSession = http2.ServerHttp2Session & { [kFacts]?: SessionFacts };
type ExchangeStream = http2.ServerHttp2Stream & { [kExchange]?: Http2Exchange };
const NO_SESSION: SessionFacts = { socket: undefined, remoteAddress: '', remotePort: 0, localAddress: '', localPort: 0, tls: undefined };

function sessionFacts(session: FactsSession | undefined): SessionFacts {
  if (!session) return NO_SESSION;
  let facts = session[kFacts];
  if (facts === undefined) {
    const socket = session.socket as net.Socket | undefined;
    facts = {
      socket,
      remoteAddress: socket?.remoteAddress ?? '',
      remotePort: socket?.remotePort ?? 0,
      localAddress: socket?.localAddress ?? '',
      localPort: socket?.localPort ?? 0,
      tls: downstreamTlsInfo(socket),
    };
    // Known only once connected; a session seen before that reads them again next time.
    if (socket?.remoteAddress !== undefined) session[kFacts] = facts;
  }
  return facts;
}

// Stream events, shared by every exchange (`this` is the stream).
function onExchangeClose(this: ExchangeStream): void {
  const ex = this[kExchange];
  if (ex) ex.closed();
}
function onExchangeError(): void {
  // 'close' follows and reports the abort.
}
function onWantTrailers(this: ExchangeStream): void {
  const t: Record<string, string | string[]> = {};
  const pending = this[kExchange]?.pendingTrailers;
  if (pending) listToObject(pending, t);
  this.sendTrailers(t as http2.OutgoingHttpHeaders);
}

export class Http2Exchange implements Exchange {
  readonly protocol: DownstreamProtocol = 'HTTP/2';
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
  /** The downstream connection's socket (node's proxy of it), for filter-chain lookups. */
  readonly socket: net.Socket | undefined;
  private sent = 0;
  pendingTrailers: string[] | null = null;
  private abortCallback: (() => void) | null = null;
  private finished = false;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    flags: number,
  ) {
    this.method = (headers[HTTP2_HEADER_METHOD] as string) ?? 'GET';
    this.target = (headers[HTTP2_HEADER_PATH] as string) ?? '/';
    this.rawAuthority = ((headers[HTTP2_HEADER_AUTHORITY] as string) ?? (headers.host as string)) || '';
    this.scheme = (headers[HTTP2_HEADER_SCHEME] as string) ?? 'http';
    // Pseudo-headers are kept out of the header map the rest of the proxy edits and forwards.
    const plain: Record<string, string | string[] | undefined> = {};
    for (const name in headers) {
      if (name.charCodeAt(0) !== 58) plain[name] = headers[name];
    }
    this.headers = plain;
    const facts = sessionFacts(stream.session as FactsSession | undefined);
    this.socket = facts.socket;
    this.remoteAddress = facts.remoteAddress;
    this.remotePort = facts.remotePort;
    this.localAddress = facts.localAddress;
    this.localPort = facts.localPort;
    this.tls = facts.tls;
    this.body = (flags & NGHTTP2_FLAG_END_STREAM) !== 0 ? null : stream;
    (stream as ExchangeStream)[kExchange] = this;
    // 'close' comes once: on() spares once()'s wrapper.
    stream.on('close', onExchangeClose);
    stream.on('error', onExchangeError);
  }

  /** The stream closed: if the response had not completed, the client went away. */
  closed(): void {
    if (this.finished) return;
    this.finished = true;
    this.abortCallback?.();
  }

  get headersSent(): boolean {
    return this.stream.headersSent;
  }

  bytesReceived(): number {
    return Number(this.headers['content-length'] ?? 0);
  }

  bytesSent(): number {
    return this.sent;
  }

  respond(status: number, headers: string[], endStream: boolean): void {
    if (this.stream.destroyed) return;
    const out: Record<string, string | string[]> = { ':status': String(status) };
    listToObject(headers, out);
    // Trailers may follow (gRPC); waitForTrailers lets end() send them or an empty END_STREAM.
    this.stream.respond(out as http2.OutgoingHttpHeaders, endStream ? END_STREAM : WAIT_FOR_TRAILERS);
    if (endStream) this.finished = true;
  }

  write(chunk: Buffer): boolean {
    this.sent += chunk.length;
    if (this.stream.destroyed) return true;
    return this.stream.write(chunk);
  }

  end(trailers: string[] | null): void {
    this.finished = true;
    if (this.stream.destroyed) return;
    // Without trailers node itself ends the stream when it asks for them (an empty END_STREAM).
    if (trailers !== null && trailers.length > 0) {
      this.pendingTrailers = trailers;
      this.stream.on('wantTrailers', onWantTrailers);
    }
    this.stream.end();
  }

  reset(): void {
    this.finished = true;
    if (!this.stream.destroyed) this.stream.close(NGHTTP2_CANCEL);
  }

  onDrain(callback: () => void): void {
    this.stream.once('drain', callback);
  }

  onAbort(callback: () => void): void {
    this.abortCallback = callback;
  }
}

const END_STREAM = Object.freeze({ endStream: true, waitForTrailers: false });
const WAIT_FOR_TRAILERS = Object.freeze({ endStream: false, waitForTrailers: true });
