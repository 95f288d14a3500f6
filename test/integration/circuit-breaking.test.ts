// Istio's circuit-breaking task, reproduced with real processes: a control plane (CA, xDS over
// mTLS), the demo's httpbin app behind its `weft proxy` sidecar, a client sidecar for fortio,
// Istio's DestinationRule applied with `weft apply`, and fortio-style load through the client
// sidecar (HTTP_PROXY style: absolute URIs to http://httpbin:8000/get). Some requests get 503 with
// x-envoy-overloaded (response flag UO) and the client sidecar's upstream_rq_pending_overflow
// counts them; then one 5xx ejects httpbin, which `weft proxy-config endpoints` shows.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control/control-plane';
import { silentLogger } from '../../src/log/logger';
import { appAddressFor } from '../../src/model/proxy';
import { formatLoadResult, runLoad, type LoadResult } from '../support/load-client';
import { adminStats, adminText } from '../support/proxy-admin';
import { ChildProcesses } from '../support/child-processes';
import { waitFor } from '../support/wait-for';
import { REPO, runWeft, WEFT } from './cli-harness';

const APPS = path.join(REPO, 'dist', 'examples', 'bookinfo', 'apps', 'main.js');
const FORTIO = '127.0.40.1';
const HTTPBIN = '127.0.40.2';
const CLUSTER = 'outbound|8000||httpbin.default.svc.cluster.local';

// httpbin as the demo declares it (examples/bookinfo/platform), and a fortio client workload.
const MESH = `
apiVersion: v1
kind: Service
metadata: {name: httpbin, labels: {app: httpbin, service: httpbin}}
spec:
  selector: {app: httpbin}
  ports: [{name: http, port: 8000}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: httpbin}
spec: {address: ${HTTPBIN}, labels: {app: httpbin, version: v1}, serviceAccount: httpbin}
---
apiVersion: v1
kind: Service
metadata: {name: fortio, labels: {app: fortio, service: fortio}}
spec:
  selector: {app: fortio}
  ports: [{name: http, port: 8080}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: fortio}
spec: {address: ${FORTIO}, labels: {app: fortio}, serviceAccount: fortio}
`;

describe("Istio's circuit-breaking task on httpbin", () => {
  let dir: string;
  let stateDir: string;
  let cp: ControlPlane;
  let control: string;
  const children = new ChildProcesses();

  function start(name: string, args: string[], env: NodeJS.ProcessEnv = {}): void {
    children.start(name, args, { cwd: REPO, env });
  }

  function sidecar(workload: string): void {
    start(`${workload}/proxy`, [
      WEFT, 'proxy', '--workload', workload, '--xds', `127.0.0.1:${cp.secureXdsPort}`, '--xds-auth', 'mutual-tls',
      '--state-dir', stateDir, '--control', control, '--log-level', 'warn',
    ]);
  }

  const weft = (args: string[]) => runWeft([...args, '--control', control]);

  /** fortio load -c N -n M http://httpbin:8000/get, through the fortio sidecar. */
  const fortio = (connections: number, requests: number): Promise<LoadResult> =>
    runLoad({ address: FORTIO, port: 15001, url: 'http://httpbin:8000/get', connections, requests, maxDurationMs: 30_000 });

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-cb-'));
    fs.writeFileSync(path.join(dir, 'mesh.yaml'), MESH);
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-cb-state-'));
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
    sidecar('httpbin');
    sidecar('fortio');
    start('httpbin', [APPS, 'httpbin'], { BIND_ADDRESS: appAddressFor(HTTPBIN), WORKLOAD_NAME: 'httpbin' });
    const logs = () => children.logs();
    for (const address of [FORTIO, HTTPBIN]) {
      await waitFor(async () => (await fetch(`http://${address}:15021/healthz/ready`)).status === 200, { timeoutMs: 30_000, message: () => `${address}'s sidecar ready\n${logs()}` });
    }
    await waitFor(async () => (await fortio(1, 1)).codes['200'] === 1, { timeoutMs: 30_000, message: () => `httpbin answers through the fortio sidecar\n${logs()}` });
  });

  after(async () => {
    await children.stopAll();
    await cp?.stop(100);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  it('trips the circuit breaker: a share of requests gets 503 UO and upstream_rq_pending_overflow counts them', async () => {
    const applied = await weft(['apply', '-f', path.join(REPO, 'examples/bookinfo/networking/destination-rule-httpbin-circuit-breaker.yaml')]);
    assert.equal(applied.code, 0, applied.stderr);
    const admin = `${FORTIO}:15000`;
    await waitFor(async () => (await adminText(admin, '/clusters')).includes(`${CLUSTER}::default_priority::max_connections::1\n`), {
      timeoutMs: 15_000,
      message: 'the fortio sidecar has the DestinationRule',
    });
    const before = await adminStats(admin, 'httpbin');
    // Istio's task: two connections, 20 requests; then three connections, 30 requests.
    const runs = [await fortio(2, 20), await fortio(3, 30)];
    const stats = await adminStats(admin, 'httpbin');
    const flags = await adminStats(admin, 'response_flags');
    const pending = Object.entries(stats)
      .filter(([name]) => name.includes('pending') || name.includes('circuit_breakers') || name.includes('cx_overflow'))
      .map(([name, v]) => `${name}: ${v}`);
    process.stdout.write(`\n${formatLoadResult('fortio load -c 2 -qps 0 -n 20 http://httpbin:8000/get', runs[0])}\n`);
    process.stdout.write(`${formatLoadResult('fortio load -c 3 -qps 0 -n 30 http://httpbin:8000/get', runs[1])}\n`);
    process.stdout.write(`fortio sidecar /stats | grep httpbin | grep pending:\n  ${pending.join('\n  ')}\n`);
    const overflowCount = stats[`cluster.${CLUSTER}.upstream_rq_pending_overflow`] - (before[`cluster.${CLUSTER}.upstream_rq_pending_overflow`] ?? 0);
    const rejected = runs.reduce((n, r) => n + (r.codes['503'] ?? 0), 0);
    const ok = runs.reduce((n, r) => n + (r.codes['200'] ?? 0), 0);
    assert.ok(ok > 0, 'some requests made it through');
    assert.ok(rejected > 0, 'some requests were rejected by the circuit breaker');
    assert.equal(ok + rejected, 50, JSON.stringify(runs.map((r) => r.codes)));
    assert.equal(runs.reduce((n, r) => n + r.overloaded, 0), rejected, 'every 503 carries x-envoy-overloaded');
    assert.equal(overflowCount, rejected, 'upstream_rq_pending_overflow counts each rejection');
    assert.equal(flags['weft.response_flags.UO'], rejected, 'each rejection is flagged UO');
    assert.ok(runs[1].codes['503']! / 30 >= runs[0].codes['503']! / 20 - 0.2, 'more clients, no smaller share rejected');
  });

  it('ejects httpbin after one 5xx (consecutive5xxErrors: 1), visible in /clusters and weft proxy-config endpoints', async () => {
    const admin = `${FORTIO}:15000`;
    const healthy = await weft(['proxy-config', 'endpoints', 'fortio']);
    assert.equal(healthy.code, 0, healthy.stderr);
    assert.match(healthy.stdout, new RegExp(`${HTTPBIN.replace(/\./g, '\\.')}:\\d+\\s+HEALTHY\\s+OK\\s+outbound\\|8000\\|\\|httpbin`));
    const failing = await runLoad({ address: FORTIO, port: 15001, url: 'http://httpbin:8000/status/500', connections: 1, requests: 1, maxDurationMs: 10_000 });
    assert.deepEqual(failing.codes, { '500': 1 });
    await waitFor(async () => (await adminText(admin, '/clusters')).includes('::health_flags::/failed_outlier_check'), { timeoutMs: 5000 });
    const ejected = await weft(['proxy-config', 'endpoints', 'fortio', '--cluster', CLUSTER]);
    process.stdout.write(`\nweft proxy-config endpoints fortio --cluster "${CLUSTER}":\n${ejected.stdout}`);
    const lines = ejected.stdout.trim().split('\n');
    assert.match(lines[0], /^ENDPOINT\s+STATUS\s+OUTLIER CHECK\s+CLUSTER$/);
    assert.equal(lines.length, 2, 'only the httpbin cluster');
    assert.match(lines[1], new RegExp(`^${HTTPBIN.replace(/\./g, '\\.')}:8000\\s+HEALTHY\\s+FAILED\\s+outbound\\|8000\\|\\|httpbin`));
    // minHealthPercent 0 (Istio's default): no panic, so nothing is left to send to.
    const after = await fortio(1, 3);
    assert.deepEqual(after.codes, { '503': 3 });
    const stats = await adminStats(admin, 'httpbin');
    assert.equal(stats[`cluster.${CLUSTER}.outlier_detection.ejections_enforced_consecutive_5xx`], 1);
    assert.equal(stats[`cluster.${CLUSTER}.outlier_detection.ejections_active`], 1);
  });
});
