// `weft apply` against a running control plane: kubectl's created / configured / unchanged, files
// in the config directory that survive a restart, invalid input refused whole, dry runs, stdin,
// concurrent applies, and the config API's answers to malformed requests.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { editManifest, UnparsableManifestError } from '../../src/control/manifest-edit';
import { api, DESTINATION_RULES, readTree, reviewsRoute, SERVICES, startTestControlPlane, type TestControlPlane } from './cli-harness';

describe('weft apply', () => {
  let mesh: TestControlPlane;
  let work: string;

  before(async () => {
    mesh = await startTestControlPlane({ 'services.yaml': SERVICES, 'rules.yaml': DESTINATION_RULES });
    work = fs.mkdtempSync(path.join(mesh.dir, '..', 'weft-cli-input-'));
  });

  after(async () => {
    await mesh.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('creates a new resource in applied/, then reports configured and unchanged like kubectl', async () => {
    const file = path.join(work, 'reviews-v1.yaml');
    fs.writeFileSync(file, reviewsRoute('v1'));
    const before = mesh.cp.current()!.sequence;

    const created = await mesh.weft(['apply', '-f', file, '-m', 'all traffic to v1']);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.stdout, 'virtualservice.networking.istio.io/reviews created\n');
    const applied = path.join(mesh.dir, 'applied', 'virtualservice-default-reviews.yaml');
    assert.deepEqual(parse(fs.readFileSync(applied, 'utf8')), parse(reviewsRoute('v1')));
    // The rescan is synchronous: the answer already came from the new snapshot.
    assert.ok(mesh.cp.current()!.sequence > before);
    assert.match(mesh.cp.current()!.reason, /weft apply: VirtualService\/default\/reviews — "all traffic to v1"/);

    fs.writeFileSync(file, reviewsRoute('v2'));
    const configured = await mesh.weft(['apply', '-f', file]);
    assert.equal(configured.stdout, 'virtualservice.networking.istio.io/reviews configured\n');
    const vs = mesh.cp.current()!.resources.get('VirtualService/default/reviews') as any;
    assert.equal(vs.spec.http[0].route[0].destination.subset, 'v2');
    assert.match(fs.readFileSync(applied, 'utf8'), /subset: v2/);

    const version = mesh.cp.current()!.version;
    const unchanged = await mesh.weft(['apply', '-f', file]);
    assert.equal(unchanged.stdout, 'virtualservice.networking.istio.io/reviews unchanged\n');
    assert.equal(mesh.cp.current()!.version, version, 'an unchanged apply builds no snapshot');
  });

  it('rewrites a resource in the file it lives in, keeping the other documents and their comments', async () => {
    const file = path.join(work, 'dr.yaml');
    fs.writeFileSync(
      file,
      `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`,
    );
    const r = await mesh.weft(['apply', '-f', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'destinationrule.networking.istio.io/reviews configured\n');
    const text = fs.readFileSync(path.join(mesh.dir, 'rules.yaml'), 'utf8');
    assert.match(text, /^# Subsets, one DestinationRule per service\n/);
    assert.match(text, /simple: ROUND_ROBIN/);
    // The other document is byte for byte what it was.
    assert.ok(text.endsWith(DESTINATION_RULES.slice(DESTINATION_RULES.indexOf('---\n# ratings'))), text);
    assert.equal(fs.existsSync(path.join(mesh.dir, 'applied', 'destinationrule-default-reviews.yaml')), false);
  });

  it('refuses invalid input whole, with kind, name, file and field path, and changes nothing', async () => {
    const file = path.join(work, 'bad.yaml');
    fs.writeFileSync(
      file,
      `${reviewsRoute('v1', '    timeout: soon\n')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - route:
    - destination: {host: ratings, subset: v1}
      weight: -5
`,
    );
    const files = readTree(mesh.dir);
    const version = mesh.cp.current()!.version;
    const r = await mesh.weft(['apply', '-f', file]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trim().split('\n');
    const timeout = lines.find((l) => l.includes('spec.http[0].timeout'));
    assert.ok(timeout, r.stderr);
    assert.match(timeout!, /^Error \[WEFT-V0009\] VirtualService default\/reviews \(.*bad\.yaml#0, line 13\)/);
    assert.ok(lines.some((l) => /VirtualService default\/ratings .*bad\.yaml#1.* spec\.http\[0\]\.route\[0\]\.weight/.test(l)), r.stderr);
    assert.match(lines[lines.length - 1], /^error: .*nothing was changed/);
    assert.deepEqual(readTree(mesh.dir), files, 'files untouched');
    assert.equal(mesh.cp.current()!.version, version, 'snapshot version unchanged');
    assert.equal(mesh.cp.current()!.resources.has('VirtualService/default/ratings'), false);
  });

  it('refuses a change that would leave a route to a subset no DestinationRule defines', async () => {
    const files = readTree(mesh.dir);
    const version = mesh.cp.current()!.version;
    const r = await mesh.weft(['apply', '-f', '-'], { input: reviewsRoute('v9') });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Error \[IST0101\] VirtualService default\/reviews \(stdin#0\) spec\.http\[0\]\.route\[0\]\.destination\.subset: .*reviews\+v9/);
    assert.deepEqual(readTree(mesh.dir), files);
    assert.equal(mesh.cp.current()!.version, version);
  });

  it('changes nothing with --dry-run, and says what would happen', async () => {
    const files = readTree(mesh.dir);
    const version = mesh.cp.current()!.version;
    const r = await mesh.weft(['apply', '--dry-run', '-f', '-'], {
      input: `${reviewsRoute('v1')}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ratings}\nspec: {hosts: [ratings], http: [{route: [{destination: {host: ratings}}]}]}\n`,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(
      r.stdout.startsWith('virtualservice.networking.istio.io/reviews configured (server dry run)\nvirtualservice.networking.istio.io/ratings created (server dry run)\n'),
      r.stdout,
    );
    // Then the diff against the running config (safe-change.test.ts covers it and the proxies).
    assert.match(r.stdout, /\nDiff against the running config \(v\d+\): 1 added, 1 changed, 0 removed\n\+ VirtualService default\/ratings\n~ VirtualService default\/reviews\n/);
    assert.deepEqual(readTree(mesh.dir), files);
    assert.equal(mesh.cp.current()!.version, version);
  });

  it('reads stdin and directories, and applies everything in one change', async () => {
    const dir = path.join(work, 'many');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'a.yaml'), `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ratings}\nspec: {hosts: [ratings], http: [{route: [{destination: {host: ratings, subset: v1}}]}]}\n`);
    fs.writeFileSync(path.join(dir, 'b.json'), JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'details' }, spec: { ports: [{ name: 'http', port: 9080 }] } }));
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'not a manifest');
    const before = mesh.cp.current()!.sequence;
    const r = await mesh.weft(['apply', '-f', dir, '-f', '-'], { input: reviewsRoute('v1') });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      ['virtualservice.networking.istio.io/ratings created', 'service/details created', 'virtualservice.networking.istio.io/reviews configured', ''].join('\n'),
    );
    assert.equal(mesh.cp.current()!.sequence, before + 1, 'one snapshot for the whole change');
    assert.ok(fs.existsSync(path.join(mesh.dir, 'applied', 'service-default-details.yaml')));
  });

  it('keeps applied resources across a control-plane restart', async () => {
    const keys = [...mesh.cp.current()!.resources.keys()];
    const reviews = mesh.cp.current()!.resources.get('VirtualService/default/reviews');
    await mesh.restart();
    assert.deepEqual([...mesh.cp.current()!.resources.keys()], keys);
    assert.deepEqual(mesh.cp.current()!.resources.get('VirtualService/default/reviews')!.spec, reviews!.spec);
    const r = await mesh.weft(['apply', '-f', '-'], { input: reviewsRoute('v1') });
    assert.equal(r.stdout, 'virtualservice.networking.istio.io/reviews unchanged\n');
  });

  it('serializes concurrent applies: every one lands, and files and mesh agree', async () => {
    const bodies = Array.from({ length: 8 }, (_, i) =>
      `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: burst-${i}}\nspec: {hosts: [burst-${i}.example.com], http: [{route: [{destination: {host: ratings}}], timeout: ${i + 1}s}]}\n`,
    );
    const sameResource = Array.from({ length: 4 }, (_, i) => reviewsRoute(i % 2 ? 'v1' : 'v2', `    timeout: ${i + 1}s\n`));
    const answers = await Promise.all([...bodies, ...sameResource].map((b) => api(mesh.address, 'POST', '/api/v1/apply', b)));
    for (const a of answers) assert.equal(a.status, 200, JSON.stringify(a.body));
    const versions = answers.map((a) => Number(String(a.body.version).slice(1)));
    assert.equal(new Set(versions).size, versions.length, `each change got its own snapshot: ${versions}`);
    for (let i = 0; i < 8; i++) assert.ok(mesh.cp.current()!.resources.has(`VirtualService/default/burst-${i}`));
    const served = mesh.cp.current()!.resources.get('VirtualService/default/reviews') as any;
    const file = parse(fs.readFileSync(path.join(mesh.dir, 'applied', 'virtualservice-default-reviews.yaml'), 'utf8'));
    assert.deepEqual(served.spec, file.spec);
  });
});

describe('config API: malformed requests get a 4xx and a sentence', () => {
  let mesh: TestControlPlane;
  before(async () => {
    mesh = await startTestControlPlane({ 'services.yaml': SERVICES });
  });
  after(() => mesh.close());

  it('answers each kind of bad request without changing anything', async () => {
    const version = mesh.cp.current()!.version;
    const cases: [string, string, string | undefined, string, number, RegExp][] = [
      ['POST', '/api/v1/apply', '', 'application/yaml', 400, /body is empty/],
      ['POST', '/api/v1/apply', '{"apiVersion": ', 'application/json', 400, /not valid JSON/],
      ['POST', '/api/v1/apply', '{"sources": 3}', 'application/vnd.weft.manifests+json', 400, /manifest bundle is/],
      ['POST', '/api/v1/apply', '{"sources": [{"name": "x"}]}', 'application/vnd.weft.manifests+json', 400, /content must be a string/],
      ['POST', '/api/v1/apply', 'x', 'multipart/form-data', 415, /not supported/],
      ['POST', '/api/v1/apply?dryRun=maybe', 'a: b', 'application/yaml', 400, /dryRun=maybe is not a boolean/],
      ['POST', '/api/v1/apply', 'kind: [unclosed', 'application/yaml', 422, /YAML syntax error/],
      ['POST', '/api/v1/apply', '42', 'application/yaml', 422, /must be a YAML mapping/],
      ['POST', '/api/v1/apply', 'apiVersion: example.com/v1\nkind: Frobnicator\nmetadata: {name: x}\n', 'application/yaml', 422, /Frobnicator is not one Weft reads/],
      ['POST', '/api/v1/apply', '[{"kind": "VirtualService"}]', 'application/json', 422, /apiVersion is required/],
      ['GET', '/api/v1/apply', undefined, '', 405, /not allowed.*use POST/],
      ['GET', '/api/v1/resources?kind=frob', undefined, '', 400, /unknown kind "frob"/],
      ['GET', '/api/v1/resources/vs/default/nope', undefined, '', 404, /virtualservices\.networking\.istio\.io "nope" not found/],
      ['DELETE', '/api/v1/resources/vs/default/nope', undefined, '', 404, /"nope" not found in namespace "default"/],
      ['POST', '/api/v1/delete', 'apiVersion: v1\nmetadata: {name: x}\n', 'application/yaml', 422, /kind is required/],
    ];
    for (const [method, p, body, type, status, message] of cases) {
      const r = await api(mesh.address, method, p, body, type);
      assert.equal(r.status, status, `${method} ${p} ${body}: ${JSON.stringify(r.body)}`);
      const said = [r.body.error, ...(r.body.messages ?? [])].join('\n');
      assert.match(said, message, `${method} ${p} ${body}`);
    }
    const big = await api(mesh.address, 'POST', '/api/v1/apply', 'x'.repeat(9 * 1024 * 1024));
    assert.equal(big.status, 413);
    assert.equal(mesh.cp.current()!.version, version);
    assert.equal((await fetch(`http://${mesh.address}/ready`)).status, 200, 'still serving');
  });

  it('refuses to apply a resource whose references do not resolve, even if a file already has it so', async () => {
    const broken = reviewsRoute('v9');
    fs.writeFileSync(path.join(mesh.dir, 'broken.yaml'), broken);
    mesh.cp.rescan();
    assert.ok(mesh.cp.current()!.resources.has('VirtualService/default/reviews'), 'the file source serves it (analysis does not reject)');
    const r = await api(mesh.address, 'POST', '/api/v1/apply', broken);
    assert.equal(r.status, 422);
    assert.match(r.body.messages.join('\n'), /IST0101.*reviews\+v9/);
    fs.rmSync(path.join(mesh.dir, 'broken.yaml'));
    mesh.cp.rescan();
  });

  it('takes plain JSON and curl-style bodies, with ?source= naming them in problems', async () => {
    const vs = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'reviews' }, spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews' } }] }] } };
    const created = await api(mesh.address, 'POST', '/api/v1/apply?message=from%20curl', JSON.stringify(vs), 'application/json');
    assert.equal(created.status, 200, JSON.stringify(created.body));
    assert.equal(created.body.results[0].action, 'created');
    assert.equal(created.body.message, 'from curl');
    assert.notEqual(created.body.version, created.body.previousVersion);
    const bad = await api(mesh.address, 'POST', '/api/v1/apply?source=vs.yaml', 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec: {hosts: [r], tcp: 3}\n', 'application/x-www-form-urlencoded');
    assert.equal(bad.status, 422);
    assert.match(bad.body.messages.join('\n'), /VirtualService default\/r \(vs\.yaml#0, line 4\) spec\.tcp/);
  });
});

describe('manifest edits', () => {
  const vs = (name: string, host: string) => ({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name }, spec: { hosts: [host] } });
  const none = { replace: new Map(), remove: new Set<string>(), append: [] };

  it('replaces and removes items of a kind: List, leaving the rest of the file as it was', () => {
    const text = `# head\napiVersion: v1\nkind: List\nitems:\n- ${JSON.stringify(vs('a', 'a'))}\n- ${JSON.stringify(vs('b', 'b'))}\n---\n# tail comment\nkind: VirtualService\napiVersion: networking.istio.io/v1\nmetadata: {name: c}\nspec: {hosts: [c]}`;
    const out = editManifest(text, { ...none, replace: new Map([['VirtualService/default/a', vs('a', 'z')]]), remove: new Set(['VirtualService/default/b']) });
    assert.deepEqual([...out.found].sort(), ['VirtualService/default/a', 'VirtualService/default/b']);
    const [list, last] = out.text!.split('---\n');
    assert.deepEqual(parse(list).items, [vs('a', 'z')]);
    assert.match(list, /^# head\n/);
    assert.equal(last, '# tail comment\nkind: VirtualService\napiVersion: networking.istio.io/v1\nmetadata: {name: c}\nspec: {hosts: [c]}');
  });

  it('appends after a file without a final newline, and reports a file left empty', () => {
    const appended = editManifest('kind: VirtualService\nmetadata: {name: x}', { ...none, append: [vs('y', 'y')] }).text!;
    assert.deepEqual(appended.split('---\n').map((d) => parse(d).metadata.name), ['x', 'y']);
    const emptied = editManifest('# only this\n---\nkind: VirtualService\nmetadata: {name: x}\n', { ...none, remove: new Set(['VirtualService/default/x']) });
    assert.equal(emptied.text, undefined);
  });

  it('never rewrites a file that does not parse', () => {
    assert.throws(() => editManifest('kind: [unclosed\n', { ...none, append: [vs('y', 'y')] }), UnparsableManifestError);
  });
});
