// One ADS stream: the proxy behind it and, per type URL, what it subscribed to, what was sent and
// what it ACKed or NACKed. Applies the state-of-the-world ACK/NACK rules of the xDS protocol
// (https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol), modelled on Istio's
// pilot/pkg/xds ShouldRespond.
import type * as grpc from '@grpc/grpc-js';
import type { MeshSnapshot } from '../../model/snapshot';
import type { ProxyNode, ProxyType } from '../../model/proxy';
import { ADS_TYPE_ORDER, SHORT_TYPE_NAMES, TypeUrl } from '../protos';
import type { DiscoveryRequest } from './ads-service';
import type { PreparedResource } from './resource-cache';

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

/** Per stream, per type URL: subscription and delivery state. */
export class WatchedResource {
  wildcard = false;
  names = new Set<string>();
  nonceSent?: string;
  versionSent?: string;
  sentAt?: number;
  resourcesSent = 0;
  nonceAcked?: string;
  versionAcked?: string;
  lastNack?: NackRecord;
  /** name -> content id of the last response, to skip pushes that would change nothing. */
  sentContent = new Map<string, string>();
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
    this.names = new Set(names.filter((n) => n !== '*'));
  }

  state(): SyncState {
    if (this.nonceSent === undefined) return 'NOT_SENT';
    if (this.lastNack && this.lastNack.nonce === this.nonceSent) return 'NACK';
    return this.nonceAcked === this.nonceSent ? 'SYNCED' : 'STALE';
  }

  /** The resources of this type the proxy should have: all for wildcard, else the subscribed ones. */
  select<T>(available: ReadonlyMap<string, T> | undefined): T[] {
    if (!available) return [];
    if (this.wildcard) return [...available.values()];
    const out: T[] = [];
    for (const name of [...this.names].sort()) {
      const r = available.get(name);
      if (r !== undefined) out.push(r);
    }
    return out;
  }

  /** True when sending `prepared` would repeat the last response's content exactly. */
  matchesLastSent(prepared: readonly PreparedResource[]): boolean {
    if (this.nonceSent === undefined || prepared.length !== this.sentContent.size) return false;
    return prepared.every((p) => this.sentContent.get(p.name) === p.contentId);
  }

  recordSent(nonce: string, version: string, prepared: readonly PreparedResource[], now: number, changedAt?: number): void {
    this.nonceSent = nonce;
    this.versionSent = version;
    this.sentAt = now;
    this.resourcesSent = prepared.length;
    this.sentContent = new Map(prepared.map((p) => [p.name, p.contentId]));
    this.changedAt = changedAt;
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
      resourceNames: this.wildcard ? ['*', ...[...this.names].sort()] : [...this.names].sort(),
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
    const names = request.resource_names ?? [];
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

    if (!isWildcardType(typeUrl) && names.length === 0) {
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
      watched.subscribe(names, true);
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
    const before = watched.names;
    const wasWildcard = watched.wildcard;
    watched.subscribe(names, false);
    const added = [...watched.names].some((n) => !before.has(n));
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
