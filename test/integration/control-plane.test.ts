// The control plane as a whole: file config in, snapshots out, last good config kept when a file
// turns invalid, and the monitoring address telling the operator what happened.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control/control-plane';
import { silentLogger } from '../../src/log/logger';
import { waitFor } from '../support/wait-for';

const SERVICES = `
apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1}
spec: {address: 127.0.10.3, labels: {app: reviews, version: v1}, serviceAccount: bookinfo-reviews}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2}
spec: {address: 127.0.10.4, labels: {app: reviews, version: v2}, serviceAccount: bookinfo-reviews}
`;

const DESTINATION_RULE = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`;

function virtualService(timeout: string): string {
  return `
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
    timeout: ${timeout}
`;
}

async function getJson(port: number, p: string): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${port}${p}`);
  assert.equal(res.status, 200, `${p} answered ${res.status}`);
  return res.json();
}

describe('control plane with a watched config directory', () => {
  let dir: string;
  let cp: ControlPlane;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-cp-'));
    fs.writeFileSync(path.join(dir, 'services.yaml'), SERVICES);
    fs.writeFileSync(path.join(dir, 'dr.yml'), DESTINATION_RULE);
    fs.writeFileSync(path.join(dir, 'vs.yaml'), virtualService('3s'));
    cp = new ControlPlane({
      configDir: dir,
      xdsAddress: '127.0.0.1:0',
      httpAddress: '127.0.0.1:0',
      logger: silentLogger,
      pushDebounceMs: 10,
    });
    await cp.start();
  });

  after(async () => {
    await cp.stop(100);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('is ready with the first snapshot and lists every accepted resource', async () => {
    const res = await fetch(`http://127.0.0.1:${cp.httpPort}/ready`);
    assert.equal(res.status, 200);
    const configz = await getJson(cp.httpPort, '/debug/configz');
    const keys = configz.accepted.map((a: { key: string }) => a.key).sort();
    assert.deepEqual(keys, [
      'DestinationRule/default/reviews',
      'Service/default/reviews',
      'VirtualService/default/reviews',
      'WorkloadEntry/default/reviews-v1',
      'WorkloadEntry/default/reviews-v2',
    ]);
    assert.deepEqual(configz.rejected, []);
    assert.equal(cp.current()?.registry.endpoints.get('reviews.default.svc.cluster.local')?.length, 2);
  });

  it('picks up an edited file as a new snapshot without a restart', async () => {
    const before = cp.current()!.sequence;
    fs.writeFileSync(path.join(dir, 'vs.yaml'), virtualService('5s'));
    await waitFor(() => cp.current()!.sequence > before, { timeoutMs: 5000, message: 'no new snapshot after editing vs.yaml' });
    const vs = cp.current()!.resources.get('VirtualService/default/reviews') as any;
    assert.equal(vs.spec.http[0].timeout, '5s');
    assert.match(cp.current()!.reason, /vs\.yaml/);
  });

  it('rejects an invalid edit with kind, name, file and field path, and keeps the last good version', async () => {
    const before = cp.current()!.sequence;
    fs.writeFileSync(path.join(dir, 'vs.yaml'), virtualService('soon'));
    let rejected: any;
    await waitFor(
      async () => {
        const configz = await getJson(cp.httpPort, '/debug/configz');
        rejected = configz.rejected.find((r: { key: string }) => r.key === 'VirtualService/default/reviews');
        return Boolean(rejected);
      },
      { timeoutMs: 5000, message: 'rejection never showed in /debug/configz' },
    );
    assert.equal(rejected.lastGoodServing, true);
    assert.equal(rejected.source, 'vs.yaml');
    const message: string = rejected.messages.join('\n');
    assert.match(message, /VirtualService/);
    assert.match(message, /default\/reviews/);
    assert.match(message, /vs\.yaml/);
    assert.match(message, /spec\.http\[0\]\.timeout/);
    // The last good version still serves: same spec, and no new snapshot was needed for it.
    assert.equal(cp.current()!.sequence, before);
    const vs = cp.current()!.resources.get('VirtualService/default/reviews') as any;
    assert.equal(vs.spec.http[0].timeout, '5s');
  });

  it('recovers when the file is fixed, and removes resources when a file is deleted', async () => {
    const seq = cp.current()!.sequence;
    fs.writeFileSync(path.join(dir, 'vs.yaml'), virtualService('7s'));
    await waitFor(() => cp.current()!.sequence > seq, { timeoutMs: 5000, message: 'fixed file not picked up' });
    const configz = await getJson(cp.httpPort, '/debug/configz');
    assert.deepEqual(configz.rejected, []);

    const seq2 = cp.current()!.sequence;
    fs.unlinkSync(path.join(dir, 'dr.yml'));
    await waitFor(() => cp.current()!.sequence > seq2, { timeoutMs: 5000, message: 'deleted file not picked up' });
    assert.equal(cp.current()!.resources.has('DestinationRule/default/reviews'), false);
    // With the DestinationRule gone, the route to subset v1 refers to nothing: the analyzer says so.
    const after = await getJson(cp.httpPort, '/debug/configz');
    assert.ok(
      after.warnings.some((w: { code: string; path: string }) => w.code === 'IST0101' && /subset/.test(w.path)),
      `expected an IST0101 subset warning, got ${JSON.stringify(after.warnings)}`,
    );
  });

  it('reports unknown kinds without failing the rest of the file', async () => {
    const seq = cp.current()!.sequence;
    fs.writeFileSync(
      path.join(dir, 'mixed.yaml'),
      `apiVersion: example.com/v1\nkind: Frobnicator\nmetadata: {name: x}\nspec: {}\n---\n${DESTINATION_RULE}`,
    );
    await waitFor(() => cp.current()!.sequence > seq, { timeoutMs: 5000, message: 'mixed.yaml not picked up' });
    assert.ok(cp.current()!.resources.has('DestinationRule/default/reviews'));
    const configz = await getJson(cp.httpPort, '/debug/configz');
    assert.ok(configz.warnings.some((w: { message: string }) => /Frobnicator/.test(w.message)));
  });

  it('tells a starting proxy about its WorkloadEntry, and answers 404 for an unknown one', async () => {
    const workload = await getJson(cp.httpPort, '/api/v1/workloads/default/reviews-v2');
    assert.equal(workload.address, '127.0.10.4');
    assert.equal(workload.serviceAccount, 'bookinfo-reviews');
    assert.deepEqual(workload.labels, { app: 'reviews', version: 'v2' });
    const missing = await fetch(`http://127.0.0.1:${cp.httpPort}/api/v1/workloads/default/nope`);
    assert.equal(missing.status, 404);
    assert.match(((await missing.json()) as { error: string }).error, /default\/nope not found/);
  });

  it('answers on / with the state at a glance and links to the debug views', async () => {
    const res = await fetch(`http://127.0.0.1:${cp.httpPort}/`);
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.match(html, new RegExp(`Serving config ${cp.current()!.version}`));
    for (const path of ['/debug/syncz', '/debug/configz', '/metrics']) assert.ok(html.includes(`href="${path}"`), path);
  });

  it('serves Prometheus metrics and snapshot history', async () => {
    const res = await fetch(`http://127.0.0.1:${cp.httpPort}/metrics`);
    const text = await res.text();
    assert.match(text, /^weft_snapshots_total \d+/m);
    assert.match(text, /^# TYPE pilot_xds gauge/m);
    const history = await getJson(cp.httpPort, '/debug/snapshots');
    assert.ok(history.length >= 4);
    assert.equal(history[history.length - 1].version, cp.current()!.version);
  });
});
