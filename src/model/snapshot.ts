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
}

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

/** The most recent snapshots, newest last; bounded so memory stays flat. */
export class SnapshotHistory {
  private readonly entries: MeshSnapshot[] = [];
  constructor(private readonly capacity = 50) {}

  record(snapshot: MeshSnapshot): void {
    this.entries.push(snapshot);
    if (this.entries.length > this.capacity) this.entries.shift();
  }

  latest(): MeshSnapshot | undefined {
    return this.entries[this.entries.length - 1];
  }

  find(version: string): MeshSnapshot | undefined {
    return this.entries.find((s) => s.version === version);
  }

  list(): readonly MeshSnapshot[] {
    return [...this.entries];
  }
}
