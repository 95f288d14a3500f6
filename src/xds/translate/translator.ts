// The translation (snapshot, proxy) -> Envoy resources, dispatching on the proxy's kind (sidecar,
// gateway router, proxyless gRPC) like Istio's per-type generators, with the work shared between
// proxies: per snapshot, each group of outbound resources is built once per value of the keys it
// depends on (ProxySignature), and across snapshots clusters and ClusterLoadAssignments are reused
// while their inputs are unchanged. Only inbound resources are built per workload.
import type { MeshSnapshot } from '../../model/snapshot';
import type { ProxyNode } from '../../model/proxy';
import type { MeshEndpoint } from '../../registry/types';
import { TypeUrl } from '../protos';
import type { OutboundClusterInputs } from './clusters';
import { blackHoleCluster, buildOutboundClusterResources, passthroughCluster, sameOutboundClusterInputs } from './clusters';
import { sameEndpointInputs } from './endpoints';
import { accessLogConfig, withAccessLogs } from './access-logs';
import { buildGatewayResources } from './gateway';
import { buildInboundClusters, buildInboundListeners, inboundOptionsFor, inboundPortsFor, proxyWorkloadKey } from './inbound';
import { buildOutboundListeners, buildVirtualOutboundListener, capturesOutbound } from './listeners';
import { proxySignature } from './proxy-signature';
import { buildProxylessResources } from './proxyless';
import { buildOutboundRouteConfigurations } from './routes';
import type { ProxyScope, SnapshotShare } from './scope';
import { buildProxyScope } from './scope';
import { freezeValue, GenerationalMemo, sameJson, type FreezeMode, type MemoStats, type SharedResources } from './shared-resources';
import { buildSnapshotIndex } from './snapshot-index';
import type { EnvoyResource, GeneratedResources } from './types';

/**
 * Everything the proxy should receive, by type URL (Cluster, ClusterLoadAssignment, Listener,
 * RouteConfiguration), each map sorted by resource name. Pure and deterministic: reads only the
 * snapshot and the proxy, never the clock, the network or randomness; never mutates its inputs.
 *
 * The result, its maps and every resource in them are shared with other proxies (and, for
 * clusters and endpoints, with other snapshots): treat them as immutable. Each resource object is
 * frozen (`freeze: 'shallow'`, the default) so that setting a field throws; `'deep'` freezes whole
 * resources (tests use it to prove no code mutates a shared resource; it costs about as much as
 * translating them); maps cannot be frozen.
 */
export interface Translator {
  (snapshot: MeshSnapshot, proxy: ProxyNode): GeneratedResources;
  /** How much was shared, for /debug and benchmarks. */
  stats(): TranslatorStats;
}

export interface TranslatorOptions {
  /** How shared resources are protected against mutation (default 'shallow'). */
  freeze?: FreezeMode;
}

export interface TranslatorStats {
  /** Translations answered with a whole result built for another proxy of the same snapshot. */
  sharedResults: number;
  /** Translations that assembled a result of their own. */
  builtResults: number;
  clusters: MemoStats;
  loadAssignments: MemoStats;
}

/** Snapshots whose per-snapshot memo is kept: the one being pushed and the one before it. */
const RECENT_SNAPSHOTS = 2;

type SortedResources = ReadonlyMap<string, EnvoyResource>;

interface OutboundClusters {
  clusters: SortedResources;
  endpoints: SortedResources;
}

interface InboundResources {
  clusters: SortedResources;
  listeners: SortedResources;
}

/** What one snapshot's translations share; dropped with the snapshot. */
interface SnapshotMemo {
  readonly snapshot: MeshSnapshot;
  readonly share: SnapshotShare;
  /** By view + destinationRules. */
  readonly outbound: Map<string, OutboundClusters>;
  /** The same by OutboundClusterResources.key. */
  readonly outboundByContent: Map<string, OutboundClusters>;
  /** By view + l4SourceLabels + telemetry (shared with the previous snapshot after an endpoint-only change). */
  readonly listeners: Map<string, SortedResources>;
  /** By view + destinationRules + httpSourceLabels. */
  readonly routes: Map<string, SortedResources>;
  /** By workload key + security + inbound placement; undefined when the workload serves no port. */
  readonly inbound: Map<string, InboundResources | undefined>;
  /** Whole results of proxies without inbound resources, by every key they depend on. */
  readonly results: Map<string, GeneratedResources>;
}

export function createTranslator(options: TranslatorOptions = {}): Translator {
  const freeze = options.freeze ?? 'shallow';
  // WeakMap: a memo never outlives its snapshot. `recent` bounds how many snapshots keep one, since
  // SnapshotHistory keeps dozens alive; a retired snapshot translated again just builds a new memo.
  const snapshots = new WeakMap<MeshSnapshot, SnapshotMemo>();
  const recent: MeshSnapshot[] = [];
  const clusters = new GenerationalMemo<EnvoyResource, OutboundClusterInputs>(sameOutboundClusterInputs, freeze);
  const loadAssignments = new GenerationalMemo<EnvoyResource, readonly MeshEndpoint[]>(sameEndpointInputs, freeze);
  const catchAllClusters = [blackHoleCluster(), passthroughCluster()].map((c) => freezeValue(c, freeze));
  const resources: Omit<SharedResources, 'services'> = { clusters, loadAssignments, catchAllClusters };
  let sharedResults = 0;
  let builtResults = 0;

  const memoFor = (snapshot: MeshSnapshot): SnapshotMemo => {
    let memo = snapshots.get(snapshot);
    if (!memo) {
      // A new snapshot starts a new generation: resources it does not reuse are retired on the next.
      clusters.rotate();
      loadAssignments.rotate();
      // Outbound listeners and routes read no endpoint or workload: when only WorkloadEntries
      // changed since the latest snapshot (an endpoint-only change), they are the previous ones,
      // the very same objects (Istio's incremental EDS: no listener or route is rebuilt).
      const previous = recent.length > 0 ? snapshots.get(recent[recent.length - 1]) : undefined;
      const reuse = previous !== undefined && sameOutsideEndpoints(previous.snapshot, snapshot);
      memo = {
        snapshot,
        share: { index: buildSnapshotIndex(snapshot), views: new Map(), resources: { ...resources, services: new Map() } },
        outbound: new Map(),
        outboundByContent: new Map(),
        listeners: reuse ? previous.listeners : new Map(),
        routes: reuse ? previous.routes : new Map(),
        inbound: new Map(),
        results: new Map(),
      };
      snapshots.set(snapshot, memo);
      recent.push(snapshot);
      if (recent.length > RECENT_SNAPSHOTS) snapshots.delete(recent.shift() as MeshSnapshot);
    }
    return memo;
  };

  const sorted = (list: readonly EnvoyResource[]): SortedResources => {
    const byName = sortByName(list);
    for (const r of byName.values()) freezeValue(r, freeze);
    return byName;
  };

  const result = (memo: SnapshotMemo, key: string, build: () => GeneratedResources): GeneratedResources => {
    const known = memo.results.get(key);
    if (known) {
      sharedResults++;
      return known;
    }
    builtResults++;
    const built = Object.freeze(build());
    memo.results.set(key, built);
    return built;
  };

  const translate = (snapshot: MeshSnapshot, proxy: ProxyNode): GeneratedResources => {
    const memo = memoFor(snapshot);
    const sig = proxySignature(snapshot, memo.share.index, proxy);
    let scope: ProxyScope | undefined;
    // Built only when something is missing; it reads this proxy, but only through the keys above.
    const scopeOf = (): ProxyScope => (scope ??= buildProxyScope(snapshot, proxy, memo.share));

    if (proxy.type === 'proxyless') {
      return result(memo, keyOf('proxyless', sig.view, sig.destinationRules, sig.httpSourceLabels, sig.locality), () => {
        const r = buildProxylessResources(scopeOf());
        return assemble(sorted(r.clusters), sorted(r.endpoints), sorted(r.listeners), sorted(r.routes));
      });
    }

    const outbound = remember(memo.outbound, keyOf(sig.view, sig.destinationRules, sig.locality), () => {
      const built = buildOutboundClusterResources(scopeOf(), { proxyless: false });
      // Views that list the same clusters (e.g. namespaces without Sidecars) share the sorted maps.
      return remember(memo.outboundByContent, built.key, () => ({ clusters: sorted(built.clusters), endpoints: sorted(built.loadAssignments) }));
    });

    if (proxy.type === 'router') {
      const key = keyOf('router', sig.view, sig.destinationRules, sig.httpSourceLabels, sig.l4SourceLabels, sig.gateways, sig.security, sig.telemetry, sig.locality);
      return result(memo, key, () => {
        const gw = buildGatewayResources(scopeOf());
        return assemble(outbound.clusters, outbound.endpoints, sorted(withAccessLogs(gw.listeners, accessLogConfig(snapshot, proxy, 'gateway'))), sorted(gw.routes));
      });
    }

    const listeners = remember(memo.listeners, keyOf(sig.view, sig.l4SourceLabels, sig.telemetry, capturesOutbound(proxy) ? 'capture' : ''), () =>
      sorted(withAccessLogs([buildVirtualOutboundListener(scopeOf()), ...buildOutboundListeners(scopeOf())], accessLogConfig(snapshot, proxy, 'outbound'))),
    );
    const routes = remember(memo.routes, keyOf(sig.view, sig.destinationRules, sig.httpSourceLabels), () =>
      sorted(buildOutboundRouteConfigurations(scopeOf())),
    );
    const workload = proxyWorkloadKey(snapshot, memo.share.index, proxy);
    const inbound =
      workload === undefined
        ? undefined
        : remember(memo.inbound, keyOf(workload, sig.security, sig.inbound, sig.telemetry), () => {
            const ports = inboundPortsFor(snapshot, memo.share.index, workload);
            if (ports.length === 0) return undefined;
            const options = inboundOptionsFor(snapshot, memo.share.index, proxy, workload);
            const listeners = withAccessLogs(buildInboundListeners(ports, options), accessLogConfig(snapshot, proxy, 'inbound'));
            return { clusters: sorted(buildInboundClusters(ports, options)), listeners: sorted(listeners) };
          });
    if (!inbound) {
      const key = keyOf('sidecar', sig.view, sig.destinationRules, sig.httpSourceLabels, sig.l4SourceLabels, sig.telemetry, sig.locality);
      return result(memo, key, () => assemble(outbound.clusters, outbound.endpoints, listeners, routes));
    }
    builtResults++;
    return Object.freeze(
      assemble(mergeByName(outbound.clusters, inbound.clusters), outbound.endpoints, mergeByName(listeners, inbound.listeners), routes),
    );
  };

  return Object.assign(translate, {
    stats: (): TranslatorStats => ({ sharedResults, builtResults, clusters: clusters.stats(), loadAssignments: loadAssignments.stats() }),
  });
}

/**
 * True when two snapshots differ at most in their WorkloadEntries (so in endpoints and workloads):
 * the same mesh config and, kind by kind, the same resources (by identity or by content). What
 * outbound listeners and routes are built from (services, VirtualServices, DestinationRules,
 * Sidecars, Gateways, policies, Telemetry, mesh config) is then equal.
 */
export function sameOutsideEndpoints(a: MeshSnapshot, b: MeshSnapshot): boolean {
  if (a === b) return true;
  if (a.meshConfig !== b.meshConfig && !sameJson(a.meshConfig, b.meshConfig)) return false;
  const kinds = Object.keys(a.byKind) as (keyof MeshSnapshot['byKind'])[];
  if (kinds.length !== Object.keys(b.byKind).length) return false;
  for (const kind of kinds) {
    if (kind === 'WorkloadEntry') continue;
    const x = a.byKind[kind];
    const y = b.byKind[kind];
    if (!y || x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) {
      if (x[i] === y[i]) continue;
      if (x[i].apiVersion !== y[i].apiVersion || !sameJson(x[i].metadata, y[i].metadata) || !sameJson(x[i].spec, y[i].spec)) return false;
    }
  }
  return true;
}

function keyOf(...parts: string[]): string {
  return JSON.stringify(parts);
}

/** `map.get(key)`, else `build()` remembered under `key` (undefined values are remembered too). */
function remember<V>(map: Map<string, V>, key: string, build: () => V): V {
  if (map.has(key)) return map.get(key) as V;
  const value = build();
  map.set(key, value);
  return value;
}

function assemble(
  clusters: SortedResources,
  endpoints: SortedResources,
  listeners: SortedResources,
  routes: SortedResources,
): GeneratedResources {
  return {
    [TypeUrl.Cluster]: clusters,
    [TypeUrl.ClusterLoadAssignment]: endpoints,
    [TypeUrl.Listener]: listeners,
    [TypeUrl.RouteConfiguration]: routes,
  };
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Sorted by name; the first resource of a name wins (names are unique by construction). */
export function sortByName(resources: readonly EnvoyResource[]): Map<string, EnvoyResource> {
  const m = new Map<string, EnvoyResource>();
  for (const r of [...resources].sort((a, b) => compareNames(a.name, b.name))) {
    if (!m.has(r.name)) m.set(r.name, r);
  }
  return m;
}

/** The union of two name-sorted maps, still sorted; `a` wins a name both have. */
function mergeByName(a: SortedResources, b: SortedResources): SortedResources {
  if (b.size === 0) return a;
  const out = new Map<string, EnvoyResource>();
  const bi = b.entries();
  let next = bi.next();
  for (const [name, r] of a) {
    while (!next.done && compareNames(next.value[0], name) < 0) {
      out.set(next.value[0], next.value[1]);
      next = bi.next();
    }
    if (!next.done && next.value[0] === name) next = bi.next();
    out.set(name, r);
  }
  for (; !next.done; next = bi.next()) out.set(next.value[0], next.value[1]);
  return out;
}
