// The service registry: which services exist, on which ports and protocols, and which endpoints
// serve them. Derived (purely) from Service + WorkloadEntry and ServiceEntry resources.
import type { ServiceEntrySpec } from '../config/resources';

/** Istio's protocol names, from port name prefix, appProtocol or protocol field. */
export type Protocol =
  | 'HTTP'
  | 'HTTP2'
  | 'GRPC'
  | 'GRPC-WEB'
  | 'HTTPS'
  | 'TLS'
  | 'TCP'
  | 'MONGO'
  | 'MYSQL'
  | 'REDIS'
  | 'UDP'
  | 'UNKNOWN';

export interface ServicePortInfo {
  /** Port name as declared (Kubernetes port name or ServiceEntry port name). */
  name: string;
  /** The service port clients dial. */
  port: number;
  protocol: Protocol;
  /** Port on the workload; endpoints may override per port name (WorkloadEntry.ports). */
  targetPort?: number;
}

export interface MeshService {
  /** Fully qualified host: `reviews.default.svc.cluster.local` or a ServiceEntry host. */
  hostname: string;
  namespace: string;
  /** Kubernetes service name, or the host itself for ServiceEntry hosts. */
  name: string;
  ports: ServicePortInfo[];
  /** Kubernetes Services resolve as STATIC (endpoints pushed by EDS). */
  resolution: NonNullable<ServiceEntrySpec['resolution']>;
  location: 'MESH_INTERNAL' | 'MESH_EXTERNAL';
  /** Virtual IPs / CIDRs (ServiceEntry.addresses, Service.clusterIP). */
  addresses: string[];
  exportTo?: string[];
  /** Resource key (`Kind/ns/name`) of the declaring resource. */
  declaredBy: string;
  /** ServiceEntry.subjectAltNames: extra SANs accepted from this service's endpoints under mTLS. */
  subjectAltNames?: string[];
}

/**
 * Istio's `security.istio.io/tlsMode` of an endpoint: `istio` when it runs a sidecar that accepts
 * Istio mTLS, `disabled` otherwise (any other label value is kept as written, as Istio does).
 */
export type TlsMode = 'istio' | 'disabled' | (string & {});

/** The label Istio reads an endpoint's TlsMode from. */
export const TLS_MODE_LABEL = 'security.istio.io/tlsMode';

export interface MeshEndpoint {
  /** IP address (or hostname for DNS resolution). */
  address: string;
  /** Port to dial on this endpoint for the given service port. */
  port: number;
  /** Service port number this endpoint serves. */
  servicePort: number;
  labels: Record<string, string>;
  serviceAccount?: string;
  locality?: string;
  weight?: number;
  network?: string;
  /** `namespace/name` of the WorkloadEntry behind it, when there is one. */
  workload?: string;
  /** Whether the endpoint speaks Istio mTLS (see TlsMode); `disabled` when unknown. */
  tlsMode: TlsMode;
}

export interface Workload {
  name: string;
  namespace: string;
  address: string;
  labels: Record<string, string>;
  serviceAccount: string;
  ports: Record<string, number>;
  locality?: string;
  network?: string;
  weight?: number;
  /** See TlsMode. */
  tlsMode: TlsMode;
}

/** Immutable once built. Maps are keyed by FQDN hostname; iteration order is sorted. */
export interface ServiceRegistry {
  services: ReadonlyMap<string, MeshService>;
  /** hostname -> endpoints for every port of that service. */
  endpoints: ReadonlyMap<string, readonly MeshEndpoint[]>;
  /** `namespace/name` -> workload (from WorkloadEntry). */
  workloads: ReadonlyMap<string, Workload>;
}
