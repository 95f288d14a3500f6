// RequestAuthentication -> Envoy's jwt_authn filter (Istio's authn policy applier,
// convertToEnvoyJwtConfig): one provider per JWT rule; a request with an invalid token is rejected
// (401), one without a token passes, so that AuthorizationPolicy decides what anonymous requests may
// do. The proxy also publishes the verified identity as `istio_authn` metadata for RBAC.
import { outboundClusterName } from './names';
import type { JwtRuleSpec, RequestAuthenticationResource } from './security-selection';
import { envoyDuration, FILTER, TYPE } from './values';

type Json = Record<string, unknown>;

/** Istio's default JWKS fetch timeout. */
const DEFAULT_JWKS_TIMEOUT = '5s';
/** How long the proxy keeps a fetched JWKS. */
const JWKS_CACHE_DURATION = '1200s';
/** A key set no token verifies against (Istio's fake JWKS when keys cannot be resolved). */
const NO_KEYS_JWKS = '{"keys":[]}';

/** Istio's provider names, by position among the sorted rules. */
export function jwtProviderName(index: number): string {
  return `origins-${index}`;
}

/**
 * Where the keys come from: inline `jwks`, else `jwksUri` fetched by the proxy itself through the
 * mesh cluster `outbound|<port>||<host>` of the URI (a ServiceEntry must declare that host, as in
 * Istio's remote JWKS mode). A rule with neither (Istio would use OIDC discovery of the issuer)
 * gets an empty key set: its tokens are rejected, never trusted.
 */
function jwksSource(rule: JwtRuleSpec): Json {
  if (rule.jwks) return { local_jwks: { inline_string: rule.jwks } };
  if (rule.jwksUri) {
    const url = new URL(rule.jwksUri);
    const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
    return {
      remote_jwks: {
        http_uri: {
          uri: rule.jwksUri,
          cluster: outboundClusterName(url.hostname, port),
          timeout: rule.timeout ? envoyDuration(rule.timeout) : DEFAULT_JWKS_TIMEOUT,
        },
        cache_duration: JWKS_CACHE_DURATION,
      },
    };
  }
  return { local_jwks: { inline_string: NO_KEYS_JWKS } };
}

function jwtProvider(rule: JwtRuleSpec): Json {
  const noLocation = !rule.fromHeaders?.length && !rule.fromParams?.length && !rule.fromCookies?.length;
  // Envoy's default location, written out so that every proxy reads the same thing.
  const fromHeaders = noLocation
    ? [{ name: 'Authorization', value_prefix: 'Bearer ' }]
    : (rule.fromHeaders ?? []).map((h) => ({ name: h.name, ...(h.prefix ? { value_prefix: h.prefix } : {}) }));
  return {
    ...(rule.issuer ? { issuer: rule.issuer } : {}),
    ...(rule.audiences?.length ? { audiences: [...rule.audiences] } : {}),
    ...jwksSource(rule),
    ...(rule.forwardOriginalToken ? { forward: true } : {}),
    ...(fromHeaders.length ? { from_headers: fromHeaders } : {}),
    ...(rule.fromParams?.length ? { from_params: [...rule.fromParams] } : {}),
    ...(rule.fromCookies?.length ? { from_cookies: [...rule.fromCookies] } : {}),
    ...(rule.outputPayloadToHeader ? { forward_payload_header: rule.outputPayloadToHeader } : {}),
    ...(rule.issuer ? { payload_in_metadata: rule.issuer } : {}),
    ...(rule.outputClaimToHeaders?.length
      ? { claim_to_headers: rule.outputClaimToHeaders.map((c) => ({ header_name: c.header, claim_name: c.claim })) }
      : {}),
  };
}

/**
 * The jwt_authn filter for the RequestAuthentications that apply to a proxy, or undefined when none
 * has a JWT rule. Rules of all policies are sorted by issuer (stably, as Istio does) and named
 * `origins-<i>`; one requirement for every path: any provider's valid token, or no token at all
 * (`allow_missing`: a token that is present must be valid). CORS preflights pass unauthenticated.
 */
export function buildJwtAuthnFilter(policies: readonly RequestAuthenticationResource[]): Json | undefined {
  const rules = policies.flatMap((p) => p.spec.jwtRules ?? []);
  if (rules.length === 0) return undefined;
  const sorted = rules
    .map((rule, i) => ({ rule, i }))
    .sort((a, b) => {
      const ia = a.rule.issuer ?? '';
      const ib = b.rule.issuer ?? '';
      return ia < ib ? -1 : ia > ib ? 1 : a.i - b.i;
    })
    .map((x) => x.rule);
  const providers: Json = {};
  sorted.forEach((rule, i) => (providers[jwtProviderName(i)] = jwtProvider(rule)));
  return {
    name: FILTER.JwtAuthn,
    typed_config: {
      '@type': TYPE.JwtAuthentication,
      providers,
      rules: [
        {
          match: { prefix: '/' },
          requires: {
            requires_any: {
              requirements: [...sorted.map((_, i) => ({ provider_name: jwtProviderName(i) })), { allow_missing: {} }],
            },
          },
        },
      ],
      bypass_cors_preflight: true,
    },
  };
}
