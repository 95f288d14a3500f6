// The data-plane benchmark's fixed-rate client, run as its own process by data-plane-lib.ts:
//   node dist/bench/fixed-rate-client.js '<FixedRateOptions as JSON>'
// Requests are scheduled at start + i/rate; latency is measured from the *scheduled* time, so a
// stalled proxy is charged for the requests that queued behind the stall (no coordinated
// omission). The first second is a warm-up and is not recorded. Bounded: after the schedule
// ends, in-flight requests get 5 s, then the client reports them as incomplete and exits.
// Two kinds of request:
//   http1  GET over an undici Pool (HTTP/1.1 keep-alive, `connections` connections); 200 expected
//   grpc   a gRPC unary call over node:http2 (h2c prior knowledge): POST with content-type
//          application/grpc, te: trailers and a length-prefixed message read from a file, spread
//          round-robin over `connections` HTTP/2 connections; expected: :status 200, the whole
//          response message (responseBytes) and grpc-status 0 (in the trailers, or a trailers-only
//          response). A proxy's local reply to a gRPC call is a 200 with grpc-status 14, so the
//          status alone would not tell.
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import { performance } from 'node:perf_hooks';

export type FixedRateRequest = { kind: 'http1' } | { kind: 'grpc'; bodyFile: string; responseBytes: number; streamsPerConnection: number };

export interface FixedRateOptions {
  url: string;
  rate: number;
  seconds: number;
  /** HTTP/1.1: connections; gRPC: concurrent streams (spread over connections / streamsPerConnection). */
  connections: number;
  host?: string;
  request?: FixedRateRequest;
}

export interface FixedRateResult {
  rate: number;
  seconds: number;
  scheduled: number;
  completed: number;
  errors: number;
  incomplete: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  maxLagMs: number;
  /** The first failed request's error, if any (for the log). */
  firstError?: string;
}

interface Sender {
  /** Resolves when the response is complete and as expected; rejects otherwise. */
  send(): Promise<void>;
  close(): Promise<void>;
}

async function http1Sender(o: FixedRateOptions): Promise<Sender> {
  const { Pool } = await import('undici');
  const target = new URL(o.url);
  const pool = new Pool(target.origin, { connections: o.connections, pipelining: 1, keepAliveTimeout: 60_000 });
  return {
    async send() {
      const res = await pool.request({ path: target.pathname, method: 'GET', headers: o.host ? { host: o.host } : undefined });
      await res.body.dump({ limit: 1 << 20 });
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
    },
    close: () => pool.destroy(),
  };
}

/** One gRPC unary call on a session; resolves only for :status 200, the whole message and grpc-status 0. */
export function grpcUnaryCall(session: http2.ClientHttp2Session, path: string, body: Buffer, responseBytes: number, authority?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': path, ...(authority ? { ':authority': authority } : {}), 'content-type': 'application/grpc', te: 'trailers' });
    let status = 0;
    let grpcStatus: string | undefined;
    let bytes = 0;
    req.on('response', (headers) => {
      status = Number(headers[':status']);
      if (headers['grpc-status'] !== undefined) grpcStatus = String(headers['grpc-status']);
    });
    req.on('trailers', (trailers) => {
      if (trailers['grpc-status'] !== undefined) grpcStatus = String(trailers['grpc-status']);
    });
    req.on('data', (chunk: Buffer) => (bytes += chunk.length));
    req.on('error', reject);
    req.on('end', () => {
      if (status !== 200) reject(new Error(`status ${status}`));
      else if (grpcStatus !== '0') reject(new Error(`grpc-status ${grpcStatus ?? '(none)'}`));
      else if (bytes !== responseBytes) reject(new Error(`${bytes} response bytes, expected ${responseBytes}`));
      else resolve();
    });
    req.end(body);
  });
}

async function grpcSender(o: FixedRateOptions, r: Extract<FixedRateRequest, { kind: 'grpc' }>): Promise<Sender> {
  const target = new URL(o.url);
  const body = fs.readFileSync(r.bodyFile);
  const count = Math.max(1, Math.ceil(o.connections / r.streamsPerConnection));
  const sessions = await Promise.all(
    Array.from({ length: count }, () => new Promise<http2.ClientHttp2Session>((resolve, reject) => {
      const s = http2.connect(target.origin);
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    })),
  );
  for (const s of sessions) s.on('error', () => undefined); // a failed session fails its requests, counted as errors
  let next = 0;
  return {
    send: () => grpcUnaryCall(sessions[next++ % sessions.length], target.pathname, body, r.responseBytes, o.host),
    close: async () => {
      for (const s of sessions) s.destroy();
    },
  };
}

export async function runFixedRateClient(o: FixedRateOptions): Promise<FixedRateResult> {
  const request = o.request ?? { kind: 'http1' };
  const sender = request.kind === 'grpc' ? await grpcSender(o, request) : await http1Sender(o);
  const { rate, seconds } = o;
  const warmupSeconds = 1;
  const total = Math.round(rate * (warmupSeconds + seconds));
  const warmup = Math.round(rate * warmupSeconds);
  const intervalMs = 1000 / rate;
  const latencies = new Float64Array(total - warmup);
  let recorded = 0;
  let errors = 0;
  let firstError: string | undefined;
  let inFlight = 0;
  let maxLagMs = 0;
  let issued = 0;
  const start = performance.now() + 20;

  const issue = (index: number, scheduledAt: number) => {
    inFlight++;
    sender
      .send()
      .then(() => {
        if (index >= warmup) latencies[recorded++] = performance.now() - scheduledAt;
      })
      .catch((err: Error) => {
        errors++;
        firstError ??= err.message;
      })
      .finally(() => {
        inFlight--;
      });
  };

  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now();
      while (issued < total && start + issued * intervalMs <= now) {
        const scheduledAt = start + issued * intervalMs;
        maxLagMs = Math.max(maxLagMs, now - scheduledAt);
        issue(issued, scheduledAt);
        issued++;
      }
      if (issued >= total) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  const drainDeadline = performance.now() + 5_000;
  while (inFlight > 0 && performance.now() < drainDeadline) await new Promise((r) => setTimeout(r, 10));
  const incomplete = inFlight;
  await sender.close();
  const sorted = Array.from(latencies.subarray(0, recorded)).sort((a, b) => a - b);
  const pct = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN);
  return {
    rate,
    seconds,
    scheduled: total - warmup,
    completed: recorded,
    errors,
    incomplete,
    p50Ms: pct(50),
    p90Ms: pct(90),
    p99Ms: pct(99),
    maxMs: sorted.length ? sorted[sorted.length - 1] : NaN,
    maxLagMs,
    firstError,
  };
}

if (require.main === module) {
  runFixedRateClient(JSON.parse(process.argv[2]) as FixedRateOptions).then(
    (result) => {
      process.stdout.write(JSON.stringify(result) + '\n');
      process.exit(0); // http2 sessions destroyed, pools closed: nothing left worth waiting for
    },
    (err: Error) => {
      console.error(err.stack);
      process.exit(1);
    },
  );
}
