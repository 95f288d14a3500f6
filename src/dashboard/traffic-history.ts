// The dashboard's memory: a ring of collection rounds (by default 10 minutes at 5 s), each holding
// how much traffic every edge carried since the round before, computed from the cumulative
// counters each proxy reported. Rates, error shares and percentiles over any window inside the
// ring are sums of these deltas.
import { addTraffic, cloneTraffic, hasTraffic, trafficDelta, type EdgeSeries } from './istio-traffic';

/** One proxy's successful scrape. */
export interface TargetScrape {
  /** The scrape URL (one per proxy). */
  target: string;
  edges: Map<string, EdgeSeries>;
}

/** What the mesh did between two collection rounds. */
export interface TrafficTick {
  /** End of the interval (ms since the epoch). */
  at: number;
  /** Length of the interval in seconds. */
  seconds: number;
  /** Per edge identity key: the traffic in the interval. */
  edges: Map<string, EdgeSeries>;
}

export interface WindowTotals {
  edges: Map<string, EdgeSeries>;
  /** Seconds the included rounds cover (the divisor for rates). */
  seconds: number;
}

export class TrafficHistory {
  private readonly ticks: TrafficTick[] = [];
  /** The last cumulative counters seen from each target. */
  private readonly baseline = new Map<string, Map<string, EdgeSeries>>();
  private lastRoundAt?: number;

  constructor(readonly capacity = 120) {}

  /**
   * Records one round. A target scraped for the first time only sets its baseline (its counters
   * hold traffic from before anyone watched); a series new on a known target started since the
   * last round and counts in full. A target that failed this round keeps its baseline, so its
   * traffic shows up, late, in the round it is next scraped. Targets not in `live` are forgotten.
   */
  recordRound(at: number, scrapes: readonly TargetScrape[], live: ReadonlySet<string>): TrafficTick | undefined {
    const deltas = new Map<string, EdgeSeries>();
    for (const scrape of scrapes) {
      const before = this.baseline.get(scrape.target);
      this.baseline.set(scrape.target, scrape.edges);
      if (!before) continue;
      const fromTarget = targetDelta(scrape.edges, before);
      for (const [key, series] of fromTarget) {
        const into = deltas.get(key);
        if (into) addTraffic(into.traffic, series.traffic);
        else deltas.set(key, series);
      }
    }
    for (const target of this.baseline.keys()) if (!live.has(target)) this.baseline.delete(target);
    const previous = this.lastRoundAt;
    this.lastRoundAt = at;
    if (previous === undefined || at <= previous) return undefined;
    const tick: TrafficTick = { at, seconds: (at - previous) / 1000, edges: deltas };
    this.ticks.push(tick);
    if (this.ticks.length > this.capacity) this.ticks.shift();
    return tick;
  }

  /** Rounds that ended within the last `windowMs` before `now`, oldest first. */
  ticksWithin(windowMs: number, now: number): TrafficTick[] {
    return this.ticks.filter((t) => t.at > now - windowMs && t.at <= now);
  }

  all(): readonly TrafficTick[] {
    return this.ticks;
  }

  /** When the last round ran, if any. */
  get lastRound(): number | undefined {
    return this.lastRoundAt;
  }
}

/** Adds up the edges of several rounds. */
export function sumTicks(ticks: readonly TrafficTick[]): WindowTotals {
  const edges = new Map<string, EdgeSeries>();
  let seconds = 0;
  for (const tick of ticks) {
    seconds += tick.seconds;
    for (const [key, series] of tick.edges) {
      const into = edges.get(key);
      if (into) addTraffic(into.traffic, series.traffic);
      else edges.set(key, { identity: series.identity, traffic: cloneTraffic(series.traffic) });
    }
  }
  return { edges, seconds };
}

/**
 * What one target's counters grew by (edges that carried nothing are left out). When any counter
 * went down the proxy restarted: everything it reports now happened since (what Prometheus'
 * rate() assumes on a reset).
 */
function targetDelta(now: Map<string, EdgeSeries>, before: Map<string, EdgeSeries>): Map<string, EdgeSeries> {
  const out = new Map<string, EdgeSeries>();
  for (const [key, series] of now) {
    const delta = trafficDelta(series.traffic, before.get(key)?.traffic);
    if (!delta) return restarted(now);
    if (hasTraffic(delta)) out.set(key, { identity: series.identity, traffic: delta });
  }
  return out;
}

function restarted(now: Map<string, EdgeSeries>): Map<string, EdgeSeries> {
  const out = new Map<string, EdgeSeries>();
  for (const [key, series] of now) if (hasTraffic(series.traffic)) out.set(key, { identity: series.identity, traffic: cloneTraffic(series.traffic) });
  return out;
}
