// The jwt_authn HTTP filter (envoy.filters.http.jwt_authn) on the request path: the first rule
// matching the request names a requirement tree; tokens are read from each provider's locations,
// checked (issuer, time, audiences, signature against local or remote JWKS), and on success the
// payload goes where the provider says (headers, dynamic metadata) and Istio's `istio_authn`
// metadata is published for RBAC (request.auth.principal, audiences, presenter, claims, in the
// shapes Istio's authn filter used). A
// present but invalid token is a 401 with Envoy's message (403 for audiences); a missing one
// passes only where the requirement allows it.
//
// Cost: no rule for the path, or no token anywhere, is decided synchronously; only requests
// carrying a token wait for signature verification (and, once per cache period, a JWKS fetch).
import type { HttpFilterConfig, RequestView } from '../config/model';
import type { JwtAuthnSettings, JwtLocation, JwtProviderConfig, JwtRequirement, JwtRule } from '../config/jwt-authn';
import { JwksCache, JwksFetchError } from '../authn/jwks-cache';
import { audiencesAllowed, checkTime, JwtStatus, KeySet, parseJwt, type ParsedJwt } from '../authn/jwt-verifier';
import type { NamedCounter } from '../stats';
import type { HttpStream } from './http-stream';
import { isGrpcRequest } from './local-reply';
import { pathMatches } from './route-matching';

export const JWT_AUTHN_METADATA = 'envoy.filters.http.jwt_authn';
/** Istio's authn filter namespace, read by RBAC metadata matchers of AuthorizationPolicies. */
export const ISTIO_AUTHN_METADATA = 'istio_authn';

type JwtFilter = Extract<HttpFilterConfig, { kind: 'jwt_authn' }>;

interface JwtCounters {
  allowed: NamedCounter;
  denied: NamedCounter;
  corsPreflightBypassed: NamedCounter;
  jwksFetchSuccess: NamedCounter;
  jwksFetchFailed: NamedCounter;
}

function counters(s: HttpStream, settings: JwtAuthnSettings): JwtCounters {
  const prefix = s.hcm.statPrefix;
  return s.runtime.stats.scopedCounters(settings, prefix, () => ({
    scope: { text: `http.${prefix}.jwt_authn.${settings.statPrefix}`, prom: `envoy_http_jwt_authn_${settings.statPrefix}`, labels: { envoy_http_conn_manager_prefix: prefix } },
    names: {
      allowed: 'allowed',
      denied: 'denied',
      corsPreflightBypassed: 'cors_preflight_bypassed',
      jwksFetchSuccess: 'jwks_fetch_success',
      jwksFetchFailed: 'jwks_fetch_failed',
    },
  }));
}

function ruleMatches(rule: JwtRule, req: RequestView): boolean {
  if (!pathMatches(rule.path, req)) return false;
  if (rule.grpcOnly && !isGrpcRequest(req.headers)) return false;
  if (rule.headers.length) {
    const lookup = (name: string) => req.header(name);
    for (const h of rule.headers) if (!h.test(lookup)) return false;
  }
  if (rule.query.length) {
    const q = req.query();
    for (const m of rule.query) if (!m.test(q)) return false;
  }
  return true;
}

function isCorsPreflight(s: HttpStream): boolean {
  return s.method === 'OPTIONS' && !!s.headers.origin && !!s.headers['access-control-request-method'];
}

// ---- token locations ----

const TOKEN_CHARS = /[A-Za-z0-9._\-=+/]+/;

function firstValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function readCookie(header: string | string[] | undefined, name: string): string | undefined {
  const all = Array.isArray(header) ? header.join('; ') : header;
  if (!all) return undefined;
  for (const part of all.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The token at one location, if any (Envoy's extractor: the token after the value prefix). */
function tokenAt(s: HttpStream, loc: JwtLocation): string | undefined {
  switch (loc.kind) {
    case 'header': {
      const value = firstValue(s.headers[loc.name]);
      if (!value) return undefined;
      if (!loc.prefix) return value.trim() || undefined;
      const at = value.toLowerCase().indexOf(loc.prefix.toLowerCase());
      if (at < 0) return undefined;
      const m = TOKEN_CHARS.exec(value.slice(at + loc.prefix.length));
      return m ? m[0] : undefined;
    }
    case 'param':
      return s.query().get(loc.name) || undefined;
    case 'cookie':
      return readCookie(s.headers.cookie, loc.name) || undefined;
  }
}

/** Removes a verified token from where it was found (cookies are left, as Envoy does). */
function removeToken(s: HttpStream, loc: JwtLocation): void {
  if (loc.kind === 'header') s.headers[loc.name] = undefined;
  else if (loc.kind === 'param') {
    const q = s.path.indexOf('?');
    if (q < 0) return;
    const kept = s.path
      .slice(q + 1)
      .split('&')
      .filter((part) => {
        const eq = part.indexOf('=');
        const name = eq < 0 ? part : part.slice(0, eq);
        return decodeURIComponentSafe(name) !== loc.name;
      });
    s.setPath(s.path.slice(0, q) + (kept.length ? '?' + kept.join('&') : ''));
  }
}

function decodeURIComponentSafe(v: string): string {
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}

interface FoundToken {
  token: string;
  location: JwtLocation;
  /** Issuers allowed for a token at this location (undefined: any). */
  issuers: ReadonlySet<string> | undefined;
}

/** Tokens at the locations of `providers`, each once, tagged with the issuers that use its location. */
function extract(s: HttpStream, providers: readonly JwtProviderConfig[]): FoundToken[] {
  const found: FoundToken[] = [];
  const byKey = new Map<string, { token: string; location: JwtLocation; issuers: Set<string> | undefined }>();
  for (const p of providers) {
    for (const loc of p.locations) {
      const key = `${loc.kind}:${loc.name}:${loc.kind === 'header' ? loc.prefix.toLowerCase() : ''}`;
      let entry = byKey.get(key);
      if (!entry) {
        const token = tokenAt(s, loc);
        if (token === undefined) continue;
        entry = { token, location: loc, issuers: new Set() };
        byKey.set(key, entry);
        found.push(entry);
      }
      // A provider without an issuer accepts any issuer at its locations.
      if (p.issuer === undefined) entry.issuers = undefined;
      else entry.issuers?.add(p.issuer);
    }
  }
  return found;
}

// ---- verification of one request ----

/** Keys of local JWKS, built once per provider config. */
const localKeys = new WeakMap<JwtProviderConfig, KeySet>();

class Verification {
  /** Payloads for `envoy.filters.http.jwt_authn`, published when the whole requirement passes. */
  private readonly extracted: Record<string, unknown> = {};
  /** The first verified token and its provider: Istio's request.auth.* */
  private first: { jwt: ParsedJwt; provider: JwtProviderConfig } | undefined;
  private clearRouteCache = false;
  private readonly parsed = new Map<string, ParsedJwt | { error: string }>();

  constructor(
    private readonly s: HttpStream,
    private readonly settings: JwtAuthnSettings,
    private readonly c: JwtCounters,
  ) {}

  private provider(name: string): JwtProviderConfig | undefined {
    return this.settings.providers.get(name);
  }

  async check(req: JwtRequirement): Promise<string> {
    switch (req.kind) {
      case 'none':
        return JwtStatus.Ok;
      case 'provider': {
        const p = this.provider(req.provider);
        if (!p) return JwtStatus.JwtUnknownIssuer;
        const tokens = extract(this.s, [p]);
        if (tokens.length === 0) return JwtStatus.JwtMissed;
        // Every token at the provider's locations must be valid: a good token must not carry a
        // bad one past the check to a backend that reads the wrong one.
        for (const t of tokens) {
          const status = await this.verifyToken(t, p, req.audiences);
          if (status !== JwtStatus.Ok) return status;
        }
        return JwtStatus.Ok;
      }
      case 'allow_missing':
      case 'allow_missing_or_failed': {
        const providers = req.providers.map((n) => this.provider(n)).filter((p): p is JwtProviderConfig => !!p);
        const tokens = extract(this.s, providers);
        let failure: string | undefined;
        for (const t of tokens) {
          const parsed = this.parse(t.token);
          // The provider is the one whose issuer the token names (or the first without one).
          const p = 'error' in parsed ? providers[0] : (providers.find((x) => x.issuer === parsed.iss) ?? providers.find((x) => x.issuer === undefined));
          const status = p ? await this.verifyToken(t, p, undefined) : JwtStatus.JwtUnknownIssuer;
          if (status !== JwtStatus.Ok) failure ??= status;
        }
        return req.kind === 'allow_missing_or_failed' ? JwtStatus.Ok : (failure ?? JwtStatus.Ok);
      }
      case 'any': {
        let last: string = JwtStatus.JwtMissed;
        for (const r of req.requirements) {
          last = await this.check(r);
          if (last === JwtStatus.Ok) return last;
        }
        return last;
      }
      case 'all': {
        for (const r of req.requirements) {
          const status = await this.check(r);
          if (status !== JwtStatus.Ok) return status;
        }
        return JwtStatus.Ok;
      }
    }
  }

  private parse(token: string): ParsedJwt | { error: string } {
    let p = this.parsed.get(token);
    if (!p) {
      p = parseJwt(token);
      this.parsed.set(token, p);
    }
    return p;
  }

  private async verifyToken(t: FoundToken, p: JwtProviderConfig, audiences: readonly string[] | undefined): Promise<string> {
    const jwt = this.parse(t.token);
    if ('error' in jwt) return jwt.error;
    if (t.issuers && !t.issuers.has(jwt.iss)) return JwtStatus.JwtUnknownIssuer;
    if (p.issuer !== undefined && p.issuer !== jwt.iss) return JwtStatus.JwtUnknownIssuer;
    const timeStatus = checkTime(jwt, Math.floor(Date.now() / 1000), p.clockSkewSeconds);
    if (timeStatus) return timeStatus;
    if (!audiencesAllowed(jwt, audiences ?? p.audiences)) return JwtStatus.JwtAudienceNotAllowed;
    const status = await this.verifySignature(jwt, p);
    if (status !== JwtStatus.Ok) return status;
    this.onGoodToken(t, jwt, p);
    return JwtStatus.Ok;
  }

  private async verifySignature(jwt: ParsedJwt, p: JwtProviderConfig): Promise<string> {
    const cache = p.jwtCacheSize > 0 ? verifiedCache(p) : undefined;
    if (cache?.has(jwt.token)) return JwtStatus.Ok;
    let status: string;
    if (p.jwks.kind === 'local') {
      if (!p.jwks.keys) return JwtStatus.JwksNoValidKeys;
      let keys = localKeys.get(p);
      if (!keys) {
        keys = new KeySet(p.jwks.keys);
        localKeys.set(p, keys);
      }
      status = await keys.verify(jwt);
    } else {
      const runtime = this.s.runtime;
      const jwks = (runtime.jwks ??= new JwksCache());
      const source = p.jwks.source;
      const onFetch = (ok: boolean) => (ok ? this.c.jwksFetchSuccess : this.c.jwksFetchFailed).value++;
      let keys: KeySet;
      try {
        keys = await jwks.get(source, onFetch);
      } catch (err) {
        return err instanceof JwksFetchError ? err.message : JwtStatus.JwksFetchFail;
      }
      status = await keys.verify(jwt);
      // Keys rotated before the cache expired: one early refetch per interval.
      if (status === JwtStatus.JwksKidAlgMismatch && jwt.kid && !keys.hasKid(jwt.kid)) {
        const fresh = await jwks.refetchForUnknownKid(source, onFetch);
        if (fresh) status = await fresh.verify(jwt);
      }
    }
    if (status === JwtStatus.Ok && cache) {
      if (cache.size >= p.jwtCacheSize) cache.delete(cache.values().next().value as string);
      cache.add(jwt.token);
    }
    return status;
  }

  /** Envoy's handleGoodJwt: payload and claim headers, token removal, metadata. */
  private onGoodToken(t: FoundToken, jwt: ParsedJwt, p: JwtProviderConfig): void {
    const h = this.s.headers;
    let headerAdded = false;
    if (p.forwardPayloadHeader) {
      let payload = jwt.payloadBase64url.replace(/=+$/, '');
      if (p.padForwardPayloadHeader) payload += '='.repeat((4 - (payload.length % 4)) % 4);
      appendHeader(h, p.forwardPayloadHeader, payload);
    }
    for (const { header, claim } of p.claimToHeaders) {
      const value = claimValue(jwt.payload, claim);
      if (value !== undefined) {
        appendHeader(h, header, value);
        headerAdded = true;
      }
    }
    if (!p.forward) removeToken(this.s, t.location);
    if (p.headerInMetadata) this.extracted[p.headerInMetadata] = jwt.header;
    if (p.payloadInMetadata) this.extracted[p.payloadInMetadata] = normalizePayload(jwt.payload, p.spaceDelimitedClaims);
    if (p.clearRouteCache && (headerAdded || p.payloadInMetadata)) this.clearRouteCache = true;
    this.first ??= { jwt, provider: p };
  }

  /** The requirement passed: publish metadata; re-route if a provider asked for it. */
  publish(): void {
    const s = this.s;
    if (Object.keys(this.extracted).length) s.setMetadata(JWT_AUTHN_METADATA, this.extracted);
    if (this.first) s.setMetadata(ISTIO_AUTHN_METADATA, istioAuthn(this.first.jwt, this.first.provider));
    if (this.clearRouteCache) s.matchRoute();
  }
}

/**
 * What Istio's authn filter publishes for the first verified token, in its shapes (Istio's
 * AuthorizationPolicy translation matches these): principal `iss/sub`, audiences and presenter as
 * strings (the first audience, as Istio's filter did), claims with every leaf value a list of
 * strings (so `request.auth.claims[groups]` list matchers work for string and list claims alike;
 * nested objects stay objects for `request.auth.claims[a][b]`), the payload JSON as raw_claims.
 */
export function istioAuthn(jwt: ParsedJwt, provider: Pick<JwtProviderConfig, 'spaceDelimitedClaims'>): Record<string, unknown> {
  const out: Record<string, unknown> = {
    'request.auth.claims': claimLists(normalizePayload(jwt.payload, provider.spaceDelimitedClaims)),
    'request.auth.raw_claims': jwt.payloadJson,
  };
  if (jwt.iss && jwt.sub) out['request.auth.principal'] = `${jwt.iss}/${jwt.sub}`;
  if (jwt.audiences.length) out['request.auth.audiences'] = jwt.audiences[0];
  if (typeof jwt.payload.azp === 'string' && jwt.payload.azp) out['request.auth.presenter'] = jwt.payload.azp;
  return out;
}

function claimLists(obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v === null || v === undefined) continue;
    if (Array.isArray(v)) out[k] = v.filter((x) => x !== null && typeof x !== 'object').map(String);
    else if (typeof v === 'object') out[k] = claimLists(v as Record<string, unknown>);
    else out[k] = [String(v)];
  }
  return out;
}

/** Verified tokens per provider (jwt_cache_config), insertion-ordered for eviction. */
const verifiedTokens = new WeakMap<JwtProviderConfig, Set<string>>();
function verifiedCache(p: JwtProviderConfig): Set<string> {
  let c = verifiedTokens.get(p);
  if (!c) {
    c = new Set();
    verifiedTokens.set(p, c);
  }
  return c;
}

function appendHeader(h: Record<string, string | string[] | undefined>, name: string, value: string): void {
  const prev = h[name];
  if (prev === undefined) h[name] = value;
  else if (Array.isArray(prev)) prev.push(value);
  else h[name] = [prev, value];
}

/** A claim (nested by dots) as a header value: strings, numbers and booleans only (Envoy). */
function claimValue(payload: Record<string, unknown>, path: readonly string[]): string | undefined {
  let v: unknown = payload;
  for (const k of path) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  if (typeof v === 'string') return v || undefined;
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 ? String(v) : v.toFixed(6);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return undefined;
}

/** normalize_payload_in_metadata: space-delimited claims ("email profile") become lists. */
function normalizePayload(payload: Record<string, unknown>, spaceDelimited: readonly string[]): Record<string, unknown> {
  if (spaceDelimited.length === 0) return payload;
  const out = { ...payload };
  for (const claim of spaceDelimited) {
    const v = out[claim];
    if (typeof v === 'string') out[claim] = v.split(' ').filter(Boolean);
  }
  return out;
}

/** Outcome of a requirement when no provider's location holds a token (no I/O needed). */
function missingOutcome(req: JwtRequirement): string {
  switch (req.kind) {
    case 'none':
    case 'allow_missing':
    case 'allow_missing_or_failed':
      return JwtStatus.Ok;
    case 'provider':
      return JwtStatus.JwtMissed;
    case 'any': {
      let last: string = JwtStatus.JwtMissed;
      for (const r of req.requirements) {
        last = missingOutcome(r);
        if (last === JwtStatus.Ok) return last;
      }
      return last;
    }
    case 'all':
      for (const r of req.requirements) {
        const status = missingOutcome(r);
        if (status !== JwtStatus.Ok) return status;
      }
      return JwtStatus.Ok;
  }
}

/** Removes headers only verification may set, so a client cannot forge them (Envoy sanitizes too). */
function sanitize(s: HttpStream, settings: JwtAuthnSettings): void {
  for (const p of settings.providers.values()) {
    if (p.forwardPayloadHeader && s.headers[p.forwardPayloadHeader] !== undefined) s.headers[p.forwardPayloadHeader] = undefined;
    for (const { header } of p.claimToHeaders) if (s.headers[header] !== undefined) s.headers[header] = undefined;
  }
}

function anyTokenPresent(s: HttpStream, settings: JwtAuthnSettings): boolean {
  for (const p of settings.providers.values()) for (const loc of p.locations) if (tokenAt(s, loc) !== undefined) return true;
  return false;
}

/** Envoy's www-authenticate realm: scheme://authority/path (no query), the path capped at 256. */
function realm(s: HttpStream): string {
  return `${s.scheme}://${s.authority}${s.pathOnly().slice(0, 256)}`;
}

function fail(s: HttpStream, settings: JwtAuthnSettings, c: JwtCounters, status: string): void {
  c.denied.value++;
  const code = status === JwtStatus.JwtAudienceNotAllowed ? 403 : 401;
  const details = `jwt_authn_access_denied{${status.replace(/\s/g, '_')}}`;
  if (settings.stripFailureResponse) {
    s.localReply(code, { details });
    return;
  }
  const challenge = `Bearer realm="${realm(s)}"${status === JwtStatus.JwtMissed ? '' : ', error="invalid_token"'}`;
  s.localReply(code, { details, body: status, headers: ['www-authenticate', challenge] });
}

/**
 * Runs the jwt_authn filter. Returns true when the stream stopped here: answered (401/403), or
 * waiting for verification, after which it resumes at filter `index + 1`.
 */
export function applyJwtAuthn(s: HttpStream, filter: JwtFilter, index: number): boolean {
  const settings = filter.settings;
  const c = counters(s, settings);
  if (settings.bypassCorsPreflight && isCorsPreflight(s)) {
    c.corsPreflightBypassed.value++;
    c.allowed.value++;
    return false;
  }
  let rule: JwtRule | undefined;
  for (const r of settings.rules) {
    if (ruleMatches(r, s)) {
      rule = r;
      break;
    }
  }
  if (!rule?.requires) {
    c.allowed.value++;
    return false;
  }
  sanitize(s, settings);
  if (!anyTokenPresent(s, settings)) {
    const status = missingOutcome(rule.requires);
    if (status === JwtStatus.Ok) {
      c.allowed.value++;
      return false;
    }
    fail(s, settings, c, status);
    return true;
  }
  const v = new Verification(s, settings, c);
  v.check(rule.requires).then(
    (status) => {
      if (s.done) return;
      if (status !== JwtStatus.Ok) {
        fail(s, settings, c, status);
        return;
      }
      c.allowed.value++;
      v.publish();
      s.runFilters(index + 1);
    },
    (err: unknown) => {
      if (s.done) return;
      s.runtime.logger.warn('jwt_authn_error', { error: (err as Error).message });
      fail(s, settings, c, JwtStatus.JwtVerificationFail);
    },
  );
  return true;
}
