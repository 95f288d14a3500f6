// jwt_authn config as the proxy receives it (compiled, defaults, NACKs), token parsing and checks
// with jwt_verify_lib's statuses, signature verification against key sets made with jose
// (RS256, ES256, HS256), and the remote JWKS cache against a real HTTP server on loopback.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { JwksCache } from '../../../src/proxy/authn/jwks-cache';
import { audiencesAllowed, checkTime, JwtStatus, KeySet, parseJwt, type ParsedJwt } from '../../../src/proxy/authn/jwt-verifier';
import { compileJwtAuthn, type JwtAuthnSettings, type RemoteJwksSource } from '../../../src/proxy/config/jwt-authn';
import { istioAuthn } from '../../../src/proxy/http/jwt-authn-filter';
import { Problems, type Json } from '../../../src/proxy/config/validation';
import { received } from './wire';

const JWT_AUTHN = 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication';

function compile(config: Json): JwtAuthnSettings {
  const problems = new Problems('jwt_authn');
  const settings = compileJwtAuthn(received(JWT_AUTHN, { '@type': JWT_AUTHN, ...config }), problems, '');
  if (!problems.ok) assert.fail(problems.errors.join('\n'));
  return settings;
}

function errorsOf(config: Json): string {
  const problems = new Problems('jwt_authn');
  compileJwtAuthn(received(JWT_AUTHN, { '@type': JWT_AUTHN, ...config }), problems, '');
  assert.equal(problems.ok, false, 'expected the config to be refused');
  return problems.errors.join('\n');
}

const remote = (uri: string, extra: Json = {}) => ({ remote_jwks: { http_uri: { uri, cluster: 'outbound|443||issuer.example', timeout: '5s' }, ...extra } });

function parsed(token: string): ParsedJwt {
  const p = parseJwt(token);
  if ('error' in p) assert.fail(p.error);
  return p;
}

const b64 = (o: unknown) => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');

describe('jwt_authn config', () => {
  it('compiles Istio-shaped config: providers, defaults, requires_any with allow_missing last', () => {
    const s = compile({
      providers: {
        'origins-0': { issuer: 'https://issuer.example', audiences: ['bookinfo'], ...remote('https://issuer.example/jwks'), forward: true, payload_in_metadata: 'https://issuer.example' },
        'origins-1': {
          issuer: 'other',
          local_jwks: { inline_string: JSON.stringify({ keys: [{ kty: 'oct', kid: 'k', k: 'c2VjcmV0' }] }) },
          from_headers: [{ name: 'X-Jwt', value_prefix: 'Token ' }],
          from_params: ['jwt'],
          claim_to_headers: [{ header_name: 'X-Team', claim_name: 'org.team' }],
          clock_skew_seconds: 5,
        },
      },
      rules: [{ match: { prefix: '/' }, requires: { requires_any: { requirements: [{ allow_missing: {} }, { provider_name: 'origins-0' }, { provider_name: 'origins-1' }] } } }],
      bypass_cors_preflight: true,
    });
    const p0 = s.providers.get('origins-0')!;
    assert.deepEqual(p0.locations, [
      { kind: 'header', name: 'authorization', prefix: 'Bearer ' },
      { kind: 'param', name: 'access_token' },
    ]);
    assert.equal(p0.clockSkewSeconds, 60);
    assert.equal(p0.jwks.kind === 'remote' && p0.jwks.source.cacheDurationMs, 600_000, "Envoy's default: 10 minutes");
    assert.equal(p0.forward, true);
    const p1 = s.providers.get('origins-1')!;
    assert.deepEqual(p1.locations, [
      { kind: 'header', name: 'x-jwt', prefix: 'Token ' },
      { kind: 'param', name: 'jwt' },
    ]);
    assert.deepEqual(p1.claimToHeaders, [{ header: 'x-team', claim: ['org', 'team'] }]);
    assert.equal(p1.clockSkewSeconds, 5);
    assert.equal(p1.jwks.kind === 'local' && p1.jwks.keys?.length, 1);
    assert.deepEqual(s.rules[0].requires, {
      kind: 'any',
      requirements: [
        { kind: 'provider', provider: 'origins-0' },
        { kind: 'provider', provider: 'origins-1' },
        { kind: 'allow_missing', providers: ['origins-0', 'origins-1'] },
      ],
    });
    assert.equal(s.bypassCorsPreflight, true);
  });

  it('accepts an unusable inline JWKS (its tokens fail), as Envoy does', () => {
    const s = compile({ providers: { p: { local_jwks: { inline_string: 'not json' } } }, rules: [{ match: { prefix: '/' }, requires: { provider_name: 'p' } }] });
    const jwks = s.providers.get('p')!.jwks;
    assert.deepEqual(jwks, { kind: 'local', keys: undefined, error: 'Jwks is an invalid JSON' });
  });

  it('refuses what it cannot honour, with field paths', () => {
    assert.match(errorsOf({ providers: {}, rules: [{ match: { prefix: '/' }, requires: { provider_name: 'nope' } }] }), /rules\[0\]\.requires\.provider_name: required provider "nope" is not configured/);
    assert.match(errorsOf({ providers: { p: { remote_jwks: { http_uri: { uri: 'https://x/jwks', cluster: 'c' } } } } }), /providers\["p"\]\.remote_jwks\.http_uri\.timeout: timeout is required/);
    assert.match(errorsOf({ providers: { p: remote('ftp://x/jwks') } }), /"ftp:\/\/x\/jwks" is not an http\(s\) URI/);
    assert.match(errorsOf({ providers: { p: { local_jwks: { filename: '/etc/jwks.json' } } } }), /local_jwks: only inline_string and inline_bytes are supported/);
    assert.match(errorsOf({ providers: { p: { ...remote('https://x/j'), subjects: { prefix: 'spiffe://' } } } }), /providers\["p"\]\.subjects: field is not supported/);
    assert.match(errorsOf({ providers: {}, filter_state_rules: { name: 'x' } }), /filter_state_rules is not supported/);
    assert.match(errorsOf({ providers: {}, requirement_map: { r: { allow_missing: {} } } }), /requirement_map .* is not supported/);
    assert.match(errorsOf({ providers: {}, rules: [{ match: { prefix: '/' }, requirement_name: 'r' }] }), /rules\[0\]\.requirement_name: .* not supported/);
  });
});

describe('JWT parsing and checks (jwt_verify_lib statuses)', () => {
  it('reports the first malformed part', () => {
    const err = (t: string) => (parseJwt(t) as { error?: string }).error;
    assert.equal(err('abc'), JwtStatus.JwtBadFormat);
    assert.equal(err('!!.e30.x'), JwtStatus.JwtHeaderParseErrorBadBase64);
    assert.equal(err(`${b64('not json')}.e30.x`), JwtStatus.JwtHeaderParseErrorBadJson);
    assert.equal(err(`${b64({ typ: 'JWT' })}.e30.x`), JwtStatus.JwtHeaderBadAlg);
    assert.equal(err(`${b64({ alg: 'none' })}.e30.x`), JwtStatus.JwtHeaderNotImplementedAlg);
    assert.equal(err(`${b64({ alg: 'RS256', kid: 7 })}.e30.x`), JwtStatus.JwtHeaderBadKid);
    assert.equal(err(`${b64({ alg: 'RS256' })}.${b64('[')}.x`), JwtStatus.JwtPayloadParseErrorBadJson);
    assert.equal(err(`${b64({ alg: 'RS256' })}.${b64({ exp: 'soon' })}.x`), JwtStatus.JwtPayloadParseErrorExpNotInteger);
    assert.equal(err(`${b64({ alg: 'RS256' })}.${b64({ aud: 3 })}.x`), JwtStatus.JwtPayloadParseErrorAudNotString);
    assert.equal(err(`${b64({ alg: 'RS256' })}.${b64({ iss: 1 })}.x`), JwtStatus.JwtPayloadParseErrorIssNotString);
    assert.equal(err(`${b64({ alg: 'RS256' })}.e30.!!`), JwtStatus.JwtSignatureParseErrorBadBase64);
  });

  it('exp and nbf with clock skew; audiences without scheme or trailing slash', () => {
    const jwt = (payload: Json) => parsed(`${b64({ alg: 'RS256' })}.${b64(payload)}.sig`);
    assert.equal(checkTime(jwt({ exp: 1000 }), 1059, 60), undefined);
    assert.equal(checkTime(jwt({ exp: 1000 }), 1061, 60), JwtStatus.JwtExpired);
    assert.equal(checkTime(jwt({ nbf: 2000 }), 1941, 60), undefined);
    assert.equal(checkTime(jwt({ nbf: 2000 }), 1939, 60), JwtStatus.JwtNotYetValid);
    assert.equal(checkTime(jwt({}), 1e12, 0), undefined, 'no exp: never expires');
    assert.equal(audiencesAllowed(jwt({ aud: 'https://api.example.com/' }), ['api.example.com']), true);
    assert.equal(audiencesAllowed(jwt({ aud: ['a', 'b'] }), ['http://b']), true);
    assert.equal(audiencesAllowed(jwt({ aud: 'c' }), ['a']), false);
    assert.equal(audiencesAllowed(jwt({}), ['a']), false);
    assert.equal(audiencesAllowed(jwt({ aud: 'anything' }), []), true, 'no audiences configured: any');
  });
});

describe("Istio's istio_authn metadata from a verified token", () => {
  it('principal iss/sub, the first audience, presenter, claims as string lists, raw claims', () => {
    const payload = { iss: 'https://issuer', sub: 'alice', aud: ['web', 'api'], azp: 'cli', groups: ['a', 'b'], role: 'admin', n: 3, ok: true, org: { team: 'pay' }, scope: 'read write' };
    const jwt = parsed(`${b64({ alg: 'RS256' })}.${b64(payload)}.sig`);
    const m = istioAuthn(jwt, { spaceDelimitedClaims: ['scope'] });
    assert.equal(m['request.auth.principal'], 'https://issuer/alice');
    assert.equal(m['request.auth.audiences'], 'web');
    assert.equal(m['request.auth.presenter'], 'cli');
    assert.deepEqual(m['request.auth.claims'], {
      iss: ['https://issuer'],
      sub: ['alice'],
      aud: ['web', 'api'],
      azp: ['cli'],
      groups: ['a', 'b'],
      role: ['admin'],
      n: ['3'],
      ok: ['true'],
      org: { team: ['pay'] },
      scope: ['read', 'write'],
    });
    assert.equal(m['request.auth.raw_claims'], JSON.stringify(payload));
    const anonymousSub = istioAuthn(parsed(`${b64({ alg: 'RS256' })}.${b64({ iss: 'i' })}.sig`), { spaceDelimitedClaims: [] });
    assert.equal(anonymousSub['request.auth.principal'], undefined, 'no sub, no principal');
  });
});

describe('signature verification against a key set', () => {
  type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;
  let rsa: KeyPair;
  let rsaJwk: JWK;
  let ec: KeyPair;
  let ecJwk: JWK;
  let other: KeyPair;
  let rs384: KeyPair;
  const sign = (key: Parameters<SignJWT['sign']>[0], alg: string, kid: string | undefined, payload: Json = { iss: 'i', sub: 's' }) =>
    new SignJWT(payload).setProtectedHeader(kid ? { alg, kid } : { alg }).sign(key);

  before(async () => {
    rsa = await generateKeyPair('RS256', { extractable: true });
    rsaJwk = { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' };
    ec = await generateKeyPair('ES256', { extractable: true });
    ecJwk = { ...(await exportJWK(ec.publicKey)), kid: 'ec-1' };
    other = await generateKeyPair('RS256', { extractable: true });
    rs384 = await generateKeyPair('RS384');
  });

  it('RS256 and ES256 tokens verify with the key named by kid (or any fitting key without one)', async () => {
    const keys = new KeySet([rsaJwk, ecJwk]);
    assert.equal(await keys.verify(parsed(await sign(rsa.privateKey, 'RS256', 'rsa-1'))), JwtStatus.Ok);
    assert.equal(await keys.verify(parsed(await sign(ec.privateKey, 'ES256', 'ec-1'))), JwtStatus.Ok);
    assert.equal(await keys.verify(parsed(await sign(ec.privateKey, 'ES256', undefined))), JwtStatus.Ok);
  });

  it('a wrong signature fails verification; an unknown kid or unfit alg finds no key', async () => {
    const keys = new KeySet([rsaJwk, ecJwk]);
    assert.equal(await keys.verify(parsed(await sign(other.privateKey, 'RS256', 'rsa-1'))), JwtStatus.JwtVerificationFail);
    assert.equal(await keys.verify(parsed(await sign(rsa.privateKey, 'RS256', 'rotated'))), JwtStatus.JwksKidAlgMismatch);
    assert.equal(await keys.verify(parsed(await sign(rs384.privateKey, 'RS384', 'rsa-1'))), JwtStatus.JwksKidAlgMismatch, 'the key says RS256');
    // A tampered payload with the original signature.
    const good = await sign(rsa.privateKey, 'RS256', 'rsa-1');
    const [h, , sig] = good.split('.');
    assert.equal(await keys.verify(parsed(`${h}.${b64({ iss: 'i', sub: 'admin' })}.${sig}`)), JwtStatus.JwtVerificationFail);
  });

  it('HS256 with an oct key', async () => {
    const secret = new TextEncoder().encode('0123456789abcdef0123456789abcdef');
    const keys = new KeySet([{ kty: 'oct', kid: 'h', k: Buffer.from(secret).toString('base64url') }]);
    assert.equal(await keys.verify(parsed(await sign(secret, 'HS256', 'h'))), JwtStatus.Ok);
  });
});

describe('remote JWKS cache (real HTTP server)', () => {
  let server: http.Server;
  let port: number;
  let fetches = 0;
  let body = JSON.stringify({ keys: [{ kty: 'EC', kid: 'a', crv: 'P-256', x: 'x', y: 'y' }] });
  let status = 200;
  const source = (extra: Partial<RemoteJwksSource> = {}): RemoteJwksSource => ({
    uri: `http://127.0.0.1:${port}/jwks.json`,
    timeoutMs: 2000,
    cacheDurationMs: 60_000,
    retries: 0,
    retryBackoffMs: 10,
    ...extra,
  });

  before(async () => {
    server = http.createServer((req, res) => {
      fetches++;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it('fetches once for concurrent callers, serves the cached set until it expires, then refetches', async () => {
    let now = 1_000_000;
    const cache = new JwksCache({ now: () => now });
    fetches = 0;
    const [a, b] = await Promise.all([cache.get(source()), cache.get(source())]);
    assert.equal(fetches, 1);
    assert.equal(a, b);
    assert.equal(cache.get(source()), a, 'fresh: returned synchronously');
    now += 60_001;
    const c = await cache.get(source());
    assert.equal(fetches, 2);
    assert.notEqual(c, a);
  });

  it('an unknown kid refetches at most once per interval', async () => {
    let now = 5_000_000;
    const cache = new JwksCache({ now: () => now, unknownKidRefetchIntervalMs: 30_000 });
    fetches = 0;
    await cache.get(source());
    body = JSON.stringify({ keys: [{ kty: 'EC', kid: 'b', crv: 'P-256', x: 'x', y: 'y' }] });
    const fresh = await cache.refetchForUnknownKid(source());
    assert.equal(fresh?.hasKid('b'), true);
    assert.equal(await cache.refetchForUnknownKid(source()), undefined, 'not again so soon');
    now += 30_000;
    assert.ok(await cache.refetchForUnknownKid(source()));
    assert.equal(fetches, 3);
  });

  it('an unreachable or failing JWKS is a fetch failure; async_fetch keeps serving the last good set', async () => {
    const cache = new JwksCache();
    await assert.rejects(Promise.resolve(cache.get({ ...source(), uri: 'http://127.0.0.1:1/jwks.json' })), /Jwks remote fetch is failed/);
    status = 500;
    await assert.rejects(Promise.resolve(cache.get(source())), /Jwks remote fetch is failed/);
    status = 200;
    body = '{"nokeys": true}';
    await assert.rejects(Promise.resolve(cache.get(source())), /Jwks does not have \[keys\] field/);
    body = JSON.stringify({ keys: [{ kty: 'EC', kid: 'c', crv: 'P-256', x: 'x', y: 'y' }] });
    let now = 9_000_000;
    const stale = new JwksCache({ now: () => now });
    const first = await stale.get(source({ asyncFetch: { failedRefetchMs: 1000 } }));
    now += 120_000;
    status = 500;
    fetches = 0;
    assert.equal(stale.get(source({ asyncFetch: { failedRefetchMs: 1000 } })), first, 'expired, but served while refetching');
    status = 200;
  });
});
