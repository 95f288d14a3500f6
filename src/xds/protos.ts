// Envoy's v3 protos, loaded from the set @grpc/grpc-js-xds ships, and the codec between
// protobuf bytes and the JSON form used everywhere else in Weft (Envoy's config_dump form:
// snake_case field names, "@type" on Any, durations as "1.5s", wrapper types as plain values).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';

export const TYPE_URL_PREFIX = 'type.googleapis.com/';

export const TypeUrl = {
  Cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  ClusterLoadAssignment: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  Listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  RouteConfiguration: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  Secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
} as const;
export type TypeUrl = (typeof TypeUrl)[keyof typeof TypeUrl];

/** ADS push order, as Envoy requires to avoid traffic drops: CDS, EDS, LDS, RDS. */
export const ADS_TYPE_ORDER: readonly TypeUrl[] = [
  TypeUrl.Cluster,
  TypeUrl.ClusterLoadAssignment,
  TypeUrl.Listener,
  TypeUrl.RouteConfiguration,
  TypeUrl.Secret,
];

export const SHORT_TYPE_NAMES: Record<TypeUrl, string> = {
  [TypeUrl.Cluster]: 'CDS',
  [TypeUrl.ClusterLoadAssignment]: 'EDS',
  [TypeUrl.Listener]: 'LDS',
  [TypeUrl.RouteConfiguration]: 'RDS',
  [TypeUrl.Secret]: 'SDS',
};

const PROTO_ROOT = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
export const PROTO_INCLUDE_DIRS = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) =>
  path.join(PROTO_ROOT, d),
);

/** Every proto file whose messages Weft puts on the wire or reads from it. */
const PROTO_FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/cors/v3/cors.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/jwt_authn/v3/config.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/load_balancing_policies/ring_hash/v3/ring_hash.proto',
  'envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.proto',
  'envoy/extensions/load_balancing_policies/least_request/v3/least_request.proto',
  'envoy/extensions/load_balancing_policies/random/v3/random.proto',
  'envoy/extensions/load_balancing_policies/maglev/v3/maglev.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/filters/listener/original_dst/v3/original_dst.proto',
  'envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/extensions/retry/priority/previous_priorities/v3/previous_priorities_config.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  'envoy/config/trace/v3/opentelemetry.proto',
  'envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto',
  'google/protobuf/struct.proto',
  'google/protobuf/duration.proto',
  'google/protobuf/wrappers.proto',
];

function formatDuration(seconds: number, nanos: number): string {
  const total = seconds + nanos / 1e9;
  return `${Number(total.toFixed(9))}s`;
}

/** Parses "1.5s", "100ms", "2m", "1h" (Istio accepts all; protobuf JSON only "s"). */
export function parseDurationString(text: string): { seconds: number; nanos: number } {
  const m = /^(\d+(?:\.\d+)?)(h|m|s|ms|us|µs|ns)$/.exec(text.trim());
  if (!m) throw new Error(`invalid duration "${text}"`);
  const unitSeconds: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, µs: 1e-6, ns: 1e-9 };
  const total = Number(m[1]) * unitSeconds[m[2]];
  const seconds = Math.floor(total);
  return { seconds, nanos: Math.round((total - seconds) * 1e9) };
}

// Struct / Value: protobufjs's built-in google.protobuf types use camelCase field names whatever
// keepCase says, so these objects are written in that form.
function toStructValue(v: unknown): Record<string, unknown> {
  if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toStructValue) } };
  return { structValue: { fields: mapToStructFields(v as Record<string, unknown>) } };
}
function mapToStructFields(o: Record<string, unknown>): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o ?? {})) fields[k] = toStructValue(v);
  return fields;
}
function fromStructValue(v: any): unknown {
  if (v == null) return null;
  if ('stringValue' in v) return v.stringValue;
  if ('numberValue' in v) return v.numberValue;
  if ('boolValue' in v) return v.boolValue;
  if ('listValue' in v) return (v.listValue.values ?? []).map(fromStructValue);
  if ('structValue' in v) return structFieldsToMap(v.structValue.fields ?? {});
  return null;
}
function structFieldsToMap(fields: Record<string, any>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) out[k] = fromStructValue(v);
  return out;
}

let root: protobuf.Root | undefined;

/**
 * The parsed descriptors, written at build time (`npm run build`, scripts/write-proto-descriptors.js)
 * next to this module. Building the root from them instead of parsing the .proto files halves its
 * cost (~450 -> ~230 ms of CPU, most of a proxy's start-up); a missing or stale file (other
 * protos) means parsing, which is slower but the same root.
 */
export const PROTO_DESCRIPTORS_FILE = path.join(__dirname, 'envoy-descriptors.json');

/** What the descriptors were made from: they are used only when this matches. */
export function protoDescriptorsKey(): string {
  const xdsVersion = (JSON.parse(fs.readFileSync(path.join(PROTO_ROOT, '..', 'package.json'), 'utf8')) as { version: string }).version;
  const protobufVersion = (JSON.parse(fs.readFileSync(require.resolve('protobufjs/package.json'), 'utf8')) as { version: string }).version;
  return JSON.stringify({ xdsVersion, protobufVersion, files: PROTO_FILES });
}

/** Parses the .proto files (what the descriptors file caches). */
export function parseEnvoyProtos(): protobuf.Root {
  const r = new protobuf.Root();
  const bundledGoogleProtos = path.join(path.dirname(require.resolve('protobufjs/package.json')), 'google', 'protobuf');
  r.resolvePath = (_origin, target) => {
    if (path.isAbsolute(target)) return target;
    // Well-known types protobufjs carries itself (any, duration, struct, ...) resolve by name.
    if (target.startsWith('google/protobuf/')) {
      const base = target.slice('google/protobuf/'.length);
      if (fs.existsSync(path.join(bundledGoogleProtos, base))) return path.join(bundledGoogleProtos, base);
      if ((protobuf.common as any)[target] || (protobuf.common as any)[base.replace('.proto', '')]) return target;
    }
    for (const dir of PROTO_INCLUDE_DIRS) {
      const candidate = path.join(dir, target);
      if (fs.existsSync(candidate)) return candidate;
    }
    return target;
  };
  r.loadSync(PROTO_FILES, { keepCase: true });
  return r;
}

function loadDescriptors(): protobuf.Root | undefined {
  let saved: { key: string; root: protobuf.INamespace };
  try {
    saved = JSON.parse(fs.readFileSync(PROTO_DESCRIPTORS_FILE, 'utf8')) as typeof saved;
  } catch {
    return undefined;
  }
  return saved.key === protoDescriptorsKey() ? protobuf.Root.fromJSON(saved.root) : undefined;
}

/** The protobufjs root holding every Envoy message Weft uses (loaded once, lazily). */
export function envoyProtoRoot(): protobuf.Root {
  if (root) return root;
  const r = loadDescriptors() ?? parseEnvoyProtos();
  r.resolveAll();
  root = r;
  return r;
}

const CONVERSION: protobuf.IConversionOptions = { longs: Number, enums: String, json: true, defaults: false, oneofs: false };

function lookupMessage(typeUrl: string): protobuf.Type {
  const name = typeUrl.startsWith(TYPE_URL_PREFIX) ? typeUrl.slice(TYPE_URL_PREFIX.length) : typeUrl;
  return envoyProtoRoot().lookupType(name);
}

/**
 * Encodes a resource in JSON form into protobuf bytes. Throws with the offending field when the
 * object does not fit the message (for example an unknown enum name).
 */
export function encodeResource(typeUrl: string, resource: object): Uint8Array {
  const type = lookupMessage(typeUrl);
  const message = type.fromObject(jsonToProtoObject(type, resource as Record<string, unknown>));
  return type.encode(message).finish();
}

const SCALAR_WRAPPERS = new Set(
  ['UInt32Value', 'Int32Value', 'UInt64Value', 'Int64Value', 'BoolValue', 'DoubleValue', 'FloatValue', 'StringValue'].map(
    (n) => `.google.protobuf.${n}`,
  ),
);

/**
 * Rewrites the JSON form into the object shape protobufjs's generated fromObject accepts
 * (its codegen rejects a string where a Duration message is expected, before any wrapper runs).
 */
/**
 * Rebuilds a message object field by field, converting the value of every message-typed field
 * (each element of a repeated field, each value of a map) with `convertValue`. The one walk both
 * directions of the codec share.
 */
function mapMessageFields(
  type: protobuf.Type,
  obj: Record<string, unknown>,
  convertValue: (fieldType: protobuf.Type, value: unknown) => unknown,
  onUnknownField: (key: string, value: unknown) => unknown,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(obj)) {
    if (value === undefined) continue;
    const field = type.fields[key];
    if (!field) {
      out[key] = onUnknownField(key, value);
      continue;
    }
    field.resolve();
    if (!(field.resolvedType instanceof protobuf.Type)) {
      out[key] = value;
      continue;
    }
    const fieldType = field.resolvedType;
    const convert = (v: unknown) => convertValue(fieldType, v);
    if (field.map) {
      out[key] = Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, convert(v)]));
    } else if (field.repeated) {
      out[key] = (value as unknown[]).map(convert);
    } else {
      out[key] = convert(value);
    }
  }
  return out;
}

function jsonToProtoObject(type: protobuf.Type, obj: Record<string, unknown>): Record<string, unknown> {
  return mapMessageFields(type, obj, jsonValueToProto, (key, value) => {
    if (key !== '@type') throw new Error(`${type.fullName.slice(1)}: unknown field "${key}"`);
    return value;
  });
}

function jsonValueToProto(type: protobuf.Type, value: unknown): unknown {
  const name = type.fullName;
  if (name === '.google.protobuf.Duration') return typeof value === 'string' ? parseDurationString(value) : value;
  if (SCALAR_WRAPPERS.has(name)) return value !== null && typeof value === 'object' ? value : { value };
  if (name === '.google.protobuf.Struct') {
    return { fields: mapToStructFields(value as Record<string, unknown>) };
  }
  if (name === '.google.protobuf.Value') return toStructValue(value);
  if (name === '.google.protobuf.Any') {
    const any = value as Record<string, unknown>;
    const typeUrl = any['@type'];
    if (typeof typeUrl !== 'string') return value;
    const inner = lookupMessage(typeUrl);
    return { ...jsonToProtoObject(inner, any), '@type': typeUrl };
  }
  if (value === null || typeof value !== 'object') return value;
  return jsonToProtoObject(type, value as Record<string, unknown>);
}

/**
 * The inverse of jsonToProtoObject for protobufjs's toObject output. Done by walking the message
 * type rather than with protobufjs "wrappers", which are process-global and would change how
 * other protobufjs users in the same process (grpc-js-xds) read durations and wrapper types.
 */
function protoObjectToJson(type: protobuf.Type, obj: Record<string, unknown>): Record<string, unknown> {
  return mapMessageFields(type, obj, protoValueToJson, (_key, value) => value);
}

function protoValueToJson(type: protobuf.Type, value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  const v = value as Record<string, any>;
  const name = type.fullName;
  if (name === '.google.protobuf.Duration') return formatDuration(Number(v.seconds ?? 0), Number(v.nanos ?? 0));
  if (SCALAR_WRAPPERS.has(name)) return v.value ?? (name === '.google.protobuf.BoolValue' ? false : name === '.google.protobuf.StringValue' ? '' : 0);
  if (name === '.google.protobuf.Struct') return structFieldsToMap(v.fields ?? {});
  if (name === '.google.protobuf.Value') return fromStructValue(v);
  if (name === '.google.protobuf.Any') {
    const typeUrl = v['@type'];
    if (typeof typeUrl !== 'string') return value;
    let inner: protobuf.Type;
    try {
      inner = lookupMessage(typeUrl);
    } catch {
      return value; // a type we do not load: leave it as protobufjs decoded it
    }
    return { '@type': typeUrl, ...protoObjectToJson(inner, v) };
  }
  return protoObjectToJson(type, v);
}

/** Decodes protobuf bytes of the given type into the JSON form. */
export function decodeResource<T = Record<string, unknown>>(typeUrl: string, bytes: Uint8Array, options: { defaults?: boolean } = {}): T {
  const type = lookupMessage(typeUrl);
  const conversion = options.defaults ? { ...CONVERSION, defaults: true } : CONVERSION;
  return protoObjectToJson(type, type.toObject(type.decode(bytes), conversion)) as T;
}

/** Wraps a resource as google.protobuf.Any, the form DiscoveryResponse.resources carries. */
export function toAny(typeUrl: string, resource: object): { type_url: string; value: Uint8Array } {
  return { type_url: typeUrl, value: encodeResource(typeUrl, resource) };
}
