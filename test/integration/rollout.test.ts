// Progressive delivery and health-gated apply with real parts: a control plane in this process
// (CA, xDS over mTLS, the dashboard collector scraping every 500 ms), `weft proxy` sidecars for a
// client and reviews v1/v2/v3, backends as processes (v3 answers 500), steady bounded load from
// the client through its sidecar, and the real `weft` CLI. A rollout to the healthy subset
// completes; one to the failing subset rolls itself back; abort restores the start; and
// `weft apply --watch` undoes a change (a fault abort) that breaks traffic.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control/control-plane';
import type { RolloutStatus } from '../../src/control/rollout-contract';
import { testLogger } from '../support/static-ads';
import { appAddressFor } from '../../src/model/proxy';
import { startBackendProcess, type BackendProcess } from '../support/backend-process';
import { ChildProcesses } from '../support/child-processes';
import { waitFor } from '../support/wait-for';
import { api, REPO, runWeft, WEFT } from './cli-harness';

const CLIENT = '127.0.91.1';
const REVIEWS = { v1: '127.0.91.2', v2: '127.0.91.3', v3: '127.0.91.4' } as const;

const workload = (name: string, address: string, labels: string, sa: string) => `---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}}
spec: {address: ${address}, labels: {${labels}}, serviceAccount: ${sa}}
`;

const MESH = `
apiVersion: v1
kind: Service
metadata: {name: reviews, labels: {app: reviews}}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: client, labels: {app: client}}
spec:
  selector: {app: client}
  ports: [{name: http, port: 8080}]
${workload('client', CLIENT, 'app: client', 'client')}${workload('reviews-v1', REVIEWS.v1, 'app: reviews, version: v1', 'reviews')}${workload('reviews-v2', REVIEWS.v2, 'app: reviews, version: v2', 'reviews')}${workload('reviews-v3', REVIEWS.v3, 'app: reviews, version: v3', 'reviews')}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
`;

const ROUTE_V1 = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
`;

/** One response the load saw: when, and which backend answered (or the status when none did). */
interface Seen {
  at: number;
  status: number;
  backend: string;
}

/** Steady, bounded load: `workers` requests in flight, each followed by a short pause. */
function startLoad(workers: number, pauseMs: number) {
  const seen: Seen[] = [];
  const agent = new http.Agent({ keepAlive: true, maxSockets: workers });
  let running = true;
  const one = () =>
    new Promise<void>((resolve) => {
      const req = http.request({ host: CLIENT, port: 15001, path: 'http://reviews:9080/', headers: { host: 'reviews:9080' }, agent, timeout: 5000 }, (res) => {
        res.resume();
        res.on('end', () => {
          seen.push({ at: Date.now(), status: res.statusCode ?? 0, backend: String(res.headers['x-backend'] ?? '') });
          if (seen.length > 20_000) seen.splice(0, 10_000);
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => {
        seen.push({ at: Date.now(), status: 0, backend: '' });
        resolve();
      });
      req.end();
    });
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      await one();
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  });
  return {
    seen,
    since: (t: number) => seen.filter((s) => s.at >= t),
    stop: async () => {
      running = false;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

const tally = (items: readonly Seen[]) => {
  const out: Record<string, number> = {};
  for (const s of items) out[s.backend || `status ${s.status}`] = (out[s.backend || `status ${s.status}`] ?? 0) + 1;
  return out;
};

describe('progressive rollouts and health-gated apply', () => {
  let dir: string;
  let stateDir: string;
  let cp: ControlPlane;
  let control: string;
  let load: ReturnType<typeof startLoad>;
  const backends: BackendProcess[] = [];
  const children = new ChildProcesses(100);
  const logs = () => children.logs();
  const weft = (args: string[], timeoutMs = 60_000) => runWeft([...args, '--control', control], { timeoutMs });

  function sidecar(name: string): void {
    children.start(
      name,
      [WEFT, 'proxy', '--workload', name, '--xds', `127.0.0.1:${cp.secureXdsPort}`, '--xds-auth', 'mutual-tls', '--state-dir', stateDir, '--control', control, '--log-level', 'warn'],
      { cwd: REPO },
    );
  }

  /** The client sidecar's route config for reviews, as its admin endpoint dumps it. */
  async function clientRoutes(): Promise<string> {
    const dump = (await (await fetch(`http://${CLIENT}:15000/config_dump`)).json()) as { configs: { '@type': string }[] };
    const routes = dump.configs.filter((c) => c['@type'].includes('RoutesConfigDump'));
    return JSON.stringify(routes);
  }

  /** Waits until every response from `t` on (at least `n` of them) came from `backend`. */
  async function trafficOnlyTo(backend: string, n = 30): Promise<void> {
    const t = Date.now();
    await waitFor(() => load.since(t).length >= n, { timeoutMs: 20_000, message: () => `${n} responses after the change: ${JSON.stringify(tally(load.since(t)))}` });
    assert.deepEqual(tally(load.since(t)), { [backend]: load.since(t).length });
  }

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-rollout-'));
    fs.writeFileSync(path.join(dir, 'mesh.yaml'), MESH);
    fs.writeFileSync(path.join(dir, 'reviews-vs.yaml'), ROUTE_V1);
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-rollout-state-'));
    cp = new ControlPlane({
      configDir: dir,
      stateDir,
      xdsAddress: '127.0.0.1:0',
      secureXdsAddress: '127.0.0.1:0',
      httpAddress: '127.0.0.1:0',
      logger: testLogger(),
      pushDebounceMs: 10,
      scrapeIntervalMs: 500,
    });
    await cp.start();
    control = `127.0.0.1:${cp.httpPort}`;
    backends.push(
      await startBackendProcess('reviews-v1', appAddressFor(REVIEWS.v1), 'ok', 9080),
      await startBackendProcess('reviews-v2', appAddressFor(REVIEWS.v2), 'ok', 9080),
      await startBackendProcess('reviews-v3', appAddressFor(REVIEWS.v3), 'status:500', 9080),
    );
    for (const name of ['client', 'reviews-v1', 'reviews-v2', 'reviews-v3']) sidecar(name);
    for (const address of [CLIENT, ...Object.values(REVIEWS)]) {
      await waitFor(async () => (await fetch(`http://${address}:15021/healthz/ready`)).status === 200, { timeoutMs: 60_000, message: () => `${address}'s sidecar ready\n${logs()}` });
    }
    load = startLoad(2, 15);
    await waitFor(() => load.seen.filter((s) => s.backend === 'reviews-v1').length >= 20, { timeoutMs: 30_000, message: () => `reviews v1 answers through the client sidecar: ${JSON.stringify(tally(load.seen))}\n${logs()}` });
    // The collector has seen v1's traffic: the dashboard numbers are live.
    await waitFor(() => (cp.dashboard.inboundSince({ namespace: 'default', name: 'reviews' }, 0).requests ?? 0) > 0, { timeoutMs: 20_000, message: 'the collector sees reviews traffic' });
  });

  after(async () => {
    await load?.stop();
    await children.stopAll();
    await Promise.all(backends.map((b) => b.stop()));
    await cp?.stop(100);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  it('rolls reviews out to a healthy v2 step by step and finishes with all traffic on v2', async () => {
    const run = await weft(['rollout', 'reviews', '--to', 'v2', '--steps', '50,100', '--interval', '1s', '--min-requests', '10']);
    process.stdout.write(`\nweft rollout reviews --to v2 --steps 50,100 --interval 1s --min-requests 10\n${run.stdout}`);
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /step 50%: v1 50 \/ v2 50/);
    assert.match(run.stdout, /step 100%: v1 0 \/ v2 100/);
    assert.match(run.stdout, /step 50% passed/);
    assert.match(run.stdout, /rollout of reviews to v2 complete/);

    const status = (await api(control, 'GET', '/api/v1/rollouts/default/reviews')).body as RolloutStatus;
    assert.equal(status.state, 'completed');
    assert.equal(status.versions.length, 3, 'two steps and the final version');
    // The step-100 version holds the weights 0/100; the final version routes to v2 alone.
    const step100 = cp.history.resourcesOf(Number(status.versions[1].slice(1))).get('VirtualService/default/reviews')!;
    assert.deepEqual((step100.spec as any).http[0].route.map((d: any) => [d.destination.subset, d.weight]), [['v1', 0], ['v2', 100]]);
    const history = cp.history.list().map((v) => cp.history.summary(v));
    assert.deepEqual(history.slice(-3).map((v) => v.source), ['rollout', 'rollout', 'rollout']);
    assert.match(history.at(-1)!.message ?? '', /rollout of reviews to v2 complete/);
    // What a real proxy runs, and where real traffic goes.
    await waitFor(async () => {
      const routes = await clientRoutes();
      return routes.includes('outbound|9080|v2|reviews.default.svc.cluster.local') && !routes.includes('outbound|9080|v1|reviews.default.svc.cluster.local');
    }, { timeoutMs: 10_000, message: 'the client sidecar routes reviews to v2 only' });
    await trafficOnlyTo('reviews-v2');
    // The dashboard's rollout panel reads the same status.
    assert.equal((await fetch(`http://${control}/ui/rollout-panel.js`)).status, 200);
    assert.equal(((await api(control, 'GET', '/api/v1/rollouts')).body as { rollouts: RolloutStatus[] }).rollouts[0].state, 'completed');
  });

  it('rolls back a rollout to v3, which answers 500, and the proxies end on the original weights', async () => {
    const startVersion = cp.current()!.version;
    const run = await weft(['rollout', 'reviews', '--to', 'v3', '--steps', '25,50,100', '--interval', '2s', '--min-requests', '10', '--max-error-rate', '1%']);
    process.stdout.write(`\nweft rollout reviews --to v3 --steps 25,50,100 --interval 2s\n${run.stdout}`);
    assert.equal(run.code, 1, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /rollout of reviews to v3 rolled back: error rate 100% > 1% at step 25%/);

    const status = (await api(control, 'GET', '/api/v1/rollouts/default/reviews')).body as RolloutStatus;
    assert.equal(status.state, 'rolled-back');
    assert.equal(status.startVersion, startVersion);
    assert.equal(status.versions.length, 2, 'the 25% step and the rollback');
    const [step, rollback] = status.versions.map((v) => cp.history.summary(cp.history.resolve(v)));
    assert.equal(step.source, 'rollout');
    assert.match(step.message ?? '', /rollout of reviews to v3: step 25%/);
    assert.equal(rollback.source, 'rollout');
    assert.match(rollback.message ?? '', /^rollout of reviews to v3 rolled back: error rate 100% > 1% at step 25%$/);
    // The rollback restored exactly the starting resources.
    const start = cp.history.resolve(startVersion);
    assert.deepEqual([...cp.history.resolve(rollback.version).resources], [...start.resources]);
    await waitFor(async () => !(await clientRoutes()).includes('outbound|9080|v3|reviews'), { timeoutMs: 10_000, message: 'the client sidecar no longer routes to v3' });
    await trafficOnlyTo('reviews-v2');
    const shown = await weft(['history']);
    assert.match(shown.stdout, /rollout\s.*rolled back: error rate 100% > 1% at step 25%/);
  });

  it('aborts a running rollout: the starting route comes back', async () => {
    const started = await weft(['rollout', 'reviews', '--to', 'v1', '--steps', '50,100', '--interval', '60s', '--min-requests', '10', '--no-follow']);
    assert.equal(started.code, 0, started.stderr);
    await waitFor(
      async () => {
        const s = (await api(control, 'GET', '/api/v1/rollouts/default/reviews')).body as RolloutStatus;
        return s.state === 'running' && s.stepIndex === 0 && s.observed && s.observed.requests > 0;
      },
      { timeoutMs: 20_000, message: 'the rollout is observing its first step' },
    );
    const listed = await weft(['rollout', 'status']);
    assert.match(listed.stdout, /default\/reviews\s+v1\s+50%\s+v2=50 v1=50\s+.*RUNNING/);
    const aborted = await weft(['rollout', 'abort', 'reviews']);
    assert.equal(aborted.code, 0, aborted.stderr);
    assert.match(aborted.stdout, /rollout of reviews to v1 aborted: rollout of reviews to v1 aborted at step 50%/);
    assert.equal(cp.history.summary(cp.history.latest()!).source, 'rollout');
    await waitFor(async () => !(await clientRoutes()).includes('outbound|9080|v1|reviews'), { timeoutMs: 10_000, message: 'the client sidecar routes to v2 only again' });
    await trafficOnlyTo('reviews-v2');
  });

  it('weft apply --watch rolls back a change that breaks traffic', async () => {
    const broken = path.join(dir, '..', `${path.basename(dir)}-fault.yaml`);
    fs.writeFileSync(
      broken,
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - fault: {abort: {httpStatus: 503, percentage: {value: 100}}}
    route:
    - destination: {host: reviews, subset: v2}
`,
    );
    try {
      const before = cp.current()!.version;
      const run = await weft(['apply', '-f', broken, '--watch', '20s', '--max-error-rate', '5%', '--min-requests', '10']);
      process.stdout.write(`\nweft apply -f fault.yaml --watch 20s --max-error-rate 5%\n${run.stdout}`);
      assert.equal(run.code, 1, `${run.stdout}\n${run.stderr}`);
      // The watch's first scrape round can hold requests from just before the fault took effect.
      assert.match(run.stdout, /rolled back: error rate of reviews (9\d(\.\d+)?|100)% > 5% \(was [\d.]+%\)/);
      const latest = cp.history.summary(cp.history.latest()!);
      assert.equal(latest.source, 'rollback');
      assert.match(latest.message ?? '', /^weft apply --watch: v\d+ rolled back: error rate of reviews (9\d(\.\d+)?|100)% > 5% \(was [\d.]+%\) within 20s$/);
      assert.deepEqual([...cp.history.latest()!.resources], [...cp.history.resolve(before).resources]);
      // The CLI reports once the rollback is recorded; count traffic once the client has it.
      await waitFor(async () => !(await clientRoutes()).includes('"abort"'), { timeoutMs: 20_000, message: 'the client sidecar has the rolled-back route' });
      await trafficOnlyTo('reviews-v2');
    } finally {
      fs.rmSync(broken, { force: true });
    }
  });
});
