// Data-plane benchmark (issue 3, issue 8): HTTP/1.1 keep-alive, gRPC unary over h2c and L4 TCP, 1 KB
// responses, on loopback. One table, measured in one run, side by side:
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
//   gRPC direct / gRPC weft proxy / gRPC nginx proxy (grpc_pass)  HTTP/2: gRPC unary calls over h2c,
//               loaded by h2load, compared with gRPC direct and nginx's grpc_pass (data-plane-grpc.ts)
//   TCP weft proxy (tcp_proxy) / TCP nginx proxy (stream)  L4: a byte pipe in front of the HTTP/1.1
//               backend, compared with direct and nginx's stream proxy_pass (data-plane-tcp.ts)
//   weft gateway start-up  spawn to /healthz/ready with full config, and RSS then (data-plane-startup.ts)
// Columns: requests/s at saturation (wrk), proxy CPU microseconds per request (/proc/<pid>/stat),
// p50/p99 at a fixed 1,000 requests/s (the coordinated-omission-aware fixed-rate-client.ts, in its own
// process), proxy RSS at 1,000 requests/s and peak RSS (VmHWM). The proxy is pinned to the last
// core, wrk, the fixed-rate client and the backend to core 0 (taskset), when there are two cores.
// A pair's CPU and memory are both proxies' (both pinned to the proxy core); its +p50/+p99 are what
// the two hops add to direct, and its ratios are against the nginx pair.
//   npm run bench                       (build, install wrk/h2load/nginx, run)
//   node dist/bench/data-plane.js [--runs 3] [--duration 7] [--rate 1000] [--connections 32] [--starts 5] [--profile-proxy DIR]
//                                 [--targets direct,weft,...]   (a focused run: a subset of ALL_TARGETS)
// Writes bench/results/data-plane.json. Every child process is stopped on exit, failure or Ctrl-C.
// Shared helpers: data-plane-lib.ts; the fixed-rate client: fixed-rate-client.ts.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { appAddressFor } from '../src/model/proxy';
import { PROXY_NODE_FLAGS } from '../src/proxy/node-flags';
import {
  gatewayYaml,
  HOST, REPO, childPids, fillTemplate, findNginx, fixedRate, fmt, killAllNow, median, pinned, portFree, ratio, renderTable, requirePortsFree,
  saturate, startNginx, startProcess, statusKb, stopAll, sum, waitForHttp200, type FixedRateRun, type Managed, type Pinning, type SaturationResult, type Target,
} from './data-plane-lib';
import { GRPC_PATH, GRPC_PORTS, GRPC_ROWS, GRPC_STREAMS_PER_CONNECTION, GRPC_WEFT_HOST, grpcMeshYaml, grpcRequest, h2load, waitForGrpcOk, writeGrpcMessages } from './data-plane-grpc';
import { TCP_PORTS, TCP_ROWS, TCP_WEFT_HOST, loadStreamModule, tcpMeshYaml } from './data-plane-tcp';
import { STARTUP_HOST, measureStartups, startupTable, summarizeStartups, type StartupRun } from './data-plane-startup';

/** The telemetry-off gateway binds the same ports on a second loopback address. */
const HOST_TELEMETRY_OFF = '127.0.0.2';
/** The `--concurrency 2` gateway (row weft-c2, not pinned: both cores) binds the same ports on a third. */
const HOST_C2 = '127.0.0.6';
const WEFT_C2 = 'weft proxy --concurrency 2 (2 cores)';
/** The HTTP/1.1 rows' ports on 127.0.0.1 (the gRPC and TCP rows': GRPC_PORTS, TCP_PORTS). */
const PORTS = { backend: 18080, pair: 18090, nginxProxy: 18081, weftGateway: 18082, xds: 18010, secureXds: 18012, controlHttp: 18014, nginxPairA: 18091, nginxPairB: 18092 } as const;
/** The sidecar pair: two WorkloadEntries, each sidecar on its own loopback address (like `weft demo`). */
const PAIR = { client: '127.0.50.1', server: '127.0.50.2', host: 'server:18090' } as const;
/** Every port a sidecar binds on its workload address (outbound, inbound, admin, stats, health). */
const SIDECAR_PORTS = [15001, 15006, 15000, 15090, 15021];
const WEFT_PAIR = 'weft sidecar pair (mTLS + telemetry)';
const NGINX_PAIR = 'nginx pair (TLS)';
const ALL_TARGETS = ['direct', 'weft', 'weft-telemetry-off', 'weft-c2', 'nginx', 'weft-pair', 'nginx-pair', 'grpc-direct', 'grpc-weft', 'grpc-nginx', 'tcp-weft', 'tcp-nginx', 'startup'];
const WEFT_ADMIN_PORTS = [15000, 15090, 15021];

/** Scratch directory (configs, logs, the static file); removed at the end, kept on failure. */
let workDir: string | undefined;
let interrupted = false;


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
${gatewayYaml('bench-gateway', PORTS.weftGateway, 'HTTP')}---
${gatewayYaml('bench-gateway-telemetry-off', PORTS.weftGateway, 'HTTP')}---
${gatewayYaml('bench-gateway-c2', PORTS.weftGateway, 'HTTP')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bench, namespace: default}
spec:
  hosts: ["*"]
  gateways: [bench-gateway, bench-gateway-telemetry-off, bench-gateway-c2]
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
    h2load: firstLine(spawnSync('h2load', ['--version'], { encoding: 'utf8' })) || 'h2load not found',
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

/**
 * Which rows a row's ratios are against: the pairs against the nginx pair, the gRPC rows against
 * gRPC direct and nginx's grpc_pass, the L4 rows against direct (the same wrk -> backend path) and
 * nginx's stream proxy, the other single proxies against direct and the nginx reverse proxy.
 */
function referencesOf(name: string): { direct: string; nginx: string } {
  if (name === WEFT_PAIR || name === NGINX_PAIR) return { direct: 'direct', nginx: NGINX_PAIR };
  if ((Object.values(GRPC_ROWS) as string[]).includes(name)) return { direct: GRPC_ROWS.direct, nginx: GRPC_ROWS.nginx };
  if ((Object.values(TCP_ROWS) as string[]).includes(name)) return { direct: 'direct', nginx: TCP_ROWS.nginx };
  return { direct: 'direct', nginx: 'nginx proxy' };
}

const NO_ROW = { rps: NaN, cpuUs: NaN, p50: NaN, p90: NaN, p99: NaN, coresAtRate: NaN, errors: 0 };

function table(rows: Row[]): string {
  const s = new Map(rows.map((r) => [r.name, summarize(r)]));
  // A focused run may leave out direct or nginx: their columns are then '-'.
  const lines = rows.map((row) => {
    const x = s.get(row.name)!;
    const ref = referencesOf(row.name);
    const direct = s.get(ref.direct) ?? NO_ROW;
    const nginx = s.get(ref.nginx) ?? NO_ROW;
    const isDirect = row.name === ref.direct;
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
  const header = ['', 'req/s', 'vs direct', 'vs nginx', 'CPU us/req', 'vs nginx', 'p50 ms', 'p90 ms', 'p99 ms', '+p50 ms', '+p99 ms', 'p99 vs nginx', 'cores@rate', 'RSS MB', 'peak RSS MB', 'errors'];
  return renderTable(header, lines);
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
      /** How many times the start-up row starts a proxy (median shown). */
      starts: { type: 'string', default: '5' },
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
  const starts = Number(values.starts);
  const startedAt = Date.now();
  const wantsGrpc = ['grpc-direct', 'grpc-weft', 'grpc-nginx'].some((t) => wanted.has(t));
  if (wantsGrpc && spawnSync('h2load', ['--version']).status !== 0) throw new Error('h2load not found (hint: run `bash bench/install-tools.sh` as root; Debian: nghttp2-client)');

  const nginxBin = findNginx();
  for (const [name, port] of Object.entries(PORTS)) {
    if (!(await portFree(port))) throw new Error(`port ${HOST}:${port} (${name}) is in use (hint: is another benchmark running?)`);
  }
  for (const host of [HOST, ...(wanted.has('weft-telemetry-off') ? [HOST_TELEMETRY_OFF] : []), ...(wanted.has('weft-c2') ? [HOST_C2] : [])]) {
    for (const port of [...WEFT_ADMIN_PORTS, ...(host === HOST ? [] : [PORTS.weftGateway])]) {
      if (!(await portFree(port, host))) throw new Error(`port ${host}:${port} (a Weft gateway's listener/admin/stats/health) is in use (hint: is a weft proxy running on ${host}?)`);
    }
  }
  if (wanted.has('weft-pair')) {
    for (const [host, port] of [...SIDECAR_PORTS.flatMap((p) => [[PAIR.client, p], [PAIR.server, p]] as const), [PAIR.server, PORTS.pair], [appAddressFor(PAIR.server), PORTS.pair]] as const) {
      if (!(await portFree(port, host))) throw new Error(`port ${host}:${port} (the sidecar pair's) is in use (hint: is a weft proxy or demo running?)`);
    }
  }
  if (wantsGrpc) await requirePortsFree(Object.values(GRPC_PORTS).map((p) => [HOST, p] as const), 'a gRPC row\'s');
  if (wanted.has('tcp-nginx') || wanted.has('tcp-weft')) await requirePortsFree(Object.values(TCP_PORTS).map((p) => [HOST, p] as const), 'a TCP row\'s');
  // The gRPC, TCP and start-up gateways each bind their listener and admin ports on their own address.
  for (const [target, host, port] of [['grpc-weft', GRPC_WEFT_HOST, GRPC_PORTS.weftGateway], ['tcp-weft', TCP_WEFT_HOST, TCP_PORTS.weftGateway], ['startup', STARTUP_HOST, PORTS.weftGateway]] as const) {
    if (wanted.has(target)) await requirePortsFree([...WEFT_ADMIN_PORTS, port].map((p) => [host, p] as const), `the ${target} gateway's listener/admin/stats/health`);
  }

  const ncpu = os.availableParallelism();
  const hasTaskset = spawnSync('sh', ['-c', 'command -v taskset'], { encoding: 'utf8' }).status === 0;
  const last = String(ncpu - 1);
  const pin: Pinning =
    hasTaskset && ncpu >= 2
      ? { enabled: true, proxyCpu: last, loadCpu: '0', note: `proxy pinned to CPU ${last}; wrk, the fixed-rate client, the backend and the control plane to CPU 0 (taskset)` }
      : { enabled: false, proxyCpu: '', loadCpu: '', note: hasTaskset ? 'one CPU: nothing pinned, everything shares it' : 'taskset not found: nothing pinned' };

  const machine = machineDescription();
  console.log(`data-plane benchmark: HTTP/1.1 keep-alive, gRPC unary over h2c and L4 TCP, 1 KB responses, loopback`);
  console.log(`machine: ${machine.nproc} CPU (${machine.cpu}), ${machine.memoryGb} GB, ${machine.kernel}, load avg ${machine.loadAverage1m}`);
  console.log(`tools:   node ${machine.node}, ${machine.nginx}, ${machine.wrk}, ${machine.h2load}`);
  console.log(`pinning: ${pin.note}`);
  console.log(
    `load:    saturation wrk -t1 -c${connections} -d${seconds}s; fixed rate ${rate} req/s for ${seconds}s (+1s warm-up) from a Node undici client, ` +
      `latency from scheduled start; ${runs} run(s) of each, medians shown`,
  );
  if (wantsGrpc) {
    const h2Connections = Math.ceil(connections / GRPC_STREAMS_PER_CONNECTION);
    console.log(
      `gRPC:    saturation h2load -t1 -c${h2Connections} -m${GRPC_STREAMS_PER_CONNECTION} -D ${seconds}; fixed rate over node:http2 on ${h2Connections} connections; ` +
        `every call checked (fixed rate: grpc-status 0; h2load: the whole response message)`,
    );
  }

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

  // The gRPC rows: an h2c backend answering every call with one static message, and nginx's grpc_pass.
  const grpcMessages = wantsGrpc ? writeGrpcMessages(work) : undefined;
  const grpcUrl = (host: string, port: number) => `http://${host}:${port}${GRPC_PATH}`;
  let grpcNginx: Managed | undefined;
  if (grpcMessages) {
    startNginx(nginxBin, pin, pin.loadCpu, work, 'grpc-backend', 'grpc-backend.conf.template', { LISTEN: `${HOST}:${GRPC_PORTS.backend}`, ROOT: path.join(work, 'www') });
    await waitForGrpcOk(grpcUrl(HOST, GRPC_PORTS.backend), 'the gRPC backend nginx', grpcMessages, 10_000, path.join(work, 'grpc-backend-nginx-error.log'));
    if (wanted.has('grpc-nginx')) {
      grpcNginx = startNginx(nginxBin, pin, pin.proxyCpu, work, 'grpc-proxy', 'grpc-proxy.conf.template', { LISTEN: `${HOST}:${GRPC_PORTS.nginxProxy}`, BACKEND: `${HOST}:${GRPC_PORTS.backend}` });
      await waitForGrpcOk(grpcUrl(HOST, GRPC_PORTS.nginxProxy), 'nginx grpc_pass', grpcMessages, 10_000, path.join(work, 'grpc-proxy-nginx-error.log'));
    }
  }
  // The L4 reference: nginx's stream proxy in front of the HTTP/1.1 backend.
  let tcpNginx: Managed | undefined;
  if (wanted.has('tcp-nginx')) {
    tcpNginx = startNginx(nginxBin, pin, pin.proxyCpu, work, 'tcp-proxy', 'tcp-proxy.conf.template', {
      LOAD_STREAM_MODULE: loadStreamModule(nginxBin), LISTEN: `${HOST}:${TCP_PORTS.nginxProxy}`, BACKEND: `${HOST}:${PORTS.backend}` });
    await waitForHttp200(`http://${HOST}:${TCP_PORTS.nginxProxy}/`, 'nginx stream proxy', 10_000, path.join(work, 'tcp-proxy-nginx-error.log'));
  }

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
  if (wanted.has('grpc-weft')) fs.writeFileSync(path.join(work, 'mesh', 'grpc.yaml'), grpcMeshYaml());
  if (wanted.has('tcp-weft')) fs.writeFileSync(path.join(work, 'mesh', 'tcp.yaml'), tcpMeshYaml(PORTS.backend));
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
  // `gateway` is the proxy's name and its label istio=<gateway>, which its Gateway resource selects;
  // `ready` checks that a request through the gateway is answered (default: a GET to the HTTP
  // listener). The gateways run without an identity (--ca-address none: nothing they route needs
  // mesh mTLS), so they do not retry a CA that is not there and report ready.
  const startWeftGateway = (name: string, host: string, gateway: string, telemetry: 'on' | 'off', ready?: (logFile: string) => Promise<void>, extraArgs: string[] = [], unpinned = false) => {
    const logFile = log(name.replace(/\W+/g, '-'));
    const proxy = startProcess(
      name,
      ...pinned(unpinned ? { ...pin, enabled: false } : pin, pin.proxyCpu, process.execPath, [
        ...(values['profile-proxy'] ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(values['profile-proxy'])] : []),
        ...PROXY_NODE_FLAGS,
        weftBin,
        'proxy', '--gateway', gateway, '--labels', `istio=${gateway}`,
        '--address', host, '--xds', `${HOST}:${PORTS.xds}`, '--ca-address', 'none', '--telemetry', telemetry, '--drain-seconds', '1', '--log-level', 'warn', ...extraArgs]),
      logFile,
    );
    return { proxy, ready: ready ? ready(logFile) : waitForHttp200(`http://${host}:${PORTS.weftGateway}/`, name, 20_000, logFile) };
  };
  const weftOn = wanted.has('weft') ? startWeftGateway('weft proxy', HOST, 'bench-gateway', 'on') : undefined;
  const weftOff = wanted.has('weft-telemetry-off') ? startWeftGateway('weft proxy telemetry off', HOST_TELEMETRY_OFF, 'bench-gateway-telemetry-off', 'off') : undefined;
  // Two worker processes on both cores (the primary keeps xDS and the admin ports): how throughput scales from the pinned one.
  const weftC2 = wanted.has('weft-c2') ? startWeftGateway('weft proxy c2', HOST_C2, 'bench-gateway-c2', 'on', undefined, ['--concurrency', '2'], true) : undefined;
  const weftGrpc =
    wanted.has('grpc-weft') && grpcMessages
      ? startWeftGateway('weft proxy grpc', GRPC_WEFT_HOST, 'bench-gateway-grpc', 'on', (logFile) =>
          waitForGrpcOk(grpcUrl(GRPC_WEFT_HOST, GRPC_PORTS.weftGateway), 'the Weft gRPC gateway', grpcMessages, 20_000, logFile))
      : undefined;
  const weftTcp = wanted.has('tcp-weft')
    ? startWeftGateway('weft proxy tcp', TCP_WEFT_HOST, 'bench-gateway-tcp', 'on', (logFile) =>
        waitForHttp200(`http://${TCP_WEFT_HOST}:${TCP_PORTS.weftGateway}/`, 'the Weft TCP gateway', 20_000, logFile))
    : undefined;
  // The sidecar pair, like `weft demo` starts each workload's sidecar: identity from the CA on the
  // secure xDS address, config over mutual-TLS xDS.
  const startSidecar = (workload: string, address: string) => {
    const name = `weft sidecar ${workload}`;
    const proxy = startProcess(
      name,
      ...pinned(pin, pin.proxyCpu, process.execPath, [
        ...(values['profile-proxy'] ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(values['profile-proxy'])] : []),
        ...PROXY_NODE_FLAGS, weftBin, 'proxy', '--workload', workload, '--control', `${HOST}:${PORTS.controlHttp}`,
        '--state-dir', stateDir, '--xds', `${HOST}:${PORTS.secureXds}`, '--xds-auth', 'mutual-tls', '--drain-seconds', '1', '--log-level', 'warn']),
      log(name.replace(/\W+/g, '-')),
    );
    return { proxy, ready: waitForHttp200(`http://${address}:15021/healthz/ready`, name, 30_000, log(name.replace(/\W+/g, '-'))) };
  };
  const pairClient = wanted.has('weft-pair') ? startSidecar('client-1', PAIR.client) : undefined;
  const pairServer = wanted.has('weft-pair') ? startSidecar('server-1', PAIR.server) : undefined;
  await Promise.all([weftOn?.ready, weftOff?.ready, weftC2?.ready, weftGrpc?.ready, weftTcp?.ready, pairClient?.ready, pairServer?.ready]);
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
  if (weftC2) targets.push({ name: WEFT_C2, url: `http://${HOST_C2}:${PORTS.weftGateway}/`, pids: () => [weftC2.proxy.child.pid!, ...childPids(weftC2.proxy.child.pid!)] });
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
  if (grpcMessages) {
    const grpc = { saturator: h2load(grpcMessages), request: grpcRequest(grpcMessages) };
    if (wanted.has('grpc-direct')) targets.push({ name: GRPC_ROWS.direct, url: grpcUrl(HOST, GRPC_PORTS.backend), pids: () => [], ...grpc });
    if (weftGrpc) targets.push({ name: GRPC_ROWS.weft, url: grpcUrl(GRPC_WEFT_HOST, GRPC_PORTS.weftGateway), pids: () => [weftGrpc.proxy.child.pid!], ...grpc });
    if (grpcNginx) {
      const nginx = grpcNginx;
      targets.push({ name: GRPC_ROWS.nginx, url: grpcUrl(HOST, GRPC_PORTS.nginxProxy), pids: () => [nginx.child.pid!, ...childPids(nginx.child.pid!)], ...grpc });
    }
  }
  if (weftTcp) targets.push({ name: TCP_ROWS.weft, url: `http://${TCP_WEFT_HOST}:${TCP_PORTS.weftGateway}/`, pids: () => [weftTcp.proxy.child.pid!] });
  if (tcpNginx) {
    const nginx = tcpNginx;
    targets.push({ name: TCP_ROWS.nginx, url: `http://${HOST}:${TCP_PORTS.nginxProxy}/`, pids: () => [nginx.child.pid!, ...childPids(nginx.child.pid!)] });
  }
  const rows: Row[] = targets.map((t) => ({ name: t.name, saturation: [], fixedRate: [], rssAtRateMb: NaN, peakRssMb: NaN }));

  process.stdout.write(`warm-up: ${warmupSeconds}s of wrk (h2load for gRPC) against each target...`);
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
      process.stdout.write(` p50 ${fmt(res.p50Ms, 3)} ms, p99 ${fmt(res.p99Ms, 3)} ms${res.errors ? `, ${fmt(res.errors)} errors (first: ${res.firstError})` : ''}\n`);
    }
  }
  for (const [i, t] of targets.entries()) rows[i].rssAtRateMb = t.pids().length ? sum(t.pids().map((p) => statusKb(p, 'VmRSS'))) / 1024 : NaN;
  for (let r = 0; r < runs; r++) {
    for (const [i, t] of inRoundOrder(r)) {
      process.stdout.write(`saturation ${r + 1}/${runs} ${t.name}...`);
      const res = await saturate(t, pin, seconds, connections);
      rows[i].saturation.push(res);
      process.stdout.write(` ${fmt(res.rps)} req/s, ${fmt(res.cpuUsPerRequest, 1)} us/req${res.errors ? `, ${fmt(res.errors)} errors` : ''}\n`);
    }
  }
  for (const [i, t] of targets.entries()) rows[i].peakRssMb = t.pids().length ? sum(t.pids().map((p) => statusKb(p, 'VmHWM'))) / 1024 : NaN;
  // Start-up last: the control plane has served every other proxy, as a running mesh's has.
  let startups: StartupRun[] | undefined;
  if (wanted.has('startup')) {
    startups = await measureStartups({ starts, pin, weftBin, xdsPort: PORTS.xds, listenerPort: PORTS.weftGateway, logDir: work, telemetry: 'on' });
  }

  console.log('');
  if (rows.length) {
    console.log(table(rows));
    console.log('');
    console.log(`req/s: saturation (wrk, ${connections} connections; gRPC rows: h2load, ${connections} streams); CPU us/req: proxy utime+stime over the saturation run / requests (nginx: master + worker; pairs: both proxies);`);
    console.log(`p50/p90/p99: at a fixed ${rate} req/s, from scheduled start; +p50/+p99: added to direct's (gRPC rows: to gRPC direct's); "vs nginx": pairs vs the nginx pair, gRPC rows vs grpc_pass, TCP rows vs nginx stream;`);
    console.log(`cores@rate: proxy CPU at ${rate} req/s as a fraction of one core; RSS MB: after the fixed-rate runs; peak RSS: VmHWM over the whole benchmark (nginx: master + worker summed). ${pin.note}.`);
  }
  if (startups) {
    if (rows.length) console.log('');
    console.log(startupTable(startups));
    console.log(`start-up: spawn of \`bin/weft proxy --gateway\` to the first 200 from http://${STARTUP_HOST}:15021/healthz/ready (full config over ADS from the running control plane), ${starts} starts, proxy pinned like the others; RSS: VmRSS then`);
  }
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
  const c2 = rows.find((r) => r.name === WEFT_C2);
  if (on && c2) {
    const a = summarize(on);
    const b = summarize(c2);
    console.log(`cores: ${fmt(b.rps)} req/s with --concurrency 2 on both cores vs ${fmt(a.rps)} pinned to one (${ratio(b.rps, a.rps)}; wrk and the backend share core 0), ${fmt(b.cpuUs, 1)} vs ${fmt(a.cpuUs, 1)} CPU us/req`);
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
    JSON.stringify(
      {
        benchmark: 'data-plane', date: new Date().toISOString(), machine, pinning: pin.note,
        settings: { runs, seconds, rate, connections, warmupSeconds, responseBytes: 1024, grpcStreamsPerConnection: GRPC_STREAMS_PER_CONNECTION, grpcResponseBytes: grpcMessages?.responseBytes, starts },
        summary, pairComparison, weftPairMtls: pairMtls?.after, rows,
        startup: startups ? { summary: summarizeStartups(startups), runs: startups } : undefined,
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`results: ${path.relative(REPO, resultsFile)}`);
}

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
