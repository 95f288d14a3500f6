// Envoy's priority load and panic mode over a cluster's priority levels (Istio's locality
// failover lands on them), locality-weighted picks within a level, and retry_priority
// previous_priorities.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PrioritySet, type PriorityHost } from '../../../src/proxy/upstream/priority-set';

interface TestHost extends PriorityHost {
  usable: boolean;
}

function level(priority: number, healthy: number, unhealthy = 0, locality?: string, localityWeight?: number): TestHost[] {
  return Array.from({ length: healthy + unhealthy }, (_, i) => ({
    key: `p${priority}-${locality ?? ''}-${i}`,
    weight: 1,
    active: 0,
    priority,
    usable: i < healthy,
    locality,
    localityWeight,
  }));
}

function seeded(seed = 7): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function set(hosts: TestHost[], panicThreshold = 50, localityWeighted = false): PrioritySet<TestHost> {
  return new PrioritySet(hosts, { kind: 'ROUND_ROBIN', lb: { random: seeded() }, panicThreshold, localityWeighted, random: seeded(11) });
}

function share(s: PrioritySet<TestHost>, n: number, of: (h: TestHost) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const h = s.pick(undefined).host;
    const k = h ? of(h) : 'none';
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

describe('priority load', () => {
  it('all traffic stays on a healthy priority 0', () => {
    const s = set([...level(0, 3), ...level(1, 3)]);
    assert.deepEqual(s.priorityLoad(), [100, 0]);
  });

  it('spills the unhealthy share x 1.4 to the next level (half healthy: 70/30)', () => {
    const s = set([...level(0, 2, 2), ...level(1, 4)]);
    assert.deepEqual(s.priorityLoad(), [70, 30]);
    const counts = share(s, 2000, (h) => `P${h.priority}`);
    assert.ok(Math.abs(counts.P0 / 2000 - 0.7) < 0.05, JSON.stringify(counts));
    const p0 = s.usableHosts().filter((h) => h.priority === 0);
    assert.equal(p0.length, 2, 'only the healthy P0 hosts');
  });

  it('skips an empty-of-health level entirely', () => {
    const s = set([...level(0, 0, 2), ...level(1, 1, 1), ...level(2, 2)]);
    assert.deepEqual(s.priorityLoad(), [0, 70, 30]);
  });

  it('panic: below the threshold a level balances over all its hosts, unless other levels make up 100%', () => {
    // 1 of 4 healthy (25% < 50%) and nowhere to spill: all four hosts take requests.
    const alone = set(level(0, 1, 3));
    assert.deepEqual(alone.priorityLoad(), [100]);
    const counts = share(alone, 400, (h) => h.key);
    assert.deepEqual(Object.keys(counts).sort(), ['p0--0', 'p0--1', 'p0--2', 'p0--3']);
    assert.ok(alone.pick(undefined).panic);
    // With P1 healthy the total availability is 100%: no panic, P0 keeps its healthy host only.
    const spill = set([...level(0, 1, 2), ...level(1, 3)]);
    assert.deepEqual(spill.priorityLoad(), [46, 54]);
    assert.deepEqual([...new Set(spill.usableHosts().filter((h) => h.priority === 0).map((h) => h.key))], ['p0--0']);
  });

  it('total panic: load by host count over every host; with panic disabled nothing is picked', () => {
    const s = set([...level(0, 0, 2), ...level(1, 0, 2)]);
    assert.deepEqual(s.priorityLoad(), [50, 50]);
    assert.ok(s.pick(undefined).panic);
    const none = set([...level(0, 0, 2), ...level(1, 0, 2)], 0);
    assert.equal(none.pick(undefined).host, undefined, 'no healthy upstream');
  });

  it('previous_priorities: a retry leaves the levels already tried', () => {
    const s = set([...level(0, 3), ...level(1, 3)]);
    for (let i = 0; i < 50; i++) assert.equal(s.pick(undefined, new Set([0])).host?.priority, 1);
    assert.equal(s.pick(undefined, new Set([0, 1])).host?.priority, 0, 'all tried: back to the normal load');
  });

  it('consistent hashing picks the level by the hash, so a key stays put', () => {
    const s = set([...level(0, 2, 2), ...level(1, 4)]);
    const first = s.pick(12345).host;
    for (let i = 0; i < 20; i++) assert.equal(s.pick(12345).host?.priority, first?.priority);
  });
});

describe('locality-weighted picks', () => {
  it('splits a level by locality weight, scaled by each locality’s health', () => {
    const hosts = [...level(0, 2, 0, 'us-east/a', 80), ...level(0, 2, 0, 'us-west/a', 20)];
    const counts = share(set(hosts, 50, true), 1000, (h) => h.locality!);
    assert.equal(counts['us-east/a'], 800);
    assert.equal(counts['us-west/a'], 200);
    // Half of us-east down: its effective weight is 80 x min(1, 1.4 x 0.5) = 56.
    const degraded = [...level(0, 1, 1, 'us-east/a', 80), ...level(0, 2, 0, 'us-west/a', 20)];
    const c2 = share(set(degraded, 0, true), 760, (h) => h.locality!);
    assert.ok(Math.abs(c2['us-east/a'] - 560) <= 2, JSON.stringify(c2));
  });

  it('a locality without weight gets nothing', () => {
    const hosts = [...level(0, 2, 0, 'us-east/a', 10), ...level(0, 2, 0, 'eu-west/a')];
    assert.deepEqual(share(set(hosts, 50, true), 100, (h) => h.locality!), { 'us-east/a': 100 });
  });
});
