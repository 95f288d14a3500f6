// The serve stage: an Aggregated Discovery Service (xDS v3, state of the world) that pushes each
// published snapshot, translated per proxy, to every connected Envoy, Weft proxy or gRPC client.
// Pushes are debounced, sent only for the types whose resources changed, ordered CDS, EDS, LDS,
// RDS, and spread over the event loop with bounded concurrency. The same streams are served on
// every port it listens on; an authenticated port (15012) admits a stream only through its guard.
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import type { Logger } from '../../log/logger';
import type { MeshSnapshot } from '../../model/snapshot';
import type { ProxyNode } from '../../model/proxy';
import { TypeUrl } from '../protos';
import { adsServiceDefinition, encodeDiscoveryResponseWithBody, type DiscoveryNode, type DiscoveryRequest } from './ads-service';
import { AdsConnection, shortTypeName, type EvaluatedConfig, type ProxySyncStatus, type WatchedResource } from './ads-connection';
import { Debouncer, type DebouncedBurst } from './debounce';
import { createXdsMetrics, type XdsMetrics } from './metrics';
import { forEachBounded, TimeSlicedQueue } from './push-queue';
import { diffPreparedLists, EncodedResourceCache, PreparedList, TranslationCache, type EnvoyJsonResource, type PreparedResource } from './resource-cache';

/**
 * Types whose snapshot pushes carry only the resources that changed. The xDS protocol allows it in
 * state of the world for every type but Listener and Cluster (a proxy keeps the EDS/RDS resources
 * a response leaves out); Istio's incremental EDS is the same. A proxy that NACKed its last
 * response of the type, or asks again, gets the full set.
 */
const INCREMENTAL_TYPES: ReadonlySet<string> = new Set([TypeUrl.ClusterLoadAssignment, TypeUrl.RouteConfiguration]);

/** Per type URL, resources by xDS name: what translate produces for one proxy. */
export interface GeneratedResourceSet {
  readonly [typeUrl: string]: ReadonlyMap<string, EnvoyJsonResource>;
}

export interface AdsServerOptions {
  /** Pure translation, `translateForProxy` in production. */
  generate: (snapshot: MeshSnapshot, proxy: ProxyNode) => GeneratedResourceSet;
  /** Node of the first request -> proxy model, `parseProxyNode` in production. Throws on bad input. */
  parseNode: (node: DiscoveryNode) => ProxyNode;
  logger: Logger;
  /** pilot_* metrics are registered here when given. */
  metrics?: Registry;
  /** Quiet period before a published snapshot is pushed (Istio PILOT_DEBOUNCE_AFTER). Default 100. */
  debounceAfterMs?: number;
  /** Longest delay under constant churn (Istio PILOT_DEBOUNCE_MAX). Default 1000. */
  debounceMaxMs?: number;
  /** Proxies being pushed at once (awaiting their writes). Default 100 (Istio PILOT_PUSH_THROTTLE). */
  pushConcurrency?: number;
  /** A proxy that has not taken its response after this long no longer holds a push slot. Default 5000. */
  sendTimeoutMs?: number;
  /** Longest synchronous stretch of a push cycle before yielding to the event loop. Default 10. */
  pushSliceMs?: number;
  /** Distinct proxy shapes whose translation is shared per snapshot. Default 128. */
  translationCacheSize?: number;
  /** Identifies this control plane in responses (DiscoveryResponse.control_plane). Default "weft". */
  controlPlaneId?: string;
}

/** Why a stream on an authenticated port was refused: the gRPC status it ends with. */
export interface StreamRefusal {
  code: grpc.status;
  details: string;
}

/**
 * Admission for an authenticated port (15012), in Istio's two steps: who is calling (checked when
 * the stream opens: client certificate or token), then whether that caller may speak for the
 * node its first request names (e.g. same namespace).
 */
export interface StreamGuard<Caller = unknown> {
  /** Resolves with the caller, or rejects with a StreamRefusal (UNAUTHENTICATED). */
  authenticate(call: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>): Promise<Caller>;
  /** A refusal (PERMISSION_DENIED) when `caller` may not be `proxy`. */
  authorize(caller: Caller, proxy: ProxyNode): StreamRefusal | undefined;
}

/** Another gRPC service on the same port (the CA beside ADS on 15012). */
export interface SharedService {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

export interface ListenOptions {
  /** Default: plaintext. */
  credentials?: grpc.ServerCredentials;
  /** Authenticate and authorize every stream on this port. Default: admit all (plaintext 15010). */
  guard?: StreamGuard;
  services?: readonly SharedService[];
}

export interface ConnectEvent {
  proxyId: string;
  connectionId: string;
  peer: string;
  proxy: ProxyNode;
}
export interface DisconnectEvent {
  proxyId: string;
  connectionId: string;
  peer: string;
  connectedForMs: number;
}
export interface PushEvent {
  proxyId: string;
  connectionId: string;
  /** Type URLs sent, in order. */
  typeUrls: string[];
  version: string;
  resources: number;
  bytes: number;
  /** `request`: answering a subscription; `snapshot`: pushing a config change. */
  cause: 'request' | 'snapshot';
}
export interface AckEvent {
  proxyId: string;
  connectionId: string;
  typeUrl: string;
  version: string;
  nonce: string;
}
export interface NackEvent extends AckEvent {
  message: string;
}
export interface SnapshotPushedEvent {
  version: string;
  /** Publishes merged into this push by the debouncer. */
  merged: number;
  proxies: number;
  /** Proxies that received at least one response. */
  pushed: number;
  /** Proxies whose resources did not change. */
  unchanged: number;
  failed: number;
  durationMs: number;
}

export interface AdsServerEvents {
  connect: [ConnectEvent];
  disconnect: [DisconnectEvent];
  push: [PushEvent];
  ack: [AckEvent];
  nack: [NackEvent];
  /** A push cycle finished: every proxy connected at its start was evaluated against `version`. */
  snapshot: [SnapshotPushedEvent];
}

export interface ConvergenceOptions {
  /** Snapshot version to wait for; default: the latest published. */
  version?: string;
  timeoutMs?: number;
  /** Also wait until at least this many proxies are connected. Default 0. */
  minProxies?: number;
}

function asRefusal(err: unknown, fallback: grpc.status): StreamRefusal {
  const e = err as Partial<StreamRefusal> & { message?: string };
  return typeof e?.code === 'number' && typeof e.details === 'string' ? { code: e.code, details: e.details } : { code: fallback, details: String(e?.message ?? err) };
}

/** True when `snapshot` is the one named `version` or a later one (versions are `v<sequence>`). */
function isAtLeast(snapshot: MeshSnapshot, version: string): boolean {
  if (snapshot.version === version) return true;
  const m = /^v(\d+)$/.exec(version);
  return m !== null && snapshot.sequence >= Number(m[1]);
}

interface AppliedSnapshot {
  snapshot: MeshSnapshot;
  /** When the first change merged into it was published (for convergence time). */
  changedAt: number;
}

export class AdsServer {
  /** 'connect' | 'disconnect' | 'push' | 'ack' | 'nack' | 'snapshot'; emitted synchronously. */
  readonly events = new EventEmitter<AdsServerEvents>();

  private readonly log: Logger;
  private readonly metrics: XdsMetrics;
  private readonly connections = new Map<string, AdsConnection>();
  private readonly debouncer: Debouncer<AppliedSnapshot>;
  private readonly translations: TranslationCache<GeneratedResourceSet>;
  private readonly encoded = new EncodedResourceCache();
  /** Prepared (encoded) form of each translated map, by the map's identity. */
  private readonly preparedMaps = new WeakMap<ReadonlyMap<string, EnvoyJsonResource>, ReadonlyMap<string, PreparedResource>>();
  /** The encode-cache generation each prepared map was last refreshed in. */
  private readonly preparedGeneration = new WeakMap<ReadonlyMap<string, PreparedResource>, number>();
  private readonly answers: TimeSlicedQueue;
  private readonly noncePrefix = randomBytes(4).toString('hex');
  private nonceCounter = 0;
  private connectionCounter = 0;
  /** One gRPC server per listening port (15010 plaintext, 15012 TLS), all serving the same streams. */
  private readonly grpcServers: grpc.Server[] = [];
  private current: AppliedSnapshot | undefined;
  private latestPublished: MeshSnapshot | undefined;
  private pushing: Promise<void> | undefined;
  private pushAgain = false;
  private lastMerged = 1;
  private closed = false;

  constructor(private readonly options: AdsServerOptions) {
    this.log = options.logger.child({ component: 'ads' });
    this.metrics = createXdsMetrics(options.metrics);
    this.debouncer = new Debouncer<AppliedSnapshot>(
      { afterMs: options.debounceAfterMs ?? 100, maxMs: options.debounceMaxMs ?? 1000 },
      (burst) => this.applySnapshot(burst),
    );
    this.translations = new TranslationCache(options.translationCacheSize ?? 128);
    this.answers = new TimeSlicedQueue(options.pushSliceMs ?? 10, (err) => {
      this.metrics.internalError();
      this.log.error('xds.answer_failed', { error: err });
    });
    // Let tests and the control plane attach many listeners (one per waiting proxy) without warnings.
    this.events.setMaxListeners(0);
  }

  /**
   * Binds a gRPC server serving ADS on `address` (`host:port`; port 0 picks a free port) and
   * resolves with the bound port. Callable more than once: each port serves the same proxies and
   * snapshots, with its own credentials, admission guard and extra services.
   */
  async listen(address: string, options: ListenOptions | grpc.ServerCredentials = {}): Promise<number> {
    if (this.closed) throw new Error('ADS server is closed');
    const { credentials = grpc.ServerCredentials.createInsecure(), guard, services = [] } = options instanceof grpc.ServerCredentials ? { credentials: options } : options;
    const server = new grpc.Server({
      // Detect proxies that vanished without closing their stream (Istio: 30s / 10s).
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.max_receive_message_length': 16 * 1024 * 1024,
    });
    server.addService(adsServiceDefinition, {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>) => this.handleStream(call, guard),
    });
    for (const service of services) server.addService(service.definition, service.implementation);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(address, credentials, (err, boundPort) =>
        err ? reject(new Error(`ADS server cannot listen on ${address}: ${err.message}`)) : resolve(boundPort),
      ),
    );
    this.grpcServers.push(server);
    this.log.info('xds.listening', { address, port, tls: credentials._isSecure(), authenticated: guard !== undefined });
    return port;
  }

  /**
   * Makes `snapshot` the config to serve. Debounced: a burst of publishes within the quiet period
   * (bounded by debounceMaxMs) becomes one push of the latest. The first snapshot applies at once
   * so proxies that connected before any config do not wait.
   */
  publish(snapshot: MeshSnapshot): void {
    if (this.closed) throw new Error(`cannot publish snapshot ${snapshot.version}: ADS server is closed`);
    this.latestPublished = snapshot;
    const entry = { snapshot, changedAt: Date.now() };
    if (!this.current && !this.debouncer.isPending) {
      this.applySnapshot({ latest: entry, merged: 1, firstAt: entry.changedAt });
      return;
    }
    this.debouncer.push(entry);
  }

  /** The snapshot being served (after debouncing), if any. */
  get servedSnapshot(): MeshSnapshot | undefined {
    return this.current?.snapshot;
  }

  get connectedProxies(): number {
    return this.connections.size;
  }

  /** Per connected proxy: what it subscribed to, what was sent, ACKed and NACKed. */
  syncStatus(): ProxySyncStatus[] {
    return [...this.connections.values()].map((c) => c.syncStatus()).sort((a, b) => (a.connectionId < b.connectionId ? -1 : 1));
  }

  /** Translation and encoding cache effectiveness (for /debug and benchmarks). */
  cacheStats(): { translation: ReturnType<TranslationCache<unknown>['stats']>; encoding: ReturnType<EncodedResourceCache['stats']> } {
    return { translation: this.translations.stats(), encoding: this.encoded.stats() };
  }

  /**
   * Resolves when every connected proxy has been evaluated against the served snapshot, which is
   * `version` or newer (default: the latest published), and has answered every response sent to
   * it (ACK or NACK).
   */
  waitForConvergence(options: ConvergenceOptions = {}): Promise<ProxySyncStatus[]> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    // The proxy that kept the last check from succeeding is looked at first: while it lags, a
    // check costs O(1) instead of a walk over every proxy that already converged.
    let blocker: AdsConnection | undefined;
    const converged = () => {
      const served = this.current?.snapshot;
      const wanted = options.version ?? this.latestPublished?.version;
      if (!served || wanted === undefined || !isAtLeast(served, wanted)) return false;
      if (this.connections.size < (options.minProxies ?? 0)) return false;
      if (blocker && !blocker.closed && (blocker.evaluatedSnapshot !== served || !blocker.isSettled())) return false;
      for (const c of this.connections.values()) {
        if (c.evaluatedSnapshot !== served || !c.isSettled()) {
          blocker = c;
          return false;
        }
      }
      return true;
    };
    return new Promise((resolve, reject) => {
      const names = ['ack', 'nack', 'push', 'snapshot', 'connect', 'disconnect'] as const;
      let done = false;
      let scheduled = false;
      const check = () => {
        scheduled = false;
        if (done || !converged()) return;
        cleanup();
        resolve(this.syncStatus());
      };
      // One O(proxies) check per event-loop turn, however many ACKs arrived in it.
      const schedule = () => {
        if (scheduled || done) return;
        scheduled = true;
        setImmediate(check);
      };
      const timer = setTimeout(() => {
        cleanup();
        const lagging = this.syncStatus()
          .filter((s) => s.snapshotVersion !== this.current?.snapshot.version || s.state === 'STALE')
          .slice(0, 5)
          .map((s) => `${s.id} (snapshot ${s.snapshotVersion ?? 'none'}, ${s.state})`);
        reject(
          new Error(
            `proxies did not converge on ${options.version ?? this.latestPublished?.version ?? 'any snapshot'} within ${timeoutMs}ms: ` +
              `${this.connections.size} connected, serving ${this.current?.snapshot.version ?? 'nothing'}; lagging: ${lagging.join(', ') || 'none'}`,
          ),
        );
      }, timeoutMs);
      const cleanup = () => {
        done = true;
        clearTimeout(timer);
        for (const n of names) this.events.off(n, schedule);
      };
      for (const n of names) this.events.on(n, schedule);
      check();
    });
  }

  /** Stops accepting streams, ends every stream (proxies reconnect elsewhere) and shuts down. */
  async close(graceMs = 1000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.debouncer.cancel();
    this.answers.clear();
    for (const conn of this.connections.values()) conn.end();
    await Promise.all(this.grpcServers.map((server) => this.shutdown(server, graceMs)));
    await this.pushing?.catch(() => undefined);
    for (const conn of [...this.connections.values()]) this.dropConnection(conn);
    this.log.info('xds.closed', {});
  }

  private shutdown(server: grpc.Server, graceMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, graceMs);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Streams

  private handleStream(call: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>, guard: StreamGuard | undefined): void {
    const peer = call.getPeer();
    if (this.closed) {
      call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'control plane is shutting down' });
      return;
    }
    let conn: AdsConnection | undefined;
    let rejected = false;
    let caller: unknown;
    const finish = () => {
      if (conn) this.dropConnection(conn);
    };
    if (guard) {
      // Requests wait (the stream stays paused) until the caller is known.
      call.pause();
      guard.authenticate(call).then(
        (identity) => {
          caller = identity;
          if (!rejected && !this.closed) call.resume();
        },
        (err: unknown) => {
          rejected = true;
          const refusal = asRefusal(err, grpc.status.UNAUTHENTICATED);
          this.log.warn('xds.connect_unauthenticated', { peer, reason: refusal.details });
          call.emit('error', refusal);
        },
      );
    }
    call.on('data', (request: DiscoveryRequest) => {
      if (this.closed || rejected) return;
      if (!conn) {
        conn = this.openConnection(call, peer, request, guard, caller);
        if (!conn) {
          rejected = true; // the stream is ending with an error; later requests on it are moot
          return;
        }
      }
      try {
        this.handleRequest(conn, request);
      } catch (err) {
        this.metrics.internalError();
        this.log.error('xds.request_failed', { proxy: conn.proxy.id, connection: conn.id, type: request.type_url, error: err });
      }
    });
    call.on('end', () => {
      // The proxy half-closed: finish our side too.
      conn?.end();
      if (!conn) call.end();
      finish();
    });
    call.on('cancelled', finish);
    call.on('close', finish);
    call.on('error', (err) => {
      this.log.debug('xds.stream_error', { proxy: conn?.proxy.id, peer, error: err });
      finish();
    });
  }

  private openConnection(
    call: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>,
    peer: string,
    request: DiscoveryRequest,
    guard: StreamGuard | undefined,
    caller: unknown,
  ): AdsConnection | undefined {
    const reject = (details: string, code = grpc.status.INVALID_ARGUMENT) => {
      this.log.warn('xds.connect_rejected', { peer, reason: details, code: grpc.status[code] });
      call.emit('error', { code, details });
      return undefined;
    };
    const node = request.node;
    if (!node?.id) return reject('the first DiscoveryRequest on a stream must carry node.id');
    let proxy: ProxyNode;
    try {
      proxy = this.options.parseNode(node);
    } catch (err) {
      return reject(`cannot understand node "${node.id}": ${(err as Error).message}`);
    }
    const refusal = guard?.authorize(caller, proxy);
    if (refusal) return reject(refusal.details, refusal.code);
    const conn = new AdsConnection(`${proxy.id}-${++this.connectionCounter}`, proxy, peer, call);
    this.connections.set(conn.id, conn);
    this.metrics.connectedProxies(this.connections.size);
    this.log.info('xds.connect', { proxy: proxy.id, connection: conn.id, peer, proxyType: proxy.type, namespace: proxy.namespace });
    this.events.emit('connect', { proxyId: proxy.id, connectionId: conn.id, peer, proxy });
    return conn;
  }

  private dropConnection(conn: AdsConnection): void {
    if (!this.connections.delete(conn.id)) return;
    conn.closed = true;
    this.metrics.connectedProxies(this.connections.size);
    const connectedForMs = Date.now() - conn.connectedAt;
    this.log.info('xds.disconnect', { proxy: conn.proxy.id, connection: conn.id, peer: conn.peer, connectedForMs });
    this.events.emit('disconnect', { proxyId: conn.proxy.id, connectionId: conn.id, peer: conn.peer, connectedForMs });
  }

  private handleRequest(conn: AdsConnection, request: DiscoveryRequest): void {
    const typeUrl = request.type_url ?? '';
    if (!typeUrl) {
      this.log.warn('xds.request_without_type', { proxy: conn.proxy.id, connection: conn.id });
      return;
    }
    const verdict = conn.applyRequest(request);
    const common = { proxyId: conn.proxy.id, connectionId: conn.id, typeUrl };
    switch (verdict.kind) {
      case 'nack':
        this.metrics.rejected(typeUrl);
        this.log.warn('xds.nack', {
          proxy: conn.proxy.id,
          connection: conn.id,
          type: shortTypeName(typeUrl),
          version: verdict.version,
          nonce: verdict.nonce,
          error: verdict.message,
        });
        this.events.emit('nack', { ...common, version: verdict.version, nonce: verdict.nonce, message: verdict.message });
        break;
      case 'ack':
        // Converged when the last outstanding response of a config change is ACKed.
        if (verdict.convergedAfterMs !== undefined && conn.isSettled()) this.metrics.converged(verdict.convergedAfterMs / 1000);
        this.log.debug('xds.ack', { proxy: conn.proxy.id, type: shortTypeName(typeUrl), version: verdict.version, nonce: verdict.nonce });
        this.events.emit('ack', { ...common, version: verdict.version, nonce: verdict.nonce });
        break;
      case 'stale':
        this.log.debug('xds.stale_nonce', { proxy: conn.proxy.id, type: shortTypeName(typeUrl), nonce: verdict.nonce });
        break;
      default:
        break;
    }
    // Before the first snapshot there is nothing to answer with; its push will answer.
    if (verdict.respond && this.current) this.answer(conn, typeUrl);
  }

  /**
   * Answers a subscription. Inline when the proxy's config for the served snapshot is at hand;
   * otherwise (a new or reconnecting proxy, which needs a translation) through the time-sliced
   * queue, so a reconnect storm cannot hold the event loop. Answers of one stream stay in order.
   */
  private answer(conn: AdsConnection, typeUrl: string): void {
    if (conn.queuedAnswers === 0 && conn.evaluatedSnapshot === this.current?.snapshot) {
      this.pushToProxy(conn, this.current!, 'request', typeUrl);
      return;
    }
    const nonceWhenAsked = conn.watched.get(typeUrl)?.nonceSent;
    conn.queuedAnswers++;
    this.answers.push(() => {
      conn.queuedAnswers--;
      const watched = conn.watched.get(typeUrl);
      // Unsubscribed meanwhile, or already answered by a snapshot push that reached it first.
      if (conn.closed || !this.current || !watched || watched.nonceSent !== nonceWhenAsked) return;
      this.pushToProxy(conn, this.current, 'request', typeUrl);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Pushes

  private applySnapshot(burst: DebouncedBurst<AppliedSnapshot>): void {
    if (this.closed) return;
    this.current = { snapshot: burst.latest.snapshot, changedAt: burst.firstAt };
    this.lastMerged = burst.merged;
    this.encoded.rotate();
    this.metrics.snapshotApplied((Date.now() - burst.firstAt) / 1000);
    this.log.debug('xds.snapshot_applied', { version: burst.latest.snapshot.version, merged: burst.merged });
    if (this.pushing) {
      this.pushAgain = true; // the running cycle picks the newer snapshot up for proxies not yet visited
      return;
    }
    this.pushing = this.runPushCycles().finally(() => {
      this.pushing = undefined;
    });
  }

  private async runPushCycles(): Promise<void> {
    do {
      this.pushAgain = false;
      const started = performance.now();
      const version = this.current!.snapshot.version;
      const targets = [...this.connections.values()];
      let pushed = 0;
      let unchanged = 0;
      let failed = 0;
      await forEachBounded(
        targets,
        async (conn) => {
          const applied = this.current!;
          if (conn.closed || conn.evaluatedSnapshot === applied.snapshot) return;
          const outcome = this.pushToProxy(conn, applied, 'snapshot');
          if (outcome.status === 'pushed') pushed++;
          else if (outcome.status === 'unchanged') unchanged++;
          else failed++;
          await outcome.flushed;
        },
        { concurrency: this.options.pushConcurrency ?? 100, sliceMs: this.options.pushSliceMs ?? 10, stopped: () => this.closed },
      );
      const event: SnapshotPushedEvent = {
        version,
        merged: this.lastMerged,
        proxies: targets.length,
        pushed,
        unchanged,
        failed,
        durationMs: Math.round((performance.now() - started) * 100) / 100,
      };
      this.log.info('xds.snapshot_pushed', { ...event });
      this.events.emit('snapshot', event);
    } while (this.pushAgain && !this.closed);
  }

  /**
   * The proxy's config for `snapshot`: translated (shared between proxies of the same shape) and
   * encoded (shared by content), computed once per snapshot and kept on the connection so the
   * requests that follow a push (EDS after CDS, RDS after LDS) cost no translation.
   */
  private evaluate(conn: AdsConnection, snapshot: MeshSnapshot): EvaluatedConfig {
    if (conn.config?.snapshot === snapshot) return conn.config;
    let generated: GeneratedResourceSet;
    try {
      generated = this.translations.get(snapshot, conn.proxy, () => this.options.generate(snapshot, conn.proxy));
    } catch (err) {
      // Keep serving what the proxy has; the next snapshot gets another chance.
      this.metrics.internalError();
      this.log.error('xds.translate_failed', { proxy: conn.proxy.id, version: snapshot.version, error: err });
      conn.config = { snapshot, byType: new Map(), failed: true, failedTypes: new Set() };
      return conn.config;
    }
    const byType = new Map<string, ReadonlyMap<string, PreparedResource>>();
    const failedTypes = new Set<string>();
    for (const [typeUrl, resources] of Object.entries(generated)) {
      // The translator hands the same (immutable) map to every proxy with the same inputs:
      // prepare it once, not once per proxy.
      const known = this.preparedMaps.get(resources);
      if (known && this.preparedGeneration.get(known) === this.encoded.generation) {
        byType.set(typeUrl, known);
        continue;
      }
      if (known) {
        // A map the translator kept from an earlier snapshot: its resources are still live, so
        // keep their encodings in the cache's current generation (once per map and snapshot).
        for (const [name, resource] of resources) this.encoded.prepare(typeUrl, name, resource);
        this.preparedGeneration.set(known, this.encoded.generation);
        byType.set(typeUrl, known);
        continue;
      }
      const prepared = new Map<string, PreparedResource>();
      try {
        for (const [name, resource] of resources) prepared.set(name, this.encoded.prepare(typeUrl, name, resource));
        byType.set(typeUrl, prepared);
        this.preparedMaps.set(resources, prepared);
        this.preparedGeneration.set(prepared, this.encoded.generation);
      } catch (err) {
        // A translator bug: never send a partial set (that would delete resources); keep the last good.
        failedTypes.add(typeUrl);
        this.metrics.internalError();
        this.log.error('xds.encode_failed', { proxy: conn.proxy.id, type: shortTypeName(typeUrl), version: snapshot.version, error: err });
      }
    }
    conn.config = { snapshot, byType, failed: false, failedTypes };
    return conn.config;
  }

  /**
   * Sends, in push order, every watched type whose resources differ from the last response, plus
   * `forceType` (a subscription being answered). Synchronous up to the writes, so the responses of
   * one proxy never interleave with another push to it.
   */
  private pushToProxy(
    conn: AdsConnection,
    applied: AppliedSnapshot,
    cause: 'request' | 'snapshot',
    forceType?: string,
  ): { status: 'pushed' | 'unchanged' | 'failed'; flushed: Promise<void> } {
    const started = performance.now();
    const { snapshot } = applied;
    const newConfig = conn.evaluatedSnapshot !== snapshot;
    const config = this.evaluate(conn, snapshot);
    if (config.failed) return { status: 'failed', flushed: Promise.resolve() };
    const changedAt = cause === 'snapshot' || newConfig ? applied.changedAt : undefined;

    const sentTypes: string[] = [];
    const writes: Promise<void>[] = [];
    let resources = 0;
    let bytes = 0;
    // Against a snapshot it was already evaluated on, only the requested type can differ.
    for (const watched of conn.watchedInPushOrder()) {
      const forced = watched.typeUrl === forceType;
      if (!newConfig && !forced) continue;
      if (config.failedTypes.has(watched.typeUrl)) continue;
      const selection = watched.select(config.byType.get(watched.typeUrl));
      let response = selection;
      if (!forced && watched.nonceSent !== undefined && watched.sent) {
        // The diff of two shared lists is computed once for every proxy that holds them.
        const diff = diffPreparedLists(watched.sent, selection);
        if (diff.same) continue;
        if (INCREMENTAL_TYPES.has(watched.typeUrl) && watched.state() !== 'NACK') {
          if (diff.changed.length === 0) {
            // Only resources the proxy no longer needs went away: it drops them by itself.
            watched.recordUnchanged(selection);
            continue;
          }
          response = diff.changed;
        }
      }
      const size = this.send(conn, watched, selection, response, snapshot.version, changedAt, writes);
      sentTypes.push(watched.typeUrl);
      resources += response.length;
      bytes += size;
    }
    // Clusters changed but endpoints did not: Envoy will re-request EDS for the warming clusters.
    const eds = conn.watched.get(TypeUrl.ClusterLoadAssignment);
    if (eds) {
      if (sentTypes.includes(TypeUrl.ClusterLoadAssignment)) eds.alwaysRespond = false;
      else if (sentTypes.includes(TypeUrl.Cluster)) eds.alwaysRespond = true;
    }

    if (sentTypes.length === 0) return { status: config.failedTypes.size > 0 ? 'failed' : 'unchanged', flushed: Promise.resolve() };
    this.metrics.proxyPushed((performance.now() - started) / 1000);
    const event: PushEvent = {
      proxyId: conn.proxy.id,
      connectionId: conn.id,
      typeUrls: sentTypes,
      version: snapshot.version,
      resources,
      bytes,
      cause,
    };
    this.log.debug('xds.push', {
      proxy: conn.proxy.id,
      connection: conn.id,
      types: sentTypes.map(shortTypeName),
      version: snapshot.version,
      resources,
      bytes,
      cause,
    });
    this.events.emit('push', event);
    return { status: 'pushed', flushed: this.withSendTimeout(Promise.all(writes)) };
  }

  private send(
    conn: AdsConnection,
    watched: WatchedResource,
    selection: PreparedList,
    response: PreparedList,
    version: string,
    changedAt: number | undefined,
    writes: Promise<void>[],
  ): number {
    const nonce = `${this.noncePrefix}-${(++this.nonceCounter).toString(36)}`;
    // The resources part is encoded once per list and shared; only the small header is per proxy.
    const message = encodeDiscoveryResponseWithBody(
      { version_info: version, type_url: watched.typeUrl, nonce, control_plane: { identifier: this.options.controlPlaneId ?? 'weft' } },
      response.body(),
    );
    const now = Date.now();
    watched.recordSent(nonce, version, selection, response.length, now, changedAt);
    this.metrics.responseSent(watched.typeUrl, message.length);
    const writeStarted = performance.now();
    writes.push(conn.write(message).then(() => this.metrics.sendCompleted((performance.now() - writeStarted) / 1000)));
    return message.length;
  }

  private withSendTimeout(flushed: Promise<unknown>): Promise<void> {
    const timeoutMs = this.options.sendTimeoutMs ?? 5000;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      flushed.then(
        () => {
          clearTimeout(timer);
          resolve();
        },
        () => {
          clearTimeout(timer);
          resolve();
        },
      );
    });
  }
}
