// The HTTP connection manager's `tracing` (Istio's networking/core/tracing.go): from the
// Telemetry resources that apply to the proxy (telemetry.ts) and the mesh config, the sampling
// rate, the OpenTelemetry provider (OTLP/HTTP to a collector) and Istio's span tags.
//
// Sampling, Istio's precedence: Telemetry randomSamplingPercentage, else
// meshConfig.defaultConfig.tracing.sampling (0 or unset: 1%, out of range: 1%, as Istio).
// Span tags: Istio's service tags (istio.canonical_service, istio.canonical_revision,
// istio.namespace, istio.mesh_id, istio.cluster_id) as literals for this proxy, then the
// Telemetry's customTags (else defaultConfig.tracing.customTags), sorted by name.
//
// Deviations: with no Telemetry tracing and no meshConfig.defaultProviders.tracing, Istio falls
// back to meshConfig.enableTracing and Envoy's bootstrap tracer; Weft proxies have no bootstrap
// tracer, so nothing is traced then. Only opentelemetry providers with `http` are translated
// (Weft proxies export OTLP/HTTP); others configure no tracing, as Istio does for a provider it
// cannot build. The RBAC dry-run tags are not emitted (Weft has no shadow rules).
import type { TelemetryCustomTag } from '../../config/resources';
import type { ProxyNode } from '../../model/proxy';
import type { MeshSnapshot, OpenTelemetryProvider, ProxyConfigDefaults } from '../../model/snapshot';
import { DEFAULT_TRACE_SAMPLING } from '../../model/snapshot';
import { toFqdn } from '../../registry/hosts';
import { accessLogsFor, tracingFor, type ListenerClass, type TracingSpec } from './telemetry';
import { envoyDuration } from './values';

type Json = Record<string, unknown>;

export const OPENTELEMETRY_TRACER = 'envoy.tracers.opentelemetry';
export const OPENTELEMETRY_CONFIG_TYPE = 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig';

/** Envoy's default HttpUri timeout is required; Istio's OTLP/HTTP default is 5s too. */
const DEFAULT_EXPORT_TIMEOUT = '5s';
const DEFAULT_TRACES_PATH = '/v1/traces';

/** Istio's proxyConfigSamplingValue. */
export function meshSamplingPercent(defaults: ProxyConfigDefaults | undefined): number {
  const sampling = defaults?.tracing?.sampling;
  if (sampling === undefined || sampling === 0) return DEFAULT_TRACE_SAMPLING;
  return sampling > 100 ? DEFAULT_TRACE_SAMPLING : sampling;
}

/** The canonical service and revision of a proxy, with the fallbacks the endpoint metadata uses. */
export function canonicalNames(proxy: ProxyNode): { service: string; revision: string } {
  const l = proxy.labels;
  return {
    service: l['service.istio.io/canonical-name'] ?? l['app.kubernetes.io/name'] ?? l.app ?? proxy.workloadName ?? 'unknown',
    revision: l['service.istio.io/canonical-revision'] ?? l['app.kubernetes.io/version'] ?? l.version ?? 'latest',
  };
}

/** Istio's buildServiceTags, as literals for this proxy. */
function serviceTags(snapshot: MeshSnapshot, proxy: ProxyNode): Json[] {
  const { service, revision } = canonicalNames(proxy);
  const meta = (key: string) => (typeof proxy.metadata[key] === 'string' && proxy.metadata[key] !== '' ? (proxy.metadata[key] as string) : undefined);
  const mesh = snapshot.meshConfig;
  const literal = (tag: string, value: string) => ({ tag, literal: { value } });
  return [
    literal('istio.canonical_revision', revision),
    literal('istio.canonical_service', service),
    literal('istio.cluster_id', meta('CLUSTER_ID') ?? 'Kubernetes'),
    literal('istio.mesh_id', meta('MESH_ID') ?? mesh.defaultConfig?.meshId ?? mesh.trustDomain),
    literal('istio.namespace', proxy.namespace),
  ];
}

function customTag(tag: string, t: TelemetryCustomTag): Json | undefined {
  if (t.literal) return { tag, literal: { value: t.literal.value } };
  if (t.environment) return { tag, environment: { name: t.environment.name, ...(t.environment.defaultValue ? { default_value: t.environment.defaultValue } : {}) } };
  if (t.header) return { tag, request_header: { name: t.header.name, ...(t.header.defaultValue ? { default_value: t.header.defaultValue } : {}) } };
  return undefined;
}

/**
 * Istio's LookupCluster for a provider's `service` (`hostname` or `namespace/hostname`): a
 * registry service by that name (short names in the provider's namespace, if given), else the
 * name as written — e.g. an IP address the proxy posts to directly.
 */
function collectorHost(snapshot: MeshSnapshot, service: string): string {
  const slash = service.indexOf('/');
  const namespace = slash >= 0 ? service.slice(0, slash) : undefined;
  const host = slash >= 0 ? service.slice(slash + 1) : service;
  const services = snapshot.registry.services;
  if (services.has(host)) return host;
  if (namespace) {
    const fqdn = toFqdn(host, namespace, snapshot.meshConfig.domainSuffix);
    if (services.has(fqdn)) return fqdn;
  }
  return host;
}

function openTelemetryConfig(snapshot: MeshSnapshot, p: OpenTelemetryProvider, serviceName: string): Json {
  const host = collectorHost(snapshot, p.service);
  const http = p.http ?? {};
  const path = http.path ? (http.path.startsWith('/') ? http.path : `/${http.path}`) : DEFAULT_TRACES_PATH;
  const authority = host.includes(':') ? `[${host}]:${p.port}` : `${host}:${p.port}`;
  const headers = (http.headers ?? []).map((h) => ({
    header: { key: h.name, value: h.value ?? (h.envName ? process.env[h.envName] ?? '' : '') },
    append_action: 'OVERWRITE_IF_EXISTS_OR_ADD',
  }));
  return {
    '@type': OPENTELEMETRY_CONFIG_TYPE,
    http_service: {
      http_uri: { uri: `http://${authority}${path}`, cluster: `outbound|${p.port}||${host}`, timeout: envoyDuration(http.timeout ?? DEFAULT_EXPORT_TIMEOUT) },
      ...(headers.length ? { request_headers_to_add: headers } : {}),
    },
    service_name: serviceName,
  };
}

/** HCM `tracing` for one side of the proxy from its merged spec; undefined: no tracing. */
function buildTracing(snapshot: MeshSnapshot, proxy: ProxyNode, spec: TracingSpec): Json | undefined {
  const otel = spec.provider?.opentelemetry;
  if (spec.disabled || !otel?.http) return undefined;
  const mesh = snapshot.meshConfig;
  const sampling = spec.randomSamplingPercentage ?? meshSamplingPercent(mesh.defaultConfig);
  const userTags = spec.customTags ?? mesh.defaultConfig?.tracing?.customTags ?? {};
  const tags = [...serviceTags(snapshot, proxy), ...Object.entries(userTags).map(([name, t]) => customTag(name, t)).filter((t): t is Json => !!t)];
  tags.sort((a, b) => ((a.tag as string) < (b.tag as string) ? -1 : (a.tag as string) > (b.tag as string) ? 1 : 0));
  const maxTagLength = otel.maxTagLength || mesh.defaultConfig?.tracing?.maxPathTagLength;
  return {
    client_sampling: { value: 100 },
    random_sampling: { value: sampling },
    overall_sampling: { value: 100 },
    ...(maxTagLength ? { max_path_tag_length: maxTagLength } : {}),
    custom_tags: tags,
    provider: { name: OPENTELEMETRY_TRACER, typed_config: openTelemetryConfig(snapshot, otel, `${canonicalNames(proxy).service}.${proxy.namespace}`) },
    // Istio's SpawnUpstreamSpanForGateway: a gateway is its own hop, with a CLIENT span per upstream request.
    ...(proxy.type === 'router' ? { spawn_upstream_span: true } : {}),
  };
}

/** Per proxy and snapshot: both sides' tracing (the signature and the builders read the same). */
interface ProxyTelemetry {
  readonly snapshot: MeshSnapshot;
  readonly tracing: Readonly<Record<ListenerClass, Json | undefined>>;
  readonly key: string;
}

const MEMO = new WeakMap<ProxyNode, ProxyTelemetry>();

function proxyTelemetry(snapshot: MeshSnapshot, proxy: ProxyNode): ProxyTelemetry {
  const known = MEMO.get(proxy);
  if (known && known.snapshot === snapshot) return known;
  const config = tracingFor(snapshot, proxy);
  const client = config ? buildTracing(snapshot, proxy, config.client) : undefined;
  const server = config ? buildTracing(snapshot, proxy, config.server) : undefined;
  const tracing = { inbound: server, outbound: client, gateway: client };
  const classes: ListenerClass[] = proxy.type === 'router' ? ['gateway'] : ['inbound', 'outbound'];
  const logs = classes.map((c) => accessLogsFor(snapshot, proxy, c));
  const decides = client || server || logs.some((l) => l.source === 'telemetry');
  const computed = { snapshot, tracing, key: decides ? JSON.stringify([client ?? null, server ?? null, logs]) : '' };
  MEMO.set(proxy, computed);
  return computed;
}

/** The HCM `tracing` for this proxy's HCMs of class `cls`; undefined: the HCM does not trace. */
export function hcmTracing(snapshot: MeshSnapshot, proxy: ProxyNode, cls: ListenerClass): Json | undefined {
  return proxyTelemetry(snapshot, proxy).tracing[cls];
}

/**
 * What a proxy's listeners depend on through Telemetry and tracing, for the translator's cache
 * keys ('' when nothing is traced and no Telemetry decides access logging: the common case, so
 * proxies keep sharing listeners).
 */
export function telemetrySignature(snapshot: MeshSnapshot, proxy: ProxyNode): string {
  return proxyTelemetry(snapshot, proxy).key;
}
