// One proxy's telemetry: its own workload identity, Istio's metadata exchange (HTTP headers on
// requests to mesh endpoints and on responses to mesh clients; the TCP preamble in
// tcp-peer-exchange.ts) and the standard metrics' labels, the way istio/proxy's stats filter
// fills them (reporter `source` on outbound listeners — sidecars and gateways — and
// `destination` on inbound ones; see docs/ARCHITECTURE.md for where Weft differs).
//
// The request path asks for an edge (a label set without the response part) by objects it
// already holds: the destination service (per cluster config), the peer (a decoded header from a
// bounded cache, or the endpoint's EDS metadata), the peer principal, and a slot for protocol and
// TLS. Labels are built only the first time an edge is seen.
import { performance } from 'node:perf_hooks';
import type { DownstreamTlsInfo, CompiledCluster } from '../config/model';
import type { HttpStream } from '../http/http-stream';
import { httpToGrpcStatus } from '../http/local-reply';
import type { ClusterManager } from '../upstream/cluster-manager';
import type { Host } from '../upstream/host';
import { IstioMetrics, UNKNOWN, type EdgeLabels, type HttpEdge, type PeerLabels, type TcpEdge, type TcpSeries } from './istio-metrics';
import {
  encodePeerHeader,
  PEER_METADATA_HEADER,
  PEER_METADATA_ID_HEADER,
  PeerMetadataCache,
  principalNamespace,
  workloadFromNode,
  type WorkloadMetadata,
} from './peer-metadata';
import { exchangePreamble } from './tcp-peer-exchange';

type HeaderMap = Record<string, string | string[] | undefined>;

export interface ProxyTelemetryOptions {
  /** The proxy's xDS node: id and metadata (NAMESPACE, WORKLOAD_NAME, LABELS, CLUSTER_ID). */
  node: { id: string; metadata?: Readonly<Record<string, unknown>> };
  /** The proxy's SPIFFE id, read when first needed (its certificate may arrive after start). */
  principal: () => string | undefined;
  clusters: ClusterManager;
  maxSeries?: number;
}

/** Istio's special clusters: their name is the destination_service_name. */
const SPECIAL_CLUSTERS: ReadonlySet<string> = new Set([
  'BlackHoleCluster',
  'PassthroughCluster',
  'InboundPassthroughCluster',
  'InboundPassthroughClusterIpv4',
  'InboundPassthroughClusterIpv6',
]);
/** Route names of Istio's catch-all virtual hosts and the cluster names they stand for. */
const SPECIAL_ROUTES: Readonly<Record<string, string>> = { block_all: 'BlackHoleCluster', allow_any: 'PassthroughCluster' };

/** Where a request went, as the destination_service labels name it. */
class DestinationService {
  readonly http = new EdgeCache<HttpEdge>();
  readonly tcp = new EdgeCache<TcpEdge>();
  constructor(
    /** destination_service: a host name; empty when unknown. */
    readonly host: string,
    /** destination_service_name. */
    readonly name: string,
  ) {}
}

/** Edges by peer object, peer principal and a small slot number (protocol and TLS). */
class EdgeCache<E> {
  private readonly byPeer = new WeakMap<object, Map<string, (E | undefined)[]>>();

  get(peer: object, principal: string, slot: number): E | undefined {
    return this.byPeer.get(peer)?.get(principal)?.[slot];
  }

  set(peer: object, principal: string, slot: number, edge: E): void {
    let byPrincipal = this.byPeer.get(peer);
    if (!byPrincipal) {
      byPrincipal = new Map();
      this.byPeer.set(peer, byPrincipal);
    }
    // Principals come from verified certificates, but bound the map all the same.
    if (byPrincipal.size > 1024) byPrincipal.clear();
    let slots = byPrincipal.get(principal);
    if (!slots) {
      slots = [];
      byPrincipal.set(principal, slots);
    }
    slots[slot] = edge;
  }
}

/** The key for "no peer metadata". */
const NO_PEER: object = Object.freeze({});

function or(value: string | undefined, fallback: string): string {
  return value ? value : fallback;
}

/** Names of a cluster's destination service: Istio's cluster metadata `istio.services[0]`, else the cluster name. */
function serviceOfCluster(config: CompiledCluster): DestinationService {
  const services = (config.raw as { metadata?: { filter_metadata?: { istio?: { services?: unknown } } } }).metadata?.filter_metadata?.istio?.services;
  const first = Array.isArray(services) ? (services[0] as { host?: unknown; name?: unknown } | undefined) : undefined;
  if (first && typeof first.host === 'string') {
    const name = typeof first.name === 'string' ? first.name : first.host.split('.')[0];
    return new DestinationService(first.host, name);
  }
  // `outbound|9080|v1|reviews.default.svc.cluster.local`: the host; a Kubernetes service is named
  // by its first label (Istio's services metadata says the same), any other host by itself.
  const parts = config.name.split('|');
  if (parts.length === 4 && parts[3]) {
    const host = parts[3];
    const k8s = /^([^.]+)\.[^.]+\.svc\./.exec(host);
    return new DestinationService(host, k8s ? k8s[1] : host);
  }
  return new DestinationService('', '');
}

export class ProxyTelemetry {
  readonly metrics: IstioMetrics;
  readonly local: WorkloadMetadata;
  readonly nodeId: string;
  /** This proxy's `x-envoy-peer-metadata` value and TCP preamble, built once. */
  readonly peerHeader: string;
  readonly tcpPreamble: Buffer;
  private readonly peers = new PeerMetadataCache();
  private readonly clusters: ClusterManager;
  private readonly principalSource: () => string | undefined;
  private principal: string | undefined;
  private readonly byCluster = new WeakMap<CompiledCluster, DestinationService>();
  private readonly specialByAuthority = new Map<string, Map<string, DestinationService>>();
  private readonly byAuthority = new Map<string, DestinationService>();
  private readonly localService: DestinationService;
  private readonly endpointPrincipals = new WeakMap<WorkloadMetadata, string>();
  private readonly localLabels = new Map<string, PeerLabels>();

  constructor(o: ProxyTelemetryOptions) {
    this.metrics = new IstioMetrics(o.maxSeries);
    this.local = workloadFromNode(o.node.id, o.node.metadata);
    this.nodeId = o.node.id;
    this.peerHeader = encodePeerHeader(this.local);
    this.tcpPreamble = exchangePreamble(this.local, o.node.id);
    this.clusters = o.clusters;
    this.principalSource = o.principal;
    this.localService = new DestinationService('', '');
  }

  /** The proxy's own SPIFFE id ('' while it has none). */
  localPrincipal(): string {
    if (this.principal === undefined) {
      const p = this.principalSource();
      if (!p) return '';
      this.principal = p;
    }
    return this.principal;
  }

  // ---- HTTP metadata exchange ----

  /**
   * The request on its way upstream: peer headers from the downstream are taken off (the
   * application never sees them) and remembered on the stream.
   */
  onUpstreamRequest(s: HttpStream, h: HeaderMap): void {
    const value = h[PEER_METADATA_HEADER];
    if (value !== undefined) {
      if (typeof value === 'string') s.downstreamPeer = value;
      h[PEER_METADATA_HEADER] = undefined;
    }
    if (h[PEER_METADATA_ID_HEADER] !== undefined) h[PEER_METADATA_ID_HEADER] = undefined;
  }

  /** Per attempt: the client side tells mesh endpoints (those with a sidecar) who is calling. */
  onUpstreamAttempt(s: HttpStream, host: Host, h: HeaderMap): void {
    if (s.hcm.trafficDirection !== 'INBOUND' && host.peer?.sidecar) {
      h[PEER_METADATA_HEADER] = this.peerHeader;
      h[PEER_METADATA_ID_HEADER] = this.nodeId;
    } else if (h[PEER_METADATA_HEADER] !== undefined) {
      h[PEER_METADATA_HEADER] = undefined;
      h[PEER_METADATA_ID_HEADER] = undefined;
    }
  }

  /**
   * Response headers on their way downstream (from upstream or a local reply): the upstream's
   * peer headers are taken off (remembered on the client side), and the server side answers a
   * mesh client — one that sent its own — with this proxy's.
   */
  onResponseHeaders(s: HttpStream, list: string[]): string[] {
    const inbound = s.hcm.trafficDirection === 'INBOUND';
    for (let i = 0; i < list.length; i += 2) {
      const name = list[i];
      // Cheap test first: only two header names have these lengths and this prefix.
      if ((name.length !== 21 && name.length !== 24) || name.charCodeAt(8) !== 112 /* p */) continue;
      if (name === PEER_METADATA_HEADER) {
        if (!inbound) s.upstreamPeer = list[i + 1];
      } else if (name !== PEER_METADATA_ID_HEADER) continue;
      list.splice(i, 2);
      i -= 2;
    }
    if (inbound && this.downstreamPeerOf(s) !== undefined) list.push(PEER_METADATA_HEADER, this.peerHeader, PEER_METADATA_ID_HEADER, this.nodeId);
    return list;
  }

  private downstreamPeerOf(s: HttpStream): string | undefined {
    if (s.downstreamPeer !== undefined) return s.downstreamPeer;
    const v = s.headers[PEER_METADATA_HEADER];
    return typeof v === 'string' ? v : undefined;
  }

  // ---- HTTP metrics ----

  /** Records a finished request (HttpStream.finish). */
  recordHttp(s: HttpStream): void {
    const edge = s.hcm.trafficDirection === 'INBOUND' ? this.inboundHttpEdge(s) : this.outboundHttpEdge(s);
    const code = s.status;
    let grpcStatus = -1;
    if (s.grpc) grpcStatus = s.grpcStatus ?? (code > 0 && code !== 200 ? httpToGrpcStatus(code) : -1);
    this.metrics.recordRequest(edge.series(code, grpcStatus, s.flags), performance.now() - s.startHr, s.bodyBytes || s.exchange.bytesReceived(), s.exchange.bytesSent());
  }

  private outboundHttpEdge(s: HttpStream): HttpEdge {
    const svc = this.outboundService(s.clusterName, s.route?.name, s.authority);
    const host = s.upstreamEndpoint;
    const fromResponse = s.upstreamPeer !== undefined ? this.peers.get(s.upstreamPeer) : undefined;
    const peer = fromResponse ?? host?.peer?.metadata;
    const mtls = host !== undefined && meshTls(host);
    const principal = mtls ? this.endpointPrincipal(host.peer?.metadata) : '';
    const slot = (s.grpc ? 2 : 0) + (mtls ? 1 : 0);
    const key = peer ?? NO_PEER;
    let edge = svc.http.get(key, principal, slot);
    if (!edge) {
      edge = this.metrics.httpEdge(this.clientLabels(svc, peer, principal, mtls, s.grpc ? 'grpc' : 'http'));
      svc.http.set(key, principal, slot, edge);
    }
    return edge;
  }

  private inboundHttpEdge(s: HttpStream): HttpEdge {
    const svc = this.inboundService(s.clusterName);
    const raw = this.downstreamPeerOf(s);
    const peer = raw !== undefined ? this.peers.get(raw) : undefined;
    const tls = s.tls;
    const principal = tls?.peerPrincipal ?? '';
    const slot = (s.grpc ? 2 : 0) + (tls ? 1 : 0);
    const key = peer ?? NO_PEER;
    let edge = svc.http.get(key, principal, slot);
    if (!edge) {
      edge = this.metrics.httpEdge(this.serverLabels(svc, peer, principal, tls !== undefined, s.grpc ? 'grpc' : 'http'));
      svc.http.set(key, principal, slot, edge);
    }
    return edge;
  }

  /** Outbound: the cluster's service; Istio's catch-alls by name with the Host header as host. */
  private outboundService(clusterName: string | undefined, routeName: string | undefined, authority: string): DestinationService {
    const special = routeName !== undefined ? SPECIAL_ROUTES[routeName] : undefined;
    if (special) return this.specialService(special, authority);
    if (clusterName) {
      if (SPECIAL_CLUSTERS.has(clusterName)) return this.specialService(clusterName, authority);
      const svc = this.clusterService(clusterName);
      if (svc) return svc;
    }
    // No cluster (no route, unknown cluster): Istio falls back to the Host header.
    let svc = this.byAuthority.get(authority);
    if (!svc) {
      if (this.byAuthority.size >= 1024) this.byAuthority.clear();
      svc = new DestinationService(authority, authority);
      this.byAuthority.set(authority, svc);
    }
    return svc;
  }

  /** Inbound: the inbound cluster's `istio.services` metadata, else the proxy's own canonical service. */
  private inboundService(clusterName: string | undefined): DestinationService {
    return (clusterName ? this.clusterService(clusterName) : undefined) ?? this.localService;
  }

  private clusterService(clusterName: string): DestinationService | undefined {
    const config = this.clusters.get(clusterName)?.config;
    if (!config) return undefined;
    let svc = this.byCluster.get(config);
    if (!svc) {
      svc = serviceOfCluster(config);
      this.byCluster.set(config, svc);
    }
    return svc;
  }

  private specialService(name: string, authority: string): DestinationService {
    let byAuthority = this.specialByAuthority.get(name);
    if (!byAuthority) {
      byAuthority = new Map();
      this.specialByAuthority.set(name, byAuthority);
    }
    let svc = byAuthority.get(authority);
    if (!svc) {
      if (byAuthority.size >= 1024) byAuthority.clear();
      svc = new DestinationService(authority, name);
      byAuthority.set(authority, svc);
    }
    return svc;
  }

  /**
   * The SPIFFE id of an endpoint reached with mesh mTLS. The client's SAN check pins the server
   * certificate to the service's accounts; the endpoint's EDS metadata says which one is its.
   */
  private endpointPrincipal(w: WorkloadMetadata | undefined): string {
    if (!w?.serviceAccount) return '';
    let p = this.endpointPrincipals.get(w);
    if (p === undefined) {
      p = `spiffe://${this.trustDomain()}/ns/${w.namespace}/sa/${w.serviceAccount}`;
      this.endpointPrincipals.set(w, p);
    }
    return p;
  }

  /** The SPIFFE id an endpoint reached with mesh mTLS proves (for %UPSTREAM_PEER_URI_SAN%); undefined otherwise. */
  upstreamPeerPrincipal(host: Host): string | undefined {
    return meshTls(host) ? this.endpointPrincipal(host.peer?.metadata) || undefined : undefined;
  }

  private trustDomain(): string {
    const m = /^spiffe:\/\/([^/]+)\//.exec(this.localPrincipal());
    return m ? m[1] : 'cluster.local';
  }

  /** This proxy's own labels with `principal`. */
  private own(principal: string): PeerLabels {
    let labels = this.localLabels.get(principal);
    if (!labels) {
      const w = this.local;
      labels = {
        workload: or(w.workload, UNKNOWN),
        canonicalService: or(w.canonicalService, UNKNOWN),
        canonicalRevision: or(w.canonicalRevision, 'latest'),
        namespace: or(w.namespace, UNKNOWN),
        principal: or(principal, UNKNOWN),
        app: or(w.app, UNKNOWN),
        version: or(w.version, UNKNOWN),
        cluster: or(w.cluster, UNKNOWN),
      };
      this.localLabels.set(principal, labels);
    }
    return labels;
  }

  /** A peer's labels; its namespace from its principal first (Istio's order). */
  private peerLabels(peer: WorkloadMetadata | undefined, principal: string): PeerLabels {
    return {
      workload: or(peer?.workload, UNKNOWN),
      canonicalService: or(peer?.canonicalService, UNKNOWN),
      canonicalRevision: or(peer?.canonicalRevision, 'latest'),
      namespace: or(principalNamespace(principal) || peer?.namespace, UNKNOWN),
      principal: or(principal, UNKNOWN),
      app: or(peer?.app, UNKNOWN),
      version: or(peer?.version, UNKNOWN),
      cluster: or(peer?.cluster, UNKNOWN),
    };
  }

  /** reporter=source: destination from the peer; Istio reports the security policy as unknown here. */
  private clientLabels(svc: DestinationService, peer: WorkloadMetadata | undefined, peerPrincipal: string, mtls: boolean, protocol: EdgeLabels['protocol']): EdgeLabels {
    const destination = this.peerLabels(peer, peerPrincipal);
    return {
      reporter: 'source',
      source: this.own(mtls ? this.localPrincipal() : ''),
      destination: { ...destination, service: or(svc.host, UNKNOWN), serviceName: or(svc.name, UNKNOWN), serviceNamespace: destination.namespace },
      protocol,
      securityPolicy: 'unknown',
    };
  }

  /** reporter=destination: source from the peer, mutual_tls when both ends have a certificate. */
  private serverLabels(svc: DestinationService, peer: WorkloadMetadata | undefined, peerPrincipal: string, tls: boolean, protocol: EdgeLabels['protocol']): EdgeLabels {
    const local = tls ? this.localPrincipal() : '';
    const own = this.own(local);
    return {
      reporter: 'destination',
      source: this.peerLabels(peer, peerPrincipal),
      destination: { ...own, service: or(svc.host, own.canonicalService), serviceName: or(svc.name, own.canonicalService), serviceNamespace: own.namespace },
      protocol,
      securityPolicy: peerPrincipal && local ? 'mutual_tls' : 'none',
    };
  }

  // ---- TCP ----

  /** Telemetry of one tcp_proxy connection. */
  tcpConnection(inbound: boolean, clusterName: string | undefined, tls: DownstreamTlsInfo | undefined): TcpConnectionTelemetry {
    return new TcpConnectionTelemetry(this, inbound, clusterName, tls);
  }

  /** @internal the TCP edge for a connection's facts. */
  tcpEdge(c: TcpConnectionTelemetry): TcpEdge {
    if (c.inbound) {
      const svc = this.inboundService(c.clusterName);
      const principal = c.tls?.peerPrincipal ?? '';
      const key = c.peer ?? NO_PEER;
      const slot = c.tls ? 1 : 0;
      let edge = svc.tcp.get(key, principal, slot);
      if (!edge) {
        edge = this.metrics.tcpEdge(this.serverLabels(svc, c.peer, principal, c.tls !== undefined, 'tcp'));
        svc.tcp.set(key, principal, slot, edge);
      }
      return edge;
    }
    const svc = c.clusterName ? (SPECIAL_CLUSTERS.has(c.clusterName) ? this.specialService(c.clusterName, '') : this.clusterService(c.clusterName)) : undefined;
    const target = svc ?? this.specialService('', '');
    const host = c.upstreamHost;
    const peer = c.peer ?? host?.peer?.metadata;
    const mtls = host !== undefined && meshTls(host);
    const principal = mtls ? this.endpointPrincipal(host.peer?.metadata) : '';
    const key = peer ?? NO_PEER;
    const slot = mtls ? 1 : 0;
    let edge = target.tcp.get(key, principal, slot);
    if (!edge) {
      edge = this.metrics.tcpEdge(this.clientLabels(target, peer, principal, mtls, 'tcp'));
      target.tcp.set(key, principal, slot, edge);
    }
    return edge;
  }
}

/** Whether the endpoint is reached with mesh mTLS (presenting the workload certificate). */
function meshTls(host: Host): boolean {
  return host.pool.tls?.certificateSecret !== undefined;
}

/**
 * One tcp_proxy connection: its peer (from the exchange preamble, or the upstream endpoint's
 * metadata), its series once the peer is known (Istio reports `opened` then), and its bytes.
 */
export class TcpConnectionTelemetry {
  /** Set by tcp_proxy when the upstream connection is up. */
  upstreamHost: Host | undefined;
  /** The peer's metadata read from the exchange preamble. */
  peer: WorkloadMetadata | undefined;
  private series: TcpSeries | undefined;
  private opened = false;
  private closed = false;
  private pendingReceived = 0;
  private pendingSent = 0;

  constructor(
    private readonly telemetry: ProxyTelemetry,
    readonly inbound: boolean,
    readonly clusterName: string | undefined,
    readonly tls: DownstreamTlsInfo | undefined,
  ) {}

  /** The preamble to write first on a connection whose ALPN settled on Istio's peer exchange. */
  get preamble(): Buffer {
    return this.telemetry.tcpPreamble;
  }

  /** The label set is settled: count the connection as opened (once). */
  open(flags: readonly string[] = []): void {
    if (this.opened) return;
    this.opened = true;
    const s = this.telemetry.tcpEdge(this).series(flags);
    this.series = s;
    if (!s) return;
    s.opened++;
    s.received += this.pendingReceived;
    s.sent += this.pendingSent;
  }

  /** Bytes from the downstream. */
  received(n: number): void {
    if (this.series) this.series.received += n;
    else this.pendingReceived += n;
  }

  /** Bytes to the downstream. */
  sent(n: number): void {
    if (this.series) this.series.sent += n;
    else this.pendingSent += n;
  }

  close(flags: readonly string[]): void {
    if (this.closed) return;
    this.closed = true;
    this.open(flags);
    if (this.series) this.series.closed++;
  }
}
