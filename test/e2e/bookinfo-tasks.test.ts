// Istio's traffic-management tasks, driven against `weft demo` exactly as a user would: the real
// demo process tree (control plane, gateway, sidecars, Bookinfo apps), Istio's sample YAML
// applied with `weft apply -f`, and the page fetched through the gateway on 127.0.0.1:8080.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findSamples, parsePrometheusText } from '../support/prometheus-text';
import { waitFor } from '../support/wait-for';

const REPO = path.resolve(__dirname, '../../..');
const WEFT = path.join(REPO, 'bin', 'weft');
const NETWORKING = path.join(REPO, 'examples/bookinfo/networking');
const SECURITY = path.join(REPO, 'examples/bookinfo/security');
/** details-v1's sidecar: it owns the workload address and port; the app listens elsewhere. */
const DETAILS_SIDECAR = 'http://127.0.10.2:9080/details/0';
const PAGE = 'http://127.0.0.1:8080/productpage';
const REVIEWS_UNAVAILABLE = 'Sorry, product reviews are currently unavailable for this book.';
const RATINGS_UNAVAILABLE = 'Ratings service is currently unavailable';

function apply(fileOrStdin: string, stdin?: string): string {
  const r = spawnSync(process.execPath, [WEFT, 'apply', '-f', fileOrStdin], { cwd: REPO, input: stdin, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, `weft apply -f ${fileOrStdin} failed: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

function remove(kind: string, name: string, namespace = 'default'): void {
  const r = spawnSync(process.execPath, [WEFT, 'delete', kind, name, '-n', namespace, '--ignore-not-found'], { cwd: REPO, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
}

/** The request-timeouts task's reviews rule: everything to v2, with an optional route timeout. */
function reviewsToV2(timeout?: string): string {
  return `apiVersion: networking.istio.io/v1
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
        subset: v2
${timeout ? `    timeout: ${timeout}\n` : ''}`;
}

interface Page {
  status: number;
  text: string;
  /** reviews-v1 / v2 / v3, from "Reviews served by: reviews-vN-..." */
  version?: string;
  ms: number;
}

async function page(user?: string): Promise<Page> {
  const started = Date.now();
  const res = await fetch(PAGE, { headers: user ? { cookie: `user=${user}` } : {}, signal: AbortSignal.timeout(20_000) });
  const text = await res.text();
  const version = /Reviews served by:\s*reviews-(v\d)/.exec(text)?.[1];
  return { status: res.status, text, version, ms: Date.now() - started };
}

/** Versions seen over `count` page loads (bounded). */
async function versions(count: number, user?: string): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const p = await page(user);
    assert.equal(p.status, 200, `page answered ${p.status}`);
    const v = p.version ?? 'none';
    seen[v] = (seen[v] ?? 0) + 1;
  }
  return seen;
}

/** Waits until `count` consecutive page loads all satisfy `ok` (the new config has converged). */
async function waitForPages(what: string, ok: (p: Page) => boolean, user?: string, count = 6): Promise<void> {
  let last: Page | undefined;
  await waitFor(
    async () => {
      for (let i = 0; i < count; i++) {
        last = await page(user);
        if (!ok(last)) return false;
      }
      return true;
    },
    { timeoutMs: 30_000, intervalMs: 100, message: () => `${what}; last page: ${last?.status} ${last?.version ?? ''} ${last?.text.slice(0, 120)}` },
  );
}

describe('Istio traffic-management tasks on `weft demo`', { timeout: 420_000 }, () => {
  let demo: ChildProcess;
  let output = '';
  let configDir: string;
  let stateDir: string;

  before(async () => {
    configDir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-demo-'));
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-demo-state-'));
    demo = spawn(process.execPath, [WEFT, 'demo', '--quiet-apps', '--config-dir', configDir, '--state-dir', stateDir], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    demo.stdout!.on('data', (d) => (output += d));
    demo.stderr!.on('data', (d) => (output += d));
    await waitFor(() => output.includes('weft demo: ready'), { timeoutMs: 120_000, intervalMs: 100, message: () => `demo never became ready:\n${output}` });
  });

  after(async () => {
    if (demo.exitCode === null) {
      const exited = new Promise((resolve) => demo.once('exit', resolve));
      demo.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(configDir, { recursive: true, force: true });
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  it('starts with progress lines, the URLs and one ready line, and serves every reviews version', async () => {
    assert.match(output, /==> control plane/);
    assert.match(output, /http:\/\/127\.0\.0\.1:8080\/productpage/);
    assert.equal(output.match(/weft demo: ready/g)?.length, 1);
    const seen = await versions(30);
    assert.ok(seen.v1 && seen.v2 && seen.v3, `expected v1, v2 and v3 before any routing rule: ${JSON.stringify(seen)}`);
  });

  it("Istio's standard metrics: both reporters label the gateway -> productpage -> details calls", async () => {
    const requests = async (address: string, labels: Record<string, string>) => {
      const text = await (await fetch(`http://${address}:15090/stats/prometheus`)).text();
      return findSamples(parsePrometheusText(text), 'istio_requests_total', labels).reduce((sum, s) => sum + s.value, 0);
    };
    const inbound = { reporter: 'destination', source_workload: 'istio-ingressgateway', source_workload_namespace: 'istio-system', destination_workload: 'productpage-v1', destination_app: 'productpage', destination_service: 'productpage.default.svc.cluster.local', response_code: '200', connection_security_policy: 'mutual_tls', source_principal: 'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account' };
    const outbound = { reporter: 'source', source_workload: 'productpage-v1', source_app: 'productpage', destination_workload: 'details-v1', destination_version: 'v1', destination_service_name: 'details', response_code: '200' };
    const before = [await requests('127.0.10.1', inbound), await requests('127.0.10.1', outbound), await requests('127.0.10.2', { ...outbound, reporter: 'destination' })];
    await versions(5);
    // scraped counters move as soon as the proxies finished the requests
    await waitFor(
      async () => {
        const now = [await requests('127.0.10.1', inbound), await requests('127.0.10.1', outbound), await requests('127.0.10.2', { ...outbound, reporter: 'destination' })];
        return now.every((n, i) => n - before[i] >= 5);
      },
      { timeoutMs: 10_000, message: 'istio_requests_total did not count the 5 page loads on both reporters' },
    );
  });

  it('request routing: virtual-service-all-v1 sends all traffic to reviews v1', async () => {
    const out = apply(path.join(NETWORKING, 'virtual-service-all-v1.yaml'));
    assert.match(out, /virtualservice\.networking\.istio\.io\/reviews (created|configured)/);
    await waitForPages('all traffic on v1', (p) => p.version === 'v1');
    assert.deepEqual(await versions(20), { v1: 20 });
  });

  it('request routing by user identity: end-user jason goes to v2, everyone else stays on v1', async () => {
    apply(path.join(NETWORKING, 'virtual-service-reviews-test-v2.yaml'));
    await waitForPages('jason on v2', (p) => p.version === 'v2', 'jason');
    assert.deepEqual(await versions(10, 'jason'), { v2: 10 });
    assert.deepEqual(await versions(10), { v1: 10 });
    const login = await fetch('http://127.0.0.1:8080/login', {
      method: 'POST',
      body: new URLSearchParams({ username: 'jason', passwd: '' }),
      redirect: 'manual',
    });
    assert.match(login.headers.get('set-cookie') ?? '', /user=jason/);
  });

  it('fault injection (delay): a 7s ratings delay for jason surfaces the reviews error on the page', async () => {
    apply(path.join(NETWORKING, 'virtual-service-ratings-test-delay.yaml'));
    await waitForPages('reviews error for jason', (p) => p.text.includes(REVIEWS_UNAVAILABLE), 'jason', 1);
    const p = await page('jason');
    assert.ok(p.text.includes(REVIEWS_UNAVAILABLE));
    // productpage gives reviews 3s and one retry: about 6s, not the 7s delay (let alone more).
    assert.ok(p.ms >= 5000 && p.ms < 9000, `page took ${p.ms} ms`);
    const other = await page();
    assert.equal(other.version, 'v1');
    assert.ok(!other.text.includes(REVIEWS_UNAVAILABLE));
  });

  it('fault injection (abort): a 500 from ratings for jason shows the ratings error', async () => {
    apply(path.join(NETWORKING, 'virtual-service-ratings-test-abort.yaml'));
    await waitForPages('ratings error for jason', (p) => p.text.includes(RATINGS_UNAVAILABLE), 'jason', 3);
    const other = await page();
    assert.ok(!other.text.includes(RATINGS_UNAVAILABLE));
  });

  it('traffic shifting: reviews-50-v3 splits v1/v3 about evenly and never sends to v2', async () => {
    apply(path.join(NETWORKING, 'virtual-service-all-v1.yaml'));
    apply(path.join(NETWORKING, 'virtual-service-reviews-50-v3.yaml'));
    await waitForPages('v3 in the mix', (p) => p.version === 'v1' || p.version === 'v3', undefined, 3);
    const seen = await versions(100);
    assert.equal(seen.v2, undefined, JSON.stringify(seen));
    assert.ok((seen.v3 ?? 0) >= 30 && (seen.v3 ?? 0) <= 70, `v3 got ${seen.v3} of 100: ${JSON.stringify(seen)}`);
  });

  it('request timeouts: a 0.5s reviews timeout against a 2s ratings delay fails fast', async () => {
    apply(
      '-',
      `${reviewsToV2()}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts:
  - ratings
  http:
  - fault:
      delay:
        percentage:
          value: 100
        fixedDelay: 2s
    route:
    - destination:
        host: ratings
        subset: v1
`,
    );
    await waitForPages('the 2s ratings delay', (p) => p.version === 'v2' && p.ms >= 1800, undefined, 1);
    apply('-', reviewsToV2('0.5s'));
    await waitForPages('reviews timing out', (p) => p.text.includes(REVIEWS_UNAVAILABLE), undefined, 1);
    const p = await page();
    assert.ok(p.text.includes(REVIEWS_UNAVAILABLE));
    // productpage retries once: two 0.5s timeouts, well under the 2s delay.
    assert.ok(p.ms < 1800, `page took ${p.ms} ms`);
    remove('virtualservice', 'ratings');
  });

  it('mutual TLS by default: each proxy holds a certificate for its SPIFFE identity', () => {
    remove('virtualservice', 'reviews');
    const r = spawnSync(process.execPath, [WEFT, 'proxy-config', 'secret', 'productpage-v1'], { cwd: REPO, encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const row = r.stdout.split('\n').find((l) => l.startsWith('default '));
    assert.ok(row, r.stdout);
    assert.match(row, /ACTIVE\s+true/);
    assert.match(row, /spiffe:\/\/cluster\.local\/ns\/default\/sa\/bookinfo-productpage$/);
  });

  it('PeerAuthentication: PERMISSIVE accepts plaintext; mesh-wide STRICT refuses it while mesh traffic keeps flowing', async () => {
    const plaintext = () => fetch(DETAILS_SIDECAR, { signal: AbortSignal.timeout(5_000) }).then((r) => r.status, () => 'refused');
    assert.equal(await plaintext(), 200);
    apply(path.join(SECURITY, 'peer-authentication-strict.yaml'));
    await waitFor(async () => (await plaintext()) === 'refused', { timeoutMs: 30_000, intervalMs: 100, message: 'plaintext still accepted under STRICT' });
    await waitForPages('the page over mTLS under STRICT', (p) => p.status === 200 && p.text.includes('Book Details'));
    remove('peerauthentication', 'default', 'istio-system');
    await waitFor(async () => (await plaintext()) === 200, { timeoutMs: 30_000, intervalMs: 100, message: 'plaintext still refused after STRICT was removed' });
  });

  it("authorization (Istio's HTTP traffic task): allow-nothing, then productpage, details, reviews and ratings viewers by principal", async () => {
    apply(path.join(SECURITY, 'allow-nothing.yaml'));
    await waitForPages('allow-nothing denying the page', (p) => p.status === 403 && p.text === 'RBAC: access denied');
    apply(path.join(SECURITY, 'productpage-viewer.yaml'));
    await waitForPages(
      'productpage allowed, details and reviews still denied',
      (p) => p.status === 200 && p.text.includes('Error fetching product details!') && p.text.includes('Error fetching product reviews!'),
    );
    apply(path.join(SECURITY, 'details-viewer.yaml'));
    apply(path.join(SECURITY, 'reviews-viewer.yaml'));
    // reviews v2/v3 call ratings as bookinfo-reviews, which nothing allows yet
    await waitForPages(
      'details and reviews allowed for productpage',
      (p) => p.status === 200 && p.text.includes('Book Details') && !p.text.includes('Error fetching') && (p.version === 'v1' || p.text.includes(RATINGS_UNAVAILABLE)),
    );
    apply(path.join(SECURITY, 'ratings-viewer.yaml'));
    await waitForPages('ratings allowed for reviews', (p) => p.status === 200 && (p.version === 'v1' || (p.text.includes('glyphicon-star') && !p.text.includes(RATINGS_UNAVAILABLE))));
    for (const name of ['allow-nothing', 'productpage-viewer', 'details-viewer', 'reviews-viewer', 'ratings-viewer']) remove('authorizationpolicy', name);
  });

  it('stops every process it started on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) => demo.once('exit', (code) => resolve(code)));
    demo.kill('SIGTERM');
    assert.equal(await exited, 0);
    const leftovers = spawnSync('pgrep', ['-f', `--config-dir ${configDir}`], { encoding: 'utf8' }).stdout.trim();
    assert.equal(leftovers, '', 'processes left behind');
    await waitFor(async () => (await fetch(PAGE).then(() => false, () => true)), { timeoutMs: 10_000, message: 'gateway still answering' });
  });
});
