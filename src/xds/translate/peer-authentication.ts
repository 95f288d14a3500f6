// PeerAuthentication: the mTLS mode a workload accepts on each port (Istio's
// ComposePeerAuthentication), and the best-effort mode of a service's namespace that client-side
// auto mTLS reads (Istio's BestEffortInferServiceMTLSMode / GetNamespaceMutualTLSMode).
import type { MeshSnapshot } from '../../model/snapshot';
import type { SnapshotIndex } from './snapshot-index';
import type { MtlsModeSpec, PeerAuthenticationResource } from './security-selection';
import { policyApplies } from './security-selection';

/** What an inbound port accepts: mTLS only, both, or plaintext only. */
export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

/** A workload's merged PeerAuthentication: a mode, overridden per workload (target) port. */
export interface WorkloadMtls {
  readonly mode: MtlsMode;
  readonly perPort: ReadonlyMap<number, MtlsMode>;
}

function isSet(mode: MtlsModeSpec | undefined): mode is MtlsMode {
  return mode !== undefined && mode !== 'UNSET';
}

/**
 * Istio's ComposePeerAuthentication over the policies that apply to one workload (those of its
 * namespace and the root namespace whose selector matches it, in Istio's order: oldest first):
 *
 * - levels: mesh (root namespace, no selector) < namespace (no selector) < workload (selector,
 *   not in the root namespace; root-namespace policies with a selector are ignored, as in Istio);
 * - within a level the oldest policy wins (then the first by name);
 * - UNSET (or no `mtls`) inherits from the level above; nothing at all is PERMISSIVE;
 * - `portLevelMtls` of the workload policy overrides per port, UNSET inheriting the workload mode.
 *
 * An empty `matchLabels` counts as no selector.
 */
export function composePeerAuthentication(rootNamespace: string, policies: readonly PeerAuthenticationResource[]): WorkloadMtls {
  let mesh: PeerAuthenticationResource | undefined;
  let namespace: PeerAuthenticationResource | undefined;
  let workload: PeerAuthenticationResource | undefined;
  for (const p of policies) {
    const selector = p.spec.selector?.matchLabels;
    if (!selector || Object.keys(selector).length === 0) {
      if (p.metadata.namespace === rootNamespace) mesh ??= p;
      else namespace ??= p;
    } else if (p.metadata.namespace !== rootNamespace) {
      workload ??= p;
    }
  }
  let mode: MtlsMode = 'PERMISSIVE';
  for (const level of [mesh, namespace, workload]) {
    const m = level?.spec.mtls?.mode;
    if (isSet(m)) mode = m;
  }
  const perPort = new Map<number, MtlsMode>();
  for (const [port, setting] of Object.entries(workload?.spec.portLevelMtls ?? {})) {
    perPort.set(Number(port), isSet(setting.mode) ? setting.mode : mode);
  }
  return { mode, perPort };
}

export function mtlsModeForPort(mtls: WorkloadMtls, port: number): MtlsMode {
  return mtls.perPort.get(port) ?? mtls.mode;
}

/**
 * The merged PeerAuthentication of a workload in `namespace` with `labels`, memoized per snapshot
 * by the labels object (registry endpoints and proxy nodes keep theirs for the snapshot's life).
 */
export function workloadMtls(snapshot: MeshSnapshot, index: SnapshotIndex, namespace: string, labels: Readonly<Record<string, string>>): WorkloadMtls {
  const memo = index.security.peerAuthenticationMemo as WeakMap<object, Map<string, WorkloadMtls>>;
  let byNamespace = memo.get(labels);
  const known = byNamespace?.get(namespace);
  if (known) return known;
  const root = snapshot.meshConfig.rootNamespace;
  const subject = { namespace, labels, gateway: false };
  const namespaces = namespace === root ? [root] : [namespace, root];
  const applicable: PeerAuthenticationResource[] = [];
  for (const ns of namespaces) {
    for (const p of index.security.peerAuthentications.get(ns) ?? []) if (policyApplies(p, subject)) applicable.push(p);
  }
  const merged = composePeerAuthentication(root, applicable);
  if (!byNamespace) memo.set(labels, (byNamespace = new Map()));
  byNamespace.set(namespace, merged);
  return merged;
}

/**
 * Whether some workload of `namespace` may have mTLS DISABLE on some port: only a policy of that
 * namespace or of the root namespace can say so (a fast path for EDS).
 */
export function mtlsMayBeDisabled(snapshot: MeshSnapshot, index: SnapshotIndex, namespace: string): boolean {
  const { mtlsDisabledNamespaces } = index.security;
  return mtlsDisabledNamespaces.has(namespace) || mtlsDisabledNamespaces.has(snapshot.meshConfig.rootNamespace);
}

/**
 * Istio's GetNamespaceMutualTLSMode: the mode of the namespace's selector-less policy when set,
 * else the mesh policy's when set, else undefined (Istio's MTLSUnknown; auto mTLS then assumes
 * PERMISSIVE). Workload and port-level policies are not considered: a client cannot know which
 * workload it will reach (the endpoint metadata covers those, see endpoints.ts).
 */
export function namespaceMtlsMode(snapshot: MeshSnapshot, index: SnapshotIndex, namespace: string): MtlsMode | undefined {
  const root = snapshot.meshConfig.rootNamespace;
  const levelMode = (ns: string): MtlsMode | undefined => {
    const p = (index.security.peerAuthentications.get(ns) ?? []).find((x) => Object.keys(x.spec.selector?.matchLabels ?? {}).length === 0);
    const m = p?.spec.mtls?.mode;
    return isSet(m) ? m : undefined;
  };
  return (namespace !== root ? levelMode(namespace) : undefined) ?? levelMode(root);
}
