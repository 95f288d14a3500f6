// Envoy's tcp_proxy network filter: pick a cluster (or a weighted one), a host from its load
// balancer, connect (retrying up to max_connect_attempts), then pipe bytes both ways with
// half-close, an idle timeout, and an access log record when the connection ends.
import * as net from 'node:net';
import * as tls from 'node:tls';
import { tlsConnectOptions } from '../config/upstream-tls';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { TcpProxyConfig } from '../config/model';
import { formatAccessLog, formatJsonAccessLog, type RequestRecord } from '../access-log';
import type { HttpRuntime } from '../http/http-stream';
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
}

export function proxyTcp(downstream: Duplex & { remoteAddress?: string; localAddress?: string }, config: TcpProxyConfig, runtime: HttpRuntime, ctx: TcpProxyContext): void {
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
  const flags: string[] = [];
  let upstream: net.Socket | null = null;
  let upstreamHost: string | undefined;
  let rx = 0;
  let tx = 0;
  let finished = false;
  let countedActive = false;

  const finish = () => {
    if (finished) return;
    finished = true;
    stats.downstream_cx_active--;
    stats.downstream_cx_rx_bytes_total += rx;
    stats.downstream_cx_tx_bytes_total += tx;
    if (countedActive && cluster) cluster.counters.activeRequests--;
    for (const f of flags) runtime.stats.flag(f);
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
      details: flags.length ? 'connection_failure' : 'via_upstream',
      upstreamCluster: clusterName,
      upstreamHost,
      attempts: 1,
      bytesReceived: rx,
      bytesSent: tx,
      downstreamRemoteAddress: downstream.remoteAddress ?? '',
      downstreamLocalAddress: downstream.localAddress ?? '',
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
    const tlsSettings = cluster.config.tls;
    // TLS origination (a DestinationRule tls mode on a TCP service): the upstream leg is TLS.
    const socket: net.Socket = tlsSettings
      ? tls.connect({ host: host.address, port: host.port, ...tlsConnectOptions(tlsSettings) })
      : net.connect({ host: host.address, port: host.port, allowHalfOpen: true });
    socket.setNoDelay(true);
    const connectTimer = setTimeout(() => socket.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), cluster.config.connectTimeoutMs || 10_000);
    let connected = false;
    socket.once(tlsSettings ? 'secureConnect' : 'connect', () => {
      connected = true;
      clearTimeout(connectTimer);
      upstream = socket;
      upstreamHost = host.key;
      cluster.stats.upstream_rq_total++;
      ctx.onUpstreamConnected?.();
      if (ctx.head && ctx.head.length) {
        rx += ctx.head.length;
        socket.write(ctx.head);
      }
      downstream.on('data', (c: Buffer) => {
        rx += c.length;
        if (!socket.write(c)) downstream.pause();
      });
      socket.on('drain', () => downstream.resume());
      downstream.once('end', () => socket.end());
      socket.on('data', (c: Buffer) => {
        tx += c.length;
        if (!downstream.write(c)) socket.pause();
      });
      downstream.on('drain', () => socket.resume());
      socket.once('end', () => downstream.end());
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
