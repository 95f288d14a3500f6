// LDS for sidecars, outbound: the 15001 capture listener and the per-port outbound listeners
// (Istio's listener_builder model). Inbound listeners are in inbound.ts, gateway listeners in
// gateway.ts, proxyless api_listeners in proxyless.ts.
//
// THE SIDECAR LISTENER MODEL (what a Weft proxy implements):
//
// 1. `virtualOutbound` — 0.0.0.0:15001, the only outbound listener that binds. use_original_dst
//    true; listener_filters original_dst + http_inspector. Two filter chains:
//      - `virtualOutbound-http`, filter_chain_match.application_protocols ["http/1.1","h2c"]:
//        an HttpConnectionManager with RDS `http_proxy`. Apps reach services through
//        HTTP_PROXY=http://<workload address>:15001; requests are routed by Host (`reviews:9080`,
//        absolute-form URIs included) over the `http_proxy` route configuration, whose virtual hosts
//        carry every HTTP service port as `name:port` (and bare names for port 80).
//      - `PassthroughFilterChain` (no match): tcp_proxy to PassthroughCluster (ALLOW_ANY) or
//        BlackHoleCluster (REGISTRY_ONLY).
//    With iptables capture, a connection whose original destination port has a per-port
//    listener below is handed to that listener first (Envoy's use_original_dst semantics).
//    In standalone mode the proxy binds this listener on the workload's own address.
// 2. `0.0.0.0_<port>` — one per outbound service port, bind_to_port false (reached only through
//    the hand-off above), traffic_direction OUTBOUND. Filter chains, most specific first:
//      - TCP services with addresses: prefix_ranges = their addresses -> tcp_proxy to
//        `outbound|port||host` (or to their TCP route destinations); TLS/HTTPS services routed by
//        a VirtualService `tls` section: server_names = sniHosts -> tcp_proxy.
//      - HTTP: HttpConnectionManager with RDS "<port>" (virtual hosts per service, Istio domains,
//        ignore_port_in_host_matching). When the port also carries an opaque TCP fallback (a
//        TCP service without address, or an auto-detected UNKNOWN port), this chain matches
//        application_protocols ["http/1.1","h2c"] and the listener gets http_inspector.
//      - TCP fallback without match: tcp_proxy to the first such service (or its TCP route).
//    tls_inspector is added whenever a chain matches server_names.
// 3. Inbound (`virtualInbound` on 15006, or per-port listeners in standalone mode): see inbound.ts.
// Outbound clusters carry Istio mTLS (transport_socket or transport_socket_matches): auto-mtls.ts.
import type { L4MatchAttributes } from '../../config/resources';
import { labelsMatch } from '../../registry/hosts';
import { isHttpProtocol, isTcpProtocol, isTlsProtocol } from '../../registry/protocol';
import type { MeshService, Protocol } from '../../registry/types';
import { httpConnectionManager, listenerFilter, plaintextHttpAlpn, tcpProxy, tcpProxyForRoute } from './filters';
import {
  BLACKHOLE_CLUSTER,
  HTTP_PROXY_ROUTE_CONFIG,
  PASSTHROUGH_CLUSTER,
  VIRTUAL_OUTBOUND_LISTENER,
  VIRTUAL_OUTBOUND_PORT,
  WILDCARD_ADDRESS,
  listenerName,
  outboundClusterName,
  outboundRouteConfigName,
} from './names';
import type { RouteContext } from './routes';
import { gatewayKey } from './routes';
import type { ProxyScope, VirtualServiceResource } from './scope';
import { meshVirtualServiceFor } from './scope';
import { hcmTracing } from './tracing';
import type { EnvoyResource } from './types';
import { FILTER, cidrRange, socketAddress } from './values';

type Json = Record<string, unknown>;

/** A filter chain plus the key Envoy uses to tell chains apart (duplicates are rejected). */
interface Chain {
  chain: Json;
  matchKey: string;
}

function chain(name: string, match: Json | undefined, filters: Json[]): Chain {
  const c: Json = { name, ...(match && Object.keys(match).length ? { filter_chain_match: match } : {}), filters };
  return { chain: c, matchKey: JSON.stringify(match ?? {}) };
}

/** Keeps the first chain for each distinct match (Istio logs such conflicts and drops the rest). */
function uniqueChains(chains: Chain[]): Json[] {
  const seen = new Set<string>();
  return chains.filter((c) => (seen.has(c.matchKey) ? false : (seen.add(c.matchKey), true))).map((c) => c.chain);
}

/** Whether an L4 (tcp/tls) match applies to this proxy on this port for the mesh. */
function l4MatchApplies(scope: ProxyScope, m: L4MatchAttributes, port: number, vsNamespace: string, gateways: readonly string[]): boolean {
  if (m.port !== undefined && m.port !== port) return false;
  if (m.sourceLabels && !labelsMatch(m.sourceLabels, scope.proxy.labels)) return false;
  if (m.sourceNamespace && m.sourceNamespace !== scope.proxy.namespace) return false;
  if (m.gateways?.length && !m.gateways.some((g) => gateways.includes(gatewayKey(g, vsNamespace)))) return false;
  return true;
}

/** tcp_proxy for the first applicable `tcp` route of a VirtualService, if any. */
export function tcpRouteProxy(ctx: RouteContext, vs: VirtualServiceResource): Json | undefined {
  for (const r of vs.spec.tcp ?? []) {
    const ok = !r.match?.length || r.match.some((m) => l4MatchApplies(ctx.scope, m, ctx.listenerPort, vs.metadata.namespace, ctx.gateways));
    if (ok && r.route?.length) return tcpProxyForRoute(ctx, r.route, vs.metadata.namespace);
  }
  return undefined;
}

/** SNI-matched chains for a VirtualService's `tls` routes (sidecar and gateway passthrough). */
export function tlsRouteChains(ctx: RouteContext, vs: VirtualServiceResource, baseMatch: Json): Chain[] {
  const out: Chain[] = [];
  for (const r of vs.spec.tls ?? []) {
    if (!r.route?.length) continue;
    for (const m of r.match ?? []) {
      if (!l4MatchApplies(ctx.scope, m, ctx.listenerPort, vs.metadata.namespace, ctx.gateways)) continue;
      const proxy = tcpProxyForRoute(ctx, r.route, vs.metadata.namespace);
      if (!proxy) continue;
      const sni = [...m.sniHosts].sort();
      out.push(chain(`${sni.join(',')}:${ctx.listenerPort}`, { ...baseMatch, server_names: sni }, [proxy]));
    }
  }
  return out;
}

function addressMatch(service: MeshService): Json {
  const addrs = service.addresses.filter((a) => a && a !== WILDCARD_ADDRESS);
  return addrs.length ? { prefix_ranges: addrs.map(cidrRange) } : {};
}

/** Chains for one opaque TCP/TLS service on a port (VirtualService tls/tcp routes or default). */
function tcpServiceChains(ctx: RouteContext, service: MeshService, protocol: Protocol): Chain[] {
  const port = ctx.listenerPort;
  const match = addressMatch(service);
  const tlsVs = isTlsProtocol(protocol ) ? meshVirtualServiceFor(ctx.scope, service.hostname, 'tls') : undefined;
  if (tlsVs) {
    const chains = tlsRouteChains(ctx, tlsVs, match);
    if (chains.length) return chains;
  }
  const tcpVs = meshVirtualServiceFor(ctx.scope, service.hostname, 'tcp');
  const routed = tcpVs ? tcpRouteProxy(ctx, tcpVs) : undefined;
  const cluster = outboundClusterName(service.hostname, port);
  return [chain(cluster, match, [routed ?? tcpProxy(cluster)])];
}

function outboundListener(scope: ProxyScope, port: number, services: { service: MeshService; protocol: Protocol }[]): EnvoyResource | undefined {
  const ctx: RouteContext = { scope, listenerPort: port, gateways: ['mesh'], proxyless: false };
  const specific: Chain[] = [];
  const fallback: Chain[] = [];
  let http = false;
  for (const { service, protocol } of services) {
    if (isHttpProtocol(protocol )) {
      http = true;
    } else if (protocol === 'UNKNOWN') {
      http = true;
      const cluster = outboundClusterName(service.hostname, port);
      fallback.push(chain(cluster, {}, [tcpProxy(cluster)]));
    } else if (isTcpProtocol(protocol )) {
      for (const c of tcpServiceChains(ctx, service, protocol)) {
        (c.matchKey === '{}' ? fallback : specific).push(c);
      }
    }
  }
  const sniff = http && fallback.length > 0;
  const chains: Chain[] = [...specific];
  if (http) {
    const name = listenerName(WILDCARD_ADDRESS, port);
    chains.push(
      chain(name, sniff ? { application_protocols: plaintextHttpAlpn() } : undefined, [
        httpConnectionManager({
          statPrefix: `outbound_${name}`,
          rds: outboundRouteConfigName(port),
          filters: 'outbound',
          tracing: hcmTracing(scope.snapshot, scope.proxy, 'outbound'),
        }),
      ]),
    );
  }
  chains.push(...fallback);
  const filterChains = uniqueChains(chains);
  if (filterChains.length === 0) return undefined;
  const usesSni = filterChains.some((c) => (c.filter_chain_match as Json | undefined)?.server_names);
  const listenerFilters = [
    ...(usesSni ? [listenerFilter(FILTER.TlsInspector)] : []),
    ...(sniff ? [listenerFilter(FILTER.HttpInspector)] : []),
  ];
  return {
    name: listenerName(WILDCARD_ADDRESS, port),
    address: socketAddress(WILDCARD_ADDRESS, port),
    filter_chains: filterChains,
    ...(listenerFilters.length ? { listener_filters: listenerFilters, continue_on_listener_filters_timeout: true } : {}),
    traffic_direction: 'OUTBOUND',
    bind_to_port: false,
  };
}

/** Per-port outbound listeners `0.0.0.0_<port>`, sorted by port. */
export function buildOutboundListeners(scope: ProxyScope): EnvoyResource[] {
  const byPort = new Map<number, { service: MeshService; protocol: Protocol }[]>();
  for (const service of scope.services) {
    for (const p of service.ports) {
      if (p.protocol === 'UDP') continue;
      const list = byPort.get(p.port) ?? [];
      list.push({ service, protocol: p.protocol });
      byPort.set(p.port, list);
    }
  }
  const out: EnvoyResource[] = [];
  for (const port of [...byPort.keys()].sort((a, b) => a - b)) {
    const l = outboundListener(scope, port, byPort.get(port) as { service: MeshService; protocol: Protocol }[]);
    if (l) out.push(l);
  }
  return out;
}

/**
 * Whether the node says its traffic is captured by iptables (INTERCEPTION_MODE REDIRECT sent
 * explicitly, as `weft proxy --capture` does). Unset also means REDIRECT for inbound (Istio's
 * default), but keeps the 15001 HTTP chain open to every destination for HTTP_PROXY clients.
 */
export function capturesOutbound(proxy: { metadata: Record<string, unknown> }): boolean {
  return proxy.metadata.INTERCEPTION_MODE === 'REDIRECT';
}

/**
 * `virtualOutbound` on 15001: HTTP proxy chain (RDS `http_proxy`) + passthrough/blackhole TCP.
 * With explicit capture the HTTP chain also matches `destination_port: 15001`, so only clients
 * that really dial 15001 (HTTP_PROXY) use it; a captured connection to a port no outbound
 * listener owns goes straight to the passthrough chain, unsniffed, as in Istio (a server-first
 * protocol to an unknown destination must not wait for client bytes).
 */
export function buildVirtualOutboundListener(scope: ProxyScope): EnvoyResource {
  const catchAll = scope.outboundTrafficPolicy === 'ALLOW_ANY' ? PASSTHROUGH_CLUSTER : BLACKHOLE_CLUSTER;
  const onlyOwnPort = capturesOutbound(scope.proxy) ? { destination_port: VIRTUAL_OUTBOUND_PORT } : {};
  return {
    name: VIRTUAL_OUTBOUND_LISTENER,
    address: socketAddress(WILDCARD_ADDRESS, VIRTUAL_OUTBOUND_PORT),
    filter_chains: [
      {
        name: 'virtualOutbound-http',
        filter_chain_match: { ...onlyOwnPort, application_protocols: plaintextHttpAlpn() },
        filters: [
          httpConnectionManager({
            statPrefix: `outbound_${listenerName(WILDCARD_ADDRESS, VIRTUAL_OUTBOUND_PORT)}`,
            rds: HTTP_PROXY_ROUTE_CONFIG,
            filters: 'outbound',
            tracing: hcmTracing(scope.snapshot, scope.proxy, 'outbound'),
          }),
        ],
      },
      { name: 'PassthroughFilterChain', filters: [tcpProxy(catchAll)] },
    ],
    listener_filters: [listenerFilter(FILTER.OriginalDst), listenerFilter(FILTER.HttpInspector)],
    continue_on_listener_filters_timeout: true,
    use_original_dst: true,
    traffic_direction: 'OUTBOUND',
  };
}
