// Mirroring (fire-and-forget copies, responses discarded) and consistent-hash stickiness
// (header, cookie, source IP) through the Weft proxy with the real control plane.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ConfigResource } from '../../src/config/resources';
import { destinationRule, virtualService } from '../support/mesh-resources';
import { serviceWithBackends, startBackend, startMesh, startTestProxy, waitFor, type Backend, type Mesh, type TestProxy } from './proxy-harness';

describe('proxy mirroring and consistent hashing', () => {
  let mesh: Mesh;
  let proxy: TestProxy;
  let v1: Backend;
  let v2: Backend;
  const sticky: Backend[] = [];
  let service: ConfigResource[];

  before(async () => {
    v1 = await startBackend('app-v1');
    v2 = await startBackend('app-v2');
    for (let i = 0; i < 3; i++) sticky.push(await startBackend(`sticky-${i}`));
    service = [
      ...serviceWithBackends('app', 8080, [{ backend: v1, labels: { version: 'v1' } }, { backend: v2, labels: { version: 'v2' } }]),
      destinationRule('app', { host: 'app', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] }),
      ...serviceWithBackends('sticky', 8080, sticky.map((backend) => ({ backend }))),
    ];
    mesh = await startMesh(service);
    proxy = await startTestProxy(mesh, { name: 'client', address: '127.0.0.1' });
  });

  after(async () => {
    await proxy?.close();
    await mesh?.close();
    await Promise.all([v1, v2, ...sticky].map((b) => b?.close()));
  });

  async function configure(extra: ConfigResource[]): Promise<void> {
    mesh.publish([...service, ...extra]);
    await mesh.converged();
  }

  it('mirrors requests to the mirror destination and discards its responses', async () => {
    await configure([
      virtualService('app', {
        hosts: ['app'],
        http: [{ route: [{ destination: { host: 'app', subset: 'v1' } }], mirror: { host: 'app', subset: 'v2' }, mirrorPercentage: { value: 100 } }],
      }),
    ]);
    v2.handle((_req, res) => {
      res.writeHead(500);
      res.end('the mirror answer must never reach the client');
    });
    const before = v2.received.length;
    for (let i = 0; i < 20; i++) {
      const r = await proxy.request('app:8080', `/m/${i}`, { method: 'POST', body: `body-${i}` });
      assert.equal(r.status, 200);
      assert.equal(r.json().backend, 'app-v1');
    }
    await waitFor(() => v2.received.length - before >= 20, { message: () => `mirror got ${v2.received.length - before} of 20` });
    const copies = v2.received.slice(before);
    assert.equal(copies[0].headers.host, 'app-shadow:8080');
    assert.deepEqual(
      copies.map((c) => c.body).sort(),
      Array.from({ length: 20 }, (_, i) => `body-${i}`).sort(),
    );
    v2.handle(undefined as never);
  });

  it('mirrors the configured percentage of requests', async () => {
    await configure([
      virtualService('app', {
        hosts: ['app'],
        http: [{ route: [{ destination: { host: 'app', subset: 'v1' } }], mirror: { host: 'app', subset: 'v2' }, mirrorPercentage: { value: 25 } }],
      }),
    ]);
    const before = v2.received.length;
    for (let i = 0; i < 400; i++) await proxy.request('app:8080', '/pct');
    await waitFor(async () => {
      const n1 = v2.received.length;
      await new Promise((r) => setTimeout(r, 50));
      return v2.received.length === n1;
    });
    const share = (v2.received.length - before) / 400;
    assert.ok(share > 0.18 && share < 0.32, `mirrored share ${share}`);
  });

  it('sticks each x-user to one endpoint (consistentHash.httpHeaderName)', async () => {
    await configure([destinationRule('sticky', { host: 'sticky', trafficPolicy: { loadBalancer: { consistentHash: { httpHeaderName: 'x-user' } } } })]);
    const owners = new Map<string, Set<string>>();
    for (let u = 0; u < 30; u++) {
      for (let i = 0; i < 4; i++) {
        const r = await proxy.request('sticky:8080', '/', { headers: { 'x-user': `user-${u}` } });
        const set = owners.get(`user-${u}`) ?? new Set();
        set.add(r.json().backend);
        owners.set(`user-${u}`, set);
      }
    }
    for (const [user, set] of owners) assert.equal(set.size, 1, `${user} went to ${[...set]}`);
    const used = new Set([...owners.values()].map((s) => [...s][0]));
    assert.ok(used.size >= 2, `users spread over ${used.size} endpoints`);
  });

  it('issues and honours a session cookie (consistentHash.httpCookie with ttl)', async () => {
    await configure([
      destinationRule('sticky', { host: 'sticky', trafficPolicy: { loadBalancer: { consistentHash: { httpCookie: { name: 'weft-session', ttl: '60s' } } } } }),
    ]);
    const first = await proxy.request('sticky:8080', '/');
    const setCookie = String(first.headers['set-cookie'] ?? '');
    const m = /weft-session="?([^";]+)"?/.exec(setCookie);
    assert.ok(m, `set-cookie: ${setCookie}`);
    assert.match(setCookie, /Max-Age=60/);
    const owner = first.json().backend;
    for (let i = 0; i < 10; i++) {
      const r = await proxy.request('sticky:8080', '/', { headers: { cookie: `weft-session=${m![1]}` } });
      assert.equal(r.json().backend, owner);
      assert.equal(r.headers['set-cookie'], undefined, 'no new cookie once the client has one');
    }
  });

  it('sticks a client address to one endpoint (consistentHash.useSourceIp)', async () => {
    await configure([destinationRule('sticky', { host: 'sticky', trafficPolicy: { loadBalancer: { consistentHash: { useSourceIp: true } } } })]);
    const seen = new Set<string>();
    for (let i = 0; i < 15; i++) seen.add((await proxy.request('sticky:8080', '/')).json().backend);
    assert.equal(seen.size, 1);
  });
});
