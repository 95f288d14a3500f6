// Differences between two sets of config resources: which resources were added, removed or
// changed (by kind, namespace and name), and for a changed one every field that differs, by field
// path (`spec.http[0].route[0].weight`, the paths validation errors use). Pure and dependency-free,
// so the CLI can load its types; `weft diff`, `weft apply --dry-run` and `weft rollback` show it.

/** A resource as history keeps it: what the user wrote, without where it came from. */
export interface DiffableResource {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string } & Record<string, unknown>;
  spec: unknown;
}

export type ChangeAction = 'added' | 'removed' | 'changed';

/** One field that differs; `old` is absent for an added field, `new` for a removed one. */
export interface FieldChange {
  path: string;
  action: ChangeAction;
  old?: unknown;
  new?: unknown;
}

export interface ResourceChange {
  /** `Kind/namespace/name`. */
  key: string;
  kind: string;
  namespace: string;
  name: string;
  action: ChangeAction;
  /** For a changed resource: every field that differs, in document order. */
  fields?: FieldChange[];
}

export interface ConfigDiff {
  added: number;
  changed: number;
  removed: number;
  /** Sorted by key. */
  resources: ResourceChange[];
}

/** Every resource-level and field-level difference from `before` to `after` (both keyed `Kind/namespace/name`). */
export function diffResources(before: ReadonlyMap<string, DiffableResource>, after: ReadonlyMap<string, DiffableResource>): ConfigDiff {
  const resources: ResourceChange[] = [];
  const id = (key: string, r: DiffableResource) => ({ key, kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name });
  for (const [key, old] of before) {
    const now = after.get(key);
    if (!now) {
      resources.push({ ...id(key, old), action: 'removed' });
      continue;
    }
    if (old === now) continue;
    const fields = diffValues(comparable(old), comparable(now), '');
    if (fields.length > 0) resources.push({ ...id(key, now), action: 'changed', fields });
  }
  for (const [key, now] of after) if (!before.has(key)) resources.push({ ...id(key, now), action: 'added' });
  resources.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const count = (action: ChangeAction) => resources.filter((r) => r.action === action).length;
  return { added: count('added'), changed: count('changed'), removed: count('removed'), resources };
}

/** The parts of a resource that are its content (kind and identity are the key). */
function comparable(r: DiffableResource): Record<string, unknown> {
  return { apiVersion: r.apiVersion, metadata: r.metadata, spec: r.spec };
}

/**
 * Field-level differences between two JSON values. Objects are compared key by key; arrays are
 * aligned on their equal elements first (so inserting a route at the front is one addition, not
 * every route changed), and the elements left over at the same place are compared field by field.
 */
export function diffValues(before: unknown, after: unknown, path: string): FieldChange[] {
  if (deepEqual(before, after)) return [];
  if (isPlainObject(before) && isPlainObject(after)) {
    const out: FieldChange[] = [];
    for (const key of Object.keys(before)) {
      const child = joinPath(path, key);
      if (!(key in after) || after[key] === undefined) {
        if (before[key] !== undefined) out.push({ path: child, action: 'removed', old: before[key] });
      } else {
        out.push(...diffValues(before[key], after[key], child));
      }
    }
    for (const key of Object.keys(after)) {
      if ((!(key in before) || before[key] === undefined) && after[key] !== undefined) out.push({ path: joinPath(path, key), action: 'added', new: after[key] });
    }
    return out;
  }
  if (Array.isArray(before) && Array.isArray(after)) return diffArrays(before, after, path);
  return [{ path: path || '.', action: 'changed', old: before, new: after }];
}

function diffArrays(before: readonly unknown[], after: readonly unknown[], path: string): FieldChange[] {
  const at = (i: number) => `${path}[${i}]`;
  const out: FieldChange[] = [];
  // Longest common subsequence of equal elements (arrays in config are short; fall back to
  // position by position if they are not).
  const n = before.length;
  const m = after.length;
  if (n * m > 250_000) {
    for (let i = 0; i < Math.max(n, m); i++) {
      if (i >= m) out.push({ path: at(i), action: 'removed', old: before[i] });
      else if (i >= n) out.push({ path: at(i), action: 'added', new: after[i] });
      else out.push(...diffValues(before[i], after[i], at(i)));
    }
    return out;
  }
  const a = before.map(canonicalJson);
  const b = after.map(canonicalJson);
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  let i = 0;
  let j = 0;
  const removed: number[] = [];
  const added: number[] = [];
  const flush = () => {
    // Elements replaced at the same place are changed field by field; the rest were added or removed.
    const paired = Math.min(removed.length, added.length);
    for (let k = 0; k < paired; k++) out.push(...diffValues(before[removed[k]], after[added[k]], at(added[k])));
    for (const r of removed.slice(paired)) out.push({ path: at(r), action: 'removed', old: before[r] });
    for (const x of added.slice(paired)) out.push({ path: at(x), action: 'added', new: after[x] });
    removed.length = 0;
    added.length = 0;
  };
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      flush();
      i++;
      j++;
    } else if (j >= m || (i < n && lcs[i + 1][j] >= lcs[i][j + 1])) {
      removed.push(i++);
    } else {
      added.push(j++);
    }
  }
  flush();
  return out;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** `spec.hosts`, `metadata.labels["app.kubernetes.io/name"]`. */
function joinPath(path: string, key: string): string {
  if (IDENTIFIER.test(key)) return path ? `${path}.${key}` : key;
  return `${path}[${JSON.stringify(key)}]`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return canonicalJson(a) === canonicalJson(b);
}

/** JSON with object keys sorted: equal texts mean equal values, whatever order the keys were written in. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (!isPlainObject(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = v[k];
    return sorted;
  });
}
