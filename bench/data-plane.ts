// Data-plane benchmark (issue 3, first part of issue 8): HTTP/1.1 keep-alive, 1 KB responses, on
// loopback. One table, measured in one run, side by side:
//   direct      wrk -> backend
//   weft proxy  wrk -> Weft gateway proxy (bin/weft proxy --gateway, configured over ADS) -> backend
//   weft proxy (telemetry off)  the same with --telemetry off (no Istio metrics, no metadata
//               exchange), on 127.0.0.2: what the standard metrics cost per request
//   nginx proxy wrk -> nginx reverse proxy (bench/nginx/nginx.conf.template) -> backend
//   weft sidecar pair (mTLS + telemetry)  the real mesh path: wrk -> client sidecar (outbound
//               127.0.50.1:15001, Host: server:18090) -> mutual TLS -> server sidecar
//               (127.0.50.2:18090) -> backend on the server's app address 127.178.50.2:18090; both
//               are `bin/weft proxy --workload` with workload certificates from the control plane's CA
//   nginx pair (TLS)  the like-for-like reference: wrk -> nginx A -> TLS 1.3 with a client
//               certificate, verified both ways -> nginx B -> backend (bench/nginx/nginx-pair-*.template)
// Columns: requests/s at saturation (wrk), proxy CPU microseconds per request (/proc/<pid>/stat),
// p50/p99 at a fixed 1,000 requests/s (the coordinated-omission-aware client below, in its own
// process), proxy RSS at 1,000 requests/s and peak RSS (VmHWM). The proxy is pinned to the last
// core, wrk, the fixed-rate client and the backend to core 0 (taskset), when there are two cores.
// A pair's CPU and memory are both proxies' (both pinned to the proxy core); its +p50/+p99 are what
// the two hops add to direct, and its ratios are against the nginx pair.
//   npm run bench                       (build, install wrk/nginx, run)
//   node dist/bench/data-plane.js [--runs 3] [--duration 7] [--rate 1000] [--connections 32] [--profile-proxy DIR]
//                                 [--targets direct,weft,weft-telemetry-off,nginx,weft-pair,nginx-pair]   (a focused run: a subset)
// Writes bench/results/data-plane.json. Every child process is stopped on exit, failure or Ctrl-C.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { appAddressFor } from '../src/model/proxy';

const REPO = path.resolve(__dirname, '..', '..');
const HOST = '127.0.0.1';
/** The telemetry-off gateway binds the same ports on a second loopback address. */
const HOST_TELEMETRY_OFF = '127.0.0.2';
const PORTS = { backend: 18080, pair: 18090, nginxProxy: 18081, weftGateway: 18082, xds: 18010, secureXds: 18012, controlHttp: 18014, nginxPairA: 18091, nginxPairB: 18092 } as const;
/** The sidecar pair: two WorkloadEntries, each sidecar on its own loopback address (like `weft demo`). */
const PAIR = { client: '127.0.50.1', server: '127.0.50.2', host: 'server:18090' } as const;
/** Every port a sidecar binds on its workload address (outbound, inbound, admin, stats, health). */
const SIDECAR_PORTS = [15001, 15006, 15000, 15090, 15021];
const WEFT_PAIR = 'weft sidecar pair (mTLS + telemetry)';
const NGINX_PAIR = 'nginx pair (TLS)';
const ALL_TARGETS = ['direct', 'weft', 'weft-telemetry-off', 'nginx', 'weft-pair', 'nginx-pair'];
const WEFT_ADMIN_PORTS = [15000, 15090, 15021];
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

// ---------------------------------------------------------------------------------------------
// Fixed-rate client (runs as a child: `data-plane.js --fixed-rate-client URL RATE SECONDS CONNS`).
// Requests are scheduled at start + i/rate; latency is measured from the *scheduled* time, so a
// stalled proxy is charged for the requests that queued behind the stall (no coordinated
// omission). The first second is a warm-up and is not recorded. Bounded: after the schedule
// ends, in-flight requests get 5 s, then the client reports them as incomplete and exits.

interface FixedRateResult {
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
}

async function runFixedRateClient(url: string, rate: number, seconds: number, connections: number, host?: string): Promise<void> {
  const { Pool } = await import('undici');
  const target = new URL(url);
  const pool = new Pool(target.origin, { connections, pipelining: 1, keepAliveTimeout: 60_000 });
  const warmupSeconds = 1;
  const total = Math.round(rate * (warmupSeconds + seconds));
  const warmup = Math.round(rate * warmupSeconds);
  const intervalMs = 1000 / rate;
  const latencies = new Float64Array(total - warmup);
  let recorded = 0;
  let errors = 0;
  let completed = 0;
  let inFlight = 0;
  let maxLagMs = 0;
  let issued = 0;
  const start = performance.now() + 20;

  const issue = (index: number, scheduledAt: number) => {
    inFlight++;
    pool
      .request({ path: target.pathname, method: 'GET', headers: host ? { host } : undefined })
      .then(async (res) => {
        await res.body.dump({ limit: 1 << 20 });
        if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
        if (index >= warmup) latencies[recorded++] = performance.now() - scheduledAt;
        completed++;
      })
      .catch(() => {
        errors++;
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
  await pool.destroy();
  const sorted = Array.from(latencies.subarray(0, recorded)).sort((a, b) => a - b);
  const pct = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN);
  const result: FixedRateResult = {
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
  };
  void completed;
  process.stdout.write(JSON.stringify(result) + '\n');
}

// ---------------------------------------------------------------------------------------------
// Child processes: every one is tracked and stopped on exit, failure, SIGINT and SIGTERM.

interface Managed {
  name: string;
  child: ChildProcess;
  exited: Promise<void>;
}

const managed = new Set<Managed>();
/** Scratch directory (configs, logs, the static file); removed at the end, kept on failure. */
let workDir: string | undefined;
let interrupted = false;

function startProcess(name: string, command: string, args: string[], logFile?: string): Managed {
  const out = logFile ? fs.openSync(logFile, 'a') : 'ignore';
  const child = spawn(command, args, { stdio: ['ignore', out, out], cwd: REPO });
  if (typeof out === 'number') fs.closeSync(out);
  const m: Managed = { name, child, exited: new Promise((resolve) => child.once('exit', () => resolve())) };
  child.once('error', (err) => console.error(`bench: ${name} failed to start: ${err.message}`));
  managed.add(m);
  void m.exited.then(() => managed.delete(m));
  return m;
}

/** Children of `pid` (nginx workers), from /proc. */
function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // the process exited while we looked
    }
  }
  return out;
}

async function stopProcess(m: Managed, graceMs = 3_000): Promise<void> {
  if (m.child.exitCode !== null || m.child.signalCode !== null) return;
  const workers = m.child.pid ? childPids(m.child.pid) : [];
  m.child.kill('SIGTERM');
  const timedOut = await Promise.race([m.exited.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), graceMs))]);
  if (timedOut) m.child.kill('SIGKILL');
  await m.exited;
  for (const pid of workers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone, as expected
    }
  }
}

async function stopAll(): Promise<void> {
  await Promise.all([...managed].reverse().map((m) => stopProcess(m)));
}

function killAllNow(): void {
  for (const m of managed) {
    if (m.child.exitCode !== null || m.child.signalCode !== null || !m.child.pid) continue;
    for (const pid of [...childPids(m.child.pid), m.child.pid]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Measurement helpers.

/** utime + stime of a process in microseconds (all its threads). */
function cpuMicros(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLK_TCK;
}

function statusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) : NaN;
}

interface Target {
  name: string;
  url: string;
  /** Host header to send (the sidecar pair routes by it); default: the URL's. */
  host?: string;
  /** Processes whose CPU and memory are "the proxy" (nginx: master + worker); empty for direct. */
  pids: () => number[];
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
const proxyCpu = (t: Target) => sum(t.pids().map(cpuMicros));

function median(values: number[]): number {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function run(command: string, args: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const m = startProcessPiped(command, args);
    let stdout = '';
    let stderr = '';
    m.child.stdout!.on('data', (d) => (stdout += d));
    m.child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => m.child.kill('SIGKILL'), timeoutMs);
    m.child.once('error', reject);
    m.child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code });
    });
  });
}

function startProcessPiped(command: string, args: string[]): Managed {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO });
  const m: Managed = { name: command, child, exited: new Promise((resolve) => child.once('exit', () => resolve())) };
  managed.add(m);
  void m.exited.then(() => managed.delete(m));
  return m;
}

interface Pinning {
  enabled: boolean;
  proxyCpu: string;
  loadCpu: string;
  note: string;
}

function pinned(pin: Pinning, cpu: string, command: string, args: string[]): [string, string[]] {
  return pin.enabled ? ['taskset', ['-c', cpu, command, ...args]] : [command, args];
}

interface SaturationResult {
  rps: number;
  requests: number;
  errors: number;
  cpuUsPerRequest: number;
}

async function saturate(t: Target, pin: Pinning, seconds: number, connections: number): Promise<SaturationResult> {
  const before = proxyCpu(t);
  const [cmd, args] = pinned(pin, pin.loadCpu, 'wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, ...(t.host ? ['-H', `Host: ${t.host}`] : []), t.url]);
  const { stdout, stderr, code } = await run(cmd, args, (seconds + 15) * 1000);
  const after = proxyCpu(t);
  if (code !== 0) throw new Error(`wrk against ${t.name} exited with ${code}: ${stderr.trim()}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  const requests = Number(/(\d+) requests in/.exec(stdout)?.[1]);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const errors = non2xx + (socket ? sum(socket.slice(1).map(Number)) : 0);
  return { rps, requests, errors, cpuUsPerRequest: t.pids().length ? (after - before) / requests : NaN };
}

interface FixedRateRun extends FixedRateResult {
  /** Proxy CPU over the measured window as a fraction of one core. */
  proxyCores: number;
}

async function fixedRate(t: Target, pin: Pinning, rate: number, seconds: number, connections: number): Promise<FixedRateRun> {
  const script = __filename;
  const before = proxyCpu(t);
  const startedAt = performance.now();
  const [cmd, args] = pinned(pin, pin.loadCpu, process.execPath, [script, '--fixed-rate-client', t.url, String(rate), String(seconds), String(connections), t.host ?? '']);
  const { stdout, stderr, code } = await run(cmd, args, (seconds + 20) * 1000);
  const elapsedUs = (performance.now() - startedAt) * 1000;
  const after = proxyCpu(t);
  if (code !== 0) throw new Error(`fixed-rate client against ${t.name} exited with ${code}: ${stderr.trim()}`);
  const result = JSON.parse(stdout.trim().split('\n').pop()!) as FixedRateResult;
  return { ...result, proxyCores: t.pids().length ? (after - before) / elapsedUs : NaN };
}

async function waitForHttp200(url: string, what: string, timeoutMs: number, logFile?: string, host?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const status = await new Promise<number | string>((resolve) => {
      const req = http.get(url, { timeout: 1000, headers: host ? { host } : undefined }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err) => resolve(err.message));
    });
    if (status === 200) return;
    last = String(status);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not answer 200 at ${url} within ${timeoutMs} ms (last: ${last})${logFile ? `; see ${logFile}` : ''}`);
}

function portFree(port: number, host = HOST): Promise<boolean> {
  return new Promise((resolve) => {
    const server = http.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

function findNginx(): string {
  for (const candidate of ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx']) if (fs.existsSync(candidate)) return candidate;
  const which = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return which.stdout.trim();
  throw new Error('nginx not found (hint: run `bash bench/install-tools.sh` as root)');
}

function fillTemplate(file: string, values: Record<string, string>): string {
  return fs.readFileSync(file, 'utf8').replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    if (!(key in values)) throw new Error(`${file}: no value for {{${key}}}`);
    return values[key];
  });
}

function meshYaml(): string {
  return `# Written by bench/data-plane.ts: one backend Service and a gateway routing everything to it.
apiVersion: v1
kind: Service
metadata: {name: backend, namespace: default}
spec:
  selector: {app: backend}
  ports:
  - {name: http, port: ${PORTS.backend}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: backend-1, namespace: default}
spec:
  address: ${HOST}
  labels: {app: backend}
  ports: {http: ${PORTS.backend}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bench-gateway, namespace: default}
spec:
  selector: {istio: bench-gateway}
  servers:
  - port: {number: ${PORTS.weftGateway}, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bench-gateway-telemetry-off, namespace: default}
spec:
  selector: {istio: bench-gateway-telemetry-off}
  servers:
  - port: {number: ${PORTS.weftGateway}, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bench, namespace: default}
spec:
  hosts: ["*"]
  gateways: [bench-gateway, bench-gateway-telemetry-off]
  http:
  - route:
    - destination: {host: backend, port: {number: ${PORTS.backend}}}
---
# The sidecar pair: a client workload calling Service "server" through its sidecar. Both have a
# serviceAccount, so each sidecar gets its workload certificate and auto mTLS is on between them.
apiVersion: v1
kind: Service
metadata: {name: server, namespace: default}
spec:
  selector: {app: server}
  ports:
  - {name: http, port: ${PORTS.pair}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: server-1, namespace: default}
spec: {address: ${PAIR.server}, labels: {app: server}, serviceAccount: server}
---
apiVersion: v1
kind: Service
metadata: {name: client, namespace: default}
spec:
  selector: {app: client}
  ports:
  - {name: http, port: ${PORTS.pair}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client-1, namespace: default}
spec: {address: ${PAIR.client}, labels: {app: client}, serviceAccount: client}
`;
}

/** A CA and two ECDSA P-256 certificates (like Weft's workload certificates) for the nginx pair. */
function makeNginxPairCerts(dir: string, serverName: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const openssl = (...args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8', timeout: 20_000 });
    if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${(r.stderr || r.error?.message || '').trim()} (hint: install openssl, e.g. bash scripts/ensure-test-tools.sh)`);
  };
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl('req', '-x509', ...ecKey, '-keyout', 'ca-key.pem', '-out', 'ca-cert.pem', '-days', '2', '-subj', '/CN=weft-bench-ca');
  for (const [name, ext] of [
    ['server', `subjectAltName=DNS:${serverName}\nextendedKeyUsage=serverAuth`],
    ['client', 'subjectAltName=DNS:nginx-pair-a.bench\nextendedKeyUsage=clientAuth'],
  ]) {
    fs.writeFileSync(path.join(dir, `${name}.ext`), ext + '\n');
    openssl('req', '-new', ...ecKey, '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca-cert.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}-cert.pem`);
  }
  // nginx workers run as nobody and read the keys at start from the master (root), but keep them readable.
  for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o644);
}

/** The server sidecar's Istio request counters: all of them, and those it reported as mutual TLS. */
async function serverSidecarMtls(): Promise<{ requests: number; mutualTls: number }> {
  const res = await fetch(`http://${PAIR.server}:15090/stats/prometheus`, { signal: AbortSignal.timeout(5_000) });
  const text = await res.text();
  let requests = 0;
  let mutualTls = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('istio_requests_total{') || !line.includes('reporter="destination"')) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    requests += value;
    if (line.includes('connection_security_policy="mutual_tls"')) mutualTls += value;
  }
  return { requests, mutualTls };
}

function machineDescription(): Record<string, string | number> {
  const firstLine = (r: ReturnType<typeof spawnSync>) => `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0];
  return {
    nproc: os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    nginx: firstLine(spawnSync(findNginx(), ['-v'], { encoding: 'utf8' })),
    wrk: firstLine(spawnSync('wrk', ['-v'], { encoding: 'utf8' })).replace(/ Copyright.*/, ''),
    loadAverage1m: Math.round(os.loadavg()[0] * 100) / 100,
  };
}

// ---------------------------------------------------------------------------------------------
// The benchmark.

interface Row {
  name: string;
  saturation: SaturationResult[];
  fixedRate: FixedRateRun[];
  rssAtRateMb: number;
  peakRssMb: number;
}

const fmt = (v: number, digits = 0) => (Number.isFinite(v) ? v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '-');
const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}x` : '-');

function summarize(row: Row) {
  return {
    rps: median(row.saturation.map((r) => r.rps)),
    cpuUs: median(row.saturation.map((r) => r.cpuUsPerRequest)),
    p50: median(row.fixedRate.map((r) => r.p50Ms)),
    p90: median(row.fixedRate.map((r) => r.p90Ms)),
    p99: median(row.fixedRate.map((r) => r.p99Ms)),
    coresAtRate: median(row.fixedRate.map((r) => r.proxyCores)),
    errors: sum(row.saturation.map((r) => r.errors)) + sum(row.fixedRate.map((r) => r.errors + r.incomplete)),
  };
}

const NO_ROW = { rps: NaN, cpuUs: NaN, p50: NaN, p90: NaN, p99: NaN, coresAtRate: NaN, errors: 0 };

function table(rows: Row[]): string {
  const s = new Map(rows.map((r) => [r.name, summarize(r)]));
  // A focused run may leave out direct or nginx: their columns are then '-'.
  const direct = s.get('direct') ?? NO_ROW;
  // The pairs are compared with the nginx pair, the single proxies with the single nginx.
  const nginxFor = (name: string) => s.get(name === WEFT_PAIR || name === NGINX_PAIR ? NGINX_PAIR : 'nginx proxy') ?? NO_ROW;
  const header = ['', 'req/s', 'vs direct', 'vs nginx', 'CPU us/req', 'vs nginx', 'p50 ms', 'p90 ms', 'p99 ms', '+p50 ms', '+p99 ms', 'p99 vs nginx', 'cores@rate', 'RSS MB', 'peak RSS MB', 'errors'];
  const lines = rows.map((row) => {
    const x = s.get(row.name)!;
    const nginx = nginxFor(row.name);
    const isDirect = row.name === 'direct';
    return [
      row.name,
      fmt(x.rps),
      ratio(x.rps, direct.rps),
      ratio(x.rps, nginx.rps),
      fmt(x.cpuUs, 1),
      isDirect ? '-' : ratio(x.cpuUs, nginx.cpuUs),
      fmt(x.p50, 3),
      fmt(x.p90, 3),
      fmt(x.p99, 3),
      isDirect ? '-' : fmt(x.p50 - direct.p50, 3),
      isDirect ? '-' : fmt(x.p99 - direct.p99, 3),
      ratio(x.p99, nginx.p99),
      isDirect ? '-' : fmt(x.coresAtRate, 3),
      isDirect ? '-' : fmt(row.rssAtRateMb, 1),
      isDirect ? '-' : fmt(row.peakRssMb, 1),
      String(x.errors),
    ];
  });
  const all = [header, ...lines];
  const widths = header.map((_, i) => Math.max(...all.map((l) => l[i].length)));
  const render = (l: string[]) => l.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  return [render(header), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(render)].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      duration: { type: 'string', default: '7' },
      rate: { type: 'string', default: '1000' },
      connections: { type: 'string', default: '32' },
      'warmup-seconds': { type: 'string', default: '3' },
      /** Write a V8 CPU profile of the Weft proxy (node --cpu-prof) into this directory. */
      'profile-proxy': { type: 'string' },
      /** Which rows to measure (comma list of ALL_TARGETS). */
      targets: { type: 'string', default: ALL_TARGETS.join(',') },
    },
  });
  const wanted = new Set(values.targets!.split(',').map((t) => t.trim()).filter(Boolean));
  for (const t of wanted) {
    if (!ALL_TARGETS.includes(t)) throw new Error(`--targets: unknown target "${t}" (${ALL_TARGETS.join(', ')})`);
  }
  const runs = Number(values.runs);
  const seconds = Number(values.duration);
  const rate = Number(values.rate);
  const connections = Number(values.connections);
  const warmupSeconds = Number(values['warmup-seconds']);
  const startedAt = Date.now();

  const nginxBin = findNginx();
  for (const [name, port] of Object.entries(PORTS)) {
    if (!(await portFree(port))) throw new Error(`port ${HOST}:${port} (${name}) is in use (hint: is another benchmark running?)`);
  }
  for (const host of wanted.has('weft-telemetry-off') ? [HOST, HOST_TELEMETRY_OFF] : [HOST]) {
    for (const port of [...WEFT_ADMIN_PORTS, ...(host === HOST ? [] : [PORTS.weftGateway])]) {
      if (!(await portFree(port, host))) throw new Error(`port ${host}:${port} (a Weft gateway's listener/admin/stats/health) is in use (hint: is a weft proxy running on ${host}?)`);
    }
  }
  if (wanted.has('weft-pair')) {
    for (const [host, port] of [...SIDECAR_PORTS.flatMap((p) => [[PAIR.client, p], [PAIR.server, p]] as const), [PAIR.server, PORTS.pair], [appAddressFor(PAIR.server), PORTS.pair]] as const) {
      if (!(await portFree(port, host))) throw new Error(`port ${host}:${port} (the sidecar pair's) is in use (hint: is a weft proxy or demo running?)`);
    }
  }

  const ncpu = os.availableParallelism();
  const hasTaskset = spawnSync('sh', ['-c', 'command -v taskset'], { encoding: 'utf8' }).status === 0;
  const last = String(ncpu - 1);
  const pin: Pinning =
    hasTaskset && ncpu >= 2
      ? { enabled: true, proxyCpu: last, loadCpu: '0', note: `proxy pinned to CPU ${last}; wrk, the fixed-rate client, the backend and the control plane to CPU 0 (taskset)` }
      : { enabled: false, proxyCpu: '', loadCpu: '', note: hasTaskset ? 'one CPU: nothing pinned, everything shares it' : 'taskset not found: nothing pinned' };

  const machine = machineDescription();
  console.log(`data-plane benchmark: HTTP/1.1 keep-alive, 1 KB responses, loopback`);
  console.log(`machine: ${machine.nproc} CPU (${machine.cpu}), ${machine.memoryGb} GB, ${machine.kernel}, load avg ${machine.loadAverage1m}`);
  console.log(`tools:   node ${machine.node}, ${machine.nginx}, ${machine.wrk}`);
  console.log(`pinning: ${pin.note}`);
  console.log(
    `load:    saturation wrk -t1 -c${connections} -d${seconds}s; fixed rate ${rate} req/s for ${seconds}s (+1s warm-up) from a Node undici client, ` +
      `latency from scheduled start; ${runs} run(s) of each, medians shown`,
  );

  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-bench-'));
  workDir = work;
  fs.chmodSync(work, 0o755); // nginx workers run as nobody and read the static file from here
  fs.mkdirSync(path.join(work, 'tmp'));
  fs.mkdirSync(path.join(work, 'www'));
  fs.mkdirSync(path.join(work, 'mesh'));
  fs.chmodSync(path.join(work, 'www'), 0o755);
  fs.writeFileSync(path.join(work, 'www', '1k.bin'), Buffer.alloc(1024, 'x'), { mode: 0o644 });
  const log = (name: string) => path.join(work, `${name}.log`);

  // Backend: a static nginx (cheaper per request than any Node server, so it never limits the proxies).
  const backendConf = path.join(work, 'backend.conf');
  // It also listens on the server workload's app address, where the server sidecar forwards to.
  const backendListens = [`${HOST}:${PORTS.backend}`, ...(wanted.has('weft-pair') ? [`${appAddressFor(PAIR.server)}:${PORTS.pair}`] : [])];
  fs.writeFileSync(
    backendConf,
    fillTemplate(path.join(REPO, 'bench/nginx/backend.conf.template'), { PREFIX: work, LISTENS: backendListens.map((l) => `listen ${l} reuseport;`).join('\n    '), ROOT: path.join(work, 'www') }),
  );
  const backend = startProcess('backend nginx', ...pinned(pin, pin.loadCpu, nginxBin, ['-p', work, '-c', backendConf]), log('backend'));
  await waitForHttp200(`http://${HOST}:${PORTS.backend}/`, 'backend nginx', 10_000, path.join(work, 'backend-nginx-error.log'));
  void backend;

  // nginx as a reverse proxy.
  let nginxProxy: Managed | undefined;
  if (wanted.has('nginx')) {
    const proxyConf = path.join(work, 'proxy-nginx.conf');
    fs.writeFileSync(proxyConf, fillTemplate(path.join(REPO, 'bench/nginx/nginx.conf.template'), { PREFIX: work, LISTEN: `${HOST}:${PORTS.nginxProxy}`, BACKEND: `${HOST}:${PORTS.backend}` }));
    nginxProxy = startProcess('proxy nginx', ...pinned(pin, pin.proxyCpu, nginxBin, ['-p', work, '-c', proxyConf]), log('proxy-nginx'));
    await waitForHttp200(`http://${HOST}:${PORTS.nginxProxy}/`, 'nginx reverse proxy', 10_000, path.join(work, 'proxy-nginx-error.log'));
  }

  // The nginx pair: A (plain in, TLS with a client certificate out) -> B (mutual TLS in) -> backend.
  let nginxPair: Managed[] = [];
  if (wanted.has('nginx-pair')) {
    const certs = path.join(work, 'certs');
    const serverName = 'nginx-pair-b.bench';
    makeNginxPairCerts(certs, serverName);
    const confB = path.join(work, 'pair-b-nginx.conf');
    const confA = path.join(work, 'pair-a-nginx.conf');
    fs.writeFileSync(confB, fillTemplate(path.join(REPO, 'bench/nginx/nginx-pair-b.conf.template'), { PREFIX: work, LISTEN: `${HOST}:${PORTS.nginxPairB}`, BACKEND: `${HOST}:${PORTS.backend}`, CERTS: certs }));
    fs.writeFileSync(
      confA,
      fillTemplate(path.join(REPO, 'bench/nginx/nginx-pair-a.conf.template'), { PREFIX: work, LISTEN: `${HOST}:${PORTS.nginxPairA}`, UPSTREAM: `${HOST}:${PORTS.nginxPairB}`, CERTS: certs, SERVER_NAME: serverName }),
    );
    nginxPair = [
      startProcess('nginx pair B', ...pinned(pin, pin.proxyCpu, nginxBin, ['-p', work, '-c', confB]), log('pair-b-nginx')),
      startProcess('nginx pair A', ...pinned(pin, pin.proxyCpu, nginxBin, ['-p', work, '-c', confA]), log('pair-a-nginx')),
    ];
    // 200 through A means B accepted A's client certificate and A verified B's.
    await waitForHttp200(`http://${HOST}:${PORTS.nginxPairA}/`, 'nginx pair (A -> TLS -> B)', 10_000, path.join(work, 'pair-a-nginx-error.log'));
  }

  // Weft: the control plane on the mesh YAML, and one gateway proxy (a real `bin/weft proxy` process).
  fs.writeFileSync(path.join(work, 'mesh', 'mesh.yaml'), meshYaml());
  // The CA's files and the workloads' bootstrap tokens: the sidecar pair's identities.
  const stateDir = path.join(work, 'state');
  const weftBin = path.join(REPO, 'bin', 'weft');
  startProcess(
    'weft control',
    ...pinned(pin, pin.loadCpu, process.execPath, [
      weftBin, 'control', '--config-dir', path.join(work, 'mesh'), '--state-dir', stateDir,
      '--xds-address', `${HOST}:${PORTS.xds}`, '--secure-xds-address', `${HOST}:${PORTS.secureXds}`, '--http-address', `${HOST}:${PORTS.controlHttp}`, '--log-level', 'warn']),
    log('weft-control'),
  );
  await waitForHttp200(`http://${HOST}:${PORTS.controlHttp}/ready`, 'weft control plane', 15_000, log('weft-control'));
  // The same gateway twice: Istio telemetry on (the default) and off, pinned to the same CPU and
  // measured one after the other, so the difference is what the metrics and metadata exchange cost.
  const startWeftGateway = (name: string, host: string, telemetry: 'on' | 'off') => {
    const proxy = startProcess(
      name,
      ...pinned(pin, pin.proxyCpu, process.execPath, [
        ...(values['profile-proxy'] ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(values['profile-proxy'])] : []),
        weftBin,
        'proxy', '--gateway', telemetry === 'on' ? 'bench-gateway' : 'bench-gateway-telemetry-off',
        '--labels', telemetry === 'on' ? 'istio=bench-gateway' : 'istio=bench-gateway-telemetry-off',
        '--address', host, '--xds', `${HOST}:${PORTS.xds}`, '--telemetry', telemetry, '--drain-seconds', '1', '--log-level', 'warn']),
      log(name.replace(/\W+/g, '-')),
    );
    return { proxy, ready: waitForHttp200(`http://${host}:${PORTS.weftGateway}/`, name, 20_000, log(name.replace(/\W+/g, '-'))) };
  };
  const weftOn = wanted.has('weft') ? startWeftGateway('weft proxy', HOST, 'on') : undefined;
  const weftOff = wanted.has('weft-telemetry-off') ? startWeftGateway('weft proxy telemetry off', HOST_TELEMETRY_OFF, 'off') : undefined;
  // The sidecar pair, like `weft demo` starts each workload's sidecar: identity from the CA on the
  // secure xDS address, config over mutual-TLS xDS.
  const startSidecar = (workload: string, address: string) => {
    const name = `weft sidecar ${workload}`;
    const proxy = startProcess(
      name,
      ...pinned(pin, pin.proxyCpu, process.execPath, [
        ...(values['profile-proxy'] ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(values['profile-proxy'])] : []),
        weftBin, 'proxy', '--workload', workload, '--control', `${HOST}:${PORTS.controlHttp}`,
        '--state-dir', stateDir, '--xds', `${HOST}:${PORTS.secureXds}`, '--xds-auth', 'mutual-tls', '--drain-seconds', '1', '--log-level', 'warn']),
      log(name.replace(/\W+/g, '-')),
    );
    return { proxy, ready: waitForHttp200(`http://${address}:15021/healthz/ready`, name, 30_000, log(name.replace(/\W+/g, '-'))) };
  };
  const pairClient = wanted.has('weft-pair') ? startSidecar('client-1', PAIR.client) : undefined;
  const pairServer = wanted.has('weft-pair') ? startSidecar('server-1', PAIR.server) : undefined;
  await Promise.all([weftOn?.ready, weftOff?.ready, pairClient?.ready, pairServer?.ready]);
  let pairMtls: { before: { requests: number; mutualTls: number }; after?: { requests: number; mutualTls: number } } | undefined;
  if (pairClient && pairServer) {
    await waitForHttp200(`http://${PAIR.client}:15001/`, 'the sidecar pair (client -> mTLS -> server -> backend)', 20_000, log('weft-sidecar-client-1'), PAIR.host);
    pairMtls = { before: await serverSidecarMtls() };
    if (pairMtls.before.mutualTls < 1) throw new Error(`the server sidecar answered, but reported no mutual_tls request (${JSON.stringify(pairMtls.before)}): auto mTLS is not on`);
  }

  const targets: Target[] = [];
  if (wanted.has('direct')) targets.push({ name: 'direct', url: `http://${HOST}:${PORTS.backend}/`, pids: () => [] });
  if (weftOn) targets.push({ name: 'weft proxy', url: `http://${HOST}:${PORTS.weftGateway}/`, pids: () => [weftOn.proxy.child.pid!] });
  if (weftOff) targets.push({ name: 'weft (telemetry off)', url: `http://${HOST_TELEMETRY_OFF}:${PORTS.weftGateway}/`, pids: () => [weftOff.proxy.child.pid!] });
  if (nginxProxy) {
    const nginx = nginxProxy;
    targets.push({ name: 'nginx proxy', url: `http://${HOST}:${PORTS.nginxProxy}/`, pids: () => [nginx.child.pid!, ...childPids(nginx.child.pid!)] });
  }
  if (pairClient && pairServer) {
    targets.push({ name: WEFT_PAIR, url: `http://${PAIR.client}:15001/`, host: PAIR.host, pids: () => [pairClient.proxy.child.pid!, pairServer.proxy.child.pid!] });
  }
  if (nginxPair.length) {
    const pair = nginxPair;
    targets.push({ name: NGINX_PAIR, url: `http://${HOST}:${PORTS.nginxPairA}/`, pids: () => pair.flatMap((m) => [m.child.pid!, ...childPids(m.child.pid!)]) });
  }
  const rows: Row[] = targets.map((t) => ({ name: t.name, saturation: [], fixedRate: [], rssAtRateMb: NaN, peakRssMb: NaN }));

  process.stdout.write(`warm-up: ${warmupSeconds}s of wrk against each target...`);
  for (const t of targets) await saturate(t, pin, warmupSeconds, connections);
  process.stdout.write(' done\n');

  // Every other round goes through the targets backwards: whatever the position in a round costs
  // (the machine's other load, what the previous target left behind) is shared out evenly, which
  // matters when two rows differ by a few percent (telemetry on and off).
  const inRoundOrder = (r: number) => (r % 2 ? [...targets.entries()].reverse() : [...targets.entries()]);
  // Fixed rate first, so "RSS at 1,000 req/s" is the RSS after serving that rate, before saturation.
  for (let r = 0; r < runs; r++) {
    for (const [i, t] of inRoundOrder(r)) {
      process.stdout.write(`fixed rate ${r + 1}/${runs} ${t.name}...`);
      const res = await fixedRate(t, pin, rate, seconds, connections);
      rows[i].fixedRate.push(res);
      process.stdout.write(` p50 ${fmt(res.p50Ms, 3)} ms, p99 ${fmt(res.p99Ms, 3)} ms\n`);
    }
  }
  for (const [i, t] of targets.entries()) rows[i].rssAtRateMb = t.pids().length ? sum(t.pids().map((p) => statusKb(p, 'VmRSS'))) / 1024 : NaN;
  for (let r = 0; r < runs; r++) {
    for (const [i, t] of inRoundOrder(r)) {
      process.stdout.write(`saturation ${r + 1}/${runs} ${t.name}...`);
      const res = await saturate(t, pin, seconds, connections);
      rows[i].saturation.push(res);
      process.stdout.write(` ${fmt(res.rps)} req/s, ${fmt(res.cpuUsPerRequest, 1)} us/req\n`);
    }
  }
  for (const [i, t] of targets.entries()) rows[i].peakRssMb = t.pids().length ? sum(t.pids().map((p) => statusKb(p, 'VmHWM'))) / 1024 : NaN;

  console.log('');
  console.log(table(rows));
  console.log('');
  console.log(`req/s: saturation (wrk, ${connections} connections); CPU us/req: proxy utime+stime over the saturation run / requests (nginx: master + worker; pairs: both proxies);`);
  console.log(`p50/p90/p99: at a fixed ${rate} req/s, from scheduled start; +p50/+p99: added to direct's; pairs' "vs nginx" is vs the nginx pair; cores@rate: proxy CPU at ${rate} req/s as a fraction of one core;`);
  console.log(`RSS MB: after the fixed-rate runs; peak RSS: VmHWM over the whole benchmark (nginx: master + worker summed). ${pin.note}.`);
  const on = rows.find((r) => r.name === 'weft proxy');
  const off = rows.find((r) => r.name === 'weft (telemetry off)');
  if (on && off) {
    const a = summarize(on);
    const b = summarize(off);
    console.log(
      `telemetry: ${fmt(a.rps)} vs ${fmt(b.rps)} req/s (${ratio(a.rps, b.rps)}), ${fmt(a.cpuUs, 1)} vs ${fmt(b.cpuUs, 1)} CPU us/req ` +
        `(+${fmt(a.cpuUs - b.cpuUs, 1)} us), p50 ${fmt(a.p50, 3)} vs ${fmt(b.p50, 3)} ms with Istio metrics on vs off`,
    );
  }
  const weftPair = rows.find((r) => r.name === WEFT_PAIR);
  const nginxPairRow = rows.find((r) => r.name === NGINX_PAIR);
  const directRow = rows.find((r) => r.name === 'direct');
  let pairComparison: Record<string, number> | undefined;
  if (weftPair && nginxPairRow) {
    const a = summarize(weftPair);
    const b = summarize(nginxPairRow);
    const d = directRow ? summarize(directRow) : NO_ROW;
    pairComparison = {
      cpuUsPerRequestRatio: a.cpuUs / b.cpuUs,
      addedP50MsWeft: a.p50 - d.p50,
      addedP50MsNginx: b.p50 - d.p50,
      addedP99MsWeft: a.p99 - d.p99,
      addedP99MsNginx: b.p99 - d.p99,
    };
    console.log(
      `pairs: CPU ${fmt(a.cpuUs, 1)} vs ${fmt(b.cpuUs, 1)} us/req (both proxies; ${ratio(a.cpuUs, b.cpuUs)}); added to direct at ${rate} req/s: ` +
        `p50 +${fmt(pairComparison.addedP50MsWeft, 3)} vs +${fmt(pairComparison.addedP50MsNginx, 3)} ms (${ratio(pairComparison.addedP50MsWeft, pairComparison.addedP50MsNginx)}), ` +
        `p99 +${fmt(pairComparison.addedP99MsWeft, 3)} vs +${fmt(pairComparison.addedP99MsNginx, 3)} ms (${ratio(pairComparison.addedP99MsWeft, pairComparison.addedP99MsNginx)}); weft pair vs nginx pair`,
    );
  }
  if (pairMtls) {
    pairMtls.after = await serverSidecarMtls();
    console.log(`mTLS: the server sidecar counted ${fmt(pairMtls.after.mutualTls)} of ${fmt(pairMtls.after.requests)} inbound requests as connection_security_policy="mutual_tls" (istio_requests_total, reporter=destination)`);
  }
  console.log(`took ${Math.round((Date.now() - startedAt) / 1000)} s`);

  const resultsDir = path.join(REPO, 'bench', 'results');
  fs.mkdirSync(resultsDir, { recursive: true });
  const resultsFile = path.join(resultsDir, 'data-plane.json');
  const summary = Object.fromEntries(rows.map((r) => [r.name, { ...summarize(r), rssAtRateMb: r.rssAtRateMb, peakRssMb: r.peakRssMb }]));
  fs.writeFileSync(
    resultsFile,
    JSON.stringify({ benchmark: 'data-plane', date: new Date().toISOString(), machine, pinning: pin.note, settings: { runs, seconds, rate, connections, warmupSeconds, responseBytes: 1024 }, summary, pairComparison, weftPairMtls: pairMtls?.after, rows }, null, 2) + '\n',
  );
  console.log(`results: ${path.relative(REPO, resultsFile)}`);
}

if (process.argv[2] === '--fixed-rate-client') {
  const [url, rate, seconds, connections, host] = process.argv.slice(3);
  runFixedRateClient(url, Number(rate), Number(seconds), Number(connections), host || undefined).catch((err: Error) => {
    console.error(err.stack);
    process.exit(1);
  });
} else {
  process.on('exit', killAllNow);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      interrupted = true;
      console.error(`\nbench: ${signal}, stopping every process it started`);
      void stopAll().finally(() => {
        if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
        process.exit(130);
      });
    });
  }
  main().then(
    async () => {
      await stopAll();
      if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
    },
    async (err: Error) => {
      if (interrupted) return;
      console.error(`bench: ${err.message}`);
      await stopAll();
      if (workDir) console.error(`bench: configs and logs kept in ${workDir}`);
      process.exitCode = 1;
    },
  );
}
