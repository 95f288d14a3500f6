// Sharing between proxies and snapshots: proxies that differ only in what their outbound config
// does not depend on get the very same resource objects (so the ADS server serialises and encodes
// them once), proxies that differ in what it does depend on do not, and sharing never changes what
// any proxy gets.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import type { ProxyNode } from '../../../src/model/proxy';
import { createSnapshot, DEFAULT_MESH_CONFIG, type MeshSnapshot } from '../../../src/model/snapshot';
import { TypeUrl } from '../../../src/xds/protos';
import { createTranslator, parseProxyNode, type GeneratedResources } from '../../../src/xds/translate';
import { GenerationalMemo } from '../../../src/xds/translate/shared-resources';
import { loadFixture, parseResources } from './load-fixture';
import { toPlain } from './resource-checks';

const GOLDEN_DIR = path.resolve(__dirname, '../../../../test/unit/translate/golden');

function service(name: string, versions: string[], firstAddress: number, extra = ''): string {
  const entries = versions.map(
    (v, i) => `---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}-${v}, namespace: default}
spec: {address: 127.0.10.${firstAddress + i}, labels: {app: ${name}, version: ${v}}}
`,
  );
  return `---
apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: default}
spec:
  selector: {app: ${name}}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${name}, namespace: default}
spec:
  host: ${name}
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
${entries.join('')}${extra}`;
}

const REVIEWS_VS = `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match:
    - sourceLabels: {app: productpage}
    route:
    - destination: {host: reviews, subset: v2}
  - route:
    - destination: {host: reviews, subset: v1}
`;

function mesh(reviewsSecondAddress = 2): string {
  return [
    service('productpage', ['v1'], 1),
    `---
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1, namespace: default}
spec: {address: 127.0.20.1, labels: {app: reviews, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2, namespace: default}
spec: {address: 127.0.20.${reviewsSecondAddress}, labels: {app: reviews, version: v2}}
`,
    service('ratings', ['v1', 'v2'], 30),
    REVIEWS_VS,
  ].join('');
}

function snapshotOf(yaml: string, sequence = 1): MeshSnapshot {
  return createSnapshot({ sequence, reason: 'test', resources: parseResources(yaml), meshConfig: DEFAULT_MESH_CONFIG });
}

function sidecar(ip: string, workload: string, labels: Record<string, string> = {}, namespace = 'default'): ProxyNode {
  return parseProxyNode({
    id: `sidecar~${ip}~${workload}.${namespace}~${namespace}.svc.cluster.local`,
    metadata: { NAMESPACE: namespace, WORKLOAD_NAME: workload, INSTANCE_IPS: ip, LABELS: labels },
  });
}

function outboundOf(g: GeneratedResources, typeUrl: string): Map<string, unknown> {
  return new Map([...g[typeUrl]].filter(([name]) => !name.startsWith('inbound|') && name !== 'virtualInbound'));
}

/** Every outbound resource of `a` is the very object `b` has under that name, and vice versa. */
function assertSameObjects(a: GeneratedResources, b: GeneratedResources, typeUrl: string): void {
  const x = outboundOf(a, typeUrl);
  const y = outboundOf(b, typeUrl);
  assert.deepEqual([...x.keys()], [...y.keys()], `${typeUrl}: same names`);
  assert.ok(x.size > 0, `${typeUrl}: has resources`);
  for (const [name, r] of x) assert.equal(r, y.get(name), `${typeUrl} "${name}" is the same object`);
}

describe('sharing between proxies of one snapshot', () => {
  const snapshot = snapshotOf(mesh());

  it('gives two sidecars of a namespace with different addresses and workload names the same outbound objects', () => {
    const translate = createTranslator({ freeze: 'deep' });
    const a = translate(snapshot, sidecar('127.0.99.1', 'client-a', { app: 'client' }));
    const b = translate(snapshot, sidecar('127.0.99.2', 'client-b', { app: 'client', team: 'x' }));
    for (const t of [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration]) assertSameObjects(a, b, t);
    assert.equal(a, b, 'neither serves a port: the whole result is shared');
  });

  it('shares outbound objects with a sidecar whose workload has inbound resources of its own', () => {
    const translate = createTranslator();
    const client = translate(snapshot, sidecar('127.0.99.1', 'client-a', { app: 'ratings', version: 'v1' }));
    const ratings = translate(snapshot, sidecar('127.0.10.30', 'ratings-v1', { app: 'ratings', version: 'v1' }));
    assert.ok(ratings[TypeUrl.Cluster].has('inbound|9080||'));
    assert.ok(ratings[TypeUrl.Listener].has('virtualInbound'));
    assert.equal(client[TypeUrl.Cluster].has('inbound|9080||'), false);
    for (const t of [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration]) assertSameObjects(client, ratings, t);
    assert.deepEqual([...ratings[TypeUrl.Cluster].keys()], [...ratings[TypeUrl.Cluster].keys()].sort(), 'merged map stays sorted');
  });

  it('gives a proxy whose labels satisfy a VirtualService sourceLabels its own routes, and shares the rest', () => {
    const translate = createTranslator();
    const client = translate(snapshot, sidecar('127.0.99.1', 'client-a', { app: 'client' }));
    const productpage = translate(snapshot, sidecar('127.0.10.1', 'productpage-v1', { app: 'productpage', version: 'v1' }));
    const routeOf = (g: GeneratedResources) => g[TypeUrl.RouteConfiguration].get('9080') as any;
    assert.notEqual(routeOf(client), routeOf(productpage));
    const reviewsCluster = (g: GeneratedResources) =>
      routeOf(g).virtual_hosts.find((vh: any) => vh.name === 'reviews.default.svc.cluster.local:9080').routes[0].route.cluster;
    assert.equal(reviewsCluster(client), 'outbound|9080|v1|reviews.default.svc.cluster.local');
    assert.equal(reviewsCluster(productpage), 'outbound|9080|v2|reviews.default.svc.cluster.local');
    assertSameObjects(client, productpage, TypeUrl.Cluster);
    assertSameObjects(client, productpage, TypeUrl.ClusterLoadAssignment);
    assertSameObjects(client, productpage, TypeUrl.Listener);
  });

  it('shares clusters and endpoints, but not routes, with a proxy in another namespace', () => {
    const translate = createTranslator();
    const here = translate(snapshot, sidecar('127.0.99.1', 'client-a', { app: 'client' }));
    const there = translate(snapshot, sidecar('127.0.99.2', 'client-b', { app: 'client' }, 'other'));
    assertSameObjects(here, there, TypeUrl.Cluster);
    assertSameObjects(here, there, TypeUrl.ClusterLoadAssignment);
    // Virtual host domains depend on the namespace (short names only within it).
    assert.notDeepEqual(toPlain(here)[TypeUrl.RouteConfiguration], toPlain(there)[TypeUrl.RouteConfiguration]);
  });

  it('keys DestinationRule choice on the workloadSelectors that select the proxy', () => {
    const selected = `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-canary-client, namespace: default}
spec:
  host: reviews
  workloadSelector: {matchLabels: {track: canary}}
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
  subsets: [{name: v1, labels: {version: v1}}]
`;
    const snap = snapshotOf(mesh() + selected);
    const translate = createTranslator();
    const plain = translate(snap, sidecar('127.0.99.1', 'client-a', { app: 'client' }));
    const plain2 = translate(snap, sidecar('127.0.99.2', 'client-b', { app: 'other' }));
    const canary = translate(snap, sidecar('127.0.99.3', 'client-c', { app: 'client', track: 'canary' }));
    const lb = (g: GeneratedResources) => (g[TypeUrl.Cluster].get('outbound|9080||reviews.default.svc.cluster.local') as any).lb_policy;
    assert.equal(lb(plain), 'LEAST_REQUEST');
    assert.equal(lb(canary), 'RANDOM');
    assert.equal(canary[TypeUrl.Cluster].has('outbound|9080|v2|reviews.default.svc.cluster.local'), false);
    assert.equal(plain, plain2);
    // Services the canary rule does not cover keep the same cluster objects.
    const ratings = 'outbound|9080|v1|ratings.default.svc.cluster.local';
    assert.equal(plain[TypeUrl.Cluster].get(ratings), canary[TypeUrl.Cluster].get(ratings));
  });
});

describe('sharing across snapshots', () => {
  it('keeps the clusters, and the endpoints of untouched services, when only an endpoint changes', () => {
    const translate = createTranslator();
    const proxy = sidecar('127.0.99.1', 'client-a', { app: 'client' });
    const before = translate(snapshotOf(mesh(2), 1), proxy);
    const after = translate(snapshotOf(mesh(3), 2), proxy); // reviews-v2 moved to another address
    assertSameObjects(before, after, TypeUrl.Cluster);
    const changed = new Set(['outbound|9080||reviews.default.svc.cluster.local', 'outbound|9080|v2|reviews.default.svc.cluster.local']);
    for (const [name, cla] of before[TypeUrl.ClusterLoadAssignment]) {
      if (changed.has(name)) assert.notEqual(after[TypeUrl.ClusterLoadAssignment].get(name), cla, `${name} is rebuilt`);
      else assert.equal(after[TypeUrl.ClusterLoadAssignment].get(name), cla, `${name} is the same object`);
    }
    const addresses = (g: GeneratedResources) =>
      (g[TypeUrl.ClusterLoadAssignment].get('outbound|9080|v2|reviews.default.svc.cluster.local') as any).endpoints[0].lb_endpoints.map(
        (e: any) => e.endpoint.address.socket_address.address,
      );
    assert.deepEqual(addresses(after), ['127.0.20.3']);
  });

  it('rebuilds only the clusters of a service whose DestinationRule changed', () => {
    const translate = createTranslator();
    const proxy = sidecar('127.0.99.1', 'client-a', { app: 'client' });
    const before = translate(snapshotOf(mesh(), 1), proxy);
    const edited = mesh().replace(
      'host: ratings\n  subsets:',
      'host: ratings\n  trafficPolicy: {connectionPool: {tcp: {connectTimeout: 2s}}}\n  subsets:',
    );
    assert.notEqual(edited, mesh());
    const after = translate(snapshotOf(edited, 2), proxy);
    for (const [name, cluster] of before[TypeUrl.Cluster]) {
      const same = after[TypeUrl.Cluster].get(name) === cluster;
      assert.equal(same, !name.endsWith('|ratings.default.svc.cluster.local'), name);
    }
    assertSameObjects(before, after, TypeUrl.ClusterLoadAssignment);
  });
});

const SECURED = `${mesh()}---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ratings-viewer, namespace: default}
spec:
  selector: {matchLabels: {app: ratings, track: stable}}
  rules: [{to: [{operation: {methods: [GET]}}]}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: canary-strict, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ratings-canary, namespace: default}
spec:
  selector: {matchLabels: {track: canary}}
  mtls: {mode: DISABLE}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: istio-system}
spec:
  selector: {matchLabels: {team: edge}}
  jwtRules: [{issuer: "https://issuer.example.com", jwks: '{"keys":[]}'}]
`;

function router(labels: Record<string, string>, id = 'gw-1'): ProxyNode {
  return parseProxyNode({ id: `router~10.0.0.50~${id}.istio-system~istio-system.svc.cluster.local`, metadata: { LABELS: labels } });
}

function withMetadata(p: ProxyNode, metadata: Record<string, unknown>, id: string): ProxyNode {
  return { ...p, id, metadata: { ...p.metadata, ...metadata } };
}

describe('sharing inbound resources', () => {
  const snapshot = snapshotOf(SECURED);
  const inbound = (g: GeneratedResources) => g[TypeUrl.Listener].get('virtualInbound') as any;
  const ratings = (labels: Record<string, string>, ip = '127.0.10.30') => sidecar(ip, 'ratings-v1', { app: 'ratings', version: 'v1', ...labels });

  it('shares inbound between proxies whose labels select the same security policies', () => {
    const translate = createTranslator();
    const a = translate(snapshot, ratings({ track: 'stable' }));
    const b = translate(snapshot, ratings({ track: 'stable', unrelated: 'x' }));
    assert.ok(inbound(a));
    assert.equal(inbound(a), inbound(b));
    assert.equal(a[TypeUrl.Cluster].get('inbound|9080||'), b[TypeUrl.Cluster].get('inbound|9080||'));
  });

  it('keys inbound on the AuthorizationPolicy and PeerAuthentication selectors the labels satisfy', () => {
    const translate = createTranslator();
    const plain = translate(snapshot, ratings({}));
    const viewer = translate(snapshot, ratings({ track: 'stable' }));
    const canary = translate(snapshot, ratings({ track: 'canary' }));
    const filters = (g: GeneratedResources) =>
      inbound(g).filter_chains[0].filters[0].typed_config.http_filters.map((f: any) => f.name);
    assert.deepEqual(filters(plain), ['envoy.filters.http.router']);
    assert.deepEqual(filters(viewer), ['envoy.filters.http.rbac', 'envoy.filters.http.router']);
    const transports = (g: GeneratedResources) => inbound(g).filter_chains.map((c: any) => c.filter_chain_match.transport_protocol);
    assert.deepEqual(transports(plain), ['tls'], 'mesh STRICT');
    assert.deepEqual(transports(canary), ['raw_buffer'], 'workload DISABLE');
    assertSameObjects(plain, canary, TypeUrl.Cluster);
    assertSameObjects(plain, viewer, TypeUrl.Listener);
  });

  it('keys inbound on the interception mode, and in standalone mode on the bind and app addresses', () => {
    const translate = createTranslator();
    const base = ratings({});
    const captured = translate(snapshot, base);
    const capturedOtherApp = translate(snapshot, withMetadata(base, { WEFT_APP_ADDRESS: '127.200.0.1' }, 'x1'));
    assert.equal(inbound(captured), inbound(capturedOtherApp), 'the app address is not read with iptables capture');
    const standalone = translate(snapshot, withMetadata(base, { INTERCEPTION_MODE: 'NONE', WEFT_APP_ADDRESS: '127.128.10.30' }, 'x2'));
    const otherApp = translate(snapshot, withMetadata(base, { INTERCEPTION_MODE: 'NONE', WEFT_APP_ADDRESS: '127.128.10.31' }, 'x3'));
    assert.equal(standalone[TypeUrl.Listener].has('virtualInbound'), false);
    const listener = standalone[TypeUrl.Listener].get('127.0.10.30_9080') as any;
    assert.deepEqual(listener.address.socket_address, { address: '127.0.10.30', port_value: 9080 });
    const appOf = (g: GeneratedResources) =>
      (g[TypeUrl.Cluster].get('inbound|9080||') as any).load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
    assert.deepEqual(appOf(captured), { address: '127.0.10.30', port_value: 9080 });
    assert.deepEqual(appOf(standalone), { address: '127.128.10.30', port_value: 9080 });
    assert.deepEqual(appOf(otherApp), { address: '127.128.10.31', port_value: 9080 });
    assertSameObjects(captured, standalone, TypeUrl.Cluster);
    assertSameObjects(standalone, otherApp, TypeUrl.RouteConfiguration);
  });

  it('keys gateway results on the security policies selecting the gateway', () => {
    const translate = createTranslator();
    const a = translate(snapshot, router({ istio: 'ingressgateway' }));
    const b = translate(snapshot, router({ istio: 'ingressgateway', zone: 'x' }, 'gw-2'));
    const edge = translate(snapshot, router({ istio: 'ingressgateway', team: 'edge' }, 'gw-3'));
    assert.equal(a, b, 'nothing tells them apart: the whole result is shared');
    assert.notEqual(a, edge);
    const filters = (g: GeneratedResources) =>
      (g[TypeUrl.Listener].get('0.0.0.0_8080') as any).filter_chains[0].filters[0].typed_config.http_filters.map((f: any) => f.name);
    assert.deepEqual(filters(a), ['envoy.filters.http.cors', 'envoy.filters.http.fault', 'envoy.filters.http.router']);
    assert.equal(filters(edge)[0], 'envoy.filters.http.jwt_authn');
    assertSameObjects(a, edge, TypeUrl.Cluster);
  });
});

/** Everything that tests proxy labels: DestinationRule workloadSelector, http and tcp sourceLabels, Sidecar selection. */
const LABEL_SENSITIVE = `${mesh()}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-canary-client, namespace: default}
spec:
  host: reviews
  workloadSelector: {matchLabels: {track: canary}}
  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user}}}
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: default}
spec:
  selector: {app: db}
  ports: [{name: tcp, port: 5432}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: db-v1, namespace: default}
spec: {address: 127.0.40.1, labels: {app: db, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db, namespace: default}
spec:
  hosts: [db]
  tcp:
  - match: [{sourceLabels: {track: canary}}]
    route: [{destination: {host: db, subset: v1, port: {number: 5432}}}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: ratings-only, namespace: default}
spec:
  workloadSelector: {labels: {app: ratings}}
  egress: [{hosts: ["./reviews.default.svc.cluster.local"]}]
`;

describe('sharing never changes what a proxy gets', () => {
  const cases = fs.readdirSync(GOLDEN_DIR).filter((d) => fs.existsSync(path.join(GOLDEN_DIR, d, 'in.yaml'))).sort();
  const fixtures: [string, () => { snapshot: MeshSnapshot; proxy: ProxyNode }][] = [
    ...cases.map((name): [string, () => { snapshot: MeshSnapshot; proxy: ProxyNode }] => [name, () => loadFixture(path.join(GOLDEN_DIR, name))]),
    ['label-sensitive mesh', () => ({ snapshot: snapshotOf(LABEL_SENSITIVE), proxy: sidecar('127.0.99.1', 'client-a', { app: 'client', track: 'canary' }) })],
  ];
  for (const [name, load] of fixtures) {
    it(`${name}: every proxy shape translates as it would alone`, () => {
      const { snapshot, proxy } = load();
      const variants = proxyVariants(snapshot, proxy);
      // Deep-frozen: a builder that mutated a shared resource would throw here.
      const forward = createTranslator({ freeze: 'deep' });
      const backward = createTranslator({ freeze: 'deep' });
      const alone = variants.map((p) => JSON.stringify(toPlain(createTranslator({ freeze: 'none' })(snapshot, p))));
      variants.forEach((p, i) => assert.equal(JSON.stringify(toPlain(forward(snapshot, p))), alone[i], `${name}: variant ${i}`));
      [...variants].reverse().forEach((p, j) => {
        const i = variants.length - 1 - j;
        assert.equal(JSON.stringify(toPlain(backward(snapshot, p))), alone[i], `${name}: variant ${i} (reverse order)`);
      });
    });
  }
});

/**
 * The fixture's proxy, then the same with other addresses / workload name / no labels / other
 * interception modes and app addresses, and one proxy per workload of the mesh (its name, address,
 * labels and namespace, captured and standalone): these hit every sourceLabels, workloadSelector,
 * Sidecar and security policy selector the fixtures have, and both inbound and none.
 */
function proxyVariants(snapshot: MeshSnapshot, proxy: ProxyNode): ProxyNode[] {
  const standalone = (p: ProxyNode, app?: string): ProxyNode => ({
    ...p,
    id: `${p.id}-standalone-${app ?? ''}`,
    metadata: { ...p.metadata, INTERCEPTION_MODE: 'NONE', ...(app ? { WEFT_APP_ADDRESS: app } : {}) },
  });
  const captured = (p: ProxyNode): ProxyNode => {
    const { INTERCEPTION_MODE: _mode, ...metadata } = p.metadata;
    return { ...p, id: `${p.id}-captured`, metadata: { ...metadata, WEFT_APP_ADDRESS: '127.200.0.1' } };
  };
  const out: ProxyNode[] = [proxy];
  out.push({ ...proxy, id: `${proxy.id}-2`, ips: ['127.0.99.99'], workloadName: 'nobody' });
  out.push({ ...proxy, id: `${proxy.id}-3`, labels: {} });
  out.push({ ...proxy, id: `${proxy.id}-4`, labels: { ...proxy.labels, unrelated: 'x' }, ips: ['127.0.99.98'] });
  out.push(standalone(proxy), standalone(proxy, '127.128.0.9'), standalone(proxy, '127.128.0.10'), captured(proxy));
  for (const [key, w] of snapshot.registry.workloads) {
    const own: ProxyNode = { ...proxy, id: `${proxy.id}-${key}`, namespace: w.namespace, workloadName: w.name, ips: [w.address], labels: { ...w.labels } };
    out.push(own, standalone(own, '127.128.0.9'), captured(own));
  }
  return out;
}

describe('GenerationalMemo', () => {
  const sameText = (a: string, b: string) => a === b;
  const built = (label: string) => ({ name: label });

  it('reuses a value for equal inputs, rebuilds for different ones', () => {
    const memo = new GenerationalMemo<{ name: string }, string>(sameText, 'shallow');
    const a = memo.get('c', 'x', () => built('a'));
    assert.equal(memo.get('c', 'x', () => built('b')), a);
    assert.notEqual(memo.get('c', 'y', () => built('c')), a);
    assert.ok(Object.isFrozen(a));
  });

  it('keeps what the last generation used and drops what two generations did not', () => {
    const memo = new GenerationalMemo<{ name: string }, string>(sameText, 'none');
    const a = memo.get('c', 'x', () => built('a'));
    memo.rotate();
    assert.equal(memo.get('c', 'x', () => built('b')), a, 'used in the previous generation');
    memo.rotate();
    memo.rotate();
    assert.notEqual(memo.get('c', 'x', () => built('c')), a, 'unused for two generations');
    assert.equal(memo.stats().entries, 1);
  });
});
