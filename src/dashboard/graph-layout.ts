// Left-to-right layered layout for the service graph (a small Sugiyama): callers to the left of
// whom they call, so Bookinfo reads gateway -> productpage -> details/reviews -> ratings. Versions
// of one app share a column and sit together, so the UI can draw a box around the app.

export interface LayoutNode {
  id: string;
  /** Nodes with the same group (namespace/app) are kept in one column, next to each other. */
  group: string;
  /** Order inside the group (e.g. the version). */
  sortKey: string;
}

export interface LayoutEdge {
  source: string;
  target: string;
}

export interface NodePosition {
  layer: number;
  /** Index within the layer, top to bottom. */
  order: number;
  x: number;
  y: number;
}

export interface LayoutOptions {
  columnWidth?: number;
  rowHeight?: number;
  /** Extra space between two groups in a column. */
  groupGap?: number;
}

export interface GraphLayout {
  positions: Map<string, NodePosition>;
  width: number;
  height: number;
}

const BARYCENTER_SWEEPS = 4;

/**
 * Deterministic: the same nodes and edges always give the same positions, so a graph that
 * refreshes every few seconds does not jump around.
 */
export function layoutGraph(nodes: readonly LayoutNode[], edges: readonly LayoutEdge[], options: LayoutOptions = {}): GraphLayout {
  const columnWidth = options.columnWidth ?? 260;
  const rowHeight = options.rowHeight ?? 84;
  const groupGap = options.groupGap ?? 28;
  const known = new Set(nodes.map((n) => n.id));
  const valid = edges.filter((e) => known.has(e.source) && known.has(e.target) && e.source !== e.target);
  // A workload nobody calls and that calls nobody (an idle proxy) goes to the bottom of the
  // first column, out of the way of the traffic.
  const connected = new Set(valid.flatMap((e) => [e.source, e.target]));
  const isolated = (n: LayoutNode) => (connected.has(n.id) ? 0 : 1);
  const sorted = [...nodes].sort((a, b) => isolated(a) - isolated(b) || cmp(a.group, b.group) || cmp(a.sortKey, b.sortKey) || cmp(a.id, b.id));
  const byId = new Map(sorted.map((n) => [n.id, n]));
  const forward = acyclicEdges(sorted, valid);
  const layer = assignLayers(sorted, forward, byId);

  const layers: LayoutNode[][] = [];
  for (const n of sorted) (layers[layer.get(n.id)!] ??= []).push(n);
  for (let i = 0; i < layers.length; i++) layers[i] ??= [];
  orderLayers(layers, forward, connected);

  const positions = new Map<string, NodePosition>();
  const heights = layers.map((column) => columnHeight(column, rowHeight, groupGap));
  const tallest = Math.max(0, ...heights);
  layers.forEach((column, l) => {
    let y = (tallest - heights[l]) / 2 + rowHeight / 2;
    column.forEach((n, order) => {
      if (order > 0 && column[order - 1].group !== n.group) y += groupGap;
      positions.set(n.id, { layer: l, order, x: l * columnWidth + columnWidth / 2, y });
      y += rowHeight;
    });
  });
  return { positions, width: layers.length * columnWidth, height: tallest };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function columnHeight(column: LayoutNode[], rowHeight: number, groupGap: number): number {
  let groups = 0;
  column.forEach((n, i) => {
    if (i === 0 || column[i - 1].group !== n.group) groups++;
  });
  return column.length * rowHeight + Math.max(0, groups - 1) * groupGap;
}

/** The edges minus those closing a cycle (found by depth-first search in node order). */
function acyclicEdges(nodes: LayoutNode[], edges: LayoutEdge[]): LayoutEdge[] {
  const out = new Map<string, LayoutEdge[]>();
  for (const e of edges) (out.get(e.source) ?? out.set(e.source, []).get(e.source)!).push(e);
  const state = new Map<string, 'open' | 'done'>();
  const kept: LayoutEdge[] = [];
  // An explicit stack rather than recursion: call chains in a large mesh can be long.
  for (const root of nodes) {
    if (state.has(root.id)) continue;
    const stack: { id: string; next: number }[] = [{ id: root.id, next: 0 }];
    state.set(root.id, 'open');
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      const outgoing = out.get(top.id) ?? [];
      if (top.next >= outgoing.length) {
        state.set(top.id, 'done');
        stack.pop();
        continue;
      }
      const e = outgoing[top.next++];
      const s = state.get(e.target);
      if (s === 'open') continue; // back edge: closes a cycle
      kept.push(e);
      if (s === undefined) {
        state.set(e.target, 'open');
        stack.push({ id: e.target, next: 0 });
      }
    }
  }
  return kept;
}

/**
 * Longest path from a root, then every member of a group raised to the group's deepest layer;
 * repeated until callers are again left of their callees (edges inside a group do not count).
 */
function assignLayers(nodes: LayoutNode[], edges: LayoutEdge[], byId: Map<string, LayoutNode>): Map<string, number> {
  const layer = new Map(nodes.map((n) => [n.id, 0]));
  const between = edges.filter((e) => byId.get(e.source)!.group !== byId.get(e.target)!.group);
  const members = new Map<string, string[]>();
  for (const n of nodes) (members.get(n.group) ?? members.set(n.group, []).get(n.group)!).push(n.id);
  // Each pass can only raise layers, and no layer exceeds the node count on an acyclic graph of
  // groups; a cycle between groups (a calls b calls a across versions) is cut by the bound.
  for (let pass = 0; pass <= nodes.length + 1; pass++) {
    let changed = false;
    for (let i = 0; i < nodes.length; i++) {
      let raised = false;
      for (const e of between) {
        const want = layer.get(e.source)! + 1;
        if (layer.get(e.target)! < want && want <= nodes.length) {
          layer.set(e.target, want);
          raised = true;
        }
      }
      if (!raised) break;
      changed = true;
    }
    for (const ids of members.values()) {
      const max = Math.max(...ids.map((id) => layer.get(id)!));
      for (const id of ids) {
        if (layer.get(id)! !== max) {
          layer.set(id, max);
          changed = true;
        }
      }
    }
    if (!changed) break;
  }
  // Close gaps (a layer nobody sits in) so the graph is no wider than it needs to be.
  const used = [...new Set(layer.values())].sort((a, b) => a - b);
  const compact = new Map(used.map((l, i) => [l, i]));
  for (const [id, l] of layer) layer.set(id, compact.get(l)!);
  return layer;
}

/** Barycenter ordering, moving whole groups: each group goes near the average row of its neighbours. */
function orderLayers(layers: LayoutNode[][], edges: LayoutEdge[], connected: ReadonlySet<string>): void {
  const preds = new Map<string, string[]>();
  const succs = new Map<string, string[]>();
  for (const e of edges) {
    (preds.get(e.target) ?? preds.set(e.target, []).get(e.target)!).push(e.source);
    (succs.get(e.source) ?? succs.set(e.source, []).get(e.source)!).push(e.target);
  }
  const index = new Map<string, number>();
  const reindex = () => layers.forEach((column) => column.forEach((n, i) => index.set(n.id, i)));
  reindex();
  const reorder = (column: LayoutNode[], neighbours: Map<string, string[]>) => {
    const groups = new Map<string, LayoutNode[]>();
    for (const n of column) (groups.get(n.group) ?? groups.set(n.group, []).get(n.group)!).push(n);
    const scored = [...groups.values()].map((members, position) => {
      const near = members.flatMap((m) => neighbours.get(m.id) ?? []).map((id) => index.get(id)!);
      const own = members.reduce((sum, m) => sum + index.get(m.id)!, 0) / members.length;
      const alone = members.every((m) => !connected.has(m.id));
      return { members, position, score: alone ? Infinity : near.length ? near.reduce((a, b) => a + b, 0) / near.length : own };
    });
    scored.sort((a, b) => a.score - b.score || a.position - b.position);
    column.splice(0, column.length, ...scored.flatMap((s) => s.members));
  };
  for (let sweep = 0; sweep < BARYCENTER_SWEEPS; sweep++) {
    if (sweep % 2 === 0) for (let l = 1; l < layers.length; l++) reorder(layers[l], preds);
    else for (let l = layers.length - 2; l >= 0; l--) reorder(layers[l], succs);
    reindex();
  }
}
