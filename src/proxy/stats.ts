// The proxy's counters, kept as plain numbers on the hot path and rendered on demand in Envoy's
// /stats text form and in Prometheus form (envoy_* names with Envoy's tag labels, followed by
// Istio's standard istio_* metrics when telemetry is on).
import type { EventLoopDelayWindow } from './event-loop-delay';
import { escapeLabelValue } from './telemetry/istio-metrics';
import type { ClusterManager } from './upstream/cluster-manager';

export interface HttpStats {
  downstream_cx_total: number;
  downstream_cx_active: number;
  downstream_rq_total: number;
  downstream_rq_active: number;
  downstream_rq_completed: number;
  downstream_rq_1xx: number;
  downstream_rq_2xx: number;
  downstream_rq_3xx: number;
  downstream_rq_4xx: number;
  downstream_rq_5xx: number;
  downstream_rq_http1_total: number;
  downstream_rq_http2_total: number;
  downstream_rq_rx_reset: number;
  downstream_rq_timeout: number;
  no_route: number;
  no_cluster: number;
  rq_direct_response: number;
  rq_redirect: number;
  fault_delays_injected: number;
  fault_aborts_injected: number;
  cors_preflight: number;
  /** Envoy: path_with_escaped_slashes_action REJECT_REQUEST (or a gRPC redirect) answered 400. */
  downstream_rq_failed_path_normalization: number;
  /** Envoy: UNESCAPE_AND_REDIRECT answered 307. */
  downstream_rq_redirected_with_normalized_path: number;
}

/** A counter a filter names itself (rbac, jwt_authn): Envoy's /stats name and its Prometheus form. */
export interface NamedCounter {
  value: number;
}

interface NamedCounterEntry extends NamedCounter {
  readonly promName: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** Where a filter's counters live: `text` + key in /stats, `prom` + key in Prometheus. */
export interface CounterScope {
  text: string;
  prom: string;
  labels: Readonly<Record<string, string>>;
}

export interface TcpStats {
  downstream_cx_total: number;
  downstream_cx_active: number;
  upstream_connect_fail: number;
  upstream_connect_attempts_exceeded: number;
  downstream_cx_rx_bytes_total: number;
  downstream_cx_tx_bytes_total: number;
  idle_timeout: number;
}

function newHttpStats(): HttpStats {
  return {
    downstream_cx_total: 0,
    downstream_cx_active: 0,
    downstream_rq_total: 0,
    downstream_rq_active: 0,
    downstream_rq_completed: 0,
    downstream_rq_1xx: 0,
    downstream_rq_2xx: 0,
    downstream_rq_3xx: 0,
    downstream_rq_4xx: 0,
    downstream_rq_5xx: 0,
    downstream_rq_http1_total: 0,
    downstream_rq_http2_total: 0,
    downstream_rq_rx_reset: 0,
    downstream_rq_timeout: 0,
    no_route: 0,
    no_cluster: 0,
    rq_direct_response: 0,
    rq_redirect: 0,
    fault_delays_injected: 0,
    fault_aborts_injected: 0,
    cors_preflight: 0,
    downstream_rq_failed_path_normalization: 0,
    downstream_rq_redirected_with_normalized_path: 0,
  };
}

function newTcpStats(): TcpStats {
  return {
    downstream_cx_total: 0,
    downstream_cx_active: 0,
    upstream_connect_fail: 0,
    upstream_connect_attempts_exceeded: 0,
    downstream_cx_rx_bytes_total: 0,
    downstream_cx_tx_bytes_total: 0,
    idle_timeout: 0,
  };
}

export interface XdsStats {
  update_attempt: number;
  update_success: number;
  update_rejected: number;
  version: string;
}

export class ProxyStats {
  private readonly httpByPrefix = new Map<string, HttpStats>();
  private readonly tcpByPrefix = new Map<string, TcpStats>();
  private readonly named = new Map<string, NamedCounterEntry>();
  /** Per filter config (weakly) and scope: its counters, resolved once, so requests only increment. */
  private readonly scoped = new WeakMap<object, Map<string, Record<string, NamedCounter>>>();
  /** Requests per response flag. */
  readonly responseFlags = new Map<string, number>();
  /** Per xDS type (CDS, EDS, LDS, RDS). */
  readonly xds = new Map<string, XdsStats>();
  controlPlaneConnected = false;
  /** Istio's standard metrics (telemetry/istio-metrics.ts), appended to the Prometheus output. */
  istio: { renderPrometheus(): string } | undefined = undefined;
  /** The event loop's delay over the last window (event-loop-delay.ts). */
  eventLoop: { lastWindow(): EventLoopDelayWindow } | undefined = undefined;

  http(prefix: string): HttpStats {
    let s = this.httpByPrefix.get(prefix);
    if (!s) {
      s = newHttpStats();
      this.httpByPrefix.set(prefix, s);
    }
    return s;
  }

  tcp(prefix: string): TcpStats {
    let s = this.tcpByPrefix.get(prefix);
    if (!s) {
      s = newTcpStats();
      this.tcpByPrefix.set(prefix, s);
    }
    return s;
  }

  xdsType(type: string): XdsStats {
    let s = this.xds.get(type);
    if (!s) {
      s = { update_attempt: 0, update_success: 0, update_rejected: 0, version: '' };
      this.xds.set(type, s);
    }
    return s;
  }

  /** The counter named `name` (created at 0). */
  counter(name: string, promName: string, labels: Readonly<Record<string, string>> = {}): NamedCounter {
    let c = this.named.get(name);
    if (!c) {
      c = { value: 0, promName, labels };
      this.named.set(name, c);
    }
    return c;
  }

  /**
   * The counters of one filter config in one scope (e.g. the RBAC filter of the HCM `key`), built
   * by `build` the first time and cached per config object, so a request only increments them.
   */
  scopedCounters<K extends string>(
    owner: object,
    key: string,
    build: () => { scope: CounterScope; names: Record<K, string> },
  ): Record<K, NamedCounter> {
    let byKey = this.scoped.get(owner);
    if (!byKey) {
      byKey = new Map();
      this.scoped.set(owner, byKey);
    }
    let counters = byKey.get(key) as Record<K, NamedCounter> | undefined;
    if (!counters) {
      const { scope, names } = build();
      counters = {} as Record<K, NamedCounter>;
      for (const k of Object.keys(names) as K[]) counters[k] = this.counter(scope.text + names[k], scope.prom + names[k], scope.labels);
      byKey.set(key, counters);
    }
    return counters;
  }

  flag(flag: string): void {
    this.responseFlags.set(flag, (this.responseFlags.get(flag) ?? 0) + 1);
  }

  /** Envoy's /stats text: `name: value` lines, sorted. */
  renderText(clusters: ClusterManager): string {
    const lines: string[] = [];
    for (const c of clusters.all()) {
      const base = `cluster.${c.name}.`;
      for (const [k, v] of Object.entries(c.stats)) lines.push(`${base}${k}: ${v}`);
      for (const [k, v] of Object.entries(c.gauges())) lines.push(`${base}${k}: ${v}`);
      lines.push(`${base}upstream_rq_active: ${c.counters.activeRequests}`);
      lines.push(`${base}membership_total: ${c.hosts.length}`);
      lines.push(`${base}membership_healthy: ${c.usableHosts().length}`);
    }
    for (const [prefix, s] of this.httpByPrefix) for (const [k, v] of Object.entries(s)) lines.push(`http.${prefix}.${k}: ${v}`);
    for (const [prefix, s] of this.tcpByPrefix) for (const [k, v] of Object.entries(s)) lines.push(`tcp.${prefix}.${k}: ${v}`);
    for (const [name, c] of this.named) lines.push(`${name}: ${c.value}`);
    for (const [flag, v] of this.responseFlags) lines.push(`weft.response_flags.${flag}: ${v}`);
    // Envoy's names for the subscription stats: cluster_manager.cds.*, listener_manager.lds.*.
    const XDS_PREFIX: Record<string, string> = { CDS: 'cluster_manager.cds', LDS: 'listener_manager.lds', EDS: 'weft.eds', RDS: 'weft.rds' };
    for (const [type, s] of this.xds) {
      const prefix = XDS_PREFIX[type] ?? `weft.${type.toLowerCase()}`;
      lines.push(`${prefix}.update_attempt: ${s.update_attempt}`, `${prefix}.update_success: ${s.update_success}`, `${prefix}.update_rejected: ${s.update_rejected}`);
    }
    lines.push(`control_plane.connected_state: ${this.controlPlaneConnected ? 1 : 0}`);
    const loop = this.eventLoop?.lastWindow();
    if (loop) lines.push(`weft.event_loop_delay_p50_ms: ${loop.p50}`, `weft.event_loop_delay_p99_ms: ${loop.p99}`, `weft.event_loop_delay_max_ms: ${loop.max}`);
    return lines.sort().join('\n') + '\n';
  }

  /** Prometheus exposition with Envoy's metric names and tag labels. */
  renderPrometheus(clusters: ClusterManager): string {
    const series = new Map<string, string[]>();
    const add = (name: string, labels: Record<string, string>, value: number) => {
      const l = Object.entries(labels)
        .map(([k, v]) => `${k}="${escapeLabelValue(v)}"`)
        .join(',');
      const list = series.get(name) ?? [];
      list.push(`${name}{${l}} ${value}`);
      series.set(name, list);
    };
    for (const c of clusters.all()) {
      const labels = { envoy_cluster_name: c.name };
      // Envoy's Prometheus names flatten the dots: outlier_detection.ejections_active -> _.
      for (const [k, v] of Object.entries(c.stats)) add(`envoy_cluster_${k.replace(/\./g, '_')}`, labels, v);
      for (const [k, v] of Object.entries(c.gauges())) add(`envoy_cluster_${k.replace(/\./g, '_')}`, labels, v);
      add('envoy_cluster_upstream_rq_active', labels, c.counters.activeRequests);
      add('envoy_cluster_membership_total', labels, c.hosts.length);
      add('envoy_cluster_membership_healthy', labels, c.usableHosts().length);
    }
    for (const [prefix, s] of this.httpByPrefix) {
      for (const [k, v] of Object.entries(s)) add(`envoy_http_${k}`, { envoy_http_conn_manager_prefix: prefix }, v);
    }
    for (const [prefix, s] of this.tcpByPrefix) {
      for (const [k, v] of Object.entries(s)) add(`envoy_tcp_${k}`, { envoy_tcp_prefix: prefix }, v);
    }
    for (const c of this.named.values()) add(c.promName, c.labels, c.value);
    for (const [flag, v] of this.responseFlags) add('weft_response_flags_total', { flag }, v);
    add('envoy_control_plane_connected_state', {}, this.controlPlaneConnected ? 1 : 0);
    const out: string[] = [];
    const namedProm = new Set([...this.named.values()].map((c) => c.promName));
    for (const [name, lines] of series) {
      const counter =
        namedProm.has(name) ||
        (/_total$|_rq_\dxx$|_overflow$|_fail$|_reset$|_timeout$|_retry|_injected$|_success$|_rejected$|_attempt$|_ejections_|_cx_destroy|_max_requests$|_reached$|_exceeded$|_exponential$|_eject$/.test(name) &&
          !/_active$|_open$|_remaining_/.test(name));
      out.push(`# TYPE ${name} ${counter ? 'counter' : 'gauge'}`, ...lines);
    }
    const loop = this.eventLoop?.lastWindow();
    if (loop) {
      out.push(
        `# HELP weft_event_loop_delay_seconds How long the event loop was held up, over the last ${loop.windowMs / 1000} s window.`,
        '# TYPE weft_event_loop_delay_seconds gauge',
        `weft_event_loop_delay_seconds{quantile="0.5"} ${loop.p50 / 1000}`,
        `weft_event_loop_delay_seconds{quantile="0.99"} ${loop.p99 / 1000}`,
        `weft_event_loop_delay_seconds{quantile="1"} ${loop.max / 1000}`,
      );
    }
    return out.join('\n') + '\n' + (this.istio?.renderPrometheus() ?? '');
  }
}
