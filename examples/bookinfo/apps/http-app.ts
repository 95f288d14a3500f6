// The HTTP runtime the Bookinfo workloads share: a route table matched by method and path, JSON /
// HTML / text replies, listening with operator-readable bind errors, and a graceful stop on
// SIGTERM (stop accepting, let in-flight requests finish, then exit).
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../../src/log/logger';

export interface RequestContext {
  readonly req: http.IncomingMessage;
  readonly res: http.ServerResponse;
  readonly url: URL;
  /** Capture groups of the route's path pattern. */
  readonly params: readonly string[];
}

export interface Route {
  /** Allowed methods; '*' for any. HEAD is served wherever GET is. */
  readonly methods: readonly string[];
  readonly path: RegExp;
  handle(ctx: RequestContext): void | Promise<void>;
}

export function route(methods: string | readonly string[], path: RegExp, handle: Route['handle']): Route {
  return { methods: typeof methods === 'string' ? [methods] : methods, path, handle };
}

/** Dispatches to the first route whose path matches; 405 when only the method differs, else 404. */
export function createRequestListener(routes: readonly Route[], logger: Logger): http.RequestListener {
  return (req, res) => {
    const started = Date.now();
    const url = new URL(req.url ?? '/', 'http://app.local');
    const method = req.method ?? 'GET';
    logger.debug('request received', { method, path: url.pathname });
    let pathMatched = false;
    for (const r of routes) {
      const match = r.path.exec(url.pathname);
      if (!match) continue;
      pathMatched = true;
      const allowed = r.methods.includes('*') || r.methods.includes(method) || (method === 'HEAD' && r.methods.includes('GET'));
      if (!allowed) continue;
      Promise.resolve()
        .then(() => r.handle({ req, res, url, params: match.slice(1) }))
        .catch((err: unknown) => {
          logger.error('request failed', { method, path: url.pathname, error: err });
          if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
          else res.destroy();
        })
        .finally(() => logger.debug('request', { method, path: url.pathname, status: res.statusCode, durationMs: Date.now() - started }));
      return;
    }
    if (pathMatched) sendText(res, 405, 'Method Not Allowed\n');
    else sendText(res, 404, 'Not Found\n');
  };
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers });
  res.end(payload);
}

export function sendText(res: http.ServerResponse, status: number, text: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendHtml(res: http.ServerResponse, status: number, html: string, headers: http.OutgoingHttpHeaders = {}): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(html), ...headers });
  res.end(html);
}

/** Reads the request body (bounded, so a client cannot make us buffer without limit). */
export async function readBody(req: http.IncomingMessage, limitBytes = 1 << 20): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limitBytes) throw new Error(`request body larger than ${limitBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export interface RunningServer {
  readonly address: string;
  readonly port: number;
  /** Stops accepting, waits up to `graceMs` for in-flight requests, then closes what remains. */
  stop(graceMs?: number): Promise<void>;
}

export class ListenError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** Listens on address:port; rejects with a ListenError whose message says what to do about it. */
export function listen(listener: http.RequestListener, address: string, port: number): Promise<RunningServer> {
  const server = http.createServer(listener);
  // Keep-alive connections from sidecars stay open between requests; do not let an idle one
  // hold the process at shutdown longer than the grace period.
  server.keepAliveTimeout = 5000;
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, address, port)));
    server.listen(port, address, () => {
      const bound = server.address() as AddressInfo;
      resolve({ address: bound.address, port: bound.port, stop: (graceMs) => stopServer(server, graceMs ?? 10_000) });
    });
  });
}

function listenError(err: NodeJS.ErrnoException, address: string, port: number): ListenError {
  const where = `${address}:${port}`;
  switch (err.code) {
    case 'EADDRINUSE':
      return new ListenError(err.code, `cannot listen on ${where}: the address is already in use (hint: another instance may be running; set PORT or BIND_ADDRESS)`);
    case 'EADDRNOTAVAIL':
      return new ListenError(
        err.code,
        address.startsWith('127.')
          ? `cannot listen on ${where}: ${address} is not configured on this machine (hint: Linux routes all of 127.0.0.0/8 to loopback; on macOS add an alias first: sudo ifconfig lo0 alias ${address})`
          : `cannot listen on ${where}: ${address} is not an address of this machine (hint: check BIND_ADDRESS)`,
      );
    case 'EACCES':
      return new ListenError(err.code, `cannot listen on ${where}: permission denied (hint: ports below 1024 need privileges; use a higher PORT)`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new ListenError(err.code, `cannot listen on ${where}: BIND_ADDRESS ${address} does not resolve`);
    default:
      return new ListenError(err.code ?? 'LISTEN_FAILED', `cannot listen on ${where}: ${err.message}`);
  }
}

function stopServer(server: http.Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearInterval(idleSweep);
      clearTimeout(deadline);
      resolve();
    };
    server.close(() => finish());
    // close() only ends idle keep-alive connections once; ones that finish a request later must
    // be ended too, or close() would wait for the client to hang up.
    server.closeIdleConnections();
    const idleSweep = setInterval(() => server.closeIdleConnections(), 50);
    const deadline = setTimeout(() => {
      server.closeAllConnections();
      finish();
    }, graceMs);
  });
}
