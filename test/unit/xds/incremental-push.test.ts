// The mechanisms behind incremental pushes: lazily decoded subscriptions, shared selections and
// their diffs, translation reuse across endpoint-only snapshots, and the registry's label index.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ConfigResource } from '../../../src/config/resources';
import { createSnapshot } from '../../../src/model/snapshot';
import { TypeUrl } from '../../../src/xds/protos';
import { WatchedResource } from '../../../src/xds/server/ads-connection';
import { decodeDiscoveryRequest, encodeDiscoveryRequest } from '../../../src/xds/server/ads-service';
import { diffPreparedLists, EncodedResourceCache, PreparedList } from '../../../src/xds/server/resource-cache';
import { createTranslator, parseProxyNode } from '../../../src/xds/translate';
import { sameOutsideEndpoints } from '../../../src/xds/translate/translator';
import { destinationRule, kubeService, virtualService, workloadEntry } from '../../support/mesh-resources';

const EDS = TypeUrl.ClusterLoadAssignment;
const names = (n: number) => Array.from({ length: n }, (_, i) => `outbound|9080||svc-${String(i).padStart(4, '0')}.default.svc.cluster.local`);

describe('DiscoveryRequest resource_names on the wire', () => {
  it('decodes a long name list lazily and to the same names', () => {
    const list = names(100);
    const request = decodeDiscoveryRequest(encodeDiscoveryRequest({ type_url: EDS, resource_names: list, version_info: 'v1', response_nonce: 'n1' }));
    assert.ok(request.resource_names_wire && request.resource_names_wire.length > 0);
    assert.equal(request.type_url, EDS);
    assert.equal(request.response_nonce, 'n1');
    assert.deepEqual(request.resource_names, list);
  });

  it('decodes a short list at once', () => {
    const request = decodeDiscoveryRequest(encodeDiscoveryRequest({ type_url: EDS, resource_names: ['a', 'b'] }));
    assert.equal(request.resource_names_wire, undefined);
    assert.deepEqual(request.resource_names, ['a', 'b']);
  });

  it('keeps the held subscription object when an ACK repeats it, and replaces it when names change', () => {
    const w = new WatchedResource(EDS);
    const list = names(100);
    w.subscribeRequest(decodeDiscoveryRequest(encodeDiscoveryRequest({ type_url: EDS, resource_names: list })), true);
    const held = w.nameSet;
    assert.equal(held.set.size, 100);
    w.subscribeRequest(decodeDiscoveryRequest(encodeDiscoveryRequest({ type_url: EDS, resource_names: list })), false);
    assert.equal(w.nameSet, held, 'an identical ACK must not allocate a new subscription');
    // Same names in another order, and with a duplicate: still the same subscription.
    w.subscribeRequest(decodeDiscoveryRequest(encodeDiscoveryRequest({ type_url: EDS, resource_names: [...list].reverse().concat(list[0]) })), false);
    assert.equal(w.nameSet, held);
    const more = [...list, 'outbound|9080||zzz.default.svc.cluster.local'];
    w.subscribeRequest(decodeDiscoveryRequest(encodeDiscoveryRequest({ type_url: EDS, resource_names: more })), false);
    assert.notEqual(w.nameSet, held);
    assert.equal(w.names.size, 101);
    // Two streams with the same names share one interned subscription.
    const other = new WatchedResource(EDS);
    other.subscribe(more, true);
    assert.equal(other.nameSet, w.nameSet);
  });
});

describe('prepared selections', () => {
  it('are shared by equal subscriptions and diffed once per pair', () => {
    const cache = new EncodedResourceCache();
    const cla = (name: string, address: string) => ({ cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address, port_value: 80 } } } }] }] });
    const [a, b, c] = ['a', 'b', 'c'];
    const before = new Map([a, b, c].map((n) => [n, cache.prepare(EDS, n, cla(n, '10.0.0.1'))]));
    cache.rotate();
    const after = new Map([a, b, c].map((n) => [n, cache.prepare(EDS, n, cla(n, n === b ? '10.0.0.2' : '10.0.0.1'))]));
    const w1 = new WatchedResource(EDS);
    const w2 = new WatchedResource(EDS);
    w1.subscribe([a, b, c], true);
    w2.subscribe([c, b, a], true);
    const s1 = w1.select(before);
    assert.equal(w2.select(before), s1, 'same subscription, same map: the same list');
    const s2 = w1.select(after);
    const diff = diffPreparedLists(s1, s2);
    assert.equal(diff.same, false);
    assert.deepEqual(diff.changed.items.map((p) => p.name), [b]);
    assert.equal(diffPreparedLists(s1, s2), diff, 'computed once for every proxy');
    assert.equal(diffPreparedLists(s1, w1.select(new Map(before))).same, true);
    // The body is the concatenation of the resources' fields.
    assert.equal(s2.body().length, s2.items.reduce((n, p) => n + p.field.length, 0));
    assert.equal(new PreparedList([]).body().length, 0);
  });
});

function meshOf(v2Address: string, timeout: string): ConfigResource[] {
  return [
    kubeService('reviews', [{ name: 'http', port: 9080 }], { app: 'reviews' }),
    kubeService('ratings', [{ name: 'http', port: 9080 }], { app: 'ratings' }),
    workloadEntry('reviews-v1', { address: '10.0.0.1', labels: { app: 'reviews', version: 'v1' } }),
    workloadEntry('reviews-v2', { address: v2Address, labels: { app: 'reviews', version: 'v2' } }),
    workloadEntry('ratings-v1', { address: '10.0.1.1', labels: { app: 'ratings', version: 'v1' } }),
    destinationRule('reviews', { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] }),
    virtualService('reviews', { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }], timeout }] }),
  ];
}

describe('translation across an endpoint-only change', () => {
  const proxy = parseProxyNode({ id: 'sidecar~10.9.0.1~client.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default' } });

  it('reuses listeners and routes (the same objects) and rebuilds only the changed assignments', () => {
    const translate = createTranslator();
    const s1 = createSnapshot({ sequence: 1, reason: 'test', resources: meshOf('10.0.0.2', '3s') });
    const s2 = createSnapshot({ sequence: 2, reason: 'test', resources: meshOf('10.0.0.3', '3s') });
    const s3 = createSnapshot({ sequence: 3, reason: 'test', resources: meshOf('10.0.0.3', '4s') });
    assert.equal(sameOutsideEndpoints(s1, s2), true);
    assert.equal(sameOutsideEndpoints(s2, s3), false);
    const r1 = translate(s1, proxy);
    const r2 = translate(s2, proxy);
    for (const type of [TypeUrl.Listener, TypeUrl.RouteConfiguration]) {
      for (const [name, resource] of r1[type]) assert.equal(r2[type].get(name), resource, `${type} ${name} was rebuilt`);
    }
    const v2 = 'outbound|9080|v2|reviews.default.svc.cluster.local';
    assert.notEqual(r2[EDS].get(v2), r1[EDS].get(v2));
    assert.match(JSON.stringify(r2[EDS].get(v2)), /10\.0\.0\.3/);
    const ratings = 'outbound|9080||ratings.default.svc.cluster.local';
    assert.equal(r2[EDS].get(ratings), r1[EDS].get(ratings));
    // And the output is what a fresh translator makes of the new snapshot.
    const fresh = createTranslator()(s2, proxy);
    for (const type of Object.keys(fresh)) assert.deepEqual(JSON.parse(JSON.stringify([...r2[type]])), JSON.parse(JSON.stringify([...fresh[type]])));
    // A VirtualService change rebuilds the routes.
    const r3 = translate(s3, proxy);
    assert.match(JSON.stringify([...r3[TypeUrl.RouteConfiguration].values()]), /"timeout":"4s"/);
  });
});

describe('registry label index', () => {
  it('selects the same endpoints as a scan, in resource order', () => {
    const resources: ConfigResource[] = [
      kubeService('a', [{ name: 'http', port: 80 }], { app: 'a' }),
      kubeService('ab', [{ name: 'http', port: 80 }], { app: 'a', tier: 'b' }),
      workloadEntry('w3', { address: '10.0.0.3', labels: { app: 'a', tier: 'b' } }),
      workloadEntry('w1', { address: '10.0.0.1', labels: { app: 'a' } }),
      workloadEntry('w2', { address: '10.0.0.2', labels: { app: 'x', tier: 'b' } }),
    ];
    const { registry } = createSnapshot({ sequence: 1, reason: 'test', resources });
    assert.deepEqual(registry.endpoints.get('a.default.svc.cluster.local')!.map((e) => e.address), ['10.0.0.1', '10.0.0.3']);
    assert.deepEqual(registry.endpoints.get('ab.default.svc.cluster.local')!.map((e) => e.address), ['10.0.0.3']);
  });
});
