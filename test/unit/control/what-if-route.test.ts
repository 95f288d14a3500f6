// What-if routing without a running mesh: whatIfRoute on a snapshot of the Bookinfo platform and
// VirtualServices that use every route setting it reports (timeout, retries, mirror, rewrite,
// header edits, redirect, direct response), for proxies that are not connected.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { whatIfRoute, WhatIfError, type RouteAnswer } from '../../../src/control/what-if-route';
import { createSnapshot, DEFAULT_MESH_CONFIG } from '../../../src/model/snapshot';
import { translateForProxy } from '../../../src/xds/translate';
import { parseResources } from '../translate/load-fixture';

const REPO = path.resolve(__dirname, '../../../..');
const read = (file: string) => fs.readFileSync(path.join(REPO, 'examples/bookinfo', file), 'utf8');

const RULES = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - name: old-api
    match: [{name: v0, uri: {prefix: /v0/}}]
    redirect: {uri: /ratings/, redirectCode: 308}
  - name: health
    match: [{uri: {exact: /healthz}}]
    directResponse: {status: 204}
  - name: main
    match: [{uri: {prefix: /old/}}, {uri: {prefix: /ratings/}}]
    rewrite: {uri: /ratings/, authority: ratings.internal}
    headers:
      request: {set: {x-weft-test: "yes"}, remove: [x-drop]}
      response: {add: {x-served-by: weft}}
    timeout: 3s
    retries: {attempts: 4, perTryTimeout: 500ms, retryOn: "5xx,reset"}
    mirror: {host: ratings, subset: v1}
    mirrorPercentage: {value: 25}
    route: [{destination: {host: ratings, subset: v1}}]
`;

function snapshot() {
  const resources = parseResources(
    [read('platform/bookinfo-services.yaml'), read('networking/bookinfo-gateway.yaml'), read('networking/destination-rule-all.yaml'), RULES].join('\n---\n'),
  );
  return createSnapshot({ sequence: 3, reason: 'test', resources, meshConfig: DEFAULT_MESH_CONFIG });
}

function ask(question: Parameters<typeof whatIfRoute>[0]['question']): RouteAnswer {
  return whatIfRoute({ snapshot: snapshot(), connected: [], translate: translateForProxy, question });
}

describe('whatIfRoute', () => {
  it('reports the route settings of the matching rule: rewrite, header edits, timeout, retries, mirror', () => {
    const a = ask({ from: 'reviews-v1', url: 'http://ratings:9080/old/1', headers: [['x-drop', '1']] });
    assert.equal(a.proxy.connected, false);
    assert.equal(a.proxy.identity, 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews');
    assert.deepEqual(a.route, { name: 'main', index: 2, virtualService: { namespace: 'default', name: 'ratings' }, httpIndex: 2, matchIndex: 0 });
    assert.equal(a.action?.kind, 'forward');
    if (a.action?.kind !== 'forward') return;
    assert.equal(a.action.timeoutMs, 3000);
    assert.deepEqual(a.action.retries && { ...a.action.retries, retryOn: [...a.action.retries.retryOn].sort() }, {
      attempts: 4,
      perTryTimeoutMs: 500,
      retryOn: ['5xx', 'reset'],
      retriableStatusCodes: [],
    });
    assert.deepEqual(a.action.mirrors, [{ cluster: 'outbound|9080|v1|ratings.default.svc.cluster.local', percent: 25 }]);
    assert.deepEqual(a.action.rewrite, { authority: 'ratings.internal', path: '/ratings/1' });
    assert.deepEqual(a.action.requestHeaders, { set: { 'x-weft-test': 'yes' }, removed: ['x-drop'] });
    assert.deepEqual(a.action.responseHeaders, { add: ['x-served-by: weft'], remove: [] });
    // The second match of the same rule.
    assert.equal(ask({ from: 'reviews-v1', url: 'http://ratings:9080/ratings/1' }).route?.matchIndex, 1);
  });

  it('reports redirects with their Location and direct responses with their status', () => {
    const redirect = ask({ from: 'reviews-v1', url: 'http://ratings:9080/v0/7?x=1' });
    assert.deepEqual(redirect.action, { kind: 'redirect', status: 308, location: 'http://ratings:9080/ratings/?x=1' });
    assert.equal(redirect.route?.name, 'old-api.v0');
    assert.equal(redirect.outcome.status, 308);
    const direct = ask({ from: 'reviews-v1', url: 'http://ratings:9080/healthz' });
    assert.deepEqual(direct.action, { kind: 'direct', status: 204 });
    assert.equal(direct.outcome.status, 204);
  });

  it('picks the gateway whose Gateway serves the URL, and refuses a URL none serves', () => {
    const a = ask({ url: 'http://127.0.0.1:8080/productpage' });
    assert.equal(a.proxy.type, 'router');
    assert.match(a.proxy.why, /^Gateway default\/bookinfo-gateway serves \* on port 8080/);
    assert.equal(a.listener?.name, '0.0.0.0_8080');
    assert.throws(() => ask({ url: 'http://127.0.0.1:8081/' }), (err: unknown) => err instanceof WhatIfError && err.status === 404 && /--from WORKLOAD/.test(err.hint ?? ''));
    assert.throws(() => ask({ from: 'nobody', url: 'http://ratings:9080/' }), (err: unknown) => err instanceof WhatIfError && /workload "nobody" not found/.test(err.message));
  });
});
