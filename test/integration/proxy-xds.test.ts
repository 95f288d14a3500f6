// The proxy as an xDS client of the real control plane: NACKs with every error while the last
// good config keeps serving, config changes under load with zero failed requests, the control
// plane killed and restarted while traffic flows, draining, and the admin/stats/health servers.
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type { ConfigResource } from '../../src/config/resources';
import { silentLogger } from '../../src/log/logger';
import { AdsServer } from '../../src/xds/server/ads-server';
import { parseProxyNode, translateForProxy } from '../../src/xds/translate';
import { destinationRule, SnapshotSequence, virtualService } from '../support/mesh-resources';
import { serviceWithBackends, startBackend, startMesh, startTestProxy, waitFor, type Backend, type Mesh, type TestProxy } from './proxy-harness';

/** Bounded load: `concurrency` workers send requests until `stop()` or `max` requests. */
function runLoad(send: () => Promise<{ status: number; backend?: string }>, concurrency = 6, max = 20_000) {
  let stopped = false;
  let sent = 0;
  const statuses: number[] = [];
  const backends: string[] = [];
  const errors: string[] = [];
  const done = Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (!stopped && sent < max) {
        sent++;
        try {
          const r = await send();
          statuses.push(r.status);
          if (r.backend) backends.push(r.backend);
        } catch (err) {
          errors.push((err as Error).message);
        }
      }
    }),
  );
  return {
    statuses,
    backends,
    errors,
    get sent() {
      return sent;
    },
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}

describe('proxy xDS lifecycle', () => {
  let mesh: Mesh;
  let proxy: TestProxy;
  let v1: Backend;
  let v2: Backend;
  let base: ConfigResource[];

  const weights = (w1: number, w2: number) =>
    virtualService('app', {
      hosts: ['app'],
      http: [{ route: [{ destination: { host: 'app', subset: 'v1' }, weight: w1 }, { destination: { host: 'app', subset: 'v2' }, weight: w2 }] }],
    });

  before(async () => {
    v1 = await startBackend('app-v1');
    v2 = await startBackend('app-v2');
    base = [
      ...serviceWithBackends('app', 8080, [{ backend: v1, labels: { version: 'v1' } }, { backend: v2, labels: { version: 'v2' } }]),
      destinationRule('app', { host: 'app', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] }),
    ];
    mesh = await startMesh([...base, weights(100, 0)]);
    proxy = await startTestProxy(mesh, { name: 'client', address: '127.0.0.1' });
  });

  after(async () => {
    await proxy?.close();
    await mesh?.close();
    await v1?.close();
    await v2?.close();
  });

  const send = async () => {
    const r = await proxy.request('app:8080', '/');
    return { status: r.status, backend: r.status === 200 ? r.json().backend : undefined };
  };

  it('applies config changes under load with zero failed requests', async () => {
    const load = runLoad(send);
    try {
      for (const [a, b] of [[0, 100], [100, 0], [50, 50], [0, 100], [100, 0]]) {
        mesh.publish([...base, weights(a, b)]);
        await mesh.converged();
        const from = load.backends.length;
        await waitFor(() => load.backends.length > from + 50, { timeoutMs: 10_000 });
      }
    } finally {
      await load.stop();
    }
    assert.deepEqual(load.errors, []);
    assert.ok(load.statuses.length > 250, `${load.statuses.length} requests`);
    assert.deepEqual([...new Set(load.statuses)], [200], 'every request succeeded');
    assert.ok(load.backends.includes('app-v1') && load.backends.includes('app-v2'));
  });

  it('NACKs an unsupported resource with every error, and the last good version keeps serving', async () => {
    const cdsVersion = proxy.proxy.xdsStatus().CDS.version;
    // A CA file that does not exist: the clusters using it must be refused (Envoy does the same).
    const withoutRule = base.filter((r) => r.kind !== 'DestinationRule');
    mesh.publish([
      ...withoutRule,
      weights(100, 0),
      destinationRule('app', {
        host: 'app',
        trafficPolicy: { tls: { mode: 'SIMPLE', caCertificates: '/nonexistent/weft-test-ca.pem' } },
        subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }],
      }),
    ]);
    await mesh.converged();
    const status = proxy.proxy.xdsStatus();
    assert.equal(status.CDS.version, cdsVersion, 'the rejected version was not adopted');
    assert.match(
      String(status.CDS.lastError),
      /Cluster "outbound\|8080\|\|app\.default\.svc\.cluster\.local": transport_socket\.typed_config\.common_tls_context\.validation_context\.trusted_ca\.filename: cannot read "\/nonexistent\/weft-test-ca\.pem"/,
    );
    assert.match(String(status.CDS.lastError), /Cluster "outbound\|8080\|v1\|app\.default\.svc\.cluster\.local"/, 'every refused cluster is listed');
    const sync = mesh.ads.server.syncStatus().find((s) => s.id.includes('client'))!;
    const cds = sync.types.find((t) => t.type === 'CDS')!;
    assert.equal(cds.state, 'NACK');
    assert.match(JSON.stringify(cds.lastNack), /weft-test-ca\.pem/);
    for (let i = 0; i < 10; i++) assert.equal((await proxy.request('app:8080', '/')).status, 200);
    // Back to a config the proxy supports: ACKed again.
    mesh.publish([...base, weights(100, 0)]);
    await mesh.converged();
    assert.equal(proxy.proxy.xdsStatus().CDS.lastError, undefined);
  });

  it('keeps serving when the control plane dies, reconnects and resyncs when it returns', async () => {
    const port = mesh.ads.port;
    const load = runLoad(send, 4);
    let replacement: AdsServer | undefined;
    try {
      await mesh.ads.close();
      const metrics = async () => (await fetch(`http://${proxy.proxy.adminAddress}:${proxy.proxy.ports.admin}/stats`)).text();
      await waitFor(async () => /control_plane\.connected_state: 0/.test(await metrics()), { timeoutMs: 10_000 });
      const from = load.statuses.length;
      await waitFor(() => load.statuses.length > from + 100, { timeoutMs: 10_000, message: 'traffic while the control plane is down' });
      // A new control plane on the same address, with a different config.
      replacement = new AdsServer({ generate: translateForProxy, parseNode: parseProxyNode, logger: silentLogger, metrics: new Registry(), debounceAfterMs: 10 });
      const seq = new SnapshotSequence();
      for (let i = 0; i < 20; i++) seq.next([]); // versions move on past the old ones
      replacement.publish(seq.next([...base, weights(0, 100)]));
      await replacement.listen(`127.0.0.1:${port}`);
      await waitFor(async () => /control_plane\.connected_state: 1/.test(await metrics()), { timeoutMs: 15_000, message: 'reconnected' });
      const marker = load.backends.length;
      await waitFor(() => load.backends.slice(marker).includes('app-v2'), { timeoutMs: 10_000, message: 'new config applied' });
    } finally {
      await load.stop();
      await replacement?.close(200);
    }
    assert.equal(proxy.proxy.state(), 'LIVE');
    assert.deepEqual(load.errors, []);
    assert.deepEqual([...new Set(load.statuses)], [200], 'no request failed while the control plane was away');
  });
});

describe('proxy admin, health and draining', () => {
  let mesh: Mesh;
  let proxy: TestProxy;
  let slowBackend: Backend;

  before(async () => {
    slowBackend = await startBackend('slow');
    slowBackend.handle((req, res) => {
      const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 0);
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`done after ${ms}`);
      }, ms);
    });
    mesh = await startMesh(serviceWithBackends('slow', 8080, [{ backend: slowBackend }]));
    proxy = await startTestProxy(mesh, { name: 'client', address: '127.0.0.1' });
  });

  after(async () => {
    await proxy?.close();
    await mesh?.close();
    await slowBackend?.close();
  });

  it('serves /config_dump, /clusters, /stats, /ready on the loopback admin port', async () => {
    const admin = `http://${proxy.proxy.adminAddress}:${proxy.proxy.ports.admin}`;
    const dump = (await (await fetch(`${admin}/config_dump`)).json()) as { configs: Record<string, unknown>[] };
    const listeners = dump.configs.find((c) => String(c['@type']).endsWith('ListenersConfigDump')) as { version_info: string; dynamic_listeners: { name: string; active_state: { version_info: string } }[] };
    assert.ok(listeners.dynamic_listeners.some((l) => l.name === 'virtualOutbound' && l.active_state.version_info === listeners.version_info));
    const clusters = dump.configs.find((c) => String(c['@type']).endsWith('ClustersConfigDump')) as { dynamic_active_clusters: { cluster: { name: string } }[] };
    assert.ok(clusters.dynamic_active_clusters.some((c) => c.cluster.name === 'outbound|8080||slow.default.svc.cluster.local'));
    assert.equal((await fetch(`${admin}/ready`)).status, 200);
    assert.match(await (await fetch(`${admin}/clusters`)).text(), new RegExp(`slow\\.default\\.svc\\.cluster\\.local::127\\.0\\.0\\.1:${slowBackend.port}::health_flags::healthy`));
    await proxy.request('slow:8080', '/');
    assert.match(await (await fetch(`${admin}/stats`)).text(), /cluster\.outbound\|8080\|\|slow\.default\.svc\.cluster\.local\.upstream_rq_2xx: [1-9]/);
    const prom = await (await fetch(`http://127.0.0.1:${proxy.proxy.ports.stats}/stats/prometheus`)).text();
    assert.match(prom, /envoy_cluster_upstream_rq_total\{envoy_cluster_name="outbound\|8080\|\|slow\.default\.svc\.cluster\.local"\} [1-9]/);
    assert.equal((await fetch(`http://127.0.0.1:${proxy.proxy.ports.health}/healthz/ready`)).status, 200);
  });

  it('finishes in-flight requests across cluster and route updates', async () => {
    const inflight = proxy.request('slow:8080', '/?ms=500');
    await waitFor(() => slowBackend.received.some((r) => r.path === '/?ms=500'));
    // New connection-pool settings make a new cluster generation (new pools); a new route too.
    mesh.publish([
      ...serviceWithBackends('slow', 8080, [{ backend: slowBackend }]),
      destinationRule('slow', { host: 'slow', trafficPolicy: { connectionPool: { tcp: { maxConnections: 50, connectTimeout: '2s' } } } }),
      virtualService('slow', { hosts: ['slow'], http: [{ route: [{ destination: { host: 'slow' } }], timeout: '10s', headers: { response: { set: { 'x-generation': '2' } } } }] }),
    ]);
    await mesh.converged();
    const r = await inflight;
    assert.equal(r.status, 200);
    assert.equal(r.body, 'done after 500');
    const next = await proxy.request('slow:8080', '/?ms=0');
    assert.equal(next.headers['x-generation'], '2');
  });

  it('drains on close: in-flight requests finish, new connections are refused', async () => {
    const inflight = proxy.request('slow:8080', '/?ms=400');
    await waitFor(() => slowBackend.received.some((r) => r.path === '/?ms=400'));
    const closing = proxy.proxy.close(3000);
    const r = await inflight;
    assert.equal(r.status, 200);
    assert.equal(r.body, 'done after 400');
    await closing;
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = net.connect(proxy.outboundPort, '127.0.0.1', () => resolve(s));
        s.on('error', reject);
      }),
      /ECONNREFUSED/,
    );
    await proxy.proxy.closed;
  });
});
