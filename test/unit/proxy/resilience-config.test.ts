// The Weft proxy takes everything the translator emits for DestinationRule traffic policies (the
// resilience-* golden outputs, through the protobuf codec): circuit breakers, retry budgets, TCP
// keep-alive, connection lifetime, HTTP/2 streams, outlier detection with success rate and failure
// percentage, locality priorities and weights, retry priorities — none of it NACKed.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { compileCluster } from '../../../src/proxy/config/cluster';
import { compileLoadAssignment } from '../../../src/proxy/config/endpoints';
import type { CompiledCluster } from '../../../src/proxy/config/model';
import { compileRouteConfig } from '../../../src/proxy/config/route-config';
import type { Json } from '../../../src/proxy/config/validation';
import { TypeUrl } from '../../../src/xds/protos';
import { cds, eds, rds } from './wire';

const GOLDEN = path.resolve(__dirname, '../../../../test/unit/translate/golden');

function golden(name: string): Record<string, Record<string, Json>> {
  return JSON.parse(fs.readFileSync(path.join(GOLDEN, name, 'out.json'), 'utf8'));
}

function compiledClusters(name: string): Map<string, CompiledCluster> {
  const out = new Map<string, CompiledCluster>();
  for (const [clusterName, raw] of Object.entries(golden(name)[TypeUrl.Cluster])) {
    const r = compileCluster(cds(raw), 'v1');
    if (!r.valid) assert.fail(`${clusterName}: ${r.errors.join('\n')}`);
    out.set(clusterName, r.result);
  }
  return out;
}

describe('the proxy accepts the translator’s traffic policies', () => {
  it('circuit breakers, keep-alive, connection lifetime and HTTP/2 options (resilience-connection-pool)', () => {
    const clusters = compiledClusters('resilience-connection-pool');
    const httpbin = clusters.get('outbound|8000||httpbin.default.svc.cluster.local')!;
    assert.deepEqual(
      { ...httpbin.thresholds },
      { maxConnections: 1, maxPendingRequests: 1, maxRequests: 4294967295, maxRetries: 2, trackRemaining: true },
    );
    assert.equal(httpbin.connectTimeoutMs, 250);
    assert.equal(httpbin.maxRequestsPerConnection, 1);
    assert.equal(httpbin.maxConnectionDurationMs, 600_000);
    assert.equal(httpbin.idleTimeoutMs, 120_000);
    assert.deepEqual({ ...httpbin.tcpKeepalive }, { probes: 3, timeSeconds: 600, intervalSeconds: 30 });
    assert.equal(httpbin.outlierDetection?.consecutive5xx, 1);
    assert.equal(httpbin.outlierDetection?.baseEjectionTimeMs, 180_000);
    assert.equal(httpbin.outlierDetection?.maxEjectionPercent, 100);
    assert.equal(httpbin.outlierDetection?.enforcingSuccessRate, 0, 'Istio turns success-rate ejection off');
    assert.equal(httpbin.healthyPanicThreshold, 0, 'minHealthPercent 0: no panic');
    const v2 = clusters.get('outbound|8000|v2|httpbin.default.svc.cluster.local')!;
    assert.equal(v2.protocol, 'http2', 'h2UpgradePolicy UPGRADE');
    assert.equal(v2.maxConcurrentStreams, 16);
    assert.equal(v2.thresholds.maxPendingRequests, 5);
    assert.equal(v2.outlierDetection?.consecutive5xx, 1, 'the subset inherits outlier detection');
    const admin = clusters.get('outbound|8001||httpbin.default.svc.cluster.local')!;
    assert.equal(admin.thresholds.maxRequests, 10);
    assert.equal(admin.outlierDetection, undefined, 'port-level settings replace outlier detection too');
    const grpc = clusters.get('outbound|9090||echo.default.svc.cluster.local')!;
    assert.equal(grpc.protocol, 'http2');
    assert.equal(grpc.maxConcurrentStreams, 32);
    assert.equal(grpc.outlierDetection?.splitExternalLocalOriginErrors, true);
    assert.equal(grpc.outlierDetection?.consecutiveLocalOriginFailure, 2);
    assert.equal(grpc.healthyPanicThreshold, 50);
    assert.equal(clusters.get('outbound|9091||echo.default.svc.cluster.local')!.protocol, 'downstream', 'useClientProtocol');
  });

  it('retry policies: retry_on, per-try timeout, backoff, previous hosts and priorities', () => {
    for (const [name, raw] of Object.entries(golden('resilience-connection-pool')[TypeUrl.RouteConfiguration])) {
      const r = compileRouteConfig(rds(raw), 'v1');
      if (!r.valid) assert.fail(`${name}: ${r.errors.join('\n')}`);
      if (name !== '8000') continue;
      const vh = r.result.virtualHosts.find((v) => v.domains.includes('httpbin'))!;
      const [status, rest] = vh.routes.map((route) => (route.action.kind === 'forward' ? route.action.retry : undefined));
      assert.equal(status?.numRetries, 3);
      assert.equal(status?.perTryTimeoutMs, 500);
      assert.deepEqual([...status!.on].sort(), ['connect-failure', 'gateway-error', 'refused-stream', 'reset', 'retriable-status-codes']);
      assert.deepEqual([...status!.retriableStatusCodes], [409]);
      assert.equal(status?.avoidPreviousHosts, true);
      assert.equal(status?.avoidPreviousPriorities, true, 'retryRemoteLocalities');
      assert.equal(rest?.backoffBaseMs, 50);
      assert.equal(rest?.backoffMaxMs, 500);
      assert.equal(rest?.avoidPreviousHosts, false, 'retryIgnorePreviousHosts: false');
    }
  });

  it('locality priorities and weights (resilience-locality)', () => {
    const out = golden('resilience-locality');
    const clusters = compiledClusters('resilience-locality');
    assert.equal(clusters.get('outbound|9004||distribute.default.svc.cluster.local')!.localityWeighted, true);
    assert.equal(clusters.get('outbound|9001||failover-default.default.svc.cluster.local')!.localityWeighted, false);
    const endpoints = (name: string) => {
      const r = compileLoadAssignment(eds(out[TypeUrl.ClusterLoadAssignment][name]), 'v1');
      if (!r.valid) assert.fail(r.errors.join('\n'));
      return Object.fromEntries(r.result.endpoints.map((e) => [e.address, { priority: e.priority, weight: e.localityWeight }]));
    };
    assert.deepEqual(endpoints('outbound|9001||failover-default.default.svc.cluster.local'), {
      '127.0.50.11': { priority: 0, weight: 1 },
      '127.0.50.12': { priority: 1, weight: 1 },
      '127.0.50.13': { priority: 2, weight: 2 },
      '127.0.50.14': { priority: 3, weight: 1 },
      '127.0.50.15': { priority: 3, weight: 1 },
    });
    assert.equal(endpoints('outbound|9002||failover-explicit.default.svc.cluster.local')['127.0.50.14'].priority, 4, 'failover names eu-west, not us-west');
    assert.deepEqual(endpoints('outbound|9004||distribute.default.svc.cluster.local'), {
      '127.0.50.11': { priority: 0, weight: 40 },
      '127.0.50.12': { priority: 0, weight: 40 },
      '127.0.50.14': { priority: 0, weight: 20 },
    });
  });
});
