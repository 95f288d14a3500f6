// Memos of built Envoy resources keyed by exactly the inputs they are built from, so equal inputs
// give the very same object: proxies share it within a snapshot, and consecutive snapshots share
// it when its inputs did not change (Istio's cluster and EDS caches). The ADS server recognises an
// object it has seen and skips serialising and encoding it again.
import type { EnvoyResource } from './types';

/**
 * A memo of resources by name and inputs: the value built before for `name` from equal `inputs`
 * (a string that is equal exactly when everything the builder reads is equal), or `build()`
 * remembered. Keyed by name first, so a lookup hashes the short name and only compares inputs.
 */
export interface ResourceMemo<V> {
  get(name: string, inputs: string, build: () => V): V;
}

/** The outbound clusters and ClusterLoadAssignments of one service (see buildOutboundClusterResources). */
export interface ServiceClusterResources {
  readonly clusters: readonly EnvoyResource[];
  readonly loadAssignments: readonly EnvoyResource[];
}

/**
 * The memos a translation may reuse resources from: `clusters` and `loadAssignments` live across
 * snapshots, `services` belongs to one snapshot. Only translation code in this folder reads it.
 */
export interface SharedResources {
  /** One snapshot's per-service results, by `kind|hostname|DestinationRule` (clusters.ts). */
  readonly services: Map<string, ServiceClusterResources>;
  /** Outbound clusters, by name and outboundClusterInputs (clusters.ts). */
  readonly clusters: ResourceMemo<EnvoyResource>;
  /** ClusterLoadAssignments, by cluster name and endpointInputs of its endpoints (endpoints.ts). */
  readonly loadAssignments: ResourceMemo<EnvoyResource>;
}

/** Memos that remember nothing: every translation builds its own objects. */
export function unsharedResources(): SharedResources {
  const none: ResourceMemo<EnvoyResource> = { get: (_name, _inputs, build) => build() };
  return { services: new Map(), clusters: none, loadAssignments: none };
}

/** How shared values are protected against mutation. */
export type FreezeMode = 'none' | 'shallow' | 'deep';

export interface MemoStats {
  hits: number;
  misses: number;
  entries: number;
}

interface MemoEntry<V> {
  readonly inputs: string;
  readonly value: V;
}

/**
 * A ResourceMemo that keeps two generations: `rotate()` (once per new snapshot) retires the
 * entries nobody asked for since the rotation before, so memory follows the live configuration
 * rather than its history. A name usually has one live version; proxies that see different
 * DestinationRules for one host can keep a few side by side.
 */
export class GenerationalMemo<V extends object> implements ResourceMemo<V> {
  private current = new Map<string, MemoEntry<V>[]>();
  private previous = new Map<string, MemoEntry<V>[]>();
  private currentEntries = 0;
  private previousEntries = 0;
  private hits = 0;
  private misses = 0;

  constructor(private readonly freeze: FreezeMode) {}

  get(name: string, inputs: string, build: () => V): V {
    const list = this.current.get(name);
    const known = list && find(list, inputs);
    if (known) {
      this.hits++;
      return known.value;
    }
    const old = this.previous.get(name);
    let entry = old && find(old, inputs);
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
}

function find<V>(list: readonly MemoEntry<V>[], inputs: string): MemoEntry<V> | undefined {
  for (const e of list) if (e.inputs === inputs) return e;
  return undefined;
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
