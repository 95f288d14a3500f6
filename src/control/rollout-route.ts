// The VirtualService edits of a progressive rollout, as pure functions: find the service's route,
// read which subsets it sends to now, and write the weighted route of a step the way Istio users
// write a traffic shift (one http rule, one destination per subset with a weight). Other rules,
// hosts and fields of the VirtualService are kept as they are.
import type { ConfigResource, HTTPRoute, HTTPRouteDestination, VirtualServiceSpec } from '../config/resources';
import { toFqdn } from '../registry/hosts';
import type { RolloutWeight } from './rollout-contract';

/** A destination traffic moves away from: its subset ('' for the service's endpoints without one) and current weight. */
export interface SourceDestination {
  subset: string;
  weight: number;
  /** The destination as written (host spelling, port), reused in every step. */
  destination: HTTPRouteDestination['destination'];
}

/** The plain manifest written for a step (what `weft get vs -o yaml` shows). */
export interface VirtualServiceManifest {
  apiVersion: string;
  kind: 'VirtualService';
  metadata: { name: string; namespace: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: VirtualServiceSpec;
}

/** Whether a VirtualService routes mesh traffic (not only gateways') for `hostname`. */
function routesHost(vs: ConfigResource<'VirtualService'>, hostname: string, domainSuffix: string): boolean {
  const gateways = vs.spec.gateways ?? [];
  if (gateways.length > 0 && !gateways.includes('mesh')) return false;
  return (vs.spec.hosts ?? []).some((h) => toFqdn(h, vs.metadata.namespace, domainSuffix) === hostname);
}

/** The VirtualService for the service: one in its namespace naming the host first, then any. */
export function findServiceVirtualService(
  virtualServices: readonly ConfigResource<'VirtualService'>[],
  hostname: string,
  namespace: string,
  domainSuffix: string,
): ConfigResource<'VirtualService'> | undefined {
  const candidates = virtualServices.filter((vs) => routesHost(vs, hostname, domainSuffix));
  return candidates.find((vs) => vs.metadata.namespace === namespace) ?? candidates[0];
}

const toHost = (d: HTTPRouteDestination, vsNamespace: string, hostname: string, domainSuffix: string) =>
  toFqdn(d.destination.host, vsNamespace, domainSuffix) === hostname;

/**
 * The http rule a rollout shifts: the first one without `match` (the default route) whose
 * destinations are all the service. -1 when there is none: the rollout appends one.
 */
export function shiftedRuleIndex(spec: VirtualServiceSpec, vsNamespace: string, hostname: string, domainSuffix: string): number {
  return (spec.http ?? []).findIndex(
    (rule) => (rule.match ?? []).length === 0 && (rule.route ?? []).length > 0 && (rule.route ?? []).every((d) => toHost(d, vsNamespace, hostname, domainSuffix)),
  );
}

/** The subsets the rule sends to now (weights as Istio reads them: one destination without a weight is 100). */
export function currentSources(rule: HTTPRoute | undefined): SourceDestination[] {
  const route = rule?.route ?? [];
  return route.map((d) => ({ subset: d.destination.subset ?? '', weight: route.length === 1 ? (d.weight ?? 100) : (d.weight ?? 0), destination: d.destination }));
}

/**
 * The weights of a step: `percent` to `to`, the rest split among `sources` in proportion to
 * their starting weights (largest remainder first, so the weights always add up to 100).
 */
export function stepWeights(sources: readonly SourceDestination[], to: string, percent: number): RolloutWeight[] {
  const rest = 100 - percent;
  const total = sources.reduce((n, s) => n + s.weight, 0);
  const shares = sources.map((s) => (total > 0 ? (rest * s.weight) / total : rest / sources.length));
  const weights = shares.map(Math.floor);
  let left = rest - weights.reduce((a, b) => a + b, 0);
  const order = shares.map((s, i) => [s - Math.floor(s), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, i] of order) {
    if (left <= 0) break;
    weights[i]++;
    left--;
  }
  return [...sources.map((s, i) => ({ subset: s.subset, weight: weights[i] })), { subset: to, weight: percent }];
}

/**
 * The VirtualService with the shifted rule's route replaced by `weights` (a new default rule is
 * appended when the service has none; a new VirtualService is made when there is none). `final`
 * writes the finished form: only `to`, no weights.
 */
export function shiftedVirtualService(input: {
  current: ConfigResource<'VirtualService'> | undefined;
  service: { name: string; namespace: string; hostname: string };
  domainSuffix: string;
  sources: readonly SourceDestination[];
  to: string;
  weights: readonly RolloutWeight[];
  final?: boolean;
}): VirtualServiceManifest {
  const { current, service } = input;
  const base: VirtualServiceManifest = current
    ? { apiVersion: current.apiVersion, kind: 'VirtualService', metadata: { ...current.metadata }, spec: structuredClone(current.spec) }
    : { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: service.name, namespace: service.namespace }, spec: { hosts: [service.name] } };
  const vsNamespace = base.metadata.namespace;
  // Keep only what a user writes: no store-derived metadata.
  base.metadata = {
    name: base.metadata.name,
    namespace: vsNamespace,
    ...(base.metadata.labels ? { labels: base.metadata.labels } : {}),
    ...(base.metadata.annotations ? { annotations: base.metadata.annotations } : {}),
  };
  const hostSpelling = input.sources.find((s) => s.destination.host)?.destination.host ?? (vsNamespace === service.namespace ? service.name : service.hostname);
  const port = input.sources.find((s) => s.destination.port)?.destination.port;
  const destinationOf = (subset: string): HTTPRouteDestination['destination'] => {
    const known = input.sources.find((s) => s.subset === subset)?.destination;
    if (known) return { ...known };
    return { host: hostSpelling, ...(subset ? { subset } : {}), ...(port ? { port } : {}) };
  };
  const route: HTTPRouteDestination[] = input.final
    ? [{ destination: destinationOf(input.to) }]
    : input.weights.map((w) => ({ destination: destinationOf(w.subset), weight: w.weight }));
  const http = [...(base.spec.http ?? [])];
  const index = shiftedRuleIndex(base.spec, vsNamespace, service.hostname, input.domainSuffix);
  if (index >= 0) http[index] = { ...http[index], route };
  else http.push({ route });
  base.spec = { ...base.spec, http };
  return base;
}
