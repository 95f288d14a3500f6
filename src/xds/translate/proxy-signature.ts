// What a proxy's translation depends on besides the snapshot, as cache keys: two proxies with
// equal keys get equal resources of that kind (Istio keys its cluster and route caches the same
// way, by what a resource really depends on). Addresses, workload name and interception mode matter
// only inbound; security policy selection matters inbound and on gateways.
import type { ProxyNode } from '../../model/proxy';
import type { MeshSnapshot } from '../../model/snapshot';
import { labelsMatch } from '../../registry/hosts';
import { localitySignature } from './endpoints';
import { inboundPlacementKey } from './inbound';
import { findSidecar, scopeViewKey } from './scope';
import type { SnapshotIndex } from './snapshot-index';
import { telemetrySignature } from './tracing';

export interface ProxySignature {
  /** Proxy type, namespace and the Sidecar resource that applies: decides the ScopeView. */
  readonly view: string;
  /**
   * Which workloadSelector DestinationRules of the proxy's namespace select it (the only rules
   * whose choice depends on labels): clusters, and routes' consistent-hash policies.
   */
  readonly destinationRules: string;
  /** Which distinct VirtualService `http` sourceLabels the proxy's labels satisfy: routes. */
  readonly httpSourceLabels: string;
  /** Which distinct VirtualService `tcp`/`tls` sourceLabels they satisfy: listeners. */
  readonly l4SourceLabels: string;
  /** Routers: which Gateways select the proxy. Empty for other proxies. */
  readonly gateways: string;
  /**
   * Which security policy selectors (PeerAuthentication, AuthorizationPolicy,
   * RequestAuthentication; Gateway targetRefs as gateway-name labels) of the proxy's namespace and
   * of the root namespace its labels satisfy: inbound chains and gateway filters.
   */
  readonly security: string;
  /** Sidecars: INTERCEPTION_MODE and, in standalone mode, the bind and app addresses (inbound.ts). */
  readonly inbound: string;
  /**
   * What Telemetry and tracing make of this proxy (the HCMs' `tracing`, which carries its
   * canonical service, and the access-log decision): listeners. '' when nothing is traced.
   */
  readonly telemetry: string;
  /** Where the proxy runs, for locality-aware EDS ('' without a locality): clusters. */
  readonly locality: string;
}

export function proxySignature(snapshot: MeshSnapshot, index: SnapshotIndex, proxy: ProxyNode): ProxySignature {
  const sidecar = proxy.type === 'router' ? undefined : findSidecar(snapshot, proxy, index);
  const { labels } = proxy;
  return {
    view: scopeViewKey(proxy, sidecar),
    destinationRules: matchBits(index.drSelectorsByNamespace.get(proxy.namespace), labels),
    httpSourceLabels: matchBits(index.httpSourceLabels, labels),
    l4SourceLabels: matchBits(index.l4SourceLabels, labels),
    gateways: proxy.type === 'router' ? matchBits(index.gatewaySelectors, labels) : '',
    security: securityBits(snapshot, index, proxy),
    inbound: proxy.type === 'sidecar' ? inboundPlacementKey(proxy) : '',
    telemetry: proxy.type === 'proxyless' ? '' : telemetrySignature(snapshot, proxy),
    locality: localitySignature(snapshot, index, proxy),
  };
}

function securityBits(snapshot: MeshSnapshot, index: SnapshotIndex, proxy: ProxyNode): string {
  const { selectorsByNamespace } = index.security;
  const root = snapshot.meshConfig.rootNamespace;
  const own = matchBits(selectorsByNamespace.get(proxy.namespace), proxy.labels);
  return proxy.namespace === root ? own : `${own}|${matchBits(selectorsByNamespace.get(root), proxy.labels)}`;
}

/** One character per selector: `1` when the labels satisfy it (labelsMatch), else `0`. */
function matchBits(selectors: readonly (Record<string, string> | undefined)[] | undefined, labels: Record<string, string>): string {
  let bits = '';
  for (const s of selectors ?? []) bits += labelsMatch(s, labels) ? '1' : '0';
  return bits;
}
