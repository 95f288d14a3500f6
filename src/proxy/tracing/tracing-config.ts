// HttpConnectionManager.tracing -> TracingSettings, compiled when the listener arrives: sampling
// rates as probabilities, custom tags, and the OpenTelemetry exporter (OTLP/HTTP). Any other
// tracer (zipkin, datadog, ...) or an OTLP/gRPC exporter is refused, so the listener is NACKed
// with the reason instead of silently not tracing.
import { anyIsDecoded, anyTypeName, durationMs, join, wrapped, type Json, type Problems } from '../config/validation';

const OPENTELEMETRY_CONFIG = 'envoy.config.trace.v3.OpenTelemetryConfig';
/** Envoy's max_path_tag_length default. */
const DEFAULT_MAX_PATH_TAG_LENGTH = 256;

export type CustomTagSource =
  | { kind: 'literal'; value: string }
  | { kind: 'environment'; name: string; defaultValue?: string }
  | { kind: 'request-header'; name: string; defaultValue?: string }
  | { kind: 'request-metadata'; filter: string; path: readonly string[]; defaultValue?: string };

export interface CustomTag {
  readonly tag: string;
  readonly source: CustomTagSource;
}

/** Where and how spans are sent (one exporter per distinct endpoint, shared by HCMs). */
export interface OtlpEndpoint {
  /** `http://host:port/path`. */
  readonly uri: string;
  /** http_uri.cluster: used to reach the collector when the proxy has it, else the URI's host. */
  readonly cluster: string;
  readonly timeoutMs: number;
  /** request_headers_to_add, as name/value pairs. */
  readonly headers: readonly (readonly [string, string])[];
  /** Identity of the endpoint (for sharing one exporter). */
  readonly key: string;
}

/** The compiled HCM tracing config; immutable. */
export interface TracingSettings {
  /** Probabilities in [0, 1]: random sampling of requests without a caller decision. */
  readonly randomSampling: number;
  /** overall_sampling: an upper bound on everything traced. */
  readonly overallSampling: number;
  /** A span of its own (kind CLIENT) per upstream request; the downstream span is then SERVER. */
  readonly spawnUpstreamSpan: boolean;
  readonly maxPathTagLength: number;
  readonly customTags: readonly CustomTag[];
  readonly endpoint: OtlpEndpoint;
  /** OpenTelemetryConfig.service_name: the `service.name` resource attribute. */
  readonly serviceName: string;
}

/** envoy.type.v3.Percent: an absent field is 100%, a present one without value (0 drops out of protobuf) is 0%. */
function percent(value: unknown, problems: Problems, path: string): number {
  if (value === undefined || value === null) return 1;
  const v = typeof value === 'object' ? Number((value as { value?: number }).value ?? 0) : Number(value);
  if (!(v >= 0 && v <= 100)) {
    problems.add(path, `percent ${v} must be in 0..100`);
    return 1;
  }
  return v / 100;
}

function compileCustomTag(raw: Json, problems: Problems, path: string): CustomTag | undefined {
  problems.fields(raw, path, ['tag', 'literal', 'environment', 'request_header', 'metadata']);
  const tag = String(raw.tag ?? '');
  if (!tag) problems.add(join(path, 'tag'), 'tag is required');
  let source: CustomTagSource | undefined;
  if (raw.literal) {
    source = { kind: 'literal', value: String(raw.literal.value ?? '') };
  } else if (raw.environment) {
    source = { kind: 'environment', name: String(raw.environment.name ?? ''), defaultValue: raw.environment.default_value || undefined };
  } else if (raw.request_header) {
    source = { kind: 'request-header', name: String(raw.request_header.name ?? '').toLowerCase(), defaultValue: raw.request_header.default_value || undefined };
  } else if (raw.metadata) {
    const m = raw.metadata as Json;
    const kind = Object.keys((m.kind ?? {}) as Json)[0];
    if (kind !== 'request') {
      problems.add(join(path, 'metadata.kind'), `metadata of kind "${kind ?? 'none'}" is not supported by the Weft proxy (only request metadata)`);
      return undefined;
    }
    const key = (m.metadata_key ?? {}) as Json;
    const segments = ((key.path ?? []) as Json[]).map((s) => String(s.key ?? ''));
    source = { kind: 'request-metadata', filter: String(key.key ?? ''), path: segments, defaultValue: m.default_value || undefined };
  } else {
    problems.add(path, 'a custom tag needs literal, environment, request_header or metadata');
    return undefined;
  }
  return tag ? { tag, source } : undefined;
}

function compileEndpoint(cfg: Json, problems: Problems, path: string): OtlpEndpoint | undefined {
  problems.fields(cfg, path, ['http_service', 'service_name'], ['resource_detectors']);
  if (cfg.grpc_service) {
    problems.add(join(path, 'grpc_service'), 'OTLP/gRPC export is not supported by the Weft proxy; use http_service (OTLP/HTTP)');
    return undefined;
  }
  if (cfg.sampler) problems.add(join(path, 'sampler'), 'custom samplers are not supported by the Weft proxy');
  const service = cfg.http_service as Json | undefined;
  if (!service) {
    problems.add(join(path, 'http_service'), 'http_service is required (the OTLP/HTTP collector)');
    return undefined;
  }
  const sp = join(path, 'http_service');
  problems.fields(service, sp, ['http_uri', 'request_headers_to_add']);
  const httpUri = (service.http_uri ?? {}) as Json;
  problems.fields(httpUri, join(sp, 'http_uri'), ['uri', 'cluster', 'timeout']);
  const uri = String(httpUri.uri ?? '');
  let parsed: URL | undefined;
  try {
    parsed = new URL(uri);
  } catch {
    problems.add(join(sp, 'http_uri.uri'), `"${uri}" is not an absolute http:// URI`);
    return undefined;
  }
  if (parsed.protocol !== 'http:') {
    problems.add(join(sp, 'http_uri.uri'), `"${uri}": only plaintext http:// collectors are supported by the Weft proxy`);
    return undefined;
  }
  const timeoutMs = durationMs(httpUri.timeout, problems, join(sp, 'http_uri.timeout')) ?? 5000;
  const headers: [string, string][] = [];
  ((service.request_headers_to_add ?? []) as Json[]).forEach((h, i) => {
    const hp = join(join(sp, 'request_headers_to_add'), i);
    problems.fields(h, hp, ['header', 'append_action'], ['append', 'keep_empty_value']);
    const key = String(h.header?.key ?? '').toLowerCase();
    if (!key) problems.add(join(hp, 'header.key'), 'header key is required');
    else headers.push([key, String(h.header?.value ?? '')]);
  });
  const cluster = String(httpUri.cluster ?? '');
  return { uri, cluster, timeoutMs: timeoutMs > 0 ? timeoutMs : 5000, headers, key: JSON.stringify([uri, cluster, timeoutMs, headers]) };
}

/** Compiles HttpConnectionManager.tracing; undefined when absent or invalid (problems say why). */
export function compileTracing(raw: Json | undefined, problems: Problems, path: string): TracingSettings | undefined {
  if (!raw) return undefined;
  problems.fields(
    raw,
    path,
    ['client_sampling', 'random_sampling', 'overall_sampling', 'max_path_tag_length', 'custom_tags', 'provider', 'spawn_upstream_span'],
    ['verbose'],
  );
  const provider = raw.provider as Json | undefined;
  if (!provider) {
    // Envoy would fall back to a bootstrap tracer; the Weft proxy has none.
    problems.add(join(path, 'provider'), 'a tracing provider is required (the Weft proxy has no bootstrap tracer)');
    return undefined;
  }
  const pp = join(path, 'provider');
  problems.fields(provider, pp, ['name', 'typed_config']);
  const cfg = (provider.typed_config ?? {}) as Json;
  const type = anyTypeName(cfg);
  if (type !== OPENTELEMETRY_CONFIG || !anyIsDecoded(cfg)) {
    problems.add(
      join(pp, 'typed_config'),
      `tracer "${provider.name ?? ''}" (${type ?? 'no type'}) is not supported by the Weft proxy; use envoy.tracers.opentelemetry with http_service`,
    );
    return undefined;
  }
  const endpoint = compileEndpoint(cfg, problems, join(pp, 'typed_config'));
  const customTags = ((raw.custom_tags ?? []) as Json[])
    .map((t, i) => compileCustomTag(t, problems, join(join(path, 'custom_tags'), i)))
    .filter((t): t is CustomTag => !!t);
  if (!endpoint) return undefined;
  return Object.freeze({
    // client_sampling only applies to x-client-trace-id forced traces, which the proxy does not do.
    randomSampling: percent(raw.random_sampling, problems, join(path, 'random_sampling')),
    overallSampling: percent(raw.overall_sampling, problems, join(path, 'overall_sampling')),
    spawnUpstreamSpan: wrapped<boolean>(raw.spawn_upstream_span) === true,
    maxPathTagLength: Number(wrapped<number>(raw.max_path_tag_length) ?? DEFAULT_MAX_PATH_TAG_LENGTH),
    customTags,
    endpoint,
    serviceName: String(cfg.service_name || 'unknown_service:envoy'),
  });
}
