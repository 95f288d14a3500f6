// Load balancers over a cluster's usable hosts, as Envoy defines them: ROUND_ROBIN (weighted,
// smooth), LEAST_REQUEST (power of N choices), RANDOM, RING_HASH (ketama-style ring) and MAGLEV
// (lookup table). Each is built when the host set changes; `pick` is the only per-request call.
import { murmur3 } from './hash';

/** What a load balancer needs to know about a host. */
export interface BalancedHost {
  readonly key: string;
  readonly weight: number;
  /** In-flight requests (for LEAST_REQUEST). */
  readonly active: number;
}

export interface LoadBalancer<H extends BalancedHost = BalancedHost> {
  readonly hosts: readonly H[];
  /** `hash` is used by consistent-hash balancers; others ignore it. */
  pick(hash: number | undefined): H | undefined;
}

export type LbKind = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'RING_HASH' | 'MAGLEV';

export interface LbOptions {
  leastRequestChoiceCount?: number;
  minRingSize?: number;
  maxRingSize?: number;
  maglevTableSize?: number;
  /** Random source in [0, 1); injectable for tests. */
  random?: () => number;
}

function allEqualWeights(hosts: readonly BalancedHost[]): boolean {
  for (let i = 1; i < hosts.length; i++) if (hosts[i].weight !== hosts[0].weight) return false;
  return true;
}

export class RoundRobinBalancer<H extends BalancedHost> implements LoadBalancer<H> {
  private next: number;
  private readonly weighted: boolean;
  private readonly current: number[];
  private readonly totalWeight: number;

  constructor(
    readonly hosts: readonly H[],
    random: () => number = Math.random,
  ) {
    // Envoy starts each proxy's rotation at a random host, so proxies do not move in step.
    this.next = Math.floor(random() * Math.max(1, hosts.length));
    this.weighted = !allEqualWeights(hosts);
    this.current = hosts.map(() => 0);
    this.totalWeight = hosts.reduce((s, h) => s + h.weight, 0);
  }

  pick(): H | undefined {
    const n = this.hosts.length;
    if (n === 0) return undefined;
    if (!this.weighted) {
      const h = this.hosts[this.next % n];
      this.next = (this.next + 1) % n;
      return h;
    }
    // Smooth weighted round robin: same long-run shares as Envoy's EDF scheduler.
    let best = 0;
    for (let i = 0; i < n; i++) {
      this.current[i] += this.hosts[i].weight;
      if (this.current[i] > this.current[best]) best = i;
    }
    this.current[best] -= this.totalWeight;
    return this.hosts[best];
  }
}

export class RandomBalancer<H extends BalancedHost> implements LoadBalancer<H> {
  private readonly cumulative: number[] | null;
  private readonly total: number;

  constructor(
    readonly hosts: readonly H[],
    private readonly random: () => number = Math.random,
  ) {
    let total = 0;
    this.cumulative = allEqualWeights(hosts) ? null : hosts.map((h) => (total += h.weight));
    this.total = total;
  }

  pick(): H | undefined {
    const n = this.hosts.length;
    if (n === 0) return undefined;
    if (!this.cumulative) return this.hosts[Math.floor(this.random() * n)];
    const target = this.random() * this.total;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cumulative[mid] > target) hi = mid;
      else lo = mid + 1;
    }
    return this.hosts[lo];
  }
}

/** Envoy's LEAST_REQUEST: sample `choiceCount` hosts at random, keep the least loaded. */
export class LeastRequestBalancer<H extends BalancedHost> implements LoadBalancer<H> {
  constructor(
    readonly hosts: readonly H[],
    private readonly choiceCount = 2,
    private readonly random: () => number = Math.random,
  ) {}

  pick(): H | undefined {
    const n = this.hosts.length;
    if (n === 0) return undefined;
    if (n === 1) return this.hosts[0];
    let best = this.hosts[Math.floor(this.random() * n)];
    for (let i = 1; i < this.choiceCount; i++) {
      const candidate = this.hosts[Math.floor(this.random() * n)];
      // Weighted hosts compare load per unit of weight.
      if (candidate.active / candidate.weight < best.active / best.weight) best = candidate;
    }
    return best;
  }
}

/** Ketama-style ring: each host owns points proportional to its weight; a hash walks clockwise. */
export class RingHashBalancer<H extends BalancedHost> implements LoadBalancer<H> {
  private readonly ringHashes: Uint32Array;
  private readonly ringHosts: H[];

  constructor(
    readonly hosts: readonly H[],
    minRingSize = 1024,
    maxRingSize = 8 * 1024 * 1024,
    private readonly random: () => number = Math.random,
  ) {
    const total = hosts.reduce((s, h) => s + h.weight, 0);
    const points: { hash: number; host: H }[] = [];
    if (hosts.length > 0) {
      // As Envoy: scale so the lightest host gets at least one point, bounded by the sizes.
      const normalized = hosts.map((h) => h.weight / total);
      const minNormalized = Math.min(...normalized);
      const scale = Math.min(Math.ceil(minNormalized * minRingSize) / minNormalized, maxRingSize);
      hosts.forEach((host, i) => {
        const count = Math.max(1, Math.floor(normalized[i] * scale));
        for (let k = 0; k < count; k++) points.push({ hash: murmur3(`${host.key}_${k}`), host });
      });
    }
    points.sort((a, b) => a.hash - b.hash);
    this.ringHashes = Uint32Array.from(points.map((p) => p.hash));
    this.ringHosts = points.map((p) => p.host);
  }

  get ringSize(): number {
    return this.ringHashes.length;
  }

  pick(hash: number | undefined): H | undefined {
    const size = this.ringHashes.length;
    if (size === 0) return undefined;
    const h = hash === undefined ? Math.floor(this.random() * 2 ** 32) : hash >>> 0;
    // First point with hash >= h, wrapping around.
    let lo = 0;
    let hi = size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ringHashes[mid] < h) lo = mid + 1;
      else hi = mid;
    }
    return this.ringHosts[lo === size ? 0 : lo];
  }
}

/** Maglev (Eisenbud et al. 2016) with Envoy's weighting: a prime-sized lookup table. */
export class MaglevBalancer<H extends BalancedHost> implements LoadBalancer<H> {
  private readonly table: H[];

  constructor(
    readonly hosts: readonly H[],
    private readonly tableSize = 65537,
    private readonly random: () => number = Math.random,
  ) {
    const M = tableSize;
    const table: (H | undefined)[] = new Array(M);
    this.table = [];
    if (hosts.length === 0) return;
    const maxWeight = Math.max(...hosts.map((h) => h.weight));
    const entries = hosts.map((host) => ({
      host,
      offset: murmur3(host.key, 0) % M,
      skip: (murmur3(host.key, 1) % (M - 1)) + 1,
      weight: host.weight / maxWeight,
      target: 0,
      next: 0,
    }));
    let filled = 0;
    for (let iteration = 1; filled < M; iteration++) {
      for (let i = 0; i < entries.length && filled < M; i++) {
        const e = entries[i];
        if (iteration * e.weight < e.target) continue;
        e.target += 1;
        let c = (e.offset + e.skip * e.next) % M;
        while (table[c] !== undefined) {
          e.next++;
          c = (e.offset + e.skip * e.next) % M;
        }
        table[c] = e.host;
        e.next++;
        filled++;
      }
    }
    this.table = table as H[];
  }

  pick(hash: number | undefined): H | undefined {
    if (this.table.length === 0) return undefined;
    const h = hash === undefined ? Math.floor(this.random() * 2 ** 32) : hash >>> 0;
    return this.table[h % this.tableSize];
  }
}

export function buildLoadBalancer<H extends BalancedHost>(kind: LbKind, hosts: readonly H[], options: LbOptions = {}): LoadBalancer<H> {
  const random = options.random ?? Math.random;
  switch (kind) {
    case 'LEAST_REQUEST':
      return new LeastRequestBalancer(hosts, options.leastRequestChoiceCount ?? 2, random);
    case 'RANDOM':
      return new RandomBalancer(hosts, random);
    case 'RING_HASH':
      return new RingHashBalancer(hosts, options.minRingSize, options.maxRingSize, random);
    case 'MAGLEV':
      return new MaglevBalancer(hosts, options.maglevTableSize, random);
    default:
      return new RoundRobinBalancer(hosts, random);
  }
}
