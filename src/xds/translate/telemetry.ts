// Istio's Telemetry API for one proxy (pilot/pkg/model/telemetry.go): which Telemetry resources
// apply — the root namespace's selector-less one, then the proxy's namespace's selector-less one,
// then the first (oldest) in its namespace whose selector or Gateway targetRef picks the proxy,
// later levels overriding earlier ones — and what they resolve to for tracing and access logging,
// with meshConfig.defaultProviders where no Telemetry names providers.
import type { ConfigResource, TelemetryCustomTag, WorkloadMode } from '../../config/resources';
import type { ProxyNode } from '../../model/proxy';
import type { ExtensionProvider, FileAccessLogProvider, MeshConfig, MeshSnapshot } from '../../model/snapshot';
import { meshExtensionProviders } from '../../model/snapshot';
import { compareByAge, policyApplies, policySubjectOf, targetRefsOf } from './security-selection';

export type TelemetryResource = ConfigResource<'Telemetry'>;

/** Istio's listener classes, as far as telemetry cares: which side of the proxy an HCM serves. */
export type ListenerClass = 'inbound' | 'outbound' | 'gateway';

/** Inbound HCMs report as the server; outbound and gateway HCMs as the client (Istio's workloadMode). */
export function workloadModeOf(cls: ListenerClass): 'SERVER' | 'CLIENT' {
  return cls === 'inbound' ? 'SERVER' : 'CLIENT';
}

/** The Telemetry resources that apply to a proxy, mesh level first (later ones override). */
export interface ApplicableTelemetries {
  readonly root?: TelemetryResource;
  readonly namespace?: TelemetryResource;
  readonly workload?: TelemetryResource;
}

/** Telemetry resources by namespace in Istio's order (oldest first, then name), per snapshot. */
const INDEX = new WeakMap<MeshSnapshot, ReadonlyMap<string, readonly TelemetryResource[]>>();

function telemetriesByNamespace(snapshot: MeshSnapshot): ReadonlyMap<string, readonly TelemetryResource[]> {
  let index = INDEX.get(snapshot);
  if (!index) {
    const byNs = new Map<string, TelemetryResource[]>();
    for (const t of snapshot.byKind.Telemetry as readonly TelemetryResource[]) {
      const list = byNs.get(t.metadata.namespace) ?? [];
      list.push(t);
      byNs.set(t.metadata.namespace, list);
    }
    for (const list of byNs.values()) list.sort(compareByAge);
    index = byNs;
    INDEX.set(snapshot, index);
  }
  return index;
}

function selectsWorkloads(t: TelemetryResource): boolean {
  return Object.keys(t.spec.selector?.matchLabels ?? {}).length > 0 || targetRefsOf(t.spec).length > 0;
}

export function applicableTelemetries(snapshot: MeshSnapshot, proxy: ProxyNode): ApplicableTelemetries {
  const byNs = telemetriesByNamespace(snapshot);
  if (byNs.size === 0) return {};
  const root = snapshot.meshConfig.rootNamespace;
  const namespaceWide = (ns: string) => byNs.get(ns)?.find((t) => !selectsWorkloads(t));
  const subject = policySubjectOf(proxy);
  return {
    root: namespaceWide(root),
    namespace: proxy.namespace !== root ? namespaceWide(proxy.namespace) : undefined,
    workload: byNs.get(proxy.namespace)?.find((t) => selectsWorkloads(t) && policyApplies(t, subject)),
  };
}

function inOrder(applicable: ApplicableTelemetries): TelemetryResource[] {
  return [applicable.root, applicable.namespace, applicable.workload].filter((t): t is TelemetryResource => t !== undefined);
}

/** Istio's fetchProvider: by name, case-insensitively, among the mesh's providers and built-ins. */
export function findProvider(mesh: MeshConfig, name: string): ExtensionProvider | undefined {
  const wanted = name.toLowerCase();
  return meshExtensionProviders(mesh).find((p) => p.name.toLowerCase() === wanted);
}

// ---------------------------------------------------------------------------------------------
// Tracing

/** One side's merged tracing settings (Istio's TracingSpec). */
export interface TracingSpec {
  readonly provider?: ExtensionProvider;
  readonly disabled: boolean;
  /** Telemetry randomSamplingPercentage; undefined: meshConfig.defaultConfig.tracing.sampling. */
  readonly randomSamplingPercentage?: number;
  /** Telemetry customTags; undefined: meshConfig.defaultConfig.tracing.customTags. */
  readonly customTags?: Readonly<Record<string, TelemetryCustomTag>>;
}

export interface TracingConfig {
  readonly client: TracingSpec;
  readonly server: TracingSpec;
}

/**
 * Istio's Telemetries.Tracing: undefined when neither a Telemetry nor meshConfig.defaultProviders
 * says anything about tracing (Istio then falls back to meshConfig.enableTracing and the
 * bootstrap tracer). A side without a provider is disabled.
 */
export function tracingFor(snapshot: MeshSnapshot, proxy: ProxyNode): TracingConfig | undefined {
  const mesh = snapshot.meshConfig;
  const tracings = inOrder(applicableTelemetries(snapshot, proxy)).flatMap((t) => t.spec.tracing ?? []);
  const defaults = mesh.defaultProviders?.tracing ?? [];
  if (tracings.length === 0 && defaults.length === 0) return undefined;
  type Mutable = { -readonly [K in keyof TracingSpec]: TracingSpec[K] };
  const initial = (): Mutable => ({ disabled: false, ...(defaults.length ? { provider: findProvider(mesh, defaults[0]) } : {}) });
  const client = initial();
  const server = initial();
  for (const t of tracings) {
    const mode: WorkloadMode = t.match?.mode ?? 'CLIENT_AND_SERVER';
    const specs = mode === 'CLIENT' ? [client] : mode === 'SERVER' ? [server] : [client, server];
    const first = t.providers?.[0]?.name;
    for (const spec of specs) {
      // Only one provider per mode: the first named (Istio does the same).
      if (first !== undefined) spec.provider = findProvider(mesh, first);
      if (t.disableSpanReporting !== undefined) spec.disabled = t.disableSpanReporting;
      if (t.customTags !== undefined) spec.customTags = t.customTags;
      if (t.randomSamplingPercentage !== undefined) spec.randomSamplingPercentage = t.randomSamplingPercentage;
    }
  }
  if (!client.provider) client.disabled = true;
  if (!server.provider) server.disabled = true;
  return { client, server };
}

// ---------------------------------------------------------------------------------------------
// Access logging

/** A file access log a Telemetry (or meshConfig.defaultProviders) turns on. */
export interface TelemetryAccessLog {
  readonly provider: string;
  readonly file: FileAccessLogProvider;
}

/**
 * What decides the access log of an HCM or tcp_proxy of class `cls`: `mesh-config` when no
 * Telemetry and no default provider speaks of access logging (then meshConfig.accessLogFile
 * does, Istio's legacy setting), else the file access logs Telemetry turns on — an empty list
 * means access logging is off for this proxy and class. Providers that are not
 * envoyFileAccessLog are left out (Weft cannot serve them); a `filter.expression: "false"`
 * drops its provider (validation refuses every other CEL expression but "true").
 */
export type AccessLogDecision = { readonly source: 'mesh-config' } | { readonly source: 'telemetry'; readonly logs: readonly TelemetryAccessLog[] };

/** Istio's Telemetries.AccessLogging + mergeLogs. */
export function accessLogsFor(snapshot: MeshSnapshot, proxy: ProxyNode, cls: ListenerClass): AccessLogDecision {
  const mesh = snapshot.meshConfig;
  const levels = inOrder(applicableTelemetries(snapshot, proxy))
    .map((t) => t.spec.accessLogging ?? [])
    .filter((l) => l.length > 0);
  const defaults = mesh.defaultProviders?.accessLogging ?? [];
  if (levels.length === 0 && defaults.length === 0) return { source: 'mesh-config' };
  const mode = workloadModeOf(cls);
  const enabled = new Map<string, boolean>();
  if (levels.length === 0) {
    for (const name of defaults) enabled.set(name, true);
  } else {
    // The deepest level that names providers decides which are in scope.
    let inScope = new Set(defaults);
    const filters = new Map<string, string | undefined>();
    for (const level of levels) {
      const named = new Set(level.flatMap((l) => (l.providers ?? []).map((p) => p.name)));
      for (const l of level) for (const p of l.providers ?? []) filters.set(p.name, l.filter?.expression);
      if (named.size > 0) inScope = named;
    }
    let parent = defaults;
    for (const level of levels) {
      for (const l of level) {
        const names = (l.providers ?? []).map((p) => p.name);
        const providers = names.length ? names : parent;
        parent = providers;
        for (const name of providers) {
          if (!inScope.has(name)) continue;
          const m = l.match?.mode ?? 'CLIENT_AND_SERVER';
          if (m !== 'CLIENT_AND_SERVER' && m !== mode) continue;
          if (l.disabled) enabled.delete(name);
          else enabled.set(name, (filters.get(name) ?? '').trim() !== 'false');
        }
      }
    }
  }
  const logs: TelemetryAccessLog[] = [];
  for (const [name, on] of [...enabled].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const provider = findProvider(mesh, name);
    if (on && provider?.envoyFileAccessLog) logs.push({ provider: provider.name, file: provider.envoyFileAccessLog });
  }
  return { source: 'telemetry', logs };
}

/**
 * Whether an HCM/tcp_proxy of class `cls` on this proxy writes an access log: by Telemetry when
 * one decides, else by meshConfig.accessLogFile (non-empty: on).
 */
export function accessLogEnabled(snapshot: MeshSnapshot, proxy: ProxyNode, cls: ListenerClass): boolean {
  const decision = accessLogsFor(snapshot, proxy, cls);
  if (decision.source === 'telemetry') return decision.logs.length > 0;
  const file = (snapshot.meshConfig as MeshConfig & { accessLogFile?: string }).accessLogFile;
  return typeof file === 'string' && file !== '';
}
