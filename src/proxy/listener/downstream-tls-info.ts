// The TLS facts of a downstream connection (SNI, version, the verified peer identity), read once
// per connection from node:tls and cached on the socket, so per-request authorization checks are
// a property read.
import * as tls from 'node:tls';
import type { Socket } from 'node:net';
import type { DownstreamTlsInfo } from '../config/model';

const kTlsInfo = Symbol('weft.tlsInfo');
type CachedSocket = Socket & { [kTlsInfo]?: DownstreamTlsInfo | null };

/** Typed SAN entries of node's `subjectaltname` string ("DNS:a, URI:spiffe://..."). */
export function parseSubjectAltNames(subjectaltname: string | undefined): { type: string; value: string }[] {
  return (subjectaltname ?? '')
    .split(/,\s*/)
    .filter(Boolean)
    .map((entry) => {
      const colon = entry.indexOf(':');
      const type = entry.slice(0, colon);
      return { type: type === 'IP Address' ? 'IP_ADDRESS' : type, value: entry.slice(colon + 1) };
    });
}

export function downstreamTlsInfo(socket: Socket | undefined | null): DownstreamTlsInfo | undefined {
  if (!socket || !(socket instanceof tls.TLSSocket)) return undefined;
  const cached = (socket as CachedSocket)[kTlsInfo];
  if (cached !== undefined) return cached ?? undefined;
  const sock = socket as tls.TLSSocket & { servername?: string | false };
  let peerPrincipal: string | undefined;
  let peerUriSans: string[] = [];
  // Only a certificate that passed verification is an identity.
  if (sock.authorized) {
    const cert = sock.getPeerCertificate();
    if (cert && Object.keys(cert).length) {
      const sans = parseSubjectAltNames(cert.subjectaltname);
      peerUriSans = sans.filter((s) => s.type === 'URI').map((s) => s.value);
      const dns = sans.find((s) => s.type === 'DNS')?.value;
      const subject = cert.subject ? Object.entries(cert.subject).map(([k, v]) => `${k}=${v}`).join(',') : undefined;
      peerPrincipal = peerUriSans[0] ?? dns ?? subject;
    }
  }
  const info: DownstreamTlsInfo = {
    serverName: typeof sock.servername === 'string' ? sock.servername : undefined,
    version: sock.getProtocol() ?? undefined,
    peerPrincipal,
    peerUriSans,
  };
  (socket as CachedSocket)[kTlsInfo] = info;
  return info;
}
