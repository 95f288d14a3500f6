// The immutable, versioned mesh snapshot: every accepted resource plus the registry derived from
// them. Translation reads only this; a new snapshot is built for every accepted change.
import type { ConfigResource, ResourceKind } from '../config/resources';
import { resourceKey } from '../config/resources';
import { buildServiceRegistry } from '../registry/registry';
import type { ServiceRegistry } from '../registry/types';

export interface MeshConfig {
  /** Root namespace: mesh-wide Sidecar / PeerAuthentication live here (Istio: istio-system). */
  rootNamespace: string;
  /** DNS suffix of Kubernetes-style service names. */
  domainSuffix: string;
  trustDomain: string;
  outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  /**
   * Istio's meshConfig.enableAutoMtls (default true): clusters without a DestinationRule `tls`
   * setting use Istio mTLS to endpoints that have a sidecar and plaintext to the others.
   */
  enableAutoMtls?: boolean;
  /**
   * Istio's meshConfig.pathNormalization, applied to inbound and gateway HTTP connection managers
   * before routing and authorization. Weft's default is DECODE_AND_MERGE_SLASHES (Istio's is BASE):
   * see docs/ARCHITECTURE.md, "Decisions and deviations".
   */
  pathNormalization?: { normalization?: PathNormalization };
  /**
   * Istio's meshConfig.accessLogFile: where every HTTP connection manager and tcp_proxy writes
   * its access log (e.g. /dev/stdout); unset or empty: no access log. A Telemetry resource (or
   * defaultProviders.accessLogging) that speaks of access logging decides instead.
   */
  accessLogFile?: string;
  /** meshConfig.accessLogEncoding; default TEXT. */
  accessLogEncoding?: 'TEXT' | 'JSON';
  /**
   * meshConfig.accessLogFormat: Envoy command operators (TEXT), or a JSON object of field name to
   * operator (JSON); empty: Istio's default format for the encoding.
   */
  accessLogFormat?: string;
  /**
   * Istio's meshConfig.enableTracing (default true). Istio's fallback when no Telemetry resource
   * and no default provider says anything about tracing; Weft has no bootstrap tracer to fall back
   * on, so then nothing is traced (see src/xds/translate/tracing.ts).
   */
  enableTracing?: boolean;
  /** meshConfig.defaultConfig: the ProxyConfig defaults Weft reads. */
  defaultConfig?: ProxyConfigDefaults;
  /**
   * meshConfig.extensionProviders, Istio's shape. Istio's built-ins `envoy` (file access log to
   * /dev/stdout) and `prometheus` exist even when not listed (see meshExtensionProviders).
   */
  extensionProviders?: readonly ExtensionProvider[];
  /** meshConfig.defaultProviders: what applies where no Telemetry resource names providers. */
  defaultProviders?: DefaultProviders;
}

/** The ProxyConfig fields of meshConfig.defaultConfig that Weft reads. */
export interface ProxyConfigDefaults {
  /** The mesh id (the `istio.mesh_id` span tag); Istio's default is the trust domain. */
  meshId?: string;
  tracing?: {
    /** Percent of requests randomly sampled, 0..100 (Istio: 1.0; out of range means 1.0). */
    sampling?: number;
    customTags?: Readonly<Record<string, TracingCustomTag>>;
    maxPathTagLength?: number;
  };
}

/** A custom span tag (Telemetry `customTags` and ProxyConfig `tracing.custom_tags`). */
export interface TracingCustomTag {
  literal?: { value: string };
  environment?: { name: string; defaultValue?: string };
  header?: { name: string; defaultValue?: string };
}

/** One meshConfig.extensionProviders entry: a name and exactly one provider kind. */
export interface ExtensionProvider {
  name: string;
  opentelemetry?: OpenTelemetryProvider;
  envoyFileAccessLog?: FileAccessLogProvider;
  prometheus?: Record<string, never>;
  /** Istio provider kinds Weft accepts in the file but cannot serve (zipkin, datadog, ...). */
  unsupported?: string;
}

export interface OpenTelemetryProvider {
  /** The collector's host name (a mesh service or any resolvable name/IP). */
  service: string;
  port: number;
  maxTagLength?: number;
  /** OTLP/HTTP export; Weft proxies export over HTTP only. */
  http?: {
    /** Default /v1/traces. */
    path?: string;
    /** Istio duration; default 5s. */
    timeout?: string;
    headers?: readonly { name: string; value?: string; envName?: string }[];
  };
}

export interface FileAccessLogProvider {
  path: string;
  logFormat?: { text?: string; labels?: Readonly<Record<string, string>> };
}

export interface DefaultProviders {
  tracing?: readonly string[];
  accessLogging?: readonly string[];
  metrics?: readonly string[];
}

/** Istio's built-in providers, present unless the mesh config defines one of the same name. */
export const BUILT_IN_EXTENSION_PROVIDERS: readonly ExtensionProvider[] = Object.freeze([
  Object.freeze({ name: 'envoy', envoyFileAccessLog: Object.freeze({ path: '/dev/stdout' }) }),
  Object.freeze({ name: 'prometheus', prometheus: Object.freeze({}) as Record<string, never> }),
]);

/** The mesh's extension providers: its own, then the built-ins it does not redefine. */
export function meshExtensionProviders(mesh: MeshConfig): readonly ExtensionProvider[] {
  const own = mesh.extensionProviders ?? [];
  const names = new Set(own.map((p) => p.name.toLowerCase()));
  return [...own, ...BUILT_IN_EXTENSION_PROVIDERS.filter((p) => !names.has(p.name))];
}

/** Istio's default random sampling percentage (PILOT_TRACE_SAMPLING). */
export const DEFAULT_TRACE_SAMPLING = 1.0;

/** Istio's ProxyPathNormalization values (DEFAULT means BASE, as in Istio). */
export type PathNormalization = 'DEFAULT' | 'NONE' | 'BASE' | 'MERGE_SLASHES' | 'DECODE_AND_MERGE_SLASHES';

/** Weft's default path normalization (stricter than Istio's BASE). */
export const DEFAULT_PATH_NORMALIZATION: PathNormalization = 'DECODE_AND_MERGE_SLASHES';

export const DEFAULT_MESH_CONFIG: MeshConfig = Object.freeze({
  rootNamespace: 'istio-system',
  domainSuffix: 'cluster.local',
  trustDomain: 'cluster.local',
  outboundTrafficPolicy: 'ALLOW_ANY',
  enableAutoMtls: true,
  pathNormalization: Object.freeze({ normalization: DEFAULT_PATH_NORMALIZATION }),
  enableTracing: true,
});

type ByKind = { readonly [K in ResourceKind]: readonly ConfigResource<K>[] };

/** Immutable: never mutate a snapshot or anything reachable from it. */
export interface MeshSnapshot {
  /** `v<sequence>`; also used as the xDS version_info of pushes built from it. */
  readonly version: string;
  readonly sequence: number;
  readonly createdAt: string;
  /** Why this snapshot exists, e.g. `file change: reviews.yaml`. */
  readonly reason: string;
  readonly meshConfig: MeshConfig;
  /** Every accepted resource by `Kind/namespace/name`, in sorted key order. */
  readonly resources: ReadonlyMap<string, ConfigResource>;
  /** The same resources grouped by kind, each list sorted by namespace then name. */
  readonly byKind: ByKind;
  readonly registry: ServiceRegistry;
}

const ALL_KINDS: readonly ResourceKind[] = [
  'VirtualService',
  'DestinationRule',
  'Gateway',
  'ServiceEntry',
  'WorkloadEntry',
  'Sidecar',
  'Service',
  'PeerAuthentication',
  'AuthorizationPolicy',
  'RequestAuthentication',
  'Telemetry',
];

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}

export interface SnapshotInput {
  sequence: number;
  reason: string;
  resources: Iterable<ConfigResource>;
  meshConfig?: MeshConfig;
  createdAt?: Date;
}

export function createSnapshot(input: SnapshotInput): MeshSnapshot {
  const sorted = [...input.resources].sort((a, b) => (resourceKey(a) < resourceKey(b) ? -1 : 1));
  const resources = new Map<string, ConfigResource>();
  const byKind = Object.fromEntries(ALL_KINDS.map((k) => [k, [] as ConfigResource[]])) as unknown as Record<
    ResourceKind,
    ConfigResource[]
  >;
  for (const r of sorted) {
    deepFreeze(r);
    resources.set(resourceKey(r), r);
    byKind[r.kind]?.push(r);
  }
  const meshConfig = input.meshConfig ?? DEFAULT_MESH_CONFIG;
  return Object.freeze({
    version: `v${input.sequence}`,
    sequence: input.sequence,
    createdAt: (input.createdAt ?? new Date()).toISOString(),
    reason: input.reason,
    meshConfig,
    resources,
    byKind: Object.freeze(byKind) as ByKind,
    registry: buildServiceRegistry(sorted, meshConfig),
  });
}
