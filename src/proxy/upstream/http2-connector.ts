// HTTP/2 (cleartext, prior knowledge) to one endpoint with node:http2: one multiplexed session,
// re-established when it closes. Used for gRPC clusters (http2_protocol_options); carries
// trailers and trailers-only responses exactly.
import * as http2 from 'node:http2';
import type { Readable } from 'node:stream';
import type { UpstreamTlsSettings } from '../config/upstream-tls';
import type { SecureContextCache } from '../identity/secure-contexts';
import { classifyUpstreamError, upstreamClientTls } from './http1-connector';
import { HOP_BY_HOP, UpstreamFailure, type EndpointConnector, type UpstreamCall, type UpstreamHandler, type UpstreamRequest } from './upstream-call';

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_CANCEL, HTTP2_HEADER_STATUS } = http2.constants;

export interface Http2Settings {
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  /** Sessions opened at once is one; this caps concurrent streams on it (0: server's limit). */
  maxRequestsPerConnection: number;
  tls?: UpstreamTlsSettings;
  contexts?: SecureContextCache;
}

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

class Http2Call implements UpstreamCall {
  stream: http2.ClientHttp2Stream | null = null;
  private aborted = false;
  private finished = false;
  private gotHeaders = false;
  private trailers: string[] | null = null;

  constructor(private readonly handler: UpstreamHandler) {}

  attach(stream: http2.ClientHttp2Stream, body: UpstreamRequest['body']): void {
    this.stream = stream;
    if (this.aborted) {
      stream.close(NGHTTP2_CANCEL);
      return;
    }
    stream.on('response', (headers, flags) => {
      const status = Number(headers[HTTP2_HEADER_STATUS]);
      if (status < 200) return;
      this.gotHeaders = true;
      const endStream = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      this.handler.onHeaders(status, headersToList(headers), endStream);
    });
    stream.on('data', (chunk: Buffer) => {
      if (this.aborted) return;
      if (!this.handler.onData(chunk)) stream.pause();
    });
    stream.on('trailers', (headers) => {
      this.trailers = headersToList(headers);
    });
    stream.on('end', () => this.finish());
    stream.on('error', (err) => this.fail(err));
    stream.on('close', () => {
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

  private finish(): void {
    if (this.finished || this.aborted) return;
    this.finished = true;
    if (!this.gotHeaders) {
      this.handler.onError(new UpstreamFailure('remote-reset', 'stream ended without response headers', true));
      return;
    }
    this.handler.onEnd(this.trailers);
  }

  fail(err: unknown): void {
    if (this.finished || this.aborted) return;
    this.finished = true;
    this.handler.onError(classifyUpstreamError(err, !this.gotHeaders));
  }

  abort(): void {
    if (this.aborted || this.finished) return;
    this.aborted = true;
    this.stream?.close(NGHTTP2_CANCEL);
  }

  resume(): void {
    this.stream?.resume();
  }
}

export class Http2Connector implements EndpointConnector {
  private session: http2.ClientHttp2Session | null = null;
  private connected = false;
  private closing = false;
  private active = 0;
  private idleTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly origin: string,
    private readonly settings: Http2Settings,
  ) {}

  private getSession(): http2.ClientHttp2Session {
    const existing = this.session;
    if (existing && !existing.closed && !existing.destroyed) return existing;
    // TLS material is looked up per session, so a rotated certificate is used by the next one.
    const tlsOptions = this.settings.tls ? { ...upstreamClientTls(this.settings.tls, this.settings.contexts).options, ALPNProtocols: ['h2'] } : {};
    const session = http2.connect(this.origin, { peerMaxConcurrentStreams: 1000, ...tlsOptions });
    this.session = session;
    this.connected = false;
    const timer = setTimeout(() => {
      if (!this.connected) session.destroy(Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' }));
    }, this.settings.connectTimeoutMs || 10_000);
    timer.unref();
    session.on('connect', () => {
      this.connected = true;
      clearTimeout(timer);
    });
    session.on('error', () => {
      // Streams receive the error themselves; the session is replaced on next use.
    });
    session.on('close', () => {
      clearTimeout(timer);
      if (this.session === session) this.session = null;
    });
    session.on('goaway', () => {
      if (this.session === session) this.session = null;
    });
    session.unref();
    return session;
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): UpstreamCall {
    const call = new Http2Call(handler);
    if (this.closing) {
      queueMicrotask(() => call.fail(new UpstreamFailure('connection-termination', 'endpoint is closing', true)));
      return call;
    }
    const headers: http2.OutgoingHttpHeaders = {
      ':method': request.method,
      ':path': request.path,
      ':scheme': this.settings.tls ? 'https' : 'http',
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
      const session = this.getSession();
      stream = session.request(headers, { endStream: request.body === null });
    } catch (err) {
      queueMicrotask(() => call.fail(err));
      return call;
    }
    this.active++;
    this.clearIdle();
    stream.once('close', () => {
      this.active--;
      if (this.active === 0) this.armIdle();
    });
    call.attach(stream, request.body);
    return call;
  }

  private clearIdle(): void {
    if (this.idleTimer) {
      clearTimeout(this.idleTimer);
      this.idleTimer = null;
    }
  }

  private armIdle(): void {
    if (!this.settings.idleTimeoutMs) return;
    this.clearIdle();
    this.idleTimer = setTimeout(() => {
      if (this.active === 0) this.session?.close();
    }, this.settings.idleTimeoutMs);
    this.idleTimer.unref();
  }

  connections(): number {
    return this.session && this.connected && !this.session.closed ? 1 : 0;
  }

  close(): Promise<void> {
    this.closing = true;
    this.clearIdle();
    const session = this.session;
    if (!session || session.closed) return Promise.resolve();
    return new Promise((resolve) => session.close(() => resolve()));
  }

  destroy(): void {
    this.closing = true;
    this.clearIdle();
    this.session?.destroy();
  }
}
