// The layered layout on its own: cycles, groups pulled into one column, determinism.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { layoutGraph, type LayoutNode } from '../../../src/dashboard/graph-layout';

const node = (id: string, group = id): LayoutNode => ({ id, group, sortKey: id });

describe('layoutGraph', () => {
  it('puts every callee to the right of its callers (longest path)', () => {
    const { positions } = layoutGraph([node('a'), node('b'), node('c'), node('d')], [
      { source: 'a', target: 'b' },
      { source: 'b', target: 'c' },
      { source: 'a', target: 'c' },
      { source: 'd', target: 'c' },
    ]);
    assert.deepEqual(['a', 'b', 'c', 'd'].map((id) => positions.get(id)!.layer), [0, 1, 2, 0]);
  });

  it('survives cycles (a calls b calls a) and self calls', () => {
    const { positions } = layoutGraph([node('a'), node('b')], [
      { source: 'a', target: 'b' },
      { source: 'b', target: 'a' },
      { source: 'a', target: 'a' },
    ]);
    assert.deepEqual([positions.get('a')!.layer, positions.get('b')!.layer], [0, 1]);
  });

  it('keeps the versions of an app in one column even when only one of them calls onwards', () => {
    const { positions } = layoutGraph([node('in'), node('v1', 'app'), node('v2', 'app'), node('x'), node('y')], [
      { source: 'in', target: 'v1' },
      { source: 'x', target: 'y' },
      { source: 'y', target: 'v2' },
    ]);
    assert.equal(positions.get('v1')!.layer, positions.get('v2')!.layer);
    assert.equal(positions.get('v1')!.layer, 2);
    assert.equal(Math.abs(positions.get('v1')!.order - positions.get('v2')!.order), 1);
  });

  it('gives the same positions for the same graph, whatever the input order', () => {
    const nodes = [node('a'), node('b', 'g'), node('c', 'g'), node('d')];
    const edges = [
      { source: 'a', target: 'b' },
      { source: 'a', target: 'c' },
      { source: 'c', target: 'd' },
    ];
    const one = layoutGraph(nodes, edges);
    const two = layoutGraph([...nodes].reverse(), [...edges].reverse());
    assert.deepEqual([...one.positions].sort(), [...two.positions].sort());
  });

  it('does not loop forever on a cycle between two apps', () => {
    const { positions } = layoutGraph([node('a1', 'a'), node('a2', 'a'), node('b1', 'b')], [
      { source: 'a1', target: 'b1' },
      { source: 'b1', target: 'a2' },
    ]);
    assert.equal(positions.size, 3);
  });
});
