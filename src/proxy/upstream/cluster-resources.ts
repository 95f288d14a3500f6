// A cluster's counters (Envoy's cluster stats, by Envoy's names) and its circuit breakers: Envoy's
// ResourceManager for the default priority — open connections, pending requests, active requests
// and active retries against their limits (or the retry budget). One of each per cluster name,
// kept across config generations, so work in flight keeps counting against the new limits.
import type { CircuitBreakerThresholds } from '../config/model';

/** Counters and gauges, named as Envoy names them under `cluster.<name>.` (dots included). */
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
  upstream_rq_retry_limit_exceeded: number;
  upstream_rq_retry_backoff_exponential: number;
  upstream_rq_pending_total: number;
  upstream_rq_pending_overflow: number;
  upstream_rq_pending_failure_eject: number;
  upstream_rq_rx_reset: number;
  upstream_rq_tx_reset: number;
  upstream_cx_total: number;
  upstream_cx_http1_total: number;
  upstream_cx_http2_total: number;
  upstream_cx_connect_fail: number;
  upstream_cx_connect_timeout: number;
  upstream_cx_overflow: number;
  upstream_cx_idle_timeout: number;
  upstream_cx_max_requests: number;
  upstream_cx_max_duration_reached: number;
  upstream_cx_destroy: number;
  upstream_cx_destroy_local: number;
  upstream_cx_destroy_remote: number;
  upstream_cx_destroy_remote_with_active_rq: number;
  upstream_cx_none_healthy: number;
  upstream_rq_maintenance_mode: number;
  lb_healthy_panic: number;
  update_success: number;
  'outlier_detection.ejections_total': number;
  'outlier_detection.ejections_consecutive_5xx': number;
  'outlier_detection.ejections_enforced_total': number;
  'outlier_detection.ejections_overflow': number;
  'outlier_detection.ejections_enforced_consecutive_5xx': number;
  'outlier_detection.ejections_detected_consecutive_5xx': number;
  'outlier_detection.ejections_enforced_consecutive_gateway_failure': number;
  'outlier_detection.ejections_detected_consecutive_gateway_failure': number;
  'outlier_detection.ejections_enforced_consecutive_local_origin_failure': number;
  'outlier_detection.ejections_detected_consecutive_local_origin_failure': number;
  'outlier_detection.ejections_enforced_success_rate': number;
  'outlier_detection.ejections_detected_success_rate': number;
  'outlier_detection.ejections_enforced_local_origin_success_rate': number;
  'outlier_detection.ejections_detected_local_origin_success_rate': number;
  'outlier_detection.ejections_enforced_failure_percentage': number;
  'outlier_detection.ejections_detected_failure_percentage': number;
  'outlier_detection.ejections_enforced_failure_percentage_local_origin': number;
  'outlier_detection.ejections_detected_failure_percentage_local_origin': number;
}

export function newClusterStats(): ClusterStats {
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
    upstream_rq_retry_limit_exceeded: 0,
    upstream_rq_retry_backoff_exponential: 0,
    upstream_rq_pending_total: 0,
    upstream_rq_pending_overflow: 0,
    upstream_rq_pending_failure_eject: 0,
    upstream_rq_rx_reset: 0,
    upstream_rq_tx_reset: 0,
    upstream_cx_total: 0,
    upstream_cx_http1_total: 0,
    upstream_cx_http2_total: 0,
    upstream_cx_connect_fail: 0,
    upstream_cx_connect_timeout: 0,
    upstream_cx_overflow: 0,
    upstream_cx_idle_timeout: 0,
    upstream_cx_max_requests: 0,
    upstream_cx_max_duration_reached: 0,
    upstream_cx_destroy: 0,
    upstream_cx_destroy_local: 0,
    upstream_cx_destroy_remote: 0,
    upstream_cx_destroy_remote_with_active_rq: 0,
    upstream_cx_none_healthy: 0,
    upstream_rq_maintenance_mode: 0,
    lb_healthy_panic: 0,
    update_success: 0,
    'outlier_detection.ejections_total': 0,
    'outlier_detection.ejections_consecutive_5xx': 0,
    'outlier_detection.ejections_enforced_total': 0,
    'outlier_detection.ejections_overflow': 0,
    'outlier_detection.ejections_enforced_consecutive_5xx': 0,
    'outlier_detection.ejections_detected_consecutive_5xx': 0,
    'outlier_detection.ejections_enforced_consecutive_gateway_failure': 0,
    'outlier_detection.ejections_detected_consecutive_gateway_failure': 0,
    'outlier_detection.ejections_enforced_consecutive_local_origin_failure': 0,
    'outlier_detection.ejections_detected_consecutive_local_origin_failure': 0,
    'outlier_detection.ejections_enforced_success_rate': 0,
    'outlier_detection.ejections_detected_success_rate': 0,
    'outlier_detection.ejections_enforced_local_origin_success_rate': 0,
    'outlier_detection.ejections_detected_local_origin_success_rate': 0,
    'outlier_detection.ejections_enforced_failure_percentage': 0,
    'outlier_detection.ejections_detected_failure_percentage': 0,
    'outlier_detection.ejections_enforced_failure_percentage_local_origin': 0,
    'outlier_detection.ejections_detected_failure_percentage_local_origin': 0,
  };
}

/**
 * The circuit breakers of one cluster. Connection pools (one per endpoint and protocol) count
 * `connections`, `pendingRequests` and `requests` here; the router counts `activeRetries` (and
 * tcp_proxy its connections in `activeRequests`). Limits are replaced in place when the cluster's
 * config changes.
 */
export class ClusterResources {
  /** Upstream connections open or opening, across every endpoint (Envoy: connections()). */
  connections = 0;
  /** Requests queued for a connection (pendingRequests()). */
  pendingRequests = 0;
  /** Requests on a connection (requests()). */
  requests = 0;
  /** Retries in flight or waiting out their backoff (retries()). */
  activeRetries = 0;
  /** Upstream attempts the router (or tcp_proxy) has in flight, pending ones included. */
  activeRequests = 0;

  constructor(
    public limits: CircuitBreakerThresholds,
    readonly stats: ClusterStats,
  ) {}

  /**
   * Whether a new connection may open. A pool with no connection at all may always open one
   * (Envoy: "a host selected by load balancing has at least one connection allocated").
   */
  canOpenConnection(poolHasConnections: boolean): boolean {
    return this.connections < this.limits.maxConnections || !poolHasConnections;
  }

  canQueueRequest(): boolean {
    return this.pendingRequests < this.limits.maxPendingRequests;
  }

  canSendRequest(): boolean {
    return this.requests < this.limits.maxRequests;
  }

  /** Active retries allowed now: the retry budget when configured, else max_retries. */
  maxActiveRetries(): number {
    const budget = this.limits.retryBudget;
    if (!budget) return this.limits.maxRetries;
    // Envoy: a share of the requests that are active or pending, with a floor.
    return Math.max(budget.minRetryConcurrency, Math.floor((budget.budgetPercent / 100) * (this.requests + this.pendingRequests)));
  }

  canRetry(): boolean {
    return this.activeRetries < this.maxActiveRetries();
  }

  /** Envoy's circuit_breakers.default.* gauges (1 while a breaker is open) and, when tracked, remaining_*. */
  gauges(): Record<string, number> {
    const l = this.limits;
    const out: Record<string, number> = {
      'circuit_breakers.default.cx_open': this.connections >= l.maxConnections ? 1 : 0,
      'circuit_breakers.default.rq_pending_open': this.pendingRequests >= l.maxPendingRequests ? 1 : 0,
      'circuit_breakers.default.rq_open': this.requests >= l.maxRequests ? 1 : 0,
      'circuit_breakers.default.rq_retry_open': this.canRetry() ? 0 : 1,
    };
    if (l.trackRemaining) {
      out['circuit_breakers.default.remaining_cx'] = Math.max(0, l.maxConnections - this.connections);
      out['circuit_breakers.default.remaining_pending'] = Math.max(0, l.maxPendingRequests - this.pendingRequests);
      out['circuit_breakers.default.remaining_rq'] = Math.max(0, l.maxRequests - this.requests);
      out['circuit_breakers.default.remaining_retries'] = Math.max(0, this.maxActiveRetries() - this.activeRetries);
    }
    return out;
  }
}
