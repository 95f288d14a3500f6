// `weft proxy --concurrency 2`: a real control plane, the gateway proxy as a child process (one
// primary, two node:cluster workers sharing the listener) and backends as processes on loopback.
// Asserts that both workers serve, that the primary's merged stats count every request once, that
// a route change reaches every worker, that a killed worker is replaced while the proxy keeps
// serving, and that SIGTERM drains in-flight requests before the process exits.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control/control-plane';
import { silentLogger } from '../../src/log/logger';
import { startBackendProcess, type BackendProcess } from '../support/backend-process';
import { adminStats, adminText } from '../support/proxy-admin';
import { parsePrometheusText, findSamples } from '../support/prometheus-text';
import { waitFor } from '../support/wait-for';

const REPO = path.resolve(__dirname, '../../..');
const WEFT = path.join(REPO, 'bin', 'weft');
const GATEWAY_ADDRESS = '127.0.60.1';
const GATEWAY_PORT = 18060;
const ADMIN = `${GATEWAY_ADDRESS}:15000`;
const NODE_ID = `router~${GATEWAY_ADDRESS}~conc-gw.default~default.svc.cluster.local`;

function service(name: string, backend: BackendProcess): string {
  return `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: default}
spec:
  selector: {app: ${name}}
  ports: [{name: http, port: ${backend.port}}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}-1, namespace: default}
spec: {address: ${backend.address}, labels: {app: ${name}}, ports: {http: ${backend.port}}}
---
`;
}

function routes(defaultService: string, b: Record<string, BackendProcess>): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: conc, namespace: default}
spec:
  hosts: ["*"]
  gateways: [conc-gw]
  http:
  - match: [{uri: {prefix: /slow}}]
    route: [{destination: {host: slow, port: {number: ${b.slow.port}}}}]
  - route: [{destination: {host: ${defaultService}, port: {number: ${b[defaultService].port}}}}]
`;
}

interface Answer {
  status: number;
  backend: string | undefined;
}

function get(agent: http.Agent, p = '/'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: GATEWAY_ADDRESS, port: GATEWAY_PORT, path: p, agent, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, backend: res.headers['x-backend'] as string | undefined }));
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
  });
}

/** `connections` new connections at once, each sending `perConnection` requests one after the other. */
async function wave(connections: number, perConnection: number): Promise<Answer[]> {
  const answers = await Promise.all(
    Array.from({ length: connections }, async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const out: Answer[] = [];
        for (let i = 0; i < perConnection; i++) out.push(await get(agent));
        return out;
      } finally {
        agent.destroy();
      }
    }),
  );
  return answers.flat();
}

/** Requests one worker's HTTP connection managers counted (its own /stats, unmerged). */
async function workerRequests(worker: number): Promise<number> {
  const text = await adminText(ADMIN, `/stats?filter=${encodeURIComponent('^http\\..*\\.downstream_rq_total$')}&worker=${worker}`);
  return text
    .split('\n')
    .filter(Boolean)
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(': ') + 2)), 0);
}

interface ServerInfo {
  state: string;
  concurrency: number;
  workers: { index: number; pid?: number; ready: boolean; restarts: number }[];
}

const serverInfo = async (): Promise<ServerInfo> => JSON.parse(await adminText(ADMIN, '/server_info'));

async function status(url: string): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.text();
    return res.status;
  } catch {
    return 0;
  }
}

describe('weft proxy --concurrency 2', () => {
  let dir: string;
  let cp: ControlPlane;
  const backends: Record<string, BackendProcess> = {};
  let proxy: ChildProcess;
  let exited: Promise<number | null>;
  let stderr = '';
  const logLines = () =>
    stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  /** Requests sent through the proxy so far (all of them answered). */
  let sent = 0;
  const tail = () => `proxy stderr (last lines):\n${stderr.split('\n').slice(-15).join('\n')}`;

  /** Sends waves of new connections until every worker has served `more` requests beyond `since` (bounded). */
  async function untilEveryWorkerServes(since: number[], check: (a: Answer) => void): Promise<number[]> {
    for (let round = 0; round < 40; round++) {
      const answers = await wave(4, 5);
      sent += answers.length;
      for (const a of answers) check(a);
      const now = await Promise.all([0, 1].map(workerRequests));
      if (now.every((c, i) => c > since[i])) return now;
    }
    throw new Error(`40 waves of 4 connections and one worker never served: ${JSON.stringify(await Promise.all([0, 1].map(workerRequests)))}`);
  }

  before(async () => {
    [backends.a, backends.b, backends.slow] = await Promise.all([
      startBackendProcess('a', '127.0.60.2'),
      startBackendProcess('b', '127.0.60.3'),
      startBackendProcess('slow', '127.0.60.4', 'delay:1500'),
    ]);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-concurrency-'));
    fs.writeFileSync(
      path.join(dir, 'mesh.yaml'),
      `${service('a', backends.a)}${service('b', backends.b)}${service('slow', backends.slow)}apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: conc-gw, namespace: default}
spec:
  selector: {istio: conc-gw}
  servers:
  - port: {number: ${GATEWAY_PORT}, name: http, protocol: HTTP}
    hosts: ["*"]
`,
    );
    fs.writeFileSync(path.join(dir, 'routes.yaml'), routes('a', backends));
    cp = new ControlPlane({ configDir: dir, xdsAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', logger: silentLogger, pushDebounceMs: 10, pushDebounceMaxMs: 50 });
    await cp.start();
    proxy = spawn(
      process.execPath,
      [WEFT, 'proxy', '--gateway', 'conc-gw', '--labels', 'istio=conc-gw', '--address', GATEWAY_ADDRESS, '--xds', `127.0.0.1:${cp.xdsPort}`, '--ca-address', 'none', '--concurrency', '2', '--drain-seconds', '5'],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    proxy.stdout!.resume();
    proxy.stderr!.on('data', (d) => (stderr += d));
    exited = new Promise((resolve) => proxy.once('exit', (code) => resolve(code)));
    await waitFor(async () => (await status(`http://${GATEWAY_ADDRESS}:15021/healthz/ready`)) === 200, { timeoutMs: 20_000, intervalMs: 50, message: tail });
  });

  after(async () => {
    if (proxy && proxy.exitCode === null && proxy.signalCode === null) {
      proxy.kill('SIGKILL');
      await exited;
    }
    await Promise.all(Object.values(backends).map((b) => b.stop()));
    await cp?.stop(100);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves from both workers, and the merged stats count every request once', async () => {
    const info = await serverInfo();
    assert.equal(info.concurrency, 2);
    assert.equal(info.workers.length, 2);
    assert.ok(info.workers.every((w) => w.ready && w.pid && w.pid !== proxy.pid), JSON.stringify(info));
    // One xDS node, one stream.
    assert.equal(cp.ads.syncStatus().filter((s) => s.id === NODE_ID).length, 1);

    const perWorker = await untilEveryWorkerServes([0, 0], (a) => {
      assert.equal(a.status, 200);
      assert.equal(a.backend, 'a');
    });
    assert.equal(perWorker[0] + perWorker[1], sent);

    const merged = await adminStats(ADMIN, '^http\\..*\\.downstream_rq_total$');
    assert.equal(Object.values(merged).reduce((x, y) => x + y, 0), sent);
    // Prometheus on 15090: a valid exposition (the strict parser rejects duplicate series and split families).
    const prom = parsePrometheusText(await adminText(`${GATEWAY_ADDRESS}:15090`, '/stats/prometheus'));
    const total = findSamples(prom, 'istio_requests_total').reduce((x, s) => x + s.value, 0);
    assert.equal(total, sent);
    const durations = findSamples(prom, 'istio_request_duration_milliseconds_count').reduce((x, s) => x + s.value, 0);
    assert.equal(durations, sent);
    // Config gauges are the same in every worker: not summed.
    const membership = findSamples(prom, 'envoy_cluster_membership_total').find((s) => s.labels.envoy_cluster_name?.includes('|a.default'));
    assert.equal(membership?.value, 1);
    // The primary's own control-plane series, once.
    assert.equal(findSamples(prom, 'envoy_control_plane_connected_state')[0]?.value, 1);
    // Per-host counters of /clusters are summed over the workers.
    const hosts = JSON.parse(await adminText(ADMIN, '/clusters?format=json')) as { cluster_statuses: { name: string; host_statuses: { stats: { name: string; value: number }[] }[] }[] };
    const a = hosts.cluster_statuses.find((c) => c.name.includes('|a.default'))!;
    assert.equal(a.host_statuses[0].stats.find((s) => s.name === 'rq_total')?.value, sent);
    const unknown = await fetch(`http://${ADMIN}/stats?worker=7`);
    assert.equal(unknown.status, 400);
    assert.match(await unknown.text(), /worker must be one of 0\.\.1/);
  });

  it('applies a route change in every worker before acknowledging it', async () => {
    const before = await Promise.all([0, 1].map(workerRequests));
    const oldVersion = cp.current()?.version;
    fs.writeFileSync(path.join(dir, 'routes.yaml'), routes('b', backends));
    // The primary ACKs only after every worker applied the change: then no worker routes to a.
    await waitFor(
      () => {
        const s = cp.ads.syncStatus().find((x) => x.id === NODE_ID);
        const v = cp.current()?.version;
        return v !== oldVersion && s?.state === 'SYNCED' && s.snapshotVersion === v && s.types.every((t) => t.state === 'SYNCED') && v;
      },
      { timeoutMs: 10_000, message: () => `the gateway never ACKed the new route: ${JSON.stringify(cp.ads.syncStatus())}` },
    );
    await untilEveryWorkerServes(before, (a) => {
      assert.equal(a.status, 200);
      assert.equal(a.backend, 'b', 'a worker still routes to a after the ACK');
    });
  });

  it('replaces a worker that dies, serving all along', async () => {
    const info = await serverInfo();
    const victim = info.workers[0];
    process.kill(victim.pid!, 'SIGKILL');
    // The survivor serves every new connection while worker 0 is replaced.
    const answers = await wave(4, 3);
    sent += answers.length;
    for (const a of answers) assert.deepEqual(a, { status: 200, backend: 'b' });
    const replaced = await waitFor(
      async () => {
        const now = await serverInfo();
        const w = now.workers[0];
        return w.pid && w.pid !== victim.pid && w.ready && now.state === 'LIVE' ? now : undefined;
      },
      { timeoutMs: 15_000, message: () => `worker 0 was not replaced\n${tail()}` },
    );
    assert.equal(replaced.workers[0].restarts, 1);
    const exits = logLines().filter((l) => l.event === 'worker_exited');
    assert.equal(exits.length, 1, tail());
    assert.equal(exits[0].worker, 0);
    assert.equal(exits[0].pid, victim.pid);
    assert.equal(exits[0].signal, 'SIGKILL');
    // The replacement got the current config (the route to b) and serves.
    await untilEveryWorkerServes([0, await workerRequests(1)], (a) => assert.deepEqual(a, { status: 200, backend: 'b' }));
  });

  it('drains in-flight requests on SIGTERM, then exits', async () => {
    const pids = (await serverInfo()).workers.map((w) => w.pid!);
    const agent = new http.Agent({ keepAlive: false });
    const slow = get(agent, '/slow');
    const active = async () => Object.values(await adminStats(ADMIN, '^http\\..*\\.downstream_rq_active$')).reduce((a, b) => a + b, 0);
    await waitFor(async () => (await active()) === 1, { timeoutMs: 5_000, message: 'the slow request never became active' });
    proxy.kill('SIGTERM');
    await waitFor(async () => (await status(`http://${GATEWAY_ADDRESS}:15021/healthz/ready`)) !== 200, { timeoutMs: 5_000, message: 'still ready after SIGTERM' });
    assert.deepEqual(await slow, { status: 200, backend: 'slow' });
    assert.equal(await exited, 0, tail());
    const events = logLines().map((l) => l.event);
    assert.ok(events.includes('workers_draining') && events.includes('workers_stopped'), tail());
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), /ESRCH/);
    agent.destroy();
  });
});
