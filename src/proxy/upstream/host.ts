// One upstream endpoint: its address and health, in-flight count, outlier state and lazily
// created connection pools (one per upstream protocol). Its transport (plaintext or TLS, chosen
// per endpoint by transport_socket_matches) is part of its pool settings, so TLS and plaintext
// endpoints never share a connection.
import * as net from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { CompiledEndpoint, HealthStatus } from '../config/model';
import type { EndpointPeer } from '../telemetry/peer-metadata';
import { Http1Connector, upstreamClientTls, type PoolSettings } from './http1-connector';
import { Http2Connector } from './http2-connector';
import type { EndpointConnector } from './upstream-call';

export interface HostStats {
  rqTotal: number;
  rqSuccess: number;
  rqError: number;
  rqTimeout: number;
  cxConnectFail: number;
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
  readonly stats: HostStats = { rqTotal: 0, rqSuccess: 0, rqError: 0, rqTimeout: 0, cxConnectFail: 0 };
  // Outlier detection state (see outlier-detector.ts).
  ejectedUntil = 0;
  ejections = 0;
  consecutive5xx = 0;
  consecutiveGatewayFailure = 0;
  consecutiveLocalOriginFailure = 0;

  private h1: Http1Connector | null = null;
  private h2: Http2Connector | null = null;
  private closed = false;

  constructor(
    readonly address: string,
    readonly port: number,
    endpoint: Pick<CompiledEndpoint, 'weight' | 'health' | 'locality' | 'priority' | 'hostname' | 'peer'>,
    readonly pool: PoolSettings,
  ) {
    this.key = endpointKey(address, port);
    this.weight = endpoint.weight;
    this.health = endpoint.health;
    this.locality = endpoint.locality;
    this.priority = endpoint.priority;
    this.hostname = endpoint.hostname;
    this.peer = endpoint.peer;
  }

  /** EDS health: UNHEALTHY, DRAINING and TIMEOUT hosts take no new requests. */
  get edsHealthy(): boolean {
    return this.health === 'HEALTHY' || this.health === 'UNKNOWN' || this.health === 'DEGRADED';
  }

  isEjected(now: number): boolean {
    return this.ejectedUntil > now;
  }

  update(endpoint: Pick<CompiledEndpoint, 'weight' | 'health' | 'locality' | 'priority' | 'hostname' | 'peer'>): void {
    this.weight = endpoint.weight;
    this.health = endpoint.health;
    this.locality = endpoint.locality;
    this.priority = endpoint.priority;
    this.hostname = endpoint.hostname;
    this.peer = endpoint.peer;
  }

  connector(protocol: 'http1' | 'http2'): EndpointConnector {
    const origin = `${this.pool.tls ? 'https' : 'http'}://${this.key}`;
    if (protocol === 'http2') {
      if (!this.h2 || this.closed) {
        this.h2 = new Http2Connector(origin, {
          connectTimeoutMs: this.pool.connectTimeoutMs,
          idleTimeoutMs: this.pool.idleTimeoutMs,
          maxRequestsPerConnection: this.pool.maxRequestsPerConnection,
          tls: this.pool.tls,
          contexts: this.pool.contexts,
        });
      }
      return this.h2;
    }
    if (!this.h1 || this.closed) this.h1 = new Http1Connector(origin, this.pool);
    return this.h1;
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
      p.maxConnections === pool.maxConnections &&
      p.connectTimeoutMs === pool.connectTimeoutMs &&
      p.idleTimeoutMs === pool.idleTimeoutMs &&
      p.maxRequestsPerConnection === pool.maxRequestsPerConnection &&
      p.tls === pool.tls &&
      p.contexts === pool.contexts
    );
  }

  /** Lets in-flight requests finish, then closes the pools. */
  async close(): Promise<void> {
    this.closed = true;
    const h1 = this.h1;
    const h2 = this.h2;
    this.h1 = this.h2 = null;
    await Promise.all([h1?.close(), h2?.close()]);
  }

  destroy(): void {
    this.closed = true;
    this.h1?.destroy();
    this.h2?.destroy();
    this.h1 = this.h2 = null;
  }
}
