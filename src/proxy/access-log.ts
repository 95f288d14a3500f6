// What the proxy records about each request or TCP connection, and Envoy-format access logs
// (file/stdout/stderr loggers, text format with %COMMAND% operators, or JSON format).
import * as fs from 'node:fs';
import { responseFlagsText } from './telemetry/istio-metrics';

export interface RequestRecord {
  /** Epoch milliseconds. */
  startTime: number;
  durationMs: number;
  listener: string;
  protocol: string;
  method: string;
  path: string;
  authority: string;
  /** 0 when no response was sent (downstream went away, reset). */
  status: number;
  /** Envoy response flags, e.g. ['UH'] or ['UF', 'URX']. */
  flags: string[];
  /** Envoy's response code details, e.g. `via_upstream`, `route_not_found`. */
  details: string;
  routeName?: string;
  upstreamCluster?: string;
  upstreamHost?: string;
  /** Upstream attempts made (1 + retries). */
  attempts: number;
  bytesReceived: number;
  bytesSent: number;
  requestId?: string;
  userAgent?: string;
  forwardedFor?: string;
  upstreamServiceTimeMs?: number;
  /** Addresses without port; the ports apart (Envoy's %..._ADDRESS% print `address:port`). */
  downstreamRemoteAddress: string;
  downstreamRemotePort?: number;
  downstreamLocalAddress: string;
  downstreamLocalPort?: number;
  /** `address:port` the proxy's upstream connection came from (tcp_proxy only: HTTP pools do not say). */
  upstreamLocalAddress?: string;
  /** SNI of the downstream TLS connection. */
  requestedServerName?: string;
  /** First URI SAN of the verified downstream / upstream peer certificate. */
  downstreamPeerUriSan?: string;
  upstreamPeerUriSan?: string;
  /** Why the upstream TLS handshake failed (Envoy's transport failure reason). */
  upstreamTransportFailureReason?: string;
  /**
   * An RBAC filter with action LOG (Istio's AUDIT) matched: Envoy's dynamic metadata
   * `envoy.common` `access_log_hint: true`. Absent otherwise.
   */
  rbacAudit?: true;
  /** The request's dynamic metadata per filter namespace (for %DYNAMIC_METADATA(ns:key)%). */
  dynamicMetadata?: ReadonlyMap<string, Readonly<Record<string, unknown>>>;
}

/** Envoy's default access log format. */
export const DEFAULT_ACCESS_LOG_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% ' +
  '%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" ' +
  '"%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n';

/** %DYNAMIC_METADATA(NAMESPACE:KEY:...)%: the value at that path (objects as JSON in text logs). */
function dynamicMetadata(record: RequestRecord, arg: string | undefined): unknown {
  const [namespace, ...keys] = (arg ?? '').split(':');
  let value: unknown = record.dynamicMetadata?.get(namespace);
  for (const k of keys) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[k];
  }
  return value;
}

function operator(record: RequestRecord, op: string, arg: string | undefined): unknown {
  switch (op) {
    case 'START_TIME':
      return new Date(record.startTime).toISOString();
    case 'PROTOCOL':
      return record.protocol;
    case 'RESPONSE_CODE':
      return record.status;
    case 'RESPONSE_FLAGS':
      return responseFlagsText(record.flags);
    case 'RESPONSE_CODE_DETAILS':
      return record.details;
    case 'CONNECTION_TERMINATION_DETAILS':
      // Set for TCP connections a filter closed (network RBAC).
      return record.protocol === 'TCP' && record.details !== 'via_upstream' ? record.details : undefined;
    case 'DYNAMIC_METADATA':
      return dynamicMetadata(record, arg);
    case 'BYTES_RECEIVED':
      return record.bytesReceived;
    case 'BYTES_SENT':
      return record.bytesSent;
    case 'DURATION':
      return Math.round(record.durationMs);
    case 'UPSTREAM_HOST':
      return record.upstreamHost;
    case 'UPSTREAM_CLUSTER':
      return record.upstreamCluster;
    case 'ROUTE_NAME':
      return record.routeName;
    case 'DOWNSTREAM_REMOTE_ADDRESS':
    case 'DOWNSTREAM_DIRECT_REMOTE_ADDRESS':
      return withPort(record.downstreamRemoteAddress, record.downstreamRemotePort);
    case 'DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT':
    case 'DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT':
      return record.downstreamRemoteAddress;
    case 'DOWNSTREAM_REMOTE_PORT':
      return record.downstreamRemotePort;
    case 'DOWNSTREAM_LOCAL_ADDRESS':
      return withPort(record.downstreamLocalAddress, record.downstreamLocalPort);
    case 'DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT':
      return record.downstreamLocalAddress;
    case 'DOWNSTREAM_LOCAL_PORT':
      return record.downstreamLocalPort;
    case 'UPSTREAM_LOCAL_ADDRESS':
      return record.upstreamLocalAddress;
    case 'REQUESTED_SERVER_NAME':
      return record.requestedServerName;
    case 'DOWNSTREAM_PEER_URI_SAN':
      return record.downstreamPeerUriSan;
    case 'UPSTREAM_PEER_URI_SAN':
      return record.upstreamPeerUriSan;
    case 'UPSTREAM_TRANSPORT_FAILURE_REASON':
      return record.upstreamTransportFailureReason;
    case 'UPSTREAM_REQUEST_ATTEMPT_COUNT':
      return record.attempts;
    case 'REQ': {
      const names = (arg ?? '').toLowerCase().split('?');
      for (const name of names) {
        const v = requestField(record, name);
        if (v !== undefined) return v;
      }
      return undefined;
    }
    case 'RESP':
      // Header values are text, also in JSON logs (as Envoy prints them).
      if ((arg ?? '').toLowerCase() === 'x-envoy-upstream-service-time') return record.upstreamServiceTimeMs === undefined ? undefined : String(record.upstreamServiceTimeMs);
      return undefined;
    default:
      return undefined;
  }
}

/** `address:port`, bracketing IPv6 addresses. */
function withPort(address: string, port: number | undefined): string {
  if (!address || port === undefined) return address;
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

function requestField(record: RequestRecord, name: string): string | undefined {
  // A TCP connection has no request: every request operator is empty.
  if (record.protocol === 'TCP') return undefined;
  switch (name) {
    case ':method':
      return record.method;
    case ':path':
      return record.path;
    case ':authority':
    case 'host':
      return record.authority;
    case 'x-request-id':
      return record.requestId;
    case 'user-agent':
      return record.userAgent;
    case 'x-forwarded-for':
      return record.forwardedFor;
    default:
      return undefined;
  }
}

export function formatAccessLog(record: RequestRecord, format: string = DEFAULT_ACCESS_LOG_FORMAT): string {
  return format.replace(/%([A-Z_]+)(?:\(([^)]*)\))?(?::\d+)?%/g, (_m, op: string, arg: string | undefined) => {
    const v = operator(record, op, arg);
    if (v === undefined || v === null || v === '') return '-';
    return typeof v === 'object' ? JSON.stringify(v) : String(v);
  });
}

export function formatJsonAccessLog(record: RequestRecord, fields: Record<string, string>): string {
  const out: Record<string, unknown> = {};
  for (const [key, template] of Object.entries(fields)) {
    const m = /^%([A-Z_]+)(?:\(([^)]*)\))?(?::\d+)?%$/.exec(String(template));
    if (!m) out[key] = formatAccessLog(record, String(template));
    else {
      // Envoy's JSON logs print an operator with no value as null.
      const v = operator(record, m[1], m[2]);
      out[key] = v === undefined || v === '' ? null : v;
    }
  }
  return JSON.stringify(out) + '\n';
}

/** Append-only writers per path, shared by every access log pointing at the same file. */
export class AccessLogWriters {
  private readonly streams = new Map<string, { write(line: string): void; close?(): void }>();

  writer(path: string): { write(line: string): void } {
    let w = this.streams.get(path);
    if (!w) {
      if (path === '/dev/stdout') w = { write: (line) => process.stdout.write(line) };
      else if (path === '/dev/stderr') w = { write: (line) => process.stderr.write(line) };
      else {
        const stream = fs.createWriteStream(path, { flags: 'a' });
        stream.on('error', () => undefined);
        w = { write: (line) => stream.write(line), close: () => stream.end() };
      }
      this.streams.set(path, w);
    }
    return w;
  }

  close(): void {
    for (const w of this.streams.values()) w.close?.();
    this.streams.clear();
  }
}
