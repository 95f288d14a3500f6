// DestinationRule selection and traffic-policy merging, as Istio's push context and
// MergeTrafficPolicy do it: which rule applies to a host, and which settings apply to a port/subset.
import type { DestinationRuleSpec, Subset, TrafficPolicy } from '../../config/resources';
import { hostCovers, labelsMatch } from '../../registry/hosts';
import type { DestinationRuleResource, ProxyScope } from './scope';
import { isExportedTo } from './scope';

/** The settings of a TrafficPolicy that apply to one cluster (port-level settings folded in). */
export type EffectivePolicy = Omit<TrafficPolicy, 'portLevelSettings'>;

/**
 * The DestinationRule for `hostname` seen from the proxy, in Istio's precedence: rules in the
 * proxy's namespace (workloadSelector-matched first), then rules in the service's namespace
 * exported to the proxy, then the root namespace's. Within a tier the most specific host wins
 * (exact before wildcard, longer wildcard first), then namespace/name order.
 */
export function findDestinationRule(
  scope: ProxyScope,
  hostname: string,
  serviceNamespace: string,
): DestinationRuleResource | undefined {
  const memoKey = `${hostname}|${serviceNamespace}`;
  const { drMemo, drExact, drWildcard } = scope.index;
  if (drMemo.has(memoKey)) return drMemo.get(memoKey);
  const { proxy, mesh } = scope;
  const candidates = [...(drExact.get(hostname) ?? []), ...drWildcard.filter((c) => hostCovers(c.host, hostname))].sort(
    (a, b) => a.order - b.order,
  );
  const exported = (dr: DestinationRuleResource) => isExportedTo(dr.spec.exportTo, dr.metadata.namespace, proxy.namespace);
  const selects = (dr: DestinationRuleResource) =>
    !dr.spec.workloadSelector || labelsMatch(dr.spec.workloadSelector.matchLabels, proxy.labels);

  const local = candidates.filter((c) => c.dr.metadata.namespace === proxy.namespace && exported(c.dr) && selects(c.dr));
  let found = mostSpecific(local.filter((c) => c.dr.spec.workloadSelector), hostname) ?? mostSpecific(local, hostname);
  for (const ns of [serviceNamespace, mesh.rootNamespace]) {
    if (found || ns === proxy.namespace) continue;
    found = mostSpecific(
      candidates.filter((c) => c.dr.metadata.namespace === ns && !c.dr.spec.workloadSelector && exported(c.dr)),
      hostname,
    );
  }
  drMemo.set(memoKey, found);
  return found;
}

function mostSpecific(rules: { dr: DestinationRuleResource; host: string }[], hostname: string): DestinationRuleResource | undefined {
  let best: DestinationRuleResource | undefined;
  let bestScore = -1;
  for (const { dr, host } of rules) {
    const score = host === hostname ? Number.MAX_SAFE_INTEGER : host.length;
    if (score > bestScore) {
      best = dr;
      bestScore = score;
    }
  }
  return best;
}

/**
 * Istio's MergeTrafficPolicy: start from `base` with its port-level settings for `port` applied,
 * then every field the subset sets replaces the base's field whole, then the subset's own
 * port-level settings for `port` replace connectionPool/outlierDetection/loadBalancer/tls whole
 * (port-level policies do not inherit).
 */
export function mergeTrafficPolicy(base: TrafficPolicy | undefined, subset: TrafficPolicy | undefined, port: number): EffectivePolicy {
  const start = applyPortLevel(base, port);
  if (!subset) return start;
  const merged: EffectivePolicy = { ...start };
  if (subset.connectionPool) merged.connectionPool = subset.connectionPool;
  if (subset.outlierDetection) merged.outlierDetection = subset.outlierDetection;
  if (subset.loadBalancer) merged.loadBalancer = subset.loadBalancer;
  if (subset.tls) merged.tls = subset.tls;
  if (subset.tunnel) merged.tunnel = subset.tunnel;
  if (subset.proxyProtocol) merged.proxyProtocol = subset.proxyProtocol;
  return overridePortLevel(merged, subset, port);
}

function applyPortLevel(policy: TrafficPolicy | undefined, port: number): EffectivePolicy {
  if (!policy) return {};
  const { portLevelSettings: _ignored, ...rest } = policy;
  return overridePortLevel(rest, policy, port);
}

function overridePortLevel(target: EffectivePolicy, source: TrafficPolicy, port: number): EffectivePolicy {
  const pls = (source.portLevelSettings ?? []).find((p) => p.port?.number === port);
  if (!pls) return target;
  const out: EffectivePolicy = { ...target };
  delete out.connectionPool;
  delete out.outlierDetection;
  delete out.loadBalancer;
  delete out.tls;
  if (pls.connectionPool) out.connectionPool = pls.connectionPool;
  if (pls.outlierDetection) out.outlierDetection = pls.outlierDetection;
  if (pls.loadBalancer) out.loadBalancer = pls.loadBalancer;
  if (pls.tls) out.tls = pls.tls;
  return out;
}

/** The policy for one cluster: `outbound|port|subset|host` (subset '' = the service cluster). */
export function effectivePolicy(dr: DestinationRuleSpec | undefined, port: number, subset?: Subset): EffectivePolicy {
  return mergeTrafficPolicy(dr?.trafficPolicy, subset?.trafficPolicy, port);
}

export function findSubset(dr: DestinationRuleSpec | undefined, name: string): Subset | undefined {
  return dr?.subsets?.find((s) => s.name === name);
}
