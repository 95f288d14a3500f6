// `weft get` (tables per kind, YAML/JSON that apply takes back) and `weft delete` (by file, by
// kind and name), against a running control plane; plus the unreachable-control-plane error.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { DESTINATION_RULES, reviewsRoute, runWeft, SERVICES, startTestControlPlane, type TestControlPlane } from './cli-harness';

const GATEWAY_AND_ROUTE = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway, namespace: shop}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo, namespace: shop}
spec:
  hosts: ["*"]
  gateways: [bookinfo-gateway]
  http:
  - match: [{uri: {exact: /productpage}}]
    route: [{destination: {host: productpage.default.svc.cluster.local, port: {number: 9080}}}]
`;

describe('weft get', () => {
  let mesh: TestControlPlane;
  before(async () => {
    mesh = await startTestControlPlane({
      'services.yaml': SERVICES,
      'rules.yaml': DESTINATION_RULES,
      'routes/reviews.yaml': reviewsRoute('v1'),
      'shop.yaml': GATEWAY_AND_ROUTE,
    });
  });
  after(() => mesh.close());

  it('prints a table with the columns that matter per kind', async () => {
    const vs = await mesh.weft(['get', 'virtualservices']);
    assert.equal(vs.code, 0, vs.stderr);
    assert.equal(vs.stdout, 'NAME      GATEWAYS   HOSTS\nreviews              ["reviews"]\n');

    const all = await mesh.weft(['get', 'vs', '-A']);
    assert.deepEqual(all.stdout.trim().split('\n').map((l) => l.split(/\s{3,}/)), [
      ['NAMESPACE', 'NAME', 'GATEWAYS', 'HOSTS'],
      ['default', 'reviews', '["reviews"]'],
      ['shop', 'bookinfo', '["bookinfo-gateway"]', '["*"]'],
    ]);

    const dr = await mesh.weft(['get', 'dr', '-o', 'wide']);
    assert.match(dr.stdout, /^NAME\s+HOST\s+SUBSETS\s+TLS\n/);
    assert.match(dr.stdout, /^reviews\s+reviews\s+v1,v2\n/m);

    const svc = await mesh.weft(['get', 'svc', 'reviews']);
    assert.equal(svc.stdout, 'NAME      TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)\nreviews   ClusterIP   <none>       <none>        9080/TCP\n');

    const gw = await mesh.weft(['get', 'gateway/bookinfo-gateway', '-n', 'shop']);
    assert.match(gw.stdout, /^bookinfo-gateway\s+istio=ingressgateway\s+http:8080$/m);

    const we = await mesh.weft(['get', 'we', '-o', 'name']);
    assert.equal(we.stdout, 'workloadentry.networking.istio.io/ratings-v1\nworkloadentry.networking.istio.io/reviews-v1\nworkloadentry.networking.istio.io/reviews-v2\n');
  });

  it('prints YAML and JSON that apply takes back unchanged', async () => {
    const one = await mesh.weft(['get', 'vs', 'reviews', '-o', 'yaml']);
    assert.equal(one.code, 0, one.stderr);
    const doc = parse(one.stdout);
    assert.equal(doc.kind, 'VirtualService');
    assert.equal(doc.metadata.namespace, 'default');
    assert.equal(doc.spec.http[0].route[0].destination.subset, 'v1');

    const list = JSON.parse((await mesh.weft(['get', 'dr', '-o', 'json'])).stdout);
    assert.equal(list.kind, 'List');
    assert.deepEqual(list.items.map((i: { metadata: { name: string } }) => i.metadata.name), ['ratings', 'reviews']);
    assert.equal(list.metadata.resourceVersion, mesh.cp.current()!.version);

    const again = await mesh.weft(['apply', '-f', '-'], { input: one.stdout });
    assert.equal(again.stdout, 'virtualservice.networking.istio.io/reviews unchanged\n');
  });

  it('says so when nothing matches, and fails for a name or kind that does not exist', async () => {
    const none = await mesh.weft(['get', 'se']);
    assert.equal(none.code, 0);
    assert.equal(none.stdout, '');
    assert.equal(none.stderr, 'No resources found in default namespace.\n');

    const missing = await mesh.weft(['get', 'vs', 'nope']);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, 'Error from server (NotFound): virtualservices.networking.istio.io "nope" not found\n');

    const kind = await mesh.weft(['get', 'frobs']);
    assert.equal(kind.code, 1);
    assert.match(kind.stderr, /doesn't have a resource type "frobs".*virtualservices \(vs\)/);

    const usage = await mesh.weft(['get']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /Usage: weft get KIND/);
    const format = await mesh.weft(['get', 'vs', '-o', 'xml']);
    assert.equal(format.code, 2);
    assert.match(format.stderr, /unknown output format "xml"/);
  });
});

describe('weft delete', () => {
  let mesh: TestControlPlane;
  before(async () => {
    mesh = await startTestControlPlane({
      'services.yaml': SERVICES,
      'rules.yaml': DESTINATION_RULES,
      'routes/reviews.yaml': reviewsRoute('v1'),
      'shop.yaml': GATEWAY_AND_ROUTE,
    });
  });
  after(() => mesh.close());

  it('deletes by kind and name, removing a file left empty', async () => {
    const dry = await mesh.weft(['delete', 'vs', 'reviews', '--dry-run']);
    assert.equal(dry.stdout, 'virtualservice.networking.istio.io "reviews" deleted (server dry run)\n');
    assert.ok(fs.existsSync(path.join(mesh.dir, 'routes/reviews.yaml')));

    const version = mesh.cp.current()!.version;
    const r = await mesh.weft(['delete', 'vs', 'reviews']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'virtualservice.networking.istio.io "reviews" deleted\n');
    assert.equal(fs.existsSync(path.join(mesh.dir, 'routes/reviews.yaml')), false);
    assert.equal(mesh.cp.current()!.resources.has('VirtualService/default/reviews'), false);
    assert.notEqual(mesh.cp.current()!.version, version);
    assert.match(mesh.cp.current()!.reason, /weft delete: VirtualService\/default\/reviews/);
  });

  it('deletes one document out of a multi-document file and keeps the rest', async () => {
    const r = await mesh.weft(['delete', 'destinationrule', 'ratings']);
    assert.equal(r.code, 0, r.stderr);
    const text = fs.readFileSync(path.join(mesh.dir, 'rules.yaml'), 'utf8');
    assert.equal(text, DESTINATION_RULES.slice(0, DESTINATION_RULES.indexOf('---\n# ratings')));
    assert.ok(mesh.cp.current()!.resources.has('DestinationRule/default/reviews'));
  });

  it('deletes what a file names, in the namespaces it names', async () => {
    const file = path.join(mesh.dir, '..', `${path.basename(mesh.dir)}-shop.yaml`);
    fs.writeFileSync(file, GATEWAY_AND_ROUTE);
    try {
      const r = await mesh.weft(['delete', '-f', file]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'gateway.networking.istio.io "bookinfo-gateway" deleted\nvirtualservice.networking.istio.io "bookinfo" deleted\n');
      assert.equal(fs.existsSync(path.join(mesh.dir, 'shop.yaml')), false);
      assert.equal(mesh.cp.current()!.resources.has('Gateway/shop/bookinfo-gateway'), false);
    } finally {
      fs.rmSync(file, { force: true });
    }
  });

  it('refuses unknown resources with NotFound and deletes nothing from that file', async () => {
    const version = mesh.cp.current()!.version;
    const r = await mesh.weft(['delete', '-f', '-'], { input: `${DESTINATION_RULES}---\n${reviewsRoute('v1')}` });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error from server \(NotFound\): destinationrules\.networking\.istio\.io "ratings" not found in namespace "default"$/m);
    assert.match(r.stderr, /virtualservices\.networking\.istio\.io "reviews" not found/);
    assert.equal(mesh.cp.current()!.version, version);
    assert.ok(mesh.cp.current()!.resources.has('DestinationRule/default/reviews'));

    const named = await mesh.weft(['delete', 'svc', 'nope', 'reviews', '--ignore-not-found']);
    assert.equal(named.code, 0, named.stderr);
    assert.equal(named.stdout, 'service "reviews" deleted\n');
    // What is left refers to nothing: said as a warning, not refused.
    const usage = await mesh.weft(['delete', 'vs']);
    assert.equal(usage.code, 2);
  });
});

describe('an unreachable control plane', () => {
  it('is reported with the address and a hint, for every command that needs it', async () => {
    for (const args of [['get', 'vs'], ['apply', '-f', '-'], ['delete', 'vs', 'x'], ['proxy-status'], ['version']]) {
      const r = await runWeft([...args, '--control', '127.0.0.1:9'], { input: reviewsRoute('v1') });
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^error: cannot reach the control plane at 127\.0\.0\.1:9 \(hint: is `weft control` running\? use --control HOST:PORT\)$/m, args.join(' '));
    }
    const env = await runWeft(['get', 'vs'], { env: { WEFT_CONTROL: '127.0.0.1:9' } });
    assert.match(env.stderr, /cannot reach the control plane at 127\.0\.0\.1:9/);
    const bad = await runWeft(['get', 'vs', '--control', 'nowhere']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--control "nowhere" is not HOST:PORT/);
  });
});
