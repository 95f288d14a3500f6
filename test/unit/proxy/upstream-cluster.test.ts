// A live cluster's host set: EDS health, priorities, Envoy's panic threshold, retries avoiding
// previous hosts, circuit breaker admission, and updates that keep unchanged hosts (and their
// connections).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileCluster } from '../../../src/proxy/config/cluster';
import type { CompiledCluster, CompiledEndpoint } from '../../../src/proxy/config/model';
import type { Json } from '../../../src/proxy/config/validation';
import { formatAccessLog, type RequestRecord } from '../../../src/proxy/access-log';
import { ClusterManager } from '../../../src/proxy/upstream/cluster-manager';
import { UpstreamCluster } from '../../../src/proxy/upstream/upstream-cluster';
import { parseClientHello, serverNameScore } from '../../../src/proxy/listener/tls-client-hello';
import { cds } from './wire';

function cluster(extra: Json = {}): CompiledCluster {
  const r = compileCluster(cds({ name: 'c', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } }, lb_policy: 'ROUND_ROBIN', ...extra }), 'v1');
  if (!r.valid) assert.fail(r.errors.join('\n'));
  return r.result;
}

const ep = (address: string, o: Partial<CompiledEndpoint> = {}): CompiledEndpoint => ({ address, port: 80, weight: 1, health: 'HEALTHY', priority: 0, ...o });

function picks(c: UpstreamCluster, n = 12): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i < n; i++) out.add(c.pickHost(undefined)!.address);
  return out;
}

describe('UpstreamCluster host selection', () => {
  it('skips hosts EDS reports unhealthy or draining', () => {
    const c = new UpstreamCluster(cluster());
    c.setEndpoints([ep('10.0.0.1'), ep('10.0.0.2', { health: 'UNHEALTHY' }), ep('10.0.0.3', { health: 'DRAINING' }), ep('10.0.0.4')], 'v1');
    assert.deepEqual([...picks(c)].sort(), ['10.0.0.1', '10.0.0.4']);
    c.close();
  });
  it('uses the lowest priority with healthy hosts, spilling to the next when it has none', () => {
    const c = new UpstreamCluster(cluster());
    c.setEndpoints([ep('10.0.0.1', { health: 'UNHEALTHY' }), ep('10.0.1.1', { priority: 1 })], 'v1');
    assert.deepEqual([...picks(c)], ['10.0.1.1']);
    c.close();
  });
  it("enters panic below Envoy's 50% healthy threshold (balances over every host)", () => {
    const c = new UpstreamCluster(cluster());
    c.setEndpoints([ep('10.0.0.1'), ep('10.0.0.2', { health: 'UNHEALTHY' }), ep('10.0.0.3', { health: 'UNHEALTHY' })], 'v1');
    assert.equal(picks(c, 30).size, 3);
    const noPanic = new UpstreamCluster(cluster({ common_lb_config: { healthy_panic_threshold: { value: 0 } } }));
    noPanic.setEndpoints([ep('10.0.0.1'), ep('10.0.0.2', { health: 'UNHEALTHY' }), ep('10.0.0.3', { health: 'UNHEALTHY' })], 'v1');
    assert.deepEqual([...picks(noPanic, 30)], ['10.0.0.1']);
    c.close();
    noPanic.close();
  });
  it('avoids hosts already tried when asked (previous_hosts)', () => {
    const c = new UpstreamCluster(cluster({ lb_policy: 'RANDOM' }));
    c.setEndpoints([ep('10.0.0.1'), ep('10.0.0.2'), ep('10.0.0.3')], 'v1');
    const tried = new Set([c.hosts[0], c.hosts[1]]);
    for (let i = 0; i < 20; i++) assert.equal(c.pickHost(undefined, tried, 5)!.address, '10.0.0.3');
    c.close();
  });
  it('keeps circuit breaker limits and counters (pools count against them; see connection-pool tests)', () => {
    const c = new UpstreamCluster(cluster({ circuit_breakers: { thresholds: [{ max_connections: 1, max_pending_requests: 1, max_requests: 5, max_retries: 2 }] } }));
    const r = c.counters;
    assert.equal(r.canOpenConnection(true), true);
    r.connections = 1;
    assert.equal(r.canOpenConnection(true), false);
    assert.equal(r.canOpenConnection(false), true, 'an endpoint with no connection may always open one');
    r.pendingRequests = 1;
    assert.equal(r.canQueueRequest(), false);
    r.requests = 5;
    assert.equal(r.canSendRequest(), false);
    r.activeRetries = 2;
    assert.equal(c.canRetry(), false);
    c.close();
  });
});

describe('ClusterManager updates', () => {
  it('keeps unchanged hosts (and their pools) across EDS and CDS updates, and carries stats', () => {
    const m = new ClusterManager();
    m.applyClusters(new Map([['c', cluster()]]));
    assert.equal(m.get('c')!.warmed, false, 'an EDS cluster warms until its endpoints arrive');
    m.applyAssignment({ clusterName: 'c', version: 'v1', endpoints: [ep('10.0.0.1'), ep('10.0.0.2')], raw: {} });
    const first = m.get('c')!;
    const host = first.hosts[0];
    first.stats.upstream_rq_total = 7;
    m.applyAssignment({ clusterName: 'c', version: 'v2', endpoints: [ep('10.0.0.1'), ep('10.0.0.3')], raw: {} });
    assert.equal(first.hosts[0], host, 'same host object after EDS');
    m.applyClusters(new Map([['c', cluster({ connect_timeout: '1s' })]]));
    const second = m.get('c')!;
    assert.notEqual(second, first);
    assert.equal(second.stats.upstream_rq_total, 7);
    assert.deepEqual(second.hosts.map((h) => h.address), ['10.0.0.1', '10.0.0.3'], 'endpoints survive a cluster update');
    assert.deepEqual(m.edsServiceNames(), ['c']);
    m.applyClusters(new Map());
    assert.equal(m.get('c'), undefined);
    m.close();
  });
});

describe('access log format', () => {
  it("renders Envoy's default format", () => {
    const record: RequestRecord = {
      startTime: Date.parse('2026-01-02T03:04:05.678Z'),
      durationMs: 12.4,
      listener: 'virtualOutbound',
      protocol: 'HTTP/1.1',
      method: 'GET',
      path: '/reviews/1',
      authority: 'reviews:9080',
      status: 503,
      flags: ['UF', 'URX'],
      details: 'x',
      attempts: 3,
      bytesReceived: 0,
      bytesSent: 91,
      requestId: 'id-1',
      userAgent: 'curl/8',
      upstreamHost: '127.0.0.1:9080',
      downstreamRemoteAddress: '127.0.0.1',
      downstreamLocalAddress: '127.0.0.1',
    };
    assert.equal(
      formatAccessLog(record),
      '[2026-01-02T03:04:05.678Z] "GET /reviews/1 HTTP/1.1" 503 UF,URX 0 91 12 - "-" "curl/8" "id-1" "reviews:9080" "127.0.0.1:9080"\n',
    );
  });
});

describe('TLS ClientHello inspection', () => {
  it('is not TLS when the first byte is not a handshake record', () => {
    assert.equal(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n')).kind, 'not-tls');
    assert.equal(parseClientHello(Buffer.from([0x16, 0x03])).kind, 'incomplete');
  });
  it('matches server names exactly first, then the longest wildcard', () => {
    assert.equal(serverNameScore([], 'a.example') , 0);
    assert.ok(serverNameScore(['a.example'], 'a.example') > serverNameScore(['*.example'], 'a.example'));
    assert.ok(serverNameScore(['*.b.example'], 'a.b.example') > serverNameScore(['*.example'], 'a.b.example'));
    assert.equal(serverNameScore(['*.example'], 'example'), -1);
    assert.equal(serverNameScore(['a.example'], undefined), -1);
  });
});
