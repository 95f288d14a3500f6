// A live cluster: its compiled config, hosts (from EDS or inline), the load balancer over the
// usable ones (priority, health, panic threshold, outlier ejections), circuit breaker counters and
// stats. Requests ask it for a host and report how the attempt went.
import type { CompiledCluster, CompiledEndpoint } from '../config/model';
import { selectTransportSocket, type TransportSocketMetadata, type UpstreamTlsSettings } from '../config/upstream-tls';
import type { SecureContextCache } from '../identity/secure-contexts';
import { endpointKey, Host } from './host';
import type { PoolSettings } from './http1-connector';
import { buildLoadBalancer, type LbKind, type LoadBalancer } from './load-balancer';
import { OutlierDetector, type OutlierResult } from './outlier-detector';

export interface ClusterStats {
  upstream_rq_total: number;
  upstream_rq_completed: number;
  upstream_rq_2xx: number;
  upstream_rq_3xx: number;
  upstream_rq_4xx: number;
  upstream_rq_5xx: number;
  upstream_rq_timeout: number;
  upstream_rq_per_try_timeout: number;
  upstream_rq_retry: number;
  upstream_rq_retry_success: number;
  upstream_rq_retry_overflow: number;
  upstream_rq_pending_overflow: number;
  upstream_rq_rx_reset: number;
  upstream_rq_tx_reset: number;
  upstream_cx_connect_fail: number;
  upstream_cx_overflow: number;
  upstream_cx_destroy_remote_with_active_rq: number;
  upstream_cx_none_healthy: number;
  upstream_rq_maintenance_mode: number;
  outlier_detection_ejections_total: number;
  lb_healthy_panic: number;
  update_success: number;
}

function newStats(): ClusterStats {
  return {
    upstream_rq_total: 0,
    upstream_rq_completed: 0,
    upstream_rq_2xx: 0,
    upstream_rq_3xx: 0,
    upstream_rq_4xx: 0,
    upstream_rq_5xx: 0,
    upstream_rq_timeout: 0,
    upstream_rq_per_try_timeout: 0,
    upstream_rq_retry: 0,
    upstream_rq_retry_success: 0,
    upstream_rq_retry_overflow: 0,
    upstream_rq_pending_overflow: 0,
    upstream_rq_rx_reset: 0,
    upstream_rq_tx_reset: 0,
    upstream_cx_connect_fail: 0,
    upstream_cx_overflow: 0,
    upstream_cx_destroy_remote_with_active_rq: 0,
    upstream_cx_none_healthy: 0,
    upstream_rq_maintenance_mode: 0,
    outlier_detection_ejections_total: 0,
    lb_healthy_panic: 0,
    update_success: 0,
  };
}

/** Request-admission result: ok, or which circuit breaker threshold overflowed. */
export type Admission = 'ok' | 'max_requests' | 'max_pending_requests';

const MAX_ORIGINAL_DST_HOSTS = 1024;

export function poolSettingsOf(config: CompiledCluster, contexts?: SecureContextCache): PoolSettings {
  return {
    maxConnections: config.thresholds.maxConnections,
    connectTimeoutMs: config.connectTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
    maxRequestsPerConnection: config.maxRequestsPerConnection,
    tls: config.tls,
    contexts,
  };
}

/** Circuit breaker counters, shared by every generation of a cluster with the same name. */
export interface ClusterCounters {
  activeRequests: number;
  activeRetries: number;
}

export class UpstreamCluster {
  readonly name: string;
  readonly stats: ClusterStats;
  readonly counters: ClusterCounters;
  /** Every known host, usable or not. */
  hosts: Host[] = [];
  private lb: LoadBalancer<Host>;
  private readonly pool: PoolSettings;
  /** Pool settings per transport chosen by transport_socket_matches (the key `null`: plaintext). */
  private readonly poolsByTransport = new Map<UpstreamTlsSettings | null, PoolSettings>();
  private outlier: OutlierDetector | null = null;
  /** Endpoint version last applied (EDS version, or the cluster version for inline endpoints). */
  endpointsVersion = '';
  /** Whether endpoints have been received (EDS clusters warm until then). */
  warmed: boolean;
  private readonly random: () => number;

  /** `previous`: the generation this one replaces; stats and counters carry over by name. */
  constructor(
    readonly config: CompiledCluster,
    previous?: Pick<UpstreamCluster, 'stats' | 'counters'>,
    random: () => number = Math.random,
    contexts?: SecureContextCache,
  ) {
    this.name = config.name;
    this.random = random;
    this.pool = poolSettingsOf(config, contexts);
    this.stats = previous?.stats ?? newStats();
    this.counters = previous?.counters ?? { activeRequests: 0, activeRetries: 0 };
    this.warmed = config.type !== 'EDS';
    if (config.outlierDetection) {
      this.outlier = new OutlierDetector(
        config.outlierDetection,
        {
          hosts: () => this.hosts,
          onChange: () => this.rebuild(),
          onEject: () => {
            this.stats.outlier_detection_ejections_total++;
          },
        },
        random,
      );
    }
    this.lb = buildLoadBalancer(this.lbKind(), [], this.lbOptions());
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

  /** Recomputes the usable hosts and the load balancer. */
  rebuild(): void {
    const now = Date.now();
    const usable = (h: Host) => h.edsHealthy && !h.isEjected(now);
    // Lowest priority level with a usable host; Envoy spills to the next level when one is empty.
    const levels = new Map<number, Host[]>();
    for (const h of this.hosts) {
      const list = levels.get(h.priority) ?? [];
      list.push(h);
      levels.set(h.priority, list);
    }
    const ordered = [...levels.keys()].sort((a, b) => a - b);
    let chosen: Host[] = [];
    for (const p of ordered) {
      const all = levels.get(p)!;
      const healthy = all.filter(usable);
      if (healthy.length === 0) continue;
      // Panic: below the threshold of healthy hosts Envoy balances over all hosts of the level.
      const healthyPercent = (100 * healthy.length) / all.length;
      if (healthyPercent < this.config.healthyPanicThreshold) {
        chosen = all;
        this.stats.lb_healthy_panic++;
      } else chosen = healthy;
      break;
    }
    if (chosen.length === 0 && this.hosts.length > 0 && this.config.healthyPanicThreshold > 0) {
      chosen = levels.get(ordered[0]) ?? [];
    }
    this.lb = buildLoadBalancer(this.lbKind(), chosen, this.lbOptions());
  }

  usableHosts(): readonly Host[] {
    return this.lb.hosts;
  }

  /**
   * Picks a host. With `avoid` (retry_host_predicate previous_hosts) it re-picks up to
   * `attempts` times to find a host not tried yet, then accepts what it got.
   */
  pickHost(hash: number | undefined, avoid?: ReadonlySet<Host>, attempts = 1): Host | undefined {
    let host = this.lb.pick(hash);
    if (!host || !avoid || avoid.size === 0 || !avoid.has(host)) return host;
    for (let i = 1; i <= attempts && avoid.has(host); i++) {
      // A consistent-hash balancer returns the same host for the same hash: perturb it.
      const next = this.lb.pick(hash === undefined ? undefined : (hash + Math.imul(i, 0x9e3779b9)) >>> 0);
      if (!next) break;
      host = next;
    }
    if (avoid.has(host)) {
      const other = this.lb.hosts.find((h) => !avoid.has(h));
      if (other) host = other;
    }
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

  /** Circuit breaker check before a request is sent (Envoy's max_requests / max_pending). */
  admit(protocol: 'http1' | 'http2'): Admission {
    const t = this.config.thresholds;
    const active = this.counters.activeRequests;
    if (active >= t.maxRequests) return 'max_requests';
    if (protocol === 'http1') {
      // An HTTP/1.1 request needs a connection of its own; beyond max_connections it waits
      // as a pending request, and beyond max_pending_requests it overflows.
      const pending = active - t.maxConnections;
      if (pending >= 0 && pending >= t.maxPendingRequests) return 'max_pending_requests';
    }
    return 'ok';
  }

  canRetry(): boolean {
    return this.counters.activeRetries < this.config.thresholds.maxRetries;
  }

  recordOutcome(host: Host, result: OutlierResult): void {
    this.outlier?.record(host, result);
  }

  ejectedHosts(): number {
    return this.outlier?.ejectedCount() ?? 0;
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
