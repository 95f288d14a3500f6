// A bounded load client in the spirit of Istio's fortio (`fortio load -c N -n M`): N keep-alive
// connections, each sending its next request as soon as the last answered, until M requests
// have been sent in all or the time limit passes. It counts response codes, Envoy's overload
// marker (x-envoy-overloaded) and client-side errors, keeps each response's time and status,
// and prints fortio's summary lines ("Code 200 : 17 (85.0 %)").
import * as http from 'node:http';

export interface LoadOptions {
  /** Where to connect: a sidecar's outbound listener (HTTP_PROXY style) or any HTTP server. */
  address: string;
  port: number;
  /** An absolute URI (`http://httpbin:8000/get`) sent as a forward-proxy request, or a path. */
  url: string;
  /** Host header; default: the URI's authority. */
  host?: string;
  method?: string;
  /** Concurrent connections (fortio -c). */
  connections: number;
  /** Requests in all (fortio -n). */
  requests: number;
  /** Stop sending after this long even if requests remain. */
  maxDurationMs: number;
  /** A request with no answer after this long counts as an error. Default 15 s. */
  requestTimeoutMs?: number;
  /** Called after each response, with how many have completed (to act mid-run). */
  onResponse?(completed: number, sample: LoadSample): void;
  /** Stop sending once this says so (the run ends when requests in flight answer). */
  until?(): boolean;
}

export interface LoadSample {
  /** Milliseconds since the run started, when the response ended. */
  at: number;
  /** 0: no response (connection error or client timeout). */
  status: number;
  latencyMs: number;
  overloaded: boolean;
}

export interface LoadResult {
  sent: number;
  completed: number;
  /** By status code; `-1` counts client-side errors, as fortio does. */
  codes: Record<string, number>;
  /** Responses that were not 2xx, and errors. */
  failed: number;
  /** Responses carrying x-envoy-overloaded (circuit breaker overflow). */
  overloaded: number;
  durationMs: number;
  qps: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  samples: LoadSample[];
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const started = performance.now();
  const deadline = started + o.maxDurationMs;
  const target = /^https?:\/\//.test(o.url) ? new URL(o.url) : undefined;
  const host = o.host ?? target?.host ?? `${o.address}:${o.port}`;
  const samples: LoadSample[] = [];
  let sent = 0;

  const one = (agent: http.Agent): Promise<void> =>
    new Promise((resolve) => {
      const t0 = performance.now();
      let done = false;
      const finish = (status: number, overloaded: boolean) => {
        if (done) return;
        done = true;
        const now = performance.now();
        const sample = { at: now - started, status, latencyMs: now - t0, overloaded };
        samples.push(sample);
        o.onResponse?.(samples.length, sample);
        resolve();
      };
      const req = http.request(
        { host: o.address, port: o.port, method: o.method ?? 'GET', path: o.url, headers: { host, 'user-agent': 'weft-load/1' }, agent },
        (res) => {
          res.resume();
          res.on('end', () => finish(res.statusCode ?? 0, res.headers['x-envoy-overloaded'] !== undefined));
          res.on('error', () => finish(0, false));
        },
      );
      req.setTimeout(o.requestTimeoutMs ?? 15_000, () => req.destroy(new Error('client timeout')));
      req.on('error', () => finish(0, false));
      req.end();
    });

  const worker = async () => {
    // One connection per worker, as fortio's -c: keep-alive, at most one socket.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      while (sent < o.requests && performance.now() < deadline && !o.until?.()) {
        sent++;
        await one(agent);
      }
    } finally {
      agent.destroy();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, o.connections) }, worker));

  const durationMs = performance.now() - started;
  const codes: Record<string, number> = {};
  let failed = 0;
  let overloaded = 0;
  for (const s of samples) {
    const key = s.status === 0 ? '-1' : String(s.status);
    codes[key] = (codes[key] ?? 0) + 1;
    if (s.status < 200 || s.status >= 300) failed++;
    if (s.overloaded) overloaded++;
  }
  const latencies = samples.map((s) => s.latencyMs).sort((a, b) => a - b);
  return {
    sent,
    completed: samples.length,
    codes,
    failed,
    overloaded,
    durationMs,
    qps: samples.length / (durationMs / 1000),
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.at(-1) ?? 0,
    samples,
  };
}

/** fortio's summary: the run, latency percentiles, then one line per code with its share. */
export function formatLoadResult(label: string, r: LoadResult): string {
  const lines = [
    `${label}: ${r.completed} calls in ${(r.durationMs / 1000).toFixed(2)} s, ${r.qps.toFixed(1)} qps; p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms, max ${r.maxMs.toFixed(1)} ms`,
  ];
  for (const code of Object.keys(r.codes).sort()) {
    lines.push(`  Code ${code} : ${r.codes[code]} (${((100 * r.codes[code]) / Math.max(1, r.completed)).toFixed(1)} %)`);
  }
  if (r.overloaded) lines.push(`  x-envoy-overloaded: ${r.overloaded}`);
  return lines.join('\n');
}
