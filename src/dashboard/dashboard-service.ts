// The dashboard on the control plane's HTTP address: the stats collector (started with the
// address, stopped with it), the JSON it draws from, and the static UI under /ui.
//
//   GET /ui                                     the dashboard (graph, services, config)
//   GET /api/v1/graph[?window=60s]              nodes, edges with golden signals, layout
//   GET /api/v1/services[?window=60s]           services with their inbound signals
//   GET /api/v1/services/NS/NAME/signals[?window=10m]   one service over time
//   GET /api/v1/proxy-health                    every proxy: sync health (STALE/NACK), scrape state
//
// Config and versions come from the existing /debug/configz and /debug/snapshots.
import * as fs from 'node:fs';
import type * as http from 'node:http';
import * as path from 'node:path';
import { isIP } from 'node:net';
import { parseDuration } from '../config/validate/formats';
import type { Logger } from '../log/logger';
import type { ProxyNode } from '../model/proxy';
import type { MeshSnapshot } from '../model/snapshot';
import type { ProxySyncStatus } from '../xds/server/ads-connection';
import { DEFAULT_STALE_AFTER_MS, proxyHealth } from './proxy-health';
import { buildServiceGraph, type MeshProxy } from './service-graph';
import { inboundNumbers, listServices, serviceSignals, type ServingWorkloads } from './service-signals';
import type { TrafficNumbers } from './traffic-numbers';
import { PROXY_STATS_PORT, StatsCollector, type ScrapeTarget } from './stats-collector';
import { sumTicks } from './traffic-history';

/** What the dashboard reads from the control plane (ControlPlane satisfies it). */
export interface DashboardHost {
  readonly ads: { syncStatus(): ProxySyncStatus[] };
  proxyNode(connectionId: string): ProxyNode | undefined;
  current(): MeshSnapshot | undefined;
  readonly logger: Logger;
}

export interface DashboardOptions {
  /** Scrape interval. Default 5000. */
  intervalMs?: number;
  /** How long an unanswered push may wait before the proxy is STALE. */
  staleAfterMs?: number;
  /** Where the UI files are; default: found beside this module or in the source tree. */
  uiDir?: string;
}

export interface DashboardResponse {
  status: number;
  type: string;
  body: string | Buffer;
  headers?: Record<string, string>;
}

const DEFAULT_GRAPH_WINDOW_MS = 60_000;
/** How much traffic history is kept (and the longest window a view can ask for). */
const HISTORY_MS = 10 * 60_000;
const DEFAULT_SIGNALS_WINDOW_MS = HISTORY_MS;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

const UI_FILE = /^\/ui\/([a-z0-9][a-z0-9-]*\.(?:html|js|css|svg))$/;
const SIGNALS_PATH = /^\/api\/v1\/services\/([^/]+)\/([^/]+)\/signals$/;

export class DashboardService {
  readonly collector: StatsCollector;
  private readonly staleAfterMs: number;
  private readonly uiDir: string;

  constructor(
    private readonly host: DashboardHost,
    options: DashboardOptions = {},
  ) {
    this.staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
    this.uiDir = options.uiDir ?? findUiDir();
    this.collector = new StatsCollector({
      targets: () => this.scrapeTargets(),
      intervalMs: options.intervalMs,
      historyRounds: Math.ceil(HISTORY_MS / (options.intervalMs ?? 5000)),
      logger: host.logger.child({ component: 'dashboard' }),
    });
  }

  start(): void {
    this.collector.start();
  }

  stop(): Promise<void> {
    return this.collector.stop();
  }

  /** Whether `pathname` is the dashboard's. */
  serves(pathname: string): boolean {
    return (
      pathname === '/ui' ||
      pathname.startsWith('/ui/') ||
      pathname === '/api/v1/graph' ||
      pathname === '/api/v1/services' ||
      pathname === '/api/v1/proxy-health' ||
      SIGNALS_PATH.test(pathname)
    );
  }

  async handle(req: http.IncomingMessage, url: URL): Promise<DashboardResponse> {
    if (req.method !== 'GET' && req.method !== 'HEAD') return { status: 405, type: 'text/plain', body: 'method not allowed\n', headers: { allow: 'GET' } };
    const p = url.pathname;
    if (p === '/ui' || p === '/ui/') return this.uiFile('index.html');
    const file = UI_FILE.exec(p);
    if (file) return this.uiFile(file[1]);
    try {
      if (p === '/api/v1/graph') return json(this.graph(windowParam(url, DEFAULT_GRAPH_WINDOW_MS)));
      if (p === '/api/v1/services') return json(this.services(windowParam(url, DEFAULT_GRAPH_WINDOW_MS)));
      if (p === '/api/v1/proxy-health') return json(this.proxyHealthView());
      const signals = SIGNALS_PATH.exec(p);
      if (signals) {
        const ref = { namespace: decodeURIComponent(signals[1]), name: decodeURIComponent(signals[2]) };
        const found = this.signals(ref, windowParam(url, DEFAULT_SIGNALS_WINDOW_MS));
        return found ? json(found) : json({ error: `service ${ref.namespace}/${ref.name} not found and no traffic to it recorded` }, 404);
      }
    } catch (err) {
      if (err instanceof WindowError) return json({ error: err.message, hint: 'give a duration such as 30s, 5m or 10m' }, 400);
      throw err;
    }
    return { status: 404, type: 'text/plain', body: `not found: ${p}\n` };
  }

  graph(windowMs: number) {
    const now = Date.now();
    const history = this.collector.history;
    return {
      ...buildServiceGraph({
        window: sumTicks(history.ticksWithin(windowMs, now)),
        history: sumTicks(history.all()),
        proxies: this.proxies(now),
        windowSeconds: windowMs / 1000,
        now,
      }),
      configVersion: this.host.current()?.version,
      collector: this.collectorInfo(),
    };
  }

  services(windowMs: number) {
    const now = Date.now();
    return listServices(this.host.current(), sumTicks(this.collector.history.ticksWithin(windowMs, now)), this.meshedWorkloads());
  }

  /**
   * A service's inbound golden signals (optionally only what `serving`'s workloads served) over
   * the collection rounds that began at or after `since` and ended by `until` (ms since the
   * epoch): what a rollout step or a watched apply judges. `seconds` is the time covered.
   */
  inboundSince(ref: { namespace: string; name: string }, since: number, until = Date.now(), serving?: ServingWorkloads): TrafficNumbers & { seconds: number } {
    const ticks = this.collector.history.all().filter((t) => t.at - t.seconds * 1000 >= since - 1 && t.at <= until);
    const window = sumTicks(ticks);
    return { ...inboundNumbers({ snapshot: this.host.current(), ref, window, meshed: this.meshedWorkloads(), serving }), seconds: window.seconds };
  }

  /** When the collector's last round ended (ms since the epoch), if it ran. */
  get lastRoundAt(): number | undefined {
    return this.collector.history.lastRound;
  }

  signals(ref: { namespace: string; name: string }, windowMs: number) {
    const ticks = this.collector.history.ticksWithin(windowMs, Date.now());
    return serviceSignals({
      snapshot: this.host.current(),
      ref,
      ticks,
      window: sumTicks(ticks),
      windowSeconds: windowMs / 1000,
      meshed: this.meshedWorkloads(),
    });
  }

  proxyHealthView() {
    const now = Date.now();
    const statuses = this.host.ads.syncStatus();
    return {
      configVersion: this.host.current()?.version,
      staleAfterSeconds: this.staleAfterMs / 1000,
      collector: this.collectorInfo(),
      proxies: this.proxies(now, statuses).map((p, i) => ({
        ...p,
        connectedAt: statuses[i].connectedAt,
        types: statuses[i].types.map((t) => ({ type: t.type, state: t.state, versionSent: t.versionSent, versionAcked: t.versionAcked, lastNack: t.lastNack })),
      })),
    };
  }

  private collectorInfo() {
    const last = this.collector.history.lastRound;
    return { intervalSeconds: this.collector.intervalMs / 1000, lastRoundAt: last === undefined ? undefined : new Date(last).toISOString() };
  }

  private proxies(now: number, statuses = this.host.ads.syncStatus()): MeshProxy[] {
    return statuses.map((status) => {
      const node = this.host.proxyNode(status.connectionId);
      const url = scrapeUrl(node, status.address);
      const scrape = url ? this.collector.status(url) : undefined;
      return {
        id: status.id,
        type: status.type,
        namespace: status.namespace,
        ...(node?.workloadName ? { workload: node.workloadName } : {}),
        labels: node?.labels ?? {},
        health: proxyHealth(status, now, this.staleAfterMs),
        ...(status.snapshotVersion ? { snapshotVersion: status.snapshotVersion } : {}),
        ...(url ? { scrape: { url, ok: scrape?.ok ?? false, ...(scrape?.error ? { error: scrape.error } : {}), ...(scrape ? { at: scrape.at } : {}) } } : {}),
      };
    });
  }

  private meshedWorkloads(): Set<string> {
    const out = new Set<string>();
    for (const status of this.host.ads.syncStatus()) {
      const node = this.host.proxyNode(status.connectionId);
      if (status.type === 'sidecar' && node?.workloadName) out.add(`${status.namespace}/${node.workloadName}`);
    }
    return out;
  }

  /** One target per stats address (a proxy that reconnected has two streams for a moment). */
  private scrapeTargets(): ScrapeTarget[] {
    const byUrl = new Map<string, ScrapeTarget>();
    for (const status of this.host.ads.syncStatus()) {
      if (status.type === 'proxyless') continue;
      const url = scrapeUrl(this.host.proxyNode(status.connectionId), status.address);
      if (!url) continue;
      const target = byUrl.get(url) ?? { url, connectionIds: [] };
      target.connectionIds.push(status.connectionId);
      byUrl.set(url, target);
    }
    return [...byUrl.values()];
  }

  private async uiFile(name: string): Promise<DashboardResponse> {
    try {
      const body = await fs.promises.readFile(path.join(this.uiDir, name));
      return { status: 200, type: CONTENT_TYPES[path.extname(name)] ?? 'application/octet-stream', body, headers: { 'cache-control': 'no-cache' } };
    } catch {
      return { status: 404, type: 'text/plain', body: `not found: /ui/${name}\n` };
    }
  }
}

/**
 * Where a proxy's Prometheus endpoint is: its first workload address (INSTANCE_IPS), which is
 * also what a gateway bound to 127.0.0.1 reports; when that is a wildcard address, the address
 * its xDS stream comes from.
 */
export function scrapeUrl(node: Pick<ProxyNode, 'ips'> | undefined, peer: string): string | undefined {
  let host = node?.ips.find((ip) => ip !== '' && ip !== '0.0.0.0' && ip !== '::');
  host ??= peerHost(peer);
  if (!host) return undefined;
  return `http://${isIP(host) === 6 ? `[${host}]` : host}:${PROXY_STATS_PORT}/stats/prometheus`;
}

/** The host of a gRPC peer string: `127.0.0.1:5555`, `[::1]:5555`, `ipv4:…`, `::ffff:127.0.0.1`. */
function peerHost(peer: string): string | undefined {
  const bare = peer.replace(/^ipv[46]:/, '');
  const m = /^\[([^\]]+)\]:\d+$/.exec(bare) ?? /^([^:]+):\d+$/.exec(bare);
  const host = m?.[1];
  if (!host) return undefined;
  return host.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
}

class WindowError extends Error {}

/** `?window=`: a duration (30s, 5m) or seconds, between 5 s and the 10 minutes kept. */
function windowParam(url: URL, fallbackMs: number): number {
  const text = url.searchParams.get('window');
  if (text === null || text === '') return fallbackMs;
  const ms = /^\d+(\.\d+)?$/.test(text) ? Number(text) * 1000 : parseDuration(text);
  if (ms === undefined || !(ms > 0)) throw new WindowError(`window "${text}" is not a duration`);
  return Math.min(Math.max(ms, 5000), HISTORY_MS);
}

function json(value: unknown, status = 200): DashboardResponse {
  return { status, type: 'application/json', body: JSON.stringify(value) + '\n', headers: { 'cache-control': 'no-cache' } };
}

/**
 * The UI files: copied beside the compiled module, or (how `bin/weft` and tests run, compiled to
 * dist/src/dashboard) in the source tree, src/dashboard/ui — no build step for plain browser files.
 */
function findUiDir(): string {
  const candidates = [path.join(__dirname, 'ui'), path.resolve(__dirname, '..', '..', '..', 'src', 'dashboard', 'ui')];
  return candidates.find((dir) => fs.existsSync(path.join(dir, 'index.html'))) ?? candidates[candidates.length - 1];
}
