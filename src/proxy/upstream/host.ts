// One upstream endpoint: its address and health, in-flight count, outlier state and lazily
// created connection pools (one per upstream protocol). Its transport (plaintext or TLS, chosen
// per endpoint by transport_socket_matches) is part of its pool settings, so TLS and plaintext
// endpoints never share a connection.
import * as net from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { CompiledEndpoint, HealthStatus } from '../config/model';
import type { EndpointPeer } from '../telemetry/peer-metadata';
import type { PoolSettings } from './connection-pool';
import { Http1Connector } from './http1-connector';
import { Http2Connector } from './http2-connector';
import type { EndpointConnector } from './upstream-call';
import { upstreamClientTls } from './upstream-socket';

export interface HostStats {
  rqTotal: number;
  rqSuccess: number;
  rqError: number;
  rqTimeout: number;
  cxConnectFail: number;
  cxTotal: number;
}

function sameKeepalive(a: PoolSettings['tcpKeepalive'], b: PoolSettings['tcpKeepalive']): boolean {
  if (!a || !b) return a === b;
  return a.probes === b.probes && a.timeSeconds === b.timeSeconds && a.intervalSeconds === b.intervalSeconds;
}

/**
 * Outlier detection's per-host state (Envoy's DetectorHostMonitor): consecutive error counters,
 * the ejection flag, the ejection-time multiplier, and this interval's success-rate buckets.
 */
export class HostOutlierState {
  ejected = false;
  /** Ejection-time multiplier: grows with each ejection, shrinks while the host stays healthy. */
  ejectTimeBackoff = 0;
  /** Ejections so far (for /clusters and tests). */
  ejections = 0;
  lastEjectionTime = 0;
  lastUnejectionTime = 0;
  /** Jitter added to this ejection's duration. */
  jitterMs = 0;
  consecutive5xx = 0;
  consecutiveGatewayFailure = 0;
  consecutiveLocalOriginFailure = 0;
  /** Current interval: requests and successes, external (HTTP) and local origin. */
  externalTotal = 0;
  externalSuccess = 0;
  localTotal = 0;
  localSuccess = 0;
  /** Success rates (percent) of the last complete interval; -1 when the volume was too low. */
  externalSuccessRate = -1;
  localSuccessRate = -1;
}

export function endpointKey(address: string, port: number): string {
  return net.isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}

export class Host {
  readonly key: string;
  weight: number;
  health: HealthStatus;
  locality?: string;
  priority: number;
  hostname?: string;
  /** Who the endpoint is (EDS metadata), for telemetry and metadata exchange. */
  peer?: EndpointPeer;
  /** In-flight requests. */
  active = 0;
  readonly stats: HostStats = { rqTotal: 0, rqSuccess: 0, rqError: 0, rqTimeout: 0, cxConnectFail: 0, cxTotal: 0 };
  /** The locality group's weight (locality-weighted clusters). */
  localityWeight?: number;
  /** Outlier detection's view of this host (outlier-detector.ts); kept across cluster updates. */
  readonly outlier = new HostOutlierState();

  private h1: Http1Connector | null = null;
  private h2: Http2Connector | null = null;

  constructor(
    readonly address: string,
    readonly port: number,
    endpoint: Pick<CompiledEndpoint, 'weight' | 'health' | 'locality' | 'priority' | 'hostname' | 'peer' | 'localityWeight'>,
    readonly pool: PoolSettings,
  ) {
    this.key = endpointKey(address, port);
    this.weight = endpoint.weight;
    this.health = endpoint.health;
    this.locality = endpoint.locality;
    this.localityWeight = endpoint.localityWeight;
    this.priority = endpoint.priority;
    this.hostname = endpoint.hostname;
    this.peer = endpoint.peer;
  }

  /** EDS health: UNHEALTHY, DRAINING and TIMEOUT hosts take no new requests. */
  get edsHealthy(): boolean {
    return this.health === 'HEALTHY' || this.health === 'UNKNOWN' || this.health === 'DEGRADED';
  }

  /** Envoy's FAILED_OUTLIER_CHECK health flag. */
  get ejected(): boolean {
    return this.outlier.ejected;
  }

  /** Takes requests: healthy by EDS and not ejected by outlier detection. */
  get usable(): boolean {
    return this.edsHealthy && !this.outlier.ejected;
  }

  update(endpoint: Pick<CompiledEndpoint, 'weight' | 'health' | 'locality' | 'priority' | 'hostname' | 'peer' | 'localityWeight'>): void {
    this.weight = endpoint.weight;
    this.health = endpoint.health;
    this.locality = endpoint.locality;
    this.localityWeight = endpoint.localityWeight;
    this.priority = endpoint.priority;
    this.hostname = endpoint.hostname;
    this.peer = endpoint.peer;
  }

  connector(protocol: 'http1' | 'http2'): EndpointConnector {
    // A request that picked this host just before it was retired still gets a pool; its idle
    // connections close by themselves.
    if (protocol === 'http2') return (this.h2 ??= new Http2Connector(`${this.pool.tls ? 'https' : 'http'}://${this.key}`, this, this.pool));
    return (this.h1 ??= new Http1Connector(this, this.pool));
  }

  connections(): number {
    return (this.h1?.connections() ?? 0) + (this.h2?.connections() ?? 0);
  }

  /**
   * node:tls options for a raw (tcp_proxy) connection to this endpoint now; undefined for
   * plaintext. Throws an UpstreamFailure (connect-failure) when an SDS secret is missing.
   */
  tlsConnectOptions(): ConnectionOptions | undefined {
    return this.pool.tls ? upstreamClientTls(this.pool.tls, this.pool.contexts).options : undefined;
  }

  /** Whether a replacement host with `pool` settings may keep this host's connections. */
  samePoolSettings(pool: PoolSettings): boolean {
    const p = this.pool;
    return (
      p.resources === pool.resources &&
      p.connectTimeoutMs === pool.connectTimeoutMs &&
      p.idleTimeoutMs === pool.idleTimeoutMs &&
      p.maxRequestsPerConnection === pool.maxRequestsPerConnection &&
      p.maxConnectionDurationMs === pool.maxConnectionDurationMs &&
      p.maxConcurrentStreams === pool.maxConcurrentStreams &&
      sameKeepalive(p.tcpKeepalive, pool.tcpKeepalive) &&
      p.tls === pool.tls &&
      p.contexts === pool.contexts
    );
  }

  /** Lets in-flight requests finish, then closes the pools. */
  async close(): Promise<void> {
    const h1 = this.h1;
    const h2 = this.h2;
    this.h1 = this.h2 = null;
    await Promise.all([h1?.close(), h2?.close()]);
  }

  destroy(): void {
    this.h1?.destroy();
    this.h2?.destroy();
    this.h1 = this.h2 = null;
  }
}
