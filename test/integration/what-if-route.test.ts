// What-if routing (issue 9): `weft route` answers agree with what real proxies do. The demo's
// Bookinfo config (examples/bookinfo: platform, gateway, subsets, Istio's task VirtualServices and
// an AuthorizationPolicy) on loopback 127.0.90.x: a control plane with its CA, one `weft proxy`
// sidecar per workload with a backend that names itself, and the ingress gateway. Each request of
// the table is asked of the control plane (POST /api/v1/route, what `weft route` calls) and sent
// for real through the same proxy; destination, subset and status must agree. Then the CLI's
// output, a candidate file (-f) that changes the answer and nothing else, and the errors.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control/control-plane';
import type { RouteAnswer } from '../../src/control/what-if-route';
import { silentLogger } from '../../src/log/logger';
import { appAddressFor } from '../../src/model/proxy';
import { startBackendProcess, type BackendProcess } from '../support/backend-process';
import { ChildProcesses } from '../support/child-processes';
import { waitFor } from '../support/wait-for';
import { api, REPO, runWeft, WEFT } from './cli-harness';

const NET = '127.0.90.';
const GATEWAY_ADDRESS = `${NET}20`;
const WORKLOADS = ['productpage-v1', 'details-v1', 'reviews-v1', 'reviews-v2', 'reviews-v3', 'ratings-v1'];
const example = (file: string) => fs.readFileSync(path.join(REPO, 'examples', 'bookinfo', file), 'utf8');
/** The demo's platform file, moved from 127.0.10.x to this test's addresses. */
const PLATFORM = example('platform/bookinfo-services.yaml').replaceAll('127.0.10.', NET);
const ADDRESS: Record<string, string> = Object.fromEntries(
  [...PLATFORM.matchAll(/name: ([\w-]+)\nspec:\n  address: ([\d.]+)/g)].map((m) => [m[1], m[2]]),
);
const WEIGHTED = path.join(REPO, 'examples/bookinfo/networking/virtual-service-reviews-50-v3.yaml');

interface Sent {
  status: number;
  backend?: string;
}

/** One request as an application sends it: to its sidecar's HTTP_PROXY port (absolute URI), or to the gateway. */
function send(via: { address: string; port: number }, url: string, headers: Record<string, string>, absolute: boolean): Promise<Sent> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: via.address, port: via.port, path: absolute ? url : `${u.pathname}${u.search}`, headers: { ...headers, host: u.host }, agent: false, timeout: 10_000 },
      (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => {
          let backend: string | undefined;
          try {
            backend = (JSON.parse(body) as { backend?: string }).backend;
          } catch {
            backend = undefined;
          }
          resolve({ status: res.statusCode ?? 0, backend });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** The workloads the answer says the request may land on (each destination endpoint's workload). */
function predictedBackends(a: RouteAnswer): string[] {
  if (a.action?.kind !== 'forward') return [];
  return a.action.destinations.flatMap((d) => d.endpoints.map((e) => (e.workload ?? '').replace(/\.[^.]+$/, ''))).sort();
}

describe('what-if routing agrees with the proxies (weft route)', () => {
  let dir: string;
  let stateDir: string;
  let work: string;
  let cp: ControlPlane;
  let control: string;
  const children = new ChildProcesses(100);
  const backends: BackendProcess[] = [];

  function start(name: string, args: string[]): void {
    children.start(name, args, { cwd: REPO });
  }
  const logs = () => children.logs();
  const identity = () => ['--xds', `127.0.0.1:${cp.secureXdsPort}`, '--xds-auth', 'mutual-tls', '--state-dir', stateDir, '--control', control, '--log-level', 'warn'];
  const weft = (args: string[]) => runWeft([...args, '--control', control], { timeoutMs: 60_000 });
  const ask = async (body: Record<string, unknown>): Promise<RouteAnswer> => {
    const r = await api(control, 'POST', '/api/v1/route', JSON.stringify(body), 'application/json');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body as RouteAnswer;
  };

  before(
    async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-whatif-'));
      stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-whatif-state-'));
      work = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-whatif-input-'));
      fs.writeFileSync(path.join(dir, 'platform.yaml'), PLATFORM);
      for (const file of [
        'networking/bookinfo-gateway.yaml',
        'networking/destination-rule-all.yaml',
        'networking/virtual-service-reviews-test-v2.yaml',
        'networking/virtual-service-ratings-test-abort.yaml',
        'security/details-viewer.yaml',
      ]) {
        fs.writeFileSync(path.join(dir, path.basename(file)), example(file));
      }
      cp = new ControlPlane({
        configDir: dir,
        stateDir,
        xdsAddress: '127.0.0.1:0',
        secureXdsAddress: '127.0.0.1:0',
        httpAddress: '127.0.0.1:0',
        logger: silentLogger,
        pushDebounceMs: 10,
      });
      await cp.start();
      control = `127.0.0.1:${cp.httpPort}`;
      for (const w of WORKLOADS) {
        assert.ok(ADDRESS[w], `${w} has an address in the platform file`);
        start(`${w}/proxy`, [WEFT, 'proxy', '--workload', w, ...identity()]);
        backends.push(await startBackendProcess(w, appAddressFor(ADDRESS[w]), 'ok', 9080));
      }
      await cp.createToken({ namespace: 'istio-system', serviceAccount: 'istio-ingressgateway-service-account', workload: 'istio-ingressgateway' });
      start('gateway', [
        WEFT, 'proxy', '--gateway', 'istio-ingressgateway', '-n', 'istio-system', '--service-account', 'istio-ingressgateway-service-account',
        '--labels', 'istio=ingressgateway,app=istio-ingressgateway', '--address', GATEWAY_ADDRESS, ...identity(),
      ]);
      for (const address of [...WORKLOADS.map((w) => ADDRESS[w]), GATEWAY_ADDRESS]) {
        await waitFor(async () => (await fetch(`http://${address}:15021/healthz/ready`)).status === 200, {
          timeoutMs: 90_000,
          intervalMs: 200,
          message: () => `${address}'s proxy ready\n${logs()}`,
        });
      }
      // Every proxy has the current config: the page answers through the gateway, jason sees v2.
      await waitFor(async () => (await send({ address: GATEWAY_ADDRESS, port: 8080 }, `http://${GATEWAY_ADDRESS}:8080/productpage`, {}, false)).status === 200, {
        timeoutMs: 30_000,
        intervalMs: 200,
        message: () => `productpage through the gateway\n${logs()}`,
      });
      await waitFor(async () => (await send({ address: ADDRESS['productpage-v1'], port: 15001 }, 'http://reviews:9080/reviews/0', { 'end-user': 'jason' }, true)).backend === 'reviews-v2', {
        timeoutMs: 30_000,
        intervalMs: 200,
        message: 'the productpage sidecar routes jason to reviews-v2',
      });
    },
    { timeout: 240_000 },
  );

  after(async () => {
    await Promise.all([
      ...backends.map((b) => b.stop()),
      children.stopAll(),
    ]);
    await cp?.stop(100);
    for (const d of [dir, stateDir, work]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  interface Case {
    what: string;
    from?: string;
    url: string;
    headers?: Record<string, string>;
    /** What the answer must say (so a wrong what-if fails even where it agrees with itself). */
    expect: { status: number; backends: string[]; subset?: string; virtualService?: string; httpIndex?: number; denyPolicy?: string };
  }

  const TABLE: Case[] = [
    {
      what: 'the page through the ingress gateway: VirtualService bookinfo, rule 0',
      url: `http://${GATEWAY_ADDRESS}:8080/productpage`,
      expect: { status: 200, backends: ['productpage-v1'], virtualService: 'default/bookinfo', httpIndex: 0 },
    },
    {
      what: 'reviews for jason: the end-user header rule sends it to v2',
      from: 'productpage-v1',
      url: 'http://reviews:9080/reviews/0',
      headers: { 'end-user': 'jason' },
      expect: { status: 200, backends: ['reviews-v2'], subset: 'v2', virtualService: 'default/reviews', httpIndex: 0 },
    },
    {
      what: 'reviews for anyone else: the catch-all rule sends it to v1',
      from: 'productpage-v1',
      url: 'http://reviews:9080/reviews/0',
      headers: { 'end-user': 'someone' },
      expect: { status: 200, backends: ['reviews-v1'], subset: 'v1', virtualService: 'default/reviews', httpIndex: 1 },
    },
    {
      what: 'ratings for jason: a 100% fault abort answers 500',
      from: 'reviews-v2',
      url: 'http://ratings:9080/ratings/0',
      headers: { 'end-user': 'jason' },
      expect: { status: 500, backends: ['ratings-v1'], subset: 'v1', virtualService: 'default/ratings', httpIndex: 0 },
    },
    {
      what: 'ratings for anyone else: no fault',
      from: 'reviews-v2',
      url: 'http://ratings:9080/ratings/0',
      expect: { status: 200, backends: ['ratings-v1'], subset: 'v1', virtualService: 'default/ratings', httpIndex: 1 },
    },
    {
      what: "details from productpage's identity: allowed by details-viewer",
      from: 'productpage-v1',
      url: 'http://details:9080/details/0',
      expect: { status: 200, backends: ['details-v1'] },
    },
    {
      what: "details from reviews' identity: denied (403) at details' sidecar",
      from: 'reviews-v1',
      url: 'http://details:9080/details/0',
      expect: { status: 403, backends: ['details-v1'], denyPolicy: 'default/details-viewer' },
    },
    {
      what: 'a path no gateway route matches: 404 NR',
      url: `http://${GATEWAY_ADDRESS}:8080/nothing-here`,
      expect: { status: 404, backends: [] },
    },
  ];

  for (const c of TABLE) {
    it(`agrees with the proxies: ${c.what}`, async () => {
      const answer = await ask({ url: c.url, ...(c.from ? { from: c.from } : {}), headers: Object.entries(c.headers ?? {}) });
      assert.equal(answer.proxy.connected, true, 'answered for the connected proxy');
      const predictedStatus = answer.outcome.status ?? 200;
      assert.equal(predictedStatus, c.expect.status, answer.outcome.summary);
      assert.deepEqual(predictedBackends(answer), c.expect.backends);
      if (c.expect.subset) assert.deepEqual(answer.action?.kind === 'forward' && answer.action.destinations.map((d) => d.subset), [c.expect.subset]);
      if (c.expect.virtualService) assert.equal(`${answer.route?.virtualService?.namespace}/${answer.route?.virtualService?.name}`, c.expect.virtualService);
      if (c.expect.httpIndex !== undefined) assert.equal(answer.route?.httpIndex, c.expect.httpIndex);
      if (c.expect.denyPolicy) {
        const authz = answer.action?.kind === 'forward' ? answer.action.destinations[0].endpoints[0].authorization : undefined;
        assert.equal(authz?.decision, 'DENY');
        // details-viewer allows only productpage's identity: the denial names the ALLOW policy that did not match.
        assert.deepEqual(authz?.unmatchedAllowPolicies?.map((p) => `${p.namespace}/${p.name}`), [c.expect.denyPolicy]);
      }

      // The same request, for real, through the same proxy.
      const via = c.from ? { address: ADDRESS[c.from], port: 15001 } : { address: GATEWAY_ADDRESS, port: 8080 };
      for (let i = 0; i < 3; i++) {
        const sent = await send(via, c.url, c.headers ?? {}, c.from !== undefined);
        assert.equal(sent.status, predictedStatus, `sent for real: ${JSON.stringify(sent)}; predicted: ${answer.outcome.summary}`);
        if (sent.status === 200) assert.ok(predictedBackends(answer).includes(sent.backend ?? ''), `${sent.backend} answered; predicted ${predictedBackends(answer)}`);
      }
    });
  }

  it('prints the answer for people: proxy, listener, VirtualService rule, destination, policies', async () => {
    const r = await weft(['route', '--from', 'reviews-v2', 'http://ratings:9080/ratings/0', '-H', 'end-user: jason']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    const line = (label: string) => lines.find((l) => l.startsWith(label)) ?? assert.fail(`no ${label} line in:\n${r.stdout}`);
    assert.match(line('Request'), /^Request\s+GET http:\/\/ratings:9080\/ratings\/0 {2}\(end-user: jason\)$/);
    assert.match(line('Config'), /^Config\s+v\d+ \(running\)$/);
    assert.match(line('Proxy'), /^Proxy\s+sidecar reviews-v2\.default — --from reviews-v2$/);
    assert.match(line('Listener'), /^Listener\s+virtualOutbound on 127\.0\.90\.4:15001, filter chain \S+, route config http_proxy$/);
    assert.match(line('Route'), /^Route\s+VirtualService default\/ratings http\[0\] match\[0\]/);
    assert.match(line('Destination'), /^Destination\s+100% {2}outbound\|9080\|v1\|ratings\.default\.svc\.cluster\.local {2}\(ratings\.default\.svc\.cluster\.local, subset v1, port 9080\)$/);
    assert.ok(lines.some((l) => /^\s+127\.0\.90\.6:9080 HEALTHY ratings-v1\.default, mTLS — ALLOW/.test(l)), r.stdout);
    assert.match(line('Retries'), /^Retries\s+2 attempts, per try no timeout, on \S*connect-failure/);
    assert.match(line('Fault'), /^Fault\s+abort 500 for 100% of requests$/);
    assert.match(line('Result'), /^Result\s+500: fault abort \(100% of requests\)$/);
  });

  it('prints an authorization denial with the policy that did not allow it', async () => {
    const r = await weft(['route', '--from', 'reviews-v1', 'http://details:9080/details/0']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Route\s+no VirtualService \(the default route\), route "default"/m);
    assert.match(
      r.stdout,
      /^\s+127\.0\.90\.2:9080 HEALTHY details-v1\.default, mTLS — DENY: denied: no ALLOW policy matches \(AuthorizationPolicy default\/details-viewer rule 0\)$/m,
    );
    assert.match(r.stdout, /^Result\s+403 RBAC: access denied at sidecar details-v1\.default \(127\.0\.90\.2:9080\)/m);
  });

  it('prints the answer as JSON with -o json, the same the API gives', async () => {
    const r = await weft(['route', 'http://' + GATEWAY_ADDRESS + ':8080/productpage', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const cli = JSON.parse(r.stdout) as RouteAnswer;
    const fromApi = await ask({ url: `http://${GATEWAY_ADDRESS}:8080/productpage` });
    assert.deepEqual(cli, fromApi);
    assert.equal(cli.proxy.type, 'router');
    assert.equal(cli.proxy.workload, 'istio-ingressgateway');
    assert.equal(cli.listener?.name, '0.0.0.0_8080');
    assert.deepEqual(cli.route && { vs: cli.route.virtualService, http: cli.route.httpIndex, match: cli.route.matchIndex }, {
      vs: { namespace: 'default', name: 'bookinfo' },
      http: 0,
      match: 0,
    });
    assert.equal(cli.action?.kind === 'forward' && cli.action.destinations[0].cluster, 'outbound|9080||productpage.default.svc.cluster.local');
  });

  it('answers for candidate files (-f) without changing the running config, then the applied split agrees', async () => {
    const before = cp.history.latest()!.id;
    const files = fs.readdirSync(dir).sort();
    const r = await weft(['route', '--from', 'productpage-v1', 'http://reviews:9080/reviews/0', '-f', WEIGHTED, '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const candidate = JSON.parse(r.stdout) as RouteAnswer;
    assert.deepEqual(candidate.candidate?.files, [WEIGHTED]);
    assert.deepEqual(candidate.action?.kind === 'forward' && candidate.action.destinations.map((d) => [d.subset, d.weight, d.percent]), [
      ['v1', 50, 50],
      ['v3', 50, 50],
    ]);
    // Nothing changed: same version, same files, and jason still goes to v2 for real and in the answer.
    assert.equal(cp.history.latest()!.id, before);
    assert.deepEqual(fs.readdirSync(dir).sort(), files);
    const running = await ask({ from: 'productpage-v1', url: 'http://reviews:9080/reviews/0', headers: [['end-user', 'jason']] });
    assert.deepEqual(predictedBackends(running), ['reviews-v2']);
    assert.equal((await send({ address: ADDRESS['productpage-v1'], port: 15001 }, 'http://reviews:9080/reviews/0', { 'end-user': 'jason' }, true)).backend, 'reviews-v2');
    const human = await weft(['route', '--from', 'productpage-v1', 'http://reviews:9080/reviews/0', '-f', WEIGHTED]);
    assert.match(human.stdout, /^Config\s+v\d+ \+ .*virtual-service-reviews-50-v3\.yaml \(candidate, not applied\)$/m);

    // Applied for real: the answer becomes the candidate's, and requests land only on v1 and v3.
    const applied = await weft(['apply', '-f', WEIGHTED]);
    assert.equal(applied.code, 0, applied.stderr);
    const now = await ask({ from: 'productpage-v1', url: 'http://reviews:9080/reviews/0' });
    assert.deepEqual(predictedBackends(now), ['reviews-v1', 'reviews-v3']);
    assert.deepEqual(now.route, candidate.route);
    const seen = new Set<string>();
    await waitFor(
      async () => {
        const sent = await send({ address: ADDRESS['productpage-v1'], port: 15001 }, 'http://reviews:9080/reviews/0', {}, true);
        seen.add(sent.backend ?? `status ${sent.status}`);
        return seen.has('reviews-v3');
      },
      { timeoutMs: 30_000, intervalMs: 50, message: () => `the split reaches reviews-v3 (seen: ${[...seen]})` },
    );
    seen.clear();
    for (let i = 0; i < 40; i++) seen.add((await send({ address: ADDRESS['productpage-v1'], port: 15001 }, 'http://reviews:9080/reviews/0', { 'end-user': 'jason' }, true)).backend ?? 'none');
    assert.deepEqual([...seen].sort(), ['reviews-v1', 'reviews-v3'], 'only the listed subsets answer (and both do)');
  });

  it('names an unknown workload, with the ones that exist as a hint', async () => {
    const r = await weft(['route', '--from', 'reviews-v9', 'http://reviews:9080/']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^error: workload "reviews-v9" not found in namespace "default" \(hint: workloads in default: .*reviews-v1, reviews-v2, reviews-v3/);
  });

  it('says when no listener takes the URL, and what to do', async () => {
    const r = await weft(['route', `http://${GATEWAY_ADDRESS}:9999/productpage`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: no Gateway serves 127\.0\.90\.20:9999, so no listener takes this request from outside the mesh \(hint: .*--from WORKLOAD.*Gateways serve port 8080\)$/m);
    const usage = await weft(['route']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /give the URL/);
  });
});
