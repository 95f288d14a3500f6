// Test support: drive real Weft proxies with hand-written Envoy resources. A real AdsServer whose
// "translation" returns what the test set for each proxy (by WORKLOAD_NAME), plus builders for
// the Istio-shaped security config the translator emits: SDS `default`/`ROOTCA` from `sds-grpc`,
// transport_socket_matches for auto mTLS, inbound DownstreamTlsContext chains.
import { createLogger } from '../../src/log/logger';
import type { GeneratedResourceSet } from '../../src/xds/server/ads-server';
import type { EnvoyJsonResource } from '../../src/xds/server/resource-cache';
import { TypeUrl } from '../../src/xds/protos';
import { parseProxyNode } from '../../src/xds/translate';
import { startAdsHarness, type AdsHarness } from './ads-harness';
import { SnapshotSequence } from './mesh-resources';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface ProxyResources {
  clusters?: Json[];
  endpoints?: Json[];
  listeners?: Json[];
  routes?: Json[];
}

export interface StaticAds {
  ads: AdsHarness;
  address: string;
  /** Replaces what the proxy with WORKLOAD_NAME `name` gets, and pushes it. */
  set(name: string, resources: ProxyResources): Promise<void>;
  close(): Promise<void>;
}

function byName(list: Json[] | undefined, key = 'name'): ReadonlyMap<string, EnvoyJsonResource> {
  const map = new Map<string, EnvoyJsonResource>();
  for (const r of list ?? []) {
    const name = String(r[key]);
    if (key === 'cluster_name') Object.defineProperty(r, 'name', { value: name, enumerable: false });
    map.set(name, r as EnvoyJsonResource);
  }
  return map;
}

export async function startStaticAds(): Promise<StaticAds> {
  const configs = new Map<string, GeneratedResourceSet>();
  const seq = new SnapshotSequence();
  const ads = await startAdsHarness({
    initial: seq.next([]),
    debounceAfterMs: 5,
    debounceMaxMs: 20,
    parseNode: parseProxyNode,
    generate: (_snapshot, proxy) => configs.get(proxy.workloadName ?? '') ?? {},
    logLevel: 'error',
  });
  return {
    ads,
    address: ads.address,
    set: async (name, r) => {
      configs.set(name, {
        [TypeUrl.Cluster]: byName(r.clusters),
        [TypeUrl.ClusterLoadAssignment]: byName(r.endpoints, 'cluster_name'),
        [TypeUrl.Listener]: byName(r.listeners),
        [TypeUrl.RouteConfiguration]: byName(r.routes),
      });
      ads.server.publish(seq.next([]));
      await ads.server.waitForConvergence({ timeoutMs: 10_000 });
    },
    close: () => ads.close(),
  };
}

export const testLogger = () => createLogger({ level: process.env.WEFT_TEST_LOGS === '1' ? 'debug' : 'error', write: (l) => process.stderr.write(l + '\n') });

// ---------------------------------------------------------------------------------------------
// Envoy resources, Istio-shaped

export const TYPES = {
  hcm: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  tcpProxy: 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  upstreamTls: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  downstreamTls: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  rawBuffer: 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer',
  tlsInspector: 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
  httpInspector: 'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector',
};

/** Istio's SdsSecretConfig: the agent's SDS server, cluster sds-grpc. */
export function sdsSecret(name: 'default' | 'ROOTCA' | string): Json {
  return {
    name,
    sds_config: {
      api_config_source: {
        api_type: 'GRPC',
        transport_api_version: 'V3',
        grpc_services: [{ envoy_grpc: { cluster_name: 'sds-grpc' } }],
        set_node_on_first_message_only: true,
      },
      initial_fetch_timeout: '0s',
      resource_api_version: 'V3',
    },
  };
}

/** The UpstreamTlsContext Istio sends for ISTIO_MUTUAL / auto mTLS. */
export function istioUpstreamTls(sni: string, subjectAltNames: string[], alpn = ['istio-peer-exchange', 'istio']): Json {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': TYPES.upstreamTls,
      sni,
      common_tls_context: {
        tls_params: { tls_minimum_protocol_version: 'TLSv1_3' },
        alpn_protocols: alpn,
        tls_certificate_sds_secret_configs: [sdsSecret('default')],
        combined_validation_context: {
          default_validation_context: { match_subject_alt_names: subjectAltNames.map((exact) => ({ exact })) },
          validation_context_sds_secret_config: sdsSecret('ROOTCA'),
        },
      },
    },
  };
}

/** Istio's auto-mTLS pair: mTLS to endpoints labelled tlsMode=istio, plaintext to the rest. */
export function istioTransportSocketMatches(sni: string, subjectAltNames: string[]): Json[] {
  return [
    { name: 'tlsMode-istio', match: { tlsMode: 'istio' }, transport_socket: istioUpstreamTls(sni, subjectAltNames) },
    { name: 'tlsMode-disabled', match: {}, transport_socket: { name: 'envoy.transport_sockets.raw_buffer', typed_config: { '@type': TYPES.rawBuffer } } },
  ];
}

/** The DownstreamTlsContext of Istio's inbound mTLS chains. */
export function istioDownstreamTls(o: { requireClientCertificate?: boolean; alpn?: string[] } = {}): Json {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': TYPES.downstreamTls,
      require_client_certificate: o.requireClientCertificate ?? true,
      common_tls_context: {
        tls_params: { tls_minimum_protocol_version: 'TLSv1_3' },
        alpn_protocols: o.alpn ?? ['h2', 'http/1.1'],
        tls_certificate_sds_secret_configs: [sdsSecret('default')],
        combined_validation_context: { default_validation_context: {}, validation_context_sds_secret_config: sdsSecret('ROOTCA') },
      },
    },
  };
}

/**
 * An HTTP connection manager with an inline route config: every request to `cluster`, or with a
 * map, Host `domain` (any port) to its cluster.
 */
export function httpConnectionManager(
  statPrefix: string,
  cluster: string | Record<string, string>,
  o: { requestHeadersToAdd?: Record<string, string>; retry?: Json } = {},
): Json {
  const hosts = typeof cluster === 'string' ? { '*': cluster } : cluster;
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': TYPES.hcm,
      stat_prefix: statPrefix,
      route_config: {
        name: statPrefix,
        virtual_hosts: Object.entries(hosts).map(([domain, target]) => ({
          name: domain,
          domains: domain === '*' ? ['*'] : [domain, `${domain}:*`],
          routes: [{ match: { prefix: '/' }, route: { cluster: target, timeout: '10s', ...(o.retry ? { retry_policy: o.retry } : {}) } }],
          request_headers_to_add: Object.entries(o.requestHeadersToAdd ?? {}).map(([key, value]) => ({ header: { key, value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' })),
        })),
      },
      http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': TYPES.router } }],
    },
  };
}

export function tcpProxy(statPrefix: string, cluster: string): Json {
  return { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TYPES.tcpProxy, stat_prefix: statPrefix, cluster } };
}

export function listener(name: string, port: number, filterChains: Json[], o: { inspectors?: boolean } = {}): Json {
  return {
    name,
    address: { socket_address: { address: '0.0.0.0', port_value: port } },
    ...(o.inspectors === false
      ? {}
      : {
          listener_filters: [
            { name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': TYPES.tlsInspector } },
            { name: 'envoy.filters.listener.http_inspector', typed_config: { '@type': TYPES.httpInspector } },
          ],
        }),
    filter_chains: filterChains,
  };
}

export function staticCluster(name: string, address: string, port: number, extra: Json = {}): Json {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '2s',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address, port_value: port } } } }] }] },
    ...extra,
  };
}

export function edsCluster(name: string, extra: Json = {}): Json {
  return { name, type: 'EDS', connect_timeout: '2s', eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: name }, ...extra };
}

/** A ClusterLoadAssignment; `tlsMode: 'istio'` marks an endpoint with a sidecar, as Istio's EDS does. */
export function loadAssignment(clusterName: string, endpoints: { address: string; port: number; tlsMode?: string }[]): Json {
  return {
    cluster_name: clusterName,
    endpoints: [
      {
        lb_endpoints: endpoints.map((e) => ({
          endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } },
          ...(e.tlsMode ? { metadata: { filter_metadata: { 'envoy.transport_socket_match': { tlsMode: e.tlsMode }, istio: { workload: 'test' } } } } : {}),
        })),
      },
    ],
  };
}
