// Memos of built Envoy resources keyed by exactly the inputs they are built from, so equal inputs
// give the very same object: proxies share it within a snapshot, and consecutive snapshots share
// it when its inputs did not change (Istio's cluster and EDS caches). The ADS server recognises an
// object it has seen and skips serialising and encoding it again.
import type { MeshEndpoint } from '../../registry/types';
import type { OutboundClusterInputs } from './clusters';
import type { EnvoyResource } from './types';

/**
 * A memo of resources by name and inputs: the value built before for `name` from inputs the memo's
 * equality says are equal (equal exactly when everything the builder reads is equal), or
 * `build()` remembered. Keyed by name first; inputs are compared, never serialised.
 */
export interface ResourceMemo<V, I> {
  get(name: string, inputs: I, build: () => V): V;
}

/** The outbound clusters and ClusterLoadAssignments of one service (see buildOutboundClusterResources). */
export interface ServiceClusterResources {
  readonly clusters: readonly EnvoyResource[];
  readonly loadAssignments: readonly EnvoyResource[];
}

/**
 * The memos a translation may reuse resources from: `clusters`, `loadAssignments` and
 * `catchAllClusters` live across snapshots, `services` belongs to one snapshot. Only translation
 * code in this folder reads it.
 */
export interface SharedResources {
  /** One snapshot's per-service results, by `kind|hostname|DestinationRule` (clusters.ts). */
  readonly services: Map<string, ServiceClusterResources>;
  /** Outbound clusters, by name and OutboundClusterInputs (clusters.ts). */
  readonly clusters: ResourceMemo<EnvoyResource, OutboundClusterInputs>;
  /** ClusterLoadAssignments, by cluster name and the endpoints they list (endpoints.ts). */
  readonly loadAssignments: ResourceMemo<EnvoyResource, readonly MeshEndpoint[]>;
  /** BlackHoleCluster and PassthroughCluster (constants): built once when given. */
  readonly catchAllClusters?: readonly EnvoyResource[];
}

/** Memos that remember nothing: every translation builds its own objects. */
export function unsharedResources(): SharedResources {
  return {
    services: new Map(),
    clusters: { get: (_name, _inputs, build) => build() },
    loadAssignments: { get: (_name, _inputs, build) => build() },
  };
}

/** How shared values are protected against mutation. */
export type FreezeMode = 'none' | 'shallow' | 'deep';

export interface MemoStats {
  hits: number;
  misses: number;
  entries: number;
}

interface MemoEntry<V, I> {
  readonly inputs: I;
  readonly value: V;
}

/**
 * A ResourceMemo that keeps two generations: `rotate()` (once per new snapshot) retires the
 * entries nobody asked for since the rotation before, so memory follows the live configuration
 * rather than its history. A name usually has one live version; proxies that see different
 * DestinationRules for one host can keep a few side by side.
 */
export class GenerationalMemo<V extends object, I> implements ResourceMemo<V, I> {
  private current = new Map<string, MemoEntry<V, I>[]>();
  private previous = new Map<string, MemoEntry<V, I>[]>();
  private currentEntries = 0;
  private previousEntries = 0;
  private hits = 0;
  private misses = 0;

  /** `same(a, b)`: true only when a builder given `a` or `b` produces equal output. */
  constructor(
    private readonly same: (a: I, b: I) => boolean,
    private readonly freeze: FreezeMode,
  ) {}

  get(name: string, inputs: I, build: () => V): V {
    const list = this.current.get(name);
    const known = list && this.find(list, inputs);
    if (known) {
      this.hits++;
      return known.value;
    }
    const old = this.previous.get(name);
    let entry = old && this.find(old, inputs);
    if (entry) {
      this.hits++;
    } else {
      this.misses++;
      entry = { inputs, value: freezeValue(build(), this.freeze) };
    }
    if (list) list.push(entry);
    else this.current.set(name, [entry]);
    this.currentEntries++;
    return entry.value;
  }

  rotate(): void {
    this.previous = this.current;
    this.previousEntries = this.currentEntries;
    this.current = new Map();
    this.currentEntries = 0;
  }

  stats(): MemoStats {
    return { hits: this.hits, misses: this.misses, entries: this.currentEntries + this.previousEntries };
  }

  private find(list: readonly MemoEntry<V, I>[], inputs: I): MemoEntry<V, I> | undefined {
    for (const e of list) if (this.same(e.inputs, inputs)) return e;
    return undefined;
  }
}

/**
 * Deep equality of JSON-like values (config spec fragments). Key order is ignored; a key set to
 * undefined counts as present, which can only make two equal values look different (a missed
 * reuse), never the reverse.
 */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k)) return false;
    if (!sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

/** Applies a FreezeMode to a value about to be shared; returns it. */
export function freezeValue<T>(value: T, mode: FreezeMode): T {
  if (mode === 'shallow') Object.freeze(value);
  else if (mode === 'deep') deepFreeze(value);
  return value;
}

/** Freezes an object graph (already frozen parts, e.g. snapshot config, are skipped). */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const k in value) deepFreeze((value as Record<string, unknown>)[k]);
  }
  return value;
}
