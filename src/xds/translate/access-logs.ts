// Access logs on HTTP connection managers and tcp_proxies (Istio's accesslog builder): Envoy's
// file access logger, from meshConfig.accessLogFile / accessLogEncoding / accessLogFormat
// (Istio's FileAccessLogFromMeshConfig), or from the envoyFileAccessLog providers a Telemetry
// resource turns on (telemetry.ts decides which applies). Listener-level logs are left out:
// Istio's carry a response-flag filter, which the Weft proxy does not run.
import type { ProxyNode } from '../../model/proxy';
import type { FileAccessLogProvider, MeshConfig, MeshSnapshot } from '../../model/snapshot';
import { accessLogsFor, type ListenerClass } from './telemetry';
import type { EnvoyResource } from './types';
import { TYPE } from './values';

type Json = Record<string, unknown>;

const FILE_ACCESS_LOG = 'envoy.access_loggers.file';
const FILE_ACCESS_LOG_TYPE = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';

/** Istio's EnvoyTextLogFormat (1.9 onwards). */
export const ISTIO_TEXT_ACCESS_LOG_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% ' +
  '%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% ' +
  '%DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" ' +
  '"%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% ' +
  '%DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n';

/**
 * Istio's EnvoyJSONLogFormatIstio, plus the peers' SPIFFE ids (Weft adds them: who called and
 * who answered is what a mesh access log is most often read for).
 */
export const ISTIO_JSON_ACCESS_LOG_FORMAT: Readonly<Record<string, string>> = Object.freeze({
  start_time: '%START_TIME%',
  route_name: '%ROUTE_NAME%',
  method: '%REQ(:METHOD)%',
  path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  protocol: '%PROTOCOL%',
  response_code: '%RESPONSE_CODE%',
  response_flags: '%RESPONSE_FLAGS%',
  response_code_details: '%RESPONSE_CODE_DETAILS%',
  connection_termination_details: '%CONNECTION_TERMINATION_DETAILS%',
  bytes_received: '%BYTES_RECEIVED%',
  bytes_sent: '%BYTES_SENT%',
  duration: '%DURATION%',
  upstream_service_time: '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%',
  x_forwarded_for: '%REQ(X-FORWARDED-FOR)%',
  user_agent: '%REQ(USER-AGENT)%',
  request_id: '%REQ(X-REQUEST-ID)%',
  authority: '%REQ(:AUTHORITY)%',
  upstream_host: '%UPSTREAM_HOST%',
  upstream_cluster: '%UPSTREAM_CLUSTER%',
  upstream_local_address: '%UPSTREAM_LOCAL_ADDRESS%',
  downstream_local_address: '%DOWNSTREAM_LOCAL_ADDRESS%',
  downstream_remote_address: '%DOWNSTREAM_REMOTE_ADDRESS%',
  requested_server_name: '%REQUESTED_SERVER_NAME%',
  upstream_transport_failure_reason: '%UPSTREAM_TRANSPORT_FAILURE_REASON%',
  downstream_peer_uri_san: '%DOWNSTREAM_PEER_URI_SAN%',
  upstream_peer_uri_san: '%UPSTREAM_PEER_URI_SAN%',
});

function fileAccessLog(path: string, logFormat: Json): Json {
  return { name: FILE_ACCESS_LOG, typed_config: { '@type': FILE_ACCESS_LOG_TYPE, path, log_format: logFormat } };
}

/** Istio: "a newline is inserted on all formats (if missing)". */
function textFormat(text: string | undefined): Json {
  const format = text ? (text.endsWith('\n') ? text : text + '\n') : ISTIO_TEXT_ACCESS_LOG_FORMAT;
  return { text_format_source: { inline_string: format } };
}

/** A JSON object of string fields, or undefined when `text` is not one. */
function parseJsonFormat(text: string | undefined): Record<string, unknown> | undefined {
  if (!text) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0 ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Istio's FileAccessLogFromMeshConfig: encoding and format from the mesh config. */
export function fileAccessLogFromMeshConfig(path: string, mesh: MeshConfig): Json {
  if (mesh.accessLogEncoding === 'JSON') {
    // Istio falls back to its default when the format does not parse (and logs it; validation
    // of the mesh config reports it here).
    return fileAccessLog(path, { json_format: parseJsonFormat(mesh.accessLogFormat) ?? { ...ISTIO_JSON_ACCESS_LOG_FORMAT } });
  }
  return fileAccessLog(path, textFormat(mesh.accessLogFormat));
}

/** Istio's fileAccessLogFromTelemetry (the built-in `envoy` provider takes the mesh config's format). */
function fileAccessLogFromProvider(name: string, file: FileAccessLogProvider, mesh: MeshConfig): Json {
  const path = file.path || '/dev/stdout';
  if (name === 'envoy') return fileAccessLogFromMeshConfig(path, mesh);
  const labels = file.logFormat?.labels;
  // `labels` (even empty) means JSON: those fields, or Istio's default ones.
  if (labels !== undefined) return fileAccessLog(path, { json_format: Object.keys(labels).length ? { ...labels } : { ...ISTIO_JSON_ACCESS_LOG_FORMAT } });
  return fileAccessLog(path, textFormat(file.logFormat?.text));
}

/** The `access_log` of this proxy's HCMs and tcp_proxies of class `cls`; undefined: none. */
export function accessLogConfig(snapshot: MeshSnapshot, proxy: ProxyNode, cls: ListenerClass): Json[] | undefined {
  const mesh = snapshot.meshConfig;
  const decision = accessLogsFor(snapshot, proxy, cls);
  if (decision.source === 'telemetry') {
    return decision.logs.length ? decision.logs.map((l) => fileAccessLogFromProvider(l.provider, l.file, mesh)) : undefined;
  }
  return mesh.accessLogFile ? [fileAccessLogFromMeshConfig(mesh.accessLogFile, mesh)] : undefined;
}

const LOGGED_FILTERS: ReadonlySet<unknown> = new Set([TYPE.HttpConnectionManager, TYPE.TcpProxy]);

/**
 * `listeners` with `logs` as the access_log of every HTTP connection manager and tcp_proxy.
 * Copies what it changes: the listeners may already be shared.
 */
export function withAccessLogs(listeners: readonly EnvoyResource[], logs: readonly Json[] | undefined): EnvoyResource[] {
  if (!logs || logs.length === 0) return [...listeners];
  const withLogs = (chain: Json): Json => {
    const filters = chain.filters as Json[] | undefined;
    if (!filters?.some((f) => LOGGED_FILTERS.has((f.typed_config as Json | undefined)?.['@type']))) return chain;
    return {
      ...chain,
      filters: filters.map((f) => {
        const typed = f.typed_config as Json | undefined;
        return typed && LOGGED_FILTERS.has(typed['@type']) ? { ...f, typed_config: { ...typed, access_log: logs } } : f;
      }),
    };
  };
  return listeners.map((l) => ({
    ...l,
    ...(Array.isArray(l.filter_chains) ? { filter_chains: (l.filter_chains as Json[]).map(withLogs) } : {}),
    ...(l.default_filter_chain ? { default_filter_chain: withLogs(l.default_filter_chain as Json) } : {}),
  }));
}
