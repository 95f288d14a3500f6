// The Weft proxy routing real traffic with config from the real control plane: Host and
// absolute-URI (HTTP_PROXY) requests, weighted splits, header/method/query/uri matches,
// x-request-id, header edits, rewrites, redirects, direct responses and CORS.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'undici';
import { destinationRule, virtualService } from '../support/mesh-resources';
import {
  countBy,
  serviceWithBackends,
  startBackend,
  startMesh,
  startTestProxy,
  type Backend,
  type Mesh,
  type TestProxy,
} from './proxy-harness';

describe('proxy routing', () => {
  let v1: Backend;
  let v2: Backend;
  let other: Backend;
  let mesh: Mesh;
  let proxy: TestProxy;

  const subsets = destinationRule('reviews', {
    host: 'reviews',
    subsets: [
      { name: 'v1', labels: { version: 'v1' } },
      { name: 'v2', labels: { version: 'v2' } },
    ],
  });

  before(async () => {
    v1 = await startBackend('reviews-v1');
    v2 = await startBackend('reviews-v2');
    other = await startBackend('details-v1');
    mesh = await startMesh([
      ...serviceWithBackends('reviews', 9080, [
        { backend: v1, labels: { version: 'v1' } },
        { backend: v2, labels: { version: 'v2' } },
      ]),
      ...serviceWithBackends('details', 9080, [{ backend: other }]),
      subsets,
      virtualService('reviews', {
        hosts: ['reviews'],
        http: [
          { match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] },
          { match: [{ method: { exact: 'DELETE' } }], directResponse: { status: 405, body: { string: 'read only' } } },
          { match: [{ uri: { exact: '/old' } }], redirect: { uri: '/new', redirectCode: 301 } },
          { match: [{ uri: { regex: '/api/v[0-9]+/.*' } }], rewrite: { uri: '/internal/' }, route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
          { match: [{ uri: { prefix: '/legacy/' } }], rewrite: { uri: '/modern/', authority: 'details' }, route: [{ destination: { host: 'details' } }] },
          { match: [{ queryParams: { preview: { exact: 'true' } } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] },
          {
            match: [{ uri: { prefix: '/edit' } }],
            headers: { request: { set: { 'x-set': 'yes' }, add: { 'x-added': 'one' }, remove: ['x-secret'] }, response: { set: { 'x-reply': 'edited' }, remove: ['x-backend'] } },
            route: [{ destination: { host: 'reviews', subset: 'v1' } }],
          },
          {
            match: [{ uri: { prefix: '/cors' } }],
            corsPolicy: { allowOrigins: [{ exact: 'https://app.example' }], allowMethods: ['GET', 'POST'], allowHeaders: ['x-token'], maxAge: '1h', allowCredentials: true },
            route: [{ destination: { host: 'reviews', subset: 'v1' } }],
          },
          { route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 80 }, { destination: { host: 'reviews', subset: 'v2' }, weight: 20 }] },
        ],
      }),
    ]);
    proxy = await startTestProxy(mesh, { name: 'productpage', address: '127.0.0.1' });
  });

  after(async () => {
    await proxy?.close();
    await mesh?.close();
    await Promise.all([v1?.close(), v2?.close(), other?.close()]);
  });

  it('splits traffic by weight (80/20 within tolerance over 1000 requests)', async () => {
    const backends: string[] = [];
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        for (let i = 0; i < 100; i++) {
          const r = await proxy.request('reviews:9080', '/split');
          assert.equal(r.status, 200);
          backends.push(r.json().backend);
        }
      }),
    );
    const counts = countBy(backends, (b) => b);
    const share = (counts['reviews-v1'] ?? 0) / backends.length;
    assert.ok(share > 0.74 && share < 0.86, `v1 share ${share} (${JSON.stringify(counts)})`);
  });

  it('routes on a header match before the weighted default', async () => {
    for (let i = 0; i < 20; i++) {
      const r = await proxy.request('reviews:9080', '/', { headers: { 'end-user': 'jason' } });
      assert.equal(r.json().backend, 'reviews-v2');
    }
  });

  it('routes on query parameters', async () => {
    for (let i = 0; i < 10; i++) assert.equal((await proxy.request('reviews:9080', '/?preview=true')).json().backend, 'reviews-v2');
  });

  it('accepts absolute-form requests, as HTTP_PROXY clients send them', async () => {
    const r = await proxy.client.request({ method: 'GET', path: 'http://reviews:9080/abs?x=1', headers: { 'end-user': 'jason' } });
    const body = (await r.body.json()) as { backend: string; path: string; headers: Record<string, string> };
    assert.equal(r.statusCode, 200);
    assert.equal(body.backend, 'reviews-v2');
    assert.equal(body.path, '/abs?x=1');
    assert.equal(body.headers.host, 'reviews:9080');
  });

  it('works for clients configured with HTTP_PROXY (undici ProxyAgent, plain forwarding)', async () => {
    const { ProxyAgent, request } = await import('undici');
    const agent = new ProxyAgent({ uri: `http://127.0.0.1:${proxy.outboundPort}`, proxyTunnel: false } as never);
    try {
      const r = await request('http://details:9080/via-agent', { dispatcher: agent });
      const body = (await r.body.json()) as { backend: string };
      assert.equal(r.statusCode, 200);
      assert.equal(body.backend, 'details-v1');
    } finally {
      await agent.close();
    }
  });

  it('generates x-request-id and keeps one the client sent', async () => {
    const generated = (await proxy.request('reviews:9080', '/id')).json();
    assert.match(String(generated.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    const kept = (await proxy.request('reviews:9080', '/id', { headers: { 'x-request-id': 'abc-123' } })).json();
    assert.equal(kept.headers['x-request-id'], 'abc-123');
  });

  it('edits request and response headers', async () => {
    const r = await proxy.request('reviews:9080', '/edit', { headers: { 'x-secret': 's3cr3t', 'x-added': 'zero' } });
    const echo = r.json();
    assert.equal(echo.headers['x-set'], 'yes');
    assert.equal(echo.headers['x-secret'], undefined);
    assert.match(String(echo.headers['x-added']), /zero.*one/);
    assert.equal(r.headers['x-reply'], 'edited');
    assert.equal(r.headers['x-backend'], undefined);
  });

  it('rewrites the path and the authority', async () => {
    const a = (await proxy.request('reviews:9080', '/api/v2/items?q=1')).json();
    assert.equal(a.backend, 'reviews-v1');
    assert.equal(a.path, '/internal/?q=1');
    const b = (await proxy.request('reviews:9080', '/legacy/page')).json();
    assert.equal(b.backend, 'details-v1');
    assert.equal(b.path, '/modern/page');
    assert.equal(b.headers.host, 'details');
  });

  it('redirects and answers directly', async () => {
    const r = await proxy.request('reviews:9080', '/old?keep=1');
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, 'http://reviews:9080/new?keep=1');
    const d = await proxy.request('reviews:9080', '/anything', { method: 'DELETE' });
    assert.equal(d.status, 405);
    assert.equal(d.body, 'read only');
  });

  it('answers CORS preflights and decorates allowed cross-origin responses', async () => {
    const pre = await proxy.request('reviews:9080', '/cors', {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
    });
    assert.equal(pre.status, 200);
    assert.equal(pre.headers['access-control-allow-origin'], 'https://app.example');
    assert.equal(pre.headers['access-control-allow-methods'], 'GET,POST');
    assert.equal(pre.headers['access-control-allow-credentials'], 'true');
    assert.equal(pre.headers['access-control-max-age'], '3600');
    const countBefore = v1.received.length;
    const actual = await proxy.request('reviews:9080', '/cors', { headers: { origin: 'https://app.example' } });
    assert.equal(actual.headers['access-control-allow-origin'], 'https://app.example');
    const denied = await proxy.request('reviews:9080', '/cors', { headers: { origin: 'https://evil.example' } });
    assert.equal(denied.status, 200);
    assert.equal(denied.headers['access-control-allow-origin'], undefined);
    assert.equal(v1.received.length, countBefore + 2, 'the preflight was answered by the proxy');
  });

  it('answers 404 with flag NR when no route matches', async () => {
    mesh.publish([
      ...serviceWithBackends('reviews', 9080, [{ backend: v1, labels: { version: 'v1' } }, { backend: v2, labels: { version: 'v2' } }]),
      ...serviceWithBackends('details', 9080, [{ backend: other }]),
      subsets,
      virtualService('details', { hosts: ['details'], http: [{ match: [{ uri: { prefix: '/only' } }], route: [{ destination: { host: 'details' } }] }] }),
    ]);
    await mesh.converged();
    const r = await proxy.request('details:9080', '/elsewhere');
    assert.equal(r.status, 404);
    assert.deepEqual(proxy.records.at(-1)?.flags, ['NR']);
    assert.equal((await proxy.request('details:9080', '/only/this')).status, 200);
  });

  it('keeps connections alive to the upstream across requests', async () => {
    const pool = new Pool(`http://127.0.0.1:${proxy.outboundPort}`, { connections: 1 });
    try {
      const before = new Set(v1.received.map((e) => e.headers['x-request-id']));
      for (let i = 0; i < 20; i++) {
        const r = await pool.request({ method: 'GET', path: '/keepalive', headers: { host: 'reviews:9080', 'end-user': 'nobody' } });
        await r.body.dump();
      }
      void before;
      const res = await fetch(`http://${proxy.proxy.adminAddress}:${proxy.proxy.ports.admin}/clusters`);
      const text = await res.text();
      const cx = text
        .split('\n')
        .filter((l) => l.startsWith('outbound|9080||reviews.default.svc.cluster.local::') && l.includes('::cx_active::'))
        .map((l) => Number(l.split('::').at(-1)));
      assert.ok(cx.reduce((a, b) => a + b, 0) <= 4, `upstream connections: ${cx}`);
    } finally {
      await pool.close();
    }
  });
});
