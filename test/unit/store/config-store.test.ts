// ConfigStore: sources replaced whole, and an invalid resource never replaces its last good version.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseYamlDocuments } from '../../../src/config/parse';
import { ConfigStore } from '../../../src/config/store';

function docs(text: string, file: string) {
  return parseYamlDocuments(text, { file, source: 'file' });
}

const dr = (host: string) => `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec: {host: ${host}, subsets: [{name: v1, labels: {version: v1}}]}
`;

describe('ConfigStore', () => {
  it('accepts valid resources and reports them as added, then updated, then removed', () => {
    const store = new ConfigStore();
    const a = docs(dr('reviews'), 'a.yaml');
    assert.deepEqual(store.replaceSource('a.yaml', a.documents, a.problems).added, ['DestinationRule/default/reviews']);
    const b = docs(dr('reviews.default.svc.cluster.local'), 'a.yaml');
    assert.deepEqual(store.replaceSource('a.yaml', b.documents, b.problems).updated, ['DestinationRule/default/reviews']);
    const same = store.replaceSource('a.yaml', b.documents, b.problems);
    assert.deepEqual([same.added, same.updated, same.removed], [[], [], []]);
    assert.deepEqual(store.removeSource('a.yaml').removed, ['DestinationRule/default/reviews']);
    assert.equal(store.resources().length, 0);
  });

  it('keeps the last good version serving when an edit is invalid, and clears the rejection once fixed', () => {
    const store = new ConfigStore();
    const good = docs(dr('reviews'), 'a.yaml');
    store.replaceSource('a.yaml', good.documents, good.problems);
    const bad = docs(
      `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec: {subsets: [{name: v1}]}\n`,
      'a.yaml',
    );
    const change = store.replaceSource('a.yaml', bad.documents, bad.problems);
    assert.deepEqual(change.rejected, ['DestinationRule/default/reviews']);
    assert.deepEqual(change.removed, []);
    assert.equal((store.get('DestinationRule/default/reviews')?.spec as { host: string }).host, 'reviews');
    const [rejection] = store.rejected();
    assert.equal(rejection.lastGoodServing, true);
    assert.ok(rejection.problems.some((p) => p.path === 'spec.host'), JSON.stringify(rejection.problems));

    store.replaceSource('a.yaml', good.documents, good.problems);
    assert.deepEqual(store.rejected(), []);
  });

  it('rejects a never-seen invalid resource without serving anything for it', () => {
    const store = new ConfigStore();
    const bad = docs(`apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec: {servers: []}\n`, 'g.yaml');
    store.replaceSource('g.yaml', bad.documents, bad.problems);
    assert.equal(store.resources().length, 0);
    assert.equal(store.rejected()[0].lastGoodServing, false);
  });

  it('records YAML syntax errors against the file and keeps the rest of the store', () => {
    const store = new ConfigStore();
    const good = docs(dr('reviews'), 'a.yaml');
    store.replaceSource('a.yaml', good.documents, good.problems);
    const broken = docs('kind: [unclosed', 'b.yaml');
    store.replaceSource('b.yaml', broken.documents, broken.problems);
    assert.equal(store.resources().length, 1);
    assert.equal(store.rejected()[0].sourceId, 'b.yaml');
  });
});

describe('ConfigStore with a file that stops parsing', () => {
  it('keeps serving what the file held before', () => {
    const store = new ConfigStore();
    const good = docs(dr('reviews'), 'a.yaml');
    store.replaceSource('a.yaml', good.documents, good.problems);
    const broken = docs('kind: [unclosed', 'a.yaml');
    const change = store.replaceSource('a.yaml', broken.documents, broken.problems);
    assert.deepEqual(change.removed, []);
    assert.ok(store.get('DestinationRule/default/reviews'));
    assert.equal(store.rejected()[0].lastGoodServing, true);
  });
});
