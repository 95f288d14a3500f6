// Builders of Istio / Kubernetes resources for tests, shaped exactly as users write them in YAML,
// and a snapshot builder on top of the real createSnapshot.
import type {
  ConfigResource,
  DestinationRuleSpec,
  GatewaySpec,
  KubeServicePort,
  ResourceKind,
  ServiceEntrySpec,
  SidecarSpec,
  SpecOf,
  VirtualServiceSpec,
  WorkloadEntrySpec,
} from '../../src/config/resources';
import { createSnapshot, type MeshSnapshot } from '../../src/model/snapshot';

const API_VERSIONS: Record<ResourceKind, string> = {
  VirtualService: 'networking.istio.io/v1',
  DestinationRule: 'networking.istio.io/v1',
  Gateway: 'networking.istio.io/v1',
  ServiceEntry: 'networking.istio.io/v1',
  WorkloadEntry: 'networking.istio.io/v1',
  Sidecar: 'networking.istio.io/v1',
  Service: 'v1',
  PeerAuthentication: 'security.istio.io/v1',
  AuthorizationPolicy: 'security.istio.io/v1',
  RequestAuthentication: 'security.istio.io/v1',
  Telemetry: 'telemetry.istio.io/v1',
};

/** A resource of `kind` in `namespace/name` form (namespace defaults to `default`). */
export function resource<K extends ResourceKind>(kind: K, ref: string, spec: SpecOf<K>, labels?: Record<string, string>): ConfigResource<K> {
  const [namespace, name] = ref.includes('/') ? ref.split('/', 2) : ['default', ref];
  return {
    apiVersion: API_VERSIONS[kind],
    kind,
    metadata: { name, namespace, ...(labels ? { labels } : {}) },
    spec,
    origin: { source: 'test' },
  } as ConfigResource<K>;
}

/** A Kubernetes Service selecting workloads by `selector` (WorkloadEntries with those labels). */
export function kubeService(ref: string, ports: KubeServicePort[], selector: Record<string, string>, clusterIP?: string): ConfigResource<'Service'> {
  return resource('Service', ref, { selector, ports, ...(clusterIP ? { clusterIP } : {}) });
}

export function workloadEntry(ref: string, spec: WorkloadEntrySpec): ConfigResource<'WorkloadEntry'> {
  return resource('WorkloadEntry', ref, spec);
}

export function destinationRule(ref: string, spec: DestinationRuleSpec): ConfigResource<'DestinationRule'> {
  return resource('DestinationRule', ref, spec);
}

export function virtualService(ref: string, spec: VirtualServiceSpec): ConfigResource<'VirtualService'> {
  return resource('VirtualService', ref, spec);
}

export function sidecarResource(ref: string, spec: SidecarSpec): ConfigResource<'Sidecar'> {
  return resource('Sidecar', ref, spec);
}

export function gateway(ref: string, spec: GatewaySpec): ConfigResource<'Gateway'> {
  return resource('Gateway', ref, spec);
}

export function serviceEntry(ref: string, spec: ServiceEntrySpec): ConfigResource<'ServiceEntry'> {
  return resource('ServiceEntry', ref, spec);
}

/** Builds snapshots with increasing sequence numbers (v1, v2, ...), as the control plane does. */
export class SnapshotSequence {
  private sequence = 0;

  next(resources: Iterable<ConfigResource>, reason = 'test'): MeshSnapshot {
    return createSnapshot({ sequence: ++this.sequence, reason, resources: [...resources].map(cloneResource) });
  }
}

/** createSnapshot freezes what it gets; tests keep editing their own copies. */
function cloneResource(r: ConfigResource): ConfigResource {
  return structuredClone(r);
}
