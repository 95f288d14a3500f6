// The proxy's HTTP endpoints: admin (loopback only, Envoy's paths: /config_dump, /clusters,
// /stats, /ready, /quitquitquit, /listeners, /server_info, /certs), Prometheus stats
// (/stats/prometheus) and health (/healthz/ready).
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ProxyStats } from './stats';
import type { ClusterManager } from './upstream/cluster-manager';

export type ServerState = 'PRE_INITIALIZING' | 'LIVE' | 'DRAINING';

export interface AdminSource {
  state(): ServerState;
  configDump(): unknown;
  stats: ProxyStats;
  clusters: ClusterManager;
  listeners(): { name: string; address: string; port: number }[];
  serverInfo(): unknown;
  /** Envoy's /certs: the certificates in use (never private keys). */
  certs?(): unknown;
  /** More `name: value` lines for /stats (listener TLS counters). */
  extraStats?(): string[];
  quit(): void;
  drainListeners(): void;
}

function send(res: http.ServerResponse, status: number, body: string, type = 'text/plain; charset=UTF-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-cache, max-age=0' });
  res.end(body);
}

/** Envoy's /clusters text: one `cluster::host::stat::value` line per fact. */
export function renderClusters(clusters: ClusterManager): string {
  const lines: string[] = [];
  const now = Date.now();
  for (const c of clusters.all()) {
    const t = c.config.thresholds;
    const n = c.name;
    lines.push(`${n}::observability_name::${n}`);
    lines.push(`${n}::default_priority::max_connections::${t.maxConnections}`);
    lines.push(`${n}::default_priority::max_pending_requests::${t.maxPendingRequests}`);
    lines.push(`${n}::default_priority::max_requests::${t.maxRequests}`);
    lines.push(`${n}::default_priority::max_retries::${t.maxRetries}`);
    lines.push(`${n}::added_via_api::true`);
    for (const h of c.hosts) {
      const p = `${n}::${h.key}`;
      lines.push(`${p}::cx_active::${h.connections()}`);
      lines.push(`${p}::cx_connect_fail::${h.stats.cxConnectFail}`);
      lines.push(`${p}::rq_active::${h.active}`);
      lines.push(`${p}::rq_error::${h.stats.rqError}`);
      lines.push(`${p}::rq_success::${h.stats.rqSuccess}`);
      lines.push(`${p}::rq_timeout::${h.stats.rqTimeout}`);
      lines.push(`${p}::rq_total::${h.stats.rqTotal}`);
      if (h.hostname) lines.push(`${p}::hostname::${h.hostname}`);
      lines.push(`${p}::health_flags::${healthFlags(h, now)}`);
      lines.push(`${p}::weight::${h.weight}`);
      lines.push(`${p}::region::${h.locality?.split('/')[0] ?? ''}`);
      lines.push(`${p}::zone::${h.locality?.split('/')[1] ?? ''}`);
      lines.push(`${p}::sub_zone::${h.locality?.split('/')[2] ?? ''}`);
      lines.push(`${p}::priority::${h.priority}`);
    }
  }
  return lines.join('\n') + '\n';
}

function healthFlags(h: { health: string; edsHealthy: boolean; isEjected(now: number): boolean }, now: number): string {
  const flags: string[] = [];
  if (!h.edsHealthy) flags.push('/failed_eds_health');
  if (h.health === 'DEGRADED') flags.push('/degraded_eds_health');
  if (h.isEjected(now)) flags.push('/failed_outlier_check');
  return flags.length ? flags.join('|') : 'healthy';
}

export function clustersJson(clusters: ClusterManager): unknown {
  const now = Date.now();
  return {
    cluster_statuses: [...clusters.all()].map((c) => ({
      name: c.name,
      added_via_api: true,
      host_statuses: c.hosts.map((h) => ({
        address: { socket_address: { address: h.address, port_value: h.port } },
        stats: [
          { name: 'cx_active', value: h.connections() },
          { name: 'rq_active', value: h.active },
          { name: 'rq_total', value: h.stats.rqTotal },
          { name: 'rq_error', value: h.stats.rqError },
          { name: 'rq_success', value: h.stats.rqSuccess },
          { name: 'rq_timeout', value: h.stats.rqTimeout },
          { name: 'cx_connect_fail', value: h.stats.cxConnectFail },
        ],
        health_status: {
          eds_health_status: h.health,
          failed_outlier_check: h.isEjected(now) || undefined,
        },
        weight: h.weight,
        locality: h.locality,
        priority: h.priority,
        hostname: h.hostname,
      })),
    })),
  };
}

export function createAdminHandler(src: AdminSource): http.RequestListener {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const format = url.searchParams.get('format');
    switch (url.pathname) {
      case '/':
        return send(res, 200, ['/config_dump', '/clusters', '/listeners', '/certs', '/stats', '/stats/prometheus', '/ready', '/server_info', '/quitquitquit (POST)', '/drain_listeners (POST)'].join('\n') + '\n');
      case '/certs':
        return send(res, 200, JSON.stringify(src.certs?.() ?? { certificates: [] }, null, 2), 'application/json');
      case '/config_dump':
        return send(res, 200, JSON.stringify(src.configDump(), null, 2), 'application/json');
      case '/clusters':
        return format === 'json' ? send(res, 200, JSON.stringify(clustersJson(src.clusters), null, 2), 'application/json') : send(res, 200, renderClusters(src.clusters));
      case '/listeners':
        return format === 'json'
          ? send(res, 200, JSON.stringify({ listener_statuses: src.listeners().map((l) => ({ name: l.name, local_address: { socket_address: { address: l.address, port_value: l.port } } })) }, null, 2), 'application/json')
          : send(res, 200, src.listeners().map((l) => `${l.name}::${l.address}:${l.port}`).join('\n') + '\n');
      case '/stats': {
        const text = src.stats.renderText(src.clusters);
        const filter = url.searchParams.get('filter');
        let lines = text.trimEnd().split('\n');
        const extra = src.extraStats?.() ?? [];
        if (extra.length) lines = [...lines, ...extra].sort();
        if (filter) {
          const re = new RegExp(filter);
          lines = lines.filter((l) => re.test(l.slice(0, l.indexOf(':'))));
        }
        if (format === 'json') {
          return send(res, 200, JSON.stringify({ stats: lines.map((l) => ({ name: l.slice(0, l.indexOf(':')), value: Number(l.slice(l.indexOf(':') + 2)) })) }), 'application/json');
        }
        return send(res, 200, lines.join('\n') + '\n');
      }
      case '/stats/prometheus':
        return send(res, 200, src.stats.renderPrometheus(src.clusters), 'text/plain; version=0.0.4');
      case '/ready': {
        const state = src.state();
        return send(res, state === 'LIVE' ? 200 : 503, state + '\n');
      }
      case '/server_info':
        return send(res, 200, JSON.stringify(src.serverInfo(), null, 2), 'application/json');
      case '/quitquitquit':
        if (req.method !== 'POST') return send(res, 405, 'POST required\n');
        send(res, 200, 'OK\n');
        setImmediate(() => src.quit());
        return;
      case '/drain_listeners':
        if (req.method !== 'POST') return send(res, 405, 'POST required\n');
        src.drainListeners();
        return send(res, 200, 'OK\n');
      default:
        return send(res, 404, 'not found\n');
    }
  };
}

/** Health (15021): /healthz/ready is 200 once the proxy has its config and is not draining. */
export function createHealthHandler(state: () => ServerState): http.RequestListener {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz/ready') {
      const s = state();
      return send(res, s === 'LIVE' ? 200 : 503, s === 'LIVE' ? 'ready\n' : `${s.toLowerCase()}\n`);
    }
    send(res, 404, 'not found\n');
  };
}

/** Prometheus (15090): /stats/prometheus. */
export function createPrometheusHandler(stats: ProxyStats, clusters: ClusterManager): http.RequestListener {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/stats/prometheus' || path === '/metrics') return send(res, 200, stats.renderPrometheus(clusters), 'text/plain; version=0.0.4');
    send(res, 404, 'not found\n');
  };
}

export function listenHttp(handler: http.RequestListener, host: string, port: number): Promise<http.Server> {
  return new Promise((resolve, reject) => {
    const server = http.createServer(handler);
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

export function boundPort(server: http.Server): number {
  return (server.address() as AddressInfo).port;
}
