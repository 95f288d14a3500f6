// Port protocol rules: Istio's protocol.Parse and kube ConvertProtocol (appProtocol, then the port
// name prefix `http-xxx`), and the predicates translation uses to pick HTTP vs TCP handling.
import type { Protocol } from './types';

const BY_NAME: Record<string, Protocol> = {
  http: 'HTTP',
  http_proxy: 'HTTP',
  http2: 'HTTP2',
  grpc: 'GRPC',
  'grpc-web': 'GRPC-WEB',
  https: 'HTTPS',
  tls: 'TLS',
  tcp: 'TCP',
  mongo: 'MONGO',
  mysql: 'MYSQL',
  redis: 'REDIS',
  udp: 'UDP',
};

/** Istio's protocol.Parse: case-insensitive protocol name; anything else is UNKNOWN (auto-detect). */
export function parseProtocol(name: string | undefined): Protocol {
  if (!name) return 'UNKNOWN';
  return BY_NAME[name.toLowerCase()] ?? 'UNKNOWN';
}

// Istio treats a few well-known ports as TCP when nothing else names the protocol (ssh).
const WELL_KNOWN_TCP_PORTS = new Set([22]);

/**
 * Istio's kube ConvertProtocol: UDP/SCTP transport wins; then appProtocol (with Kubernetes'
 * `kubernetes.io/h2c|ws|wss` names); then the port name's prefix before the first `-`
 * (`http-web` -> HTTP, `grpc-web-x` -> GRPC-WEB); unknown names stay UNKNOWN, which Istio
 * auto-detects (protocol sniffing) and Weft does too (see listeners.ts).
 */
export function protocolForKubePort(port: {
  port: number;
  name?: string;
  protocol?: string;
  appProtocol?: string;
}): Protocol {
  if (port.protocol === 'UDP') return 'UDP';
  if (port.protocol === 'SCTP') return 'UNKNOWN';
  let name = port.name ?? '';
  if (port.appProtocol) {
    name = port.appProtocol;
    if (name === 'kubernetes.io/h2c') return 'HTTP2';
    if (name === 'kubernetes.io/ws') return 'HTTP';
    if (name === 'kubernetes.io/wss') return 'HTTPS';
  }
  if (name.toLowerCase().startsWith('grpc-web')) return 'GRPC-WEB';
  const dash = name.indexOf('-');
  const parsed = parseProtocol(dash >= 0 ? name.slice(0, dash) : name);
  if (parsed === 'UNKNOWN' && WELL_KNOWN_TCP_PORTS.has(port.port)) return 'TCP';
  return parsed;
}

/** ServiceEntry / Gateway `protocol` field. */
export function protocolForServiceEntryPort(port: { protocol?: string; name?: string }): Protocol {
  return parseProtocol(port.protocol);
}

/** Ports whose traffic is routed by an HTTP connection manager. */
export function isHttpProtocol(p: Protocol): boolean {
  return p === 'HTTP' || p === 'HTTP2' || p === 'GRPC' || p === 'GRPC-WEB';
}

/** Ports whose upstream connections must speak HTTP/2 (Istio: IsHTTP2 — http2 and grpc). */
export function isHttp2Protocol(p: Protocol): boolean {
  return p === 'HTTP2' || p === 'GRPC';
}

/** Opaque TCP ports (TLS and HTTPS are TCP to a sidecar: it cannot see inside). */
export function isTcpProtocol(p: Protocol): boolean {
  return p === 'TCP' || p === 'TLS' || p === 'HTTPS' || p === 'MONGO' || p === 'MYSQL' || p === 'REDIS';
}

/** Ports matched by SNI (TLS routes). */
export function isTlsProtocol(p: Protocol): boolean {
  return p === 'TLS' || p === 'HTTPS';
}
