// HTTP/1.1 on the wire through a real Weft proxy (hand-written codec on llhttp, both sides):
// raw `net` clients write exact request bytes and parse what comes back; a raw `net` server is
// the upstream wherever the test needs to control the upstream's bytes; a node:http backend
// echoes what it received elsewhere. Config comes from the real control plane (ADS).
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { kubeService, virtualService, workloadEntry } from '../support/mesh-resources';
import { clusterStat } from '../support/proxy-admin';
import { startBackend, startMesh, startTestProxy, waitFor, type Backend, type BackendEcho, type Mesh, type TestProxy } from './proxy-harness';

// ---------------------------------------------------------------------------------------------
// Downstream side: a raw client and a strict response parser.

type HeaderList = [string, string][];

interface RawResponse {
  statusLine: string;
  version: string;
  status: number;
  /** The head as received, up to and including the blank line. */
  rawHead: string;
  headers: HeaderList;
  /** Body bytes (de-chunked when chunked). */
  body: Buffer;
  trailers: HeaderList;
  framing: 'none' | 'length' | 'chunked' | 'close';
  /** The connection closed before the framing said the body was complete. */
  truncated: boolean;
}

function header(list: HeaderList, name: string): string | undefined {
  const n = name.toLowerCase();
  return list.find(([k]) => k.toLowerCase() === n)?.[1];
}

function headersNamed(list: HeaderList, name: string): string[] {
  const n = name.toLowerCase();
  return list.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
}

function parseHeaderLines(lines: string[]): HeaderList {
  const out: HeaderList = [];
  for (const line of lines) {
    const i = line.indexOf(':');
    if (i <= 0) throw new Error(`malformed header line ${JSON.stringify(line)}`);
    out.push([line.slice(0, i), line.slice(i + 1).trim()]);
  }
  return out;
}

/** Parses a chunked body from `buf` at `at`; null when incomplete. */
function parseChunked(buf: Buffer, at: number): { body: Buffer; trailers: HeaderList; end: number } | null {
  const parts: Buffer[] = [];
  let pos = at;
  for (;;) {
    const eol = buf.indexOf('\r\n', pos);
    if (eol < 0) return null;
    const sizeText = buf.subarray(pos, eol).toString('latin1').split(';')[0].trim();
    if (!/^[0-9a-fA-F]+$/.test(sizeText)) throw new Error(`bad chunk size line ${JSON.stringify(buf.subarray(pos, eol).toString('latin1'))}`);
    const size = parseInt(sizeText, 16);
    pos = eol + 2;
    if (size === 0) {
      // Trailer section: header lines, then an empty line.
      const lines: string[] = [];
      for (;;) {
        const e = buf.indexOf('\r\n', pos);
        if (e < 0) return null;
        const line = buf.subarray(pos, e).toString('latin1');
        pos = e + 2;
        if (line === '') return { body: Buffer.concat(parts), trailers: parseHeaderLines(lines), end: pos };
        lines.push(line);
      }
    }
    if (buf.length < pos + size + 2) return null;
    parts.push(buf.subarray(pos, pos + size));
    if (buf.subarray(pos + size, pos + size + 2).toString('latin1') !== '\r\n') throw new Error('chunk not followed by CRLF');
    pos += size + 2;
  }
}

/**
 * One response from the start of `buf`: null when more bytes are needed (and the connection is
 * open). Throws when the bytes are not a response at all (e.g. leftover body bytes).
 */
function parseResponse(buf: Buffer, o: { head: boolean; closed: boolean }): { res: RawResponse; used: number } | null {
  if (buf.length >= 5 && buf.subarray(0, 5).toString('latin1') !== 'HTTP/') {
    throw new Error(`not a response: ${JSON.stringify(buf.subarray(0, 80).toString('latin1'))}`);
  }
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd < 0) return null;
  const rawHead = buf.subarray(0, headEnd + 4).toString('latin1');
  const lines = rawHead.slice(0, -4).split('\r\n');
  const statusLine = lines[0];
  const m = /^(HTTP\/1\.[01]) (\d{3})(?: .*)?$/.exec(statusLine);
  if (!m) throw new Error(`bad status line ${JSON.stringify(statusLine)}`);
  const headers = parseHeaderLines(lines.slice(1));
  const status = Number(m[2]);
  const base = { statusLine, version: m[1], status, rawHead, headers, trailers: [] as HeaderList, truncated: false };
  const bodyAt = headEnd + 4;
  if (o.head || (status >= 100 && status < 200) || status === 204 || status === 304) {
    return { res: { ...base, body: Buffer.alloc(0), framing: 'none' }, used: bodyAt };
  }
  const te = header(headers, 'transfer-encoding');
  if (te !== undefined && /chunked/i.test(te)) {
    const c = parseChunked(buf, bodyAt);
    if (c) return { res: { ...base, body: c.body, trailers: c.trailers, framing: 'chunked' }, used: c.end };
    if (!o.closed) return null;
    return { res: { ...base, body: buf.subarray(bodyAt), framing: 'chunked', truncated: true }, used: buf.length };
  }
  const cl = header(headers, 'content-length');
  if (cl !== undefined) {
    const n = Number(cl);
    if (buf.length >= bodyAt + n) return { res: { ...base, body: buf.subarray(bodyAt, bodyAt + n), framing: 'length' }, used: bodyAt + n };
    if (!o.closed) return null;
    return { res: { ...base, body: buf.subarray(bodyAt), framing: 'length', truncated: true }, used: buf.length };
  }
  if (!o.closed) return null;
  return { res: { ...base, body: buf.subarray(bodyAt), framing: 'close' }, used: buf.length };
}

/** A client connection that writes exact bytes and reads responses off the wire. */
class RawClient {
  private buf = Buffer.alloc(0);
  /** The proxy ended (FIN) or the connection closed. */
  ended = false;
  closed = false;
  error: Error | null = null;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => (this.buf = Buffer.concat([this.buf, c])));
    socket.on('end', () => (this.ended = true));
    socket.on('error', (err) => (this.error = err));
    socket.on('close', () => {
      this.ended = true;
      this.closed = true;
    });
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host, noDelay: true });
      s.once('error', reject);
      s.once('connect', () => {
        s.off('error', reject);
        resolve(new RawClient(s));
      });
    });
  }

  send(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** Bytes received and not consumed by a parsed response yet. */
  get pending(): Buffer {
    return this.buf;
  }

  /** The next whole response (a 1xx counts as one). `head`: the request was HEAD (no body). */
  async next(o: { head?: boolean; timeoutMs?: number; what?: string } = {}): Promise<RawResponse> {
    const got = await waitFor(
      (): { res: RawResponse } | { closedEmpty: true } | undefined => {
        const r = parseResponse(this.buf, { head: o.head ?? false, closed: this.ended });
        if (!r) return this.ended && this.buf.length === 0 ? { closedEmpty: true } : undefined;
        this.buf = this.buf.subarray(r.used);
        return { res: r.res };
      },
      { timeoutMs: o.timeoutMs ?? 5000, intervalMs: 5, message: () => `${o.what ?? 'a response'}; got ${JSON.stringify(this.buf.subarray(0, 300).toString('latin1'))}` },
    );
    if ('closedEmpty' in got) throw new Error(`the proxy closed the connection without ${o.what ?? 'a response'}`);
    return got.res;
  }

  /** Waits for a response head only (the body may still be streaming); consumes nothing. */
  async nextHead(timeoutMs = 5000): Promise<{ status: number; headers: HeaderList; bodySoFar: Buffer }> {
    return waitFor(
      () => {
        const end = this.buf.indexOf('\r\n\r\n');
        if (end < 0) return undefined;
        const lines = this.buf.subarray(0, end).toString('latin1').split('\r\n');
        return { status: Number(lines[0].split(' ')[1]), headers: parseHeaderLines(lines.slice(1)), bodySoFar: this.buf.subarray(end + 4) };
      },
      { timeoutMs, intervalMs: 5, message: 'a response head' },
    );
  }

  /** Resolves when the proxy closed (or half-closed) the connection. */
  async waitEnded(timeoutMs = 5000): Promise<void> {
    await waitFor(() => this.ended, { timeoutMs, intervalMs: 5, message: 'the proxy to close the connection' });
  }

  destroy(): void {
    this.socket.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Upstream side: a raw HTTP/1.1 server whose answers are written byte for byte by the tests.

interface UpstreamRequest {
  conn: UpstreamConn;
  method: string;
  path: string;
  version: string;
  rawHead: string;
  headers: HeaderList;
  /** Decoded body. */
  body: Buffer;
  chunked: boolean;
}

type UpstreamHandler = (req: UpstreamRequest, conn: UpstreamConn) => void;

class UpstreamConn {
  closed = false;
  /** A request arriving from now on meets a connection the server is closing: dropped unanswered. */
  refuse = false;
  requests = 0;
  private buf = Buffer.alloc(0);
  private idleTimer: NodeJS.Timeout | null = null;
  /** Called (once) when the server's idle timer set by `idle()` fires. */
  onIdleExpire: (() => void) | null = null;

  constructor(
    readonly id: number,
    readonly socket: net.Socket,
    private readonly server: RawUpstream,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (c: Buffer) => this.onData(c));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.clearIdle();
    });
  }

  /**
   * The server closes this connection after `ms` without a request (its keep-alive timeout).
   * With an `onIdleExpire` hook, the hook runs first and the FIN waits until the next request
   * reached the server (on this connection, where it is dropped, or on another): the request and
   * the close cross on the wire, deterministically.
   */
  idle(ms: number): void {
    this.clearIdle();
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      this.refuse = true;
      const hook = this.onIdleExpire;
      this.onIdleExpire = null;
      if (!hook) {
        this.socket.end();
        return;
      }
      this.server.afterNextRequest.push(() => this.socket.end());
      hook();
    }, ms);
  }

  private clearIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  private onData(chunk: Buffer): void {
    this.server.wire.push(chunk);
    this.clearIdle();
    if (this.refuse) {
      this.socket.destroy();
      this.server.requestSeen();
      return;
    }
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      const req = this.parseOne();
      if (!req) return;
      this.requests++;
      this.server.requests.push(req);
      this.server.dispatch(req);
      if (this.refuse || this.closed) return;
    }
  }

  private parseOne(): UpstreamRequest | null {
    const buf = this.buf;
    const headEnd = buf.indexOf('\r\n\r\n');
    if (headEnd < 0) return null;
    const rawHead = buf.subarray(0, headEnd + 4).toString('latin1');
    const lines = rawHead.slice(0, -4).split('\r\n');
    const [method, path, version] = lines[0].split(' ');
    const headers = parseHeaderLines(lines.slice(1));
    const te = header(headers, 'transfer-encoding');
    const cl = header(headers, 'content-length');
    let body: Buffer = Buffer.alloc(0);
    let end = headEnd + 4;
    let chunked = false;
    if (te !== undefined && /chunked/i.test(te)) {
      const c = parseChunked(buf, end);
      if (!c) return null;
      body = c.body;
      end = c.end;
      chunked = true;
    } else if (cl !== undefined) {
      const n = Number(cl);
      if (buf.length < end + n) return null;
      body = Buffer.from(buf.subarray(end, end + n));
      end += n;
    }
    this.buf = buf.subarray(end);
    return { conn: this, method, path, version, rawHead, headers, body, chunked };
  }
}

class RawUpstream {
  readonly server: net.Server;
  readonly conns: UpstreamConn[] = [];
  readonly requests: UpstreamRequest[] = [];
  /** Every byte received, on any connection. */
  readonly wire: Buffer[] = [];
  private readonly routes = new Map<string, UpstreamHandler>();
  port = 0;

  constructor(readonly address: string) {
    this.server = net.createServer((s) => this.conns.push(new UpstreamConn(this.conns.length + 1, s, this)));
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, this.address, resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  /** Answers requests whose path starts with `prefix` (longest prefix wins). */
  route(prefix: string, handler: UpstreamHandler): void {
    this.routes.set(prefix, handler);
  }

  /** Run once when the next request arrives (answered, or dropped by a closing connection). */
  readonly afterNextRequest: (() => void)[] = [];

  requestSeen(): void {
    for (const f of this.afterNextRequest.splice(0)) f();
  }

  dispatch(req: UpstreamRequest): void {
    this.requestSeen();
    let best: string | undefined;
    for (const p of this.routes.keys()) if (req.path.startsWith(p) && (best === undefined || p.length > best.length)) best = p;
    const handler = best !== undefined ? this.routes.get(best)! : defaultAnswer;
    handler(req, req.conn);
  }

  /** Requests received whose path starts with `prefix`. */
  received(prefix: string): UpstreamRequest[] {
    return this.requests.filter((r) => r.path.startsWith(prefix));
  }

  wireText(): string {
    return Buffer.concat(this.wire).toString('latin1');
  }

  close(): Promise<void> {
    for (const c of this.conns) c.socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

function defaultAnswer(req: UpstreamRequest, conn: UpstreamConn): void {
  const body = `raw ${req.method} ${req.path}`;
  conn.socket.write(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${req.method === 'HEAD' ? '' : body}`);
}

/** Request bytes: `METHOD path HTTP/1.x`, the given header lines, and a body. */
function rawRequest(method: string, path: string, host: string, o: { version?: string; headers?: string[]; body?: string } = {}): string {
  const lines = [`${method} ${path} ${o.version ?? 'HTTP/1.1'}`, `Host: ${host}`, ...(o.headers ?? [])];
  if (o.body !== undefined && !(o.headers ?? []).some((h) => /^(content-length|transfer-encoding):/i.test(h))) lines.push(`Content-Length: ${Buffer.byteLength(o.body)}`);
  return lines.join('\r\n') + '\r\n\r\n' + (o.body ?? '');
}

const RAW_HOST = 'raw:9080';
const ECHO_HOST = 'echo:9080';
const LIMITED_HOST = 'limited:9081';
const RAW_CLUSTER = 'outbound|9080||raw.default.svc.cluster.local';

describe('proxy HTTP/1.1 on the wire', () => {
  let echo: Backend;
  let limited: Backend;
  let raw: RawUpstream;
  let mesh: Mesh;
  let proxy: TestProxy;
  let port: number;
  let admin: string;
  const clients: RawClient[] = [];

  async function connect(): Promise<RawClient> {
    const c = await RawClient.connect(port);
    clients.push(c);
    return c;
  }

  /** One request on a fresh connection; the connection is left to the caller's `clients` cleanup. */
  async function once(bytes: string, o: { head?: boolean } = {}): Promise<RawResponse> {
    const c = await connect();
    c.send(bytes);
    return c.next(o);
  }

  before(async () => {
    echo = await startBackend('echo');
    limited = await startBackend('limited');
    raw = new RawUpstream('127.0.0.1');
    await raw.listen();
    mesh = await startMesh([
      kubeService('echo', [{ name: 'http', port: 9080, targetPort: 9080 }], { app: 'echo' }),
      workloadEntry('echo', { address: echo.address, labels: { app: 'echo' }, ports: { http: echo.port } }),
      kubeService('limited', [{ name: 'http', port: 9081, targetPort: 9081 }], { app: 'limited' }),
      workloadEntry('limited', { address: limited.address, labels: { app: 'limited' }, ports: { http: limited.port } }),
      kubeService('raw', [{ name: 'http', port: 9080, targetPort: 9080 }], { app: 'raw' }),
      workloadEntry('raw', { address: raw.address, labels: { app: 'raw' }, ports: { http: raw.port } }),
      virtualService('limited', { hosts: ['limited'], http: [{ match: [{ uri: { prefix: '/only' } }], route: [{ destination: { host: 'limited' } }] }] }),
      virtualService('raw', {
        hosts: ['raw'],
        http: [
          { match: [{ uri: { prefix: '/crlf-request' } }], headers: { request: { set: { 'x-injected': 'a\r\nx-smuggled: yes' } } }, route: [{ destination: { host: 'raw' } }] },
          { match: [{ uri: { prefix: '/crlf-response' } }], headers: { response: { set: { 'x-injected': 'b\r\nx-smuggled: yes' } } }, route: [{ destination: { host: 'raw' } }] },
          { route: [{ destination: { host: 'raw' } }] },
        ],
      }),
    ]);
    proxy = await startTestProxy(mesh, { name: 'client', address: '127.0.0.1' });
    port = proxy.outboundPort;
    admin = `${proxy.proxy.adminAddress}:${proxy.proxy.ports.admin}`;
    // Routes are in place once the raw service answers through the proxy.
    await waitFor(async () => (await once(rawRequest('GET', '/ready', RAW_HOST))).status === 200, { timeoutMs: 10_000, message: 'raw service routable' });
    await waitFor(async () => (await once(rawRequest('GET', '/only/ready', LIMITED_HOST))).status === 200, { timeoutMs: 10_000, message: 'limited service routable' });
  });

  after(async () => {
    for (const c of clients) c.destroy();
    await proxy?.close();
    await mesh?.close();
    await Promise.all([echo?.close(), limited?.close(), raw?.close()]);
  });

  /** The proxy still serves a new connection. */
  async function assertStillServing(): Promise<void> {
    const r = await once(rawRequest('GET', '/still-serving', ECHO_HOST));
    assert.equal(r.status, 200);
    assert.equal((JSON.parse(r.body.toString()) as BackendEcho).path, '/still-serving');
  }

  // ---- downstream (client -> proxy) ----

  it('answers pipelined requests sent in one write in order, even when the first is slowest', async () => {
    let release!: () => void;
    raw.route('/pipeline-hold', (req, conn) => {
      release = () => conn.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfirst');
    });
    const c = await connect();
    c.send(
      rawRequest('GET', '/pipeline-hold', RAW_HOST) +
        rawRequest('POST', '/pipeline-second', ECHO_HOST, { body: 'second-body' }) +
        rawRequest('GET', '/pipeline-third', ECHO_HOST),
    );
    await waitFor(() => raw.received('/pipeline-hold').length === 1, { message: 'first request at the upstream' });
    assert.equal(c.pending.length, 0, 'nothing answered before the first response');
    release();
    const first = await c.next({ what: 'first response' });
    const second = await c.next({ what: 'second response' });
    const third = await c.next({ what: 'third response' });
    assert.equal(first.status, 200);
    assert.equal(first.body.toString(), 'first');
    const e2 = JSON.parse(second.body.toString()) as BackendEcho;
    assert.equal(e2.path, '/pipeline-second');
    assert.equal(e2.method, 'POST');
    assert.equal(e2.body, 'second-body');
    assert.equal((JSON.parse(third.body.toString()) as BackendEcho).path, '/pipeline-third');
    assert.equal(c.ended, false, 'the connection stays open');
  });

  it('answers a header with a space before the colon with 400 and closes, and keeps serving others', async () => {
    const bystander = await connect();
    bystander.send(rawRequest('GET', '/bystander-1', ECHO_HOST));
    assert.equal((await bystander.next()).status, 200);
    const c = await connect();
    c.send(`GET /bad-colon HTTP/1.1\r\nHost: ${ECHO_HOST}\r\nX-Bad : value\r\n\r\n`);
    const r = await c.next();
    assert.equal(r.status, 400);
    await c.waitEnded();
    assert.equal(echo.received.some((e) => e.path === '/bad-colon'), false, 'the malformed request never reached the upstream');
    bystander.send(rawRequest('GET', '/bystander-2', ECHO_HOST));
    assert.equal((await bystander.next()).status, 200, 'an open keep-alive connection still works');
    await assertStillServing();
  });

  it('answers a request with both Content-Length and Transfer-Encoding with 400 and closes', async () => {
    const c = await connect();
    c.send(`POST /smuggle HTTP/1.1\r\nHost: ${ECHO_HOST}\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: ${ECHO_HOST}\r\n\r\n`);
    const r = await c.next();
    assert.equal(r.status, 400);
    await c.waitEnded();
    assert.equal(c.pending.length, 0, `nothing after the 400: ${JSON.stringify(c.pending.toString('latin1'))}`);
    assert.equal(echo.received.some((e) => e.path === '/smuggle' || e.path === '/smuggled'), false);
    await assertStillServing();
  });

  it('answers a malformed request line with 400 and closes', async () => {
    const c = await connect();
    c.send(`GET /has space HTTP/1.1\r\nHost: ${ECHO_HOST}\r\n\r\n`);
    const r = await c.next();
    assert.equal(r.status, 400);
    await c.waitEnded();
    await assertStillServing();
  });

  it('answers a request head over 16 KB with 431 and closes', async () => {
    const c = await connect();
    const big = Array.from({ length: 20 }, (_, i) => `X-Filler-${i}: ${'a'.repeat(1000)}`);
    c.send(rawRequest('GET', '/big-head', ECHO_HOST, { headers: big }));
    const r = await c.next();
    assert.equal(r.status, 431);
    await c.waitEnded();
    assert.equal(echo.received.some((e) => e.path === '/big-head'), false);
    await assertStillServing();
  });

  it('forwards a chunked request body (no content-length) intact', async () => {
    const c = await connect();
    const big = 'x'.repeat(70_000);
    c.send(`POST /chunked-in HTTP/1.1\r\nHost: ${RAW_HOST}\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n`);
    const pieces = ['5\r\nhello\r\n', '1;ext=yes\r\n \r\n', '5\r\nworld\r\n', `${big.length.toString(16)}\r\n${big}\r\n`, '3\r\n!\r\n\r\n', '0\r\n\r\n'];
    for (const p of pieces) {
      c.send(p);
      await new Promise((r) => setImmediate(r));
    }
    const res = await c.next();
    assert.equal(res.status, 200);
    const got = raw.received('/chunked-in');
    assert.equal(got.length, 1);
    const req = got[0];
    assert.equal(req.body.toString('latin1'), `hello world${big}!\r\n`);
    const cl = header(req.headers, 'content-length');
    const te = header(req.headers, 'transfer-encoding');
    assert.ok((cl === undefined) !== (te === undefined), `exactly one framing header upstream: ${req.rawHead}`);
    if (cl !== undefined) assert.equal(Number(cl), req.body.length);
    // The connection is in step after the chunked body: the next request parses.
    c.send(rawRequest('GET', '/after-chunked-in', ECHO_HOST));
    const next = await c.next();
    assert.equal(next.status, 200);
    assert.equal((JSON.parse(next.body.toString()) as BackendEcho).path, '/after-chunked-in');
  });

  it('forwards a request with many headers (> 32) and a long URL intact', async () => {
    const path = `/many-request-headers?${'q'.repeat(3000)}=1`;
    const lines = Array.from({ length: 50 }, (_, i) => `X-Req-${String(i).padStart(2, '0')}: r${i}-${'z'.repeat(i * 5)}`);
    const bytes = rawRequest('GET', path, RAW_HOST, { headers: lines });
    const c = await connect();
    // In three writes, cutting the URL and a header line.
    c.send(bytes.slice(0, 1500));
    await new Promise((r) => setImmediate(r));
    c.send(bytes.slice(1500, 4000));
    await new Promise((r) => setImmediate(r));
    c.send(bytes.slice(4000));
    const r = await c.next();
    assert.equal(r.status, 200);
    const req = raw.received('/many-request-headers').at(-1)!;
    assert.equal(req.path, path);
    assert.deepEqual(
      req.headers.filter(([k]) => k.toLowerCase().startsWith('x-req-')).map(([k, v]) => `${k.toLowerCase()}: ${v}`),
      lines.map((l) => l.replace(/^X-Req/, 'x-req')),
    );
  });

  it('answers Expect: 100-continue with 100 Continue, then the response', async () => {
    const c = await connect();
    c.send(`POST /expect HTTP/1.1\r\nHost: ${ECHO_HOST}\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n`);
    const interim = await c.next({ what: '100 Continue' });
    assert.equal(interim.statusLine, 'HTTP/1.1 100 Continue');
    assert.equal(interim.rawHead, 'HTTP/1.1 100 Continue\r\n\r\n');
    c.send('hello there');
    const r = await c.next();
    assert.equal(r.status, 200);
    const e = JSON.parse(r.body.toString()) as BackendEcho;
    assert.equal(e.body, 'hello there');
    assert.equal(e.headers.expect, undefined, 'the proxy answered the expectation; the upstream does not see it');
  });

  it('delimits a chunked upstream response by connection close for an HTTP/1.0 client', async () => {
    raw.route('/http10-chunked', (_req, conn) => {
      conn.socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n6\r\nhello \r\n');
      setImmediate(() => conn.socket.write('5\r\nworld\r\n0\r\n\r\n'));
    });
    const c = await connect();
    c.send(rawRequest('GET', '/http10-chunked', RAW_HOST, { version: 'HTTP/1.0' }));
    await c.waitEnded();
    const r = await c.next();
    assert.equal(r.status, 200);
    assert.equal(r.framing, 'close', `framing of ${r.rawHead}`);
    assert.equal(header(r.headers, 'transfer-encoding'), undefined, 'no chunked coding for an HTTP/1.0 client');
    assert.equal(header(r.headers, 'connection')?.toLowerCase(), 'close');
    assert.equal(r.body.toString(), 'hello world');
  });

  it('keeps an HTTP/1.0 keep-alive connection when the response has a length', async () => {
    const c = await connect();
    c.send(rawRequest('GET', '/http10-ka-1', ECHO_HOST, { version: 'HTTP/1.0', headers: ['Connection: keep-alive'] }));
    const r1 = await c.next();
    assert.equal(r1.status, 200);
    assert.equal(r1.framing, 'length');
    assert.equal(header(r1.headers, 'connection')?.toLowerCase(), 'keep-alive');
    assert.equal((JSON.parse(r1.body.toString()) as BackendEcho).path, '/http10-ka-1');
    c.send(rawRequest('GET', '/http10-ka-2', ECHO_HOST, { version: 'HTTP/1.0', headers: ['Connection: keep-alive'] }));
    const r2 = await c.next();
    assert.equal(r2.status, 200);
    assert.equal((JSON.parse(r2.body.toString()) as BackendEcho).path, '/http10-ka-2');
    assert.equal(c.ended, false);
  });

  it('answers Connection: close with connection: close and closes after the response', async () => {
    const c = await connect();
    c.send(rawRequest('GET', '/client-close', ECHO_HOST, { headers: ['Connection: close'] }));
    const r = await c.next();
    assert.equal(r.status, 200);
    assert.equal(header(r.headers, 'connection')?.toLowerCase(), 'close');
    assert.equal((JSON.parse(r.body.toString()) as BackendEcho).path, '/client-close');
    await c.waitEnded();
  });

  it('answers a Connection: close request and serves nothing pipelined after it', async () => {
    // RFC 9112 9.6: respond to the request that carried "close", then close; do not process
    // further requests (Envoy pauses its parser after such a request and never reads them).
    const c = await connect();
    c.send(rawRequest('GET', '/close-first', ECHO_HOST, { headers: ['Connection: close'] }) + rawRequest('GET', '/close-second', ECHO_HOST));
    const r = await c.next();
    assert.equal(r.status, 200);
    assert.equal(header(r.headers, 'connection')?.toLowerCase(), 'close');
    await c.waitEnded();
    assert.equal(c.pending.length, 0, `nothing after the last response: ${JSON.stringify(c.pending.toString('latin1'))}`);
    assert.equal(echo.received.some((e) => e.path === '/close-second'), false);
  });

  it('answers HEAD with the upstream headers and no body, and the connection stays usable', async () => {
    const c = await connect();
    c.send(rawRequest('HEAD', '/head', ECHO_HOST));
    const h = await c.next({ head: true });
    assert.equal(h.status, 200);
    assert.equal(header(h.headers, 'x-backend'), 'echo');
    assert.equal(header(h.headers, 'content-type'), 'application/json');
    const declared = Number(header(h.headers, 'content-length'));
    assert.ok(declared > 0, `the upstream's content-length is kept: ${h.rawHead}`);
    c.send(rawRequest('GET', '/after-head', ECHO_HOST));
    // A HEAD body leaking onto the wire would make this parse fail ("not a response").
    const g = await c.next();
    assert.equal(g.status, 200);
    assert.equal((JSON.parse(g.body.toString()) as BackendEcho).path, '/after-head');
    const heads = echo.received.filter((e) => e.path === '/head');
    assert.equal(heads.length, 1);
    assert.equal(heads[0].method, 'HEAD');
  });

  it('survives a client that closes mid-response while the upstream streams, and drops the upstream connection', async () => {
    raw.route('/mid-stream', (_req, conn) => {
      conn.socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\na\r\n0123456789\r\n');
      // An endless stream, a chunk every 5 ms, until the proxy closes the connection.
      const timer = setInterval(() => {
        if (conn.closed) clearInterval(timer);
        else conn.socket.write('a\r\n0123456789\r\n');
      }, 5);
      conn.socket.once('close', () => clearInterval(timer));
    });
    const c = await connect();
    c.send(rawRequest('GET', '/mid-stream', RAW_HOST));
    const head = await c.nextHead();
    assert.equal(head.status, 200);
    const upstreamConn = raw.received('/mid-stream')[0].conn;
    c.destroy();
    await waitFor(() => upstreamConn.closed, { message: 'the proxy to close the upstream connection of the abandoned request' });
    await waitFor(() => proxy.records.find((x) => x.path === '/mid-stream'), { message: 'access record of the abandoned request' });
    await assertStillServing();
    const r = await once(rawRequest('GET', '/after-abort', RAW_HOST));
    assert.equal(r.status, 200);
  });

  it('aborts the upstream request when the client closes while the upstream is silent mid-response', async () => {
    let finish!: () => void;
    raw.route('/mid-silent', (_req, conn) => {
      conn.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 20\r\n\r\n0123456789');
      finish = () => conn.socket.write('abcdefghij');
    });
    const txBefore = await clusterStat(admin, RAW_CLUSTER, 'upstream_rq_tx_reset');
    const c = await connect();
    c.send(rawRequest('GET', '/mid-silent', RAW_HOST));
    const head = await c.nextHead();
    assert.equal(head.status, 200);
    const upstreamConn = raw.received('/mid-silent')[0].conn;
    c.destroy();
    try {
      await waitFor(() => upstreamConn.closed, { timeoutMs: 3000, message: 'the proxy to close the upstream connection of the abandoned request (client FIN, upstream silent)' });
      await waitFor(async () => (await clusterStat(admin, RAW_CLUSTER, 'upstream_rq_tx_reset')) > txBefore, { message: 'upstream_rq_tx_reset counted' });
    } finally {
      // Let the request end either way, so nothing is left hanging in the proxy.
      if (!upstreamConn.closed) finish();
    }
    await assertStillServing();
  });

  it('keeps a keep-alive connection after a local reply (404 no route)', async () => {
    const c = await connect();
    c.send(rawRequest('GET', '/elsewhere', LIMITED_HOST));
    const r = await c.next();
    assert.equal(r.status, 404);
    assert.notEqual(header(r.headers, 'connection')?.toLowerCase(), 'close');
    assert.deepEqual(proxy.records.find((x) => x.path === '/elsewhere')?.flags, ['NR']);
    c.send(rawRequest('GET', '/only/next', LIMITED_HOST));
    const r2 = await c.next();
    assert.equal(r2.status, 200);
    assert.equal((JSON.parse(r2.body.toString()) as BackendEcho).path, '/only/next');
    assert.equal(c.ended, false);
  });

  // ---- upstream (proxy -> upstream) ----

  it('passes a response with many headers (> 40) through intact and in order', async () => {
    const names = Array.from({ length: 60 }, (_, i) => `x-h-${String(i).padStart(2, '0')}`);
    const lines = names.map((n, i) => `${n}: value-${i}-${'v'.repeat(i * 3)}`);
    const cookies = ['a=1; Path=/', 'b=2; HttpOnly', 'c=3'];
    const head = `HTTP/1.1 200 OK\r\n${lines.join('\r\n')}\r\n${cookies.map((c) => `set-cookie: ${c}`).join('\r\n')}\r\ncontent-length: 4\r\n\r\nbody`;
    raw.route('/many-headers', (_req, conn) => {
      // The head in two writes, split inside a header line.
      const cut = Math.floor(head.length / 2);
      conn.socket.write(head.slice(0, cut));
      setImmediate(() => conn.socket.write(head.slice(cut)));
    });
    const r = await once(rawRequest('GET', '/many-headers', RAW_HOST));
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'body');
    const got = r.headers.filter(([k]) => k.toLowerCase().startsWith('x-h-'));
    assert.deepEqual(
      got.map(([k, v]) => `${k.toLowerCase()}: ${v}`),
      lines,
    );
    assert.deepEqual(headersNamed(r.headers, 'set-cookie'), cookies);
  });

  it('passes chunked response trailers through to an HTTP/1.1 client', async () => {
    raw.route('/trailers', (_req, conn) => {
      conn.socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\ntrailer: x-checksum, x-count\r\n\r\n4\r\nabcd\r\n');
      setImmediate(() => conn.socket.write('3\r\nefg\r\n0\r\nx-checksum: 1234\r\nx-count: 7\r\n\r\n'));
    });
    const r = await once(rawRequest('GET', '/trailers', RAW_HOST, { headers: ['TE: trailers'] }));
    assert.equal(r.status, 200);
    assert.equal(r.framing, 'chunked');
    assert.equal(r.body.toString(), 'abcdefg');
    assert.equal(header(r.trailers, 'x-checksum'), '1234');
    assert.equal(header(r.trailers, 'x-count'), '7');
  });

  it('passes chunked response trailers through to an HTTP/2 client', async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    try {
      const result = await new Promise<{ status: number; body: string; trailers: http2.IncomingHttpHeaders }>((resolve, reject) => {
        const req = session.request({ ':method': 'GET', ':path': '/trailers-h2', ':authority': RAW_HOST, te: 'trailers' });
        let status = 0;
        let body = '';
        let trailers: http2.IncomingHttpHeaders = {};
        req.on('response', (h) => (status = Number(h[':status'])));
        req.on('trailers', (t) => (trailers = t));
        req.setEncoding('utf8');
        req.on('data', (d: string) => (body += d));
        req.on('end', () => resolve({ status, body, trailers }));
        req.on('error', reject);
        req.end();
      });
      assert.equal(result.status, 200);
      assert.equal(result.body, 'abcdefg');
      assert.equal(result.trailers['x-checksum'], '1234');
      assert.equal(result.trailers['x-count'], '7');
    } finally {
      session.close();
    }
  });

  it('opens a new upstream connection after the upstream answered Connection: close', async () => {
    raw.route('/upstream-close', (req, conn) => {
      const body = `closing ${req.path}`;
      conn.socket.write(`HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
      // The server is done with this connection; its FIN follows a moment later (as it would
      // after a flush), and a request arriving on it meanwhile is dropped unanswered.
      conn.refuse = true;
      setTimeout(() => conn.socket.end(), 50);
    });
    const c = await connect();
    for (let i = 0; i < 4; i++) {
      // POST: not idempotent, so a request lost on a dead connection is not retried silently.
      c.send(rawRequest('POST', `/upstream-close/${i}`, RAW_HOST, { body: `n=${i}` }));
      const r = await c.next();
      assert.equal(r.status, 200, `request ${i}: ${r.rawHead}${r.body}`);
      assert.equal(r.body.toString(), `closing /upstream-close/${i}`);
    }
    const got = raw.received('/upstream-close/');
    assert.equal(got.length, 4);
    assert.equal(new Set(got.map((r) => r.conn.id)).size, 4, 'one upstream connection per request');
    assert.equal(c.ended, false, 'the downstream connection is not affected');
  });

  it('does not reuse an upstream connection past its keep-alive: timeout=1 hint', async () => {
    raw.route('/ka-hint', (req, conn) => {
      const body = `hint ${req.path}`;
      conn.socket.write(`HTTP/1.1 200 OK\r\nkeep-alive: timeout=1\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
      conn.idle(1000);
    });
    const c = await connect();
    c.send(rawRequest('POST', '/ka-hint/1', RAW_HOST, { body: 'one' }));
    const r1 = await c.next();
    assert.equal(r1.status, 200);
    const first = raw.received('/ka-hint/1')[0].conn;
    let sent = false;
    const sendSecond = () => {
      if (sent) return;
      sent = true;
      c.send(rawRequest('POST', '/ka-hint/2', RAW_HOST, { body: 'two' }));
    };
    // If the proxy still holds the connection when the upstream's 1 s timer fires, the next
    // request leaves at that very moment and meets the upstream's close (the keep-alive race;
    // POST, so the proxy may not retry it).
    first.onIdleExpire = sendSecond;
    await waitFor(() => first.closed || sent, { timeoutMs: 3000, message: 'the first upstream connection to close (by the proxy, or by the upstream at 1 s)' });
    sendSecond();
    const r2 = await c.next();
    assert.equal(r2.status, 200, `second request: ${r2.rawHead}${r2.body}`);
    assert.equal(r2.body.toString(), 'hint /ka-hint/2');
    const second = raw.received('/ka-hint/2');
    assert.equal(second.length, 1);
    assert.notEqual(second[0].conn, first, 'the second request went on a new connection');
  });

  it('cuts the client response when the upstream closes mid-body, and counts the reset', async () => {
    raw.route('/truncated', (_req, conn) => {
      conn.socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 1000\r\n\r\n0123456789');
      setImmediate(() => conn.socket.end());
    });
    const resetsBefore = await clusterStat(admin, RAW_CLUSTER, 'upstream_rq_rx_reset');
    const c = await connect();
    c.send(rawRequest('GET', '/truncated', RAW_HOST));
    await c.waitEnded();
    const r = await c.next();
    assert.equal(r.status, 200);
    assert.equal(header(r.headers, 'content-length'), '1000');
    assert.equal(r.truncated, true, 'the body is incomplete');
    assert.equal(r.body.toString(), '0123456789');
    await waitFor(async () => (await clusterStat(admin, RAW_CLUSTER, 'upstream_rq_rx_reset')) === resetsBefore + 1, {
      message: 'upstream_rq_rx_reset counted once',
    });
    await waitFor(() => proxy.records.find((x) => x.path === '/truncated'), { message: 'access record' });
    assert.ok(proxy.records.find((x) => x.path === '/truncated')?.flags.includes('UC'));
    await assertStillServing();
  });

  it('drops a 103 Early Hints from the upstream (as Envoy does by default) and forwards the 200', async () => {
    raw.route('/early-hints', (_req, conn) => {
      conn.socket.write('HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n');
      setImmediate(() => conn.socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nlink: </style.css>; rel=preload\r\ncontent-length: 5\r\n\r\nfinal'));
    });
    const c = await connect();
    c.send(rawRequest('GET', '/early-hints', RAW_HOST));
    const r = await c.next();
    assert.equal(r.status, 200, `first response: ${r.rawHead}`);
    assert.equal(r.body.toString(), 'final');
    assert.equal(header(r.headers, 'link'), '</style.css>; rel=preload');
    c.send(rawRequest('GET', '/after-hints', RAW_HOST));
    const next = await c.next();
    assert.equal(next.status, 200);
    assert.equal(next.body.toString(), 'raw GET /after-hints');
  });

  it('does not wait for a body after an upstream HEAD response with content-length: 1000', async () => {
    raw.route('/head-cl', (req, conn) => {
      if (req.method === 'HEAD') conn.socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 1000\r\nx-head: yes\r\n\r\n');
      else defaultAnswer(req, conn);
    });
    const c = await connect();
    for (let i = 0; i < 3; i++) {
      c.send(rawRequest('HEAD', `/head-cl/${i}`, RAW_HOST));
      const h = await c.next({ head: true, timeoutMs: 3000, what: `HEAD response ${i}` });
      assert.equal(h.status, 200);
      assert.equal(header(h.headers, 'content-length'), '1000');
      assert.equal(header(h.headers, 'x-head'), 'yes');
    }
    c.send(rawRequest('GET', '/head-cl/get', RAW_HOST));
    const g = await c.next();
    assert.equal(g.status, 200);
    assert.equal(g.body.toString(), 'raw GET /head-cl/get');
    assert.equal(raw.received('/head-cl/').length, 4);
  });

  it('passes an upstream 304 with content-length through without waiting for a body', async () => {
    raw.route('/not-modified', (_req, conn) => {
      // RFC 9110 8.6: a 304 may carry the selected representation's Content-Length; it has no body.
      conn.socket.write('HTTP/1.1 304 Not Modified\r\netag: "v1"\r\ncontent-length: 100\r\n\r\n');
    });
    const c = await connect();
    c.send(rawRequest('GET', '/not-modified', RAW_HOST, { headers: ['If-None-Match: "v1"'] }));
    try {
      const r = await c.next({ timeoutMs: 3000, what: 'the 304' });
      assert.equal(r.status, 304);
      assert.equal(header(r.headers, 'etag'), '"v1"');
      assert.equal(header(r.headers, 'transfer-encoding'), undefined);
      c.send(rawRequest('GET', '/after-304', RAW_HOST));
      const next = await c.next({ timeoutMs: 3000, what: 'the response after the 304' });
      assert.equal(next.status, 200);
      assert.equal(next.body.toString(), 'raw GET /after-304');
    } finally {
      // Whatever the proxy waits for, it will not come: let it go.
      for (const req of raw.received('/not-modified')) req.conn.socket.destroy();
    }
  });

  it('delivers an upstream HTTP/1.0 response delimited by close complete to an HTTP/1.1 client', async () => {
    raw.route('/upstream-http10', (_req, conn) => {
      conn.socket.write('HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nfirst part, ');
      setImmediate(() => conn.socket.end('second part'));
    });
    const c = await connect();
    c.send(rawRequest('GET', '/upstream-http10', RAW_HOST));
    const r = await c.next();
    assert.equal(r.status, 200);
    assert.equal(r.truncated, false);
    assert.equal(r.body.toString(), 'first part, second part');
    c.send(rawRequest('GET', '/after-http10', RAW_HOST));
    assert.equal((await c.next()).body.toString(), 'raw GET /after-http10');
  });

  it('passes header bytes outside ASCII through unchanged, both ways', async () => {
    const utf8 = Buffer.from('café ☕', 'utf8');
    const latin = Buffer.from([0x63, 0x61, 0x66, 0xe9]); // "café" in latin1 (obs-text)
    raw.route('/non-ascii', (_req, conn) => {
      conn.socket.write(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nx-utf8: '), utf8, Buffer.from('\r\nx-latin: '), latin, Buffer.from('\r\ncontent-length: 2\r\n\r\nok')]));
    });
    const c = await connect();
    c.send(Buffer.concat([Buffer.from(`GET /non-ascii HTTP/1.1\r\nHost: ${RAW_HOST}\r\nx-utf8: `), utf8, Buffer.from('\r\n\r\n')]));
    const r = await c.next();
    assert.equal(r.status, 200);
    assert.deepEqual(Buffer.from(header(r.headers, 'x-utf8') ?? '', 'latin1'), utf8);
    assert.deepEqual(Buffer.from(header(r.headers, 'x-latin') ?? '', 'latin1'), latin);
    const req = raw.received('/non-ascii').at(-1)!;
    assert.deepEqual(Buffer.from(header(req.headers, 'x-utf8') ?? '', 'latin1'), utf8);
  });

  it('never writes a config header value with CR/LF to the upstream as a split header', async () => {
    const r = await once(rawRequest('GET', '/crlf-request', RAW_HOST));
    const seen = raw.received('/crlf-request');
    for (const req of seen) {
      assert.equal(header(req.headers, 'x-smuggled'), undefined, `split header upstream: ${JSON.stringify(req.rawHead)}`);
    }
    assert.doesNotMatch(raw.wireText(), /(^|\n)x-smuggled/i);
    // Either the value was refused (a 5xx, nothing sent) or it went out in one line.
    if (seen.length === 0) assert.ok(r.status >= 500, `status ${r.status}`);
    else assert.equal(r.status, 200);
  });

  it('never writes a config response header value with CR/LF to the client as a split header', async () => {
    const c = await connect();
    c.send(rawRequest('GET', '/crlf-response', RAW_HOST));
    const r = await c.next();
    assert.equal(header(r.headers, 'x-smuggled'), undefined, `split header downstream: ${JSON.stringify(r.rawHead)}`);
    assert.doesNotMatch(r.rawHead, /\nx-smuggled/i);
    assert.ok(r.status === 200 || r.status >= 500, `status ${r.status}`);
    if (!c.ended) {
      c.send(rawRequest('GET', '/after-crlf', ECHO_HOST));
      assert.equal((await c.next()).status, 200);
    }
  });
});
