// Envoy's tcp_proxy network filter: the network RBAC filters ahead of it decide first (a denied
// connection is closed), then pick a cluster (or a weighted one), a host from its load balancer,
// connect (retrying up to max_connect_attempts), then pipe bytes both ways with half-close, an
// idle timeout, and an access log record when the connection ends. With telemetry on, Istio's
// TCP metrics, and Istio's metadata exchange preamble on mesh mTLS connections that negotiated
// `istio-peer-exchange` (both ends: telemetry/tcp-peer-exchange.ts).
import * as net from 'node:net';
import * as tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { DownstreamTlsInfo, TcpProxyConfig } from '../config/model';
import { addressBytes, evaluateRbac, rbacDeniedDetails, type AuthzSubject, type NetworkRbacConfig } from '../config/rbac';
import { formatAccessLog, formatJsonAccessLog, type RequestRecord } from '../access-log';
import type { HttpRuntime } from '../http/http-stream';
import { COMMON_METADATA, rbacCounters, shadowMetadata } from '../http/rbac-filter';
import { downstreamTlsInfo, parseSubjectAltNames } from '../listener/downstream-tls-info';
import { PEER_EXCHANGE_ALPN, PeerPreambleReader } from '../telemetry/tcp-peer-exchange';
import { murmur3 } from '../upstream/hash';
import type { Host } from '../upstream/host';

export interface TcpProxyContext {
  listenerName: string;
  /** Bytes already read from the downstream (sniffed, or the rest of a CONNECT request). */
  head?: Buffer;
  /** For CONNECT tunnels: the reply to send once the upstream connected. */
  onUpstreamConnected?: () => void;
  onUpstreamFailed?: () => void;
  /** The destination an ORIGINAL_DST cluster dials (a CONNECT target, or the original destination). */
  target?: { host: string; port: number };
  /** SNI of a sniffed ClientHello (TLS passthrough chains), for RBAC requested_server_name. */
  serverName?: string;
}

/** Envoy's network RBAC metadata namespace. */
export const NETWORK_RBAC_METADATA = 'envoy.filters.network.rbac';

type Downstream = Duplex & { remoteAddress?: string; localAddress?: string; localPort?: number };

/** A connection as RBAC matchers see it: addresses, SNI and peer identity; no headers. */
class ConnectionAuthzSubject implements AuthzSubject {
  readonly request = undefined;
  readonly tls: DownstreamTlsInfo | undefined;
  readonly requestedServerName: string;
  readonly destinationPort: number;
  private readonly remote: Uint8Array | undefined;
  private readonly destination: Uint8Array | undefined;

  constructor(socket: Downstream, ctx: TcpProxyContext) {
    this.tls = socket instanceof net.Socket ? downstreamTlsInfo(socket) : undefined;
    this.requestedServerName = ctx.serverName ?? this.tls?.serverName ?? '';
    this.destinationPort = ctx.target?.port || socket.localPort || 0;
    this.destination = addressBytes(ctx.target?.host || socket.localAddress);
    this.remote = addressBytes(socket.remoteAddress);
  }
  destinationIp(): Uint8Array | undefined {
    return this.destination;
  }
  directRemoteIp(): Uint8Array | undefined {
    return this.remote;
  }
  remoteIp(): Uint8Array | undefined {
    return this.remote; // no x-forwarded-for on a connection
  }
  metadata(): undefined {
    return undefined;
  }
}

function statPrefixJoin(prefix: string, suffix: string): string {
  return !prefix || prefix.endsWith('.') ? prefix + suffix : `${prefix}.${suffix}`;
}

/**
 * The network RBAC filters in order, once, when the connection is accepted (Envoy:
 * ONE_TIME_ON_FIRST_BYTE). Returns the denial details, or undefined when the connection may go on.
 */
function enforceNetworkRbac(
  filters: readonly NetworkRbacConfig[],
  subject: AuthzSubject,
  runtime: HttpRuntime,
  metadata: Map<string, Record<string, unknown>>,
): string | undefined {
  for (const f of filters) {
    const counters = rbacCounters(runtime.stats, f, 'network', () => {
      const text = statPrefixJoin(f.statPrefix, 'rbac.');
      return { text, prom: 'envoy_' + text.replace(/[^A-Za-z0-9_]/g, '_'), labels: {} };
    });
    if (f.shadowRules) {
      const d = evaluateRbac(f.shadowRules, subject);
      (d.allowed ? counters.shadowAllowed : counters.shadowDenied).value++;
      metadata.set(NETWORK_RBAC_METADATA, { ...metadata.get(NETWORK_RBAC_METADATA), ...shadowMetadata(f, d) });
      if (f.shadowRules.action === 'LOG') metadata.set(COMMON_METADATA, { access_log_hint: d.matchedPolicy !== undefined });
    }
    if (!f.rules) continue;
    const d = evaluateRbac(f.rules, subject);
    if (f.rules.action === 'LOG') metadata.set(COMMON_METADATA, { access_log_hint: d.matchedPolicy !== undefined });
    if (d.allowed) counters.allowed.value++;
    else {
      counters.denied.value++;
      return rbacDeniedDetails(d);
    }
  }
  return undefined;
}

export function proxyTcp(downstream: Downstream, config: TcpProxyConfig, runtime: HttpRuntime, ctx: TcpProxyContext): void {
  const stats = runtime.stats.tcp(config.statPrefix);
  stats.downstream_cx_total++;
  stats.downstream_cx_active++;
  const startTime = Date.now();
  const startHr = performance.now();
  let clusterName = config.cluster;
  if (config.weighted) {
    const target = runtime.random() * config.weighted.total;
    let i = 0;
    while (i < config.weighted.cumulative.length - 1 && config.weighted.cumulative[i] <= target) i++;
    clusterName = config.weighted.names[i];
  }
  const cluster = clusterName ? runtime.clusters.get(clusterName) : undefined;
  const downstreamTls = downstream instanceof net.Socket ? downstreamTlsInfo(downstream) : undefined;
  const inbound = config.trafficDirection === 'INBOUND';
  const tel = runtime.telemetry?.tcpConnection(inbound, clusterName, downstreamTls);
  // Server side of Istio's TCP metadata exchange: the client's preamble comes first on the wire.
  // It is never application data, so it is taken off even with telemetry off (then this side
  // sends none of its own).
  const fromPeer = inbound && (downstream as tls.TLSSocket).alpnProtocol === PEER_EXCHANGE_ALPN ? new PeerPreambleReader() : undefined;
  let preambleSent = false;
  const logged = config.accessLogs.length > 0 || runtime.onRequest !== undefined;
  let upstreamLocalAddress: string | undefined;
  let upstreamPeerUriSan: string | undefined;
  const flags: string[] = [];
  let upstream: net.Socket | null = null;
  let upstreamHost: string | undefined;
  let rx = 0;
  let tx = 0;
  let finished = false;
  let countedActive = false;
  /** Set when a network filter closed the connection (Envoy's connection termination details). */
  let terminationDetails: string | undefined;
  let metadata: Map<string, Record<string, unknown>> | undefined;

  const finish = () => {
    if (finished) return;
    finished = true;
    stats.downstream_cx_active--;
    stats.downstream_cx_rx_bytes_total += rx;
    stats.downstream_cx_tx_bytes_total += tx;
    if (countedActive && cluster) cluster.counters.activeRequests--;
    for (const f of flags) runtime.stats.flag(f);
    tel?.close(flags);
    if (config.accessLogs.length === 0 && !runtime.onRequest) return;
    const record: RequestRecord = {
      startTime,
      durationMs: performance.now() - startHr,
      listener: ctx.listenerName,
      protocol: 'TCP',
      method: '',
      path: '',
      authority: '',
      status: 0,
      flags,
      details: terminationDetails ?? (flags.length ? 'connection_failure' : 'via_upstream'),
      upstreamCluster: clusterName,
      upstreamHost,
      attempts: 1,
      bytesReceived: rx,
      bytesSent: tx,
      downstreamRemoteAddress: downstream.remoteAddress ?? '',
      downstreamRemotePort: (downstream as net.Socket).remotePort,
      downstreamLocalAddress: downstream.localAddress ?? '',
      downstreamLocalPort: (downstream as net.Socket).localPort,
      upstreamLocalAddress,
      requestedServerName: ctx.serverName ?? downstreamTls?.serverName,
      downstreamPeerUriSan: downstreamTls?.peerUriSans[0],
      upstreamPeerUriSan,
      rbacAudit: metadata?.get(COMMON_METADATA)?.access_log_hint === true ? true : undefined,
      dynamicMetadata: metadata,
    };
    for (const log of config.accessLogs) {
      runtime.accessLogs.writer(log.path).write(log.jsonFormat ? formatJsonAccessLog(record, log.jsonFormat) : formatAccessLog(record, log.format));
    }
    runtime.onRequest?.(record);
  };
  const fail = (flag: string) => {
    flags.push(flag);
    ctx.onUpstreamFailed?.();
    downstream.destroy();
    finish();
  };

  downstream.on('error', () => undefined);
  downstream.once('close', (hadError: boolean) => {
    if (hadError) upstream?.destroy();
    else upstream?.end();
    finish();
  });
  if (config.rbac) {
    metadata = new Map();
    terminationDetails = enforceNetworkRbac(config.rbac, new ConnectionAuthzSubject(downstream, ctx), runtime, metadata);
    if (terminationDetails) {
      downstream.destroy();
      finish();
      return;
    }
  }
  if (!cluster) {
    fail('NC');
    return;
  }
  if (cluster.counters.activeRequests >= cluster.config.thresholds.maxConnections) {
    cluster.stats.upstream_cx_overflow++;
    fail('UO');
    return;
  }
  cluster.counters.activeRequests++;
  countedActive = true;
  // Hold the downstream's bytes until the upstream is there.
  downstream.pause();
  const tried = new Set<Host>();
  let attempts = 0;

  const connect = () => {
    attempts++;
    const hash = cluster.config.lbPolicy === 'RING_HASH' || cluster.config.lbPolicy === 'MAGLEV' ? murmur3(downstream.remoteAddress ?? '') : undefined;
    let host: Host | undefined;
    if (cluster.config.type === 'ORIGINAL_DST') {
      const t = ctx.target ?? { host: downstream.localAddress ?? '', port: (downstream as net.Socket).localPort ?? 0 };
      // A connection whose original destination is this very listener (nothing redirected it)
      // would loop back into the proxy forever.
      const self = t.host === downstream.localAddress && t.port === (downstream as net.Socket).localPort;
      host = t.host && !self ? cluster.originalDestination(t.host, t.port) : undefined;
    } else host = cluster.pickHost(hash, tried, 3);
    if (!host) {
      cluster.stats.upstream_cx_none_healthy++;
      fail('UH');
      return;
    }
    tried.add(host);
    host.active++;
    // TLS origination (a DestinationRule tls mode, or Istio mTLS chosen per endpoint by
    // transport_socket_matches): the upstream leg is TLS. A missing SDS secret fails the attempt.
    let tlsOptions: tls.ConnectionOptions | undefined;
    let tlsError: Error | undefined;
    try {
      tlsOptions = host.tlsConnectOptions();
    } catch (err) {
      tlsError = err as Error;
    }
    const socket: net.Socket = tlsError
      ? new net.Socket()
      : tlsOptions
        ? tls.connect({ host: host.address, port: host.port, ...tlsOptions })
        : net.connect({ host: host.address, port: host.port, allowHalfOpen: true });
    if (tlsError) process.nextTick(() => socket.destroy(tlsError));
    socket.setNoDelay(true);
    const connectTimer = setTimeout(() => socket.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), cluster.config.connectTimeoutMs || 10_000);
    let connected = false;
    socket.once(tlsOptions ? 'secureConnect' : 'connect', () => {
      connected = true;
      clearTimeout(connectTimer);
      upstream = socket;
      upstreamHost = host.key;
      cluster.stats.upstream_rq_total++;
      if (logged) {
        upstreamLocalAddress = socket.localAddress ? `${socket.localAddress}:${socket.localPort}` : undefined;
        if (tlsOptions) upstreamPeerUriSan = parseSubjectAltNames((socket as tls.TLSSocket).getPeerCertificate().subjectaltname).find((s) => s.type === 'URI')?.value;
      }
      // Client side of Istio's TCP metadata exchange: our preamble goes first (telemetry on), the
      // server's is read off the front of what comes back (always: it is not application data).
      const fromUpstreamPeer =
        !inbound && tlsOptions && (socket as tls.TLSSocket).alpnProtocol === PEER_EXCHANGE_ALPN ? new PeerPreambleReader() : undefined;
      if (tel) {
        tel.upstreamHost = host;
        if (fromUpstreamPeer) socket.write(tel.preamble);
        else if (!fromPeer) tel.open();
      }
      ctx.onUpstreamConnected?.();
      if (ctx.head && ctx.head.length) {
        rx += ctx.head.length;
        tel?.received(ctx.head.length);
        socket.write(ctx.head);
      }
      const toUpstream = (c: Buffer) => {
        rx += c.length;
        tel?.received(c.length);
        if (!socket.write(c)) downstream.pause();
      };
      downstream.on('data', (c: Buffer) => {
        if (fromPeer && !fromPeer.done) {
          c = fromPeer.push(c);
          if (fromPeer.done && tel) {
            tel.peer = fromPeer.peer;
            // Answer a client that sent its preamble (and only such a client) with ours.
            if (fromPeer.peer && !preambleSent) {
              preambleSent = true;
              downstream.write(tel.preamble);
            }
            tel.open();
          }
          if (c.length === 0) return;
        }
        toUpstream(c);
      });
      socket.on('drain', () => downstream.resume());
      downstream.once('end', () => {
        if (fromPeer && !fromPeer.done) {
          const rest = fromPeer.flush();
          if (rest.length) toUpstream(rest);
        }
        socket.end();
      });
      const toDownstream = (c: Buffer) => {
        tx += c.length;
        tel?.sent(c.length);
        if (!downstream.write(c)) socket.pause();
      };
      socket.on('data', (c: Buffer) => {
        if (fromUpstreamPeer && !fromUpstreamPeer.done) {
          c = fromUpstreamPeer.push(c);
          if (fromUpstreamPeer.done && tel) {
            tel.peer = fromUpstreamPeer.peer;
            tel.open();
          }
          if (c.length === 0) return;
        }
        // Istio's server writes its preamble before the first byte it sends, if it has not yet.
        if (tel && fromPeer && !fromPeer.done && !preambleSent) {
          preambleSent = true;
          downstream.write(tel.preamble);
        }
        toDownstream(c);
      });
      downstream.on('drain', () => socket.resume());
      socket.once('end', () => {
        if (fromUpstreamPeer && !fromUpstreamPeer.done) {
          const rest = fromUpstreamPeer.flush();
          if (rest.length) toDownstream(rest);
        }
        downstream.end();
      });
      downstream.resume();
      if (config.idleTimeoutMs > 0) {
        let lastRx = -1;
        let lastTx = -1;
        // Idle: no bytes either way for idle_timeout (checked at a quarter of the period).
        const idle = setInterval(() => {
          if (rx === lastRx && tx === lastTx) {
            stats.idle_timeout++;
            socket.destroy();
            downstream.destroy();
            clearInterval(idle);
          }
          lastRx = rx;
          lastTx = tx;
        }, Math.max(50, config.idleTimeoutMs));
        idle.unref();
        socket.once('close', () => clearInterval(idle));
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(connectTimer);
      if (connected) return; // 'close' follows
      void err;
      host.active--;
      host.stats.cxConnectFail++;
      cluster.stats.upstream_cx_connect_fail++;
      stats.upstream_connect_fail++;
      cluster.recordOutcome(host, { kind: 'local-origin-failure' });
      if (finished) return;
      if (attempts < config.maxConnectAttempts) connect();
      else {
        if (attempts > 1) stats.upstream_connect_attempts_exceeded++;
        fail('UF');
      }
    });
    socket.once('close', (hadError: boolean) => {
      if (!connected) return;
      host.active--;
      if (hadError) downstream.destroy();
      else downstream.end();
      finish();
    });
  };
  connect();
}
