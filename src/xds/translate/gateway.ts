// Gateways (proxy type `router`): Gateway servers selected by the proxy's labels become one
// listener per port and route configurations `http.<port>` / `https.<port>.<portName>.<gw>.<ns>`
// from the VirtualServices bound to them (Istio's gateway.go). RequestAuthentications and
// AuthorizationPolicies selecting the gateway add jwt_authn/RBAC to its HTTP connection managers
// and network RBAC to its TCP chains; meshConfig.pathNormalization applies to its HCMs.
import type { ConfigResource, GatewayServer, ServerTLSSettings } from '../../config/resources';
import { hostsIntersect, labelsMatch, moreSpecificHost } from '../../registry/hosts';
import { DEFAULT_PATH_NORMALIZATION } from '../../model/snapshot';
import { httpConnectionManager, listenerFilter, withNetworkFilters } from './filters';
import { tcpRouteProxy, tlsRouteChains } from './listeners';
import {
  DEFAULT_ROUTE_NAME,
  WILDCARD_ADDRESS,
  gatewayHttpRouteConfigName,
  gatewayHttpsRouteConfigName,
  hostPort,
  listenerName,
} from './names';
import type { RouteContext } from './routes';
import { buildVirtualServiceRoutes, gatewayKey } from './routes';
import type { ProxyScope, VirtualServiceResource } from './scope';
import { virtualServiceHosts } from './scope';
import { buildSecurityFilters } from './security-filters';
import { policySubjectOf } from './security-selection';
import { hcmTracing } from './tracing';
import type { EnvoyResource } from './types';
import { FILTER, TYPE, socketAddress } from './values';

type Json = Record<string, unknown>;
type GatewayResource = ConfigResource<'Gateway'>;

interface BoundServer {
  gateway: GatewayResource;
  key: string;
  server: GatewayServer;
}

/**
 * Gateways whose selector labels are all present on the proxy, in any namespace; an empty
 * selector selects every gateway proxy (Istio: selector.SubsetOf(proxy labels)).
 */
export function selectGateways(scope: ProxyScope): GatewayResource[] {
  return scope.snapshot.byKind.Gateway.filter((g) => labelsMatch(g.spec.selector, scope.proxy.labels));
}

type ServerKind = 'http' | 'https' | 'passthrough' | 'tcp' | 'tls-terminated-tcp';

function serverKind(s: GatewayServer): ServerKind {
  const protocol = s.port.protocol.toUpperCase();
  const passthrough = s.tls?.mode === 'PASSTHROUGH' || s.tls?.mode === 'AUTO_PASSTHROUGH';
  if (protocol === 'HTTPS') return passthrough ? 'passthrough' : 'https';
  if (protocol === 'TLS') return passthrough || !s.tls ? 'passthrough' : 'tls-terminated-tcp';
  if (protocol === 'HTTP' || protocol === 'HTTP2' || protocol === 'GRPC' || protocol === 'GRPC-WEB') return 'http';
  return 'tcp';
}

/** `ns/host` server hosts: whether a VirtualService in `vsNamespace` may bind to the host. */
function serverHostsFor(server: GatewayServer, gatewayNamespace: string, vsNamespace: string): string[] {
  const out: string[] = [];
  for (const h of server.hosts ?? []) {
    const slash = h.indexOf('/');
    const ns = slash >= 0 ? h.slice(0, slash) : '*';
    const host = slash >= 0 ? h.slice(slash + 1) : h;
    if (ns === '*' || (ns === '.' && vsNamespace === gatewayNamespace) || ns === vsNamespace) out.push(host);
  }
  return out;
}

function plainHosts(server: GatewayServer): string[] {
  return (server.hosts ?? []).map((h) => (h.includes('/') ? h.slice(h.indexOf('/') + 1) : h));
}

/** VirtualServices naming the gateway in `gateways` (`name` in the VS namespace, or `ns/name`). */
function boundVirtualServices(scope: ProxyScope, key: string): VirtualServiceResource[] {
  return scope.virtualServices.filter((vs) => (vs.spec.gateways ?? []).some((g) => gatewayKey(g, vs.metadata.namespace) === key));
}

/** Istio's pickMatchingGatewayHosts: VS host -> the more specific of it and the server host. */
function matchingHosts(vsHosts: string[], serverHosts: string[]): string[] {
  const out = new Set<string>();
  for (const vh of vsHosts) for (const sh of serverHosts) if (hostsIntersect(vh, sh)) out.add(moreSpecificHost(vh, sh));
  return [...out];
}

/** Istio's buildGatewayVirtualHostDomains: `host` and `host:*` (just `*` for the wildcard). */
function gatewayDomains(host: string): string[] {
  return host === '*' ? ['*'] : [host, `${host}:*`];
}

function gatewayRouteConfiguration(scope: ProxyScope, name: string, port: number, servers: BoundServer[]): EnvoyResource {
  const vhosts = new Map<string, Json>();
  const keys = [...new Set(servers.map((s) => s.key))];
  const ctx: RouteContext = { scope, listenerPort: port, gateways: keys, proxyless: false };
  for (const bs of servers) {
    for (const vs of boundVirtualServices(scope, bs.key)) {
      const serverHosts = serverHostsFor(bs.server, bs.gateway.metadata.namespace, vs.metadata.namespace);
      const hosts = matchingHosts(virtualServiceHosts(vs, scope.mesh.domainSuffix), serverHosts);
      if (hosts.length === 0) continue;
      const routes = buildVirtualServiceRoutes(ctx, vs);
      if (routes.length === 0) continue;
      for (const host of hosts.sort()) {
        const vhName = hostPort(host, port);
        const existing = vhosts.get(vhName);
        if (existing) {
          // Istio merges the routes of every VirtualService for the same gateway host.
          existing.routes = [...(existing.routes as Json[]), ...routes];
          continue;
        }
        vhosts.set(vhName, {
          name: vhName,
          domains: gatewayDomains(host),
          routes,
          ...(bs.server.tls?.httpsRedirect ? { require_tls: 'ALL' } : {}),
        });
      }
    }
  }
  let virtualHosts = [...vhosts.values()].sort((a, b) => ((a.name as string) < (b.name as string) ? -1 : 1));
  if (virtualHosts.length === 0) {
    // Istio: a route configuration with no virtual hosts gets a 404 blackhole.
    virtualHosts = [
      {
        name: `blackhole:${port}`,
        domains: ['*'],
        routes: [{ name: DEFAULT_ROUTE_NAME, match: { prefix: '/' }, direct_response: { status: 404 } }],
      },
    ];
  }
  return { name, virtual_hosts: virtualHosts, validate_clusters: false };
}

const TLS_VERSIONS: Record<string, string> = {
  TLS_AUTO: 'TLS_AUTO',
  TLSV1_0: 'TLSv1_0',
  TLSV1_1: 'TLSv1_1',
  TLSV1_2: 'TLSv1_2',
  TLSV1_3: 'TLSv1_3',
};

/**
 * DownstreamTlsContext for SIMPLE / MUTUAL servers: file-mounted certificates (Istio's file mode)
 * or, with credentialName, an SDS secret `kubernetes://<credentialName>` over ADS. Minimum TLS 1.2
 * unless the server says otherwise (Istio's gateway default).
 */
function downstreamTls(tls: ServerTLSSettings, http: boolean): Json {
  const common: Json = {};
  if (tls.credentialName) {
    common.tls_certificate_sds_secret_configs = [
      { name: `kubernetes://${tls.credentialName}`, sds_config: { ads: {}, resource_api_version: 'V3' } },
    ];
  } else if (tls.serverCertificate && tls.privateKey) {
    common.tls_certificates = [{ certificate_chain: { filename: tls.serverCertificate }, private_key: { filename: tls.privateKey } }];
  }
  const mutual = tls.mode === 'MUTUAL' || tls.mode === 'OPTIONAL_MUTUAL';
  if (mutual && tls.caCertificates) {
    common.validation_context = {
      trusted_ca: { filename: tls.caCertificates },
      ...(tls.subjectAltNames?.length ? { match_subject_alt_names: tls.subjectAltNames.map((exact) => ({ exact })) } : {}),
    };
  }
  common.tls_params = {
    tls_minimum_protocol_version: TLS_VERSIONS[(tls.minProtocolVersion ?? 'TLSV1_2').toUpperCase()] ?? 'TLSv1_2',
    ...(tls.maxProtocolVersion ? { tls_maximum_protocol_version: TLS_VERSIONS[tls.maxProtocolVersion.toUpperCase()] ?? 'TLS_AUTO' } : {}),
    ...(tls.cipherSuites?.length ? { cipher_suites: [...tls.cipherSuites] } : {}),
  };
  if (http) common.alpn_protocols = ['h2', 'http/1.1'];
  return {
    name: FILTER.TlsTransportSocket,
    typed_config: {
      '@type': TYPE.DownstreamTlsContext,
      common_tls_context: common,
      ...(tls.mode === 'MUTUAL' ? { require_client_certificate: true } : {}),
    },
  };
}

function sniMatch(server: GatewayServer): Json {
  const names = plainHosts(server).filter((h) => h !== '*').sort();
  return names.length ? { server_names: names } : {};
}

/** Listeners and route configurations for a gateway proxy. */
export function buildGatewayResources(scope: ProxyScope): { listeners: EnvoyResource[]; routes: EnvoyResource[] } {
  const byPort = new Map<number, BoundServer[]>();
  for (const gateway of selectGateways(scope)) {
    const key = `${gateway.metadata.namespace}/${gateway.metadata.name}`;
    for (const server of gateway.spec.servers ?? []) {
      const list = byPort.get(server.port.number) ?? [];
      list.push({ gateway, key, server });
      byPort.set(server.port.number, list);
    }
  }
  const listeners: EnvoyResource[] = [];
  const routes: EnvoyResource[] = [];
  const security = buildSecurityFilters(scope.snapshot, scope.snapshotIndex, policySubjectOf(scope.proxy));
  const pathNormalization = scope.mesh.pathNormalization?.normalization ?? DEFAULT_PATH_NORMALIZATION;
  const tracing = hcmTracing(scope.snapshot, scope.proxy, 'gateway');
  const hcm = (statPrefix: string, rds: string) =>
    httpConnectionManager({ statPrefix, rds, filters: 'gateway', useRemoteAddress: true, securityFilters: security.http, pathNormalization, tracing });
  for (const port of [...byPort.keys()].sort((a, b) => a - b)) {
    const servers = byPort.get(port) as BoundServer[];
    const name = listenerName(WILDCARD_ADDRESS, port);
    const statPrefix = `outbound_${name}`;
    const chains: Json[] = [];
    const seen = new Set<string>();
    const push = (match: Json, c: Json) => {
      const k = JSON.stringify(match);
      if (seen.has(k)) return;
      seen.add(k);
      chains.push({ name: c.name, ...(Object.keys(match).length ? { filter_chain_match: match } : {}), ...c });
    };
    // TLS-terminated HTTP servers: one chain and route configuration each.
    for (const bs of servers.filter((s) => serverKind(s.server) === 'https')) {
      const rc = gatewayHttpsRouteConfigName(port, bs.server.port.name ?? '', bs.gateway.metadata.name, bs.gateway.metadata.namespace);
      routes.push(gatewayRouteConfiguration(scope, rc, port, [bs]));
      push(sniMatch(bs.server), {
        name: rc,
        filters: [hcm(statPrefix, rc)],
        transport_socket: downstreamTls(bs.server.tls ?? {}, true),
      });
    }
    // TLS passthrough: SNI chains from bound VirtualServices' tls routes.
    for (const bs of servers.filter((s) => serverKind(s.server) === 'passthrough')) {
      const ctx: RouteContext = { scope, listenerPort: port, gateways: [bs.key], proxyless: false };
      for (const vs of boundVirtualServices(scope, bs.key)) {
        for (const c of tlsRouteChains(ctx, vs, {})) {
          push((c.chain.filter_chain_match as Json) ?? {}, { name: c.chain.name, filters: [...security.tcp, ...(c.chain.filters as Json[])] });
        }
      }
    }
    // Plain HTTP servers share `http.<port>`.
    const httpServers = servers.filter((s) => serverKind(s.server) === 'http');
    if (httpServers.length) {
      const rc = gatewayHttpRouteConfigName(port);
      routes.push(gatewayRouteConfiguration(scope, rc, port, httpServers));
      push({}, { name: rc, filters: [hcm(statPrefix, rc)] });
    }
    // TCP servers (optionally TLS-terminated): the first applicable tcp route of a bound VS.
    for (const bs of servers.filter((s) => serverKind(s.server) === 'tcp' || serverKind(s.server) === 'tls-terminated-tcp')) {
      const ctx: RouteContext = { scope, listenerPort: port, gateways: [bs.key], proxyless: false };
      for (const vs of boundVirtualServices(scope, bs.key)) {
        const proxy = tcpRouteProxy(ctx, vs);
        if (!proxy) continue;
        const terminated = serverKind(bs.server) === 'tls-terminated-tcp';
        push(terminated ? sniMatch(bs.server) : {}, {
          name: `${bs.key}:${port}`,
          filters: withNetworkFilters(security.tcp, proxy),
          ...(terminated ? { transport_socket: downstreamTls(bs.server.tls ?? {}, false) } : {}),
        });
        break;
      }
    }
    if (chains.length === 0) continue;
    const tls = chains.some((c) => c.transport_socket || (c.filter_chain_match as Json | undefined)?.server_names);
    listeners.push({
      name,
      address: socketAddress(WILDCARD_ADDRESS, port),
      filter_chains: chains,
      ...(tls ? { listener_filters: [listenerFilter(FILTER.TlsInspector)] } : {}),
      traffic_direction: 'OUTBOUND',
    });
  }
  return { listeners, routes };
}
