// UpstreamTlsContext (a cluster's tls transport socket, or one of its transport_socket_matches)
// -> TLS origination settings: SNI, the client certificate (files or the agent's `default`), the
// trusted CA (files, system roots or the agent's `ROOTCA`), SAN checks and ALPN, with Envoy's rule
// that without any validation context the server certificate is not verified. Also Envoy's choice
// of transport socket per endpoint (transport_socket_matches against endpoint metadata).
import type { PeerCertificate } from 'node:tls';
import { compileCommonTlsContext, subjectAltNamesMatch, type CommonTlsSettings } from './common-tls-context';
import { join, type Json, type Problems } from './validation';

export const UPSTREAM_TLS_CONTEXT = 'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';

export interface UpstreamTlsSettings extends CommonTlsSettings {
  sni?: string;
}

export function compileUpstreamTls(ctx: Json, problems: Problems, path: string): UpstreamTlsSettings {
  problems.fields(ctx, path, ['common_tls_context', 'sni'], ['allow_renegotiation', 'max_session_keys', 'enforce_rsa_key_usage']);
  const common = compileCommonTlsContext(ctx.common_tls_context, problems, join(path, 'common_tls_context'), 'client');
  return { ...common, sni: ctx.sni || undefined };
}

/** Whether the server certificate chain is verified at all (Envoy: only with a validation context). */
export function verifiesServer(t: UpstreamTlsSettings): boolean {
  return !!t.ca || t.systemRoots || !!t.validationSecret;
}

/**
 * node:tls's checkServerIdentity for these settings. Envoy checks the chain, and names only when
 * match_subject_alt_names says which; the host name is never compared (SNI is not an identity).
 */
export function serverIdentityCheck(t: UpstreamTlsSettings): (host: string, cert: PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    if (subjectAltNamesMatch(t.subjectAltNames, cert.subjectaltname)) return undefined;
    return Object.assign(new Error(`upstream certificate SANs [${cert.subjectaltname ?? ''}] match none of the configured subject alt names`), {
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
  };
}

/** One entry of a cluster's transport_socket_matches, compiled. */
export interface TransportSocketMatch {
  name: string;
  /** Every key must be present with an equal value in the endpoint's `envoy.transport_socket_match` metadata. */
  match: Readonly<Record<string, unknown>>;
  /** Undefined: plaintext (raw_buffer). */
  tls?: UpstreamTlsSettings;
}

/** Where an endpoint's transport socket is chosen from: its own metadata, then its locality's. */
export interface TransportSocketMetadata {
  endpoint?: Readonly<Record<string, unknown>>;
  locality?: Readonly<Record<string, unknown>>;
}

/** Protobuf Value equality on the JSON form (Envoy's ValueUtil::equal). */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  return ka.length === kb.length && ka.every((k) => sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

function labelsMatch(match: Readonly<Record<string, unknown>>, metadata: Readonly<Record<string, unknown>> | undefined): boolean {
  for (const [k, v] of Object.entries(match)) {
    if (!metadata || !(k in metadata) || !sameValue(metadata[k], v)) return false;
  }
  return true;
}

/**
 * Envoy's TransportSocketMatcher: the first match whose criteria the endpoint's metadata
 * satisfies (an empty `match` matches every endpoint), then the same against the locality's
 * metadata, else the cluster's own transport_socket. Istio relies on the order: `tlsMode-istio`
 * first for endpoints with a sidecar, then `tlsMode-disabled` with an empty match.
 */
export function selectTransportSocket(
  matches: readonly TransportSocketMatch[] | undefined,
  clusterTls: UpstreamTlsSettings | undefined,
  metadata: TransportSocketMetadata | undefined,
): UpstreamTlsSettings | undefined {
  if (!matches || matches.length === 0) return clusterTls;
  for (const m of matches) if (labelsMatch(m.match, metadata?.endpoint)) return m.tls;
  if (metadata?.locality) for (const m of matches) if (labelsMatch(m.match, metadata.locality)) return m.tls;
  return clusterTls;
}
