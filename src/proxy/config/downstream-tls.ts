// DownstreamTlsContext (a filter chain's tls transport socket) -> TLS termination settings: the
// server certificate (files or the agent's `default`), the CA that client certificates must chain
// to (files or the agent's `ROOTCA`), whether a client certificate is required, SAN checks on it,
// ALPN and protocol versions. Istio's inbound mTLS chains and a gateway's SIMPLE/MUTUAL servers
// both compile here.
import { compileCommonTlsContext, type CommonTlsSettings } from './common-tls-context';
import { anyIsDecoded, anyTypeName, join, wrapped, type Json, type Problems } from './validation';

export const DOWNSTREAM_TLS_CONTEXT = 'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';

export interface DownstreamTlsSettings extends CommonTlsSettings {
  /** require_client_certificate: a client without a valid certificate fails the handshake. */
  requireClientCertificate: boolean;
}

export function compileDownstreamTls(ctx: Json, problems: Problems, path: string): DownstreamTlsSettings {
  problems.fields(
    ctx,
    path,
    ['common_tls_context', 'require_client_certificate'],
    // Session resumption knobs: node:tls keeps its own ticket keys per context.
    [
      'session_ticket_keys',
      'disable_stateless_session_resumption',
      'disable_stateful_session_resumption',
      'session_timeout',
      'full_scan_certs_on_sni_mismatch',
      'prefer_client_ciphers',
      // Refused below with a specific message.
      'require_sni',
      'ocsp_staple_policy',
      'session_ticket_keys_sds_secret_config',
    ],
  );
  if (wrapped<boolean>(ctx.require_sni)) problems.add(join(path, 'require_sni'), 'require_sni is not supported by the Weft proxy');
  if (ctx.ocsp_staple_policy && ctx.ocsp_staple_policy !== 'LENIENT_STAPLING') problems.add(join(path, 'ocsp_staple_policy'), 'OCSP stapling is not supported by the Weft proxy');
  if (ctx.session_ticket_keys_sds_secret_config) problems.add(join(path, 'session_ticket_keys_sds_secret_config'), 'session ticket keys over SDS are not supported by the Weft proxy');
  const common = compileCommonTlsContext(ctx.common_tls_context, problems, join(path, 'common_tls_context'), 'server');
  const c = (ctx.common_tls_context ?? {}) as Json;
  if (!c.tls_certificates?.length && !c.tls_certificate_sds_secret_configs?.length) problems.add(join(path, 'common_tls_context'), 'a TLS server needs a certificate (tls_certificates or tls_certificate_sds_secret_configs)');
  const requireClientCertificate = wrapped<boolean>(ctx.require_client_certificate) === true;
  if (requireClientCertificate && !common.ca && !common.validationSecret && !common.systemRoots) {
    problems.add(join(path, 'require_client_certificate'), 'requiring a client certificate needs a validation context saying which CA it must chain to');
  }
  return { ...common, requireClientCertificate };
}

const RAW_BUFFER = 'envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer';

/** A filter chain's transport_socket: plaintext (absent or raw_buffer) or TLS termination. */
export function compileDownstreamTransportSocket(ts: Json | undefined, problems: Problems, path: string): DownstreamTlsSettings | undefined {
  if (!ts) return undefined;
  problems.fields(ts, path, ['name', 'typed_config']);
  const type = anyTypeName(ts.typed_config);
  if (!type || type === RAW_BUFFER) return undefined;
  if (type === DOWNSTREAM_TLS_CONTEXT && anyIsDecoded(ts.typed_config)) return compileDownstreamTls(ts.typed_config, problems, join(path, 'typed_config'));
  problems.add(path, `transport socket "${ts.name ?? type}" is not supported by the Weft proxy`);
  return undefined;
}
