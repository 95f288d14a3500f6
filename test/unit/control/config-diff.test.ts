// The config diff: resources added, removed and changed by key, and for a changed resource every
// field that differs by field path — lists aligned on equal elements — and how the CLI prints it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDiff, painter } from '../../../src/cli/diff';
import { canonicalJson, diffResources, diffValues, type DiffableResource } from '../../../src/control/config-diff';

function vs(name: string, spec: unknown, extra: Record<string, unknown> = {}): [string, DiffableResource] {
  return [`VirtualService/default/${name}`, { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace: 'default', ...extra }, spec }];
}

const route = (subset: string, weight?: number) => ({ destination: { host: 'reviews', subset }, ...(weight !== undefined ? { weight } : {}) });

describe('config diff', () => {
  it('lists added, removed and changed resources by kind, namespace and name, sorted by key', () => {
    const before = new Map([vs('reviews', { hosts: ['reviews'] }), vs('ratings', { hosts: ['ratings'] })]);
    const after = new Map([vs('reviews', { hosts: ['reviews', 'reviews.prod'] }), vs('details', { hosts: ['details'] })]);
    const diff = diffResources(before, after);
    assert.deepEqual(
      diff.resources.map((r) => [r.action, r.kind, r.namespace, r.name]),
      [
        ['added', 'VirtualService', 'default', 'details'],
        ['removed', 'VirtualService', 'default', 'ratings'],
        ['changed', 'VirtualService', 'default', 'reviews'],
      ],
    );
    assert.deepEqual([diff.added, diff.changed, diff.removed], [1, 1, 1]);
    assert.deepEqual(diff.resources[2].fields, [{ path: 'spec.hosts[1]', action: 'added', new: 'reviews.prod' }]);
  });

  it('ignores key order and reports nothing for equal resources', () => {
    const a = new Map([vs('reviews', { hosts: ['reviews'], http: [route('v1')] })]);
    const b = new Map([vs('reviews', { http: [{ destination: { subset: 'v1', host: 'reviews' } }], hosts: ['reviews'] })]);
    assert.equal(canonicalJson({ a: 1, b: { c: 2, d: 3 } }), canonicalJson({ b: { d: 3, c: 2 }, a: 1 }));
    assert.deepEqual(diffResources(a, b).resources, []);
  });

  it('gives field paths, old and new values, for scalars, objects and labels with dots', () => {
    const fields = diffValues(
      { spec: { http: [{ route: [route('v1', 100)], timeout: '5s' }] }, metadata: { labels: { 'app.kubernetes.io/name': 'a' } } },
      { spec: { http: [{ route: [route('v2', 100)], retries: { attempts: 3 } }] }, metadata: { labels: { 'app.kubernetes.io/name': 'b' } } },
      '',
    );
    assert.deepEqual(fields, [
      { path: 'spec.http[0].route[0].destination.subset', action: 'changed', old: 'v1', new: 'v2' },
      { path: 'spec.http[0].timeout', action: 'removed', old: '5s' },
      { path: 'spec.http[0].retries', action: 'added', new: { attempts: 3 } },
      { path: 'metadata.labels["app.kubernetes.io/name"]', action: 'changed', old: 'a', new: 'b' },
    ]);
  });

  it('aligns lists on equal elements: a route inserted in front is one addition', () => {
    const jason = { match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [route('v2')] };
    const rest = { route: [route('v1')] };
    assert.deepEqual(diffValues({ http: [rest] }, { http: [jason, rest] }, 'spec'), [{ path: 'spec.http[0]', action: 'added', new: jason }]);
    assert.deepEqual(diffValues({ http: [jason, rest] }, { http: [rest] }, 'spec'), [{ path: 'spec.http[0]', action: 'removed', old: jason }]);
    // An element replaced in place is compared field by field.
    assert.deepEqual(diffValues({ route: [route('v1', 50), route('v3', 50)] }, { route: [route('v1', 50), route('v3', 20)] }, 'spec.http[0]'), [
      { path: 'spec.http[0].route[1].weight', action: 'changed', old: 50, new: 20 },
    ]);
  });

  it('prints one line per resource and per field, objects as indented YAML, and colours only on a terminal', () => {
    const before = new Map([vs('reviews', { http: [{ route: [route('v1')] }] }), vs('ratings', {})]);
    const after = new Map([vs('reviews', { http: [{ route: [route('v2')], retries: { attempts: 3, perTryTimeout: '2s' } }] }), vs('details', {})]);
    const diff = diffResources(before, after);
    const plain = formatDiff(diff, painter({ out() {}, err() {}, readStdin: async () => '', env: {}, stdoutIsTTY: false }));
    assert.equal(
      plain,
      [
        '+ VirtualService default/details',
        '- VirtualService default/ratings',
        '~ VirtualService default/reviews',
        '    ~ spec.http[0].route[0].destination.subset: v1 -> v2',
        '    + spec.http[0].retries:',
        '        attempts: 3',
        '        perTryTimeout: 2s',
        '',
      ].join('\n'),
    );
    const colored = formatDiff(diff, painter({ out() {}, err() {}, readStdin: async () => '', env: {}, stdoutIsTTY: true }));
    assert.match(colored, /\x1b\[32m\+ VirtualService default\/details\x1b\[0m/);
    assert.match(colored, /\x1b\[31mv1\x1b\[0m -> \x1b\[32mv2\x1b\[0m/);
    const noColor = formatDiff(diff, painter({ out() {}, err() {}, readStdin: async () => '', env: { NO_COLOR: '1' }, stdoutIsTTY: true }));
    assert.equal(noColor, plain);
  });
});
