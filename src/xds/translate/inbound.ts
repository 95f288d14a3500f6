// Inbound for sidecars: the ports the proxy's own workload serves, their filter chains (mTLS and/or
// plaintext per PeerAuthentication, jwt_authn and RBAC per RequestAuthentication and
// AuthorizationPolicy), the listeners carrying them, and the clusters to the application
// (Istio's listener_builder inbound chains and authn/authz plugins).
//
// THE INBOUND MODEL (what a Weft proxy implements):
//
// Per workload port (the endpoint's target port) the mTLS mode decides the chains: STRICT -> one
// chain matching `transport_protocol: tls` whose DownstreamTlsContext requires a client certificate
// from the mesh CA (auto-mtls.ts); DISABLE -> one chain matching `transport_protocol: raw_buffer`;
// PERMISSIVE -> both, or only the plaintext one for a workload without an identity (tlsMode not
// `istio`: no client sends it mTLS, see auto-mtls.ts). A chain for an HTTP port holds an HttpConnectionManager with an inline route
// configuration `inbound|<port>||` to cluster `inbound|<port>||`, its HTTP filters being jwt_authn,
// the RBAC filters (CUSTOM, DENY, AUDIT, ALLOW) and the router; a TCP port's chain holds the network
// RBAC filters and tcp_proxy. An auto-detected (UNKNOWN) port gets, in plaintext, an HTTP chain
// matching application_protocols ["http/1.1","h2c"] plus a TCP chain; under mTLS it is TCP only
// (the client's ALPN does not say whether HTTP is inside). Chains of one port share Istio's name
// `inbound_0.0.0.0_<port>` (`-http` for the sniffed HTTP one).
//
// Where the chains live depends on the node's INTERCEPTION_MODE:
// - REDIRECT (or unset): `virtualInbound` on 0.0.0.0:15006, each chain also matching
//   `destination_port`; listener_filters original_dst, tls_inspector (+ http_inspector when a
//   port is sniffed). Inbound clusters are STATIC to <workload address>:<port>, or to
//   127.0.0.1:<port> when REDIRECT is sent explicitly (`weft proxy --capture`: the sidecar shares
//   the workload's network namespace).
// A plaintext connection with no chain for its port (STRICT) is closed: inbound capture is what
// makes PeerAuthentication enforceable against clients that dial the app's port directly.
// - NONE (standalone, no iptables): one listener `<address>_<port>` per port, bound on the node's
//   first INSTANCE_IPS address (else the workload's) and that port, with the same chains without
//   `destination_port`; listener_filters tls_inspector (+ http_inspector). Inbound clusters are
//   STATIC to <WEFT_APP_ADDRESS metadata, else 127.0.0.1>:<port>, where the application listens.
import type { ProxyNode } from '../../model/proxy';
import { APP_ADDRESS_METADATA, type InterceptionMode } from '../../model/proxy';
import type { MeshSnapshot, PathNormalization } from '../../model/snapshot';
import { DEFAULT_PATH_NORMALIZATION } from '../../model/snapshot';
import { isHttp2Protocol, isHttpProtocol } from '../../registry/protocol';
import type { MeshService, Protocol } from '../../registry/types';
import { istioDownstreamTlsSocket } from './auto-mtls';
import { defaultThresholds, DEFAULT_CONNECT_TIMEOUT } from './clusters';
import { httpConnectionManager, listenerFilter, plaintextHttpAlpn, tcpProxy, withNetworkFilters } from './filters';
import {
  inboundClusterName,
  inboundRouteConfigName,
  listenerName,
  VIRTUAL_INBOUND_LISTENER,
  VIRTUAL_INBOUND_PORT,
  WILDCARD_ADDRESS,
} from './names';
import type { WorkloadMtls } from './peer-authentication';
import { mtlsModeForPort, workloadMtls } from './peer-authentication';
import { inboundRouteConfiguration } from './routes';
import type { SecurityFilters } from './security-filters';
import { buildSecurityFilters } from './security-filters';
import { policySubjectOf } from './security-selection';
import type { SnapshotIndex } from './snapshot-index';
import { hcmTracing } from './tracing';
import type { EnvoyResource } from './types';
import { capturesOutbound } from './listeners';
import { FILTER, socketAddress } from './values';

type Json = Record<string, unknown>;

/** Node metadata key of Istio's interception mode. */
export const INTERCEPTION_MODE_METADATA = 'INTERCEPTION_MODE';

/** Where a captured application is dialed from its sidecar (both in its network namespace). */
const CAPTURED_APP_ADDRESS = '127.0.0.1';

/** Where the application listens in standalone mode when the node does not say (Istio's default endpoint). */
const DEFAULT_APP_ADDRESS = '127.0.0.1';

/** NONE when the node says so; anything else (REDIRECT, TPROXY, unset) captures with iptables. */
export function interceptionModeOf(proxy: ProxyNode): InterceptionMode {
  return proxy.metadata[INTERCEPTION_MODE_METADATA] === 'NONE' ? 'NONE' : 'REDIRECT';
}

/** The application's address in standalone mode: node metadata WEFT_APP_ADDRESS, else 127.0.0.1. */
export function appAddressOf(proxy: ProxyNode): string {
  const v = proxy.metadata[APP_ADDRESS_METADATA];
  return typeof v === 'string' && v !== '' ? v : DEFAULT_APP_ADDRESS;
}

/**
 * What inbound resources depend on besides the workload's ports, for the inbound cache key: in
 * standalone mode the bind and application addresses; empty in REDIRECT mode (they are not read).
 */
export function inboundPlacementKey(proxy: ProxyNode): string {
  if (interceptionModeOf(proxy) === 'NONE') return JSON.stringify(['NONE', proxy.ips[0] ?? '', appAddressOf(proxy)]);
  return capturesOutbound(proxy) ? 'REDIRECT' : '';
}

/** One port the proxy's own workload serves, found through the services that select it. */
export interface InboundPort {
  /** Port the application listens on (the endpoint's target port). */
  readonly port: number;
  /** Service port it was reached as (first service by hostname wins). */
  readonly servicePort: number;
  readonly protocol: Protocol;
  readonly service: MeshService;
  /** The workload's address. */
  readonly address: string;
}

/**
 * The proxy's own workload: its WorkloadEntry (proxy.workloadName in proxy.namespace), else the
 * first (in registry order) in its namespace whose address is among proxy.ips.
 */
export function proxyWorkloadKey(snapshot: MeshSnapshot, index: SnapshotIndex, proxy: ProxyNode): string | undefined {
  if (proxy.workloadName) {
    const key = `${proxy.namespace}/${proxy.workloadName}`;
    if (snapshot.registry.workloads.has(key)) return key;
  }
  let first = -1;
  for (const ip of proxy.ips) {
    const at = index.workloadByAddress.get(`${proxy.namespace}|${ip}`);
    if (at !== undefined && (first < 0 || at < first)) first = at;
  }
  return first >= 0 ? index.workloadKeys[first] : undefined;
}

/**
 * The ports a workload serves: every service endpoint backed by it (see proxyWorkloadKey). One
 * entry per application port; the first service by hostname names it.
 */
export function inboundPortsFor(snapshot: MeshSnapshot, index: SnapshotIndex, workloadKey: string): InboundPort[] {
  const workload = snapshot.registry.workloads.get(workloadKey);
  if (!workload) return [];
  const byPort = new Map<number, InboundPort>();
  for (const { service, endpoint: ep } of index.workloadEndpoints.get(workloadKey) ?? []) {
    if (byPort.has(ep.port)) continue;
    const sp = service.ports.find((p) => p.port === ep.servicePort);
    if (!sp || sp.protocol === 'UDP') continue;
    byPort.set(ep.port, { port: ep.port, servicePort: ep.servicePort, protocol: sp.protocol, service, address: workload.address });
  }
  return [...byPort.values()].sort((a, b) => a.port - b.port);
}

/** Everything inbound chains and clusters read besides the ports. */
export interface InboundOptions {
  readonly mode: InterceptionMode;
  /** NONE: the address the per-port listeners bind. */
  readonly listenAddress: string;
  /** NONE: the address inbound clusters send to. */
  readonly appAddress: string;
  readonly mtls: WorkloadMtls;
  /**
   * INTERCEPTION_MODE REDIRECT sent explicitly (`weft proxy --capture`, a network namespace per
   * workload): inbound clusters dial 127.0.0.1:<port>, like Istio before 1.10, so an unchanged app
   * listening on localhost or on every address is reached, and only through its sidecar.
   */
  readonly captured: boolean;
  /**
   * Whether clients reach the workload with Istio mTLS at all (its tlsMode is `istio`, i.e. it has
   * an identity). PERMISSIVE on a workload without one offers plaintext only: no client would
   * use an mTLS chain, and its proxy may have no certificate to serve it with.
   */
  readonly mtlsCapable: boolean;
  readonly security: SecurityFilters;
  readonly pathNormalization: PathNormalization;
  /** The inbound HCMs' `tracing` (tracing.ts). */
  readonly tracing?: Record<string, unknown>;
}

/** The options for a sidecar's workload (a function of the keys in ProxySignature.security and inboundPlacementKey). */
export function inboundOptionsFor(snapshot: MeshSnapshot, index: SnapshotIndex, proxy: ProxyNode, workloadKey: string): InboundOptions {
  const workload = snapshot.registry.workloads.get(workloadKey);
  return {
    mode: interceptionModeOf(proxy),
    listenAddress: proxy.ips[0] ?? workload?.address ?? WILDCARD_ADDRESS,
    appAddress: appAddressOf(proxy),
    captured: capturesOutbound(proxy),
    mtls: workloadMtls(snapshot, index, proxy.namespace, proxy.labels),
    mtlsCapable: workload?.tlsMode === 'istio',
    security: buildSecurityFilters(snapshot, index, policySubjectOf(proxy)),
    pathNormalization: snapshot.meshConfig.pathNormalization?.normalization ?? DEFAULT_PATH_NORMALIZATION,
    tracing: hcmTracing(snapshot, proxy, 'inbound'),
  };
}

/** The filter chains of one port (see the model above); `destination_port` only on virtualInbound. */
function portChains(p: InboundPort, o: InboundOptions, matchPort: boolean): { chains: Json[]; sniff: boolean } {
  const declared = mtlsModeForPort(o.mtls, p.port);
  const mode = declared === 'PERMISSIVE' && !o.mtlsCapable ? 'DISABLE' : declared;
  const cluster = inboundClusterName(p.port);
  const name = `inbound_${listenerName(WILDCARD_ADDRESS, p.port)}`;
  const hcm = () =>
    httpConnectionManager({
      statPrefix: name,
      routeConfig: inboundRouteConfiguration(inboundRouteConfigName(p.port), cluster, p.port),
      filters: 'inbound',
      securityFilters: o.security.http,
      pathNormalization: o.pathNormalization,
      tracing: o.tracing,
    });
  const tcp = () => withNetworkFilters(o.security.tcp, tcpProxy(cluster));
  const chains: Json[] = [];
  let sniff = false;
  const transports: ('tls' | 'raw_buffer')[] = [...(mode !== 'DISABLE' ? ['tls' as const] : []), ...(mode !== 'STRICT' ? ['raw_buffer' as const] : [])];
  for (const transport of transports) {
    const match: Json = { ...(matchPort ? { destination_port: p.port } : {}), transport_protocol: transport };
    const socket = transport === 'tls' ? { transport_socket: istioDownstreamTlsSocket() } : {};
    if (isHttpProtocol(p.protocol)) {
      chains.push({ name, filter_chain_match: match, filters: [hcm()], ...socket });
    } else if (p.protocol === 'UNKNOWN' && transport === 'raw_buffer') {
      sniff = true;
      chains.push({ name: `${name}-http`, filter_chain_match: { ...match, application_protocols: plaintextHttpAlpn() }, filters: [hcm()] });
      chains.push({ name, filter_chain_match: match, filters: tcp() });
    } else {
      chains.push({ name, filter_chain_match: match, filters: tcp(), ...socket });
    }
  }
  return { chains, sniff };
}

function inboundListenerFilters(originalDst: boolean, sniff: boolean): Json[] {
  return [
    ...(originalDst ? [listenerFilter(FILTER.OriginalDst)] : []),
    listenerFilter(FILTER.TlsInspector),
    ...(sniff ? [listenerFilter(FILTER.HttpInspector)] : []),
  ];
}

/** `virtualInbound` (REDIRECT) or the per-port standalone listeners (NONE); none without ports. */
export function buildInboundListeners(ports: readonly InboundPort[], o: InboundOptions): EnvoyResource[] {
  if (ports.length === 0) return [];
  if (o.mode === 'NONE') {
    return ports.map((p) => {
      const { chains, sniff } = portChains(p, o, false);
      return {
        name: listenerName(o.listenAddress, p.port),
        address: socketAddress(o.listenAddress, p.port),
        filter_chains: chains,
        listener_filters: inboundListenerFilters(false, sniff),
        continue_on_listener_filters_timeout: true,
        traffic_direction: 'INBOUND',
      };
    });
  }
  const chains: Json[] = [];
  let sniff = false;
  for (const p of ports) {
    const built = portChains(p, o, true);
    chains.push(...built.chains);
    sniff ||= built.sniff;
  }
  return [
    {
      name: VIRTUAL_INBOUND_LISTENER,
      address: socketAddress(WILDCARD_ADDRESS, VIRTUAL_INBOUND_PORT),
      filter_chains: chains,
      listener_filters: inboundListenerFilters(true, sniff),
      continue_on_listener_filters_timeout: true,
      traffic_direction: 'INBOUND',
    },
  ];
}

/**
 * Inbound clusters `inbound|port||`: STATIC, one endpoint at the application's address and target
 * port — the workload's own address with iptables capture (Weft's loopback-per-workload layout;
 * Istio uses ORIGINAL_DST to 127.0.0.6 binds instead), 127.0.0.1 with explicit capture in a
 * network namespace (InboundOptions.captured), the app address in standalone mode.
 */
export function buildInboundClusters(ports: readonly InboundPort[], o: Pick<InboundOptions, 'mode' | 'appAddress' | 'captured'>): EnvoyResource[] {
  return ports.map((p) => {
    const name = inboundClusterName(p.port);
    const address = o.mode === 'NONE' ? o.appAddress : o.captured ? CAPTURED_APP_ADDRESS : p.address;
    return {
      name,
      type: 'STATIC',
      connect_timeout: DEFAULT_CONNECT_TIMEOUT,
      load_assignment: {
        cluster_name: name,
        endpoints: [{ locality: {}, lb_endpoints: [{ endpoint: { address: socketAddress(address, p.port) } }] }],
      },
      circuit_breakers: { thresholds: [defaultThresholds()] },
      ...(isHttp2Protocol(p.protocol) ? { http2_protocol_options: {} } : {}),
      metadata: {
        filter_metadata: {
          istio: { services: [{ host: p.service.hostname, name: p.service.name, namespace: p.service.namespace }] },
        },
      },
    };
  });
}
