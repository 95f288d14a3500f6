// The per-proxy view of the mesh (Istio's SidecarScope): which services, VirtualServices and
// DestinationRules a proxy sees after exportTo and the Sidecar resource's egress hosts.
import type { ConfigResource, IstioEgressListener } from '../../config/resources';
import type { ProxyNode } from '../../model/proxy';
import type { MeshConfig, MeshSnapshot } from '../../model/snapshot';
import { hostCovers, hostsIntersect, labelsMatch, toFqdn } from '../../registry/hosts';
import type { MeshService } from '../../registry/types';
import type { SharedResources } from './shared-resources';
import { unsharedResources } from './shared-resources';
import type { IndexedDestinationRule, SnapshotIndex } from './snapshot-index';
import { buildSnapshotIndex } from './snapshot-index';

export type VirtualServiceResource = ConfigResource<'VirtualService'>;
export type DestinationRuleResource = ConfigResource<'DestinationRule'>;

/**
 * Everything one translation reads. Immutable; built once per (snapshot, proxy). Everything but
 * `proxy` and `index.drMemo` is shared with every proxy of the same view (see ScopeView).
 */
export interface ProxyScope {
  readonly snapshot: MeshSnapshot;
  readonly proxy: ProxyNode;
  readonly mesh: MeshConfig;
  /** Services the proxy may reach, sorted by hostname. */
  readonly services: readonly MeshService[];
  readonly servicesByHost: ReadonlyMap<string, MeshService>;
  /** VirtualServices exported to (and, for sidecars, selected by) the proxy, sorted by namespace/name. */
  readonly virtualServices: readonly VirtualServiceResource[];
  /** The Sidecar resource that applies to the proxy, if any. */
  readonly sidecar?: ConfigResource<'Sidecar'>;
  readonly outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  /** Lookup indexes and memos built with the scope (translation is O(services), not O(services x rules)). */
  readonly index: ScopeIndex;
  /** Resources built earlier from equal inputs, for reuse (see SharedResources). */
  readonly shared: SharedResources;
  /** The snapshot's lookups (shared by every proxy of the snapshot). */
  readonly snapshotIndex: SnapshotIndex;
}

type VsSection = 'http' | 'tcp' | 'tls';

/** Precomputed lookups for one scope. Only translation code in this folder reads it. */
export interface ScopeIndex {
  /** Mesh-bound VirtualServices with rules of a section, by exact FQDN host, in namespace/name order. */
  readonly vsExact: Record<VsSection, ReadonlyMap<string, readonly VirtualServiceResource[]>>;
  /** The same for wildcard hosts. */
  readonly vsWildcard: Record<VsSection, readonly { host: string; vs: VirtualServiceResource }[]>;
  /** Every DestinationRule with its resolved host and its position in namespace/name order. */
  readonly drExact: ReadonlyMap<string, readonly IndexedDestinationRule[]>;
  readonly drWildcard: readonly IndexedDestinationRule[];
  /** Memo of findDestinationRule results by `host|serviceNamespace` (per proxy: it depends on labels). */
  readonly drMemo: Map<string, DestinationRuleResource | undefined>;
}

/**
 * The part of a scope that depends only on the snapshot and the proxy's view key (type,
 * namespace, Sidecar resource; see scopeViewKey): Istio's SidecarScope, shared by every proxy
 * with that key.
 */
export interface ScopeView {
  readonly services: readonly MeshService[];
  readonly servicesByHost: ReadonlyMap<string, MeshService>;
  readonly virtualServices: readonly VirtualServiceResource[];
  readonly sidecar?: ConfigResource<'Sidecar'>;
  readonly outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  readonly vsExact: ScopeIndex['vsExact'];
  readonly vsWildcard: ScopeIndex['vsWildcard'];
}

/**
 * What the translations of one snapshot share: its index, the scope views built so far by view
 * key, and the resource memos. The translator keeps one per snapshot; buildProxyScope without
 * one builds a private one (nothing shared).
 */
export interface SnapshotShare {
  readonly index: SnapshotIndex;
  readonly views: Map<string, ScopeView>;
  readonly resources: SharedResources;
}

export function privateSnapshotShare(snapshot: MeshSnapshot): SnapshotShare {
  return { index: buildSnapshotIndex(snapshot), views: new Map(), resources: unsharedResources() };
}

function buildVsIndex(snapshot: MeshSnapshot, virtualServices: readonly VirtualServiceResource[]): Pick<ScopeView, 'vsExact' | 'vsWildcard'> {
  const suffix = snapshot.meshConfig.domainSuffix;
  const sections: VsSection[] = ['http', 'tcp', 'tls'];
  const vsExact = { http: new Map(), tcp: new Map(), tls: new Map() } as Record<VsSection, Map<string, VirtualServiceResource[]>>;
  const vsWildcard = { http: [], tcp: [], tls: [] } as Record<VsSection, { host: string; vs: VirtualServiceResource }[]>;
  for (const vs of virtualServices) {
    if (!isMeshVirtualService(vs)) continue;
    const hosts = virtualServiceHosts(vs, suffix);
    for (const section of sections) {
      if ((vs.spec[section] ?? []).length === 0) continue;
      for (const host of hosts) {
        if (host.startsWith('*')) vsWildcard[section].push({ host, vs });
        else {
          const list = vsExact[section].get(host) ?? [];
          list.push(vs);
          vsExact[section].set(host, list);
        }
      }
    }
  }
  return { vsExact, vsWildcard };
}

/** Istio exportTo: unset or `*` = everywhere, `.` = own namespace, `~` = nowhere, else names. */
export function isExportedTo(exportTo: readonly string[] | undefined, ownerNamespace: string, toNamespace: string): boolean {
  if (!exportTo || exportTo.length === 0) return true;
  return exportTo.some((e) => e === '*' || e === toNamespace || (e === '.' && ownerNamespace === toNamespace));
}

/**
 * The Sidecar for a workload: one in its namespace whose workloadSelector matches its labels,
 * else its namespace's selector-less Sidecar, else the root namespace's (Istio's precedence;
 * several candidates: first by name).
 */
export function findSidecar(
  snapshot: MeshSnapshot,
  proxy: ProxyNode,
  index: SnapshotIndex = buildSnapshotIndex(snapshot),
): ConfigResource<'Sidecar'> | undefined {
  const inNs = index.sidecarsByNamespace.get(proxy.namespace) ?? [];
  const inRoot = index.sidecarsByNamespace.get(snapshot.meshConfig.rootNamespace) ?? [];
  return (
    inNs.find((s) => s.spec.workloadSelector?.labels && labelsMatch(s.spec.workloadSelector.labels, proxy.labels)) ??
    inNs.find((s) => !s.spec.workloadSelector) ??
    inRoot.find((s) => !s.spec.workloadSelector)
  );
}

/**
 * The key of a proxy's ScopeView: proxy type, namespace and the Sidecar resource that applies
 * (its namespace/name). Everything a view holds is a function of the snapshot and this key.
 */
export function scopeViewKey(proxy: ProxyNode, sidecar: ConfigResource<'Sidecar'> | undefined): string {
  return JSON.stringify([proxy.type, proxy.namespace, sidecar ? `${sidecar.metadata.namespace}/${sidecar.metadata.name}` : '']);
}

interface EgressHost {
  namespace: string | '*' | '~';
  host: string;
}

function parseEgressHosts(sidecar: ConfigResource<'Sidecar'>): EgressHost[] {
  const out: EgressHost[] = [];
  const listeners: IstioEgressListener[] = sidecar.spec.egress ?? [];
  for (const l of listeners) {
    for (const h of l.hosts ?? []) {
      const slash = h.indexOf('/');
      const ns = slash >= 0 ? h.slice(0, slash) : '*';
      const host = slash >= 0 ? h.slice(slash + 1) : h;
      out.push({ namespace: ns === '.' ? sidecar.metadata.namespace : ns, host });
    }
  }
  return out;
}

function egressNamespaceMatches(e: EgressHost, namespace: string): boolean {
  return e.namespace === '*' || e.namespace === namespace;
}

/**
 * The proxy's scope. `share` (one per snapshot, from the translator) lets proxies with the same
 * view key share the view; without it everything is built for this proxy alone.
 */
export function buildProxyScope(snapshot: MeshSnapshot, proxy: ProxyNode, share: SnapshotShare = privateSnapshotShare(snapshot)): ProxyScope {
  // Gateways are not scoped by Sidecar resources (Istio applies Sidecar to sidecars only).
  const sidecar = proxy.type === 'router' ? undefined : findSidecar(snapshot, proxy, share.index);
  const key = scopeViewKey(proxy, sidecar);
  let view = share.views.get(key);
  if (!view) {
    view = buildScopeView(snapshot, proxy.namespace, sidecar);
    share.views.set(key, view);
  }
  return {
    snapshot,
    proxy,
    mesh: snapshot.meshConfig,
    services: view.services,
    servicesByHost: view.servicesByHost,
    virtualServices: view.virtualServices,
    ...(view.sidecar ? { sidecar: view.sidecar } : {}),
    outboundTrafficPolicy: view.outboundTrafficPolicy,
    index: {
      vsExact: view.vsExact,
      vsWildcard: view.vsWildcard,
      drExact: share.index.drExact,
      drWildcard: share.index.drWildcard,
      drMemo: new Map(),
    },
    shared: share.resources,
    snapshotIndex: share.index,
  };
}

/** A view reads the proxy's namespace and Sidecar only (never its labels, addresses or name). */
function buildScopeView(snapshot: MeshSnapshot, namespace: string, sidecar: ConfigResource<'Sidecar'> | undefined): ScopeView {
  const mesh = snapshot.meshConfig;
  const egress = sidecar && (sidecar.spec.egress ?? []).length > 0 ? parseEgressHosts(sidecar) : undefined;

  const services = [...snapshot.registry.services.values()].filter((svc) => {
    if (!isExportedTo(svc.exportTo, svc.namespace, namespace)) return false;
    if (!egress) return true;
    return egress.some((e) => egressNamespaceMatches(e, svc.namespace) && hostCovers(e.host, svc.hostname));
  });

  const virtualServices = snapshot.byKind.VirtualService.filter((vs) => {
    const ns = vs.metadata.namespace;
    if (!isExportedTo(vs.spec.exportTo, ns, namespace)) return false;
    if (!egress) return true;
    const hosts = (vs.spec.hosts ?? []).map((h) => toFqdn(h, ns, mesh.domainSuffix));
    return egress.some((e) => egressNamespaceMatches(e, ns) && hosts.some((h) => hostsIntersect(e.host, h)));
  });

  return {
    services,
    servicesByHost: new Map(services.map((s) => [s.hostname, s])),
    virtualServices,
    ...(sidecar ? { sidecar } : {}),
    outboundTrafficPolicy: sidecar?.spec.outboundTrafficPolicy?.mode ?? mesh.outboundTrafficPolicy,
    ...buildVsIndex(snapshot, virtualServices),
  };
}

/** VirtualServices bound to the sidecar mesh: no `gateways`, or `gateways` naming `mesh`. */
export function isMeshVirtualService(vs: VirtualServiceResource): boolean {
  const gws = vs.spec.gateways;
  return !gws || gws.length === 0 || gws.includes('mesh');
}

/** VS hosts as FQDNs (short names resolve in the VirtualService's namespace). */
export function virtualServiceHosts(vs: VirtualServiceResource, domainSuffix: string): string[] {
  return (vs.spec.hosts ?? []).map((h) => toFqdn(h, vs.metadata.namespace, domainSuffix));
}

/**
 * The mesh VirtualService routing a service's `http`, `tcp` or `tls` traffic: the first (by
 * namespace/name) with rules of that kind whose host names the service exactly, else the first
 * whose wildcard host covers it; Istio lets one VirtualService own a host per protocol.
 */
export function meshVirtualServiceFor(
  scope: ProxyScope,
  hostname: string,
  section: VsSection,
): VirtualServiceResource | undefined {
  const exact = scope.index.vsExact[section].get(hostname);
  if (exact) return exact[0];
  return scope.index.vsWildcard[section].find((w) => hostCovers(w.host, hostname))?.vs;
}
