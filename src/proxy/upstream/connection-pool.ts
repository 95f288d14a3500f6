// One endpoint's connection pool, as Envoy's ConnPoolImplBase: a request goes to a connection with
// room for it, else waits as a pending request while connections are opened within the cluster's
// circuit breakers (max_connections, max_pending_requests, max_requests; beyond them it fails at
// once with `overflow`, Envoy's UO). Connections close after max_requests_per_connection requests
// or max_connection_duration, and a failed connect fails every request waiting here. The HTTP/1.1
// and HTTP/2 pools differ only in what a connection is and how many requests it carries at once.
import type * as net from 'node:net';
import type { HostStats } from './host';
import type { ClusterResources } from './cluster-resources';
import { connectUpstream, TlsSessionCache, type PendingSocket, type SocketSettings } from './upstream-socket';
import { UpstreamFailure, type EndpointConnector, type UpstreamCall, type UpstreamHandler, type UpstreamRequest } from './upstream-call';

export interface PoolSettings extends SocketSettings {
  idleTimeoutMs: number;
  /** 0: unlimited. */
  maxRequestsPerConnection: number;
  /** 0: none. */
  maxConnectionDurationMs: number;
  /** HTTP/2 streams per connection; 0: as many as the peer allows. */
  maxConcurrentStreams: number;
  /** The cluster's circuit breakers and stats, shared by every pool of the cluster. */
  resources: ClusterResources;
}

/** The endpoint a pool connects to. */
export interface PoolEndpoint {
  readonly address: string;
  readonly port: number;
  readonly stats: HostStats;
}

/** One upstream connection in a pool. */
export abstract class PooledConnection {
  /** Requests on it now. */
  active = 0;
  /** Requests it has been given, ever. */
  served = 0;
  /** Takes no new requests; closes when the last one ends. */
  draining = false;
  /** Left the pool (closed, or taken over by an upgrade). */
  removed = false;
  /** Still counted in the cluster's open connections. */
  counted = true;
  /** Closed by the proxy rather than by the upstream. */
  closedLocally = false;
  durationTimer: NodeJS.Timeout | null = null;

  constructor(readonly socket: net.Socket) {}

  /** Requests it may carry at once now. */
  abstract capacity(): number;
  /** Closes now (in-flight requests fail). */
  abstract destroy(): void;
}

/** A request handed to a pool: waiting for a connection, then on one. */
export abstract class PooledRequest<C extends PooledConnection> implements UpstreamCall {
  conn: C | null = null;
  waiting = false;
  /** The connection had carried requests before this one. */
  reused = false;
  /** No more handler calls: the request ended, failed, or was aborted. */
  finished = false;

  constructor(
    readonly request: UpstreamRequest,
    readonly handler: UpstreamHandler,
  ) {}

  /** Reports a failure once; later events for this request are dropped. */
  fail(failure: UpstreamFailure): void {
    if (this.finished) return;
    this.finished = true;
    this.handler.onError(failure);
  }

  abstract abort(): void;
  abstract resume(): void;
}

const UNLIMITED = 2 ** 31;

export abstract class ConnectionPool<C extends PooledConnection> implements EndpointConnector {
  /** Connections with room for another request, most recently used last. */
  private readonly ready: C[] = [];
  private readonly open = new Set<C>();
  private readonly waiting: PooledRequest<C>[] = [];
  private readonly connecting = new Set<PendingSocket>();
  private closing = false;
  private closeWaiters: (() => void)[] = [];
  protected readonly sessions = new TlsSessionCache();

  /** What this pool speaks (ALPN) and the stat counting its connections. */
  protected abstract readonly alpn: 'http/1.1' | 'h2';
  protected abstract readonly totalStat: 'upstream_cx_http1_total' | 'upstream_cx_http2_total';

  constructor(
    protected readonly endpoint: PoolEndpoint,
    protected readonly settings: PoolSettings,
  ) {}

  /** Wraps a connected socket into a pool connection. */
  protected abstract wrap(socket: net.Socket): C;
  /** Sends `req` on `conn` (which has room for it). */
  protected abstract start(conn: C, req: PooledRequest<C>): void;
  /** How many requests a connection being opened will take at once (HTTP/1.1: one). */
  protected abstract expectedCapacity(): number;
  abstract dispatch(request: UpstreamRequest, handler: UpstreamHandler): UpstreamCall;

  protected get resources(): ClusterResources {
    return this.settings.resources;
  }

  /** Envoy's newStream: a connection with room, else a pending request, else overflow. */
  protected submit(req: PooledRequest<C>): void {
    const res = this.resources;
    if (this.closing) {
      queueMicrotask(() => req.fail(new UpstreamFailure('connection-termination', 'endpoint is closing', true)));
      return;
    }
    if (!res.canSendRequest()) return this.overflow(req, 'max_requests');
    const conn = this.takeReady(req.request.freshConnection === true);
    if (conn) {
      this.attach(conn, req);
      return;
    }
    if (!res.canQueueRequest()) return this.overflow(req, 'max_pending_requests');
    req.waiting = true;
    this.waiting.push(req);
    res.pendingRequests++;
    res.stats.upstream_rq_pending_total++;
    this.openAsNeeded();
  }

  private overflow(req: PooledRequest<C>, which: string): void {
    // Envoy counts both max_requests and max_pending_requests overflows here.
    this.resources.stats.upstream_rq_pending_overflow++;
    queueMicrotask(() => req.fail(new UpstreamFailure('overflow', `circuit breaker ${which} reached`, true)));
  }

  private takeReady(fresh: boolean): C | undefined {
    for (let i = this.ready.length - 1; i >= 0; i--) {
      const conn = this.ready[i];
      if (conn.removed || conn.draining || conn.socket.destroyed) {
        this.ready.splice(i, 1);
        continue;
      }
      if (fresh && conn.served > 0) continue;
      if (conn.active + 1 >= conn.capacity()) this.ready.splice(i, 1);
      return conn;
    }
    return undefined;
  }

  private attach(conn: C, req: PooledRequest<C>): void {
    if (req.waiting) {
      req.waiting = false;
      this.resources.pendingRequests--;
    }
    conn.active++;
    conn.served++;
    this.resources.requests++;
    req.conn = conn;
    req.reused = conn.served > 1;
    const max = this.settings.maxRequestsPerConnection;
    if (max > 0 && conn.served >= max) conn.draining = true;
    this.start(conn, req);
  }

  /** Opens connections until those being opened can take every waiting request. */
  private openAsNeeded(): void {
    const res = this.resources;
    const perConnection = Math.max(1, this.expectedCapacity());
    while (this.waiting.length > 0 && (this.connecting.size === 0 || this.connecting.size * perConnection < this.waiting.length)) {
      if (!res.canOpenConnection(this.open.size + this.connecting.size > 0)) {
        res.stats.upstream_cx_overflow++;
        return;
      }
      this.connect();
    }
  }

  private connect(): void {
    const res = this.resources;
    res.connections++;
    res.stats.upstream_cx_total++;
    res.stats[this.totalStat]++;
    this.endpoint.stats.cxTotal++;
    const attempt = connectUpstream(this.endpoint.address, this.endpoint.port, this.settings, this.alpn, this.sessions, (err, socket, timedOut) => {
      this.connecting.delete(attempt);
      if (err || !socket) {
        res.connections--;
        res.stats.upstream_cx_connect_fail++;
        if (timedOut) res.stats.upstream_cx_connect_timeout++;
        this.endpoint.stats.cxConnectFail++;
        // Envoy: a failed connect fails every waiting request, so the router can retry elsewhere
        // instead of leaving them stuck behind an upstream that does not answer.
        this.failWaiting(err ?? new UpstreamFailure('connect-failure', 'no socket', true));
        this.settleClose();
        return;
      }
      const conn = this.wrap(socket);
      this.open.add(conn);
      socket.once('close', () => this.connectionClosed(conn));
      if (this.settings.maxConnectionDurationMs > 0) {
        conn.durationTimer = setTimeout(() => {
          conn.durationTimer = null;
          if (conn.removed) return;
          res.stats.upstream_cx_max_duration_reached++;
          conn.draining = true;
          if (conn.active === 0) this.closeConnection(conn);
        }, this.settings.maxConnectionDurationMs);
        conn.durationTimer.unref();
      }
      this.hasRoom(conn);
    });
    this.connecting.add(attempt);
  }

  private failWaiting(failure: UpstreamFailure): void {
    const failed = this.waiting.splice(0);
    this.resources.pendingRequests -= failed.length;
    this.resources.stats.upstream_rq_pending_failure_eject += failed.length;
    for (const req of failed) {
      req.waiting = false;
      req.fail(failure);
    }
  }

  /** A connection has room (new, or a request ended): give it waiting requests, or keep it ready. */
  protected hasRoom(conn: C): void {
    if (conn.removed) return;
    if (conn.draining) {
      if (conn.active === 0) this.closeConnection(conn);
      return;
    }
    while (conn.active < conn.capacity() && !conn.draining) {
      const i = this.waiting.findIndex((r) => !r.request.freshConnection || conn.served === 0);
      if (i < 0) break;
      const [req] = this.waiting.splice(i, 1);
      this.attach(conn, req);
    }
    if (conn.draining) return;
    if (this.closing && conn.active === 0) {
      this.closeConnection(conn);
      return;
    }
    const at = this.ready.indexOf(conn);
    if (at >= 0) this.ready.splice(at, 1);
    if (conn.active < conn.capacity()) this.ready.push(conn);
  }

  /** A request left its connection. `reusable` false: the connection cannot carry another. */
  protected requestEnded(conn: C, reusable: boolean): void {
    conn.active--;
    this.resources.requests--;
    if (conn.removed) return;
    if (!reusable) {
      this.closeConnection(conn);
      return;
    }
    const max = this.settings.maxRequestsPerConnection;
    if (conn.draining && conn.active === 0 && max > 0 && conn.served >= max) this.resources.stats.upstream_cx_max_requests++;
    this.hasRoom(conn);
  }

  /** A waiting request gave up (aborted by the router). */
  protected cancelWaiting(req: PooledRequest<C>): void {
    if (!req.waiting) return;
    req.waiting = false;
    const i = this.waiting.indexOf(req);
    if (i >= 0) this.waiting.splice(i, 1);
    this.resources.pendingRequests--;
    this.settleClose();
  }

  /** Closes a connection from this side; its breaker slot is free at once, as in Envoy. */
  protected closeConnection(conn: C): void {
    if (conn.removed) return;
    conn.closedLocally = true;
    this.remove(conn);
    conn.destroy();
  }

  /** The connection left the pool but its socket lives on (an upgrade took it). */
  protected detach(conn: C): void {
    if (conn.removed) return;
    conn.removed = true;
    this.open.delete(conn);
    const at = this.ready.indexOf(conn);
    if (at >= 0) this.ready.splice(at, 1);
    if (conn.durationTimer) clearTimeout(conn.durationTimer);
    this.settleClose();
  }

  private remove(conn: C): void {
    if (!conn.removed) this.detach(conn);
    if (conn.counted) {
      conn.counted = false;
      const stats = this.resources.stats;
      this.resources.connections--;
      stats.upstream_cx_destroy++;
      if (conn.closedLocally) stats.upstream_cx_destroy_local++;
      else {
        stats.upstream_cx_destroy_remote++;
        if (conn.active > 0) stats.upstream_cx_destroy_remote_with_active_rq++;
      }
      // A freed slot may let a waiting request (of this endpoint) have a connection.
      if (!this.closing || this.waiting.length > 0) this.openAsNeeded();
    }
    this.settleClose();
  }

  /**
   * The connection was closed for being idle: it was ours, whether the socket's close was counted
   * already (as the upstream's doing) or comes after.
   */
  protected idleTimedOut(conn: C): void {
    const stats = this.resources.stats;
    stats.upstream_cx_idle_timeout++;
    if (conn.closedLocally) return;
    conn.closedLocally = true;
    if (!conn.counted) {
      stats.upstream_cx_destroy_remote--;
      stats.upstream_cx_destroy_local++;
    }
  }

  /** The socket closed (either side). */
  protected connectionClosed(conn: C): void {
    this.remove(conn);
  }

  connections(): number {
    return this.open.size + this.connecting.size;
  }

  /** Lets requests in flight and waiting finish, then closes every connection. */
  close(): Promise<void> {
    this.closing = true;
    for (const conn of [...this.open]) if (conn.active === 0) this.closeConnection(conn);
    return new Promise((resolve) => {
      this.closeWaiters.push(resolve);
      this.settleClose();
    });
  }

  /** Closes everything now; waiting requests fail. */
  destroy(): void {
    this.closing = true;
    for (const attempt of this.connecting) {
      attempt.cancel();
      this.resources.connections--;
    }
    this.connecting.clear();
    this.failWaiting(new UpstreamFailure('connection-termination', 'endpoint removed', true));
    for (const conn of [...this.open]) this.closeConnection(conn);
    this.settleClose();
  }

  private settleClose(): void {
    if (!this.closing || this.closeWaiters.length === 0) return;
    if (this.open.size > 0 || this.connecting.size > 0 || this.waiting.length > 0) return;
    const waiters = this.closeWaiters.splice(0);
    for (const w of waiters) w();
  }

  /** "No limit" for a connection's streams. */
  static readonly UNLIMITED = UNLIMITED;
}
