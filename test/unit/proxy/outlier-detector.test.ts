// Envoy's outlier detection, driven by a test clock: consecutive 5xx / gateway / local-origin
// ejection, the max_ejection_percent rule (counting the host about to go), enforcement, ejection
// time growing with each ejection and shrinking while healthy, success-rate and
// failure-percentage ejection at the interval, and the stats Envoy keeps for them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileCluster } from '../../../src/proxy/config/cluster';
import type { CompiledCluster } from '../../../src/proxy/config/model';
import type { Json } from '../../../src/proxy/config/validation';
import { UpstreamCluster } from '../../../src/proxy/upstream/upstream-cluster';
import { cds } from './wire';

function cluster(outlier: Json, extra: Json = {}): CompiledCluster {
  const r = compileCluster(cds({ name: 'c', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } }, outlier_detection: outlier, ...extra }), 'v1');
  if (!r.valid) assert.fail(r.errors.join('\n'));
  return r.result;
}

/** A cluster of `n` hosts whose outlier detection runs on a clock the test moves. */
function world(outlier: Json, n = 3, extra: Json = {}) {
  let now = 1_000_000;
  const c = new UpstreamCluster(cluster(outlier, extra), undefined, () => 0.5, undefined, { now: () => now, runTimer: false });
  c.setEndpoints(
    Array.from({ length: n }, (_, i) => ({ address: `10.0.0.${i + 1}`, port: 80, weight: 1, health: 'HEALTHY' as const, priority: 0 })),
    'v1',
  );
  const od = c.outlierDetector!;
  return {
    c,
    hosts: c.hosts,
    advance(ms: number) {
      now += ms;
    },
    /** Moves the clock one interval and runs the interval timer. */
    tick(intervalMs: number) {
      now += intervalMs;
      od.onInterval();
    },
    statuses(host: number, ...codes: number[]) {
      for (const code of codes) c.recordOutcome(c.hosts[host], { kind: 'http', status: code });
    },
    stat: (name: string) => (c.stats as unknown as Record<string, number>)[`outlier_detection.${name}`],
  };
}

describe('outlier detection: consecutive errors', () => {
  it('ejects at exactly consecutive_5xx; a success in between starts over', () => {
    const w = world({ consecutive_5xx: 3, max_ejection_percent: 100 });
    w.statuses(0, 500, 500, 200, 500, 500);
    assert.equal(w.hosts[0].ejected, false);
    w.statuses(0, 503);
    assert.equal(w.hosts[0].ejected, true);
    assert.equal(w.stat('ejections_enforced_consecutive_5xx'), 1);
    assert.equal(w.stat('ejections_detected_consecutive_5xx'), 1);
    assert.equal(w.stat('ejections_enforced_total'), 1);
    assert.deepEqual(w.c.usableHosts().map((h) => h.address).sort(), ['10.0.0.2', '10.0.0.3']);
    assert.equal(w.c.gauges()['outlier_detection.ejections_active'], 1);
  });

  it("max_ejection_percent counts the host about to go: Envoy's default 10% ejects nothing among 3 hosts", () => {
    const w = world({ consecutive_5xx: 2 });
    w.statuses(0, 500, 500);
    assert.equal(w.hosts[0].ejected, false);
    assert.equal(w.stat('ejections_overflow'), 1);
    const one = world({ consecutive_5xx: 2, always_eject_one_host: true });
    one.statuses(0, 500, 500);
    assert.equal(one.hosts[0].ejected, true, 'always_eject_one_host ejects one anyway');
    one.statuses(1, 500, 500);
    assert.equal(one.hosts[1].ejected, false);
  });

  it('50% of 3 hosts: one may be ejected, not two', () => {
    const w = world({ consecutive_5xx: 1, max_ejection_percent: 50 });
    w.statuses(0, 500);
    w.statuses(1, 500);
    assert.deepEqual(w.hosts.map((h) => h.ejected), [true, false, false]);
  });

  it('gateway failures (502/503/504) eject only when enforced (Envoy: 0% by default)', () => {
    const w = world({ consecutive_gateway_failure: 2, consecutive_5xx: 100, max_ejection_percent: 100 });
    w.statuses(0, 502, 504);
    assert.equal(w.hosts[0].ejected, false);
    assert.equal(w.stat('ejections_detected_consecutive_gateway_failure'), 1);
    const enforced = world({ consecutive_gateway_failure: 2, enforcing_consecutive_gateway_failure: 100, consecutive_5xx: 100, max_ejection_percent: 100 });
    enforced.statuses(0, 500, 502);
    assert.equal(enforced.hosts[0].ejected, false, 'a 500 breaks the gateway streak');
    enforced.statuses(0, 503);
    assert.equal(enforced.hosts[0].ejected, true);
  });

  it('without the split, connect failures count as 503 and timeouts as 504', () => {
    const w = world({ consecutive_gateway_failure: 3, enforcing_consecutive_gateway_failure: 100, consecutive_5xx: 100, max_ejection_percent: 100 });
    w.c.recordOutcome(w.hosts[0], { kind: 'local-origin-failure' });
    w.c.recordOutcome(w.hosts[0], { kind: 'timeout' });
    assert.equal(w.hosts[0].ejected, false);
    w.c.recordOutcome(w.hosts[0], { kind: 'local-origin-failure' });
    assert.equal(w.hosts[0].ejected, true);
  });

  it('with split_external_local_origin_errors, local failures have their own streak', () => {
    const w = world({ split_external_local_origin_errors: true, consecutive_local_origin_failure: 2, consecutive_5xx: 2, max_ejection_percent: 100 });
    w.c.recordOutcome(w.hosts[0], { kind: 'local-origin-failure' });
    w.statuses(0, 500);
    w.c.recordOutcome(w.hosts[0], { kind: 'local-origin-failure' });
    assert.equal(w.hosts[0].ejected, false, 'a response means the connection worked');
    w.c.recordOutcome(w.hosts[1], { kind: 'local-origin-failure' });
    w.c.recordOutcome(w.hosts[1], { kind: 'timeout' });
    assert.equal(w.hosts[1].ejected, true);
    assert.equal(w.stat('ejections_enforced_consecutive_local_origin_failure'), 1);
    w.statuses(2, 500, 500);
    assert.equal(w.hosts[2].ejected, true, 'HTTP 5xx still counts on its own');
  });
});

describe('outlier detection: ejection time', () => {
  it('returns a host on the first interval after base_ejection_time; the time grows with each ejection', () => {
    const w = world({ consecutive_5xx: 1, interval: '1s', base_ejection_time: '3s', max_ejection_percent: 100 });
    w.statuses(0, 500);
    assert.equal(w.hosts[0].ejected, true);
    w.tick(1000);
    w.tick(1000);
    assert.equal(w.hosts[0].ejected, true);
    w.tick(1000);
    assert.equal(w.hosts[0].ejected, false, 'back after 3s');
    // Fails again at once: ejected for twice as long.
    w.statuses(0, 500);
    assert.equal(w.c.ejectionDurationMs(w.hosts[0]), 6000);
    for (let i = 0; i < 5; i++) w.tick(1000);
    assert.equal(w.hosts[0].ejected, true);
    w.tick(1000);
    assert.equal(w.hosts[0].ejected, false);
    assert.equal(w.hosts[0].outlier.ejections, 2);
  });

  it('the multiplier shrinks one step per healthy interval; ejections never last past max_ejection_time', () => {
    const w = world({ consecutive_5xx: 1, interval: '1s', base_ejection_time: '1s', max_ejection_time: '2s', max_ejection_percent: 100 });
    const durations: number[] = [];
    for (let round = 0; round < 4; round++) {
      w.statuses(0, 500);
      durations.push(w.c.ejectionDurationMs(w.hosts[0]));
      while (w.hosts[0].ejected) w.tick(1000);
    }
    assert.deepEqual(durations, [1000, 2000, 2000, 2000]);
    // As Envoy, the multiplier stops one step past max / base (3 here), so it takes three healthy
    // intervals to get back to base_ejection_time.
    assert.equal(w.hosts[0].outlier.ejectTimeBackoff, 3);
    for (let i = 0; i < 3; i++) w.tick(1000);
    assert.equal(w.hosts[0].outlier.ejectTimeBackoff, 0);
    w.statuses(0, 500);
    assert.equal(w.c.ejectionDurationMs(w.hosts[0]), 1000);
  });

  it('adds up to max_ejection_time_jitter', () => {
    const w = world({ consecutive_5xx: 1, base_ejection_time: '1s', max_ejection_time_jitter: '1s', max_ejection_percent: 100 });
    w.statuses(0, 500);
    assert.equal(w.c.ejectionDurationMs(w.hosts[0]), 1500, 'random 0.5 of 1s');
  });
});

describe('outlier detection: success rate and failure percentage', () => {
  const sr = {
    consecutive_5xx: 1000,
    success_rate_minimum_hosts: 5,
    success_rate_request_volume: 20,
    success_rate_stdev_factor: 1000,
    max_ejection_percent: 100,
    interval: '1s',
  };

  it('ejects a host whose success rate is below mean - factor x stdev, at the interval', () => {
    const w = world(sr, 5);
    for (let h = 0; h < 5; h++) for (let i = 0; i < 20; i++) w.statuses(h, h === 4 && i % 2 === 0 ? 500 : 200);
    assert.equal(w.hosts[4].ejected, false, 'not before the interval');
    w.tick(1000);
    assert.deepEqual(w.hosts.map((h) => h.ejected), [false, false, false, false, true]);
    assert.equal(w.stat('ejections_enforced_success_rate'), 1);
    assert.equal(w.hosts[0].outlier.externalSuccessRate, 100);
  });

  it('needs success_rate_minimum_hosts with enough requests; Istio turns enforcement off', () => {
    const few = world(sr, 5);
    for (let h = 0; h < 4; h++) for (let i = 0; i < 20; i++) few.statuses(h, h === 3 ? 500 : 200);
    few.tick(1000);
    assert.equal(few.stat('ejections_detected_success_rate'), 0, 'only four hosts had the volume');
    const istio = world({ ...sr, enforcing_success_rate: 0 }, 5);
    for (let h = 0; h < 5; h++) for (let i = 0; i < 20; i++) istio.statuses(h, h === 4 ? 500 : 200);
    istio.tick(1000);
    assert.equal(istio.stat('ejections_detected_success_rate'), 1);
    assert.equal(istio.hosts[4].ejected, false);
  });

  it('failure percentage: a host failing at least the threshold share is ejected when enforced', () => {
    const fp = { consecutive_5xx: 1000, enforcing_success_rate: 0, failure_percentage_threshold: 50, enforcing_failure_percentage: 100, failure_percentage_minimum_hosts: 3, failure_percentage_request_volume: 10, max_ejection_percent: 100 };
    const w = world(fp, 3);
    for (let i = 0; i < 10; i++) {
      w.statuses(0, 200);
      w.statuses(1, i < 5 ? 500 : 200);
      w.statuses(2, i < 4 ? 500 : 200);
    }
    w.tick(10_000);
    assert.deepEqual(w.hosts.map((h) => h.ejected), [false, true, false]);
    assert.equal(w.stat('ejections_enforced_failure_percentage'), 1);
  });
});
