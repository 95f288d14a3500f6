// `weft demo`: the Bookinfo mesh on one machine, no Kubernetes and no privileges — the control
// plane, an ingress gateway on 127.0.0.1:8080, and every Bookinfo workload on its own loopback
// address with its own sidecar. Ctrl-C or SIGTERM stops every process it started.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { appAddressFor } from '../model/proxy';
import { parseCommandArgs } from './cli-errors';
import type { CliIo } from './cli-io';
import { CliError } from './cli-errors';
import { PROXY_NODE_FLAGS } from '../proxy/node-flags';

export const DEMO_USAGE = `Usage: weft demo [--config-dir DIR] [--state-dir DIR] [--keep-config] [--quiet-apps] [--netns]

Starts the Bookinfo sample as a mesh on this machine: the control plane (config in DIR, default
.weft/demo/config), an ingress gateway serving Istio's bookinfo-gateway on http://127.0.0.1:8080,
and productpage, details, reviews v1/v2/v3, ratings and httpbin, each on its own 127.0.10.x
address with its own sidecar. Every proxy gets its workload certificate from the control plane's
CA and talks to the control plane over mTLS (15012); traffic between sidecars is mutual TLS.
Then try Istio's tasks with \`weft apply -f\` on the YAML in examples/bookinfo/networking and
examples/bookinfo/security. Ctrl-C stops everything.

With --netns (Linux, root): transparent capture, like Istio on Kubernetes. Every workload runs in
its own network namespace (\`weft run --netns\`) on bridge weft0 (10.250.0.0/24; productpage is
10.250.0.11, details .12, reviews v1-v3 .13-.15, ratings .16, httpbin .17), its sidecar captures
its traffic with iptables, and the apps are unchanged: no HTTP_PROXY, no BIND_ADDRESS; they listen
on their port and call http://reviews:9080. Ctrl-C removes every namespace, rule and the bridge.

Options:
      --config-dir DIR   where the control plane keeps the demo's config
      --state-dir DIR    the CA's files and the workloads' tokens (default .weft/demo/state)
      --keep-config      start from the config left by the last run instead of a fresh one
      --quiet-apps       do not echo the workloads' and proxies' log lines
      --netns            every workload in its own network namespace with iptables capture
`;

const REPO = path.resolve(__dirname, '..', '..', '..');
const WEFT = path.join(REPO, 'bin', 'weft');
const APPS = path.join(REPO, 'dist', 'examples', 'bookinfo', 'apps', 'main.js');
const SECURE_XDS = '127.0.0.1:15012';
/** Access logs as JSON on each proxy's stdout, every request traced to OTLP/HTTP 127.0.0.1:4318. */
const MESH_CONFIG = path.join(REPO, 'examples', 'bookinfo', 'mesh.yaml');
const GATEWAY = { name: 'istio-ingressgateway', namespace: 'istio-system', serviceAccount: 'istio-ingressgateway-service-account' };

/** The demo's workloads: the WorkloadEntries in examples/bookinfo/platform. */
export const DEMO_WORKLOADS: readonly { name: string; address: string; app: string; version: string }[] = [
  { name: 'details-v1', address: '127.0.10.2', app: 'details', version: 'v1' },
  { name: 'ratings-v1', address: '127.0.10.6', app: 'ratings', version: 'v1' },
  { name: 'reviews-v1', address: '127.0.10.3', app: 'reviews', version: 'v1' },
  { name: 'reviews-v2', address: '127.0.10.4', app: 'reviews', version: 'v2' },
  { name: 'reviews-v3', address: '127.0.10.5', app: 'reviews', version: 'v3' },
  { name: 'productpage-v1', address: '127.0.10.1', app: 'productpage', version: 'v1' },
  { name: 'httpbin', address: '127.0.10.7', app: 'httpbin', version: 'v1' },
];

/** The bridge of `--netns` mode and a workload's address on it (127.0.10.N -> 10.250.0.(10+N)). */
const NETNS_BRIDGE = { name: 'weft0', cidr: '10.250.0.1/24' };
export function netnsAddressFor(loopbackAddress: string): string {
  const n = Number(loopbackAddress.split('.')[3]);
  return `10.250.0.${10 + n}`;
}

/** Istio's starting point for its tasks: the gateway and every subset, no routing rules yet. */
const INITIAL_CONFIG = [
  'examples/bookinfo/platform/bookinfo-services.yaml',
  'examples/bookinfo/networking/bookinfo-gateway.yaml',
  'examples/bookinfo/networking/destination-rule-all.yaml',
];

function get(url: string, timeoutMs = 2000): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

async function postJson(url: string, body: unknown): Promise<void> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new CliError(`POST ${url} answered ${res.status}: ${await res.text()}`);
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number, children: Children): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (children.failed) throw new CliError(children.failed);
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new CliError(`${what} was not ready within ${timeoutMs / 1000}s (see the log lines above)`);
}

class Children {
  private readonly processes: { name: string; child: ChildProcess }[] = [];
  failed?: string;
  stopping = false;

  constructor(private readonly io: CliIo, private readonly echo: boolean) {}

  start(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
    const child = spawn(command, args, { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const prefix = `[${name}] `;
    const relay = (chunk: Buffer) => {
      if (!this.echo) return;
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) this.io.out(prefix + line + '\n');
    };
    child.stdout?.on('data', relay);
    child.stderr?.on('data', (chunk: Buffer) => {
      relay(chunk);
      if (!this.echo && !this.stopping) this.lastError.set(name, chunk.toString('utf8').trim().split('\n').pop() ?? '');
    });
    child.on('exit', (code, signal) => {
      if (this.stopping) return;
      const detail = this.lastError.get(name);
      this.failed = `${name} exited (${signal ?? `code ${code}`})${detail ? `: ${detail}` : ''}`;
      this.io.err(`weft demo: ${this.failed}\n`);
    });
    this.processes.push({ name, child });
    return child;
  }

  private readonly lastError = new Map<string, string>();

  /** SIGTERM to everyone (apps first, then proxies, then the control plane), then wait. */
  async stopAll(graceMs = 8000): Promise<void> {
    this.stopping = true;
    const alive = [...this.processes].reverse().filter((p) => p.child.exitCode === null && p.child.signalCode === null);
    await Promise.all(
      alive.map(
        (p) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              p.child.kill('SIGKILL');
              resolve();
            }, graceMs);
            p.child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            p.child.kill('SIGTERM');
          }),
      ),
    );
  }
}

function prepareConfig(dir: string, keep: boolean, netns: boolean): void {
  if (keep && fs.existsSync(dir)) return;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  for (const file of INITIAL_CONFIG) {
    let text = fs.readFileSync(path.join(REPO, file), 'utf8');
    // --netns: the same WorkloadEntries, on the bridge's network instead of loopback.
    if (netns) text = text.replace(/address: (127\.0\.10\.\d+)/g, (_m, a: string) => `address: ${netnsAddressFor(a)}`);
    fs.writeFileSync(path.join(dir, path.basename(file)), text);
  }
}

export async function runDemo(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs(
    argv,
    { 'config-dir': { type: 'string' }, 'state-dir': { type: 'string' }, 'keep-config': { type: 'boolean' }, 'quiet-apps': { type: 'boolean' }, netns: { type: 'boolean' } },
    DEMO_USAGE,
  );
  if (!fs.existsSync(APPS)) throw new CliError(`the Bookinfo apps are not built (${APPS}) (hint: run \`npm run build\`)`);
  const configDir = path.resolve(values['config-dir'] ?? path.join(REPO, '.weft', 'demo', 'config'));
  const stateDir = path.resolve(values['state-dir'] ?? path.join(REPO, '.weft', 'demo', 'state'));
  const netns = Boolean(values.netns);
  if (netns && process.getuid?.() !== 0) throw new CliError('--netns needs root: it creates network namespaces, veth pairs and iptables rules (hint: sudo)');
  prepareConfig(configDir, Boolean(values['keep-config']), netns);
  const children = new Children(io, !values['quiet-apps']);
  let stopRequested = false;
  const stopped = new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      if (stopRequested) return;
      stopRequested = true;
      io.out(`\nweft demo: ${signal}, stopping every process it started...\n`);
      children.stopAll(netns ? 30_000 : 8000).then(resolve, resolve);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  const step = (text: string) => io.out(`==> ${text}\n`);
  try {
    step(`control plane (config: ${configDir})`);
    children.start('control', process.execPath, [
      WEFT, 'control', '--config-dir', configDir, '--state-dir', stateDir, '--secure-xds-address', SECURE_XDS, '--mesh-config', MESH_CONFIG,
    ]);
    await waitUntil('the control plane', async () => (await get('http://127.0.0.1:15014/ready')) === 200, 20_000, children);
    const identity = ['--state-dir', stateDir, '--xds', SECURE_XDS];

    for (const w of DEMO_WORKLOADS) {
      if (netns) {
        // `weft run --netns`: namespace, capture rules, hosts file, captured sidecar, the app as it is.
        step(`${w.name}: network namespace weft-${w.name} at ${netnsAddressFor(w.address)}, captured`);
        children.start(`${w.name}`, process.execPath, [
          WEFT, 'run', '--netns', '--workload', w.name, '--bridge', NETNS_BRIDGE.name, '--bridge-address', NETNS_BRIDGE.cidr, ...identity,
          '--', process.execPath, APPS, w.app,
        ], { WORKLOAD_NAME: w.name, SERVICE_VERSION: w.version });
        continue;
      }
      const appAddress = appAddressFor(w.address);
      step(`${w.name}: sidecar on ${w.address}, app on ${appAddress}`);
      children.start(`${w.name}/proxy`, process.execPath, [...PROXY_NODE_FLAGS, WEFT, 'proxy', '--workload', w.name, ...identity]);
      children.start(`${w.name}`, process.execPath, [APPS, w.app], {
        BIND_ADDRESS: appAddress,
        HTTP_PROXY: `http://${w.address}:15001`,
        WORKLOAD_NAME: w.name,
        SERVICE_VERSION: w.version,
      });
    }
    step('ingress gateway on 127.0.0.1:8080 (istio=ingressgateway)');
    // Gateways have no WorkloadEntry, so the control plane mints their bootstrap token on request.
    await postJson('http://127.0.0.1:15014/api/v1/tokens', { namespace: GATEWAY.namespace, serviceAccount: GATEWAY.serviceAccount, workload: GATEWAY.name });
    children.start('gateway', process.execPath, [
      ...PROXY_NODE_FLAGS, WEFT, 'proxy', '--gateway', GATEWAY.name, '-n', GATEWAY.namespace, '--service-account', GATEWAY.serviceAccount,
      '--labels', 'istio=ingressgateway,app=istio-ingressgateway', ...identity,
    ]);
    for (const w of DEMO_WORKLOADS) {
      const address = netns ? netnsAddressFor(w.address) : w.address;
      await waitUntil(`${w.name}'s sidecar`, async () => (await get(`http://${address}:15021/healthz/ready`)) === 200, netns ? 120_000 : 60_000, children);
    }
    await waitUntil('the Bookinfo page through the gateway', async () => (await get('http://127.0.0.1:8080/productpage', 5000)) === 200, 30_000, children);
  } catch (err) {
    await children.stopAll(netns ? 30_000 : 8000);
    throw err;
  }
  io.out(`
Bookinfo is running in the mesh.
  page:        http://127.0.0.1:8080/productpage
  dashboard:   http://127.0.0.1:15014/ui  (bin/weft dashboard; debug views on http://127.0.0.1:15014)
  traces:      every request, over OTLP/HTTP to 127.0.0.1:4318 (examples/bookinfo/mesh.yaml); to see
               them: docker run -e COLLECTOR_OTLP_ENABLED=true -p 4318:4318 -p 16686:16686
               jaegertracing/all-in-one, then http://127.0.0.1:16686
  access logs: one JSON line per request on each proxy's output (shown unless --quiet-apps)
  try:         bin/weft apply -f examples/bookinfo/networking/virtual-service-all-v1.yaml
               bin/weft apply -f examples/bookinfo/security/peer-authentication-strict.yaml
               bin/weft proxy-status
               bin/weft proxy-config secret productpage-v1
weft demo: ready (Ctrl-C to stop)
`);
  await stopped;
  io.out('weft demo: stopped\n');
  return 0;
}
