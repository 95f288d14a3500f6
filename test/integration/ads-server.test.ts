// The ADS server over real gRPC streams on loopback, driven by a raw xDS client and serving what
// the real translator produces: subscription flow, ACK/NACK, reconnects, debouncing, incremental
// pushes, requested-name filtering, and 200 concurrent proxies.
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import type { ConfigResource } from '../../src/config/resources';
import { TypeUrl } from '../../src/xds/protos';
import type { SnapshotPushedEvent } from '../../src/xds/server/ads-server';
import { AdsTestClient, sidecarNodeId, type ReceivedResponse } from '../support/ads-client';
import { metricValue, startAdsHarness, type AdsHarness } from '../support/ads-harness';
import {
  destinationRule,
  gateway,
  kubeService,
  sidecarResource,
  SnapshotSequence,
  virtualService,
  workloadEntry,
} from '../support/mesh-resources';
import { waitFor } from '../support/wait-for';

const { Cluster: CDS, ClusterLoadAssignment: EDS, Listener: LDS, RouteConfiguration: RDS } = TypeUrl;
const ALL_TYPES = [CDS, EDS, LDS, RDS];
const REVIEWS = 'reviews.default.svc.cluster.local';
const REVIEWS_V1 = `outbound|9080|v1|${REVIEWS}`;
const REVIEWS_V2 = `outbound|9080|v2|${REVIEWS}`;

interface MeshVariant {
  /** reviews v1/v2 split of the mesh VirtualService. */
  weights?: [number, number];
  reviewsV2Address?: string;
  /** Timeout of the VirtualService bound only to the ingress gateway. */
  gatewayRouteTimeout?: string;
}

/** A small Bookinfo-like mesh in `default`, a separate team in `other` scoped by a Sidecar. */
function mesh(variant: MeshVariant = {}): ConfigResource[] {
  const [w1, w2] = variant.weights ?? [100, 0];
  return [
    kubeService('reviews', [{ name: 'http', port: 9080 }], { app: 'reviews' }),
    kubeService('ratings', [{ name: 'http', port: 9080 }], { app: 'ratings' }),
    kubeService('productpage', [{ name: 'http', port: 9080 }], { app: 'productpage' }),
    workloadEntry('reviews-v1', { address: '10.0.0.1', labels: { app: 'reviews', version: 'v1' }, serviceAccount: 'reviews' }),
    workloadEntry('reviews-v2', { address: variant.reviewsV2Address ?? '10.0.0.2', labels: { app: 'reviews', version: 'v2' }, serviceAccount: 'reviews' }),
    workloadEntry('ratings-v1', { address: '10.0.1.1', labels: { app: 'ratings', version: 'v1' }, serviceAccount: 'ratings' }),
    workloadEntry('productpage-v1', { address: '10.0.2.1', labels: { app: 'productpage', version: 'v1' }, serviceAccount: 'productpage' }),
    destinationRule('reviews', {
      host: 'reviews',
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: { version: 'v2' } },
      ],
    }),
    virtualService('reviews', {
      hosts: ['reviews'],
      http: [
        {
          route: [
            { destination: { host: 'reviews', subset: 'v1' }, weight: w1 },
            ...(w2 > 0 ? [{ destination: { host: 'reviews', subset: 'v2' }, weight: w2 }] : []),
          ],
        },
      ],
    }),
    // Bound to the ingress gateway only: sidecars never see it.
    gateway('istio-system/ingress', { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 80, protocol: 'HTTP', name: 'http' }, hosts: ['*'] }] }),
    virtualService('productpage-ingress', {
      hosts: ['*'],
      gateways: ['istio-system/ingress'],
      http: [{ route: [{ destination: { host: 'productpage', port: { number: 9080 } } }], timeout: variant.gatewayRouteTimeout ?? '10s' }],
    }),
    kubeService('other/inventory', [{ name: 'http', port: 8080 }], { app: 'inventory' }),
    workloadEntry('other/inventory-v1', { address: '10.1.0.1', labels: { app: 'inventory' }, serviceAccount: 'inventory' }),
    sidecarResource('other/default', { egress: [{ hosts: ['./*'] }] }),
  ];
}

const productpageNode = {
  id: sidecarNodeId('10.0.2.1', 'productpage-v1'),
  metadata: { NAMESPACE: 'default', LABELS: { app: 'productpage', version: 'v1' }, WORKLOAD_NAME: 'productpage-v1' },
};
const inventoryNode = {
  id: sidecarNodeId('10.1.0.1', 'inventory-v1', 'other'),
  metadata: { NAMESPACE: 'other', LABELS: { app: 'inventory' }, WORKLOAD_NAME: 'inventory-v1' },
};

function statusOf(harness: AdsHarness, proxyId: string) {
  const status = harness.server.syncStatus().find((s) => s.id === proxyId);
  assert.ok(status, `no sync status for ${proxyId}`);
  return status;
}

function typeStatus(harness: AdsHarness, proxyId: string, typeUrl: string) {
  const t = statusOf(harness, proxyId).types.find((x) => x.typeUrl === typeUrl);
  assert.ok(t, `${proxyId} has no ${typeUrl} subscription`);
  return t;
}

/** Waits until the client accepted `version` on all four types. */
async function synced(client: AdsTestClient, version: string, timeoutMs = 5000): Promise<void> {
  await waitFor(() => client.hasAccepted(version, ALL_TYPES), {
    timeoutMs,
    message: () => `client did not accept ${version} on CDS/EDS/LDS/RDS; got ${client.responses.map((r) => `${r.typeUrl.split('.').pop()}@${r.version}:${r.answer}`).join(', ')}`,
  });
}

/** Resolves with the next push cycle's summary for `version`. */
function nextSnapshotEvent(harness: AdsHarness, version: string, timeoutMs = 5000): Promise<SnapshotPushedEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no push cycle for ${version} within ${timeoutMs}ms`)), timeoutMs);
    const listener = (e: SnapshotPushedEvent) => {
      if (e.version !== version) return;
      clearTimeout(timer);
      harness.server.events.off('snapshot', listener);
      resolve(e);
    };
    harness.server.events.on('snapshot', listener);
  });
}

function typesOf(responses: readonly ReceivedResponse[]): string[] {
  return responses.map((r) => r.typeUrl);
}

describe('ADS server', { timeout: 120_000 }, () => {
  const snapshots = new SnapshotSequence();
  let harness: AdsHarness;
  const clients: AdsTestClient[] = [];
  /** The productpage sidecar's current client (replaced when it reconnects). */
  let productpage: AdsTestClient;
  const connect = (options: Omit<ConstructorParameters<typeof AdsTestClient>[0], 'address'>) => {
    const client = new AdsTestClient({ address: harness.address, ...options });
    client.on('error', () => {}); // recorded in client.streamError; tests that care assert on it
    clients.push(client);
    return client;
  };
  /** Publishes and waits until every connected proxy has answered the resulting pushes. */
  const publishAndConverge = async (resources: ConfigResource[]) => {
    const snapshot = snapshots.next(resources);
    const cycle = nextSnapshotEvent(harness, snapshot.version);
    harness.server.publish(snapshot);
    const event = await cycle;
    await harness.server.waitForConvergence({ version: snapshot.version, timeoutMs: 5000 });
    return { snapshot, event };
  };

  before(async () => {
    harness = await startAdsHarness({ initial: snapshots.next(mesh()), debounceAfterMs: 50, debounceMaxMs: 500 });
  });

  after(async () => {
    for (const c of clients) c.close();
    await harness.close();
  });

  it('serves CDS, EDS, LDS and RDS to a new proxy and reports it SYNCED once everything is ACKed', async () => {
    const client = connect({ node: productpageNode });
    productpage = client;
    await synced(client, 'v1');

    // First answers follow the proxy's requests; CDS was asked for first.
    assert.equal(client.responses[0].typeUrl, CDS);
    const clusters = client.accepted(CDS);
    assert.ok(clusters.has(REVIEWS_V1) && clusters.has(REVIEWS_V2), `clusters: ${[...clusters.keys()].join(', ')}`);
    const v2Endpoints = client.accepted(EDS).get(REVIEWS_V2);
    assert.ok(v2Endpoints, 'no ClusterLoadAssignment for reviews v2');
    assert.match(JSON.stringify(v2Endpoints), /10\.0\.0\.2/);
    assert.ok(client.accepted(LDS).size > 0, 'no listeners');
    assert.ok(client.accepted(RDS).size > 0, 'no routes');

    await waitFor(() => statusOf(harness, productpageNode.id).state === 'SYNCED', { message: 'status never SYNCED' });
    const status = statusOf(harness, productpageNode.id);
    assert.equal(status.type, 'sidecar');
    assert.equal(status.namespace, 'default');
    assert.match(status.address, /^127\.0\.0\.1:\d+$/);
    assert.equal(status.snapshotVersion, 'v1');
    assert.deepEqual(
      status.types.map((t) => [t.type, t.state, t.versionSent, t.versionAcked]),
      [
        ['CDS', 'SYNCED', 'v1', 'v1'],
        ['EDS', 'SYNCED', 'v1', 'v1'],
        ['LDS', 'SYNCED', 'v1', 'v1'],
        ['RDS', 'SYNCED', 'v1', 'v1'],
      ],
    );
    assert.deepEqual(typeStatus(harness, productpageNode.id, CDS).resourceNames, ['*']);
    assert.ok(typeStatus(harness, productpageNode.id, EDS).resourceNames.includes(REVIEWS_V1));
    assert.equal(await metricValue(harness.metrics, 'pilot_xds'), 1);
    assert.equal(await metricValue(harness.metrics, 'pilot_xds_pushes', { type: 'cds' }), 1);
    assert.ok(harness.logsOf('xds.connect').some((l) => l.proxy === productpageNode.id && typeof l.peer === 'string'));
  });

  it('pushes only EDS when only a WorkloadEntry address changes', async () => {
    const client = productpage;
    const mark = client.responses.length;
    const { snapshot, event } = await publishAndConverge(mesh({ reviewsV2Address: '10.0.0.3' }));
    const pushed = client.responses.slice(mark);
    assert.deepEqual(typesOf(pushed), [EDS], `expected one EDS response, got ${typesOf(pushed).join(', ')}`);
    assert.equal(pushed[0].version, snapshot.version);
    assert.match(JSON.stringify(client.accepted(EDS).get(REVIEWS_V2)), /10\.0\.0\.3/);
    // Incremental EDS: the response carries only the assignments that changed (reviews and its v2
    // subset), and the proxy keeps the others it holds.
    assert.deepEqual([...pushed[0].names].sort(), [`outbound|9080||${REVIEWS}`, REVIEWS_V2].sort());
    assert.ok(client.accepted(EDS).has(REVIEWS_V1) && client.accepted(EDS).has(`outbound|9080||ratings.default.svc.cluster.local`));
    assert.equal(typeStatus(harness, productpageNode.id, EDS).resourcesSent, 2);
    assert.equal(event.pushed, 1);
    // Nothing left unanswered, and the other types stay ACKed at their older version.
    assert.equal(statusOf(harness, productpageNode.id).state, 'SYNCED');
    assert.equal(typeStatus(harness, productpageNode.id, CDS).versionAcked, 'v1');
    assert.ok((await metricValue(harness.metrics, 'pilot_proxy_convergence_time')) >= 1, 'no convergence time observed');
  });

  it('does not push to proxies whose config did not change', async () => {
    const inventory = connect({ node: inventoryNode });
    await synced(inventory, harness.server.servedSnapshot!.version);
    // The inventory team's Sidecar limits it to its own namespace: no reviews anywhere.
    assert.ok(![...inventory.accepted(CDS).keys()].some((n) => n.includes(REVIEWS)), 'Sidecar egress scoping not applied');

    // A change to the reviews route reaches productpage only.
    let marks = [productpage.responses.length, inventory.responses.length];
    const routeChange = await publishAndConverge(mesh({ reviewsV2Address: '10.0.0.3', weights: [90, 10] }));
    assert.deepEqual(typesOf(productpage.responses.slice(marks[0])), [RDS]);
    assert.deepEqual(typesOf(inventory.responses.slice(marks[1])), []);
    assert.equal(routeChange.event.pushed, 1);
    assert.equal(routeChange.event.unchanged, 1);

    // A change bound only to the ingress gateway reaches no sidecar at all.
    marks = [productpage.responses.length, inventory.responses.length];
    const gatewayChange = await publishAndConverge(mesh({ reviewsV2Address: '10.0.0.3', weights: [90, 10], gatewayRouteTimeout: '3s' }));
    assert.deepEqual(typesOf(productpage.responses.slice(marks[0])), []);
    assert.deepEqual(typesOf(inventory.responses.slice(marks[1])), []);
    assert.equal(gatewayChange.event.pushed, 0);
    assert.equal(gatewayChange.event.unchanged, 2);
    // Both are nevertheless recorded as evaluated against the new snapshot.
    assert.equal(statusOf(harness, inventoryNode.id).snapshotVersion, gatewayChange.snapshot.version);
    inventory.close();
  });

  it('merges a burst of 100 publishes into one push of the latest snapshot', async () => {
    const client = productpage;
    await harness.server.waitForConvergence({ timeoutMs: 5000 });
    const burst = Array.from({ length: 100 }, (_, i) => snapshots.next(mesh({ reviewsV2Address: '10.0.0.3', weights: [99 - (i % 50), 1 + (i % 50)] })));
    const last = burst[burst.length - 1];
    const cycles: SnapshotPushedEvent[] = [];
    const onCycle = (e: SnapshotPushedEvent) => cycles.push(e);
    harness.server.events.on('snapshot', onCycle);
    const mark = client.responses.length;
    try {
      for (const s of burst) harness.server.publish(s);
      await waitFor(() => cycles.some((c) => c.version === last.version), { timeoutMs: 5000, message: 'burst never pushed' });
      await harness.server.waitForConvergence({ version: last.version, timeoutMs: 5000 });
    } finally {
      harness.server.events.off('snapshot', onCycle);
    }
    assert.equal(cycles.length, 1, `push cycles: ${cycles.map((c) => c.version).join(', ')}`);
    assert.equal(cycles[0].merged, 100);
    const pushed = client.responses.slice(mark);
    assert.deepEqual(typesOf(pushed), [RDS], `responses after the burst: ${pushed.map((r) => `${r.typeUrl}@${r.version}`).join(', ')}`);
    assert.equal(pushed[0].version, last.version);
  });

  it('bounds the push delay under constant churn by debounceMaxMs', async (t: TestContext) => {
    const churn = await startAdsHarness({ initial: snapshots.next(mesh()), debounceAfterMs: 100, debounceMaxMs: 300 });
    t.after(() => churn.close());
    const cycles: number[] = [];
    churn.server.events.on('snapshot', () => cycles.push(Date.now()));
    const started = Date.now();
    const ready = Array.from({ length: 25 }, (_, i) => snapshots.next(mesh({ weights: [90 - i, 10 + i] })));
    // A publish every 40ms (inside the 100ms quiet period) for a second.
    for (const s of ready) {
      churn.server.publish(s);
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
    const churnEnded = Date.now();
    await waitFor(() => churn.server.servedSnapshot?.version === ready[ready.length - 1].version, { message: 'last churn snapshot never served' });
    const duringChurn = cycles.filter((at) => at <= churnEnded);
    assert.ok(duringChurn.length >= 2, `only ${duringChurn.length} pushes during ${churnEnded - started}ms of churn`);
    assert.ok(cycles.length <= 8, `${cycles.length} pushes for 25 publishes: debouncing is not merging`);
  });

  it('records a NACK with its error detail, keeps the last good version, and resends only on change', async () => {
    const client = productpage;
    const proxy = productpageNode.id;
    const goodRds = typeStatus(harness, proxy, RDS).versionAcked;
    client.nackNext(RDS, 'route reviews: unsupported field "typed_per_filter_config.x"');
    const rejected = await publishAndConverge(mesh({ reviewsV2Address: '10.0.0.3', weights: [55, 45] }));

    const rds = typeStatus(harness, proxy, RDS);
    assert.equal(rds.state, 'NACK');
    assert.equal(rds.versionSent, rejected.snapshot.version);
    assert.equal(rds.versionAcked, goodRds, 'the last good version must stay the acked one');
    assert.equal(rds.lastNack?.version, rejected.snapshot.version);
    assert.match(rds.lastNack?.message ?? '', /unsupported field "typed_per_filter_config\.x"/);
    assert.equal(statusOf(harness, proxy).state, 'NACK');
    assert.equal(await metricValue(harness.metrics, 'pilot_total_xds_rejects', { type: 'rds' }), 1);
    const nackLog = harness.logsOf('xds.nack').at(-1);
    assert.equal(nackLog?.proxy, proxy);
    assert.equal(nackLog?.type, 'RDS');
    assert.match(String(nackLog?.error), /typed_per_filter_config/);

    // The server keeps serving: an endpoint change is pushed, and the rejected routes are not resent.
    let mark = client.responses.length;
    const endpointsOnly = await publishAndConverge(mesh({ reviewsV2Address: '10.0.0.4', weights: [55, 45] }));
    assert.deepEqual(typesOf(client.responses.slice(mark)), [EDS]);
    assert.equal(typeStatus(harness, proxy, EDS).versionAcked, endpointsOnly.snapshot.version);
    assert.equal(typeStatus(harness, proxy, RDS).state, 'NACK');

    // Changed routes are sent again, ACKed, and the proxy is back in sync.
    mark = client.responses.length;
    const fixed = await publishAndConverge(mesh({ reviewsV2Address: '10.0.0.4', weights: [60, 40] }));
    assert.deepEqual(typesOf(client.responses.slice(mark)), [RDS]);
    assert.equal(typeStatus(harness, proxy, RDS).state, 'SYNCED');
    assert.equal(typeStatus(harness, proxy, RDS).versionAcked, fixed.snapshot.version);
    assert.equal(typeStatus(harness, proxy, RDS).lastNack?.version, rejected.snapshot.version, 'the NACK stays on record');
  });

  it('serves the full config again when a proxy reconnects', async () => {
    const first = productpage;
    const version = harness.server.servedSnapshot!.version;
    await harness.server.waitForConvergence({ version, timeoutMs: 5000 });
    const before = harness.server.connectedProxies;
    first.close();
    await waitFor(() => harness.server.connectedProxies === before - 1, { message: 'server never saw the disconnect' });
    assert.ok(harness.logsOf('xds.disconnect').some((l) => l.proxy === productpageNode.id));

    // Envoy resumes with the version it runs (version_info set, no nonce on the new stream).
    const again = connect({ node: productpageNode, initialVersionInfo: version });
    productpage = again;
    await synced(again, version);
    assert.deepEqual(new Set(typesOf(again.responses)), new Set(ALL_TYPES));
    assert.deepEqual([...again.accepted(CDS).keys()], [...first.accepted(CDS).keys()]);
    assert.deepEqual([...again.accepted(EDS).keys()].sort(), [...first.accepted(EDS).keys()].sort());
    await waitFor(() => statusOf(harness, productpageNode.id).state === 'SYNCED', { message: 'reconnected proxy not SYNCED' });
  });

  it('sends only the requested names for EDS, RDS and named LDS subscriptions', async () => {
    const version = harness.server.servedSnapshot!.version;
    const client = connect({ node: { id: sidecarNodeId('10.9.0.1', 'picky'), metadata: { NAMESPACE: 'default' } }, followDependencies: false });
    const id = sidecarNodeId('10.9.0.1', 'picky');

    client.subscribe(CDS, []);
    const cds = await client.waitForResponse((r) => r.typeUrl === CDS);
    assert.ok(cds.names.includes(REVIEWS_V1) && cds.names.length > 2, 'wildcard CDS must carry every cluster');

    client.subscribe(EDS, [REVIEWS_V1]);
    const one = await client.waitForResponse((r) => r.typeUrl === EDS);
    assert.deepEqual(one.names, [REVIEWS_V1]);

    // Widening the subscription (sent as an ACK carrying the new names) is answered at once.
    const mark = client.responses.length;
    client.subscribe(EDS, [REVIEWS_V1, REVIEWS_V2, 'outbound|9080||does-not-exist.default.svc.cluster.local']);
    const two = await client.waitForResponse((r) => r.typeUrl === EDS, { from: mark });
    assert.deepEqual(two.names, [REVIEWS_V1, REVIEWS_V2], 'unknown names are left out');
    assert.equal(two.version, version);

    // Narrowing a non-wildcard subscription needs no response.
    const beforeNarrow = client.responses.length;
    client.subscribe(EDS, [REVIEWS_V2]);
    await waitFor(() => typeStatus(harness, id, EDS).resourceNames.length === 1, { message: 'narrowed EDS subscription not recorded' });
    assert.equal(client.responses.length, beforeNarrow);

    // Route configurations by name.
    const routeNames = [...productpage.accepted(RDS).keys()];
    assert.ok(routeNames.length > 0, 'no route names known from the reconnected proxy');
    client.subscribe(RDS, [routeNames[0]]);
    const rds = await client.waitForResponse((r) => r.typeUrl === RDS);
    assert.deepEqual(rds.names, [routeNames[0]]);

    // Listeners by name, as a proxyless gRPC client asks for them.
    const listenerNames = [...productpage.accepted(LDS).keys()];
    client.subscribe(LDS, [listenerNames[0]]);
    const lds = await client.waitForResponse((r) => r.typeUrl === LDS);
    assert.deepEqual(lds.names, [listenerNames[0]]);

    // A client that named listeners and then sends an empty list unsubscribed: it is not a wildcard.
    const beforeEmpty = client.responses.length;
    client.subscribe(LDS, []);
    await waitFor(() => typeStatus(harness, id, LDS).resourceNames.length === 0, { message: 'emptied LDS subscription not recorded' });
    assert.equal(client.responses.length, beforeEmpty, 'an emptied named subscription must not turn into a wildcard push');

    // An empty EDS list unsubscribes.
    client.subscribe(EDS, []);
    await waitFor(() => !statusOf(harness, id).types.some((t) => t.typeUrl === EDS), { message: 'EDS unsubscribe not applied' });
    client.close();
  });

  it('rejects a stream whose first request has no usable node', async () => {
    const noType = connect({ node: { id: 'just-a-name' } });
    await waitFor(() => noType.streamError, { message: 'stream with a bad node id was not rejected' });
    assert.equal((noType.streamError as { code?: number }).code, 3 /* INVALID_ARGUMENT */);
    assert.match(noType.streamError!.message, /just-a-name/);
    assert.ok(harness.logsOf('xds.connect_rejected').length >= 1);
  });

  it('ends every stream on close and refuses further publishes', async () => {
    const closing = await startAdsHarness({ initial: snapshots.next(mesh()) });
    const client = new AdsTestClient({ address: closing.address, node: productpageNode });
    client.on('error', () => {});
    let ended = false;
    client.on('end', () => (ended = true));
    try {
      await synced(client, closing.server.servedSnapshot!.version);
      await closing.server.close();
      await waitFor(() => ended || client.streamError, { message: 'client stream still open after close()' });
      assert.equal(closing.server.connectedProxies, 0);
      assert.equal(await metricValue(closing.metrics, 'pilot_xds'), 0);
      assert.throws(() => closing.server.publish(snapshots.next(mesh())), /closed/);
    } finally {
      client.close();
      await closing.close();
    }
  });

  it('brings 200 concurrent proxies to the same config, and pushes a change to all of them', async (t: TestContext) => {
    const scale = await startAdsHarness({ initial: snapshots.next(mesh()), debounceAfterMs: 20, debounceMaxMs: 200 });
    const many: AdsTestClient[] = [];
    t.after(async () => {
      for (const c of many) c.close();
      await scale.close();
    });
    const version = scale.server.servedSnapshot!.version;
    const started = performance.now();
    for (let i = 0; i < 200; i++) {
      const ip = `10.20.${Math.floor(i / 250)}.${(i % 250) + 1}`;
      const client = new AdsTestClient({ address: scale.address, node: { id: sidecarNodeId(ip, `load-${i}`), metadata: { NAMESPACE: 'default' } } });
      client.on('error', () => {});
      many.push(client);
    }
    await waitFor(() => many.every((c) => c.hasAccepted(version, ALL_TYPES)), {
      timeoutMs: 60_000,
      intervalMs: 50,
      message: () => `${many.filter((c) => c.hasAccepted(version, ALL_TYPES)).length}/200 proxies synced`,
    });
    const connectMs = performance.now() - started;
    assert.equal(await metricValue(scale.metrics, 'pilot_xds'), 200);

    const change = snapshots.next(mesh({ weights: [70, 30] }));
    const publishedAt = performance.now();
    scale.server.publish(change);
    await scale.server.waitForConvergence({ version: change.version, minProxies: 200, timeoutMs: 60_000 });
    const pushMs = performance.now() - publishedAt;
    assert.ok(many.every((c) => c.acceptedVersion(RDS) === change.version));
    assert.ok(many.every((c) => c.responsesOf(CDS).length === 1), 'a route change must not resend clusters');
    assert.ok(scale.server.syncStatus().every((s) => s.state === 'SYNCED'));
    const cache = scale.server.cacheStats();
    t.diagnostic(
      `200 proxies: initial sync ${connectMs.toFixed(0)}ms; route change publish->all ACKed ${pushMs.toFixed(0)}ms ` +
        `(debounce 20ms); encode cache ${cache.encoding.hits} hits / ${cache.encoding.misses} misses`,
    );
  });
});
