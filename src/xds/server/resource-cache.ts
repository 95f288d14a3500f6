// Work sharing across proxies: translation results per proxy "shape" within one snapshot, and
// encoded google.protobuf.Any bytes per resource content, so a thousand proxies that receive the
// same cluster cause one protobuf encode of it, not a thousand.
import * as protobuf from 'protobufjs';
import type { MeshSnapshot } from '../../model/snapshot';
import type { ProxyNode } from '../../model/proxy';
import { encodeResource } from '../protos';
import type { EncodedAny } from './ads-service';

/** A resource as translate produces it: Envoy's JSON form (its xDS name is its map key). */
export type EnvoyJsonResource = Record<string, unknown>;

/** A resource ready for the wire, with the content id used to decide whether to resend it. */
export interface PreparedResource {
  readonly name: string;
  /** Equal ids mean equal content (same type, same JSON). */
  readonly contentId: string;
  readonly any: EncodedAny;
  /**
   * The resource as one entry of DiscoveryResponse.resources (field 2: tag, length, Any), encoded
   * once per content and copied as is into every response that carries it.
   */
  readonly field: Uint8Array;
}

/** DiscoveryResponse field 2 (`repeated google.protobuf.Any resources`) holding `any`. */
function encodeResourcesField(any: EncodedAny): Uint8Array {
  return protobuf.Writer.create().uint32(18).fork().uint32(10).string(any.type_url).uint32(18).bytes(any.value).ldelim().finish();
}

/**
 * An ordered list of prepared resources: what one response carries, or what a proxy was last
 * sent of a type. Lists are shared by every proxy that selects the same resources from the same
 * prepared map (see `selectPrepared`), so their encoded body is built once for all of them.
 */
export class PreparedList {
  private encoded: Buffer | undefined;
  private names: Map<string, string> | undefined;

  constructor(readonly items: readonly PreparedResource[]) {}

  get length(): number {
    return this.items.length;
  }

  /** The concatenated `resources` fields of a DiscoveryResponse carrying these items. */
  body(): Buffer {
    if (!this.encoded) {
      let size = 0;
      for (const p of this.items) size += p.field.length;
      const out = Buffer.allocUnsafe(size);
      let at = 0;
      for (const p of this.items) {
        out.set(p.field, at);
        at += p.field.length;
      }
      this.encoded = out;
    }
    return this.encoded;
  }

  /** name -> content id. */
  contentByName(): ReadonlyMap<string, string> {
    if (!this.names) this.names = new Map(this.items.map((p) => [p.name, p.contentId]));
    return this.names;
  }
}

export const EMPTY_PREPARED_LIST = new PreparedList([]);

/** How a list differs from one sent before (computed once per pair of lists, shared by all proxies). */
export interface PreparedListDiff {
  /** Same names with the same content: nothing to send. */
  readonly same: boolean;
  /** The items of the new list that the old one lacks or holds with other content. */
  readonly changed: PreparedList;
}

const diffs = new WeakMap<PreparedList, WeakMap<PreparedList, PreparedListDiff>>();

export function diffPreparedLists(before: PreparedList, after: PreparedList): PreparedListDiff {
  if (before === after) return { same: true, changed: EMPTY_PREPARED_LIST };
  let byAfter = diffs.get(before);
  const known = byAfter?.get(after);
  if (known) return known;
  const old = before.contentByName();
  const changed = after.items.filter((p) => old.get(p.name) !== p.contentId);
  const diff: PreparedListDiff = {
    same: changed.length === 0 && before.length === after.length,
    changed: changed.length === after.length ? after : changed.length === 0 ? EMPTY_PREPARED_LIST : new PreparedList(changed),
  };
  if (!byAfter) diffs.set(before, (byAfter = new WeakMap()));
  byAfter.set(after, diff);
  return diff;
}

/** JSON with object keys sorted, so equal content always gives equal text whatever the build order. */
export function stableJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : stableJson(v))).join(',')}]`;
  if (value instanceof Uint8Array) return JSON.stringify(Buffer.from(value).toString('base64'));
  const keys = Object.keys(value).sort();
  const parts: string[] = [];
  for (const k of keys) {
    const v = (value as Record<string, unknown>)[k];
    if (v === undefined) continue;
    parts.push(`${JSON.stringify(k)}:${stableJson(v)}`);
  }
  return `{${parts.join(',')}}`;
}

export class ResourceEncodeError extends Error {
  readonly code = 'XDS_RESOURCE_ENCODE';
  constructor(
    readonly typeUrl: string,
    readonly resourceName: string,
    cause: unknown,
  ) {
    super(`cannot encode ${typeUrl.slice(typeUrl.lastIndexOf('/') + 1)} "${resourceName}": ${(cause as Error)?.message ?? cause}`);
  }
}

export interface EncodeCacheStats {
  hits: number;
  misses: number;
  entries: number;
}

interface EncodedEntry {
  id: string;
  any: EncodedAny;
  field: Uint8Array;
}

/**
 * Content-addressed cache of encoded resources. The key is the resource's JSON text (native
 * JSON.stringify: an order of magnitude cheaper than hashing a canonical form, measured). The
 * translator builds objects deterministically, so equal config gives equal text; a differing key
 * order could only cost an extra encode or a redundant push, never a missed one.
 * Two generations are kept: `rotate()` (once per snapshot) retires entries nobody used during the
 * previous generation, so memory follows the live configuration instead of growing with history.
 */
export class EncodedResourceCache {
  // Same object again (translation cache hit, or a translator that shares objects): no JSON at all.
  private byObject = new WeakMap<object, { prepared: PreparedResource; key: string; entry: EncodedEntry }>();
  private current = new Map<string, EncodedEntry>();
  private previous = new Map<string, EncodedEntry>();
  private nextId = 0;
  private hits = 0;
  private misses = 0;

  prepare(typeUrl: string, name: string, resource: EnvoyJsonResource): PreparedResource {
    const known = this.byObject.get(resource);
    if (known && known.prepared.any.type_url === typeUrl && known.prepared.name === name) {
      this.hits++;
      // Keep its content entry in the live generation: an equal object built later (a listener
      // rebuilt after being reused for a few snapshots) must get the same content id, or it would
      // look changed and be pushed again.
      if (!this.current.has(known.key)) this.current.set(known.key, known.entry);
      return known.prepared;
    }
    const key = `${typeUrl}\n${JSON.stringify(resource)}`;
    let entry = this.current.get(key);
    if (entry) {
      this.hits++;
    } else {
      entry = this.previous.get(key);
      if (entry) {
        this.hits++;
      } else {
        this.misses++;
        let value: Uint8Array;
        try {
          value = encodeResource(typeUrl, resource);
        } catch (err) {
          throw new ResourceEncodeError(typeUrl, name, err);
        }
        const any = { type_url: typeUrl, value };
        entry = { id: (this.nextId++).toString(36), any, field: encodeResourcesField(any) };
      }
      this.current.set(key, entry);
    }
    const prepared: PreparedResource = { name, contentId: entry.id, any: entry.any, field: entry.field };
    this.byObject.set(resource, { prepared, key, entry });
    return prepared;
  }

  /** Incremented by every rotate(). */
  generation = 0;

  rotate(): void {
    this.generation++;
    this.previous = this.current;
    this.current = new Map();
  }

  stats(): EncodeCacheStats {
    return { hits: this.hits, misses: this.misses, entries: this.current.size + this.previous.size };
  }
}

/**
 * What translation may depend on, as a cache key: two proxies with the same key get the same
 * resources from the same snapshot. Everything ProxyNode carries except the id is included
 * (metadata too: a generator may read it), so the cache can never serve one proxy another's config.
 */
export function proxyShapeKey(proxy: ProxyNode): string {
  return stableJson({
    type: proxy.type,
    namespace: proxy.namespace,
    ips: proxy.ips,
    workloadName: proxy.workloadName ?? null,
    labels: proxy.labels,
    metadata: proxy.metadata,
  });
}

/**
 * Translation results for the current snapshot keyed by proxy shape; a new snapshot empties it.
 * Bounded (least recently used out) so thousands of distinct sidecars do not pin their configs.
 */
export class TranslationCache<R> {
  private snapshot: MeshSnapshot | undefined;
  private readonly entries = new Map<string, R>();
  private hits = 0;
  private misses = 0;

  constructor(private readonly capacity = 512) {}

  get(snapshot: MeshSnapshot, proxy: ProxyNode, translate: () => R): R {
    if (snapshot !== this.snapshot) {
      this.snapshot = snapshot;
      this.entries.clear();
    }
    const key = proxyShapeKey(proxy);
    const cached = this.entries.get(key);
    if (cached !== undefined) {
      this.hits++;
      this.entries.delete(key); // re-insert: Map order doubles as recency order
      this.entries.set(key, cached);
      return cached;
    }
    this.misses++;
    const result = translate();
    this.entries.set(key, result);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
    return result;
  }

  stats(): { hits: number; misses: number; entries: number } {
    return { hits: this.hits, misses: this.misses, entries: this.entries.size };
  }
}
