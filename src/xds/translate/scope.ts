// The per-proxy view of the mesh (Istio's SidecarScope): which services, VirtualServices and
// DestinationRules a proxy sees after exportTo and the Sidecar resource's egress hosts.
import type { ConfigResource, IstioEgressListener } from '../../config/resources';
import type { ProxyNode } from '../../model/proxy';
import type { MeshConfig, MeshSnapshot } from '../../model/snapshot';
import { hostCovers, hostsIntersect, labelsMatch, toFqdn } from '../../registry/hosts';
import type { MeshService } from '../../registry/types';

export type VirtualServiceResource = ConfigResource<'VirtualService'>;
export type DestinationRuleResource = ConfigResource<'DestinationRule'>;

/** Everything one translation reads. Immutable; built once per (snapshot, proxy). */
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
}

type VsSection = 'http' | 'tcp' | 'tls';

/** Precomputed lookups for one scope. Only translation code in this folder reads it. */
export interface ScopeIndex {
  /** Mesh-bound VirtualServices with rules of a section, by exact FQDN host, in namespace/name order. */
  readonly vsExact: Record<VsSection, Map<string, VirtualServiceResource[]>>;
  /** The same for wildcard hosts. */
  readonly vsWildcard: Record<VsSection, { host: string; vs: VirtualServiceResource }[]>;
  /** Every DestinationRule with its resolved host and its position in namespace/name order. */
  readonly drExact: Map<string, { dr: DestinationRuleResource; host: string; order: number }[]>;
  readonly drWildcard: { dr: DestinationRuleResource; host: string; order: number }[];
  /** Memo of findDestinationRule results by `host|serviceNamespace`. */
  readonly drMemo: Map<string, DestinationRuleResource | undefined>;
}

function buildIndex(snapshot: MeshSnapshot, virtualServices: readonly VirtualServiceResource[]): ScopeIndex {
  const suffix = snapshot.meshConfig.domainSuffix;
  const sections: VsSection[] = ['http', 'tcp', 'tls'];
  const vsExact = { http: new Map(), tcp: new Map(), tls: new Map() } as ScopeIndex['vsExact'];
  const vsWildcard = { http: [], tcp: [], tls: [] } as ScopeIndex['vsWildcard'];
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
  const drExact: ScopeIndex['drExact'] = new Map();
  const drWildcard: ScopeIndex['drWildcard'] = [];
  snapshot.byKind.DestinationRule.forEach((dr, order) => {
    const host = toFqdn(dr.spec.host, dr.metadata.namespace, suffix);
    if (host.startsWith('*')) drWildcard.push({ dr, host, order });
    else {
      const list = drExact.get(host) ?? [];
      list.push({ dr, host, order });
      drExact.set(host, list);
    }
  });
  return { vsExact, vsWildcard, drExact, drWildcard, drMemo: new Map() };
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
export function findSidecar(snapshot: MeshSnapshot, proxy: ProxyNode): ConfigResource<'Sidecar'> | undefined {
  const all = snapshot.byKind.Sidecar;
  const inNs = all.filter((s) => s.metadata.namespace === proxy.namespace);
  return (
    inNs.find((s) => s.spec.workloadSelector?.labels && labelsMatch(s.spec.workloadSelector.labels, proxy.labels)) ??
    inNs.find((s) => !s.spec.workloadSelector) ??
    all.find((s) => s.metadata.namespace === snapshot.meshConfig.rootNamespace && !s.spec.workloadSelector)
  );
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

export function buildProxyScope(snapshot: MeshSnapshot, proxy: ProxyNode): ProxyScope {
  const mesh = snapshot.meshConfig;
  // Gateways are not scoped by Sidecar resources (Istio applies Sidecar to sidecars only).
  const sidecar = proxy.type === 'router' ? undefined : findSidecar(snapshot, proxy);
  const egress = sidecar && (sidecar.spec.egress ?? []).length > 0 ? parseEgressHosts(sidecar) : undefined;

  const services = [...snapshot.registry.services.values()].filter((svc) => {
    if (!isExportedTo(svc.exportTo, svc.namespace, proxy.namespace)) return false;
    if (!egress) return true;
    return egress.some((e) => egressNamespaceMatches(e, svc.namespace) && hostCovers(e.host, svc.hostname));
  });

  const virtualServices = snapshot.byKind.VirtualService.filter((vs) => {
    const ns = vs.metadata.namespace;
    if (!isExportedTo(vs.spec.exportTo, ns, proxy.namespace)) return false;
    if (!egress) return true;
    const hosts = (vs.spec.hosts ?? []).map((h) => toFqdn(h, ns, mesh.domainSuffix));
    return egress.some((e) => egressNamespaceMatches(e, ns) && hosts.some((h) => hostsIntersect(e.host, h)));
  });

  return {
    snapshot,
    proxy,
    mesh,
    services,
    servicesByHost: new Map(services.map((s) => [s.hostname, s])),
    virtualServices,
    ...(sidecar ? { sidecar } : {}),
    outboundTrafficPolicy: sidecar?.spec.outboundTrafficPolicy?.mode ?? mesh.outboundTrafficPolicy,
    index: buildIndex(snapshot, virtualServices),
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
