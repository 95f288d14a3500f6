// CommonTlsContext, the part UpstreamTlsContext and DownstreamTlsContext share: the certificate a
// side presents, what it trusts, which peer names it accepts, ALPN and protocol versions.
// Certificates are either data (files read, or inline bytes, at config time) or SDS secret names
// that the proxy's own identity agent serves, resolved at handshake time (identity/secure-contexts)
// so a rotated certificate takes effect without recompiling anything.
import { parseSubjectAltNames } from '../listener/downstream-tls-info';
import * as fs from 'node:fs';
import { compileStringMatcher, type StringPredicate } from './string-matcher';
import { join, type Json, type Problems } from './validation';

/** The cluster name Istio's bootstrap gives the agent's SDS server; here the proxy itself. */
export const LOCAL_SDS_CLUSTER = 'sds-grpc';
/** Istio's SDS resource names: the workload certificate chain and key, and the mesh root. */
export const WORKLOAD_CERTIFICATE_SECRET = 'default';
export const ROOT_CA_SECRET = 'ROOTCA';

export type SanType = 'DNS' | 'URI' | 'EMAIL' | 'IP_ADDRESS';

export interface SanMatcher {
  /** Undefined: any SAN type (match_subject_alt_names); set: match_typed_subject_alt_names. */
  type?: SanType;
  match: StringPredicate;
}

/** An SDS secret the local identity agent serves; `path` is where the config named it (for errors). */
export interface SdsSecretRef {
  name: string;
  path: string;
}

export interface CommonTlsSettings {
  /** PEM chain and key presented to the peer (data sources). */
  cert?: Buffer;
  key?: Buffer;
  /** Or the agent's certificate (`default`), looked up per handshake. */
  certificateSecret?: SdsSecretRef;
  /** PEM trusted CAs (data source). */
  ca?: Buffer;
  /** validation_context.system_root_certs. */
  systemRoots: boolean;
  /** Or the agent's trust bundle (`ROOTCA`), looked up per handshake. */
  validationSecret?: SdsSecretRef;
  /** The peer certificate must carry one of these (empty: no name check). */
  subjectAltNames: readonly SanMatcher[];
  alpn: readonly string[];
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
}

const TLS_VERSIONS: Record<string, 'TLSv1.2' | 'TLSv1.3' | undefined> = { TLSv1_2: 'TLSv1.2', TLSv1_3: 'TLSv1.3', TLS_AUTO: undefined };

/** envoy.config.core.v3.DataSource: a file read now (config time), or inline bytes/string. */
export function dataSource(d: Json | undefined, problems: Problems, path: string): Buffer | undefined {
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

/**
 * An SdsSecretConfig the Weft proxy can serve: `expected` from the local agent (sds_config pointing
 * at cluster sds-grpc, as Istio's bootstrap does). Secrets pushed over ADS (a gateway's
 * credentialName) and other SDS servers are refused with a hint.
 */
function sdsSecretRef(s: Json, problems: Problems, path: string, expected: string): SdsSecretRef | undefined {
  problems.fields(s, path, ['name', 'sds_config']);
  const name = String(s.name ?? '');
  if (!name) {
    problems.add(join(path, 'name'), 'an SDS secret needs a name');
    return undefined;
  }
  const source = s.sds_config as Json | undefined;
  if (!source) {
    problems.add(join(path, 'sds_config'), `SDS secret "${name}" has no sds_config; static bootstrap secrets do not exist in the Weft proxy`);
    return undefined;
  }
  const sp = join(path, 'sds_config');
  if (source.ads || source.api_config_source?.api_type === 'AGGREGATED_GRPC') {
    problems.add(
      sp,
      `SDS secret "${name}" is to be delivered over ADS (a Gateway credentialName); the Weft proxy does not take Secret resources from the control plane (hint: give the gateway certificate as files, tls.serverCertificate / privateKey)`,
    );
    return undefined;
  }
  problems.fields(source, sp, ['api_config_source', 'initial_fetch_timeout', 'resource_api_version'], ['authorities']);
  const api = (source.api_config_source ?? {}) as Json;
  const apiPath = join(sp, 'api_config_source');
  problems.fields(api, apiPath, ['api_type', 'grpc_services', 'transport_api_version', 'set_node_on_first_message_only'], ['refresh_delay', 'request_timeout', 'rate_limit_settings']);
  const services = (api.grpc_services ?? []) as Json[];
  const cluster = services[0]?.envoy_grpc?.cluster_name;
  if (api.api_type !== 'GRPC' || services.length !== 1 || cluster !== LOCAL_SDS_CLUSTER) {
    problems.add(apiPath, `SDS secret "${name}" must come from the local identity agent (api_type GRPC, envoy_grpc cluster "${LOCAL_SDS_CLUSTER}"), as Istio's bootstrap configures it`);
    return undefined;
  }
  if (name !== expected) {
    problems.add(
      join(path, 'name'),
      `the local identity agent serves "${WORKLOAD_CERTIFICATE_SECRET}" (the workload certificate) and "${ROOT_CA_SECRET}" (the mesh root); "${name}" is not one it can use here (expected "${expected}")`,
    );
    return undefined;
  }
  return { name, path };
}

/** CertificateValidationContext: trusted CA data and the peer-name checks. */
function compileValidationContext(v: Json, problems: Problems, path: string, role: 'client' | 'server', out: CommonTlsSettings): void {
  problems.fields(v, path, ['trusted_ca', 'system_root_certs', 'match_subject_alt_names', 'match_typed_subject_alt_names', 'trust_chain_verification']);
  out.ca = dataSource(v.trusted_ca, problems, join(path, 'trusted_ca'));
  out.systemRoots = !!v.system_root_certs;
  if (v.trust_chain_verification === 'ACCEPT_UNTRUSTED') {
    if (role === 'server') problems.add(join(path, 'trust_chain_verification'), 'ACCEPT_UNTRUSTED is not supported for downstream connections');
    out.ca = undefined;
    out.systemRoots = false;
  }
  const sans: SanMatcher[] = [];
  ((v.match_subject_alt_names ?? []) as Json[]).forEach((m, i) => sans.push({ match: compileStringMatcher(m, problems, join(join(path, 'match_subject_alt_names'), i)) }));
  ((v.match_typed_subject_alt_names ?? []) as Json[]).forEach((m, i) => {
    const mp = join(join(path, 'match_typed_subject_alt_names'), i);
    problems.fields(m, mp, ['san_type', 'matcher']);
    const type = m.san_type as SanType | undefined;
    if (type && !['DNS', 'URI', 'EMAIL', 'IP_ADDRESS'].includes(type)) problems.add(join(mp, 'san_type'), `SAN type ${type} is not supported`);
    sans.push({ type, match: compileStringMatcher(m.matcher, problems, join(mp, 'matcher')) });
  });
  out.subjectAltNames = sans;
}

export function compileCommonTlsContext(common: Json | undefined, problems: Problems, path: string, role: 'client' | 'server'): CommonTlsSettings {
  const c = (common ?? {}) as Json;
  problems.fields(
    c,
    path,
    ['tls_params', 'tls_certificates', 'validation_context', 'alpn_protocols', 'tls_certificate_sds_secret_configs', 'validation_context_sds_secret_config', 'combined_validation_context'],
    ['key_log'],
  );
  const out: CommonTlsSettings = { systemRoots: false, subjectAltNames: [], alpn: (c.alpn_protocols ?? []) as string[] };
  if (c.tls_params) {
    const p = join(path, 'tls_params');
    problems.fields(c.tls_params, p, ['tls_minimum_protocol_version', 'tls_maximum_protocol_version'], ['cipher_suites', 'ecdh_curves', 'signature_algorithms']);
    out.minVersion = TLS_VERSIONS[c.tls_params.tls_minimum_protocol_version ?? 'TLS_AUTO'];
    out.maxVersion = TLS_VERSIONS[c.tls_params.tls_maximum_protocol_version ?? 'TLS_AUTO'];
  }
  const certs = (c.tls_certificates ?? []) as Json[];
  const sdsCerts = (c.tls_certificate_sds_secret_configs ?? []) as Json[];
  if (certs.length + sdsCerts.length > 1) problems.add(path, 'only one certificate is supported (tls_certificates or tls_certificate_sds_secret_configs)');
  if (certs[0]) {
    const p = join(join(path, 'tls_certificates'), 0);
    problems.fields(certs[0], p, ['certificate_chain', 'private_key']);
    out.cert = dataSource(certs[0].certificate_chain, problems, join(p, 'certificate_chain'));
    out.key = dataSource(certs[0].private_key, problems, join(p, 'private_key'));
    if (!certs[0].certificate_chain || !certs[0].private_key) problems.add(p, 'a certificate needs certificate_chain and private_key');
  } else if (sdsCerts[0]) {
    out.certificateSecret = sdsSecretRef(sdsCerts[0], problems, join(join(path, 'tls_certificate_sds_secret_configs'), 0), WORKLOAD_CERTIFICATE_SECRET);
  }
  const validationForms = ['validation_context', 'validation_context_sds_secret_config', 'combined_validation_context'].filter((k) => c[k]);
  if (validationForms.length > 1) problems.add(path, `give one of ${validationForms.join(', ')}`);
  if (c.validation_context) compileValidationContext(c.validation_context, problems, join(path, 'validation_context'), role, out);
  if (c.validation_context_sds_secret_config) {
    out.validationSecret = sdsSecretRef(c.validation_context_sds_secret_config, problems, join(path, 'validation_context_sds_secret_config'), ROOT_CA_SECRET);
  }
  if (c.combined_validation_context) {
    const p = join(path, 'combined_validation_context');
    const combined = c.combined_validation_context as Json;
    problems.fields(combined, p, ['default_validation_context', 'validation_context_sds_secret_config']);
    // Envoy merges the two: the static part's name checks with the SDS secret's trusted CA.
    if (combined.default_validation_context) compileValidationContext(combined.default_validation_context, problems, join(p, 'default_validation_context'), role, out);
    if (combined.validation_context_sds_secret_config) {
      out.validationSecret = sdsSecretRef(combined.validation_context_sds_secret_config, problems, join(p, 'validation_context_sds_secret_config'), ROOT_CA_SECRET);
    } else problems.add(p, 'combined_validation_context needs validation_context_sds_secret_config');
  }
  return out;
}

/** SDS secrets a compiled TLS setting needs from the identity agent. */
export function secretRefsOf(t: CommonTlsSettings | undefined): SdsSecretRef[] {
  if (!t) return [];
  return [t.certificateSecret, t.validationSecret].filter((r): r is SdsSecretRef => !!r);
}

export { parseSubjectAltNames };

/** Envoy's SAN check: some configured matcher matches some SAN of the right type. */
export function subjectAltNamesMatch(matchers: readonly SanMatcher[], subjectaltname: string | undefined): boolean {
  if (matchers.length === 0) return true;
  const names = parseSubjectAltNames(subjectaltname);
  return matchers.some((m) => names.some((n) => (!m.type || m.type === n.type) && m.match(n.value)));
}
