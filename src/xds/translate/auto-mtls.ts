// Istio mutual TLS between sidecars: the Upstream/DownstreamTlsContexts with SDS certificates, and
// the client-side decision per outbound cluster (Istio's cluster_builder buildAutoMtlsSettings):
// DestinationRule ISTIO_MUTUAL, or auto mTLS by endpoint (transport_socket_matches on the EDS
// `tlsMode` metadata), or plaintext.
import { spiffeId } from '../../ca/spiffe';
import type { ClientTLSSettings } from '../../config/resources';
import type { MeshEndpoint, MeshService } from '../../registry/types';
import type { ClusterDiscovery } from './clusters';
import { namespaceMtlsMode } from './peer-authentication';
import type { ProxyScope } from './scope';
import { deepFreeze } from './shared-resources';
import { FILTER, TYPE } from './values';

type Json = Record<string, unknown>;

/** The EDS metadata namespace Envoy matches transport_socket_matches against. */
export const TRANSPORT_SOCKET_MATCH_METADATA = 'envoy.transport_socket_match';

/** SDS secret names the proxy serves from its own identity (Istio's names). */
export const SDS_WORKLOAD_CERT = 'default';
export const SDS_ROOT_CA = 'ROOTCA';
/** The bootstrap cluster of the proxy's local SDS server (Istio's `sds-grpc`). */
export const SDS_CLUSTER = 'sds-grpc';

/** ALPN a client offers on Istio mTLS connections (Istio's mtlsTCPWithMxcALPNs). */
const ISTIO_MTLS_ALPN = ['istio-peer-exchange', 'istio'];

/**
 * TLS 1.3 minimum on both ends of Istio mTLS: a Weft choice (Istio defaults to 1.2, see
 * meshConfig.meshMTLS.minProtocolVersion), safe because every peer is a Weft proxy.
 */
const MESH_MTLS_MIN_VERSION = 'TLSv1_3';

// The constant parts of mesh TLS contexts are built once and shared (deep-frozen) by every cluster
// and inbound chain that uses them: thousands of clusters carry them.

/** The SDS config source for the proxy's identity secrets: the local SDS server, over gRPC. */
const SDS_CONFIG: Json = deepFreeze({
  api_config_source: {
    api_type: 'GRPC',
    transport_api_version: 'V3',
    grpc_services: [{ envoy_grpc: { cluster_name: SDS_CLUSTER } }],
    set_node_on_first_message_only: true,
  },
  initial_fetch_timeout: '0s',
  resource_api_version: 'V3',
});
const TLS_PARAMS: Json = deepFreeze({ tls_minimum_protocol_version: MESH_MTLS_MIN_VERSION });
const WORKLOAD_CERT_SDS: Json[] = deepFreeze([{ name: SDS_WORKLOAD_CERT, sds_config: SDS_CONFIG }]);
const ROOT_CA_SDS: Json = deepFreeze({ name: SDS_ROOT_CA, sds_config: SDS_CONFIG });
const UPSTREAM_ALPN: string[] = deepFreeze([...ISTIO_MTLS_ALPN]);

function meshCommonTlsContext(alpn: string[], sans: readonly string[]): Json {
  return {
    tls_params: TLS_PARAMS,
    alpn_protocols: alpn,
    tls_certificate_sds_secret_configs: WORKLOAD_CERT_SDS,
    combined_validation_context: {
      default_validation_context: sans.length ? { match_subject_alt_names: sans.map((exact) => ({ exact })) } : {},
      validation_context_sds_secret_config: ROOT_CA_SDS,
    },
  };
}

/** The client side of Istio mTLS: SDS identity, the mesh root CA, and the peer's SANs. */
export function istioUpstreamTlsSocket(sni: string, sans: readonly string[]): Json {
  return {
    name: FILTER.TlsTransportSocket,
    typed_config: { '@type': TYPE.UpstreamTlsContext, sni, common_tls_context: meshCommonTlsContext(UPSTREAM_ALPN, sans) },
  };
}

/**
 * The server side of Istio mTLS on inbound chains: a client certificate is required and must chain
 * to the mesh root CA; which identities may call is AuthorizationPolicy's business, not the TLS layer's.
 */
export function istioDownstreamTlsSocket(): Json {
  return DOWNSTREAM_TLS_SOCKET;
}
const DOWNSTREAM_TLS_SOCKET: Json = deepFreeze({
  name: FILTER.TlsTransportSocket,
  typed_config: {
    '@type': TYPE.DownstreamTlsContext,
    require_client_certificate: true,
    common_tls_context: meshCommonTlsContext(['h2', 'http/1.1'], []),
  },
});

export function rawBufferSocket(): Json {
  return RAW_BUFFER_SOCKET;
}
const RAW_BUFFER_SOCKET: Json = deepFreeze({ name: FILTER.RawBufferTransportSocket, typed_config: { '@type': TYPE.RawBuffer } });

/** Istio's BuildDNSSrvSubsetKey, the SNI of mesh mTLS: `outbound_.9080_.v1_.reviews.default.svc.cluster.local`. */
export function istioMtlsSni(host: string, port: number, subset = ''): string {
  return `outbound_.${port}_.${subset}_.${host}`;
}


/**
 * How a cluster reaches its endpoints with Istio mTLS: `istio` = always (DestinationRule
 * ISTIO_MUTUAL); `auto` = to endpoints whose EDS metadata says `tlsMode: istio`, plaintext to the
 * rest. Part of the cluster's memo inputs (clusters.ts), so it is plain data.
 */
export interface UpstreamMtls {
  readonly kind: 'istio' | 'auto';
  readonly sni: string;
  /** Sorted, unique. */
  readonly sans: readonly string[];
}

export interface UpstreamMtlsInputs {
  readonly service: MeshService;
  readonly port: number;
  readonly subset: string | undefined;
  /** The cluster's merged DestinationRule tls setting, if any. */
  readonly tls: ClientTLSSettings | undefined;
  readonly discovery: ClusterDiscovery;
  /** The registry endpoints behind the cluster (port and subset applied). */
  readonly endpoints: readonly MeshEndpoint[];
}

/**
 * Istio's buildAutoMtlsSettings for one outbound cluster:
 *
 * - a DestinationRule `tls` decides when set: ISTIO_MUTUAL -> mTLS to every endpoint (its `sni`
 *   and `subjectAltNames` override the defaults); any other mode -> not Istio mTLS (DISABLE is
 *   plaintext; SIMPLE / MUTUAL are translated from their files by clusters.ts);
 * - otherwise auto mTLS, unless meshConfig.enableAutoMtls is false, the service is MESH_EXTERNAL,
 *   its namespace's (else the mesh's) PeerAuthentication is DISABLE, no endpoint has a sidecar,
 *   or, for a passthrough (original destination) cluster, some endpoint has none.
 *
 * SANs: the SPIFFE identities of the endpoints that have a sidecar, plus the ServiceEntry's
 * subjectAltNames.
 */
export function planUpstreamMtls(scope: ProxyScope, i: UpstreamMtlsInputs): UpstreamMtls | undefined {
  const { mesh } = scope;
  const sans = () => endpointSans(scope, i.service, i.endpoints);
  if (i.tls) {
    if (i.tls.mode !== 'ISTIO_MUTUAL') return undefined;
    return {
      kind: 'istio',
      sni: i.tls.sni ?? istioMtlsSni(i.service.hostname, i.port, i.subset),
      sans: i.tls.subjectAltNames?.length ? [...new Set(i.tls.subjectAltNames)].sort() : sans(),
    };
  }
  if (mesh.enableAutoMtls === false || i.service.location === 'MESH_EXTERNAL') return undefined;
  // No endpoint with a sidecar: every connection would be plaintext anyway. Istio still emits the
  // socket matches (its clusters do not change with endpoints); Weft's already do (the SANs), and
  // leaving them out keeps clusters of identity-less workloads free of SDS secrets, which a proxy
  // without an identity cannot load.
  if (!i.endpoints.some((ep) => ep.tlsMode === 'istio')) return undefined;
  if (i.discovery === 'ORIGINAL_DST' && i.endpoints.some((ep) => ep.tlsMode !== 'istio')) return undefined;
  if (namespaceMtlsMode(scope.snapshot, scope.snapshotIndex, i.service.namespace) === 'DISABLE') return undefined;
  return { kind: 'auto', sni: istioMtlsSni(i.service.hostname, i.port, i.subset), sans: sans() };
}

function endpointSans(scope: ProxyScope, service: MeshService, endpoints: readonly MeshEndpoint[]): string[] {
  const out = new Set<string>();
  for (const ep of endpoints) {
    if (ep.tlsMode !== 'istio' || !ep.serviceAccount) continue;
    const namespace = ep.workload ? ep.workload.slice(0, ep.workload.indexOf('/')) : service.namespace;
    out.add(spiffeId(scope.mesh.trustDomain, namespace, ep.serviceAccount));
  }
  for (const san of service.subjectAltNames ?? []) out.add(san);
  return [...out].sort();
}

/** The cluster fields for an UpstreamMtls: one transport_socket, or Istio's two socket matches. */
export function upstreamMtlsFields(m: UpstreamMtls): Json {
  const mtls = istioUpstreamTlsSocket(m.sni, m.sans);
  if (m.kind === 'istio') return { transport_socket: mtls };
  return {
    transport_socket_matches: [
      { name: 'tlsMode-istio', match: { tlsMode: 'istio' }, transport_socket: mtls },
      { name: 'tlsMode-disabled', match: {}, transport_socket: rawBufferSocket() },
    ],
  };
}
