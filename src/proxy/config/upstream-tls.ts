// UpstreamTlsContext (a cluster's tls transport socket) -> TLS origination settings for
// node:tls: SNI, trusted CA, client certificate (mutual TLS), SAN checks and ALPN, with
// Envoy's rule that without a validation context the server certificate is not verified.
import * as fs from 'node:fs';
import type { PeerCertificate } from 'node:tls';
import { compileStringMatcher, type StringPredicate } from './string-matcher';
import { join, type Json, type Problems } from './validation';

export const UPSTREAM_TLS_CONTEXT = 'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';

export interface UpstreamTlsSettings {
  sni?: string;
  /** PEM; undefined: the server certificate chain is not verified (Envoy without validation_context). */
  ca?: Buffer;
  /** System roots (validation_context.system_root_certs). */
  systemRoots: boolean;
  cert?: Buffer;
  key?: Buffer;
  /** Subject alternative names the server certificate must carry one of (empty: no SAN check). */
  subjectAltNames: readonly { type?: 'DNS' | 'URI' | 'EMAIL' | 'IP_ADDRESS'; match: StringPredicate }[];
  alpn: readonly string[];
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
}

const TLS_VERSIONS: Record<string, 'TLSv1.2' | 'TLSv1.3' | undefined> = { TLSv1_2: 'TLSv1.2', TLSv1_3: 'TLSv1.3', TLS_AUTO: undefined };

/** envoy.config.core.v3.DataSource: a file read now (config time), or inline bytes/string. */
function dataSource(d: Json | undefined, problems: Problems, path: string): Buffer | undefined {
  if (!d) return undefined;
  problems.fields(d, path, ['filename', 'inline_string', 'inline_bytes'], ['watched_directory']);
  if (typeof d.filename === 'string' && d.filename) {
    try {
      return fs.readFileSync(d.filename);
    } catch (err) {
      problems.add(join(path, 'filename'), `cannot read "${d.filename}": ${(err as Error).message}`);
      return undefined;
    }
  }
  if (typeof d.inline_string === 'string') return Buffer.from(d.inline_string);
  if (d.inline_bytes !== undefined) return Buffer.from(d.inline_bytes, 'base64');
  problems.add(path, 'data source needs filename, inline_string or inline_bytes (environment variables are not supported)');
  return undefined;
}

export function compileUpstreamTls(ctx: Json, problems: Problems, path: string): UpstreamTlsSettings {
  problems.fields(ctx, path, ['common_tls_context', 'sni'], ['allow_renegotiation', 'max_session_keys', 'enforce_rsa_key_usage']);
  const common = (ctx.common_tls_context ?? {}) as Json;
  const cp = join(path, 'common_tls_context');
  problems.fields(common, cp, ['tls_params', 'tls_certificates', 'validation_context', 'alpn_protocols'], ['key_log']);
  for (const k of ['tls_certificate_sds_secret_configs', 'validation_context_sds_secret_config', 'combined_validation_context', 'tls_certificate_provider_instance', 'custom_handshaker']) {
    if (common[k] && (!Array.isArray(common[k]) || common[k].length)) problems.add(join(cp, k), `${k} is not supported by the Weft proxy yet (certificates must be files or inline)`);
  }
  const out: UpstreamTlsSettings = { sni: ctx.sni || undefined, systemRoots: false, subjectAltNames: [], alpn: (common.alpn_protocols ?? []) as string[] };
  if (common.tls_params) {
    const p = join(cp, 'tls_params');
    problems.fields(common.tls_params, p, ['tls_minimum_protocol_version', 'tls_maximum_protocol_version'], ['cipher_suites', 'ecdh_curves', 'signature_algorithms']);
    out.minVersion = TLS_VERSIONS[common.tls_params.tls_minimum_protocol_version ?? 'TLS_AUTO'];
    out.maxVersion = TLS_VERSIONS[common.tls_params.tls_maximum_protocol_version ?? 'TLS_AUTO'];
  }
  const certs = (common.tls_certificates ?? []) as Json[];
  if (certs.length > 1) problems.add(join(cp, 'tls_certificates'), 'only one client certificate is supported');
  if (certs[0]) {
    const p = join(join(cp, 'tls_certificates'), 0);
    problems.fields(certs[0], p, ['certificate_chain', 'private_key']);
    out.cert = dataSource(certs[0].certificate_chain, problems, join(p, 'certificate_chain'));
    out.key = dataSource(certs[0].private_key, problems, join(p, 'private_key'));
  }
  const v = common.validation_context as Json | undefined;
  if (v) {
    const p = join(cp, 'validation_context');
    problems.fields(v, p, ['trusted_ca', 'system_root_certs', 'match_subject_alt_names', 'match_typed_subject_alt_names', 'trust_chain_verification']);
    out.ca = dataSource(v.trusted_ca, problems, join(p, 'trusted_ca'));
    out.systemRoots = !!v.system_root_certs;
    if (v.trust_chain_verification === 'ACCEPT_UNTRUSTED') {
      out.ca = undefined;
      out.systemRoots = false;
    }
    const sans: UpstreamTlsSettings['subjectAltNames'][number][] = [];
    ((v.match_subject_alt_names ?? []) as Json[]).forEach((m, i) => sans.push({ match: compileStringMatcher(m, problems, join(join(p, 'match_subject_alt_names'), i)) }));
    ((v.match_typed_subject_alt_names ?? []) as Json[]).forEach((m, i) => {
      const mp = join(join(p, 'match_typed_subject_alt_names'), i);
      problems.fields(m, mp, ['san_type', 'matcher']);
      const type = m.san_type as 'DNS' | 'URI' | 'EMAIL' | 'IP_ADDRESS' | undefined;
      if (type && !['DNS', 'URI', 'EMAIL', 'IP_ADDRESS'].includes(type)) problems.add(join(mp, 'san_type'), `SAN type ${type} is not supported`);
      sans.push({ type, match: compileStringMatcher(m.matcher, problems, join(mp, 'matcher')) });
    });
    out.subjectAltNames = sans;
  }
  return out;
}

/** Node's subjectaltname ("DNS:a, URI:spiffe://...") as typed entries. */
function subjectAltNames(cert: PeerCertificate): { type: string; value: string }[] {
  return (cert.subjectaltname ?? '')
    .split(/,\s*/)
    .filter(Boolean)
    .map((entry) => {
      const colon = entry.indexOf(':');
      const type = entry.slice(0, colon);
      return { type: type === 'IP Address' ? 'IP_ADDRESS' : type, value: entry.slice(colon + 1) };
    });
}

/** node:tls options for connecting with these settings. */
export function tlsConnectOptions(t: UpstreamTlsSettings): {
  servername?: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  rejectUnauthorized: boolean;
  ALPNProtocols?: string[];
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
  checkServerIdentity: (host: string, cert: PeerCertificate) => Error | undefined;
} {
  const verify = !!t.ca || t.systemRoots;
  return {
    servername: t.sni,
    ca: t.ca,
    cert: t.cert,
    key: t.key,
    rejectUnauthorized: verify,
    ALPNProtocols: t.alpn.length ? [...t.alpn] : undefined,
    minVersion: t.minVersion,
    maxVersion: t.maxVersion,
    // Envoy checks the chain, and names only when match_subject_alt_names says which.
    checkServerIdentity: (_host, cert) => {
      if (t.subjectAltNames.length === 0) return undefined;
      const names = subjectAltNames(cert);
      const ok = t.subjectAltNames.some((m) => names.some((n) => (!m.type || m.type === n.type) && m.match(n.value)));
      if (ok) return undefined;
      return Object.assign(new Error(`upstream certificate SANs [${cert.subjectaltname ?? ''}] match none of the configured subject alt names`), {
        code: 'ERR_TLS_CERT_ALTNAME_INVALID',
      });
    },
  };
}
