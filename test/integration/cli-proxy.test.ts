// `weft proxy-status` with real ADS clients (one ACKing, one NACKing), `weft proxy-config`
// against a real Weft proxy's admin endpoint and against an admin endpoint serving the real
// translator's output, and `weft version`.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/log/logger';
import { startProxy, type RunningProxy } from '../../src/proxy/proxy';
import { SecretStore } from '../../src/proxy/identity/secret-store';
import { createTestCa } from '../support/test-ca';
import { TypeUrl } from '../../src/xds/protos';
import { parseProxyNode, translateForProxy } from '../../src/xds/translate';
import { AdsTestClient, sidecarNodeId } from '../support/ads-client';
import { waitFor } from '../support/wait-for';
import { DESTINATION_RULES, SERVICES, startTestControlPlane, type TestControlPlane } from './cli-harness';

const PRODUCTPAGE = `apiVersion: v1
kind: Service
metadata: {name: productpage}
spec:
  selector: {app: productpage}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: productpage-v1}
spec: {address: 127.0.0.1, labels: {app: productpage, version: v1}, serviceAccount: bookinfo-productpage}
`;

const REVIEWS_FOR_JASON = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
`;

function nodeMetadata(name: string, ip: string, extra: Record<string, unknown> = {}) {
  return { NAMESPACE: 'default', WORKLOAD_NAME: name, INSTANCE_IPS: ip, LABELS: { app: name.replace(/-v\d+$/, '') }, ...extra };
}

describe('weft proxy-status and proxy-config', () => {
  let mesh: TestControlPlane;
  const clients: AdsTestClient[] = [];
  let proxy: RunningProxy | undefined;
  let fakeAdmin: http.Server | undefined;

  before(async () => {
    mesh = await startTestControlPlane({ 'services.yaml': SERVICES + '---\n' + PRODUCTPAGE, 'rules.yaml': DESTINATION_RULES, 'reviews.yaml': REVIEWS_FOR_JASON });
  });

  after(async () => {
    for (const c of clients) c.close();
    await proxy?.close(100);
    await new Promise<void>((resolve) => (fakeAdmin ? fakeAdmin.close(() => resolve()) : resolve()));
    await mesh.close();
  });

  const xds = () => `127.0.0.1:${mesh.cp.xdsPort}`;
  const statusOf = (id: string) => mesh.cp.ads.syncStatus().find((s) => s.id === id);

  it('shows SYNCED for a proxy that ACKed everything and NACK (with its error) for one that rejected', async () => {
    const syncedId = sidecarNodeId('127.0.10.3', 'reviews-v1');
    const nackId = sidecarNodeId('127.0.99.7', 'ratings-v1');
    clients.push(new AdsTestClient({ address: xds(), node: { id: syncedId, metadata: nodeMetadata('reviews-v1', '127.0.10.3') } }));
    clients.push(
      new AdsTestClient({
        address: xds(),
        node: { id: nackId, metadata: nodeMetadata('ratings-v1', '127.0.99.7') },
        judge: (r) => (r.typeUrl === TypeUrl.Listener ? 'listener 0.0.0.0_9080: unsupported filter envoy.filters.network.frobnicate' : undefined),
      }),
    );
    await waitFor(() => statusOf(syncedId)?.state === 'SYNCED' && statusOf(syncedId)!.types.length === 4, { timeoutMs: 10_000, message: 'reviews-v1 never SYNCED' });
    await waitFor(() => statusOf(nackId)?.types.find((t) => t.type === 'LDS')?.state === 'NACK', { timeoutMs: 10_000, message: 'ratings-v1 never NACKed' });

    const r = await mesh.weft(['proxy-status']);
    assert.equal(r.code, 0, r.stderr);
    const [header, ...rows] = r.stdout.split('\n\n')[0].trim().split('\n');
    assert.deepEqual(header.split(/\s{3,}/), ['NAME', 'NAMESPACE', 'ADDRESS', 'CDS', 'LDS', 'EDS', 'RDS', 'VERSION']);
    const version = mesh.cp.current()!.version;
    const row = (id: string) => rows.find((l) => l.startsWith(id + ' '))?.split(/\s{3,}/);
    assert.deepEqual(row(syncedId), [syncedId, 'default', '127.0.10.3', 'SYNCED', 'SYNCED', 'SYNCED', 'SYNCED', version]);
    assert.deepEqual(row(nackId), [nackId, 'default', '127.0.99.7', 'SYNCED', 'NACK', 'SYNCED', 'NOT SENT', version]);
    assert.match(r.stdout, new RegExp(`^  ${nackId.replace(/[.~]/g, '\\$&')} LDS v\\d+: listener 0\\.0\\.0\\.0_9080: unsupported filter envoy\\.filters\\.network\\.frobnicate$`, 'm'));

    const json = JSON.parse((await mesh.weft(['proxy-status', '-o', 'json'])).stdout);
    assert.equal(json.find((p: { id: string }) => p.id === nackId).types.find((t: { type: string }) => t.type === 'LDS').lastNack.message.includes('frobnicate'), true);

    const one = await mesh.weft(['proxy-status', 'ratings-v1.default']);
    assert.match(one.stdout, /^Proxy:\s+sidecar~127\.0\.99\.7~ratings-v1\.default/m);
    assert.match(one.stdout, /^LDS\s+NACK\s+v\d+\s+.*frobnicate$/m);
  });

  it('prints a real proxy’s clusters, listeners, routes and endpoints as istioctl does', async () => {
    // The translator's config names the mesh identity (SDS default/ROOTCA): one from a test CA.
    const ca = await createTestCa();
    const identity = await ca.issueWorkload('bookinfo-productpage');
    const secrets = new SecretStore();
    secrets.setTrustedCa('ROOTCA', ca.rootPem);
    secrets.setCertificate('default', identity.certPem, identity.keyPem);
    proxy = await startProxy({
      xdsAddress: xds(),
      secrets,
      node: { id: sidecarNodeId('127.0.0.1', 'productpage-v1'), metadata: nodeMetadata('productpage-v1', '127.0.0.1') },
      bindAddress: '127.0.0.1',
      ports: { outbound: 0, inbound: 0, admin: 0, stats: 0, health: 0 },
      logger: silentLogger,
      xdsBackoff: { initialMs: 50, maxMs: 500 },
      initialFetchTimeoutMs: 3000,
    });
    await proxy.ready;
    const admin = ['--admin', `127.0.0.1:${proxy.ports.admin}`];

    const clusters = await mesh.weft(['proxy-config', 'clusters', 'productpage-v1', ...admin]);
    assert.equal(clusters.code, 0, clusters.stderr);
    const lines = clusters.stdout.trim().split('\n');
    assert.deepEqual(lines[0].split(/\s{3,}/), ['SERVICE FQDN', 'PORT', 'SUBSET', 'DIRECTION', 'TYPE', 'DESTINATION RULE']);
    assert.ok(lines.some((l) => /^reviews\.default\.svc\.cluster\.local\s+9080\s+v2\s+outbound\s+EDS\s+reviews\.default$/.test(l)), clusters.stdout);
    assert.ok(lines.some((l) => /^productpage\.default\.svc\.cluster\.local\s+9080\s+-\s+outbound\s+EDS$/.test(l)), clusters.stdout);
    assert.ok(lines.some((l) => /^BlackHoleCluster\s+-\s+-\s+-\s+STATIC$/.test(l)), clusters.stdout);

    const routes = await mesh.weft(['proxy-config', 'routes', 'productpage-v1', ...admin]);
    assert.match(routes.stdout, /^NAME\s+VHOST NAME\s+DOMAINS\s+MATCH\s+VIRTUAL SERVICE\n/);
    assert.match(routes.stdout, /^9080\s+reviews\.default\.svc\.cluster\.local:9080\s+reviews \+ 3 more\.\.\.\s+\/\* \(end-user=jason\)\s+reviews\.default$/m);
    assert.match(routes.stdout, /^9080\s+reviews\.default\.svc\.cluster\.local:9080\s+reviews \+ 3 more\.\.\.\s+\/\*\s+reviews\.default$/m);

    const listeners = await mesh.weft(['proxy-config', 'listeners', 'productpage-v1', ...admin]);
    assert.match(listeners.stdout, /^ADDRESSES\s+PORT\s+MATCH\s+DESTINATION\n/);
    assert.match(listeners.stdout, /^0\.0\.0\.0\s+9080\s+ALL\s+Route: 9080$/m);
    assert.match(listeners.stdout, /^0\.0\.0\.0\s+15001\s+App: http\/1\.1,h2c\s+Route: http_proxy$/m);
    assert.match(listeners.stdout, /^0\.0\.0\.0\s+15001\s+ALL\s+Cluster: PassthroughCluster$/m);

    const endpoints = await mesh.weft(['proxy-config', 'endpoints', 'productpage-v1', ...admin]);
    assert.match(endpoints.stdout, /^ENDPOINT\s+STATUS\s+OUTLIER CHECK\s+CLUSTER\n/);
    assert.match(endpoints.stdout, /^127\.0\.10\.4:9080\s+HEALTHY\s+OK\s+outbound\|9080\|v2\|reviews\.default\.svc\.cluster\.local$/m);

    const json = JSON.parse((await mesh.weft(['proxy-config', 'cluster', 'productpage-v1', '-o', 'json', ...admin])).stdout);
    assert.ok(json.some((c: { name: string }) => c.name === 'outbound|9080|v1|reviews.default.svc.cluster.local'));

    const all = await mesh.weft(['proxy-config', 'all', 'productpage-v1', ...admin]);
    for (const h of ['SERVICE FQDN', 'ADDRESSES', 'NAME\\s+VHOST NAME', 'ENDPOINT\\s+STATUS\\s+OUTLIER CHECK']) assert.match(all.stdout, new RegExp(`^${h}`, 'm'));
  });

  it('finds a proxy by name through the control plane and reads its admin endpoint', async () => {
    // An admin endpoint serving Envoy's config_dump of the real translator's output for this node,
    // announced to the control plane through Istio's PROXY_CONFIG.proxyAdminPort.
    const node = { id: sidecarNodeId('127.0.0.1', 'details-v1'), metadata: nodeMetadata('details-v1', '127.0.0.1') };
    const generated = translateForProxy(mesh.cp.current()!, parseProxyNode(node));
    const values = (type: string) => [...(generated[type]?.values() ?? [])];
    const dump = {
      configs: [
        { '@type': 'type.googleapis.com/envoy.admin.v3.ClustersConfigDump', dynamic_active_clusters: values(TypeUrl.Cluster).map((c) => ({ cluster: { '@type': TypeUrl.Cluster, ...c } })) },
        { '@type': 'type.googleapis.com/envoy.admin.v3.ListenersConfigDump', dynamic_listeners: values(TypeUrl.Listener).map((l) => ({ name: l.name, active_state: { listener: l } })) },
        { '@type': 'type.googleapis.com/envoy.admin.v3.RoutesConfigDump', dynamic_route_configs: values(TypeUrl.RouteConfiguration).map((r) => ({ route_config: r })) },
        { '@type': 'type.googleapis.com/envoy.admin.v3.EndpointsConfigDump', dynamic_endpoint_configs: values(TypeUrl.ClusterLoadAssignment).map((e) => ({ endpoint_config: e })) },
      ],
    };
    fakeAdmin = http.createServer((req, res) => {
      if (req.url === '/config_dump') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(dump));
      else res.writeHead(404).end('not found\n');
    });
    await new Promise<void>((resolve) => fakeAdmin!.listen(0, '127.0.0.1', resolve));
    const adminPort = (fakeAdmin.address() as AddressInfo).port;
    clients.push(new AdsTestClient({ address: xds(), node: { ...node, metadata: { ...node.metadata, PROXY_CONFIG: { proxyAdminPort: adminPort } } } }));
    await waitFor(() => statusOf(node.id)?.state === 'SYNCED', { timeoutMs: 10_000, message: 'details-v1 never SYNCED' });

    const byName = await mesh.weft(['proxy-config', 'routes', 'details-v1.default']);
    assert.equal(byName.code, 0, byName.stderr);
    assert.match(byName.stdout, /^9080\s+reviews\.default\.svc\.cluster\.local:9080\s+reviews \+ 3 more\.\.\.\s+\/\* \(end-user=jason\)\s+reviews\.default$/m);
    // No /clusters on this admin endpoint: endpoints come from the dump's ClusterLoadAssignments.
    const endpoints = await mesh.weft(['proxy-config', 'endpoints', 'sidecar~127.0.0.1~details']);
    assert.match(endpoints.stdout, /^127\.0\.10\.3:9080\s+HEALTHY\s+OK\s+outbound\|9080\|v1\|reviews\.default\.svc\.cluster\.local$/m);

    const ambiguous = await mesh.weft(['proxy-config', 'clusters', 'sidecar~']);
    assert.equal(ambiguous.code, 1);
    assert.match(ambiguous.stderr, /matches \d+ proxies/);
    const unknown = await mesh.weft(['proxy-config', 'clusters', 'details-v9']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no proxy "details-v9" is connected/);
    // The NACKing client has no admin endpoint: the error says where it looked and what to do.
    const nowhere = await mesh.weft(['proxy-config', 'listeners', 'sidecar~127.0.99.7']);
    assert.equal(nowhere.code, 1);
    assert.match(nowhere.stderr, /cannot reach the admin endpoint of proxy sidecar~127\.0\.99\.7~ratings-v1\S* at 127\.0\.99\.7:15000: connection refused \(hint: .*--admin HOST:PORT\)/);
    const usage = await mesh.weft(['proxy-config', 'frobnicate', 'x']);
    assert.equal(usage.code, 2);
  });

  it('prints client and control plane versions', async () => {
    const r = await mesh.weft(['version']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^client version: \d+\.\d+\.\d+\ncontrol plane version: \d+\.\d+\.\d+ \(127\.0\.0\.1:\d+; snapshot v\d+, \d+ resources, \d+ proxies connected\)\n$/);
    const help = await mesh.weft(['proxy-config', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: weft proxy-config/);
  });
});
