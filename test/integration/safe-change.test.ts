// Safe change (issue 9): every accepted change is a version kept in the state directory;
// `weft history`, `weft diff`, `weft rollback` and `weft apply --dry-run` against a real control
// plane, its HTTP API and real ADS streams, across control-plane restarts. Loopback 127.0.70.x.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { ConfigHistoryError } from '../../src/control/config-history';
import { ControlPlane } from '../../src/control/control-plane';
import { silentLogger } from '../../src/log/logger';
import { TypeUrl } from '../../src/xds/protos';
import { AdsTestClient, sidecarNodeId } from '../support/ads-client';
import { waitFor } from '../support/wait-for';
import { api, DESTINATION_RULES, readTree, reviewsRoute, runWeft, SERVICES, tempConfigDir } from './cli-harness';

const HOST = '127.0.70.1';

const RATINGS_ROUTE = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - route: [{destination: {host: ratings, subset: v1}}]
`;

const SIDECAR_ID = sidecarNodeId('127.0.10.5', 'ratings-v1');
const GATEWAY_ID = `router~127.0.70.9~ingressgateway.istio-system~istio-system.svc.cluster.local`;

function sidecar(address: string): AdsTestClient {
  return new AdsTestClient({
    address,
    node: { id: SIDECAR_ID, metadata: { NAMESPACE: 'default', WORKLOAD_NAME: 'ratings-v1', INSTANCE_IPS: '127.0.10.5', LABELS: { app: 'ratings', version: 'v1' } } },
  });
}

/** The cluster the reviews route of the sidecar's port-9080 route config sends to. */
function reviewsCluster(client: AdsTestClient): string | undefined {
  const config = client.accepted(TypeUrl.RouteConfiguration).get('9080');
  const host = config?.virtual_hosts?.find((vh: { name: string }) => vh.name.startsWith('reviews.default.svc.cluster.local'));
  return host?.routes?.[0]?.route?.cluster;
}

interface HistoryJson {
  current: string;
  versions: { id: number; version: string; source: string; message?: string; reason: string; added: number; changed: number; removed: number; resources: number }[];
}

describe('safe change: history, diff, rollback, dry run', () => {
  let dir: string;
  let stateDir: string;
  let work: string;
  let cp: ControlPlane;
  const clients: AdsTestClient[] = [];

  const start = async () => {
    cp = new ControlPlane({
      configDir: dir,
      stateDir,
      xdsAddress: `${HOST}:0`,
      httpAddress: `${HOST}:0`,
      logger: silentLogger,
      pushDebounceMs: 10,
      pushDebounceMaxMs: 50,
    });
    await cp.start();
  };
  const restart = async () => {
    await cp.stop(100);
    await start();
  };
  const address = () => `${HOST}:${cp.httpPort}`;
  const weft = (args: string[], input?: string) => runWeft(args, { input, env: { WEFT_CONTROL: address() } });
  const historyJson = async (): Promise<HistoryJson> => {
    const r = await weft(['history', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as HistoryJson;
  };
  const inputFile = (name: string, content: string) => {
    const file = path.join(work, name);
    fs.writeFileSync(file, content);
    return file;
  };

  before(async () => {
    dir = tempConfigDir({ 'services.yaml': SERVICES, 'rules.yaml': DESTINATION_RULES });
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-state-'));
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-input-'));
    await start();
  });

  after(async () => {
    for (const c of clients) c.close();
    await cp.stop(100);
    for (const d of [dir, stateDir, work]) fs.rmSync(d, { recursive: true, force: true });
  });

  it('records every accepted change as a version: a file edit, weft apply -m, weft delete', async () => {
    assert.deepEqual((await historyJson()).versions.map((v) => [v.id, v.source, v.added]), [[1, 'file', 7]]);

    // An edit in the config directory, picked up by the watcher.
    fs.writeFileSync(path.join(dir, 'ratings.yaml'), RATINGS_ROUTE);
    await waitFor(() => cp.history.latest()!.id === 2, { message: 'the file edit never became a version' });

    const v1 = await weft(['apply', '-f', inputFile('reviews-v1.yaml', reviewsRoute('v1')), '-m', 'all reviews traffic to v1']);
    assert.equal(v1.code, 0, v1.stderr);
    const v2 = await weft(['apply', '-f', inputFile('reviews-v2.yaml', reviewsRoute('v2')), '--message', 'reviews v2 for everyone']);
    assert.equal(v2.code, 0, v2.stderr);
    // Refused and no-op changes are not versions.
    assert.equal((await weft(['apply', '-f', '-'], reviewsRoute('v9'))).code, 1);
    assert.equal((await weft(['apply', '-f', path.join(work, 'reviews-v2.yaml')])).stdout, 'virtualservice.networking.istio.io/reviews unchanged\n');
    const deleted = await weft(['delete', 'vs', 'ratings', '-m', 'ratings routing is not needed']);
    assert.equal(deleted.code, 0, deleted.stderr);

    const history = await historyJson();
    assert.equal(history.current, 'v5');
    assert.deepEqual(
      history.versions.map((v) => [v.version, v.source, v.message, v.added, v.changed, v.removed, v.resources]),
      [
        ['v1', 'file', undefined, 7, 0, 0, 7],
        ['v2', 'file', undefined, 1, 0, 0, 8],
        ['v3', 'apply', 'all reviews traffic to v1', 1, 0, 0, 9],
        ['v4', 'apply', 'reviews v2 for everyone', 0, 1, 0, 9],
        ['v5', 'delete', 'ratings routing is not needed', 0, 0, 1, 8],
      ],
    );
    assert.match(history.versions[1].reason, /^file change: ratings\.yaml/);

    const table = await weft(['history']);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0], /^CURRENT\s+VERSION\s+CREATED\s+SOURCE\s+ADDED\s+CHANGED\s+REMOVED\s+RESOURCES\s+MESSAGE$/);
    assert.match(lines[3], /^\s+v3\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+apply\s+1\s+0\s+0\s+9\s+all reviews traffic to v1$/);
    assert.match(lines[5], /^\*\s+v5\s+\S+\s+delete\s+0\s+0\s+1\s+8\s+ratings routing is not needed$/);
    // The dashboard's version list is the same history.
    const snapshots = (await api(address(), 'GET', '/debug/snapshots')).body as HistoryJson['versions'];
    assert.deepEqual(snapshots.map((s) => [s.version, s.source]), history.versions.map((v) => [v.version, v.source]));
  });

  it('weft diff shows the last change by default, and any two versions, by resource and field', async () => {
    const last = await weft(['diff']);
    assert.equal(last.code, 0, last.stderr);
    assert.equal(last.stdout, 'v4 (apply: reviews v2 for everyone) -> v5 (delete: ratings routing is not needed): 0 added, 0 changed, 1 removed\n- VirtualService default/ratings\n');

    const between = await weft(['diff', '3', 'v4']);
    assert.equal(
      between.stdout,
      'v3 (apply: all reviews traffic to v1) -> v4 (apply: reviews v2 for everyone): 0 added, 1 changed, 0 removed\n' +
        '~ VirtualService default/reviews\n' +
        '    ~ spec.http[0].route[0].destination.subset: v1 -> v2\n',
    );
    const sinceStart = await weft(['diff', '1']);
    assert.match(sinceStart.stdout, /^v1 \(file\) -> v5 \(delete: ratings routing is not needed\): 1 added, 0 changed, 0 removed\n\+ VirtualService default\/reviews\n$/);
    const same = await weft(['diff', '5', '5']);
    assert.match(same.stdout, /: no changes\n$/);

    const asJson = JSON.parse((await weft(['diff', '3', '4', '-o', 'json'])).stdout);
    assert.deepEqual(asJson.resources, [
      {
        key: 'VirtualService/default/reviews',
        kind: 'VirtualService',
        namespace: 'default',
        name: 'reviews',
        action: 'changed',
        fields: [{ path: 'spec.http[0].route[0].destination.subset', action: 'changed', old: 'v1', new: 'v2' }],
      },
    ]);
    const unknown = await weft(['diff', '42']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^error: version 42 is not in the config history: history keeps v1 to v5 \(the last 100\)/);
  });

  it('apply --dry-run prints the diff and the proxies whose config would change, and changes nothing', async () => {
    const xds = `${HOST}:${cp.xdsPort}`;
    const ratings = sidecar(xds);
    const gateway = new AdsTestClient({ address: xds, node: { id: GATEWAY_ID, metadata: { NAMESPACE: 'istio-system', LABELS: { istio: 'ingressgateway' } } } });
    clients.push(ratings, gateway);
    await cp.ads.waitForConvergence({ minProxies: 2, timeoutMs: 10_000 });
    await waitFor(() => reviewsCluster(ratings) === 'outbound|9080|v2|reviews.default.svc.cluster.local', { message: 'the sidecar never got the v2 route' });

    const files = readTree(dir);
    const versions = (await historyJson()).versions.length;
    const responses = [ratings.responses.length, gateway.responses.length];
    const r = await weft(['apply', '--dry-run', '-f', path.join(work, 'reviews-v1.yaml')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      [
        'virtualservice.networking.istio.io/reviews configured (server dry run)',
        '',
        'Diff against the running config (v5): 0 added, 1 changed, 0 removed',
        '~ VirtualService default/reviews',
        '    ~ spec.http[0].route[0].destination.subset: v2 -> v1',
        '',
        'Proxies whose configuration would change (1 of 2 connected):',
        `  ${SIDECAR_ID}`,
        '      RDS ~9080 ~http_proxy',
        '',
      ].join('\n'),
    );
    // A change no proxy would notice: a label on the route.
    const quiet = await weft(['apply', '--dry-run', '-f', '-'], reviewsRoute('v2').replace('  name: reviews\n', '  name: reviews\n  labels: {team: bookinfo}\n'));
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.match(quiet.stdout, /\n~ VirtualService default\/reviews\n    \+ metadata\.labels:\n        team: bookinfo\n\nNo connected proxy's configuration would change \(2 connected\)\.\n$/);

    const noop = await weft(['apply', '--dry-run', '-f', path.join(work, 'reviews-v2.yaml')]);
    assert.match(noop.stdout, /unchanged \(server dry run\)\n\nNo change to the running config \(v5\)\.\n\nNo connected proxy's configuration would change \(2 connected\)\.\n$/);

    await cp.ads.waitForConvergence({ timeoutMs: 5000 });
    assert.deepEqual(readTree(dir), files, 'files untouched');
    assert.equal((await historyJson()).versions.length, versions, 'no version recorded');
    assert.equal(cp.current()!.version, 'v5');
    assert.deepEqual([ratings.responses.length, gateway.responses.length], responses, 'nothing pushed');
    assert.equal(reviewsCluster(ratings), 'outbound|9080|v2|reviews.default.svc.cluster.local');
  });

  it('keeps history across a restart, and a rollback after it is served to proxies and written to the files', async () => {
    for (const c of clients.splice(0)) c.close();
    const before = await historyJson();
    await restart();
    const after = await historyJson();
    assert.deepEqual(after, before, 'the same versions, and no new one for an unchanged directory');
    assert.equal((await api(address(), 'GET', '/ready')).body, 'ready v5\n');

    const ratings = sidecar(`${HOST}:${cp.xdsPort}`);
    clients.push(ratings);
    await waitFor(() => ratings.hasAccepted('v5', [TypeUrl.RouteConfiguration]) && reviewsCluster(ratings)?.includes('|v2|'), { timeoutMs: 10_000, message: 'the sidecar never got v5' });

    // Default: the version before the current one (undo the delete).
    const undo = await weft(['rollback', '-m', 'ratings still needs its route']);
    assert.equal(undo.code, 0, undo.stderr);
    assert.equal(undo.stdout, 'virtualservice.networking.istio.io/ratings created\nrolled back to v4: v6 is serving\n');
    assert.deepEqual(parse(fs.readFileSync(path.join(dir, 'applied', 'virtualservice-default-ratings.yaml'), 'utf8')).spec, parse(RATINGS_ROUTE).spec);

    const started = Date.now();
    const back = await weft(['rollback', 'v3']);
    assert.equal(back.code, 0, back.stderr);
    assert.equal(back.stdout, 'virtualservice.networking.istio.io/reviews configured\nrolled back to v3: v7 is serving\n');
    await waitFor(() => ratings.hasAccepted('v7', [TypeUrl.RouteConfiguration]) && reviewsCluster(ratings) === 'outbound|9080|v1|reviews.default.svc.cluster.local', {
      timeoutMs: 5000,
      message: () => `the sidecar never got the rolled-back route: ${reviewsCluster(ratings)}`,
    });
    const convergedMs = Date.now() - started;
    assert.ok(convergedMs < 5000, `converged in ${convergedMs}ms`);

    // Files and mesh agree: the file holds v3's route, and v3 -> v7 is no change at all.
    const file = parse(fs.readFileSync(path.join(dir, 'applied', 'virtualservice-default-reviews.yaml'), 'utf8'));
    assert.equal(file.spec.http[0].route[0].destination.subset, 'v1');
    assert.match((await weft(['diff', '3', '7'])).stdout, /: no changes\n$/);

    // The rollbacks are versions too, and they survive another restart.
    await restart();
    const versions = (await historyJson()).versions.slice(-2).map((v) => [v.version, v.source, v.message, v.added, v.changed, v.removed]);
    assert.deepEqual(versions, [
      ['v6', 'rollback', 'rollback to v4: ratings still needs its route', 1, 0, 0],
      ['v7', 'rollback', 'rollback to v3', 0, 1, 0],
    ]);
    assert.equal(cp.current()!.version, 'v7');
    const nothing = await weft(['rollback', '7']);
    assert.equal(nothing.stdout, "nothing to roll back: the running config (v7) already is v7's\n");
    const gone = await weft(['rollback', '99']);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /version 99 is not in the config history/);
  });

  it('refuses to start when the history cannot be written, saying where and what to do', async () => {
    const state = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-state-'));
    fs.writeFileSync(path.join(state, 'history'), 'a file where the history directory should be');
    const broken = new ControlPlane({ configDir: dir, stateDir: state, xdsAddress: `${HOST}:0`, httpAddress: `${HOST}:0`, logger: silentLogger });
    try {
      await assert.rejects(broken.start(), (err: Error) => {
        assert.ok(err instanceof ConfigHistoryError);
        assert.match(err.message, new RegExp(`^cannot keep config history in ${path.join(state, 'history')}: .*hint: make the state directory writable`));
        return true;
      });
    } finally {
      await broken.stop(100);
      fs.rmSync(state, { recursive: true, force: true });
    }
  });
});
