// One ADS stream: the proxy behind it and, per type URL, what it subscribed to, what was sent and
// what it ACKed or NACKed. Applies the state-of-the-world ACK/NACK rules of the xDS protocol
// (https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol), modelled on Istio's
// pilot/pkg/xds ShouldRespond.
import { createHash } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import type { MeshSnapshot } from '../../model/snapshot';
import type { ProxyNode, ProxyType } from '../../model/proxy';
import { ADS_TYPE_ORDER, SHORT_TYPE_NAMES, TypeUrl } from '../protos';
import { encodeResourceNames, type DiscoveryRequest } from './ads-service';
import { EMPTY_PREPARED_LIST, PreparedList, type PreparedResource } from './resource-cache';

/**
 * SYNCED: the last response was ACKed. STALE: a response awaits its ACK. NACK: the last response
 * was rejected (the proxy keeps running its previous config). NOT_SENT: subscribed, nothing sent yet.
 */
export type SyncState = 'SYNCED' | 'STALE' | 'NACK' | 'NOT_SENT';

export interface NackRecord {
  /** version_info of the rejected response. */
  version: string;
  nonce: string;
  message: string;
  /** ISO time the NACK arrived. */
  at: string;
}

export interface TypeSyncStatus {
  typeUrl: string;
  /** CDS, EDS, LDS, RDS, SDS. */
  type: string;
  state: SyncState;
  versionSent?: string;
  nonceSent?: string;
  versionAcked?: string;
  lastNack?: NackRecord;
  /** Subscribed names; `["*"]` for a wildcard subscription. */
  resourceNames: string[];
  /** How many resources the last response carried. */
  resourcesSent: number;
  /** ISO time of the last response. */
  sentAt?: string;
}

export interface ProxySyncStatus {
  /** node.id */
  id: string;
  /** Unique per stream: `<node id>-<sequence>` (Istio's connection id). */
  connectionId: string;
  type: ProxyType;
  namespace: string;
  /** Peer address of the stream, host:port. */
  address: string;
  connectedAt: string;
  /** Version of the newest snapshot this proxy's config was computed from. */
  snapshotVersion?: string;
  /** Worst state over all types: NACK > STALE > NOT_SENT > SYNCED. */
  state: SyncState;
  types: TypeSyncStatus[];
}

/** Listeners and clusters may be requested by wildcard; routes, endpoints and secrets never are. */
export function isWildcardType(typeUrl: string): boolean {
  return typeUrl === TypeUrl.Listener || typeUrl === TypeUrl.Cluster;
}

export function shortTypeName(typeUrl: string): string {
  return SHORT_TYPE_NAMES[typeUrl as TypeUrl] ?? typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}

/**
 * A subscription's resource names, sorted and unique. Interned: every stream subscribed to the
 * same names holds the same object (a thousand sidecars of one shape ask for the same three
 * thousand clusters), so what is selected for it is computed once per prepared map.
 */
export interface NameSet {
  readonly set: ReadonlySet<string>;
  readonly sorted: readonly string[];
  /** `sorted` as DiscoveryRequest resource_names entries, made when first compared. */
  wire?: Uint8Array;
}

// Not frozen: V8 copies a frozen array (status() slices these) through its slow path.
const EMPTY_NAMES: NameSet = Object.freeze({ set: new Set<string>(), sorted: [] as readonly string[], wire: new Uint8Array(0) });
const internedNames = new Map<string, WeakRef<NameSet>>();
const internedGone = new FinalizationRegistry<string>((key) => {
  if (internedNames.get(key)?.deref() === undefined) internedNames.delete(key);
});

function internNames(names: readonly string[]): NameSet {
  const sorted = [...new Set(names)].filter((n) => n !== '*').sort();
  if (sorted.length === 0) return EMPTY_NAMES;
  // A digest, not the joined text: V8 hashes long strings by length only.
  const key = createHash('sha1').update(sorted.join('\n')).digest('base64');
  const known = internedNames.get(key)?.deref();
  if (known && known.sorted.length === sorted.length && known.sorted.every((n, i) => n === sorted[i])) return known;
  const fresh: NameSet = { set: new Set(sorted), sorted };
  internedNames.set(key, new WeakRef(fresh));
  internedGone.register(fresh, key);
  return fresh;
}

/** True when `names` (minus `*`) are exactly the set's names. Allocates nothing for a sorted list. */
function sameNames(set: NameSet, names: readonly string[]): boolean {
  let count = 0;
  let ascending = true;
  let previous: string | undefined;
  for (const n of names) {
    if (n === '*') continue;
    if (!set.set.has(n)) return false;
    if (previous !== undefined && !(previous < n)) ascending = false;
    previous = n;
    count++;
  }
  if (count !== set.set.size) return ascending ? false : new Set(names.filter((n) => n !== '*')).size === set.set.size;
  // Every name is known and there are as many as the set holds: equal unless one is repeated.
  return ascending || new Set(names.filter((n) => n !== '*')).size === set.set.size;
}

const WILDCARD_SELECTION = Object.freeze({ set: new Set<string>(), sorted: [] }) as NameSet;
const selections = new WeakMap<ReadonlyMap<string, PreparedResource>, WeakMap<NameSet, PreparedList>>();

/** The resources of `available` a subscription selects, shared by every stream with that subscription. */
function selectPrepared(available: ReadonlyMap<string, PreparedResource> | undefined, wildcard: boolean, names: NameSet): PreparedList {
  if (!available) return EMPTY_PREPARED_LIST;
  const key = wildcard ? WILDCARD_SELECTION : names;
  let byNames = selections.get(available);
  const known = byNames?.get(key);
  if (known) return known;
  let items: PreparedResource[];
  if (wildcard) items = [...available.values()];
  else {
    items = [];
    for (const name of names.sorted) {
      const r = available.get(name);
      if (r !== undefined) items.push(r);
    }
  }
  const list = items.length === 0 ? EMPTY_PREPARED_LIST : new PreparedList(items);
  if (!byNames) selections.set(available, (byNames = new WeakMap()));
  byNames.set(key, list);
  return list;
}

/** Per stream, per type URL: subscription and delivery state. */
export class WatchedResource {
  wildcard = false;
  /** Subscribed names (interned, never mutated: a change replaces it). */
  nameSet: NameSet = EMPTY_NAMES;
  nonceSent?: string;
  versionSent?: string;
  sentAt?: number;
  resourcesSent = 0;
  nonceAcked?: string;
  versionAcked?: string;
  lastNack?: NackRecord;
  /**
   * Everything the proxy holds of this type from us: the full selection of the last push (an
   * incremental EDS/RDS response carries only what changed, but leaves the proxy holding all of
   * it). Compared with the next selection to decide what, if anything, to send.
   */
  sent: PreparedList | undefined;
  /**
   * Respond to the next request even if it looks like a plain ACK. Set when clusters changed
   * without an EDS push: Envoy re-requests endpoints for warming clusters with the same nonce and
   * waits for an answer (Istio's WatchedResource.AlwaysRespond).
   */
  alwaysRespond = false;
  /** When the config change behind the unACKed response happened (for convergence time). */
  changedAt?: number;

  constructor(readonly typeUrl: string) {}

  /**
   * Records the names of a request. Wildcard (LDS/CDS only): `*` listed, or an empty list on the
   * first request and every later one (Envoy's legacy form). A client that named resources and then
   * sends an empty list has unsubscribed from everything (xDS protocol, "How the client specifies
   * what resources to return").
   */
  subscribe(names: readonly string[], first: boolean): void {
    const legacyWildcard = names.length === 0 && (first || this.wildcard);
    this.wildcard = isWildcardType(this.typeUrl) && (names.includes('*') || legacyWildcard);
    // An ACK repeats the subscription (Envoy sends every name each time): keep the same object.
    if (!sameNames(this.nameSet, names)) this.nameSet = internNames(names);
  }

  /**
   * subscribe() for a request: when its names arrived as the very bytes of the held subscription
   * (an ACK from a client that lists names sorted, as Envoy and Weft's proxy do), nothing is decoded.
   */
  subscribeRequest(request: DiscoveryRequest, first: boolean): void {
    const wire = request.resource_names_wire;
    if (wire && this.nameSet.sorted.length > 0) {
      const mine = (this.nameSet.wire ??= encodeResourceNames(this.nameSet.sorted));
      if (mine.length === wire.length && Buffer.compare(mine, wire) === 0) {
        this.wildcard = false; // a non-empty list without "*"
        return;
      }
    }
    this.subscribe(request.resource_names ?? [], first);
  }

  get names(): ReadonlySet<string> {
    return this.nameSet.set;
  }

  state(): SyncState {
    if (this.nonceSent === undefined) return 'NOT_SENT';
    if (this.lastNack && this.lastNack.nonce === this.nonceSent) return 'NACK';
    return this.nonceAcked === this.nonceSent ? 'SYNCED' : 'STALE';
  }

  /**
   * The resources of this type the proxy should have: all for wildcard, else the subscribed ones
   * (in name order). The same list object for every stream with the same subscription.
   */
  select(available: ReadonlyMap<string, PreparedResource> | undefined): PreparedList {
    return selectPrepared(available, this.wildcard, this.nameSet);
  }

  /**
   * Records a response. `selection` is everything the proxy now holds of this type (see `sent`);
   * `count` how many resources the response itself carried.
   */
  recordSent(nonce: string, version: string, selection: PreparedList, count: number, now: number, changedAt?: number): void {
    this.nonceSent = nonce;
    this.versionSent = version;
    this.sentAt = now;
    this.resourcesSent = count;
    this.sent = selection;
    this.changedAt = changedAt;
  }

  /** Records that the proxy holds `selection` without a response (only resources went away). */
  recordUnchanged(selection: PreparedList): void {
    this.sent = selection;
  }

  status(): TypeSyncStatus {
    return {
      typeUrl: this.typeUrl,
      type: shortTypeName(this.typeUrl),
      state: this.state(),
      versionSent: this.versionSent,
      nonceSent: this.nonceSent,
      versionAcked: this.versionAcked,
      lastNack: this.lastNack,
      resourceNames: this.wildcard ? ['*', ...this.nameSet.sorted] : this.nameSet.sorted.slice(),
      resourcesSent: this.resourcesSent,
      sentAt: this.sentAt === undefined ? undefined : new Date(this.sentAt).toISOString(),
    };
  }
}

/** What a request means under the protocol rules, and whether it needs a response. */
export type RequestVerdict =
  | { kind: 'initial'; respond: true }
  | { kind: 'ack'; respond: boolean; version: string; nonce: string; convergedAfterMs?: number }
  | { kind: 'nack'; respond: false; version: string; nonce: string; message: string }
  | { kind: 'resubscribe'; respond: boolean }
  | { kind: 'stale'; respond: false; nonce: string }
  | { kind: 'unsubscribe'; respond: false };

/** One proxy's config for one snapshot, encoded and ready to send. */
export interface EvaluatedConfig {
  readonly snapshot: MeshSnapshot;
  /** type URL -> resource name -> prepared resource. */
  readonly byType: ReadonlyMap<string, ReadonlyMap<string, PreparedResource>>;
  /** Translation threw: nothing is sent for this snapshot (an empty answer would delete config). */
  readonly failed: boolean;
  /** Types with a resource that could not be encoded; the proxy keeps its last good set of them. */
  readonly failedTypes: ReadonlySet<string>;
}

const STATE_RANK: Record<SyncState, number> = { SYNCED: 0, NOT_SENT: 1, STALE: 2, NACK: 3 };

export class AdsConnection {
  readonly watched = new Map<string, WatchedResource>();
  readonly connectedAt = Date.now();
  /** The proxy's config for the newest snapshot it was evaluated against. */
  config?: EvaluatedConfig;
  /** Subscription answers waiting in the server's queue (later ones must queue behind them). */
  queuedAnswers = 0;
  closed = false;

  constructor(
    readonly id: string,
    readonly proxy: ProxyNode,
    readonly peer: string,
    private readonly call: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>,
  ) {}

  /** The snapshot this proxy's config was last evaluated against (pushed or found unchanged). */
  get evaluatedSnapshot(): MeshSnapshot | undefined {
    return this.config?.snapshot;
  }

  /**
   * Applies one DiscoveryRequest to the stream state:
   * - error_detail set: NACK of the response with that nonce; the proxy keeps its last good config,
   *   nothing is resent until the config changes.
   * - empty resource_names on a non-wildcard type: unsubscribe.
   * - first request for a type, or no nonce (new subscription, or reconnect): respond.
   * - nonce other than the last sent: stale, ignored (a newer response is on its way).
   * - nonce of the last response: ACK; respond only if the subscription gained names (or became
   *   a wildcard one).
   */
  applyRequest(request: DiscoveryRequest, now = Date.now()): RequestVerdict {
    const typeUrl = request.type_url ?? '';
    // Long name lists are decoded only if they differ from the subscription held (subscribeRequest).
    const namesEmpty = request.resource_names_wire ? false : (request.resource_names ?? []).length === 0;
    const nonce = request.response_nonce ?? '';
    let watched = this.watched.get(typeUrl);

    if (request.error_detail) {
      const nack: NackRecord = {
        version: watched?.nonceSent === nonce ? (watched.versionSent ?? '') : request.version_info ?? '',
        nonce,
        message: request.error_detail.message ?? `error code ${request.error_detail.code ?? 'unknown'}`,
        at: new Date(now).toISOString(),
      };
      if (watched) watched.lastNack = nack;
      return { kind: 'nack', respond: false, version: nack.version, nonce, message: nack.message };
    }

    if (!isWildcardType(typeUrl) && namesEmpty) {
      this.watched.delete(typeUrl);
      return { kind: 'unsubscribe', respond: false };
    }

    if (!watched || nonce === '') {
      // First request for this type on this stream; a non-empty nonce means the proxy was talking
      // to another control plane instance (or to us before a restart): answer it in full.
      if (!watched) {
        watched = new WatchedResource(typeUrl);
        this.watched.set(typeUrl, watched);
      }
      watched.subscribeRequest(request, true);
      return { kind: 'initial', respond: true };
    }

    if (nonce !== watched.nonceSent) return { kind: 'stale', respond: false, nonce };

    const version = watched.versionSent ?? '';
    // After a NACK, the proxy's later requests still carry the rejected response's nonce (with
    // version_info = its last good version): they change subscriptions but acknowledge nothing.
    const rejected = watched.lastNack?.nonce === nonce;
    let convergedAfterMs: number | undefined;
    if (!rejected) {
      if (watched.nonceAcked !== nonce && watched.changedAt !== undefined) convergedAfterMs = now - watched.changedAt;
      watched.nonceAcked = nonce;
      watched.versionAcked = version;
      watched.changedAt = undefined;
    }

    // Only new names need an answer: a client drops what it unsubscribed from by itself.
    const before = watched.nameSet;
    const wasWildcard = watched.wildcard;
    watched.subscribeRequest(request, false);
    let added = false;
    if (watched.nameSet !== before) {
      for (const n of watched.nameSet.sorted) {
        if (!before.set.has(n)) {
          added = true;
          break;
        }
      }
    }
    let respond = added || (watched.wildcard && !wasWildcard);
    if (watched.alwaysRespond) {
      watched.alwaysRespond = false;
      respond = true;
    }
    if (rejected) return { kind: 'resubscribe', respond };
    return { kind: 'ack', respond, version, nonce, convergedAfterMs };
  }

  /** Watched types in push order: CDS, EDS, LDS, RDS, SDS, then any others. */
  watchedInPushOrder(): WatchedResource[] {
    const ordered: WatchedResource[] = [];
    for (const typeUrl of ADS_TYPE_ORDER) {
      const w = this.watched.get(typeUrl);
      if (w) ordered.push(w);
    }
    for (const [typeUrl, w] of this.watched) if (!(ADS_TYPE_ORDER as readonly string[]).includes(typeUrl)) ordered.push(w);
    return ordered;
  }

  /** True when every response sent has been answered (ACK or NACK). */
  isSettled(): boolean {
    for (const w of this.watched.values()) if (w.state() === 'STALE') return false;
    return true;
  }

  /** Writes one encoded response; resolves when grpc-js has handed it to the transport. */
  write(bytes: Buffer): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      try {
        this.call.write(bytes, () => resolve());
      } catch {
        resolve(); // the stream closed under us; the close handler cleans up
      }
    });
  }

  /** Ends the stream with status OK (the proxy reconnects, possibly to another instance). */
  end(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.call.end();
    } catch {
      // already torn down
    }
  }

  syncStatus(): ProxySyncStatus {
    const types = this.watchedInPushOrder().map((w) => w.status());
    const state = types.reduce<SyncState>((worst, t) => (STATE_RANK[t.state] > STATE_RANK[worst] ? t.state : worst), 'SYNCED');
    return {
      id: this.proxy.id,
      connectionId: this.id,
      type: this.proxy.type,
      namespace: this.proxy.namespace,
      address: this.peer,
      connectedAt: new Date(this.connectedAt).toISOString(),
      snapshotVersion: this.evaluatedSnapshot?.version,
      state,
      types,
    };
  }
}
