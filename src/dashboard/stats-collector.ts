// Scrapes every connected proxy's Prometheus endpoint (15090/stats/prometheus) every few seconds,
// with a timeout, a size cap and bounded concurrency, and records what the mesh did into the
// traffic history. This is how the dashboard works without a Prometheus server; rounds never
// overlap, and a slow or dead proxy costs one timeout per round, not a stalled collector.
import * as http from 'node:http';
import type { Logger } from '../log/logger';
import { extractIstioTraffic } from './istio-traffic';
import { parsePrometheusText } from './prometheus-text';
import { TrafficHistory, type TargetScrape, type TrafficTick } from './traffic-history';

export interface ScrapeTarget {
  /** http://HOST:PORT/stats/prometheus */
  url: string;
  /** The ADS connections (proxies) served from this address. */
  connectionIds: string[];
}

export interface ScrapeStatus {
  url: string;
  ok: boolean;
  /** Why the last scrape failed. */
  error?: string;
  /** ISO time of the last attempt. */
  at: string;
  durationMs: number;
  /** istio_* edges in the last good scrape. */
  edges?: number;
}

export interface StatsCollectorOptions {
  /** Who to scrape; asked at the start of every round. */
  targets: () => ScrapeTarget[];
  /** Default 5000. */
  intervalMs?: number;
  /** Per scrape. Default 2000. */
  timeoutMs?: number;
  /** Scrapes in flight at once. Default 16. */
  concurrency?: number;
  /** A response larger than this is refused (a proxy with runaway label cardinality). Default 32 MiB. */
  maxBytes?: number;
  /** Rounds kept. Default 120 (10 minutes at 5 s). */
  historyRounds?: number;
  logger?: Logger;
  now?: () => number;
}

/** Istio's Prometheus port on every proxy (Envoy's /stats/prometheus, served by pilot-agent). */
export const PROXY_STATS_PORT = 15090;

export class StatsCollector {
  readonly history: TrafficHistory;
  readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly concurrency: number;
  private readonly maxBytes: number;
  private readonly now: () => number;
  private readonly statuses = new Map<string, ScrapeStatus>();
  private timer?: NodeJS.Timeout;
  private round?: Promise<TrafficTick | undefined>;
  private stopped = false;
  /** Scrapes in flight, cut short by stop() so a control plane shuts down without waiting for them. */
  private readonly inflight = new Set<http.ClientRequest>();
  /** Failing targets already logged, so a dead proxy is one warning, not one per round. */
  private readonly reported = new Set<string>();

  constructor(private readonly options: StatsCollectorOptions) {
    this.intervalMs = options.intervalMs ?? 5000;
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.concurrency = Math.max(1, options.concurrency ?? 16);
    this.maxBytes = options.maxBytes ?? 32 * 1024 * 1024;
    this.now = options.now ?? Date.now;
    this.history = new TrafficHistory(options.historyRounds ?? 120);
  }

  /** Scrapes now, then every interval until stop(). */
  start(): void {
    if (this.timer || this.stopped) return;
    const loop = () => {
      this.collectOnce().finally(() => {
        if (this.stopped) return;
        this.timer = setTimeout(loop, this.intervalMs);
        // The collector must never be what keeps a control plane (or a test) process alive.
        this.timer.unref();
      });
    };
    this.timer = setTimeout(loop, 0);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const req of this.inflight) req.destroy(new Error('the collector stopped'));
    await this.round?.catch(() => undefined);
  }

  /** One round: every target once; resolves with what the round added to the history. */
  collectOnce(): Promise<TrafficTick | undefined> {
    this.round ??= this.runRound().finally(() => (this.round = undefined));
    return this.round;
  }

  /** The last scrape of `url`, if it was tried. */
  status(url: string): ScrapeStatus | undefined {
    return this.statuses.get(url);
  }

  private async runRound(): Promise<TrafficTick | undefined> {
    const targets = this.options.targets();
    const live = new Set(targets.map((t) => t.url));
    for (const url of this.statuses.keys()) if (!live.has(url)) this.statuses.delete(url);
    const scrapes: TargetScrape[] = [];
    let next = 0;
    const worker = async () => {
      while (next < targets.length) {
        const target = targets[next++];
        const scrape = await this.scrape(target.url);
        if (scrape) scrapes.push(scrape);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, targets.length) }, worker));
    return this.history.recordRound(this.now(), scrapes, live);
  }

  private async scrape(url: string): Promise<TargetScrape | undefined> {
    const started = this.now();
    try {
      const text = await this.fetchText(url);
      const edges = extractIstioTraffic(parsePrometheusText(text));
      this.statuses.set(url, { url, ok: true, at: new Date(started).toISOString(), durationMs: this.now() - started, edges: edges.size });
      this.reported.delete(url);
      return { target: url, edges };
    } catch (err) {
      const error = (err as Error).message;
      this.statuses.set(url, { url, ok: false, error, at: new Date(started).toISOString(), durationMs: this.now() - started });
      if (!this.reported.has(url)) {
        this.reported.add(url);
        this.options.logger?.warn('stats_scrape_failed', { url, error, hint: "the dashboard shows no traffic for this proxy until its Prometheus port answers" });
      }
      return undefined;
    }
  }

  private fetchText(url: string): Promise<string> {
    return new Promise((resolve, reject) => {
      // A fresh connection per scrape: a kept-alive socket races the proxy's idle timeout (5 s in
      // node:http, the same as the scrape interval) and would fail now and then with ECONNRESET.
      const req = http.get(url, { agent: false, timeout: this.timeoutMs }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`answered HTTP ${res.statusCode}`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > this.maxBytes) {
            req.destroy(new Error(`response larger than ${this.maxBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        res.on('error', reject);
      });
      // `timeout` is idle time on the socket; the whole scrape also gets a deadline.
      const deadline = setTimeout(() => req.destroy(new Error(`no complete answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', reject);
      this.inflight.add(req);
      req.on('close', () => {
        clearTimeout(deadline);
        this.inflight.delete(req);
      });
    });
  }
}
