// Retries bounded so they cannot amplify an outage: the retry circuit breaker (max_retries),
// Envoy's retry_budget in its place when configured, and overflows never retried.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileCluster } from '../../../src/proxy/config/cluster';
import { compileRetryPolicy } from '../../../src/proxy/config/route-config';
import type { Json } from '../../../src/proxy/config/validation';
import { Problems } from '../../../src/proxy/config/validation';
import { retriableFailure } from '../../../src/proxy/http/forwarder';
import { UpstreamCluster } from '../../../src/proxy/upstream/upstream-cluster';
import { UpstreamFailure } from '../../../src/proxy/upstream/upstream-call';
import { cds } from './wire';

function cluster(thresholds: Json): UpstreamCluster {
  const r = compileCluster(cds({ name: 'c', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } }, circuit_breakers: { thresholds: [thresholds] } }), 'v1');
  if (!r.valid) assert.fail(r.errors.join('\n'));
  return new UpstreamCluster(r.result);
}

describe('retry limits', () => {
  it('max_retries caps retries in flight across the cluster', () => {
    const c = cluster({ max_retries: 2 });
    assert.equal(c.canRetry(), true);
    c.counters.activeRetries = 2;
    assert.equal(c.canRetry(), false);
    assert.equal(c.counters.gauges()['circuit_breakers.default.rq_retry_open'], 1);
    c.close();
  });

  it("retry_budget: a share of active and pending requests, never under min_retry_concurrency (Envoy's 20% / 3)", () => {
    const c = cluster({ retry_budget: {} });
    assert.equal(c.counters.maxActiveRetries(), 3);
    c.counters.requests = 40;
    c.counters.pendingRequests = 10;
    assert.equal(c.counters.maxActiveRetries(), 10);
    const tight = cluster({ retry_budget: { budget_percent: { value: 50 }, min_retry_concurrency: 1 } });
    tight.counters.requests = 3;
    assert.equal(tight.counters.maxActiveRetries(), 1);
    tight.counters.requests = 8;
    assert.equal(tight.counters.maxActiveRetries(), 4);
    c.close();
    tight.close();
  });

  it('a circuit breaker overflow is never retried, whatever retry_on says', () => {
    const problems = new Problems('test');
    const policy = compileRetryPolicy({ retry_on: '5xx,reset,connect-failure,retriable-status-codes', num_retries: 3 }, problems, 'retry_policy');
    assert.deepEqual(problems.errors, []);
    assert.equal(retriableFailure(policy, new UpstreamFailure('overflow', 'max_pending_requests', true)), false);
    assert.equal(retriableFailure(policy, new UpstreamFailure('connection-termination', 'reset', true)), true);
  });
});
