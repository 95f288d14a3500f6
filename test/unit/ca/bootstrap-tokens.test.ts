// Bootstrap tokens: what they claim, what verify() refuses, the signing key kept across restarts,
// and token files written with private permissions only when a workload's identity changes.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createPrivateKey } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { BootstrapTokens, TOKEN_AUDIENCE, TOKEN_ISSUER, WORKLOAD_CLAIM } from '../../../src/ca/bootstrap-tokens';
import { InvalidNameError, UnauthenticatedError } from '../../../src/ca/ca-errors';
import { isKubernetesName, parseServiceAccountSubject, parseSpiffeId, spiffeId } from '../../../src/ca/spiffe';
import { tokenSigningKeyPath, workloadTokenPath } from '../../../src/ca/state-paths';
import { silentLogger } from '../../../src/log/logger';

const REVIEWS = { namespace: 'default', serviceAccount: 'bookinfo-reviews', workload: 'reviews-v1' };

function mode(file: string): number {
  return fs.statSync(file).mode & 0o777;
}

describe('SPIFFE ids', () => {
  it('round-trips Istio’s form and rejects anything else', () => {
    const id = spiffeId('cluster.local', 'default', 'bookinfo-reviews');
    assert.equal(id, 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews');
    assert.deepEqual(parseSpiffeId(id), { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: 'bookinfo-reviews' });
    for (const bad of ['spiffe://cluster.local/ns/default', 'https://cluster.local/ns/a/sa/b', 'spiffe://td/ns/a/sa/b/extra', 'spiffe:///ns/a/sa/b']) {
      assert.equal(parseSpiffeId(bad), undefined, bad);
    }
    assert.deepEqual(parseServiceAccountSubject('system:serviceaccount:prod:api'), { namespace: 'prod', serviceAccount: 'api' });
    assert.equal(parseServiceAccountSubject('system:serviceaccount:prod'), undefined);
  });

  it('accepts only Kubernetes names, so a name is always one safe path segment', () => {
    for (const ok of ['default', 'reviews-v1', 'a.b-c', 'x']) assert.ok(isKubernetesName(ok), ok);
    for (const bad of ['', '..', '../etc', 'a/b', 'Upper', '-lead', 'trail-', 'a..b', 'x'.repeat(254)]) assert.ok(!isKubernetesName(bad), bad);
  });
});

describe('bootstrap tokens', () => {
  let stateDir: string;
  let tokens: BootstrapTokens;

  before(async () => {
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-tokens-'));
    tokens = await BootstrapTokens.loadOrCreate({ stateDir, logger: silentLogger });
  });
  after(() => fs.rmSync(stateDir, { recursive: true, force: true }));

  it('keeps its ES256 signing key in the state directory, readable only by its owner', () => {
    const file = tokenSigningKeyPath(stateDir);
    assert.equal(mode(file), 0o600);
    assert.equal(createPrivateKey(fs.readFileSync(file)).asymmetricKeyDetails?.namedCurve, 'prime256v1');
  });

  it('mints a one-year token for a service account and workload, and verifies it', async () => {
    const token = await tokens.mint(REVIEWS);
    const header = decodeProtectedHeader(token);
    assert.equal(header.alg, 'ES256');
    assert.equal(header.kid, tokens.keyId);
    const claims = decodeJwt(token);
    assert.equal(claims.iss, TOKEN_ISSUER);
    assert.equal(claims.aud, TOKEN_AUDIENCE);
    assert.equal(claims.sub, 'system:serviceaccount:default:bookinfo-reviews');
    assert.equal(claims[WORKLOAD_CLAIM], 'reviews-v1');
    const now = Date.now() / 1000;
    assert.ok(Math.abs((claims.iat ?? 0) - now) < 5);
    assert.ok(Math.abs((claims.exp ?? 0) - (now + 365 * 24 * 3600)) < 5);
    assert.deepEqual(await tokens.verify(token), REVIEWS);
  });

  it('verifies tokens minted before a restart (same key)', async () => {
    const token = await tokens.mint(REVIEWS);
    const restarted = await BootstrapTokens.loadOrCreate({ stateDir, logger: silentLogger });
    assert.equal(restarted.keyId, tokens.keyId);
    assert.deepEqual(await restarted.verify(token), REVIEWS);
  });

  it('refuses tokens of another control plane, tampered, expired, or for another audience', async () => {
    const otherDir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-tokens-other-'));
    try {
      const other = await BootstrapTokens.loadOrCreate({ stateDir: otherDir, logger: silentLogger });
      await assert.rejects(tokens.verify(await other.mint(REVIEWS)), UnauthenticatedError);
    } finally {
      fs.rmSync(otherDir, { recursive: true, force: true });
    }
    const good = await tokens.mint(REVIEWS);
    const [h, p, sig] = good.split('.');
    const forged = Buffer.from(JSON.stringify({ ...decodeJwt(good), sub: 'system:serviceaccount:kube-system:admin' })).toString('base64url');
    await assert.rejects(tokens.verify(`${h}.${forged}.${sig}`), UnauthenticatedError);
    await assert.rejects(tokens.verify(`${h}.${p}`), UnauthenticatedError);
    await assert.rejects(tokens.verify('not a token'), (err: unknown) => err instanceof UnauthenticatedError && err.grpcStatus === 16);

    const key = createPrivateKey(fs.readFileSync(tokenSigningKeyPath(stateDir)));
    const signed = (claims: Record<string, unknown>, audience: string, exp: number) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).setIssuer(TOKEN_ISSUER).setAudience(audience).setSubject('system:serviceaccount:default:x').setExpirationTime(exp).sign(key);
    const past = Math.floor(Date.now() / 1000) - 60;
    const future = past + 3600;
    await assert.rejects(tokens.verify(await signed({ [WORKLOAD_CLAIM]: 'x' }, TOKEN_AUDIENCE, past)), /exp/);
    await assert.rejects(tokens.verify(await signed({ [WORKLOAD_CLAIM]: 'x' }, 'someone-else', future)), /aud/);
    await assert.rejects(tokens.verify(await signed({}, TOKEN_AUDIENCE, future)), /names no service account or workload/);
  });

  it('refuses names that are not Kubernetes names (they become file paths)', async () => {
    await assert.rejects(tokens.mint({ ...REVIEWS, workload: '../../escape' }), InvalidNameError);
    await assert.rejects(tokens.writeWorkloadToken({ ...REVIEWS, namespace: '/etc' }), InvalidNameError);
  });

  it('writes a token file 0600 in 0700 directories, and leaves it alone while the identity is unchanged', async () => {
    const first = await tokens.writeWorkloadToken(REVIEWS);
    assert.equal(first.written, true);
    assert.equal(first.path, workloadTokenPath(stateDir, 'default', 'reviews-v1'));
    assert.equal(mode(first.path), 0o600);
    assert.equal(mode(path.dirname(first.path)), 0o700);
    assert.equal(mode(path.dirname(path.dirname(first.path))), 0o700);
    assert.equal(fs.readFileSync(first.path, 'utf8').trim(), first.token);

    const again = await tokens.writeWorkloadToken(REVIEWS);
    assert.equal(again.written, false);
    assert.equal(again.token, first.token);

    const moved = await tokens.writeWorkloadToken({ ...REVIEWS, serviceAccount: 'reviews-new' });
    assert.equal(moved.written, true);
    assert.equal((await tokens.verify(fs.readFileSync(moved.path, 'utf8').trim())).serviceAccount, 'reviews-new');

    const forced = await tokens.writeWorkloadToken({ ...REVIEWS, serviceAccount: 'reviews-new' }, { force: true });
    assert.equal(forced.written, true);
  });

  it('syncs the token files of a set of workloads, defaulting the service account to "default"', async () => {
    const written = await tokens.syncWorkloadTokens([
      { namespace: 'shop', name: 'cart-1', serviceAccount: 'cart' },
      { namespace: 'shop', name: 'legacy' },
    ]);
    assert.deepEqual(written, [workloadTokenPath(stateDir, 'shop', 'cart-1'), workloadTokenPath(stateDir, 'shop', 'legacy')]);
    const legacy = await tokens.verify(fs.readFileSync(written[1], 'utf8').trim());
    assert.deepEqual(legacy, { namespace: 'shop', serviceAccount: 'default', workload: 'legacy' });
    assert.deepEqual(await tokens.syncWorkloadTokens([{ namespace: 'shop', name: 'cart-1', serviceAccount: 'cart' }]), []);
  });
});
