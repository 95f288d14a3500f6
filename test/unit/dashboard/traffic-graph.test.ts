// From scrapes to the graph: deltas between collection rounds, counter resets, Kiali's rule for
// which reporter counts, per-edge rate / error share / p50 / p99 / mTLS, traffic splits, and the
// left-to-right layout of Bookinfo.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { extractIstioTraffic } from '../../../src/dashboard/istio-traffic';
import { parsePrometheusText } from '../../../src/dashboard/prometheus-text';
import type { ProxyHealth } from '../../../src/dashboard/proxy-health';
import { buildServiceGraph, type MeshProxy, type ServiceGraph } from '../../../src/dashboard/service-graph';
import { sumTicks, TrafficHistory, type TargetScrape } from '../../../src/dashboard/traffic-history';
import { istioExposition, type EdgeSpec } from './istio-exposition';

const synced: ProxyHealth = { state: 'SYNCED', nacks: [], unhealthy: false };

function sidecar(workload: string, health: ProxyHealth = synced): MeshProxy {
  const [app, version] = [workload.replace(/-v\d+$/, ''), /-(v\d+)$/.exec(workload)?.[1] ?? ''];
  return { id: `sidecar~${workload}`, type: 'sidecar', namespace: 'default', workload, labels: { app, version }, health };
}

const gateway: MeshProxy = { id: 'router~gw', type: 'router', namespace: 'istio-system', workload: 'istio-ingressgateway', labels: { app: 'istio-ingressgateway' }, health: synced };

function scrape(target: string, edges: EdgeSpec[]): TargetScrape {
  return { target, edges: extractIstioTraffic(parsePrometheusText(istioExposition(edges))) };
}

function graphOf(history: TrafficHistory, proxies: MeshProxy[], windowMs = 60_000, now = Date.now()): ServiceGraph {
  return buildServiceGraph({
    window: sumTicks(history.ticksWithin(windowMs, now)),
    history: sumTicks(history.all()),
    proxies,
    windowSeconds: windowMs / 1000,
    now,
  });
}

const edge = (g: ServiceGraph, from: string, to: string) => {
  const found = g.edges.find((e) => e.id === `default/${from}->default/${to}` || e.id.endsWith(`/${from}->default/${to}`));
  assert.ok(found, `no edge ${from} -> ${to}; edges: ${g.edges.map((e) => e.id).join(', ')}`);
  return found;
};

describe('traffic history and the service graph', () => {
  const t0 = 1_700_000_000_000;
  const targets = new Set(['pp', 'rv1', 'rv3']);

  it('computes rate, error share, p50/p99 and mTLS per edge from the growth between two rounds', () => {
    const history = new TrafficHistory();
    // First round: a baseline only (those counters hold traffic from before anyone watched).
    assert.equal(
      history.recordRound(t0, [scrape('rv1', [{ reporter: 'destination', from: 'productpage-v1', to: 'reviews-v1', codes: { '200': 1000 }, durations: [0, 1000, 1000, 1000, 1000, 1000, 1000], mtls: true }])], targets),
      undefined,
    );
    // 5 s later: 50 more requests, 5 of them 503, all between 10 and 25 ms.
    const tick = history.recordRound(
      t0 + 5000,
      [scrape('rv1', [{ reporter: 'destination', from: 'productpage-v1', to: 'reviews-v1', codes: { '200': 1045, '503': 5 }, durations: [0, 1000, 1000, 1050, 1050, 1050, 1050], mtls: true }])],
      targets,
    );
    assert.equal(tick?.seconds, 5);
    const g = graphOf(history, [sidecar('productpage-v1'), sidecar('reviews-v1')], 60_000, t0 + 5000);
    const e = edge(g, 'productpage-v1', 'reviews-v1');
    assert.equal(e.numbers.requests, 50);
    assert.equal(e.numbers.rps, 10);
    assert.equal(e.numbers.errorRate, 0.1);
    assert.deepEqual(e.numbers.codes, { '200': 9, '503': 1 });
    assert.equal(e.numbers.p50, 17.5); // 10 + 15 * 25/50
    assert.equal(e.numbers.p99, 24.85); // 10 + 15 * 49.5/50
    assert.equal(e.numbers.mtlsShare, 1);
    assert.equal(e.idle, false);
    const reviews = g.nodes.find((n) => n.name === 'reviews-v1')!;
    assert.equal(reviews.health, 'failure');
    assert.equal(reviews.inbound.rps, 10);
    assert.deepEqual(reviews.services, ['reviews.default.svc.cluster.local']);
  });

  it('treats a counter that went down as a proxy restart: what it reports now is new traffic', () => {
    const history = new TrafficHistory();
    const at = (n: number) => scrape('rv1', [{ reporter: 'destination', from: 'productpage-v1', to: 'reviews-v1', codes: { '200': n } }]);
    history.recordRound(t0, [at(500)], targets);
    history.recordRound(t0 + 5000, [at(520)], targets);
    history.recordRound(t0 + 10_000, [at(7)], targets);
    assert.deepEqual(
      history.all().map((t) => [...t.edges.values()].reduce((sum, s) => sum + s.traffic.requests, 0)),
      [20, 7],
    );
  });

  it('counts a series that appears on a known proxy in full, and a new proxy only from its second scrape', () => {
    const history = new TrafficHistory();
    const rv1 = (n: number) => ({ reporter: 'destination' as const, from: 'productpage-v1', to: 'reviews-v1', codes: { '200': n } });
    const rv3 = (n: number) => ({ reporter: 'destination' as const, from: 'productpage-v1', to: 'reviews-v3', codes: { '200': n } });
    history.recordRound(t0, [scrape('rv1', [rv1(10)])], targets);
    history.recordRound(t0 + 5000, [scrape('rv1', [rv1(10), { ...rv1(0), from: 'unknown', codes: { '200': 4 } }]), scrape('rv3', [rv3(100)])], targets);
    const g = graphOf(history, [sidecar('productpage-v1'), sidecar('reviews-v1'), sidecar('reviews-v3')], 60_000, t0 + 5000);
    assert.equal(g.edges.find((e) => e.id === 'unknown->default/reviews-v1')?.numbers.requests, 4);
    assert.equal(g.edges.some((e) => e.target === 'default/reviews-v3'), false);
  });

  it("counts the destination's report, and the source's only for an unmeshed callee or a request that never arrived", () => {
    const history = new TrafficHistory();
    const round = (n: number) => [
      scrape('pp', [
        // productpage's own (source) view of calls reviews-v1 also reports: must not double.
        { reporter: 'source', from: 'productpage-v1', to: 'reviews-v1', codes: { '200': 10 * n } },
        // a fault-injected abort at the source: reviews never saw these.
        { reporter: 'source', from: 'productpage-v1', to: 'reviews-v1', codes: { '500': 2 * n }, flags: 'FI' },
        // an external host without a proxy: only the source can tell.
        { reporter: 'source', from: 'productpage-v1', to: 'unknown', service: 'api.example.com', codes: { '200': 3 * n } },
      ]),
      scrape('rv1', [{ reporter: 'destination', from: 'productpage-v1', to: 'reviews-v1', codes: { '200': 10 * n }, mtls: true }]),
    ];
    history.recordRound(t0, round(1), targets);
    history.recordRound(t0 + 5000, round(2), targets);
    const g = graphOf(history, [sidecar('productpage-v1'), sidecar('reviews-v1')], 60_000, t0 + 5000);
    const toReviews = edge(g, 'productpage-v1', 'reviews-v1');
    assert.equal(toReviews.numbers.requests, 12);
    assert.equal(toReviews.numbers.errorRate, Math.round((2 / 12) * 10000) / 10000);
    // mTLS share is the destination's word: the aborted requests never had a connection.
    assert.equal(toReviews.numbers.mtlsShare, 1);
    const external = g.edges.find((e) => e.target === 'service:/api.example.com');
    assert.equal(external?.numbers.requests, 3);
    assert.equal(g.nodes.find((n) => n.id === 'service:/api.example.com')?.kind, 'service');
  });

  it('shows a traffic shift: the share of each version, and edges that stopped as idle with zero rate', () => {
    const history = new TrafficHistory();
    const reviews = (v1: number, v3: number) => [
      scrape('rv1', [{ reporter: 'destination', from: 'productpage-v1', to: 'reviews-v1', codes: { '200': v1 } }]),
      scrape('rv3', [{ reporter: 'destination', from: 'productpage-v1', to: 'reviews-v3', codes: { '200': v3 } }]),
    ];
    history.recordRound(t0, reviews(0, 0), targets);
    history.recordRound(t0 + 5000, reviews(30, 10), targets);
    const proxies = [sidecar('productpage-v1'), sidecar('reviews-v1'), sidecar('reviews-v3')];
    const before = graphOf(history, proxies, 60_000, t0 + 5000);
    assert.equal(edge(before, 'productpage-v1', 'reviews-v1').serviceShare, 0.75);
    assert.equal(edge(before, 'productpage-v1', 'reviews-v3').serviceShare, 0.25);
    // All traffic to v3 from now on.
    for (let i = 2; i <= 4; i++) history.recordRound(t0 + i * 5000, reviews(30, 10 + (i - 1) * 40), targets);
    const after = graphOf(history, proxies, 10_000, t0 + 20_000);
    const v1 = edge(after, 'productpage-v1', 'reviews-v1');
    assert.equal(v1.idle, true);
    assert.equal(v1.numbers.rps, 0);
    const v3 = edge(after, 'productpage-v1', 'reviews-v3');
    assert.equal(v3.serviceShare, 1);
    assert.equal(v3.numbers.rps, 8);
  });

  it('lays Bookinfo out left to right, versions of an app in one column, and marks proxies out of sync', () => {
    const history = new TrafficHistory();
    const round = (n: number) => [
      scrape('pp', [{ reporter: 'destination', from: 'istio-ingressgateway', to: 'productpage-v1', codes: { '200': 10 * n } }]),
      scrape('d', [{ reporter: 'destination', from: 'productpage-v1', to: 'details-v1', codes: { '200': 10 * n } }]),
      ...['reviews-v1', 'reviews-v2', 'reviews-v3'].map((r) => scrape(r, [{ reporter: 'destination', from: 'productpage-v1', to: r, codes: { '200': 3 * n } }])),
      ...['reviews-v2', 'reviews-v3'].map((r) => scrape(`${r}-out`, [{ reporter: 'destination', from: r, to: 'ratings-v1', codes: { '200': 3 * n } }])),
    ];
    const live = new Set(['pp', 'd', 'reviews-v1', 'reviews-v2', 'reviews-v3', 'reviews-v2-out', 'reviews-v3-out']);
    history.recordRound(t0, round(1), live);
    history.recordRound(t0 + 5000, round(2), live);
    const nack: ProxyHealth = { state: 'NACK', nacks: ['LDS v3: bad listener'], unhealthy: true };
    const proxies = [gateway, ...['productpage-v1', 'details-v1', 'reviews-v1', 'reviews-v2', 'ratings-v1'].map((w) => sidecar(w)), sidecar('reviews-v3', nack)];
    const g = graphOf(history, proxies, 60_000, t0 + 5000);
    const node = (name: string) => g.nodes.find((n) => n.name === name)!;
    assert.equal(node('istio-ingressgateway').gateway, true);
    assert.deepEqual(
      ['istio-ingressgateway', 'productpage-v1', 'details-v1', 'reviews-v1', 'reviews-v2', 'reviews-v3', 'ratings-v1'].map((n) => node(n).layer),
      [0, 1, 2, 2, 2, 2, 3],
    );
    assert.ok(node('productpage-v1').x > node('istio-ingressgateway').x && node('reviews-v1').x > node('productpage-v1').x && node('ratings-v1').x > node('reviews-v1').x);
    // The three reviews versions sit next to each other, in version order.
    const column = g.nodes.filter((n) => n.layer === 2).sort((a, b) => a.y - b.y).map((n) => n.name);
    const at = column.indexOf('reviews-v1');
    assert.deepEqual(column.slice(at, at + 3), ['reviews-v1', 'reviews-v2', 'reviews-v3']);
    assert.deepEqual(g.groups.find((gr) => gr.app === 'reviews')?.nodes.sort(), ['default/reviews-v1', 'default/reviews-v2', 'default/reviews-v3']);
    assert.equal(node('reviews-v3').proxy?.state, 'NACK');
    assert.equal(node('reviews-v3').proxy?.unhealthy, true);
    assert.equal(node('ratings-v1').inbound.rps, 1.2);
  });
});
