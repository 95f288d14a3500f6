// ConfigHistory: versions with id, time, source, message and counts; content-addressed blobs shared
// between versions; reloaded from disk after a restart; bounded, with unused blobs collected; a
// clear error for a directory it cannot write.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import type { ConfigResource } from '../../../src/config/resources';
import { ConfigHistory, ConfigHistoryError, UnknownVersionError } from '../../../src/control/config-history';
import { silentLogger } from '../../../src/log/logger';
import { createSnapshot } from '../../../src/model/snapshot';

function vs(name: string, subset: string): ConfigResource {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name, namespace: 'default' },
    spec: { hosts: [name], http: [{ route: [{ destination: { host: name, subset } }] }] },
  } as ConfigResource;
}

/** Records `resources` as the next version, the way the control plane does. */
function record(history: ConfigHistory, resources: ConfigResource[], source: 'file' | 'apply' = 'apply', message?: string) {
  const snapshot = createSnapshot({ sequence: history.nextId(), reason: `test ${history.nextId()}`, resources });
  return history.record(snapshot, source, message);
}

const dirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-history-'));
  dirs.push(dir);
  return dir;
}

function files(dir: string, sub: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) (e.isDirectory() ? walk : (f: string) => out.push(f))(path.join(d, e.name));
  };
  walk(path.join(dir, sub));
  return out.sort();
}

describe('ConfigHistory', () => {
  after(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('records versions with monotonic ids, source, message and added/changed/removed counts', () => {
    const history = new ConfigHistory({ logger: silentLogger });
    history.open();
    const v1 = record(history, [vs('reviews', 'v1'), vs('ratings', 'v1')], 'file');
    const v2 = record(history, [vs('reviews', 'v2'), vs('ratings', 'v1'), vs('details', 'v1')], 'apply', 'reviews to v2');
    const v3 = record(history, [vs('reviews', 'v2')], 'apply');
    assert.deepEqual([v1.id, v2.id, v3.id], [1, 2, 3]);
    assert.deepEqual([v1.added, v1.changed, v1.removed], [2, 0, 0]);
    assert.deepEqual([v2.added, v2.changed, v2.removed], [1, 1, 0]);
    assert.deepEqual([v3.added, v3.changed, v3.removed], [0, 0, 2]);
    const summary = history.summary(v2);
    assert.equal(summary.version, 'v2');
    assert.equal(summary.source, 'apply');
    assert.equal(summary.message, 'reviews to v2');
    assert.equal(summary.resources, 3);
    // Versions share unchanged resources: ratings@v1 is one blob in v1 and v2.
    assert.equal(v1.resources.get('VirtualService/default/ratings'), v2.resources.get('VirtualService/default/ratings'));
    assert.equal((history.resourcesOf(1).get('VirtualService/default/reviews')!.spec as any).http[0].route[0].destination.subset, 'v1');
    assert.throws(() => history.record(createSnapshot({ sequence: 9, reason: 'x', resources: [] }), 'apply'), /recorded out of order \(next is 4\)/);
  });

  it('resolves 7, v7, -1 and current, and says what it keeps when a version is unknown', () => {
    const history = new ConfigHistory({ logger: silentLogger, maxVersions: 2 });
    history.open();
    for (const subset of ['v1', 'v2', 'v3']) record(history, [vs('reviews', subset)]);
    assert.equal(history.resolve('3').id, 3);
    assert.equal(history.resolve('v2').id, 2);
    assert.equal(history.resolve('-1').id, 2);
    assert.equal(history.resolve('current').id, 3);
    assert.throws(() => history.resolve('1'), (err: Error) => err instanceof UnknownVersionError && /history keeps v2 to v3 \(the last 2\)/.test(err.message));
    assert.throws(() => history.resolve('yesterday'), /is not a version/);
  });

  it('survives a restart: versions and resources are read back from the directory, and ids continue', () => {
    const dir = path.join(tempDir(), 'history');
    const first = new ConfigHistory({ dir, logger: silentLogger });
    first.open();
    record(first, [vs('reviews', 'v1')], 'file');
    record(first, [vs('reviews', 'v2')], 'apply', 'to v2');
    assert.equal(files(dir, 'versions').length, 2);
    assert.equal(files(dir, 'blobs').length, 2);
    assert.deepEqual(fs.readdirSync(path.join(dir, 'versions')).filter((f) => f.startsWith('.')), [], 'no temporary files left');

    const again = new ConfigHistory({ dir, logger: silentLogger });
    again.open();
    assert.deepEqual(again.list().map((v) => [v.id, v.source, v.message]), [[1, 'file', undefined], [2, 'apply', 'to v2']]);
    assert.equal((again.resourcesOf(1).get('VirtualService/default/reviews')!.spec as any).http[0].route[0].destination.subset, 'v1');
    assert.ok(again.sameAsLatest([vs('reviews', 'v2')]));
    assert.ok(!again.sameAsLatest([vs('reviews', 'v1')]));
    assert.equal(again.nextId(), 3);
  });

  it('keeps the last N versions and deletes the blobs no kept version uses', () => {
    const dir = path.join(tempDir(), 'history');
    const history = new ConfigHistory({ dir, logger: silentLogger, maxVersions: 3 });
    history.open();
    const shared = vs('ratings', 'v1');
    for (let i = 1; i <= 6; i++) record(history, [vs('reviews', `v${i}`), shared]);
    assert.deepEqual(history.list().map((v) => v.id), [4, 5, 6]);
    assert.equal(files(dir, 'versions').length, 3);
    // reviews v4, v5, v6 and the shared ratings: 4 blobs; v1..v3's reviews are gone.
    assert.equal(files(dir, 'blobs').length, 4);
    const reopened = new ConfigHistory({ dir, logger: silentLogger, maxVersions: 2 });
    reopened.open();
    assert.deepEqual(reopened.list().map((v) => v.id), [5, 6]);
    assert.equal(files(dir, 'blobs').length, 3);
  });

  it('refuses to open a directory it cannot write, with a hint', () => {
    const state = tempDir();
    fs.writeFileSync(path.join(state, 'history'), 'not a directory');
    const history = new ConfigHistory({ dir: path.join(state, 'history'), logger: silentLogger });
    assert.throws(
      () => history.open(),
      (err: Error) => err instanceof ConfigHistoryError && err.message.startsWith(`cannot keep config history in ${path.join(state, 'history')}:`) && /hint: make the state directory writable/.test(err.message),
    );
  });
});
