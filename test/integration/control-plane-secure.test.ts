// The control plane's secure port (15012) end to end: a real ControlPlane with a state directory,
// a grpc-js CA client over TLS verified against the mesh root, bootstrap tokens written for
// WorkloadEntries, certificate issuance and renewal, and ADS admitted only for the caller's own
// namespace — while the plaintext port keeps serving as before.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { AUTHORIZATION_METADATA, CaClient, type CreateCertificateResponse } from '../../src/ca/ca-protocol';
import { BootstrapTokens } from '../../src/ca/bootstrap-tokens';
import { spiffeId } from '../../src/ca/spiffe';
import { rootCertPath, workloadTokenPath } from '../../src/ca/state-paths';
import { ControlPlane } from '../../src/control/control-plane';
import { createLogger, silentLogger } from '../../src/log/logger';
import { TypeUrl } from '../../src/xds/protos';
import { AdsTestClient, sidecarNodeId } from '../support/ads-client';
import { waitFor } from '../support/wait-for';
import { createWorkloadCsr } from '../support/workload-csr';

const PLATFORM = `
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1, namespace: default}
spec: {address: 127.0.10.3, labels: {app: reviews, version: v1}, serviceAccount: bookinfo-reviews}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: legacy, namespace: shop}
spec: {address: 127.0.10.9, labels: {app: legacy}}
`;

const REVIEWS_ID = spiffeId('cluster.local', 'default', 'bookinfo-reviews');

interface WorkloadCredentials {
  keyPem: string;
  /** Leaf and intermediates (what a client presents). */
  chainPem: string;
  leaf: X509Certificate;
}

function mode(file: string): number {
  return fs.statSync(file).mode & 0o777;
}

describe('control plane secure port: CA and authenticated ADS', () => {
  let configDir: string;
  let stateDir: string;
  let cp: ControlPlane;
  let rootPem: string;
  const logLines: string[] = [];
  const clients: { close(): void }[] = [];

  const tokenOf = (ns: string, name: string) => fs.readFileSync(workloadTokenPath(stateDir, ns, name), 'utf8').trim();

  function caClient(cert?: { keyPem: string; chainPem: string }) {
    const credentials = grpc.credentials.createSsl(Buffer.from(rootPem), cert ? Buffer.from(cert.keyPem) : null, cert ? Buffer.from(cert.chainPem) : null);
    const client = new CaClient(`127.0.0.1:${cp.secureXdsPort}`, credentials, { 'grpc.use_local_subchannel_pool': 1 });
    clients.push(client);
    return client;
  }

  function createCertificate(
    client: InstanceType<typeof CaClient>,
    request: { csr: string; validityDuration: number },
    token?: string,
  ): Promise<CreateCertificateResponse> {
    const metadata = new grpc.Metadata();
    if (token !== undefined) metadata.set(AUTHORIZATION_METADATA, `Bearer ${token}`);
    return new Promise((resolve, reject) =>
      client.CreateCertificate(request, metadata, { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, response: CreateCertificateResponse) =>
        err ? reject(err) : resolve(response),
      ),
    );
  }

  /** A key and certificate for `identity`, obtained with `token` as a proxy's agent would. */
  async function enroll(identity: string, token: string, validityDuration = 3600): Promise<WorkloadCredentials> {
    const { csrPem, keyPem } = await createWorkloadCsr({ uris: [identity] });
    const response = await createCertificate(caClient(), { csr: csrPem, validityDuration }, token);
    return { keyPem, chainPem: response.certChain.slice(0, -1).join(''), leaf: new X509Certificate(response.certChain[0]) };
  }

  function rejectsWith(code: grpc.status, pattern?: RegExp) {
    return (err: grpc.ServiceError) => {
      assert.equal(err.code, code, `expected ${grpc.status[code]}, got ${grpc.status[err.code]}: ${err.details}`);
      if (pattern) assert.match(err.details, pattern);
      return true;
    };
  }

  before(async () => {
    configDir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-secure-config-'));
    stateDir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'weft-secure-state-')), 'state');
    fs.writeFileSync(path.join(configDir, 'platform.yaml'), PLATFORM);
    cp = new ControlPlane({
      configDir,
      xdsAddress: '127.0.0.1:0',
      httpAddress: '127.0.0.1:0',
      secureXdsAddress: '127.0.0.1:0',
      stateDir,
      logger: createLogger({ level: 'info', write: (line) => logLines.push(line) }),
      pushDebounceMs: 10,
    });
    await cp.start();
    rootPem = fs.readFileSync(rootCertPath(stateDir), 'utf8');
  });

  after(async () => {
    for (const c of clients) c.close();
    await cp?.stop(500);
    fs.rmSync(configDir, { recursive: true, force: true });
    fs.rmSync(path.dirname(stateDir), { recursive: true, force: true });
  });

  it('reports the secure address in its ready line', () => {
    const ready = logLines.map((l) => JSON.parse(l)).find((l) => l.event === 'control_plane_ready');
    assert.ok(cp.secureXdsPort > 0);
    assert.equal(ready.secureXds, `127.0.0.1:${cp.secureXdsPort}`);
    assert.equal(ready.stateDir, stateDir);
  });

  it('writes a bootstrap token file 0600 for every WorkloadEntry, before it reports ready', async () => {
    const file = workloadTokenPath(stateDir, 'default', 'reviews-v1');
    assert.equal(mode(file), 0o600);
    assert.equal(mode(path.dirname(file)), 0o700);
    assert.deepEqual(await cp.tokens!.verify(tokenOf('default', 'reviews-v1')), { namespace: 'default', serviceAccount: 'bookinfo-reviews', workload: 'reviews-v1' });
    // No serviceAccount: Istio's "default".
    assert.equal((await cp.tokens!.verify(tokenOf('shop', 'legacy'))).serviceAccount, 'default');
  });

  it('issues a certificate for exactly the identity of the token', async () => {
    const { csrPem } = await createWorkloadCsr({ uris: [REVIEWS_ID] });
    const response = await createCertificate(caClient(), { csr: csrPem, validityDuration: 0 }, tokenOf('default', 'reviews-v1'));
    assert.equal(response.certChain.length, 2);
    assert.equal(response.certChain[1], rootPem);
    const leaf = new X509Certificate(response.certChain[0]);
    assert.equal(leaf.subjectAltName, `URI:${REVIEWS_ID}`);
    assert.ok(leaf.verify(new X509Certificate(rootPem).publicKey));
    // validity_duration 0: Istio's default of 24 hours.
    assert.ok(Math.abs(Date.parse(leaf.validTo) - (Date.now() + 24 * 3600_000)) < 10_000, leaf.validTo);
    const issued = logLines.map((l) => JSON.parse(l)).find((l) => l.event === 'certificate_issued' && l.serial?.toUpperCase() === leaf.serialNumber);
    assert.ok(issued, 'one structured line per issuance');
    assert.equal(issued.identity, REVIEWS_ID);
    assert.equal(issued.notAfter, new Date(Date.parse(leaf.validTo)).toISOString());
  });

  it('refuses a CSR for another identity with PERMISSION_DENIED', async () => {
    const { csrPem } = await createWorkloadCsr({ uris: [spiffeId('cluster.local', 'default', 'bookinfo-ratings')] });
    await assert.rejects(
      createCertificate(caClient(), { csr: csrPem, validityDuration: 3600 }, tokenOf('default', 'reviews-v1')),
      rejectsWith(grpc.status.PERMISSION_DENIED, /bookinfo-ratings.*bookinfo-reviews/),
    );
  });

  it('refuses callers without valid credentials with UNAUTHENTICATED', async () => {
    const { csrPem } = await createWorkloadCsr({ uris: [REVIEWS_ID] });
    const request = { csr: csrPem, validityDuration: 3600 };
    await assert.rejects(createCertificate(caClient(), request), rejectsWith(grpc.status.UNAUTHENTICATED));
    await assert.rejects(createCertificate(caClient(), request, 'garbage'), rejectsWith(grpc.status.UNAUTHENTICATED));
    const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-other-tokens-'));
    try {
      const foreign = await (await BootstrapTokens.loadOrCreate({ stateDir: elsewhere, logger: silentLogger })).mint({
        namespace: 'default',
        serviceAccount: 'bookinfo-reviews',
        workload: 'reviews-v1',
      });
      await assert.rejects(createCertificate(caClient(), request, foreign), rejectsWith(grpc.status.UNAUTHENTICATED));
    } finally {
      fs.rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  it('refuses a malformed CSR with INVALID_ARGUMENT', async () => {
    await assert.rejects(
      createCertificate(caClient(), { csr: 'not a csr', validityDuration: 3600 }, tokenOf('default', 'reviews-v1')),
      rejectsWith(grpc.status.INVALID_ARGUMENT),
    );
  });

  it('renews with the previously issued client certificate and no token', async () => {
    const first = await enroll(REVIEWS_ID, tokenOf('default', 'reviews-v1'));
    const { csrPem } = await createWorkloadCsr({ uris: [REVIEWS_ID] });
    const renewed = await createCertificate(caClient(first), { csr: csrPem, validityDuration: 7200 });
    const leaf = new X509Certificate(renewed.certChain[0]);
    assert.equal(leaf.subjectAltName, `URI:${REVIEWS_ID}`);
    assert.notEqual(leaf.serialNumber, first.leaf.serialNumber);
    assert.ok(Math.abs(Date.parse(leaf.validTo) - (Date.now() + 7200_000)) < 10_000);
    // The certificate speaks for its own identity only.
    const other = await createWorkloadCsr({ uris: [spiffeId('cluster.local', 'shop', 'default')] });
    await assert.rejects(createCertificate(caClient(first), { csr: other.csrPem, validityDuration: 60 }), rejectsWith(grpc.status.PERMISSION_DENIED));
  });

  it('counts CSRs, issuances, sign errors and authentication failures under Istio’s names', async () => {
    const text = await (await fetch(`http://127.0.0.1:${cp.httpPort}/metrics`)).text();
    const value = (name: string) => [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, 'gm'))].reduce((n, m) => n + Number(m[1]), 0);
    assert.ok(value('citadel_server_csr_count') >= 8, text);
    assert.ok(value('citadel_server_success_cert_issuance_count') >= 3);
    assert.ok(value('citadel_server_csr_sign_error_count') >= 3);
    assert.ok(value('citadel_server_authentication_failure_count') >= 3);
  });

  it('serves ADS to a proxy whose client certificate matches its namespace, and refuses one that does not', async () => {
    const reviews = await enroll(REVIEWS_ID, tokenOf('default', 'reviews-v1'));
    const tlsWithCert = () => grpc.credentials.createSsl(Buffer.from(rootPem), Buffer.from(reviews.keyPem), Buffer.from(reviews.chainPem));
    const address = `127.0.0.1:${cp.secureXdsPort}`;

    const own = new AdsTestClient({
      address,
      credentials: tlsWithCert(),
      node: { id: sidecarNodeId('127.0.10.3', 'reviews-v1', 'default'), metadata: { NAMESPACE: 'default', SERVICE_ACCOUNT: 'bookinfo-reviews' } },
    });
    clients.push(own);
    const clusters = await own.waitForResponse((r) => r.typeUrl === TypeUrl.Cluster, { timeoutMs: 10_000 });
    assert.ok(clusters.names.some((n) => n.includes('reviews.default.svc.cluster.local')), clusters.names.join(', '));

    const intruder = new AdsTestClient({
      address,
      credentials: tlsWithCert(),
      node: { id: sidecarNodeId('127.0.20.1', 'payments', 'prod'), metadata: { NAMESPACE: 'prod' } },
    });
    clients.push(intruder);
    intruder.on('error', () => {}); // expected: the refusal is read from streamError
    const refused = await waitFor(() => intruder.streamError as grpc.ServiceError | undefined, { timeoutMs: 10_000, message: 'the stream should end' });
    assert.equal(refused.code, grpc.status.PERMISSION_DENIED, refused.details);
    assert.match(refused.details, /spiffe:\/\/cluster\.local\/ns\/default\/sa\/bookinfo-reviews may not connect as node/);
    assert.equal(intruder.responses.length, 0);

    // Same namespace, but the node claims another service account (Istio checks both).
    const impostor = new AdsTestClient({
      address,
      credentials: tlsWithCert(),
      node: { id: sidecarNodeId('127.0.10.4', 'ratings-v1', 'default'), metadata: { NAMESPACE: 'default', SERVICE_ACCOUNT: 'bookinfo-ratings' } },
    });
    clients.push(impostor);
    impostor.on('error', () => {}); // expected: the refusal is read from streamError
    const denied = await waitFor(() => impostor.streamError as grpc.ServiceError | undefined, { timeoutMs: 10_000 });
    assert.equal(denied.code, grpc.status.PERMISSION_DENIED);
  });

  it('admits ADS with a bearer token instead of a certificate, and refuses ADS with neither', async () => {
    const token = tokenOf('shop', 'legacy');
    const withToken = grpc.credentials.combineChannelCredentials(
      grpc.credentials.createSsl(Buffer.from(rootPem)),
      grpc.credentials.createFromMetadataGenerator((_params, callback) => {
        const metadata = new grpc.Metadata();
        metadata.set(AUTHORIZATION_METADATA, `Bearer ${token}`);
        callback(null, metadata);
      }),
    );
    const legacy = new AdsTestClient({
      address: `127.0.0.1:${cp.secureXdsPort}`,
      credentials: withToken,
      node: { id: sidecarNodeId('127.0.10.9', 'legacy', 'shop'), metadata: { NAMESPACE: 'shop' } },
    });
    clients.push(legacy);
    await legacy.waitForResponse((r) => r.typeUrl === TypeUrl.Listener, { timeoutMs: 10_000 });

    const anonymous = new AdsTestClient({
      address: `127.0.0.1:${cp.secureXdsPort}`,
      credentials: grpc.credentials.createSsl(Buffer.from(rootPem)),
      node: { id: sidecarNodeId('127.0.10.9', 'legacy', 'shop'), metadata: { NAMESPACE: 'shop' } },
    });
    clients.push(anonymous);
    anonymous.on('error', () => {}); // expected: the refusal is read from streamError
    const refused = await waitFor(() => anonymous.streamError as grpc.ServiceError | undefined, { timeoutMs: 10_000 });
    assert.equal(refused.code, grpc.status.UNAUTHENTICATED, refused.details);
  });

  it('keeps serving plaintext ADS on the xDS port without credentials', async () => {
    const plain = new AdsTestClient({
      address: `127.0.0.1:${cp.xdsPort}`,
      node: { id: sidecarNodeId('127.0.20.1', 'payments', 'prod'), metadata: { NAMESPACE: 'prod' } },
    });
    clients.push(plain);
    await plain.waitForResponse((r) => r.typeUrl === TypeUrl.Cluster, { timeoutMs: 10_000 });
  });

  it('rewrites a token file when its WorkloadEntry changes service account', async () => {
    const before = tokenOf('default', 'reviews-v1');
    fs.writeFileSync(path.join(configDir, 'platform.yaml'), PLATFORM.replace('serviceAccount: bookinfo-reviews', 'serviceAccount: reviews-v2'));
    const after = await waitFor(() => {
      const now = tokenOf('default', 'reviews-v1');
      return now !== before ? now : undefined;
    });
    assert.equal((await cp.tokens!.verify(after)).serviceAccount, 'reviews-v2');
    assert.equal(mode(workloadTokenPath(stateDir, 'default', 'reviews-v1')), 0o600);
  });

  it('creates a token for a gateway through POST /api/v1/tokens, usable with the CA', async () => {
    const res = await fetch(`http://127.0.0.1:${cp.httpPort}/api/v1/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ namespace: 'istio-system', serviceAccount: 'istio-ingressgateway-service-account', workload: 'ingressgateway' }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { path: string; token: string; rootCert: string };
    assert.equal(body.path, workloadTokenPath(stateDir, 'istio-system', 'ingressgateway'));
    assert.equal(body.rootCert, rootCertPath(stateDir));
    assert.equal(fs.readFileSync(body.path, 'utf8').trim(), body.token);
    assert.equal(mode(body.path), 0o600);
    const gateway = await enroll(spiffeId('cluster.local', 'istio-system', 'istio-ingressgateway-service-account'), body.token);
    assert.equal(gateway.leaf.subjectAltName, 'URI:spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account');

    const bad = await fetch(`http://127.0.0.1:${cp.httpPort}/api/v1/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ namespace: '../etc', serviceAccount: 'x', workload: 'y' }),
    });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /namespace "..\/etc" is not a Kubernetes name/);
    const missing = await fetch(`http://127.0.0.1:${cp.httpPort}/api/v1/tokens`, { method: 'POST', body: '{}' });
    assert.equal(missing.status, 400);
  });

  it('shows the CA root fingerprint in /api/v1/version', async () => {
    const version = (await (await fetch(`http://127.0.0.1:${cp.httpPort}/api/v1/version`)).json()) as { ca?: { rootFingerprint: string; trustDomain: string } };
    assert.equal(version.ca?.trustDomain, 'cluster.local');
    const fingerprint = new X509Certificate(rootPem).fingerprint256;
    assert.equal(version.ca?.rootFingerprint, fingerprint);
  });
});
