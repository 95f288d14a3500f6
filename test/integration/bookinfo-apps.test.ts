// The Bookinfo applications as real processes, without a mesh: each workload is a child process
// on its own loopback address, and a small forward proxy written here plays the sidecar that
// HTTP_PROXY points at. It maps mesh names (`details:9080`, `reviews:9080`, ...) to the processes,
// records every request it carries, and can delay or fail a service, which proves the apps send
// all their calls through HTTP_PROXY, by mesh name, with the headers Istio's tasks rely on.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { request } from 'undici';
import { waitFor } from '../support/wait-for';

const MAIN = path.resolve(__dirname, '../../examples/bookinfo/apps/main.js');

const REVIEWS_ERROR = 'Sorry, product reviews are currently unavailable for this book.';
const DETAILS_ERROR = 'Sorry, product details are currently unavailable for this book.';
const RATINGS_ERROR = 'Ratings service is currently unavailable';

// ---------------------------------------------------------------------------------------------
// The stand-in sidecar: an HTTP forward proxy for absolute-form requests.

interface SeenRequest {
  /** `details:9080` */
  host: string;
  /** The request target exactly as received (absolute-form from a proxy client). */
  target: string;
  path: string;
  headers: http.IncomingHttpHeaders;
}

interface Upstream {
  address: string;
  port: number;
}

interface ServiceBehaviour {
  upstream?: Upstream;
  /** Hold the request this long before forwarding (a slow service). */
  delayMs?: number;
  /** `unavailable`: answer 503 as a sidecar with no healthy upstream; `reset`: drop the connection. */
  fail?: 'unavailable' | 'reset';
}

class TestForwardProxy {
  readonly seen: SeenRequest[] = [];
  private readonly services = new Map<string, ServiceBehaviour>();
  private readonly server = http.createServer((req, res) => this.handle(req, res));
  url = '';

  async start(address: string): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, address, resolve));
    const bound = this.server.address() as AddressInfo;
    this.url = `http://${bound.address}:${bound.port}`;
  }

  /** Sets how `host:port` (a mesh name) is served; replaces earlier behaviour for it. */
  set(meshHost: string, behaviour: ServiceBehaviour): void {
    this.services.set(meshHost, behaviour);
  }

  update(meshHost: string, change: Partial<ServiceBehaviour>): void {
    this.services.set(meshHost, { ...this.services.get(meshHost), ...change });
  }

  requestsTo(meshHost: string): SeenRequest[] {
    return this.seen.filter((r) => r.host === meshHost);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const target = req.url ?? '';
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      res.writeHead(400).end('forward proxy: absolute-form request target expected\n');
      return;
    }
    this.seen.push({ host: url.host, target, path: url.pathname + url.search, headers: req.headers });
    const behaviour = this.services.get(url.host);
    if (!behaviour?.upstream) {
      res.writeHead(502).end(`forward proxy: no route to ${url.host}\n`);
      return;
    }
    if (behaviour.fail === 'reset') {
      req.socket.destroy();
      return;
    }
    if (behaviour.fail === 'unavailable') {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('no healthy upstream');
      return;
    }
    const upstream = behaviour.upstream;
    const forward = () => {
      const out = http.request(
        { host: upstream.address, port: upstream.port, method: req.method, path: url.pathname + url.search, headers: req.headers },
        (upstreamRes) => {
          res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
          upstreamRes.pipe(res);
        },
      );
      out.on('error', () => res.headersSent ? res.destroy() : res.writeHead(502).end());
      req.pipe(out);
    };
    if (!behaviour.delayMs) return forward();
    const timer = setTimeout(forward, behaviour.delayMs);
    res.on('close', () => clearTimeout(timer));
  }
}

// ---------------------------------------------------------------------------------------------
// Workload processes.

interface App {
  readonly name: string;
  readonly child: ChildProcess;
  readonly upstream: Upstream;
  readonly base: string;
  output(): string;
  exited: Promise<number | null>;
}

const apps: App[] = [];

async function startApp(name: string, service: string, address: string, env: Record<string, string> = {}): Promise<App> {
  const child = spawn(process.execPath, [MAIN, service], {
    env: { ...process.env, BIND_ADDRESS: address, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const started = await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`${name} exited: ${out}`);
      const line = out.split('\n').find((l) => l.includes('"event":"started"'));
      return line ? (JSON.parse(line) as { address: string; port: number }) : undefined;
    },
    { timeoutMs: 10_000, message: () => `${name} to log its start line; output so far: ${out}` },
  );
  const app: App = {
    name,
    child,
    upstream: { address: started.address, port: started.port },
    base: `http://${started.address}:${started.port}`,
    output: () => out,
    exited,
  };
  apps.push(app);
  // Ready means serving: poll /health with a deadline, never a fixed sleep.
  await waitFor(async () => (await request(`${app.base}/health`)).statusCode === 200, { timeoutMs: 10_000, message: `${name} /health` });
  return app;
}

async function get(url: string, headers: Record<string, string> = {}) {
  const res = await request(url, { headers });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

// ---------------------------------------------------------------------------------------------

describe('Bookinfo applications through an HTTP_PROXY sidecar', () => {
  const proxy = new TestForwardProxy();
  const app: Record<string, App> = {};

  before(async () => {
    await proxy.start('127.0.20.100');
    const withProxy = { HTTP_PROXY: proxy.url };
    const started = await Promise.all([
      startApp('productpage', 'productpage', '127.0.20.1', { ...withProxy, WORKLOAD_NAME: 'productpage-v1' }),
      startApp('details', 'details', '127.0.20.2', withProxy),
      startApp('reviews-v1', 'reviews', '127.0.20.3', { ...withProxy, SERVICE_VERSION: 'v1', WORKLOAD_NAME: 'reviews-v1' }),
      startApp('reviews-v2', 'reviews', '127.0.20.4', { ...withProxy, SERVICE_VERSION: 'v2', WORKLOAD_NAME: 'reviews-v2' }),
      startApp('reviews-v3', 'reviews', '127.0.20.5', { ...withProxy, SERVICE_VERSION: 'v3', WORKLOAD_NAME: 'reviews-v3' }),
      startApp('ratings', 'ratings', '127.0.20.6', withProxy),
      startApp('httpbin', 'httpbin', '127.0.20.7', withProxy),
    ]);
    for (const a of started) app[a.name] = a;
  });

  after(async () => {
    for (const a of apps) if (a.child.exitCode === null) a.child.kill('SIGKILL');
    await Promise.all(apps.map((a) => a.exited));
    await proxy.stop();
  });

  beforeEach(() => {
    proxy.seen.length = 0;
    proxy.set('details:9080', { upstream: app.details!.upstream });
    proxy.set('reviews:9080', { upstream: app['reviews-v1']!.upstream });
    proxy.set('ratings:9080', { upstream: app.ratings!.upstream });
  });

  const routeReviewsTo = (version: 'v1' | 'v2' | 'v3') => proxy.update('reviews:9080', { upstream: app[`reviews-${version}`]!.upstream });
  const productPage = (headers: Record<string, string> = {}) => get(`${app.productpage!.base}/productpage`, headers);

  describe('productpage', () => {
    it('renders the book, its details and reviews, calling details and reviews by mesh name through HTTP_PROXY', async () => {
      const page = await productPage();
      assert.equal(page.status, 200);
      assert.match(page.headers['content-type'] as string, /text\/html/);
      assert.match(page.text, /The Comedy of Errors/);
      assert.match(page.text, /Book Details/);
      assert.match(page.text, /<dt>Type:<\/dt>paperback/);
      assert.match(page.text, /<dt>ISBN-13:<\/dt>123-1234567890/);
      assert.match(page.text, /Book Reviews/);
      assert.match(page.text, /An extremely entertaining play by Shakespeare/);
      assert.match(page.text, /Reviewer2/);
      for (const host of ['details:9080', 'reviews:9080']) {
        const seen = proxy.requestsTo(host);
        assert.equal(seen.length, 1, `one call to ${host}`);
        assert.equal(seen[0]!.target, `http://${host}${host === 'details:9080' ? '/details/0' : '/reviews/0'}`, 'absolute-form request to the mesh name');
        assert.equal(seen[0]!.headers.host, host);
      }
      assert.equal(proxy.requestsTo('ratings:9080').length, 0, 'reviews v1 never calls ratings');
    });

    it('shows no stars for reviews v1, black stars for v2 and red stars for v3, and who served the reviews', async () => {
      const v1 = await productPage();
      assert.equal(count(v1.text, 'glyphicon-star'), 0);
      assert.match(v1.text, /Reviews served by: reviews-v1-[b-z2-9]{9}-[b-z2-9]{5}/);

      routeReviewsTo('v2');
      const v2 = await productPage();
      assert.equal(count(v2.text, '<font color="black">'), 2);
      assert.equal(count(v2.text, '<span class="glyphicon glyphicon-star"></span>'), 5 + 4);
      assert.equal(count(v2.text, '<span class="glyphicon glyphicon-star-empty"></span>'), 1);
      assert.match(v2.text, /Reviews served by: reviews-v2-[b-z2-9]{9}-[b-z2-9]{5}/);

      routeReviewsTo('v3');
      const v3 = await productPage();
      assert.equal(count(v3.text, '<font color="red">'), 2);
      assert.equal(count(v3.text, '<font color="black">'), 0);
      assert.match(v3.text, /Reviews served by: reviews-v3-/);
      assert.equal(proxy.requestsTo('ratings:9080').length, 2, 'v2 and v3 each called ratings once');
    });

    it('shows Istio\'s error text when reviews is unavailable, after trying it twice', async () => {
      proxy.update('reviews:9080', { fail: 'unavailable' });
      const page = await productPage();
      assert.equal(page.status, 200);
      assert.match(page.text, /Error fetching product reviews!/);
      assert.ok(page.text.includes(REVIEWS_ERROR));
      assert.match(page.text, /Book Details/, 'details still shown');
      assert.equal(proxy.requestsTo('reviews:9080').length, 2);
    });

    it('shows Istio\'s error text when details is unavailable', async () => {
      proxy.update('details:9080', { fail: 'reset' });
      const page = await productPage();
      assert.ok(page.text.includes(DETAILS_ERROR));
      assert.match(page.text, /Book Reviews/, 'reviews still shown');
    });

    it('shows "Ratings service is currently unavailable" when ratings fails behind reviews v2', async () => {
      routeReviewsTo('v2');
      proxy.update('ratings:9080', { fail: 'reset' });
      const page = await productPage();
      assert.equal(count(page.text, RATINGS_ERROR), 2);
      assert.equal(count(page.text, 'glyphicon-star'), 0);
    });

    it('gives up on reviews after 3 s and one retry (about 6 s in all)', async () => {
      proxy.update('reviews:9080', { delayMs: 4500 });
      const started = Date.now();
      const page = await productPage();
      const elapsed = Date.now() - started;
      assert.ok(page.text.includes(REVIEWS_ERROR));
      assert.equal(proxy.requestsTo('reviews:9080').length, 2, 'two attempts');
      assert.ok(elapsed >= 5900 && elapsed < 8000, `took ${elapsed} ms`);
    });

    it('signs a user in with a cookie and sends the user on to reviews as end-user', async () => {
      const login = await request(`${app.productpage!.base}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'username=jason&passwd=',
      });
      await login.body.dump();
      assert.equal(login.statusCode, 302);
      assert.equal(login.headers.location, '/productpage');
      const setCookie = String(login.headers['set-cookie']);
      assert.match(setCookie, /^user=jason;/);
      const cookie = setCookie.split(';')[0]!;

      routeReviewsTo('v2');
      const page = await productPage({ cookie });
      assert.match(page.text, /Welcome jason/);
      assert.match(page.text, /Sign out/);
      assert.equal(proxy.requestsTo('reviews:9080')[0]!.headers['end-user'], 'jason');
      assert.equal(proxy.requestsTo('ratings:9080')[0]!.headers['end-user'], 'jason', 'reviews forwards end-user to ratings');

      const scripted = await request(`${app.productpage!.base}/login?user=tester`);
      await scripted.body.dump();
      assert.match(String(scripted.headers['set-cookie']), /^user=tester;/);

      const logout = await request(`${app.productpage!.base}/logout`, { headers: { cookie } });
      await logout.body.dump();
      assert.equal(logout.statusCode, 302);
      assert.match(String(logout.headers['set-cookie']), /^user=;.*Max-Age=0/);

      proxy.seen.length = 0;
      const anonymous = await productPage();
      assert.doesNotMatch(anonymous.text, /Welcome/);
      assert.equal(proxy.requestsTo('reviews:9080')[0]!.headers['end-user'], undefined);
    });

    it('propagates tracing headers to details, reviews and on to ratings', async () => {
      routeReviewsTo('v2');
      const trace = {
        'x-request-id': 'b5d1f0c2-6f63-4d53-9b58-3cba1f8a5a11',
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
        tracestate: 'weft=1',
        b3: '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1',
        'x-b3-traceid': '80f198ee56343ba864fe8b2a57d3eff7',
        'x-b3-spanid': 'e457b5a2e4d86bd1',
        'x-b3-parentspanid': '05e3ac9a4f6e3b90',
        'x-b3-sampled': '1',
        'x-ot-span-context': 'ot-context',
        'user-agent': 'bookinfo-test/1.0',
      };
      await productPage(trace);
      const calls = [...proxy.requestsTo('details:9080'), ...proxy.requestsTo('reviews:9080'), ...proxy.requestsTo('ratings:9080')];
      assert.equal(calls.length, 3);
      for (const call of calls) {
        for (const [name, value] of Object.entries(trace)) assert.equal(call.headers[name], value, `${name} on ${call.target}`);
      }
    });

    it('serves the product API as Istio\'s productpage', async () => {
      const products = await get(`${app.productpage!.base}/api/v1/products`);
      assert.equal(products.status, 200);
      const list = JSON.parse(products.text) as Array<{ id: number; title: string }>;
      assert.deepEqual(list.map((p) => [p.id, p.title]), [[0, 'The Comedy of Errors']]);

      const details = JSON.parse((await get(`${app.productpage!.base}/api/v1/products/0`)).text);
      assert.equal(details.author, 'William Shakespeare');

      routeReviewsTo('v3');
      const reviews = JSON.parse((await get(`${app.productpage!.base}/api/v1/products/0/reviews`)).text);
      assert.equal(reviews.reviews[0].rating.color, 'red');

      const ratings = await get(`${app.productpage!.base}/api/v1/products/0/ratings`);
      assert.deepEqual(JSON.parse(ratings.text), { id: 0, ratings: { Reviewer1: 5, Reviewer2: 4 } });

      proxy.update('ratings:9080', { fail: 'unavailable' });
      const down = await get(`${app.productpage!.base}/api/v1/products/0/ratings`);
      assert.equal(down.status, 503);
      assert.deepEqual(JSON.parse(down.text), { error: 'Sorry, product ratings are currently unavailable for this book.' });

      const index = await get(`${app.productpage!.base}/`);
      assert.match(index.text, /href="productpage\?u=normal"/);
      assert.equal((await get(`${app.productpage!.base}/health`)).text, 'Product page is healthy');
    });
  });

  describe('details, reviews and ratings', () => {
    it('details returns Istio\'s book record', async () => {
      const res = await get(`${app.details!.base}/details/0`);
      assert.equal(res.status, 200);
      assert.deepEqual(JSON.parse(res.text), {
        id: 0,
        author: 'William Shakespeare',
        year: 1595,
        type: 'paperback',
        pages: 200,
        publisher: 'PublisherA',
        language: 'English',
        'ISBN-10': '1234567890',
        'ISBN-13': '123-1234567890',
      });
      assert.equal((await get(`${app.details!.base}/details/x`)).status, 400);
    });

    it('reviews reports its pod and, from v2 on, ratings with the version\'s colour', async () => {
      const v1 = JSON.parse((await get(`${app['reviews-v1']!.base}/reviews/0`)).text);
      assert.equal(v1.id, '0');
      assert.match(v1.podname, /^reviews-v1-/);
      assert.equal(v1.clustername, 'null');
      assert.equal(v1.reviews.length, 2);
      assert.equal(v1.reviews[0].rating, undefined);

      const v2 = JSON.parse((await get(`${app['reviews-v2']!.base}/reviews/0`)).text);
      assert.deepEqual(v2.reviews.map((r: { rating: unknown }) => r.rating), [
        { stars: 5, color: 'black' },
        { stars: 4, color: 'black' },
      ]);
      assert.deepEqual(JSON.parse((await get(`${app['reviews-v2']!.base}/health`)).text), { status: 'Reviews is healthy' });
    });

    it('reviews v3 gives up on ratings after 2.5 s, as Istio\'s red-star reviews', async () => {
      proxy.update('ratings:9080', { delayMs: 4000 });
      const started = Date.now();
      const v3 = JSON.parse((await get(`${app['reviews-v3']!.base}/reviews/0`)).text);
      const elapsed = Date.now() - started;
      assert.deepEqual(v3.reviews[0].rating, { error: RATINGS_ERROR });
      assert.ok(elapsed >= 2400 && elapsed < 3900, `took ${elapsed} ms`);
    });

    it('ratings returns the stars per reviewer', async () => {
      assert.deepEqual(JSON.parse((await get(`${app.ratings!.base}/ratings/0`)).text), { id: 0, ratings: { Reviewer1: 5, Reviewer2: 4 } });
      assert.deepEqual(JSON.parse((await get(`${app.ratings!.base}/health`)).text), { status: 'Ratings is healthy' });
    });
  });

  describe('httpbin', () => {
    const bin = () => app.httpbin!.base;

    it('echoes /get, /headers, /ip, /uuid and /anything', async () => {
      const got = JSON.parse((await get(`${bin()}/get?a=1&b=2&b=3`, { 'x-b3-traceid': 'abc' })).text);
      assert.deepEqual(got.args, { a: '1', b: ['2', '3'] });
      assert.equal(got.headers['X-B3-Traceid'], 'abc');
      assert.equal(got.origin, '127.0.0.1');
      assert.equal(got.url, `${bin()}/get?a=1&b=2&b=3`);
      assert.deepEqual(Object.keys(got).sort(), ['args', 'headers', 'origin', 'url']);

      const headers = JSON.parse((await get(`${bin()}/headers`, { 'end-user': 'jason' })).text);
      assert.equal(headers.headers['End-User'], 'jason');
      assert.equal(JSON.parse((await get(`${bin()}/ip`)).text).origin, '127.0.0.1');
      assert.match(JSON.parse((await get(`${bin()}/uuid`)).text).uuid, /^[0-9a-f-]{36}$/);

      const res = await request(`${bin()}/anything/x?q=1`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"k":"v"}' });
      const anything = (await res.body.json()) as { method: string; json: unknown; args: unknown; data: string };
      assert.equal(anything.method, 'POST');
      assert.deepEqual(anything.json, { k: 'v' });
      assert.deepEqual(anything.args, { q: '1' });
    });

    it('answers /status/{code} with that status, or one of a list', async () => {
      assert.equal((await get(`${bin()}/status/418`)).status, 418);
      assert.equal((await get(`${bin()}/status/503`)).status, 503);
      for (let i = 0; i < 5; i++) assert.ok([200, 500].includes((await get(`${bin()}/status/200,500`)).status));
      assert.equal((await get(`${bin()}/status/abc`)).status, 400);
    });

    it('delays /delay/{s} by that many seconds', async () => {
      const started = Date.now();
      const res = await get(`${bin()}/delay/1`);
      const elapsed = Date.now() - started;
      assert.equal(res.status, 200);
      assert.ok(elapsed >= 950 && elapsed < 2500, `took ${elapsed} ms`);
      assert.equal(JSON.parse(res.text).url, `${bin()}/delay/1`);
    });
  });

  describe('process lifecycle', () => {
    it('finishes in-flight requests on SIGTERM, logs a stop line and exits 0', async () => {
      // Debug logging announces each request as it arrives, so the signal is sent only once the
      // /delay request is in the server's hands.
      const victim = await startApp('httpbin-sigterm', 'httpbin', '127.0.20.8', { WEFT_LOG_LEVEL: 'debug' });
      const inFlight = get(`${victim.base}/delay/1`);
      await waitFor(() => victim.output().includes('"path":"/delay/1"'), { message: 'httpbin to receive /delay/1' });
      victim.child.kill('SIGTERM');
      const res = await inFlight;
      assert.equal(res.status, 200, 'the in-flight request completed');
      assert.equal(await victim.exited, 0);
      const events = victim.output().trim().split('\n').map((l) => (JSON.parse(l) as { event: string }).event);
      assert.equal(events[0], 'started');
      assert.equal(events.at(-1), 'stopped');
      assert.equal(events.filter((e) => e === 'started' || e === 'stopped').length, 2, 'one line each');
    });

    it('says clearly when its address is taken', async () => {
      const taken = app.details!.upstream;
      const child = spawn(process.execPath, [MAIN, 'details'], {
        env: { ...process.env, BIND_ADDRESS: taken.address, PORT: String(taken.port) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exit = new Promise<number | null>((resolve) => child.once('exit', resolve));
      const deadline = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exit;
      clearTimeout(deadline);
      assert.equal(code, 1);
      assert.match(stderr, new RegExp(`cannot listen on ${taken.address}:${taken.port}: the address is already in use`));
    });
  });
});
