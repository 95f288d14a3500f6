// The proxy's HTTP endpoints: admin (loopback only, Envoy's paths: /config_dump, /clusters,
// /stats, /ready, /quitquitquit, /listeners, /server_info, /certs), Prometheus stats
// (/stats/prometheus) and health (/healthz/ready).
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ProxyStats } from './stats';
import type { ClusterManager } from './upstream/cluster-manager';
import type { Host } from './upstream/host';

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
  /** A multi-process primary (workers/): /stats, /stats/prometheus and /clusters from its workers. */
  workerViews?: WorkerViews;
}

/** The stats views of a proxy whose data path runs in worker processes: merged, or `?worker=N`'s own. */
export interface WorkerViews {
  /** /stats lines (unfiltered, sorted). */
  statsLines(query: URLSearchParams): Promise<string[]>;
  prometheus(query: URLSearchParams): Promise<string>;
  /** /clusters, text or (`json`) the JSON body. */
  clusters(query: URLSearchParams, json: boolean): Promise<string>;
}

/** This process's own /stats lines: the counters, then the extra lines, sorted. */
export function localStatsLines(src: Pick<AdminSource, 'stats' | 'clusters' | 'extraStats'>): string[] {
  const lines = src.stats.renderText(src.clusters).trimEnd().split('\n');
  const extra = src.extraStats?.() ?? [];
  return extra.length ? [...lines, ...extra].sort() : lines;
}

/** Answers with what `view` produces; its rejection is a 400 saying why (e.g. no such worker). */
function sendView(res: http.ServerResponse, view: Promise<string>, type: string): void {
  view.then(
    (body) => send(res, 200, body, type),
    (err: Error) => send(res, 400, `${err.message}\n`),
  );
}

function send(res: http.ServerResponse, status: number, body: string, type = 'text/plain; charset=UTF-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-cache, max-age=0' });
  res.end(body);
}

const UINT32_MAX = 4294967295;

/** Envoy prints an unset (unlimited) threshold as the largest uint32. */
function threshold(v: number): number {
  return Number.isFinite(v) ? v : UINT32_MAX;
}

/** Envoy's /clusters text: one `cluster::host::stat::value` line per fact. */
export function renderClusters(clusters: ClusterManager): string {
  const lines: string[] = [];
  for (const c of clusters.all()) {
    const t = c.config.thresholds;
    const n = c.name;
    lines.push(`${n}::observability_name::${n}`);
    if (c.config.outlierDetection) {
      // Envoy: the success-rate ejection thresholds of the last interval (-1: not computed).
      lines.push(`${n}::outlier::success_rate_average::-1`, `${n}::outlier::success_rate_ejection_threshold::-1`);
      lines.push(`${n}::outlier::local_origin_success_rate_average::-1`, `${n}::outlier::local_origin_success_rate_ejection_threshold::-1`);
    }
    lines.push(`${n}::default_priority::max_connections::${threshold(t.maxConnections)}`);
    lines.push(`${n}::default_priority::max_pending_requests::${threshold(t.maxPendingRequests)}`);
    lines.push(`${n}::default_priority::max_requests::${threshold(t.maxRequests)}`);
    lines.push(`${n}::default_priority::max_retries::${threshold(t.maxRetries)}`);
    // Weft has no HIGH priority routing; Envoy's defaults are shown for the format's sake.
    lines.push(`${n}::high_priority::max_connections::1024`, `${n}::high_priority::max_pending_requests::1024`);
    lines.push(`${n}::high_priority::max_requests::1024`, `${n}::high_priority::max_retries::3`);
    lines.push(`${n}::added_via_api::true`);
    for (const h of c.hosts) {
      const p = `${n}::${h.key}`;
      lines.push(`${p}::cx_active::${h.connections()}`);
      lines.push(`${p}::cx_connect_fail::${h.stats.cxConnectFail}`);
      lines.push(`${p}::cx_total::${h.stats.cxTotal}`);
      lines.push(`${p}::rq_active::${h.active}`);
      lines.push(`${p}::rq_error::${h.stats.rqError}`);
      lines.push(`${p}::rq_success::${h.stats.rqSuccess}`);
      lines.push(`${p}::rq_timeout::${h.stats.rqTimeout}`);
      lines.push(`${p}::rq_total::${h.stats.rqTotal}`);
      lines.push(`${p}::hostname::${h.hostname ?? ''}`);
      lines.push(`${p}::health_flags::${healthFlags(h)}`);
      lines.push(`${p}::weight::${h.weight}`);
      lines.push(`${p}::region::${h.locality?.split('/')[0] ?? ''}`);
      lines.push(`${p}::zone::${h.locality?.split('/')[1] ?? ''}`);
      lines.push(`${p}::sub_zone::${h.locality?.split('/')[2] ?? ''}`);
      lines.push(`${p}::canary::false`);
      lines.push(`${p}::priority::${h.priority}`);
      lines.push(`${p}::success_rate::${h.outlier.externalSuccessRate}`);
      lines.push(`${p}::local_origin_success_rate::${h.outlier.localSuccessRate}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** Envoy's HostUtility::healthFlagsToString: the flags concatenated, or `healthy`. */
function healthFlags(h: Host): string {
  let flags = '';
  if (h.health === 'UNHEALTHY' || h.health === 'TIMEOUT') flags += '/failed_eds_health';
  if (h.health === 'DEGRADED') flags += '/degraded_eds_health';
  if (h.health === 'DRAINING') flags += '/eds_status_draining';
  if (h.ejected) flags += '/failed_outlier_check';
  return flags || 'healthy';
}

export function clustersJson(clusters: ClusterManager): unknown {
  return {
    cluster_statuses: [...clusters.all()].map((c) => {
      const t = c.config.thresholds;
      return {
        name: c.name,
        observability_name: c.name,
        added_via_api: true,
        circuit_breakers: {
          thresholds: [
            {
              priority: 'DEFAULT',
              max_connections: threshold(t.maxConnections),
              max_pending_requests: threshold(t.maxPendingRequests),
              max_requests: threshold(t.maxRequests),
              max_retries: threshold(t.maxRetries),
            },
          ],
        },
        host_statuses: c.hosts.map((h) => ({
          address: { socket_address: { address: h.address, port_value: h.port } },
          stats: [
            { name: 'cx_connect_fail', value: h.stats.cxConnectFail },
            { name: 'cx_total', value: h.stats.cxTotal },
            { name: 'rq_error', value: h.stats.rqError },
            { name: 'rq_success', value: h.stats.rqSuccess },
            { name: 'rq_timeout', value: h.stats.rqTimeout },
            { name: 'rq_total', value: h.stats.rqTotal },
            { type: 'GAUGE', name: 'cx_active', value: h.connections() },
            { type: 'GAUGE', name: 'rq_active', value: h.active },
          ],
          health_status: {
            eds_health_status: h.health === 'UNKNOWN' ? 'HEALTHY' : h.health,
            ...(h.ejected ? { failed_outlier_check: true } : {}),
          },
          ...(h.outlier.externalSuccessRate >= 0 ? { success_rate: { value: h.outlier.externalSuccessRate } } : {}),
          ...(h.outlier.localSuccessRate >= 0 ? { local_origin_success_rate: { value: h.outlier.localSuccessRate } } : {}),
          weight: h.weight,
          ...(h.locality ? { locality: localityJson(h.locality) } : { locality: {} }),
          priority: h.priority,
          hostname: h.hostname ?? '',
          // Not Envoy's: when an ejected host returns (ms since the epoch), for operators.
          ...(h.ejected ? { weft_ejected_until: h.outlier.lastEjectionTime + c.ejectionDurationMs(h) } : {}),
        })),
      };
    }),
  };
}

function localityJson(locality: string): Record<string, string> {
  const [region, zone, subZone] = locality.split('/');
  return { ...(region ? { region } : {}), ...(zone ? { zone } : {}), ...(subZone ? { sub_zone: subZone } : {}) };
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
        if (src.workerViews) return sendView(res, src.workerViews.clusters(url.searchParams, format === 'json'), format === 'json' ? 'application/json' : 'text/plain; charset=UTF-8');
        return format === 'json' ? send(res, 200, JSON.stringify(clustersJson(src.clusters), null, 2), 'application/json') : send(res, 200, renderClusters(src.clusters));
      case '/listeners':
        return format === 'json'
          ? send(res, 200, JSON.stringify({ listener_statuses: src.listeners().map((l) => ({ name: l.name, local_address: { socket_address: { address: l.address, port_value: l.port } } })) }, null, 2), 'application/json')
          : send(res, 200, src.listeners().map((l) => `${l.name}::${l.address}:${l.port}`).join('\n') + '\n');
      case '/stats': {
        const filter = url.searchParams.get('filter');
        const render = (all: string[]): string => {
          let lines = all;
          if (filter) {
            const re = new RegExp(filter);
            lines = lines.filter((l) => re.test(l.slice(0, l.indexOf(':'))));
          }
          if (format === 'json') return JSON.stringify({ stats: lines.map((l) => ({ name: l.slice(0, l.indexOf(':')), value: Number(l.slice(l.indexOf(':') + 2)) })) });
          return lines.join('\n') + '\n';
        };
        const type = format === 'json' ? 'application/json' : 'text/plain; charset=UTF-8';
        if (src.workerViews) return sendView(res, src.workerViews.statsLines(url.searchParams).then(render), type);
        return send(res, 200, render(localStatsLines(src)), type);
      }
      case '/stats/prometheus':
        if (src.workerViews) return sendView(res, src.workerViews.prometheus(url.searchParams), 'text/plain; version=0.0.4');
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
export function createPrometheusHandler(src: Pick<AdminSource, 'stats' | 'clusters' | 'workerViews'>): http.RequestListener {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://stats');
    if (url.pathname !== '/stats/prometheus' && url.pathname !== '/metrics') return send(res, 404, 'not found\n');
    if (src.workerViews) return sendView(res, src.workerViews.prometheus(url.searchParams), 'text/plain; version=0.0.4');
    send(res, 200, src.stats.renderPrometheus(src.clusters), 'text/plain; version=0.0.4');
  };
}

/** The admin (loopback), Prometheus and health servers of one proxy; closes what started if one cannot listen. */
export async function startAdminServers(
  src: AdminSource,
  at: { adminHost: string; bindAddress: string; ports: { admin: number; stats: number; health: number } },
): Promise<{ admin: http.Server; stats: http.Server; health: http.Server }> {
  const servers: http.Server[] = [];
  try {
    servers.push(await listenHttp(createAdminHandler(src), at.adminHost, at.ports.admin));
    servers.push(await listenHttp(createPrometheusHandler(src), at.bindAddress, at.ports.stats));
    servers.push(await listenHttp(createHealthHandler(() => src.state()), at.bindAddress, at.ports.health));
  } catch (err) {
    for (const s of servers) s.close();
    throw new Error(`cannot start the proxy's admin/stats/health servers on ${at.bindAddress}: ${(err as Error).message}`);
  }
  const [admin, stats, health] = servers;
  return { admin, stats, health };
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
