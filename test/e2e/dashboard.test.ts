// The dashboard in a real browser against a real mesh of its own: a control plane on ephemeral
// ports (with its CA and secure xDS port), `weft proxy` sidecars and a gateway on 127.0.30.x
// (apart from `weft demo`'s 127.0.10.x), the Bookinfo apps, and paced traffic through the
// gateway. Chromium (Debian's, driven by playwright-core) loads /ui and reads the graph the
// control plane builds from the proxies' istio_* metrics; then reviews traffic is shifted to v3
// while two xDS clients misbehave — one NACKs the new routes, one stops answering — and must show
// up red. Screenshots land in test-output/dashboard/.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { chromium, type Browser, type Page } from 'playwright-core';
import { DEMO_WORKLOADS } from '../../src/cli/demo';
import { runProxyStatus } from '../../src/cli/proxy-status';
import { ControlPlane } from '../../src/control/control-plane';
import { silentLogger } from '../../src/log/logger';
import { appAddressFor } from '../../src/model/proxy';
import { PROTO_INCLUDE_DIRS, TypeUrl } from '../../src/xds/protos';
import { AdsTestClient, sidecarNodeId } from '../support/ads-client';
import { waitFor } from '../support/wait-for';

const REPO = path.resolve(__dirname, '../../..');
const WEFT = path.join(REPO, 'bin', 'weft');
const APPS = path.join(REPO, 'dist', 'examples', 'bookinfo', 'apps', 'main.js');
const OUTPUT = path.join(REPO, 'test-output', 'dashboard');
const CHROMIUM = '/usr/bin/chromium';
const GATEWAY = { name: 'istio-ingressgateway', namespace: 'istio-system', serviceAccount: 'istio-ingressgateway-service-account', address: '127.0.30.100' };
const PAGE_URL = `http://${GATEWAY.address}:8080/productpage`;

/** The demo's workloads (httpbin, off the page's path, is an idle node on the graph), moved to 127.0.30.x. */
const WORKLOADS = DEMO_WORKLOADS.map((w) => ({ ...w, address: w.address.replace('127.0.10.', '127.0.30.') }));

const BOOKINFO_EDGES = [
  'istio-ingressgateway->productpage-v1',
  'productpage-v1->details-v1',
  'productpage-v1->reviews-v1',
  'productpage-v1->reviews-v2',
  'productpage-v1->reviews-v3',
  'reviews-v2->ratings-v1',
  'reviews-v3->ratings-v1',
];

/** Istio's fault-injection task, aborting every call to ratings: reviews' calls fail with 500. */
const RATINGS_ABORT = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts:
  - ratings
  http:
  - fault:
      abort:
        percentage:
          value: 100
        httpStatus: 500
    route:
    - destination:
        host: ratings
        subset: v1
`;

const REVIEWS_TO_V3 = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v3
`;

/** Every process the test starts, stopped in after(). */
class Processes {
  private readonly children: { name: string; child: ChildProcess; log: string[] }[] = [];

  start(name: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
    const child = spawn(process.execPath, args, { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const entry = { name, child, log: [] as string[] };
    const keep = (chunk: Buffer) => {
      entry.log.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      if (entry.log.length > 40) entry.log.splice(0, entry.log.length - 40);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    this.children.push(entry);
    return child;
  }

  /** The last log lines of one process, for failure messages. */
  logOf(name: string): string {
    return this.children.find((c) => c.name === name)?.log.slice(-5).join('\n  ') ?? '';
  }

  /** The last log lines of every process that has exited, for failure messages. */
  exited(): string {
    return this.children
      .filter((c) => c.child.exitCode !== null || c.child.signalCode !== null)
      .map((c) => `${c.name} exited (${c.child.signalCode ?? c.child.exitCode}):\n  ${c.log.slice(-5).join('\n  ')}`)
      .join('\n');
  }

  async stopAll(): Promise<void> {
    await Promise.all(
      [...this.children].reverse().map(
        ({ child }) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
            child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            child.kill('SIGTERM');
          }),
      ),
    );
  }
}

/** Page loads through the gateway at a steady pace, a bounded number of them. */
class TrafficLoop {
  sent = 0;
  ok = 0;
  failed = 0;
  private inflight = 0;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly url: string,
    private readonly perSecond: number,
    private readonly maxRequests: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      if (this.inflight >= 4 || this.sent >= this.maxRequests) return;
      this.sent++;
      this.inflight++;
      const req = http.get(this.url, { timeout: 10_000, agent: false }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) this.ok++;
          else this.failed++;
          this.inflight--;
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => {
        this.failed++;
        this.inflight--;
      });
    }, 1000 / this.perSecond);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await waitFor(() => this.inflight === 0, { timeoutMs: 15_000, message: 'traffic loop requests to finish' });
  }
}

function status(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 3000, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

function weft(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // Asynchronous: the control plane lives in this process and must keep answering.
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [WEFT, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

interface EdgeView {
  rps: number;
  idle: boolean;
  share: string;
  mtls: string;
}

const adsService: grpc.ServiceClientConstructor = (
  grpc.loadPackageDefinition(
    protoLoader.loadSync('envoy/service/discovery/v3/ads.proto', { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true, includeDirs: PROTO_INCLUDE_DIRS }),
  ) as any // eslint-disable-line @typescript-eslint/no-explicit-any
).envoy.service.discovery.v3.AggregatedDiscoveryService;

/**
 * An xDS client that can hang the way a wedged proxy does: its connection stays healthy (HTTP/2
 * pings are answered, so keepalive does not drop it) but responses go unanswered — no ACK, no
 * NACK. A SIGSTOPped proxy would not do: the server's keepalive disconnects it within 40 s.
 */
class HangingAdsClient {
  private readonly client: grpc.Client;
  private readonly stream: grpc.ClientDuplexStream<Record<string, unknown>, Record<string, unknown>>;
  private hanging = false;
  private readonly held: Record<string, unknown>[] = [];
  private readonly names: Record<string, string[]> = { [TypeUrl.Cluster]: [], [TypeUrl.Listener]: [], [TypeUrl.RouteConfiguration]: ['9080'] };

  constructor(address: string, node: { id: string; workload: string; ip: string }) {
    this.client = new adsService(address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
    this.stream = (this.client as any).StreamAggregatedResources(); // eslint-disable-line @typescript-eslint/no-explicit-any
    this.stream.on('data', (response: Record<string, unknown>) => (this.hanging ? this.held.push(response) : this.ack(response)));
    this.stream.on('error', () => undefined);
    // google.protobuf.Struct as proto-loader encodes it (well-known types keep camelCase names).
    const metadata = {
      fields: {
        NAMESPACE: { stringValue: 'default' },
        WORKLOAD_NAME: { stringValue: node.workload },
        INSTANCE_IPS: { stringValue: node.ip },
        LABELS: { structValue: { fields: { app: { stringValue: 'probe' } } } },
      },
    };
    Object.entries(this.names).forEach(([typeUrl, names], i) =>
      this.stream.write({ ...(i === 0 ? { node: { id: node.id, metadata } } : {}), type_url: typeUrl, resource_names: names }),
    );
  }

  hang(): void {
    this.hanging = true;
  }

  /** Answers what arrived while hanging, and from now on. */
  recover(): void {
    this.hanging = false;
    for (const response of this.held.splice(0)) this.ack(response);
  }

  close(): void {
    this.stream.cancel();
    this.client.close();
  }

  private ack(response: Record<string, unknown>): void {
    const typeUrl = String(response.type_url);
    this.stream.write({ type_url: typeUrl, version_info: response.version_info, response_nonce: response.nonce, resource_names: this.names[typeUrl] ?? [] });
  }
}

/** What the graph in the page shows right now: node names, edges by data-edge, x of each node. */
async function readGraph(page: Page) {
  const nodeList = await page.locator('svg.graph [data-node]').evaluateAll((els) =>
    els.map((el) => ({ name: el.getAttribute('data-node') ?? '', x: el.getBoundingClientRect().x, proxyState: el.getAttribute('data-proxy-state') ?? '' })),
  );
  const edgeList = await page.locator('svg.graph [data-edge]').evaluateAll((els) =>
    els.map((el) => ({
      name: el.getAttribute('data-edge') ?? '',
      rps: Number(el.getAttribute('data-rps')),
      idle: el.getAttribute('data-idle') === 'true',
      share: el.getAttribute('data-share') ?? '',
      mtls: el.getAttribute('data-mtls') ?? '',
    })),
  );
  const nodes: Record<string, { x: number; proxyState: string }> = Object.fromEntries(nodeList.map((n) => [n.name, n]));
  const edges: Record<string, EdgeView> = Object.fromEntries(edgeList.map((e) => [e.name, e]));
  return { nodes, edges };
}

describe('the dashboard, in Chromium, on a Bookinfo mesh with traffic', { timeout: 300_000 }, () => {
  const processes = new Processes();
  const traffic = new TrafficLoop(PAGE_URL, 12, 20_000);
  let dir: string;
  let cp: ControlPlane;
  let browser: Browser;
  let page: Page;
  const misbehaving: { close(): void }[] = [];
  const ui = () => `http://127.0.0.1:${cp.httpPort}/ui`;
  const shot = (name: string) => page.screenshot({ path: path.join(OUTPUT, name), fullPage: true });

  before(async () => {
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing (hint: run scripts/ensure-browser.sh)`);
    fs.mkdirSync(OUTPUT, { recursive: true });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-dashboard-'));
    const configDir = path.join(dir, 'config');
    const stateDir = path.join(dir, 'state');
    fs.mkdirSync(configDir);
    const platform = fs.readFileSync(path.join(REPO, 'examples/bookinfo/platform/bookinfo-services.yaml'), 'utf8').replaceAll('127.0.10.', '127.0.30.');
    fs.writeFileSync(path.join(configDir, 'bookinfo-services.yaml'), platform);
    for (const file of ['bookinfo-gateway.yaml', 'destination-rule-all.yaml']) fs.copyFileSync(path.join(REPO, 'examples/bookinfo/networking', file), path.join(configDir, file));

    cp = new ControlPlane({
      configDir,
      stateDir,
      xdsAddress: '127.0.0.1:0',
      secureXdsAddress: '127.0.0.1:0',
      httpAddress: '127.0.0.1:0',
      logger: silentLogger,
      pushDebounceMs: 10,
    });
    await cp.start();
    const secure = ['--xds', `127.0.0.1:${cp.secureXdsPort}`, '--xds-auth', 'mutual-tls', '--state-dir', stateDir, '--control', `127.0.0.1:${cp.httpPort}`];
    for (const w of WORKLOADS) {
      processes.start(`${w.name}/proxy`, [WEFT, 'proxy', '--workload', w.name, ...secure]);
      processes.start(w.name, [APPS, w.app], {
        BIND_ADDRESS: appAddressFor(w.address),
        HTTP_PROXY: `http://${w.address}:15001`,
        WORKLOAD_NAME: w.name,
        SERVICE_VERSION: w.version,
      });
    }
    const token = await fetch(`http://127.0.0.1:${cp.httpPort}/api/v1/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ namespace: GATEWAY.namespace, serviceAccount: GATEWAY.serviceAccount, workload: GATEWAY.name }),
    });
    assert.equal(token.status, 200, await token.text());
    processes.start('gateway', [
      WEFT, 'proxy', '--gateway', GATEWAY.name, '-n', GATEWAY.namespace, '--service-account', GATEWAY.serviceAccount,
      '--labels', 'istio=ingressgateway,app=istio-ingressgateway', '--address', GATEWAY.address, ...secure,
    ]);
    for (const w of WORKLOADS) {
      await waitFor(async () => (await status(`http://${w.address}:15021/healthz/ready`)) === 200, {
        timeoutMs: 60_000,
        intervalMs: 100,
        message: () => `${w.name}'s sidecar ready; its last log lines:\n  ${processes.logOf(`${w.name}/proxy`)}\n${processes.exited()}`,
      });
    }
    await waitFor(async () => (await status(PAGE_URL)) === 200, { timeoutMs: 60_000, intervalMs: 100, message: () => `the product page through the gateway\n${processes.exited()}` });
    traffic.start();

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
  });

  after(async () => {
    for (const client of misbehaving) client.close();
    await traffic.stop().catch(() => undefined);
    await browser?.close();
    await processes.stopAll();
    await cp?.stop(100);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('`weft dashboard` prints the URL of the dashboard the control plane serves', async () => {
    const r = await weft(['dashboard', '--control', `127.0.0.1:${cp.httpPort}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${ui()}\n`);
    assert.match(r.stderr, /config v\d+, 8 connected proxies/);
  });

  it('draws the Bookinfo services and their edges, left to right, with mTLS padlocks', async () => {
    // A 15 s window: rates follow the traffic within a few scrape rounds.
    await page.goto(`${ui()}?window=15s#/graph`);
    const graph = await waitFor(
      async () => {
        const g = await readGraph(page);
        // Steady traffic, not just the first requests: the window is mostly after the loop began.
        const ready = BOOKINFO_EDGES.every((e) => g.edges[e] && !g.edges[e].idle && g.edges[e].rps > 0) && g.edges[BOOKINFO_EDGES[0]].rps >= 6;
        return ready ? g : undefined;
      },
      {
        timeoutMs: 60_000,
        intervalMs: 500,
        message: () => `every Bookinfo edge carrying traffic on the graph (sent ${traffic.sent}, ok ${traffic.ok}, failed ${traffic.failed})`,
      },
    );
    for (const name of ['istio-ingressgateway', 'productpage-v1', 'details-v1', 'reviews-v1', 'reviews-v2', 'reviews-v3', 'ratings-v1', 'httpbin']) {
      assert.ok(graph.nodes[name], `node ${name} missing: ${Object.keys(graph.nodes).join(', ')}`);
    }
    const x = (n: string) => graph.nodes[n].x;
    assert.ok(x('istio-ingressgateway') < x('productpage-v1'), 'gateway left of productpage');
    assert.ok(x('productpage-v1') < x('reviews-v1') && x('productpage-v1') < x('details-v1'), 'productpage left of its callees');
    assert.equal(x('reviews-v1'), x('reviews-v3'), 'the versions of reviews share a column');
    assert.ok(x('reviews-v3') < x('ratings-v1'), 'reviews left of ratings');
    // Sidecar to sidecar is mutual TLS (auto mTLS); reviews v1 never calls ratings.
    for (const e of ['productpage-v1->reviews-v1', 'productpage-v1->details-v1', 'reviews-v3->ratings-v1']) assert.equal(graph.edges[e].mtls, 'full', `${e} mTLS`);
    assert.equal(graph.edges['reviews-v1->ratings-v1'], undefined);
    assert.equal(await page.locator('[data-edge="productpage-v1->reviews-v1"] title').count(), 1);
    assert.equal(await page.locator('[data-edge-label="productpage-v1->reviews-v3"] .lock').count(), 1);
    await shot('graph-bookinfo.png');
  });

  it('shows a traffic shift to reviews-v3 on the graph, and proxies that NACK or hang in red', async () => {
    // Two xDS clients beside the real proxies: one rejects every route config from now on, one
    // stops answering. Both take the route config the shift changes ("9080").
    let nacking = false;
    const nacker = new AdsTestClient({
      address: `127.0.0.1:${cp.xdsPort}`,
      node: { id: sidecarNodeId('127.0.30.8', 'probe-nacking'), metadata: { NAMESPACE: 'default', WORKLOAD_NAME: 'probe-nacking', INSTANCE_IPS: '127.0.30.8', LABELS: { app: 'probe' } } },
      judge: (r) => (nacking && r.typeUrl === TypeUrl.RouteConfiguration ? 'route "9080": this proxy cannot compile the new routes' : undefined),
    });
    const hung = new HangingAdsClient(`127.0.0.1:${cp.xdsPort}`, { id: sidecarNodeId('127.0.30.9', 'probe-hung'), workload: 'probe-hung', ip: '127.0.30.9' });
    misbehaving.push(nacker, hung);
    const health = async () =>
      ((await (await fetch(`http://127.0.0.1:${cp.httpPort}/api/v1/proxy-health`)).json()) as { proxies: { workload?: string; health: { state: string } }[] }).proxies;
    await waitFor(async () => (await health()).filter((p) => p.workload?.startsWith('probe-') && p.health.state === 'SYNCED').length === 2, {
      timeoutMs: 15_000,
      message: 'the probe clients synced',
    });
    nacking = true;
    hung.hang();

    const applied = await fetch(`http://127.0.0.1:${cp.httpPort}/api/v1/apply`, { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: REVIEWS_TO_V3 });
    assert.equal(applied.status, 200, await applied.text());
    const shifted = await waitFor(
      async () => {
        const g = await readGraph(page);
        const v3 = g.edges['productpage-v1->reviews-v3'];
        const others = ['productpage-v1->reviews-v1', 'productpage-v1->reviews-v2'].map((e) => g.edges[e]);
        return v3 && v3.rps > 0 && v3.share === '1' && others.every((e) => !e || e.rps === 0) ? g : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500, message: 'all reviews traffic on v3, none on v1 and v2' },
    );
    assert.equal(shifted.edges['productpage-v1->reviews-v1'].idle, true);
    assert.equal(shifted.edges['reviews-v2->ratings-v1'].rps, 0);
    assert.ok(shifted.edges['reviews-v3->ratings-v1'].rps > 0);

    // A NACK is red at once; an unanswered push only once it is 15 s old (a push in flight is normal).
    await waitFor(
      async () => {
        const g = await readGraph(page);
        return g.nodes['probe-nacking']?.proxyState === 'NACK' && g.nodes['probe-hung']?.proxyState === 'STALE';
      },
      { timeoutMs: 45_000, intervalMs: 500, message: 'probe-nacking NACK and probe-hung STALE on the graph' },
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}; the control plane says ${JSON.stringify((await health()).filter((p) => p.workload?.startsWith('probe-')))}`);
    });
    for (const [name, state] of [['probe-nacking', 'NACK'], ['probe-hung', 'STALE']]) {
      const badge = page.locator(`[data-node="${name}"] .proxy-badge`);
      assert.equal(await badge.textContent(), state);
      assert.equal(await badge.locator('rect').evaluate((el) => el.ownerDocument.defaultView!.getComputedStyle(el).fill), 'rgb(220, 38, 38)');
    }
    assert.match((await page.locator('#proxy-summary').textContent()) ?? '', /2 of 10 proxies out of sync/);
    await shot('graph-reviews-v3.png');

    // `weft proxy-status` on a terminal paints the same two red, and only them.
    let out = '';
    const code = await runProxyStatus(['--control', `127.0.0.1:${cp.httpPort}`], {
      out: (t) => (out += t),
      err: () => undefined,
      readStdin: async () => '',
      env: {},
      stdoutIsTTY: true,
    });
    assert.equal(code, 0);
    const row = (name: string) => out.split('\n').find((l) => l.includes(name)) ?? '';
    assert.ok(row('probe-nacking').includes('\x1b[31mNACK\x1b[0m'), `probe-nacking's row: ${JSON.stringify(row('probe-nacking'))}`);
    assert.ok(row('probe-hung').includes('\x1b[31mSTALE\x1b[0m'), `probe-hung's row: ${JSON.stringify(row('probe-hung'))}`);
    assert.ok(!row('productpage-v1').includes('\x1b['), 'a synced proxy is not red');
    assert.match(out, /cannot compile the new routes/);

    await page.goto(`${ui()}?window=15s#/config`);
    await page.locator('[data-proxy][data-state="NACK"]').waitFor({ timeout: 10_000 });
    assert.equal(await page.locator('[data-proxy][data-state="STALE"]').count(), 1);
    assert.match((await page.locator('.nack-row').first().textContent()) ?? '', /NACK RDS v\d+: route "9080": this proxy cannot compile the new routes/);
    assert.equal(await page.locator('[data-resource="VirtualService/default/reviews"][data-validation="accepted"]').count(), 1);
    assert.ok((await page.locator('ol.versions li').count()) >= 2, 'the new config version is listed');
    await shot('config-out-of-sync.png');

    hung.recover();
    await waitFor(async () => (await page.locator('[data-proxy][data-state="STALE"]').count()) === 0, { timeoutMs: 15_000, intervalMs: 500, message: 'probe-hung ACKs once it answers again' });
    for (const client of misbehaving.splice(0)) client.close();
    await waitFor(async () => (await page.locator('[data-proxy]').count()) === 8 && (await page.locator('[data-proxy][data-state="SYNCED"]').count()) === 8, {
      timeoutMs: 15_000,
      intervalMs: 500,
      message: 'the probes gone, every real proxy SYNCED',
    });
  });

  it("plots reviews' golden signals over time, the shift to v3 included", async () => {
    await page.goto(`${ui()}#/services`);
    for (const svc of ['productpage', 'details', 'reviews', 'ratings']) await page.locator(`[data-service="default/${svc}"]`).waitFor({ timeout: 10_000 });
    await page.locator('[data-service="default/reviews"] a').click();
    await page.locator('[data-page="service"][data-service="default/reviews"]').waitFor({ timeout: 10_000 });
    await page.locator('[data-plot="rps"] [data-series="reviews-v3"]').waitFor({ timeout: 15_000 });
    for (const plot of ['rps', 'errors', 'latency']) assert.equal(await page.locator(`[data-plot="${plot}"] svg`).count(), 1, `${plot} plot`);
    assert.deepEqual(
      await page.locator('[data-plot="rps"] [data-series]').evaluateAll((els) => els.map((e) => e.getAttribute('data-series'))),
      ['total', 'reviews-v1', 'reviews-v2', 'reviews-v3'],
    );
    assert.match((await page.locator('.service-head').textContent()) ?? '', /reviews\.default\.svc\.cluster\.local/);
    assert.equal(await page.locator('text=VirtualService default/reviews').count(), 1);
    await shot('service-reviews.png');
  });

  it('paints failing calls red: an abort injected on the way to ratings', async () => {
    const applied = await fetch(`http://127.0.0.1:${cp.httpPort}/api/v1/apply`, { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: RATINGS_ABORT });
    assert.equal(applied.status, 200, await applied.text());
    await page.goto(`${ui()}?window=15s#/graph`);
    // The abort happens in reviews' sidecar: the calls reach no ratings workload, so the edge
    // ends at the ratings service node, known only from the source's report.
    const edge = page.locator('[data-edge="reviews-v3->ratings"]');
    // Until most of reviews' calls in the window are the failing ones, for the screenshot's sake.
    const failing = async () => Number(await edge.getAttribute('data-error-rate')) >= 0.9 && Number(await edge.getAttribute('data-share')) >= 0.5;
    await waitFor(failing, { timeoutMs: 30_000, intervalMs: 500, message: 'reviews-v3 -> ratings failing' }).catch(
      async (err: Error) => {
        throw new Error(`${err.message}; edges: ${JSON.stringify((await readGraph(page)).edges)}`);
      },
    );
    assert.equal(await page.locator('[data-node="ratings"]').getAttribute('data-kind'), 'service');
    // ... drawn in the ratings box, beside ratings-v1.
    assert.equal(await page.locator('.app-group[data-app="ratings"]').count(), 1);
    assert.match((await edge.getAttribute('class')) ?? '', /\bfailure\b/);
    assert.equal(await edge.locator('path.line').evaluate((el) => el.ownerDocument.defaultView!.getComputedStyle(el).stroke), 'rgb(220, 38, 38)');
    assert.match((await page.locator('[data-edge-label="reviews-v3->ratings"]').textContent()) ?? '', /\d+% err/);
    // reviews degrades gracefully (the page still loads), so nothing else turns red.
    assert.equal(await page.locator('[data-edge="productpage-v1->reviews-v3"]').getAttribute('data-error-rate'), '0');
    await page.locator('[data-edge-label="reviews-v3->ratings"]').click();
    await page.locator('[data-details="reviews-v3->ratings"] .code.c5').waitFor({ timeout: 10_000 });
    await shot('graph-ratings-fault.png');
  });
});
