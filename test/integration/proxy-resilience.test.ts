// Failure handling through the Weft proxy with the real control plane: retries masking a failing
// endpoint, route and per-try timeouts, fault injection percentages, the circuit breaker, outlier
// ejection, and Envoy's error replies and response flags (UH, UF, UO, UT, URX, FI, DI).
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import * as net from 'node:net';
import type { ConfigResource } from '../../src/config/resources';
import { destinationRule, kubeService, virtualService, workloadEntry } from '../support/mesh-resources';
import { countBy, serviceWithBackends, startBackend, startMesh, startTestProxy, type Backend, type Mesh, type TestProxy } from './proxy-harness';

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function slow(backend: Backend, ms: number): void {
  backend.handle((_req, res) => {
    const t = setTimeout(() => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`slow ${backend.name}`);
    }, ms);
    res.on('close', () => clearTimeout(t));
  });
}

function failing(backend: Backend, status = 503): void {
  backend.handle((_req, res) => {
    res.writeHead(status, { 'content-type': 'text/plain' });
    res.end(`failing ${backend.name}`);
  });
}

describe('proxy resilience', () => {
  let mesh: Mesh;
  let proxy: TestProxy;
  const backends: Backend[] = [];
  const base: ConfigResource[] = [];

  async function backend(name: string): Promise<Backend> {
    const b = await startBackend(name);
    backends.push(b);
    return b;
  }

  /** Publishes `resources` (plus nothing else) and waits until the proxy took it. */
  async function configure(resources: ConfigResource[]): Promise<void> {
    mesh.publish([...base, ...resources]);
    await mesh.converged();
  }

  before(async () => {
    mesh = await startMesh([]);
    proxy = await startTestProxy(mesh, { name: 'client', address: '127.0.0.1' });
  });

  afterEach(() => {
    for (const b of backends) b.handle(undefined as never);
  });

  after(async () => {
    await proxy?.close();
    await mesh?.close();
    await Promise.all(backends.map((b) => b.close()));
  });

  it('retries mask a failing endpoint (3 endpoints, one answering 503)', async () => {
    const good1 = await backend('r1');
    const good2 = await backend('r2');
    const bad = await backend('r3');
    failing(bad);
    await configure([
      ...serviceWithBackends('retry', 8080, [{ backend: good1 }, { backend: good2 }, { backend: bad }]),
      destinationRule('retry', { host: 'retry', trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN' } } }),
      virtualService('retry', { hosts: ['retry'], http: [{ route: [{ destination: { host: 'retry' } }], retries: { attempts: 3, retryOn: '5xx' } }] }),
    ]);
    const statuses: number[] = [];
    await Promise.all(
      Array.from({ length: 3 }, async () => {
        for (let i = 0; i < 40; i++) statuses.push((await proxy.request('retry:8080', '/')).status);
      }),
    );
    assert.deepEqual(countBy(statuses, String), { '200': 120 });
    assert.ok(bad.received.length > 0, 'the failing endpoint was tried');
    assert.ok(proxy.records.some((r) => r.upstreamCluster?.includes('retry') && r.attempts > 1), 'some requests needed a retry');
  });

  it('without retries the failure reaches the client, and exhausted retries are flagged URX', async () => {
    const bad = await backend('only-bad');
    failing(bad);
    await configure([
      ...serviceWithBackends('noretry', 8080, [{ backend: bad }]),
      virtualService('noretry', { hosts: ['noretry'], http: [{ route: [{ destination: { host: 'noretry' } }], retries: { attempts: 2, retryOn: '5xx' } }] }),
    ]);
    const r = await proxy.request('noretry:8080', '/');
    assert.equal(r.status, 503);
    assert.equal(r.body, 'failing only-bad');
    assert.deepEqual(proxy.records.at(-1)?.flags, ['URX']);
    assert.equal(proxy.records.at(-1)?.attempts, 3);
  });

  it('a route timeout answers 504 "upstream request timeout" (UT)', async () => {
    const b = await backend('sleepy');
    slow(b, 2000);
    await configure([
      ...serviceWithBackends('sleepy', 8080, [{ backend: b }]),
      virtualService('sleepy', { hosts: ['sleepy'], http: [{ route: [{ destination: { host: 'sleepy' } }], timeout: '0.2s' }] }),
    ]);
    const start = Date.now();
    const r = await proxy.request('sleepy:8080', '/');
    const took = Date.now() - start;
    assert.equal(r.status, 504);
    assert.equal(r.body, 'upstream request timeout');
    assert.ok(took >= 190 && took < 1500, `took ${took}ms`);
    assert.deepEqual(proxy.records.at(-1)?.flags, ['UT']);
  });

  it('a per-try timeout moves the request to another endpoint', async () => {
    const slowOne = await backend('pt-slow');
    const fastOne = await backend('pt-fast');
    slow(slowOne, 5000);
    await configure([
      ...serviceWithBackends('pertry', 8080, [{ backend: slowOne }, { backend: fastOne }]),
      destinationRule('pertry', { host: 'pertry', trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN' } } }),
      virtualService('pertry', { hosts: ['pertry'], http: [{ route: [{ destination: { host: 'pertry' } }], retries: { attempts: 2, perTryTimeout: '0.3s', retryOn: '5xx' } }] }),
    ]);
    for (let i = 0; i < 6; i++) {
      const start = Date.now();
      const r = await proxy.request('pertry:8080', '/');
      assert.equal(r.status, 200);
      assert.equal(r.json().backend, 'pt-fast');
      assert.ok(Date.now() - start < 4000);
    }
    assert.ok(slowOne.received.length > 0, 'the slow endpoint was tried first for some requests');
  });

  it('fault abort hits its percentage of requests (FI)', async () => {
    const b = await backend('faulty');
    await configure([
      ...serviceWithBackends('faulty', 8080, [{ backend: b }]),
      virtualService('faulty', { hosts: ['faulty'], http: [{ route: [{ destination: { host: 'faulty' } }], fault: { abort: { httpStatus: 418, percentage: { value: 30 } } } }] }),
    ]);
    const from = proxy.records.length;
    const statuses: number[] = [];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = 0; i < 50; i++) {
          const r = await proxy.request('faulty:8080', '/');
          statuses.push(r.status);
          if (r.status === 418) assert.equal(r.body, 'fault filter abort');
        }
      }),
    );
    const share = statuses.filter((s) => s === 418).length / statuses.length;
    assert.ok(share > 0.22 && share < 0.38, `aborted share ${share}`);
    const flagged = proxy.records.slice(from).filter((r) => r.flags.includes('FI')).length;
    assert.equal(flagged, statuses.filter((s) => s === 418).length);
  });

  it('fault delay holds its percentage of requests (DI)', async () => {
    const b = await backend('delayed');
    await configure([
      ...serviceWithBackends('delayed', 8080, [{ backend: b }]),
      virtualService('delayed', { hosts: ['delayed'], http: [{ route: [{ destination: { host: 'delayed' } }], fault: { delay: { fixedDelay: '0.15s', percentage: { value: 50 } } } }] }),
    ]);
    const from = proxy.records.length;
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        for (let i = 0; i < 10; i++) assert.equal((await proxy.request('delayed:8080', '/')).status, 200);
      }),
    );
    const records = proxy.records.slice(from).filter((r) => r.upstreamCluster?.includes('delayed'));
    assert.equal(records.length, 200);
    const delayed = records.filter((r) => r.flags.includes('DI'));
    const share = delayed.length / records.length;
    assert.ok(share > 0.38 && share < 0.62, `delayed share ${share}`);
    // Every delayed request really waited (timing is only checked from below: load can only add).
    for (const r of delayed) assert.ok(r.durationMs >= 145, `DI request took ${r.durationMs}ms`);
  });

  it('the circuit breaker overflows with 503 UO (maxConnections 1, http1MaxPendingRequests 1)', async () => {
    const b = await backend('breaker');
    slow(b, 150);
    await configure([
      ...serviceWithBackends('breaker', 8080, [{ backend: b }]),
      destinationRule('breaker', {
        host: 'breaker',
        trafficPolicy: { connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1, maxRequestsPerConnection: 1 } } },
      }),
      virtualService('breaker', { hosts: ['breaker'], http: [{ route: [{ destination: { host: 'breaker' } }], retries: { attempts: 0 } }] }),
    ]);
    const from = proxy.records.length;
    const results = await Promise.all(Array.from({ length: 10 }, () => proxy.request('breaker:8080', '/')));
    const statuses = countBy(results, (r) => String(r.status));
    assert.ok((statuses['200'] ?? 0) >= 1 && (statuses['503'] ?? 0) >= 1, JSON.stringify(statuses));
    const overflow = results.find((r) => r.status === 503)!;
    assert.equal(overflow.body, 'upstream connect error or disconnect/reset before headers. reset reason: overflow');
    assert.ok(proxy.records.slice(from).some((r) => r.flags.includes('UO')));
    const stats = await (await fetch(`http://${proxy.proxy.adminAddress}:${proxy.proxy.ports.admin}/stats?filter=breaker`)).text();
    assert.match(stats, /upstream_rq_pending_overflow: [1-9]/);
  });

  it('no endpoints: 503 "no healthy upstream" (UH)', async () => {
    await configure([kubeService('empty', [{ name: 'http', port: 8080 }], { app: 'nobody' })]);
    const r = await proxy.request('empty:8080', '/');
    assert.equal(r.status, 503);
    assert.equal(r.body, 'no healthy upstream');
    assert.deepEqual(proxy.records.at(-1)?.flags, ['UH']);
  });

  it('a refused connection: 503 with flag UF (and URX once retries are spent)', async () => {
    const port = await closedPort();
    await configure([
      kubeService('refused', [{ name: 'http', port: 8080 }], { app: 'refused' }),
      workloadEntry('refused-1', { address: '127.0.0.1', labels: { app: 'refused' }, ports: { http: port } }),
    ]);
    const r = await proxy.request('refused:8080', '/');
    assert.equal(r.status, 503);
    assert.equal(r.body, 'upstream connect error or disconnect/reset before headers. reset reason: connection failure');
    const flags = proxy.records.at(-1)?.flags ?? [];
    assert.ok(flags.includes('UF'), JSON.stringify(flags));
    assert.ok(flags.includes('URX'), 'Istio default retries (connect-failure) were used up');
  });

  it('outlier detection ejects an endpoint answering 5xx', async () => {
    const good = await backend('od-good');
    const bad = await backend('od-bad');
    failing(bad, 500);
    await configure([
      ...serviceWithBackends('outlier', 8080, [{ backend: good }, { backend: bad }]),
      destinationRule('outlier', {
        host: 'outlier',
        trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN' }, outlierDetection: { consecutive5xxErrors: 2, interval: '1s', baseEjectionTime: '30s', maxEjectionPercent: 50 } },
      }),
      virtualService('outlier', { hosts: ['outlier'], http: [{ route: [{ destination: { host: 'outlier' } }], retries: { attempts: 0 } }] }),
    ]);
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await proxy.request('outlier:8080', '/')).status);
    assert.equal(statuses.filter((s) => s === 500).length, 2, `exactly two failures before ejection: ${statuses.join(',')}`);
    const clusters = await (await fetch(`http://${proxy.proxy.adminAddress}:${proxy.proxy.ports.admin}/clusters`)).text();
    assert.match(clusters, new RegExp(`outbound\\|8080\\|\\|outlier\\.default\\.svc\\.cluster\\.local::127\\.0\\.0\\.1:${bad.port}::health_flags::/failed_outlier_check`));
  });
});
