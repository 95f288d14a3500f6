// The per-service views: the list of services with their current golden signals
// (/api/v1/services) and one service's signals over time (/api/v1/services/NS/NAME/signals):
// request rate, error share and p50/p99 per collection round, the rate per serving workload (where
// a traffic shift shows), who calls it and whom it calls, and the routing config naming it.
import { hostsIntersect, toFqdn } from '../registry/hosts';
import type { MeshService } from '../registry/types';
import type { MeshSnapshot } from '../model/snapshot';
import type { EdgeIdentity } from './istio-traffic';
import { countedInGraph, TrafficSum, type TrafficNumbers } from './traffic-numbers';
import type { TrafficTick, WindowTotals } from './traffic-history';

export interface ServiceRef {
  namespace: string;
  name: string;
}

export interface ServiceSummary extends ServiceRef {
  hostname: string;
  ports: { name: string; port: number; protocol: string }[];
  /** Workloads behind it (from the registry's endpoints). */
  workloads: string[];
  inbound: TrafficNumbers;
}

export interface SignalPoint {
  /** End of the round, ms since the epoch. */
  t: number;
  rps: number;
  errorRate: number | null;
  p50: number | null;
  p99: number | null;
}

export interface ServiceSignals {
  service: ServiceSummary;
  windowSeconds: number;
  points: SignalPoint[];
  /** Requests per second per destination workload, per round (the same rounds as `points`). */
  byWorkload: { workload: string; version: string; points: { t: number; rps: number }[] }[];
  /** Over the whole window: callers, and the services this one calls. */
  callers: { workload: string; namespace: string; numbers: TrafficNumbers }[];
  calls: { service: string; numbers: TrafficNumbers }[];
  /** VirtualServices and DestinationRules whose hosts cover the service. */
  config: { kind: string; namespace: string; name: string }[];
}

export function servesService(id: EdgeIdentity, ref: ServiceRef, hostname: string): boolean {
  if (id.destinationService === hostname) return true;
  return id.destinationServiceName === ref.name && id.destinationServiceNamespace === ref.namespace;
}

export function findService(snapshot: MeshSnapshot | undefined, ref: ServiceRef): MeshService | undefined {
  for (const s of snapshot?.registry.services.values() ?? []) if (s.name === ref.name && s.namespace === ref.namespace) return s;
  return undefined;
}

function summary(snapshot: MeshSnapshot | undefined, service: MeshService | undefined, ref: ServiceRef, inbound: TrafficNumbers): ServiceSummary {
  const hostname = service?.hostname ?? toFqdn(ref.name, ref.namespace, snapshot?.meshConfig.domainSuffix);
  const endpoints = snapshot?.registry.endpoints.get(hostname) ?? [];
  const workloads = [...new Set(endpoints.map((e) => e.workload?.split('/')[1]).filter((w): w is string => Boolean(w)))].sort();
  return {
    namespace: ref.namespace,
    name: ref.name,
    hostname,
    ports: (service?.ports ?? []).map((p) => ({ name: p.name, port: p.port, protocol: p.protocol })),
    workloads,
    inbound,
  };
}

/** Every service in the registry, with its inbound signals over the window. */
export function listServices(snapshot: MeshSnapshot | undefined, window: WindowTotals, meshed: ReadonlySet<string>): ServiceSummary[] {
  const out: ServiceSummary[] = [];
  for (const service of snapshot?.registry.services.values() ?? []) {
    const ref = { namespace: service.namespace, name: service.name };
    const sum = new TrafficSum();
    for (const series of window.edges.values()) if (countedInGraph(series.identity, meshed) && servesService(series.identity, ref, service.hostname)) sum.add(series);
    out.push(summary(snapshot, service, ref, sum.numbers(window.seconds)));
  }
  return out.sort((a, b) => (a.namespace + '/' + a.name < b.namespace + '/' + b.name ? -1 : 1));
}

export function serviceSignals(input: {
  snapshot: MeshSnapshot | undefined;
  ref: ServiceRef;
  ticks: readonly TrafficTick[];
  window: WindowTotals;
  windowSeconds: number;
  meshed: ReadonlySet<string>;
}): ServiceSignals | undefined {
  const { snapshot, ref, meshed } = input;
  const service = findService(snapshot, ref);
  const hostname = service?.hostname ?? toFqdn(ref.name, ref.namespace, snapshot?.meshConfig.domainSuffix);
  const inbound = (id: EdgeIdentity) => countedInGraph(id, meshed) && servesService(id, ref, hostname);

  const total = new TrafficSum();
  const callers = new Map<string, { workload: string; namespace: string; sum: TrafficSum }>();
  const calls = new Map<string, TrafficSum>();
  const serving = summary(snapshot, service, ref, total.numbers(0));
  const ownWorkloads = new Set(serving.workloads.map((w) => `${ref.namespace}/${w}`));
  for (const series of input.window.edges.values()) {
    const id = series.identity;
    if (inbound(id)) {
      total.add(series);
      const key = `${id.sourceNamespace}/${id.sourceWorkload}`;
      const caller = callers.get(key) ?? { workload: id.sourceWorkload, namespace: id.sourceNamespace, sum: new TrafficSum() };
      caller.sum.add(series);
      callers.set(key, caller);
    } else if (countedInGraph(id, meshed) && ownWorkloads.has(`${id.sourceNamespace}/${id.sourceWorkload}`)) {
      const sum = calls.get(id.destinationService) ?? new TrafficSum();
      sum.add(series);
      calls.set(id.destinationService, sum);
    }
  }
  if (!service && total.traffic.requests === 0 && total.traffic.tcpOpened === 0) return undefined;

  const points: SignalPoint[] = [];
  const perWorkload = new Map<string, { workload: string; version: string; rps: Map<number, number> }>();
  for (const tick of input.ticks) {
    const sum = new TrafficSum();
    for (const series of tick.edges.values()) {
      const id = series.identity;
      if (!inbound(id)) continue;
      sum.add(series);
      const w = perWorkload.get(id.destinationWorkload) ?? { workload: id.destinationWorkload, version: id.destinationVersion, rps: new Map() };
      w.rps.set(tick.at, (w.rps.get(tick.at) ?? 0) + series.traffic.requests / tick.seconds);
      perWorkload.set(id.destinationWorkload, w);
    }
    const n = sum.numbers(tick.seconds);
    points.push({ t: tick.at, rps: n.rps, errorRate: n.errorRate, p50: n.p50, p99: n.p99 });
  }
  return {
    service: { ...serving, inbound: total.numbers(input.window.seconds) },
    windowSeconds: input.windowSeconds,
    points,
    byWorkload: [...perWorkload.values()]
      .sort((a, b) => (a.workload < b.workload ? -1 : 1))
      .map((w) => ({ workload: w.workload, version: w.version === 'unknown' ? '' : w.version, points: input.ticks.map((t) => ({ t: t.at, rps: Math.round((w.rps.get(t.at) ?? 0) * 1000) / 1000 })) })),
    callers: [...callers.values()].map((c) => ({ workload: c.workload, namespace: c.namespace, numbers: c.sum.numbers(input.window.seconds) })),
    calls: [...calls].map(([svc, sum]) => ({ service: svc, numbers: sum.numbers(input.window.seconds) })),
    config: routingConfigFor(snapshot, hostname),
  };
}

function routingConfigFor(snapshot: MeshSnapshot | undefined, hostname: string): ServiceSignals['config'] {
  if (!snapshot) return [];
  const suffix = snapshot.meshConfig.domainSuffix;
  const out: ServiceSignals['config'] = [];
  for (const vs of snapshot.byKind.VirtualService) {
    const hosts = (vs.spec.hosts ?? []).map((h) => toFqdn(h, vs.metadata.namespace, suffix));
    if (hosts.some((h) => h !== '*' && hostsIntersect(h, hostname))) out.push({ kind: 'VirtualService', namespace: vs.metadata.namespace, name: vs.metadata.name });
  }
  for (const dr of snapshot.byKind.DestinationRule) {
    if (dr.spec.host && hostsIntersect(toFqdn(dr.spec.host, dr.metadata.namespace, suffix), hostname)) {
      out.push({ kind: 'DestinationRule', namespace: dr.metadata.namespace, name: dr.metadata.name });
    }
  }
  return out;
}

/**
 * Which of a service's workloads a view is about: a DestinationRule subset resolved to the
 * workloads its labels select (`namespace/name`), and the subset's `version` label for
 * traffic whose destination workload is not known.
 */
export interface ServingWorkloads {
  workloads: ReadonlySet<string>;
  version?: string;
}

/** Whether a series was served by one of `serving`'s workloads. */
export function servedBy(id: EdgeIdentity, serving: ServingWorkloads): boolean {
  if (serving.workloads.has(`${id.destinationNamespace}/${id.destinationWorkload}`)) return true;
  return id.destinationWorkload === 'unknown' && serving.version !== undefined && id.destinationVersion === serving.version;
}

/**
 * The golden signals of a service's inbound traffic over `window` — all of it, or (with
 * `serving`) only what a subset's workloads served. The same counting as the graph and the
 * service views (countedInGraph), so a rollout judges the numbers the dashboard shows.
 */
export function inboundNumbers(input: {
  snapshot: MeshSnapshot | undefined;
  ref: ServiceRef;
  window: WindowTotals;
  meshed: ReadonlySet<string>;
  serving?: ServingWorkloads;
}): TrafficNumbers {
  const hostname = findService(input.snapshot, input.ref)?.hostname ?? toFqdn(input.ref.name, input.ref.namespace, input.snapshot?.meshConfig.domainSuffix);
  const sum = new TrafficSum();
  for (const series of input.window.edges.values()) {
    const id = series.identity;
    if (!countedInGraph(id, input.meshed) || !servesService(id, input.ref, hostname)) continue;
    if (input.serving && !servedBy(id, input.serving)) continue;
    sum.add(series);
  }
  return sum.numbers(input.window.seconds);
}
