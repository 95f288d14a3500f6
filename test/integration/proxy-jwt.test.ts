// Request authentication through a real Weft proxy driven by hand-written, Istio-shaped
// jwt_authn + RBAC config over real xDS: RS256 tokens checked against a JWKS served by a real
// HTTP server (remote_jwks), ES256 against an inline JWKS (local_jwks), what reaches the backend
// (claim headers, payload header, token removal), Envoy's 401/403 replies, a missing token
// passing authentication and then failing an ALLOW on request principals, an unreachable JWKS,
// and key rotation before the cache expires.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import type { Json } from '../../src/proxy/config/validation';
import { startBackend, waitFor, type Backend, type BackendEcho } from './proxy-harness';
import { httpListener, httpRbac, jwtAuthn, rawRequest, startHandWrittenProxy, staticCluster, type HandWrittenProxy } from './proxy-authz-harness';

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

const RS_ISSUER = 'https://rs.issuer.test';
const EC_ISSUER = 'ec.issuer.test';
const DOWN_ISSUER = 'https://down.issuer.test';
const PORTS = { jwt: 18101, jwtOnly: 18102 };

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('proxy request authentication (jwt_authn) with RBAC on request principals', () => {
  let backend: Backend;
  let jwks: http.Server;
  let jwksKeys: JWK[] = [];
  let jwksFetches = 0;
  let proxy: HandWrittenProxy;
  let rsa: KeyPair;
  let rsaRotated: KeyPair;
  let ec: KeyPair;
  let forger: KeyPair;

  const now = () => Math.floor(Date.now() / 1000);
  const token = (key: KeyPair, alg: string, kid: string, claims: Json) =>
    new SignJWT(claims).setProtectedHeader({ alg, kid, typ: 'JWT' }).sign(key.privateKey);
  const rsToken = (claims: Json = {}, key: KeyPair = rsa, kid = 'rs-1') =>
    token(key, 'RS256', kid, { iss: RS_ISSUER, sub: 'alice', aud: 'bookinfo', exp: now() + 600, org: { team: 'payments' }, groups: ['dev', 'admins'], ...claims });
  const send = (listener: 'jwt' | 'jwt-only', target: string, headers: Record<string, string> = {}) => rawRequest(proxy.port(listener), target, { headers });
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

  before(async () => {
    backend = await startBackend('backend');
    rsa = await generateKeyPair('RS256', { extractable: true });
    rsaRotated = await generateKeyPair('RS256', { extractable: true });
    ec = await generateKeyPair('ES256', { extractable: true });
    forger = await generateKeyPair('RS256', { extractable: true });
    jwksKeys = [{ ...(await exportJWK(rsa.publicKey)), kid: 'rs-1', alg: 'RS256', use: 'sig' }];
    jwks = http.createServer((req, res) => {
      jwksFetches++;
      const body = JSON.stringify({ keys: jwksKeys });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    const jwksPort = (jwks.address() as net.AddressInfo).port;
    const ecJwks = JSON.stringify({ keys: [{ ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256' }] });
    const downPort = await closedPort();

    // What the translator emits for a RequestAuthentication with two jwtRules (plus a third
    // provider whose JWKS is unreachable, for the /down rule).
    const providers: Json = {
      'origins-0': {
        issuer: RS_ISSUER,
        audiences: ['bookinfo'],
        remote_jwks: { http_uri: { uri: `http://127.0.0.1:${jwksPort}/jwks.json`, cluster: 'outbound|80||rs.issuer.test', timeout: '2s' }, cache_duration: '300s' },
        forward_payload_header: 'x-jwt-payload',
        claim_to_headers: [
          { header_name: 'x-jwt-sub', claim_name: 'sub' },
          { header_name: 'x-jwt-team', claim_name: 'org.team' },
        ],
        payload_in_metadata: RS_ISSUER,
      },
      'origins-1': { issuer: EC_ISSUER, local_jwks: { inline_string: ecJwks }, forward: true, payload_in_metadata: EC_ISSUER },
      'origins-down': { issuer: DOWN_ISSUER, remote_jwks: { http_uri: { uri: `http://127.0.0.1:${downPort}/jwks.json`, cluster: 'down', timeout: '1s' } } },
    };
    const authn = jwtAuthn({
      providers,
      rules: [
        { match: { prefix: '/down' }, requires: { provider_name: 'origins-down' } },
        { match: { prefix: '/strict' }, requires: { provider_name: 'origins-0' } },
        { match: { prefix: '/' }, requires: { requires_any: { requirements: [{ provider_name: 'origins-0' }, { provider_name: 'origins-1' }, { allow_missing: {} }] } } },
      ],
      bypass_cors_preflight: true,
    });
    const principal = (value: Json) => ({ metadata: { filter: 'istio_authn', path: [{ key: 'request.auth.principal' }], value } });
    // AuthorizationPolicy ALLOW from: requestPrincipals ["*"]; and one on a claim for /admins.
    const authz = httpRbac({
      rules: {
        action: 'ALLOW',
        policies: {
          'ns[default]-policy[require-jwt]-rule[0]': { permissions: [{ not_rule: { url_path: { path: { prefix: '/admins' } } } }], principals: [principal({ present_match: true })] },
          'ns[default]-policy[require-jwt]-rule[1]': {
            permissions: [{ url_path: { path: { prefix: '/admins' } } }],
            principals: [
              { metadata: { filter: 'istio_authn', path: [{ key: 'request.auth.claims' }, { key: 'groups' }], value: { list_match: { one_of: { string_match: { exact: 'admins' } } } } } },
            ],
          },
        },
      },
    });
    proxy = await startHandWrittenProxy(
      {
        listeners: [httpListener('jwt', PORTS.jwt, 'backend', { filters: [authn, authz] }), httpListener('jwt-only', PORTS.jwtOnly, 'backend', { filters: [authn] })],
        clusters: [staticCluster('backend', backend.address, backend.port)],
      },
      Object.values(PORTS),
    );
  });

  after(async () => {
    await proxy?.close();
    await backend?.close();
    await new Promise<void>((r) => (jwks ? jwks.close(() => r()) : r()));
  });

  it('a valid RS256 token (remote JWKS): claims and payload reach the backend, the token does not', async () => {
    const t = await rsToken();
    const res = await send('jwt', '/data', bearer(t));
    assert.equal(res.status, 200, res.body);
    const echo = JSON.parse(res.body) as BackendEcho;
    assert.equal(echo.headers['x-jwt-sub'], 'alice');
    assert.equal(echo.headers['x-jwt-team'], 'payments', 'nested claim org.team');
    const payload = JSON.parse(Buffer.from(String(echo.headers['x-jwt-payload']), 'base64url').toString());
    assert.equal(payload.iss, RS_ISSUER);
    assert.deepEqual(payload.groups, ['dev', 'admins']);
    assert.equal(echo.headers.authorization, undefined, 'forward: false removes the token');
    assert.equal(jwksFetches, 1);
  });

  it('the JWKS is fetched once and cached for many requests', async () => {
    const t = await rsToken({ sub: 'bob' });
    const results = await Promise.all(Array.from({ length: 20 }, () => send('jwt', '/data', bearer(t))));
    assert.deepEqual([...new Set(results.map((r) => r.status))], [200]);
    assert.equal(jwksFetches, 1);
  });

  it('a valid ES256 token (inline JWKS), forwarded as configured', async () => {
    const t = await token(ec, 'ES256', 'ec-1', { iss: EC_ISSUER, sub: 'carol', exp: now() + 600 });
    const res = await send('jwt', '/data', bearer(t));
    assert.equal(res.status, 200, res.body);
    assert.equal((JSON.parse(res.body) as BackendEcho).headers.authorization, `Bearer ${t}`, 'forward: true keeps it');
  });

  it('a token in ?access_token= is verified and removed from the forwarded path', async () => {
    const t = await rsToken();
    const res = await send('jwt', `/data?a=1&access_token=${t}&b=2`);
    assert.equal(res.status, 200, res.body);
    assert.equal((JSON.parse(res.body) as BackendEcho).path, '/data?a=1&b=2');
  });

  it('a bad signature, an expired token, a wrong audience, a malformed token: Envoy replies', async () => {
    const forged = await rsToken({}, forger);
    const bad = await send('jwt', '/data?q=1', bearer(forged));
    assert.equal(bad.status, 401);
    assert.equal(bad.body, 'Jwt verification fails');
    assert.equal(bad.headers['www-authenticate'], 'Bearer realm="http://authz.test/data", error="invalid_token"');
    const expired = await send('jwt', '/data', bearer(await rsToken({ exp: now() - 3600 })));
    assert.equal(expired.status, 401);
    assert.equal(expired.body, 'Jwt is expired');
    // Envoy answers a disallowed audience with 403.
    const audience = await send('jwt', '/data', bearer(await rsToken({ aud: 'someone-else' })));
    assert.equal(audience.status, 403);
    assert.equal(audience.body, 'Audiences in Jwt are not allowed');
    const malformed = await send('jwt', '/data', bearer('not.a.jwt'));
    assert.equal(malformed.status, 401);
    assert.match(malformed.body, /^Jwt header is an invalid/);
    const record = await waitFor(() => proxy.records.find((r) => r.status === 401 && r.path === '/data?q=1'));
    assert.equal(record.details, 'jwt_authn_access_denied{Jwt_verification_fails}');
  });

  it('no token: authentication passes (allow_missing), the ALLOW on requestPrincipals ["*"] denies', async () => {
    const anonymous = await send('jwt', '/data');
    assert.equal(anonymous.status, 403);
    assert.equal(anonymous.body, 'RBAC: access denied');
    // Without the AuthorizationPolicy the same request passes; forged claim headers are removed.
    const open = await send('jwt-only', '/data', { 'x-jwt-sub': 'admin' });
    assert.equal(open.status, 200);
    assert.equal((JSON.parse(open.body) as BackendEcho).headers['x-jwt-sub'], undefined);
  });

  it('RBAC reads the verified claims (request.auth.claims[groups])', async () => {
    assert.equal((await send('jwt', '/admins/panel', bearer(await rsToken()))).status, 200);
    assert.equal((await send('jwt', '/admins/panel', bearer(await rsToken({ groups: ['dev'] })))).status, 403);
    assert.equal((await send('jwt', '/admins/panel', bearer(await rsToken({ groups: 'admins' })))).status, 200, 'a string claim is a list of one');
  });

  it('a required provider without a token: 401 "Jwt is missing" with a bare challenge', async () => {
    const res = await send('jwt', '/strict/x');
    assert.equal(res.status, 401);
    assert.equal(res.body, 'Jwt is missing');
    assert.equal(res.headers['www-authenticate'], 'Bearer realm="http://authz.test/strict/x"');
  });

  it('an unreachable JWKS fails verification with 401', async () => {
    const t = await token(rsa, 'RS256', 'rs-1', { iss: DOWN_ISSUER, sub: 'dave', exp: now() + 600 });
    const res = await send('jwt', '/down', bearer(t));
    assert.equal(res.status, 401);
    assert.equal(res.body, 'Jwks remote fetch is failed');
    assert.match(await proxy.stats(), /^http\.jwt\.jwt_authn\.jwks_fetch_failed: [1-9]/m);
  });

  it('a key rotated before the cache expires: an unknown kid refetches the JWKS', async () => {
    const before = jwksFetches;
    jwksKeys = [...jwksKeys, { ...(await exportJWK(rsaRotated.publicKey)), kid: 'rs-2', alg: 'RS256' }];
    const res = await send('jwt', '/data', bearer(await rsToken({}, rsaRotated, 'rs-2')));
    assert.equal(res.status, 200, res.body);
    assert.equal(jwksFetches, before + 1);
    const stats = await proxy.stats();
    assert.match(stats, /^http\.jwt\.jwt_authn\.allowed: [1-9]/m);
    assert.match(stats, /^http\.jwt\.jwt_authn\.denied: [1-9]/m);
  });
});
