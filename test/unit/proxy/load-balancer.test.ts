// Load balancers: one contract every balancer meets, then each one's own behaviour (rotation,
// weights, least load, hash stickiness and minimal disruption).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { murmur3 } from '../../../src/proxy/upstream/hash';
import { buildLoadBalancer, type BalancedHost, type LbKind } from '../../../src/proxy/upstream/load-balancer';

function hosts(n: number, weight = 1): BalancedHost[] {
  return Array.from({ length: n }, (_, i) => ({ key: `10.0.0.${i + 1}:8080`, weight, active: 0 }));
}

/** A deterministic random source (LCG) so distribution tests do not flake. */
function seeded(seed = 42): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function shares(kind: LbKind, list: BalancedHost[], n: number, hashOf: (i: number) => number | undefined = () => undefined): Map<string, number> {
  const lb = buildLoadBalancer(kind, list, { random: seeded() });
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const h = lb.pick(hashOf(i))!;
    counts.set(h.key, (counts.get(h.key) ?? 0) + 1);
  }
  return counts;
}

const ALL: LbKind[] = ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV'];

describe('every load balancer', () => {
  for (const kind of ALL) {
    it(`${kind}: returns undefined without hosts, the host with one, and spreads evenly over equal hosts`, () => {
      assert.equal(buildLoadBalancer(kind, []).pick(1), undefined);
      const one = hosts(1);
      assert.equal(buildLoadBalancer(kind, one).pick(7), one[0]);
      const counts = shares(kind, hosts(4), 8000, (i) => murmur3(`user-${i}`));
      assert.equal(counts.size, 4);
      for (const c of counts.values()) assert.ok(c > 8000 / 4 * 0.8 && c < 8000 / 4 * 1.2, `${kind} share ${c} of 8000 over 4 hosts`);
    });
  }
});

describe('ROUND_ROBIN', () => {
  it('rotates through equal hosts', () => {
    const list = hosts(3);
    const lb = buildLoadBalancer('ROUND_ROBIN', list, { random: () => 0 });
    assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => lb.pick(undefined)!.key), [...list, ...list].map((h) => h.key));
  });
  it('honours weights smoothly', () => {
    const list = [{ key: 'a', weight: 3, active: 0 }, { key: 'b', weight: 1, active: 0 }];
    const lb = buildLoadBalancer('ROUND_ROBIN', list);
    const picks = Array.from({ length: 8 }, () => lb.pick(undefined)!.key).join('');
    assert.equal(picks.split('a').length - 1, 6);
    assert.ok(!picks.includes('bb'), `smooth: ${picks}`);
  });
});

describe('LEAST_REQUEST', () => {
  it('prefers the host with fewer requests in flight', () => {
    const list = [{ key: 'busy', weight: 1, active: 50 }, { key: 'idle', weight: 1, active: 0 }];
    const counts = shares('LEAST_REQUEST', list, 1000);
    // Two random choices: only when both samples hit "busy" (1 in 4) does it win.
    assert.ok((counts.get('idle') ?? 0) > 700, JSON.stringify([...counts]));
  });
});

describe('RANDOM', () => {
  it('follows weights', () => {
    const counts = shares('RANDOM', [{ key: 'a', weight: 9, active: 0 }, { key: 'b', weight: 1, active: 0 }], 10_000);
    const a = counts.get('a') ?? 0;
    assert.ok(a > 8700 && a < 9300, `a=${a}`);
  });
});

for (const kind of ['RING_HASH', 'MAGLEV'] as const) {
  describe(kind, () => {
    it('sends the same hash to the same host', () => {
      const lb = buildLoadBalancer(kind, hosts(5));
      for (let i = 0; i < 100; i++) {
        const h = murmur3(`session-${i}`);
        assert.equal(lb.pick(h), lb.pick(h));
      }
    });
    it('moves only the removed host\'s keys when a host leaves', () => {
      const before = hosts(5);
      const after = before.slice(0, 4);
      const a = buildLoadBalancer(kind, before);
      const b = buildLoadBalancer(kind, after);
      let moved = 0;
      let shouldMove = 0;
      for (let i = 0; i < 5000; i++) {
        const h = murmur3(`key-${i}`);
        const x = a.pick(h)!;
        const y = b.pick(h)!;
        if (x.key === before[4].key) shouldMove++;
        else if (x.key !== y.key) moved++;
      }
      assert.ok(shouldMove > 0);
      // Envoy rescales the ring to min_ring_size when the host count changes, so a few keys of
      // the remaining hosts move too; most stay.
      assert.ok(moved / 5000 < 0.15, `${moved} of 5000 keys of remaining hosts moved`);
    });
    it('follows weights', () => {
      const list = [{ key: 'heavy:1', weight: 3, active: 0 }, { key: 'light:1', weight: 1, active: 0 }];
      const counts = shares(kind, list, 8000, (i) => murmur3(`w-${i}`));
      const heavy = (counts.get('heavy:1') ?? 0) / 8000;
      assert.ok(heavy > 0.68 && heavy < 0.82, `heavy share ${heavy}`);
    });
  });
}
