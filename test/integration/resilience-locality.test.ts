// Locality-aware load balancing from WorkloadEntry localities, end to end: the translator gives
// a client in us-east/zone-a priorities by closeness (outlier detection enabled, as Istio requires
// for failover), and the Weft proxy keeps traffic local, fails over to the same region and then to
// another region as endpoints (real processes) are killed, with zero failed requests; with
// `distribute`, traffic splits by locality weight.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ConfigResource } from '../../src/config/resources';
import { startBackendProcess, type BackendProcess } from '../support/backend-process';
import { formatLoadResult, runLoad, type LoadResult } from '../support/load-client';
import { destinationRule, kubeService, virtualService, workloadEntry } from '../support/mesh-resources';
import { clusterHosts } from '../support/proxy-admin';
import { countBy, startMesh, startTestProxy, type Mesh, type TestProxy } from './proxy-harness';

const LOCALITIES = ['us-east/zone-a', 'us-east/zone-b', 'us-west/zone-a'];

describe('locality-aware load balancing and failover', () => {
  let mesh: Mesh;
  let proxy: TestProxy;
  let admin: string;
  const processes: BackendProcess[] = [];
  // The client's own WorkloadEntry says where it runs.
  const client = workloadEntry('client', { address: '127.0.0.1', labels: { app: 'client' }, locality: 'us-east/zone-a' });

  async function endpoints(prefix: string, subnet: number): Promise<BackendProcess[]> {
    const list = await Promise.all(LOCALITIES.map((_, i) => startBackendProcess(`${prefix}-${i + 1}`, `127.0.${subnet}.${i + 1}`)));
    processes.push(...list);
    return list;
  }

  function service(name: string, ends: BackendProcess[]): ConfigResource[] {
    return [
      kubeService(name, [{ name: 'http', port: 8080 }], { app: name }),
      ...ends.map((e, i) => workloadEntry(e.name, { address: e.address, labels: { app: name }, ports: { http: e.port }, locality: LOCALITIES[i] })),
    ];
  }

  async function configure(resources: ConfigResource[]): Promise<void> {
    mesh.publish([client, ...resources]);
    await mesh.converged();
  }

  /** Runs a load and says which endpoint (by locality) answered each request. */
  async function load(host: string, ends: BackendProcess[], o: Partial<Parameters<typeof runLoad>[0]> = {}): Promise<{ result: LoadResult; byLocality: Record<string, number> }> {
    const from = proxy.records.length;
    const result = await runLoad({ address: '127.0.0.1', port: proxy.outboundPort, url: '/', host, connections: 4, requests: 400, maxDurationMs: 30_000, ...o });
    const where = (key?: string) => LOCALITIES[ends.findIndex((e) => `${e.address}:${e.port}` === key)] ?? String(key);
    return { result, byLocality: countBy(proxy.records.slice(from), (r) => where(r.upstreamHost)) };
  }

  before(async () => {
    mesh = await startMesh([client]);
    proxy = await startTestProxy(mesh, { name: 'client', address: '127.0.0.1' });
    admin = `${proxy.proxy.adminAddress}:${proxy.proxy.ports.admin}`;
  });

  after(async () => {
    await proxy?.close();
    await mesh?.close();
    await Promise.all(processes.map((p) => p.stop()));
  });

  it('stays in the local zone, then fails over to the same region, then to another region, without a failed request', async () => {
    const ends = await endpoints('loc', 67);
    const name = 'localtest';
    await configure([
      ...service(name, ends),
      destinationRule(name, {
        host: name,
        trafficPolicy: { outlierDetection: { consecutive5xxErrors: 2, interval: '1s', baseEjectionTime: '60s', maxEjectionPercent: 100 } },
      }),
      virtualService(name, {
        hosts: [name],
        http: [{ route: [{ destination: { host: name } }], retries: { attempts: 3, retryOn: 'connect-failure,reset,gateway-error', retryRemoteLocalities: true } }],
      }),
    ]);
    const cluster = `outbound|8080||${name}.default.svc.cluster.local`;
    const hosts = await clusterHosts(admin, cluster);
    assert.deepEqual(
      ends.map((e) => hosts.find((h) => h.key === `${e.address}:${e.port}`)?.priority),
      [0, 1, 2],
      'priorities by closeness: own zone, own region, elsewhere',
    );
    const local = await load(`${name}:8080`, ends);
    let killed = '';
    const kill = (victim: BackendProcess) => (n: number) => {
      if (n === 200 && !killed) {
        killed = victim.name;
        victim.kill('SIGKILL');
      }
    };
    const sameRegion = await load(`${name}:8080`, ends, { requests: 1200, onResponse: kill(ends[0]) });
    killed = '';
    const otherRegion = await load(`${name}:8080`, ends, { requests: 1200, onResponse: kill(ends[1]) });
    process.stdout.write(
      `\n[locality failover, client in us-east/zone-a]\n` +
        `  all up:               ${JSON.stringify(local.byLocality)}, failed ${local.result.failed}\n` +
        `  us-east/zone-a killed: ${JSON.stringify(sameRegion.byLocality)}, sent ${sameRegion.result.sent}, failed ${sameRegion.result.failed}\n` +
        `  us-east/zone-b killed: ${JSON.stringify(otherRegion.byLocality)}, sent ${otherRegion.result.sent}, failed ${otherRegion.result.failed}\n` +
        `${formatLoadResult('after both kills', otherRegion.result)}\n`,
    );
    assert.deepEqual(local.byLocality, { 'us-east/zone-a': 400 });
    for (const phase of [local, sameRegion, otherRegion]) assert.equal(phase.result.failed, 0, JSON.stringify(phase.result.codes));
    assert.equal(sameRegion.byLocality['us-west/zone-a'] ?? 0, 0, 'the same region takes over first');
    assert.ok(sameRegion.byLocality['us-east/zone-b'] > 900, JSON.stringify(sameRegion.byLocality));
    assert.ok(otherRegion.byLocality['us-west/zone-a'] > 900, JSON.stringify(otherRegion.byLocality));
    const after = await clusterHosts(admin, cluster);
    assert.deepEqual(after.map((h) => h.ejected), [true, true, false]);
  });

  it('splits traffic by locality weight with distribute (70% own zone, 30% us-west, none to zone-b)', async () => {
    const ends = await endpoints('dist', 68);
    const name = 'disttest';
    await configure([
      ...service(name, ends),
      destinationRule(name, {
        host: name,
        trafficPolicy: {
          loadBalancer: { localityLbSetting: { enabled: true, distribute: [{ from: 'us-east/zone-a/*', to: { 'us-east/zone-a/*': 70, 'us-west/*': 30 } }] } },
        },
      }),
    ]);
    const { result, byLocality } = await load(`${name}:8080`, ends, { requests: 1000 });
    process.stdout.write(`\n[distribute 70/30]\n  ${JSON.stringify(byLocality)}, failed ${result.failed}\n`);
    assert.equal(result.failed, 0);
    assert.equal(byLocality['us-east/zone-b'] ?? 0, 0);
    assert.ok(Math.abs(byLocality['us-east/zone-a'] - 700) <= 30, JSON.stringify(byLocality));
    assert.ok(Math.abs(byLocality['us-west/zone-a'] - 300) <= 30, JSON.stringify(byLocality));
  });
});
