// envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication compiled when config arrives:
// providers (issuer, audiences, where tokens are read, where results go, local or remote JWKS),
// the requirement tree of each rule, and the rule matchers. Verification itself is in
// src/proxy/authn/ and the per-request filter in src/proxy/http/jwt-authn-filter.ts.
import type { HeaderPredicate, QueryPredicate } from './string-matcher';
import { compileHeaderMatcher, compileQueryMatcher } from './string-matcher';
import type { PathMatch } from './model';
import { compilePathMatch } from './route-config';
import { durationMs, join, wrapped, type Json, type Problems } from './validation';

export const JWT_AUTHN_TYPE = 'envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication';
export const JWT_AUTHN_PER_ROUTE_TYPE = 'envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig';

/** Envoy's defaults: 10 minutes of JWKS caching, 60 s of clock skew. */
export const DEFAULT_JWKS_CACHE_DURATION_MS = 600_000;
export const DEFAULT_CLOCK_SKEW_SECONDS = 60;

/** Where a provider reads tokens. */
export type JwtLocation =
  | { kind: 'header'; name: string; prefix: string }
  | { kind: 'param'; name: string }
  | { kind: 'cookie'; name: string };

/** A JSON Web Key as found in a JWKS (the fields verification reads). */
export interface JsonWebKey {
  kty?: string;
  kid?: string;
  alg?: string;
  [field: string]: unknown;
}

export interface RemoteJwksSource {
  uri: string;
  timeoutMs: number;
  cacheDurationMs: number;
  /** async_fetch: an expired set keeps serving while it is refetched; failures retried after this. */
  asyncFetch?: { failedRefetchMs: number };
  /** retry_policy: extra attempts after a failed fetch, and the pause before each. */
  retries: number;
  retryBackoffMs: number;
}

export type JwksConfig =
  | { kind: 'local'; keys: readonly JsonWebKey[] | undefined; error?: string }
  | { kind: 'remote'; source: RemoteJwksSource };

export interface JwtProviderConfig {
  name: string;
  /** Required `iss`; undefined: any issuer. */
  issuer?: string;
  /** Accepted audiences (compared as Envoy does, without scheme and trailing slash); empty: any. */
  audiences: readonly string[];
  jwks: JwksConfig;
  /** Keep the token in the request after a successful verification. */
  forward: boolean;
  locations: readonly JwtLocation[];
  forwardPayloadHeader?: string;
  padForwardPayloadHeader: boolean;
  payloadInMetadata?: string;
  headerInMetadata?: string;
  clockSkewSeconds: number;
  claimToHeaders: readonly { header: string; claim: readonly string[] }[];
  clearRouteCache: boolean;
  spaceDelimitedClaims: readonly string[];
  /** jwt_cache_config: verified tokens remembered (0: no cache, Envoy's default). */
  jwtCacheSize: number;
}

/** envoy JwtRequirement as a tree; `providers` of the allow kinds are the ones whose tokens count. */
export type JwtRequirement =
  | { kind: 'provider'; provider: string; audiences?: readonly string[] }
  | { kind: 'any'; requirements: readonly JwtRequirement[] }
  | { kind: 'all'; requirements: readonly JwtRequirement[] }
  | { kind: 'allow_missing'; providers: readonly string[] }
  | { kind: 'allow_missing_or_failed'; providers: readonly string[] }
  | { kind: 'none' };

export interface JwtRule {
  path: PathMatch;
  headers: readonly HeaderPredicate[];
  query: readonly QueryPredicate[];
  grpcOnly: boolean;
  /** undefined: requests matching this rule need no JWT. */
  requires?: JwtRequirement;
}

export interface JwtAuthnSettings {
  providers: ReadonlyMap<string, JwtProviderConfig>;
  /** First match wins. */
  rules: readonly JwtRule[];
  bypassCorsPreflight: boolean;
  /** strip_failure_response: a bare 401/403 without body or www-authenticate. */
  stripFailureResponse: boolean;
  statPrefix: string;
}

function compileLocations(p: Json, problems: Problems, path: string): JwtLocation[] {
  const locations: JwtLocation[] = [];
  ((p.from_headers ?? []) as Json[]).forEach((h, i) => {
    const at = join(join(path, 'from_headers'), i);
    problems.fields(h, at, ['name', 'value_prefix']);
    const name = String(h.name ?? '').toLowerCase();
    if (!name) problems.add(join(at, 'name'), 'header name is required');
    locations.push({ kind: 'header', name, prefix: String(h.value_prefix ?? '') });
  });
  for (const name of (p.from_params ?? []) as string[]) locations.push({ kind: 'param', name: String(name) });
  for (const name of (p.from_cookies ?? []) as string[]) locations.push({ kind: 'cookie', name: String(name) });
  if (locations.length === 0) {
    // Envoy's defaults (RFC 6750): Authorization: Bearer <token>, then ?access_token=<token>.
    locations.push({ kind: 'header', name: 'authorization', prefix: 'Bearer ' }, { kind: 'param', name: 'access_token' });
  }
  return locations;
}

/** Parses an inline JWKS the way Envoy's Jwks::createFrom does for JSON (PEM is not supported). */
export function parseJwks(text: string): { keys?: JsonWebKey[]; error?: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { error: 'Jwks is an invalid JSON' };
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return { error: 'Jwks is an invalid JSON' };
  const keys = (parsed as { keys?: unknown }).keys;
  if (keys === undefined) return { error: 'Jwks does not have [keys] field' };
  if (!Array.isArray(keys)) return { error: '[keys] in Jwks is not an array' };
  const valid = keys.filter((k): k is JsonWebKey => !!k && typeof k === 'object' && typeof (k as JsonWebKey).kty === 'string');
  if (valid.length === 0) return { error: "Jwks doesn't have any valid public key" };
  return { keys: valid };
}

function compileJwks(p: Json, problems: Problems, path: string): JwksConfig {
  if (p.local_jwks) {
    const at = join(path, 'local_jwks');
    problems.fields(p.local_jwks, at, ['inline_string', 'inline_bytes', 'filename', 'environment_variable']);
    let text: string | undefined;
    if (typeof p.local_jwks.inline_string === 'string') text = p.local_jwks.inline_string;
    else if (p.local_jwks.inline_bytes !== undefined) text = Buffer.from(String(p.local_jwks.inline_bytes), 'base64').toString();
    else problems.add(at, 'only inline_string and inline_bytes are supported for local_jwks (a proxy reads no local files)');
    // An unusable inline JWKS is accepted, as Envoy does; tokens of this provider then fail.
    const parsed = parseJwks(text ?? '');
    return { kind: 'local', keys: parsed.keys, error: parsed.error };
  }
  if (p.remote_jwks) {
    const at = join(path, 'remote_jwks');
    const r = p.remote_jwks as Json;
    problems.fields(r, at, ['http_uri', 'cache_duration', 'async_fetch', 'retry_policy']);
    const uriCfg = (r.http_uri ?? {}) as Json;
    // The cluster names where Envoy would send the fetch; Weft fetches the URI directly.
    problems.fields(uriCfg, join(at, 'http_uri'), ['uri', 'cluster', 'timeout']);
    const uri = String(uriCfg.uri ?? '');
    if (!/^https?:\/\/[^/]/.test(uri)) problems.add(join(at, 'http_uri.uri'), `"${uri}" is not an http(s) URI`);
    const timeoutMs = durationMs(uriCfg.timeout, problems, join(at, 'http_uri.timeout'));
    if (timeoutMs === undefined) problems.add(join(at, 'http_uri.timeout'), 'timeout is required');
    let asyncFetch: RemoteJwksSource['asyncFetch'];
    if (r.async_fetch) {
      problems.fields(r.async_fetch, join(at, 'async_fetch'), ['failed_refetch_duration'], ['fast_listener']);
      asyncFetch = { failedRefetchMs: durationMs(r.async_fetch.failed_refetch_duration, problems, join(at, 'async_fetch.failed_refetch_duration')) ?? 1000 };
    }
    let retries = 0;
    let retryBackoffMs = 1000;
    if (r.retry_policy) {
      const rp = r.retry_policy as Json;
      problems.fields(rp, join(at, 'retry_policy'), ['num_retries', 'retry_back_off'], ['retry_on', 'retry_priority', 'retry_host_predicate', 'host_selection_retry_max_attempts']);
      retries = Number(wrapped<number>(rp.num_retries) ?? 1);
      if (rp.retry_back_off) {
        problems.fields(rp.retry_back_off, join(at, 'retry_policy.retry_back_off'), ['base_interval', 'max_interval']);
        retryBackoffMs = durationMs(rp.retry_back_off.base_interval, problems, join(at, 'retry_policy.retry_back_off.base_interval')) ?? 1000;
      }
    }
    return {
      kind: 'remote',
      source: {
        uri,
        timeoutMs: timeoutMs ?? 1000,
        cacheDurationMs: durationMs(r.cache_duration, problems, join(at, 'cache_duration')) ?? DEFAULT_JWKS_CACHE_DURATION_MS,
        asyncFetch,
        retries,
        retryBackoffMs,
      },
    };
  }
  problems.add(path, 'one of local_jwks or remote_jwks is required');
  return { kind: 'local', keys: undefined, error: "Jwks doesn't have any valid public key" };
}

function compileProvider(name: string, p: Json, problems: Problems, path: string): JwtProviderConfig {
  problems.fields(
    p,
    path,
    [
      'issuer',
      'audiences',
      'remote_jwks',
      'local_jwks',
      'forward',
      'from_headers',
      'from_params',
      'from_cookies',
      'forward_payload_header',
      'pad_forward_payload_header',
      'payload_in_metadata',
      'header_in_metadata',
      'clock_skew_seconds',
      'claim_to_headers',
      'clear_route_cache',
      'normalize_payload_in_metadata',
      'jwt_cache_config',
    ],
    [],
  );
  // subjects, require_expiration, max_lifetime and failed_status_in_metadata are refused by the
  // field check above.
  const claimToHeaders = ((p.claim_to_headers ?? []) as Json[]).map((c, i) => {
    const at = join(join(path, 'claim_to_headers'), i);
    problems.fields(c, at, ['header_name', 'claim_name']);
    const header = String(c.header_name ?? '').toLowerCase();
    const claim = String(c.claim_name ?? '');
    if (!header) problems.add(join(at, 'header_name'), 'header_name is required');
    if (!claim) problems.add(join(at, 'claim_name'), 'claim_name is required');
    return { header, claim: claim.split('.') };
  });
  const normalize = (p.normalize_payload_in_metadata ?? {}) as Json;
  problems.fields(normalize, join(path, 'normalize_payload_in_metadata'), ['space_delimited_claims']);
  const cache = (p.jwt_cache_config ?? undefined) as Json | undefined;
  if (cache) problems.fields(cache, join(path, 'jwt_cache_config'), ['jwt_cache_size']);
  return {
    name,
    issuer: p.issuer ? String(p.issuer) : undefined,
    audiences: ((p.audiences ?? []) as unknown[]).map(String),
    jwks: compileJwks(p, problems, path),
    forward: p.forward === true,
    locations: compileLocations(p, problems, path),
    forwardPayloadHeader: p.forward_payload_header ? String(p.forward_payload_header).toLowerCase() : undefined,
    padForwardPayloadHeader: p.pad_forward_payload_header === true,
    payloadInMetadata: p.payload_in_metadata ? String(p.payload_in_metadata) : undefined,
    headerInMetadata: p.header_in_metadata ? String(p.header_in_metadata) : undefined,
    clockSkewSeconds: Number(p.clock_skew_seconds ?? 0) || DEFAULT_CLOCK_SKEW_SECONDS,
    claimToHeaders,
    clearRouteCache: p.clear_route_cache === true,
    spaceDelimitedClaims: ((normalize.space_delimited_claims ?? []) as unknown[]).map(String),
    jwtCacheSize: cache ? Number(cache.jwt_cache_size ?? 0) || 100 : 0,
  };
}

const REQUIREMENT_KINDS = ['provider_name', 'provider_and_audiences', 'requires_any', 'requires_all', 'allow_missing_or_failed', 'allow_missing'];

/**
 * Compiles a JwtRequirement. `siblings`: the providers named next to an allow_missing[_or_failed]
 * inside requires_any (their tokens are the ones it checks, as in Envoy's AnyVerifier); elsewhere
 * every provider's tokens count.
 */
function compileRequirement(r: Json, providers: ReadonlyMap<string, JwtProviderConfig>, problems: Problems, path: string, siblings?: string[]): JwtRequirement {
  problems.fields(r, path, REQUIREMENT_KINDS);
  const set = REQUIREMENT_KINDS.filter((k) => r[k] !== undefined && r[k] !== null && r[k] !== '');
  if (set.length > 1) problems.add(path, `a requirement sets more than one of ${set.join(', ')}`);
  const known = (name: string, at: string) => {
    if (!providers.has(name)) problems.add(at, `required provider "${name}" is not configured`);
  };
  switch (set[0]) {
    case 'provider_name':
      known(String(r.provider_name), join(path, 'provider_name'));
      return { kind: 'provider', provider: String(r.provider_name) };
    case 'provider_and_audiences': {
      const pa = r.provider_and_audiences as Json;
      problems.fields(pa, join(path, 'provider_and_audiences'), ['provider_name', 'audiences']);
      known(String(pa.provider_name ?? ''), join(path, 'provider_and_audiences.provider_name'));
      const audiences = ((pa.audiences ?? []) as unknown[]).map(String);
      return { kind: 'provider', provider: String(pa.provider_name ?? ''), audiences: audiences.length ? audiences : undefined };
    }
    case 'requires_any':
    case 'requires_all': {
      const at = join(path, set[0]);
      problems.fields(r[set[0]], at, ['requirements']);
      const list = ((r[set[0]].requirements ?? []) as Json[]);
      if (list.length < 2) problems.add(join(at, 'requirements'), 'at least two requirements are needed');
      if (set[0] === 'requires_all') {
        return { kind: 'all', requirements: list.map((x, i) => compileRequirement(x, providers, problems, join(join(at, 'requirements'), i))) };
      }
      // Envoy's AnyVerifier: the regular requirements in order, then one bypass requirement
      // (allow_missing_or_failed wins over allow_missing) checking the siblings' tokens.
      const named: string[] = [];
      for (const x of list) {
        if (x.provider_name) named.push(String(x.provider_name));
        else if (x.provider_and_audiences) named.push(String(x.provider_and_audiences.provider_name ?? ''));
      }
      const regular: JwtRequirement[] = [];
      let bypass: JwtRequirement | undefined;
      list.forEach((x, i) => {
        const c = compileRequirement(x, providers, problems, join(join(at, 'requirements'), i), named);
        if (c.kind === 'allow_missing' || c.kind === 'allow_missing_or_failed') {
          if (!bypass || bypass.kind === 'allow_missing') bypass = c;
        } else regular.push(c);
      });
      return { kind: 'any', requirements: bypass ? [...regular, bypass] : regular };
    }
    case 'allow_missing_or_failed':
      return { kind: 'allow_missing_or_failed', providers: siblings ?? [...providers.keys()] };
    case 'allow_missing':
      return { kind: 'allow_missing', providers: siblings ?? [...providers.keys()] };
    default:
      return { kind: 'none' };
  }
}

function compileRule(r: Json, providers: ReadonlyMap<string, JwtProviderConfig>, problems: Problems, path: string): JwtRule {
  problems.fields(r, path, ['match', 'requires', 'requirement_name']);
  if (r.requirement_name) problems.add(join(path, 'requirement_name'), 'requirement_name (requirement_map) is not supported by the Weft proxy; use requires');
  const m = (r.match ?? {}) as Json;
  const mp = join(path, 'match');
  problems.fields(m, mp, ['prefix', 'path', 'safe_regex', 'path_separated_prefix', 'case_sensitive', 'headers', 'query_parameters', 'grpc']);
  return {
    path: compilePathMatch(m, problems, mp),
    headers: ((m.headers ?? []) as Json[]).map((h, i) => compileHeaderMatcher(h, problems, join(join(mp, 'headers'), i))),
    query: ((m.query_parameters ?? []) as Json[]).map((q, i) => compileQueryMatcher(q, problems, join(join(mp, 'query_parameters'), i))),
    grpcOnly: !!m.grpc,
    requires: r.requires ? compileRequirement(r.requires, providers, problems, join(path, 'requires')) : undefined,
  };
}

/** Compiles envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication. */
export function compileJwtAuthn(f: Json, problems: Problems, path: string): JwtAuthnSettings {
  problems.fields(f, path, ['providers', 'rules', 'bypass_cors_preflight', 'strip_failure_response', 'filter_state_rules', 'requirement_map'], ['stat_prefix']);
  if (f.filter_state_rules) problems.add(join(path, 'filter_state_rules'), 'filter_state_rules is not supported by the Weft proxy');
  if (f.requirement_map && Object.keys(f.requirement_map).length) {
    problems.add(join(path, 'requirement_map'), 'requirement_map (per-route requirement_name) is not supported by the Weft proxy');
  }
  const providers = new Map<string, JwtProviderConfig>();
  for (const [name, p] of Object.entries((f.providers ?? {}) as Json)) {
    providers.set(name, compileProvider(name, p as Json, problems, `${join(path, 'providers')}[${JSON.stringify(name)}]`));
  }
  const rules = ((f.rules ?? []) as Json[]).map((r, i) => compileRule(r, providers, problems, join(join(path, 'rules'), i)));
  return {
    providers,
    rules,
    bypassCorsPreflight: f.bypass_cors_preflight === true,
    stripFailureResponse: f.strip_failure_response === true,
    statPrefix: String(f.stat_prefix ?? ''),
  };
}
