// Workload metadata as Istio's metadata exchange carries it: the proxy's own (from its bootstrap
// node), a peer's (from the `x-envoy-peer-metadata` header or the TCP exchange preamble, a
// base64 / binary google.protobuf.Struct in Istio's field names, so Weft and Istio sidecars can
// read each other), and an endpoint's (EDS `filter_metadata.istio.workload`,
// `name;namespace;canonical-service;revision;cluster`). What the standard metrics' source_* and
// destination_* labels are made of.
import { decodeStruct, encodeStruct, type ProtoStruct, type ProtoValue } from './protobuf-struct';

/** Request (client sidecar -> server) and response (server -> client) headers of HTTP metadata exchange. */
export const PEER_METADATA_HEADER = 'x-envoy-peer-metadata';
export const PEER_METADATA_ID_HEADER = 'x-envoy-peer-metadata-id';

/** Istio's default cluster id (also the last field of EDS `istio.workload`). */
export const DEFAULT_CLUSTER_ID = 'Kubernetes';

/** Immutable. Empty strings mean "not known" (the metrics print `unknown`). */
export interface WorkloadMetadata {
  /** NAME: the instance (pod) name. */
  readonly instance: string;
  readonly namespace: string;
  readonly workload: string;
  readonly cluster: string;
  /** Labels `service.istio.io/canonical-name` / `-revision`. */
  readonly canonicalService: string;
  readonly canonicalRevision: string;
  /** Labels `app` / `version`. */
  readonly app: string;
  readonly version: string;
  /** Only endpoint metadata says this (Weft's EDS `istio.service_account`). */
  readonly serviceAccount?: string;
}

// Istio's field names (extensions/common/metadata_object.h).
const NAME = 'NAME';
const NAMESPACE = 'NAMESPACE';
const WORKLOAD_NAME = 'WORKLOAD_NAME';
const CLUSTER_ID = 'CLUSTER_ID';
const LABELS = 'LABELS';
const CANONICAL_NAME_LABEL = 'service.istio.io/canonical-name';
const CANONICAL_REVISION_LABEL = 'service.istio.io/canonical-revision';
const APP_LABEL = 'app';
const VERSION_LABEL = 'version';

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/**
 * The proxy's own metadata from its xDS node (id `TYPE~IP~POD.NS~NS.svc.cluster.local`, metadata
 * NAMESPACE, WORKLOAD_NAME, LABELS, CLUSTER_ID). The canonical service and revision follow
 * Istio's injector: the canonical labels, else `app.kubernetes.io/name|version`, else
 * `app`/`version`, else the workload name and `latest`.
 */
export function workloadFromNode(id: string, metadata: Readonly<Record<string, unknown>> = {}): WorkloadMetadata {
  const podPart = id.split('~')[2] ?? '';
  const dot = podPart.indexOf('.');
  const pod = dot >= 0 ? podPart.slice(0, dot) : podPart;
  const podNamespace = dot >= 0 ? podPart.slice(dot + 1) : '';
  const raw = metadata[LABELS];
  const labels: Record<string, string> = {};
  if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
    for (const [k, v] of Object.entries(raw as Record<string, unknown>)) if (typeof v === 'string') labels[k] = v;
  }
  const workload = str(metadata[WORKLOAD_NAME]) || pod;
  const app = labels[APP_LABEL] ?? labels['app.kubernetes.io/name'] ?? '';
  const version = labels[VERSION_LABEL] ?? labels['app.kubernetes.io/version'] ?? '';
  return Object.freeze({
    instance: pod || workload,
    namespace: str(metadata[NAMESPACE]) || podNamespace,
    workload,
    cluster: str(metadata[CLUSTER_ID]) || DEFAULT_CLUSTER_ID,
    canonicalService: labels[CANONICAL_NAME_LABEL] ?? (app || workload),
    canonicalRevision: labels[CANONICAL_REVISION_LABEL] ?? (version || 'latest'),
    app,
    version,
  });
}

/** Istio's convertWorkloadMetadataToStruct: what goes on the wire. */
export function workloadToStruct(w: WorkloadMetadata): ProtoStruct {
  const labels: ProtoStruct = {};
  if (w.canonicalService) labels[CANONICAL_NAME_LABEL] = w.canonicalService;
  if (w.canonicalRevision) labels[CANONICAL_REVISION_LABEL] = w.canonicalRevision;
  if (w.app) labels[APP_LABEL] = w.app;
  if (w.version) labels[VERSION_LABEL] = w.version;
  const out: ProtoStruct = { [LABELS]: labels };
  if (w.instance) out[NAME] = w.instance;
  if (w.namespace) out[NAMESPACE] = w.namespace;
  if (w.workload) out[WORKLOAD_NAME] = w.workload;
  if (w.cluster) out[CLUSTER_ID] = w.cluster;
  return out;
}

/** Istio's convertStructToWorkloadMetadata (unknown fields are ignored). */
export function workloadFromStruct(s: ProtoStruct): WorkloadMetadata {
  const labelsValue: ProtoValue | undefined = s[LABELS];
  const labels = labelsValue && typeof labelsValue === 'object' && !Array.isArray(labelsValue) ? labelsValue : ({} as ProtoStruct);
  return Object.freeze({
    instance: str(s[NAME]),
    namespace: str(s[NAMESPACE]),
    workload: str(s[WORKLOAD_NAME]),
    cluster: str(s[CLUSTER_ID]),
    canonicalService: str(labels[CANONICAL_NAME_LABEL]),
    canonicalRevision: str(labels[CANONICAL_REVISION_LABEL]),
    app: str(labels[APP_LABEL]),
    version: str(labels[VERSION_LABEL]),
  });
}

/** The `x-envoy-peer-metadata` value for `w`: base64 of the serialized Struct. */
export function encodePeerHeader(w: WorkloadMetadata): string {
  return encodeStruct(workloadToStruct(w)).toString('base64');
}

/** Parses an `x-envoy-peer-metadata` value; undefined when it is not one. */
export function decodePeerHeader(value: string): WorkloadMetadata | undefined {
  if (!value) return undefined;
  try {
    return workloadFromStruct(decodeStruct(Buffer.from(value, 'base64')));
  } catch {
    return undefined;
  }
}

/**
 * EDS endpoint metadata `istio.workload` (`name;namespace;canonical-service;revision;cluster`,
 * Istio's convertEndpointMetadata). It carries no app or version. Undefined when malformed.
 */
export function workloadFromEndpointMetadata(encoded: string, serviceAccount?: string): WorkloadMetadata | undefined {
  const parts = encoded.split(';');
  if (parts.length < 5) return undefined;
  return Object.freeze({
    instance: '',
    workload: parts[0],
    namespace: parts[1],
    canonicalService: parts[2],
    canonicalRevision: parts[3],
    cluster: parts[4],
    app: '',
    version: '',
    ...(serviceAccount ? { serviceAccount } : {}),
  });
}

/** What EDS says about an endpoint, for telemetry (Istio's `istio` and transport-socket metadata). */
export interface EndpointPeer {
  /** From `istio.workload` (and `istio.service_account`); absent when the endpoint has none. */
  readonly metadata?: WorkloadMetadata;
  /** tlsMode `istio`: a sidecar is in front of it, so it takes part in metadata exchange. */
  readonly sidecar: boolean;
}

/**
 * Reads `filter_metadata.istio` / `envoy.transport_socket_match` of an EDS endpoint; undefined
 * when neither says anything. Never fails: telemetry metadata is not worth a NACK.
 */
export function endpointPeer(filterMetadata: unknown): EndpointPeer | undefined {
  if (!filterMetadata || typeof filterMetadata !== 'object') return undefined;
  const fm = filterMetadata as Record<string, { workload?: unknown; service_account?: unknown; tlsMode?: unknown } | undefined>;
  const istio = fm.istio;
  const metadata =
    typeof istio?.workload === 'string'
      ? workloadFromEndpointMetadata(istio.workload, typeof istio.service_account === 'string' ? istio.service_account : undefined)
      : undefined;
  const sidecar = fm['envoy.transport_socket_match']?.tlsMode === 'istio';
  if (!metadata && !sidecar) return undefined;
  return Object.freeze({ ...(metadata ? { metadata } : {}), sidecar });
}

/** Istio's getNamespace: the `/ns/<namespace>/` part of a SPIFFE principal. */
export function principalNamespace(principal: string): string {
  const at = principal.indexOf('/ns/');
  if (at < 0) return '';
  const start = at + 4;
  const end = principal.indexOf('/', start);
  return end < 0 ? principal.slice(start) : principal.slice(start, end);
}

/**
 * Decoded peer headers by value. Every request of one peer carries the same value, so decoding
 * is a map lookup after the first; bounded because the values come from the network.
 */
export class PeerMetadataCache {
  private readonly byValue = new Map<string, WorkloadMetadata | null>();
  // Each header arrives as a new string, and a map lookup hashes all of it (a few hundred
  // characters); comparing with the few values seen last is a memcmp, and usually a hit.
  private readonly recentValues: string[] = [];
  private readonly recentPeers: (WorkloadMetadata | null)[] = [];
  private next = 0;

  constructor(private readonly capacity = 1024) {}

  get(value: string): WorkloadMetadata | undefined {
    const recent = this.recentValues;
    for (let i = 0; i < recent.length; i++) if (recent[i] === value) return this.recentPeers[i] ?? undefined;
    let w = this.byValue.get(value);
    if (w === undefined) {
      if (this.byValue.size >= this.capacity) this.byValue.clear();
      w = decodePeerHeader(value) ?? null;
      this.byValue.set(value, w);
    }
    this.recentValues[this.next] = value;
    this.recentPeers[this.next] = w;
    this.next = (this.next + 1) % RECENT_PEERS;
    return w ?? undefined;
  }
}

const RECENT_PEERS = 4;
