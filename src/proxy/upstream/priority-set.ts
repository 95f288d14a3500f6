// Host selection over a cluster's priority levels, as Envoy's LoadBalancerBase: each level gets a
// share of the load from its health (healthy share x the overprovisioning factor 1.4, capped at
// 100%), so traffic spills to the next level as a level loses hosts; a level below the panic
// threshold balances over all its hosts, healthy or not. Within a level, locality-weighted
// clusters first pick a locality by its weight times its own health, then a host in it. Built
// when hosts or their health change; `pick` is the per-request call.
import { buildLoadBalancer, type BalancedHost, type LbKind, type LbOptions, type LoadBalancer } from './load-balancer';

export interface PriorityHost extends BalancedHost {
  readonly priority: number;
  /** Healthy by EDS and not ejected. */
  readonly usable: boolean;
  readonly locality?: string;
  readonly localityWeight?: number;
}

export interface PrioritySetOptions {
  kind: LbKind;
  lb: LbOptions;
  /** Percent; 0 disables panic mode. */
  panicThreshold: number;
  localityWeighted: boolean;
  /** Envoy's overprovisioning_factor, in percent (140 = 1.4). */
  overprovisioningFactor?: number;
  random: () => number;
}

/** Envoy's default overprovisioning factor (1.4), in percent. */
export const DEFAULT_OVERPROVISIONING = 140;

interface Locality<H extends BalancedHost> {
  readonly hosts: readonly H[];
  readonly weight: number;
  readonly lb: LoadBalancer<H>;
}

class Level<H extends PriorityHost> {
  readonly healthy: H[];
  /** Envoy's per-priority health: min(100, overprovisioning x healthy / total). */
  readonly health: number;
  panic = false;
  private lbHealthy: LoadBalancer<H> | undefined;
  private lbAll: LoadBalancer<H> | undefined;
  private localities: Locality<H>[] | undefined;
  private readonly current: number[] = [];

  constructor(
    readonly priority: number,
    readonly all: H[],
    private readonly o: PrioritySetOptions,
  ) {
    this.healthy = all.filter((h) => h.usable);
    const factor = o.overprovisioningFactor ?? DEFAULT_OVERPROVISIONING;
    this.health = all.length === 0 ? 0 : Math.min(100, Math.floor((factor * this.healthy.length) / all.length));
  }

  /** Raw healthy percentage, for the panic check. */
  healthyPercent(): number {
    return this.all.length === 0 ? 0 : (100 * this.healthy.length) / this.all.length;
  }

  pick(hash: number | undefined): H | undefined {
    if (this.panic) return (this.lbAll ??= buildLoadBalancer(this.o.kind, this.all, this.o.lb)).pick(hash);
    if (this.o.localityWeighted) return this.pickLocality()?.lb.pick(hash);
    return (this.lbHealthy ??= buildLoadBalancer(this.o.kind, this.healthy, this.o.lb)).pick(hash);
  }

  /** Smooth weighted round robin over localities by effective weight (Envoy: EDF over the same). */
  private pickLocality(): Locality<H> | undefined {
    const list = (this.localities ??= this.buildLocalities());
    if (list.length === 0) return undefined;
    if (list.length === 1) return list[0];
    let best = -1;
    let total = 0;
    for (let i = 0; i < list.length; i++) {
      this.current[i] = (this.current[i] ?? 0) + list[i].weight;
      total += list[i].weight;
      if (best < 0 || this.current[i] > this.current[best]) best = i;
    }
    this.current[best] -= total;
    return list[best];
  }

  private buildLocalities(): Locality<H>[] {
    const groups = new Map<string, H[]>();
    for (const h of this.all) {
      const key = h.locality ?? '';
      const list = groups.get(key) ?? [];
      list.push(h);
      groups.set(key, list);
    }
    const factor = (this.o.overprovisioningFactor ?? DEFAULT_OVERPROVISIONING) / 100;
    const out: Locality<H>[] = [];
    for (const [, hosts] of [...groups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const healthy = hosts.filter((h) => h.usable);
      // A locality without a weight gets no traffic when localities are weighted (Envoy).
      const weight = (hosts[0].localityWeight ?? 0) * Math.min(1, (factor * healthy.length) / hosts.length);
      if (weight > 0 && healthy.length > 0) out.push({ hosts: healthy, weight, lb: buildLoadBalancer(this.o.kind, healthy, this.o.lb) });
    }
    return out;
  }
}

export class PrioritySet<H extends PriorityHost> {
  private readonly levels: Level<H>[];
  /** Percent of requests per level (sums to 100 when any host exists). */
  private readonly load: number[];

  constructor(
    hosts: readonly H[],
    private readonly o: PrioritySetOptions,
  ) {
    const byPriority = new Map<number, H[]>();
    let max = -1;
    for (const h of hosts) {
      const list = byPriority.get(h.priority) ?? [];
      list.push(h);
      byPriority.set(h.priority, list);
      max = Math.max(max, h.priority);
    }
    this.levels = [];
    for (let p = 0; p <= max; p++) this.levels.push(new Level(p, byPriority.get(p) ?? [], o));
    this.load = this.computeLoad(new Set());
  }

  /** Envoy's recalculatePerPriorityState and recalculatePerPriorityPanic. */
  private computeLoad(excluded: ReadonlySet<number>): number[] {
    const levels = this.levels;
    const health = levels.map((l) => (excluded.has(l.priority) ? 0 : l.health));
    const load = levels.map(() => 0);
    if (levels.length === 0) return load;
    const total = Math.min(100, health.reduce((a, b) => a + b, 0));
    const threshold = this.o.panicThreshold;
    if (excluded.size === 0) {
      for (const l of levels) l.panic = total === 100 ? false : threshold > 0 && l.healthyPercent() < threshold;
    }
    if (total === 0) {
      if (threshold === 0 || excluded.size > 0) {
        // Nothing healthy and no panic: all load on P0, where no host will be found (UH).
        load[0] = 100;
        return load;
      }
    } else {
      let remaining = 100;
      let first = -1;
      health.forEach((h, i) => {
        if (first < 0 && h > 0) first = i;
        load[i] = Math.min(remaining, Math.floor((h * 100) / total));
        remaining -= load[i];
      });
      if (remaining > 0 && first >= 0) load[first] += remaining;
    }
    if (excluded.size === 0 && levels.every((l) => l.panic)) {
      // Total panic: load by host count, every level balancing over all its hosts.
      const hostTotal = levels.reduce((a, l) => a + l.all.length, 0);
      let remaining = 100;
      let first = -1;
      levels.forEach((l, i) => {
        if (first < 0 && l.all.length > 0) first = i;
        load[i] = hostTotal === 0 ? 0 : Math.floor((100 * l.all.length) / hostTotal);
        remaining -= load[i];
      });
      if (first >= 0) load[first] += remaining;
    }
    return load;
  }

  /**
   * A host for a request: a level by its load (chosen by `hash` for consistent hashing, else at
   * random), then a host within it. `excluded`: levels already tried (retry_priority
   * previous_priorities); when that leaves nothing, every level is eligible again.
   */
  pick(hash: number | undefined, excluded?: ReadonlySet<number>): { host: H | undefined; panic: boolean } {
    let load = this.load;
    if (excluded && excluded.size > 0) {
      const adjusted = this.computeLoad(excluded);
      if (adjusted.some((v, i) => v > 0 && !excluded.has(i))) load = adjusted;
    }
    const point = ((hash === undefined ? Math.floor(this.o.random() * 2 ** 32) : hash) % 100) + 1;
    let sum = 0;
    for (let i = 0; i < load.length; i++) {
      sum += load[i];
      if (point <= sum) {
        const level = this.levels[i];
        return { host: level.pick(hash), panic: level.panic };
      }
    }
    return { host: undefined, panic: false };
  }

  /** The hosts requests may go to now (healthy ones; all of a level in panic). */
  usableHosts(): H[] {
    const out: H[] = [];
    this.levels.forEach((l, i) => {
      if (this.load[i] === 0) return;
      out.push(...(l.panic ? l.all : l.healthy));
    });
    return out;
  }

  /** For /stats and tests: each level's share of requests, in percent. */
  priorityLoad(): readonly number[] {
    return this.load;
  }
}
