// A live cluster: its compiled config, hosts (from EDS or inline), the load balancer over the
// usable ones (priority levels, locality weights, panic threshold, outlier ejections), circuit
// breakers and stats. Requests ask it for a host and report how the attempt went.
import type { CompiledCluster, CompiledEndpoint } from '../config/model';
import { selectTransportSocket, type TransportSocketMetadata, type UpstreamTlsSettings } from '../config/upstream-tls';
import type { SecureContextCache } from '../identity/secure-contexts';
import { ClusterResources, newClusterStats, type ClusterStats } from './cluster-resources';
import type { PoolSettings } from './connection-pool';
import { endpointKey, Host } from './host';
import type { LbKind } from './load-balancer';
import { OutlierDetector, type OutlierResult } from './outlier-detector';
import { PrioritySet } from './priority-set';

export type { ClusterStats } from './cluster-resources';

const MAX_ORIGINAL_DST_HOSTS = 1024;

export function poolSettingsOf(config: CompiledCluster, resources: ClusterResources, contexts?: SecureContextCache): PoolSettings {
  return {
    connectTimeoutMs: config.connectTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
    maxRequestsPerConnection: config.maxRequestsPerConnection,
    maxConnectionDurationMs: config.maxConnectionDurationMs,
    maxConcurrentStreams: config.maxConcurrentStreams,
    tcpKeepalive: config.tcpKeepalive,
    tls: config.tls,
    contexts,
    resources,
  };
}

export class UpstreamCluster {
  readonly name: string;
  readonly stats: ClusterStats;
  /** Circuit breakers: shared by every generation of a cluster with the same name. */
  readonly counters: ClusterResources;
  /** Every known host, usable or not. */
  hosts: Host[] = [];
  private lb: PrioritySet<Host>;
  private readonly pool: PoolSettings;
  /** Pool settings per transport chosen by transport_socket_matches (the key `null`: plaintext). */
  private readonly poolsByTransport = new Map<UpstreamTlsSettings | null, PoolSettings>();
  private outlier: OutlierDetector | null = null;
  /** Endpoint version last applied (EDS version, or the cluster version for inline endpoints). */
  endpointsVersion = '';
  /** Whether endpoints have been received (EDS clusters warm until then). */
  warmed: boolean;
  private readonly random: () => number;

  /** `previous`: the generation this one replaces; stats and circuit breakers carry over by name. */
  constructor(
    readonly config: CompiledCluster,
    previous?: Pick<UpstreamCluster, 'stats' | 'counters'>,
    random: () => number = Math.random,
    contexts?: SecureContextCache,
    /** Tests drive outlier detection's interval themselves. */
    clock?: { now: () => number; runTimer: boolean },
  ) {
    this.name = config.name;
    this.random = random;
    this.stats = previous?.stats ?? newClusterStats();
    this.counters = previous?.counters ?? new ClusterResources(config.thresholds, this.stats);
    // Requests in flight keep counting; the new limits apply from now on.
    this.counters.limits = config.thresholds;
    this.pool = poolSettingsOf(config, this.counters, contexts);
    this.warmed = config.type !== 'EDS';
    if (config.outlierDetection) {
      this.outlier = new OutlierDetector(
        config.outlierDetection,
        { hosts: () => this.hosts, onChange: () => this.rebuild(), stats: this.stats },
        random,
        clock?.now,
        clock?.runTimer ?? true,
      );
    }
    this.lb = this.buildPrioritySet([]);
  }

  private lbKind(): LbKind {
    const p = this.config.lbPolicy;
    return p === 'CLUSTER_PROVIDED' ? 'ROUND_ROBIN' : p;
  }

  private lbOptions() {
    return {
      leastRequestChoiceCount: this.config.leastRequestChoiceCount,
      minRingSize: this.config.ringHash.minRingSize,
      maxRingSize: this.config.ringHash.maxRingSize,
      maglevTableSize: this.config.maglevTableSize,
      random: this.random,
    };
  }

  /** The pool settings for an endpoint: the cluster's, with the transport its metadata selects. */
  private poolFor(metadata: TransportSocketMetadata | undefined): PoolSettings {
    if (!this.config.transportSocketMatches) return this.pool;
    const tls = selectTransportSocket(this.config.transportSocketMatches, this.config.tls, metadata);
    if (tls === this.pool.tls) return this.pool;
    let pool = this.poolsByTransport.get(tls ?? null);
    if (!pool) {
      pool = { ...this.pool, tls };
      this.poolsByTransport.set(tls ?? null, pool);
    }
    return pool;
  }

  /**
   * Replaces the host set. Hosts from `candidates` (default: this cluster's own) whose address
   * stays and whose pool settings match are kept with their connections and stats. Returns the
   * candidates not kept: the caller retires them (they finish in-flight requests, then close).
   */
  setEndpoints(endpoints: readonly CompiledEndpoint[], version: string, candidates: readonly Host[] = this.hosts): Host[] {
    const existing = new Map<string, Host>();
    for (const h of candidates) existing.set(h.key, h);
    const next: Host[] = [];
    const seen = new Set<string>();
    for (const e of endpoints) {
      const key = endpointKey(e.address, e.port);
      if (seen.has(key)) continue; // Envoy de-duplicates identical addresses
      seen.add(key);
      const old = existing.get(key);
      const pool = this.poolFor(e.transportSocketMetadata);
      if (old && old.samePoolSettings(pool)) {
        old.update(e);
        next.push(old);
        existing.delete(key);
      } else {
        next.push(new Host(e.address, e.port, e, pool));
      }
    }
    this.hosts = next;
    this.endpointsVersion = version;
    this.warmed = true;
    this.stats.update_success++;
    this.rebuild();
    return [...existing.values()];
  }

  /** Recomputes the priority levels and load balancers from the hosts' health. */
  rebuild(): void {
    this.lb = this.buildPrioritySet(this.hosts);
  }

  private buildPrioritySet(hosts: readonly Host[]): PrioritySet<Host> {
    return new PrioritySet(hosts, {
      kind: this.lbKind(),
      lb: this.lbOptions(),
      panicThreshold: this.config.healthyPanicThreshold,
      localityWeighted: this.config.localityWeighted,
      random: this.random,
    });
  }

  /** Hosts requests may go to now (healthy, or every host of a level in panic). */
  usableHosts(): readonly Host[] {
    return this.lb.usableHosts();
  }

  /** Each priority level's share of requests, in percent. */
  priorityLoad(): readonly number[] {
    return this.lb.priorityLoad();
  }

  /**
   * Picks a host. With `avoid` (retry_host_predicate previous_hosts) it re-picks up to
   * `attempts` times to find a host not tried yet, then accepts what it got. `avoidPriorities`:
   * retry_priority previous_priorities.
   */
  pickHost(hash: number | undefined, avoid?: ReadonlySet<Host>, attempts = 1, avoidPriorities?: ReadonlySet<number>): Host | undefined {
    let host = this.pickOnce(hash, avoidPriorities);
    if (!host || !avoid || avoid.size === 0 || !avoid.has(host)) return host;
    for (let i = 1; i <= attempts && avoid.has(host); i++) {
      // A consistent-hash balancer returns the same host for the same hash: perturb it.
      const next = this.pickOnce(hash === undefined ? undefined : (hash + Math.imul(i, 0x9e3779b9)) >>> 0, avoidPriorities);
      if (!next) break;
      host = next;
    }
    if (avoid.has(host)) {
      const other = this.lb.usableHosts().find((h) => !avoid.has(h));
      if (other) host = other;
    }
    return host;
  }

  private pickOnce(hash: number | undefined, avoidPriorities?: ReadonlySet<number>): Host | undefined {
    const { host, panic } = this.lb.pick(hash, avoidPriorities);
    if (panic && host) this.stats.lb_healthy_panic++;
    return host;
  }

  /** An ORIGINAL_DST host for `address:port`, created on first use. */
  originalDestination(address: string, port: number): Host {
    const key = endpointKey(address, port);
    let host = this.hosts.find((h) => h.key === key);
    if (!host) {
      host = new Host(address, port, { weight: 1, health: 'HEALTHY', priority: 0 }, this.poolFor(undefined));
      this.hosts.push(host);
      if (this.hosts.length > MAX_ORIGINAL_DST_HOSTS) {
        const old = this.hosts.shift()!;
        void old.close();
      }
    }
    return host;
  }

  /** Whether the retry circuit breaker (max_retries, or the retry budget) lets one more retry start. */
  canRetry(): boolean {
    return this.counters.canRetry();
  }

  recordOutcome(host: Host, result: OutlierResult): void {
    this.outlier?.record(host, result);
  }

  ejectedHosts(): number {
    return this.outlier?.ejectedCount() ?? 0;
  }

  /** How long `host`'s current ejection lasts (for /clusters); 0 when not ejected. */
  ejectionDurationMs(host: Host): number {
    return host.ejected && this.outlier ? this.outlier.ejectionDurationMs(host) : 0;
  }

  /** Outlier detection, for tests that drive its interval. */
  get outlierDetector(): OutlierDetector | null {
    return this.outlier;
  }

  /** Gauges Envoy publishes beside the counters: circuit breakers, pending requests, ejections. */
  gauges(): Record<string, number> {
    return {
      upstream_cx_active: this.counters.connections,
      upstream_rq_pending_active: this.counters.pendingRequests,
      'outlier_detection.ejections_active': this.ejectedHosts(),
      ...this.counters.gauges(),
    };
  }

  /** Stops this generation's timers (its hosts were handed to a replacement or retired). */
  stopTimers(): void {
    this.outlier?.stop();
  }

  /** Retires the cluster: timers stop, hosts close once idle. */
  close(): void {
    this.stopTimers();
    for (const h of this.hosts) void h.close();
  }
}
