// Istio API value types in Envoy's form: durations, percentages, string and header matchers,
// header mutations, and the `@type` URLs of the typed configs translation emits.
import type { HeaderOperations, Percent, StringMatch } from '../../config/resources';
import { parseDurationString } from '../protos';

export const TYPE = {
  HttpConnectionManager: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  TcpProxy: 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  Router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  Fault: 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault',
  Cors: 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors',
  CorsPolicy: 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy',
  UpstreamTlsContext: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  DownstreamTlsContext: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  TlsInspector: 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
  HttpInspector: 'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector',
  OriginalDst: 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst',
  RawBuffer: 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer',
  RbacHttp: 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
  RbacNetwork: 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC',
  JwtAuthentication: 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication',
} as const;

/** Envoy's well-known filter names. */
export const FILTER = {
  HttpConnectionManager: 'envoy.filters.network.http_connection_manager',
  TcpProxy: 'envoy.filters.network.tcp_proxy',
  Router: 'envoy.filters.http.router',
  Fault: 'envoy.filters.http.fault',
  Cors: 'envoy.filters.http.cors',
  TlsInspector: 'envoy.filters.listener.tls_inspector',
  HttpInspector: 'envoy.filters.listener.http_inspector',
  OriginalDst: 'envoy.filters.listener.original_dst',
  TlsTransportSocket: 'envoy.transport_sockets.tls',
  RawBufferTransportSocket: 'envoy.transport_sockets.raw_buffer',
  RbacHttp: 'envoy.filters.http.rbac',
  RbacNetwork: 'envoy.filters.network.rbac',
  JwtAuthn: 'envoy.filters.http.jwt_authn',
} as const;

/** An xDS config source pointing at the ADS stream the resource came on (a fresh object). */
export function adsConfigSource(): Record<string, unknown> {
  return { ads: {}, initial_fetch_timeout: '0s', resource_api_version: 'V3' };
}

/** Istio durations ("1m", "250ms", "2s") in protobuf JSON form ("60s", "0.25s"). */
export function envoyDuration(text: string): string {
  const { seconds, nanos } = parseDurationString(text);
  return `${Number((seconds + nanos / 1e9).toFixed(9))}s`;
}

/** Whole seconds of an Istio duration (TCP keepalive and CORS max-age take integers). */
export function durationSeconds(text: string): number {
  return parseDurationString(text).seconds;
}

/** Istio's translatePercentToFractionalPercent: a double percent as parts per million. */
export function fractionalPercent(p: Percent | undefined): { numerator: number; denominator: string } {
  return { numerator: Math.round((p?.value ?? 0) * 10000), denominator: 'MILLION' };
}

/** Istio's translateIntegerToFractionalPercent (deprecated integer `percent` fields). */
export function integerPercent(p: number | undefined): { numerator: number; denominator: string } {
  return { numerator: p ?? 0, denominator: 'HUNDRED' };
}

/** Istio's ConvertToEnvoyMatch: exact / prefix / regex -> envoy.type.matcher.v3.StringMatcher. */
export function stringMatcher(m: StringMatch, ignoreCase = false): Record<string, unknown> | undefined {
  const base = ignoreCase ? { ignore_case: true } : {};
  if (m.exact !== undefined) return { exact: m.exact, ...base };
  if (m.prefix !== undefined) return { prefix: m.prefix, ...base };
  if (m.regex !== undefined) return { safe_regex: { regex: m.regex } };
  return undefined;
}

/**
 * Istio's translateHeaderMatch: a missing or catch-all match (`prefix: ""`, `regex: "*"`, `{}`)
 * is a presence check; otherwise a string_match.
 */
export function headerMatcher(name: string, m: StringMatch | undefined, invert = false): Record<string, unknown> {
  const out: Record<string, unknown> = { name };
  const catchAll = !m || m.prefix === '' || m.regex === '*' || stringMatcher(m) === undefined;
  if (catchAll) out.present_match = true;
  else out.string_match = stringMatcher(m as StringMatch);
  if (invert) out.invert_match = true;
  return out;
}

/** Header mutations: `set` overwrites, `add` appends (Istio's translateAppendHeaders). */
export function headerMutations(ops: HeaderOperations | undefined): { add: Record<string, unknown>[]; remove: string[] } {
  const add: Record<string, unknown>[] = [];
  for (const [key, value] of sortedEntries(ops?.set)) {
    add.push({ header: { key, value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' });
  }
  for (const [key, value] of sortedEntries(ops?.add)) {
    add.push({ header: { key, value }, append_action: 'APPEND_IF_EXISTS_OR_ADD' });
  }
  return { add, remove: [...(ops?.remove ?? [])] };
}

export function sortedEntries<V>(o: Record<string, V> | undefined): [string, V][] {
  return Object.entries(o ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

export function socketAddress(address: string, port: number): Record<string, unknown> {
  return { socket_address: { address, port_value: port } };
}

/** Envoy locality from Istio's `region/zone/subzone` string. */
export function locality(text: string | undefined): Record<string, string> {
  const [region, zone, subZone] = (text ?? '').split('/');
  return {
    ...(region ? { region } : {}),
    ...(zone ? { zone } : {}),
    ...(subZone ? { sub_zone: subZone } : {}),
  };
}

/** CIDR range for filter_chain_match.prefix_ranges from `10.0.0.1` or `10.0.0.0/16`. */
export function cidrRange(text: string): Record<string, unknown> {
  const [address, len] = text.split('/');
  const v6 = address.includes(':');
  return { address_prefix: address, prefix_len: len !== undefined ? Number(len) : v6 ? 128 : 32 };
}
