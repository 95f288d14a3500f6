// The mesh CA: its files on disk, the workload certificates it signs (checked with node:crypto and
// by real mutual TLS 1.3 handshakes), the CSRs it refuses, and plugged-in CAs with an intermediate.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { CaFilesError, IdentityMismatchError, InvalidCsrError } from '../../../src/ca/ca-errors';
import { CertificateAuthority } from '../../../src/ca/certificate-authority';
import { spiffeId } from '../../../src/ca/spiffe';
import { caDir, rootCertPath } from '../../../src/ca/state-paths';
import { x509 } from '../../../src/ca/x509';
import { silentLogger } from '../../../src/log/logger';
import { createWorkloadCsr, withBrokenSignature } from '../../support/workload-csr';

const REVIEWS = spiffeId('cluster.local', 'default', 'bookinfo-reviews');
const RATINGS = spiffeId('cluster.local', 'default', 'bookinfo-ratings');

function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

function mode(file: string): number {
  return fs.statSync(file).mode & 0o777;
}

function extension<T extends x509.Extension>(pem: string, type: new (raw: ArrayBuffer) => T): T {
  const found = new x509.X509Certificate(pem).getExtension(type);
  assert.ok(found, `certificate has no ${type.name}`);
  return found;
}

/** A workload key and its signed chain, ready for node:tls. */
async function issueWorkload(ca: CertificateAuthority, identity: string) {
  const { csrPem, keyPem } = await createWorkloadCsr({ uris: [identity] });
  const signed = await ca.signWorkloadCsr(csrPem, { identity, ttlSeconds: 3600 });
  return { keyPem, signed, chainPem: signed.certChain.slice(0, -1).join('') };
}

/**
 * Mutual TLS 1.3 between two workloads, each verifying the other against `rootPem` and checking
 * the peer's SPIFFE id the way a sidecar does (URI SAN, not host name). Resolves with the URI SAN
 * each side saw once the server, having verified the client, has answered.
 */
async function mutualTls(rootPem: string, server: { keyPem: string; chainPem: string }, client: { keyPem: string; chainPem: string }) {
  let seenByServer: string | undefined;
  let serverError: Error | undefined;
  const srv = tls.createServer(
    { key: server.keyPem, cert: server.chainPem, ca: rootPem, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' },
    (socket) => {
      seenByServer = socket.getPeerCertificate().subjectaltname;
      socket.end('ok');
    },
  );
  srv.on('tlsClientError', (err) => (serverError = err));
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  try {
    const seenByClient = await new Promise<string | undefined>((resolve, reject) => {
      const conn = tls.connect({
        host: '127.0.0.1',
        port: (srv.address() as AddressInfo).port,
        key: client.keyPem,
        cert: client.chainPem,
        ca: rootPem,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.3',
        // Peers are named by SPIFFE id, not DNS: verify the URI SAN instead of the host name.
        checkServerIdentity: (_host, cert) => (cert.subjectaltname?.startsWith('URI:spiffe://') ? undefined : new Error('no SPIFFE id')),
      });
      let answered = false;
      conn.on('data', () => {
        answered = true;
        assert.equal(conn.getProtocol(), 'TLSv1.3');
        resolve(conn.getPeerCertificate().subjectaltname);
        conn.end();
      });
      conn.on('error', reject);
      conn.on('close', () => {
        if (!answered) reject(serverError ?? new Error('the server closed the connection without answering'));
      });
    });
    return { seenByServer, seenByClient };
  } finally {
    srv.close();
  }
}

describe('self-signed CA', () => {
  let stateDir: string;
  let ca: CertificateAuthority;

  before(async () => {
    stateDir = tempDir('weft-ca-');
    ca = await CertificateAuthority.loadOrCreate({ stateDir, trustDomain: 'cluster.local', logger: silentLogger });
  });
  after(() => fs.rmSync(stateDir, { recursive: true, force: true }));

  it('writes Istio’s layout with private permissions: dir 0700, key 0600, certificates 0644', () => {
    const dir = caDir(stateDir);
    assert.equal(ca.origin, 'created');
    assert.equal(mode(dir), 0o700);
    assert.equal(mode(path.join(dir, 'ca-key.pem')), 0o600);
    assert.equal(mode(path.join(dir, 'ca-cert.pem')), 0o644);
    assert.equal(mode(rootCertPath(stateDir)), 0o644);
    assert.equal(fs.readFileSync(path.join(dir, 'cert-chain.pem'), 'utf8'), '', 'a self-signed CA has no chain (Istio)');
    assert.equal(fs.readFileSync(path.join(dir, 'ca-cert.pem'), 'utf8'), fs.readFileSync(rootCertPath(stateDir), 'utf8'));
  });

  it('makes an Istio-like root: O=<trust domain>, ECDSA P-256, CA critical, cert and CRL signing, ten years', () => {
    const root = new X509Certificate(ca.rootCertPem);
    assert.equal(root.subject, 'O=cluster.local');
    assert.equal(root.ca, true);
    assert.equal(root.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    const years = (Date.parse(root.validTo) - Date.now()) / (365 * 24 * 3600_000);
    assert.ok(years > 9.9 && years < 10.1, `root lives ${years} years`);
    const constraints = extension(ca.rootCertPem, x509.BasicConstraintsExtension);
    assert.equal(constraints.ca, true);
    assert.equal(constraints.critical, true);
    const usage = extension(ca.rootCertPem, x509.KeyUsagesExtension);
    assert.equal(usage.usages, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    assert.equal(usage.critical, true);
  });

  it('keeps the same root across restarts', async () => {
    const again = await CertificateAuthority.loadOrCreate({ stateDir, trustDomain: 'cluster.local', logger: silentLogger });
    assert.equal(again.origin, 'loaded');
    assert.equal(again.rootCertPem, ca.rootCertPem);
    assert.equal(again.rootFingerprint, ca.rootFingerprint);
    // Certificates signed after the restart chain to the same root.
    const { signed } = await issueWorkload(again, REVIEWS);
    assert.ok(new X509Certificate(signed.certChain[0]).verify(new X509Certificate(ca.rootCertPem).publicKey));
  });

  it('signs a workload CSR into a SPIFFE certificate shaped like Istio’s', async () => {
    const { signed } = await issueWorkload(ca, REVIEWS);
    assert.equal(signed.certChain.length, 2, 'leaf then root');
    assert.equal(signed.certChain[1], ca.rootCertPem);
    const leafPem = signed.certChain[0];
    const leaf = new X509Certificate(leafPem);
    const root = new X509Certificate(ca.rootCertPem);
    assert.equal(leaf.subject ?? '', '', 'empty subject, identity in the SAN');
    assert.equal(leaf.subjectAltName, `URI:${REVIEWS}`);
    assert.equal(leaf.ca, false);
    assert.ok(leaf.checkIssued(root) && leaf.verify(root.publicKey));
    assert.deepEqual([...(leaf.keyUsage ?? [])].sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'], 'serverAuth and clientAuth');
    assert.equal(extension(leafPem, x509.SubjectAlternativeNameExtension).critical, true);
    const usage = extension(leafPem, x509.KeyUsagesExtension);
    assert.equal(usage.usages, x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);
    assert.equal(usage.critical, true);
    assert.equal(extension(leafPem, x509.BasicConstraintsExtension).ca, false);
    assert.equal(extension(leafPem, x509.AuthorityKeyIdentifierExtension).keyId, extension(ca.rootCertPem, x509.SubjectKeyIdentifierExtension).keyId);
    assert.ok(extension(leafPem, x509.SubjectKeyIdentifierExtension).keyId);
    assert.ok(leaf.serialNumber.length >= 32, `128-bit serial, got ${leaf.serialNumber}`);
    assert.equal(signed.serialNumber.toUpperCase(), leaf.serialNumber.toUpperCase());
    // Backdated one minute for clock skew; lives the requested hour.
    const notBefore = Date.parse(leaf.validFrom);
    assert.ok(Math.abs(Date.now() - 60_000 - notBefore) < 5_000, `notBefore ${leaf.validFrom}`);
    assert.ok(Math.abs(Date.parse(leaf.validTo) - (Date.now() + 3600_000)) < 5_000, `notAfter ${leaf.validTo}`);
  });

  it('signs RSA CSRs too', async () => {
    const { csrPem } = await createWorkloadCsr({ uris: [REVIEWS], key: 'rsa' });
    const signed = await ca.signWorkloadCsr(csrPem, { identity: REVIEWS, ttlSeconds: 600 });
    const leaf = new X509Certificate(signed.certChain[0]);
    assert.equal(leaf.publicKey.asymmetricKeyType, 'rsa');
    assert.equal(leaf.subjectAltName, `URI:${REVIEWS}`);
  });

  it('caps the lifetime at the maximum workload TTL', async () => {
    const capped = await CertificateAuthority.loadOrCreate({ stateDir, trustDomain: 'cluster.local', logger: silentLogger, maxWorkloadCertTtlSeconds: 7200 });
    const { csrPem } = await createWorkloadCsr({ uris: [REVIEWS] });
    const signed = await capped.signWorkloadCsr(csrPem, { identity: REVIEWS, ttlSeconds: 365 * 24 * 3600 });
    assert.ok(Math.abs(signed.notAfter.getTime() - (Date.now() + 7200_000)) < 5_000);
    assert.equal(Date.parse(new X509Certificate(signed.certChain[0]).validTo), signed.notAfter.getTime());
  });

  it('refuses a CSR for another identity, naming requested and allowed', async () => {
    const { csrPem } = await createWorkloadCsr({ uris: [RATINGS] });
    await assert.rejects(ca.signWorkloadCsr(csrPem, { identity: REVIEWS, ttlSeconds: 3600 }), (err: unknown) => {
      assert.ok(err instanceof IdentityMismatchError);
      assert.equal(err.grpcStatus, 7 /* PERMISSION_DENIED */);
      assert.match(err.message, /bookinfo-ratings.*may only request.*bookinfo-reviews/);
      return true;
    });
  });

  it('refuses a CSR with names beside its identity, or with none', async () => {
    const extra = await createWorkloadCsr({ uris: [REVIEWS], dns: ['reviews.default.svc'] });
    await assert.rejects(ca.signWorkloadCsr(extra.csrPem, { identity: REVIEWS, ttlSeconds: 60 }), /DNS:reviews\.default\.svc/);
    const none = await createWorkloadCsr({ subject: 'CN=reviews' });
    await assert.rejects(ca.signWorkloadCsr(none.csrPem, { identity: REVIEWS, ttlSeconds: 60 }), IdentityMismatchError);
  });

  it('refuses a CSR whose signature does not verify, and text that is no CSR', async () => {
    const { csrPem } = await createWorkloadCsr({ uris: [REVIEWS] });
    await assert.rejects(ca.signWorkloadCsr(withBrokenSignature(csrPem), { identity: REVIEWS, ttlSeconds: 60 }), (err: unknown) => {
      assert.ok(err instanceof InvalidCsrError);
      assert.equal(err.grpcStatus, 3 /* INVALID_ARGUMENT */);
      return true;
    });
    await assert.rejects(ca.signWorkloadCsr('hello', { identity: REVIEWS, ttlSeconds: 60 }), InvalidCsrError);
    await assert.rejects(
      ca.signWorkloadCsr('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', { identity: REVIEWS, ttlSeconds: 60 }),
      InvalidCsrError,
    );
  });

  it('issues certificates two workloads use for mutual TLS 1.3, each verifying the other', async () => {
    const reviews = await issueWorkload(ca, REVIEWS);
    const ratings = await issueWorkload(ca, RATINGS);
    const result = await mutualTls(ca.rootCertPem, ratings, reviews);
    assert.equal(result.seenByServer, `URI:${REVIEWS}`);
    assert.equal(result.seenByClient, `URI:${RATINGS}`);
  });

  it('refuses a handshake with a certificate from another CA', async () => {
    const otherDir = tempDir('weft-ca-other-');
    try {
      const other = await CertificateAuthority.loadOrCreate({ stateDir: otherDir, trustDomain: 'cluster.local', logger: silentLogger });
      const stranger = await issueWorkload(other, REVIEWS);
      const ratings = await issueWorkload(ca, RATINGS);
      await assert.rejects(mutualTls(ca.rootCertPem, ratings, stranger));
    } finally {
      fs.rmSync(otherDir, { recursive: true, force: true });
    }
  });

  it('issues the control plane’s serving certificate with DNS and IP names a TLS client verifies', async () => {
    const served = await ca.issueServerCertificate({ dnsNames: ['istiod.istio-system.svc', 'localhost'], ips: ['127.0.0.1'], ttlSeconds: 3600 });
    const leaf = new X509Certificate(served.certChainPem);
    assert.equal(leaf.subjectAltName, 'DNS:istiod.istio-system.svc, DNS:localhost, IP Address:127.0.0.1');
    for (const servername of ['istiod.istio-system.svc', undefined]) {
      const srv = tls.createServer({ key: served.privateKeyPem, cert: served.certChainPem }, (s) => s.end());
      await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
      try {
        await new Promise<void>((resolve, reject) => {
          const conn = tls.connect({ host: '127.0.0.1', port: (srv.address() as AddressInfo).port, ca: ca.rootCertPem, servername }, () => {
            conn.end();
            resolve();
          });
          conn.on('error', reject);
        });
      } finally {
        srv.close();
      }
    }
  });
});

function openssl(cwd: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * Istio's plug-in layout made with the openssl CLI: an RSA root, and an intermediate CA whose key is
 * EC in SEC1 form or RSA in PKCS#1 form (what `openssl ecparam -genkey` / `genrsa -traditional` write).
 */
function makePluggedCa(intermediateKey: 'ec' | 'rsa'): string {
  const dir = tempDir('weft-plugged-');
  fs.writeFileSync(path.join(dir, 'ca.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
  openssl(dir, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'root-key.pem', '-out', 'root-cert.pem', '-days', '30', '-subj', '/O=Istio/CN=Root CA', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  if (intermediateKey === 'ec') openssl(dir, 'ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca-key.pem');
  else openssl(dir, 'genrsa', '-traditional', '-out', 'ca-key.pem', '2048');
  openssl(dir, 'req', '-new', '-key', 'ca-key.pem', '-out', 'ca.csr', '-subj', '/O=Istio/CN=Intermediate CA/L=cluster1');
  openssl(dir, 'x509', '-req', '-in', 'ca.csr', '-CA', 'root-cert.pem', '-CAkey', 'root-key.pem', '-CAcreateserial', '-out', 'ca-cert.pem', '-days', '20', '-extfile', 'ca.ext');
  // Istio's tools/certs Makefile: cert-chain.pem = ca-cert.pem + root-cert.pem.
  fs.writeFileSync(path.join(dir, 'cert-chain.pem'), fs.readFileSync(path.join(dir, 'ca-cert.pem'), 'utf8') + fs.readFileSync(path.join(dir, 'root-cert.pem'), 'utf8'));
  for (const scratch of ['ca.csr', 'ca.ext', 'root-key.pem', 'root-cert.srl']) fs.rmSync(path.join(dir, scratch), { force: true });
  return dir;
}

describe('plugged-in CA (root + intermediate)', () => {
  const dirs: string[] = [];
  const track = (d: string) => (dirs.push(d), d);
  after(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  for (const keyType of ['ec', 'rsa'] as const) {
    it(`issues leaves that verify against root-cert.pem through the intermediate (${keyType === 'ec' ? 'EC SEC1' : 'RSA PKCS#1'} key)`, async () => {
      const plugged = track(makePluggedCa(keyType));
      const stateDir = track(tempDir('weft-ca-state-'));
      const ca = await CertificateAuthority.loadOrCreate({ stateDir, trustDomain: 'cluster.local', pluggedCertsDir: plugged, logger: silentLogger });
      assert.equal(ca.origin, 'plugged');
      for (const f of ['ca-cert.pem', 'root-cert.pem', 'cert-chain.pem', 'ca-key.pem']) {
        assert.equal(fs.readFileSync(path.join(caDir(stateDir), f), 'utf8'), fs.readFileSync(path.join(plugged, f), 'utf8'), `${f} copied`);
      }
      assert.equal(mode(path.join(caDir(stateDir), 'ca-key.pem')), 0o600);

      const { signed, keyPem, chainPem } = await issueWorkload(ca, REVIEWS);
      const caCert = fs.readFileSync(path.join(plugged, 'ca-cert.pem'), 'utf8');
      const rootPem = fs.readFileSync(path.join(plugged, 'root-cert.pem'), 'utf8');
      assert.deepEqual(signed.certChain.slice(1).map((p) => new X509Certificate(p).fingerprint256), [caCert, rootPem].map((p) => new X509Certificate(p).fingerprint256), 'leaf, intermediate, root');
      const leaf = new X509Certificate(signed.certChain[0]);
      assert.ok(leaf.checkIssued(new X509Certificate(caCert)) && leaf.verify(new X509Certificate(caCert).publicKey));
      // openssl agrees: the leaf chains to root-cert.pem through the intermediate, for TLS clients.
      const work = track(tempDir('weft-verify-'));
      fs.writeFileSync(path.join(work, 'leaf.pem'), signed.certChain[0]);
      fs.writeFileSync(path.join(work, 'untrusted.pem'), caCert);
      const out = execFileSync('openssl', ['verify', '-purpose', 'sslclient', '-CAfile', path.join(plugged, 'root-cert.pem'), '-untrusted', 'untrusted.pem', 'leaf.pem'], { cwd: work }).toString();
      assert.match(out, /leaf\.pem: OK/);
      // And a TLS peer trusting only the root accepts the chain the CA returned.
      const other = await issueWorkload(ca, RATINGS);
      const result = await mutualTls(rootPem, other, { keyPem, chainPem });
      assert.equal(result.seenByServer, `URI:${REVIEWS}`);
      // Restarting without --ca-certs-dir keeps the plugged CA.
      const again = await CertificateAuthority.loadOrCreate({ stateDir, trustDomain: 'cluster.local', logger: silentLogger });
      assert.equal(again.origin, 'loaded');
      assert.equal(again.rootCertPem, rootPem);
    });
  }

  it('names the file at fault when the key does not match ca-cert.pem', async () => {
    const plugged = track(makePluggedCa('ec'));
    openssl(plugged, 'ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca-key.pem');
    await assert.rejects(
      CertificateAuthority.loadOrCreate({ stateDir: track(tempDir('weft-ca-state-')), trustDomain: 'cluster.local', pluggedCertsDir: plugged, logger: silentLogger }),
      (err: unknown) => err instanceof CaFilesError && err.file === path.join(plugged, 'ca-key.pem') && /is not the private key of ca-cert\.pem/.test(err.message),
    );
  });

  it('refuses a ca-cert.pem that is not a CA', async () => {
    const plugged = track(makePluggedCa('ec'));
    openssl(plugged, 'req', '-x509', '-key', 'ca-key.pem', '-out', 'ca-cert.pem', '-days', '5', '-subj', '/CN=not-a-ca', '-addext', 'basicConstraints=critical,CA:FALSE');
    await assert.rejects(
      CertificateAuthority.loadOrCreate({ stateDir: track(tempDir('weft-ca-state-')), trustDomain: 'cluster.local', pluggedCertsDir: plugged, logger: silentLogger }),
      /ca-cert\.pem: is not a CA certificate/,
    );
  });

  it('refuses a ca-cert.pem that does not chain to root-cert.pem', async () => {
    const plugged = track(makePluggedCa('ec'));
    const unrelated = track(makePluggedCa('ec'));
    fs.copyFileSync(path.join(unrelated, 'root-cert.pem'), path.join(plugged, 'root-cert.pem'));
    fs.writeFileSync(path.join(plugged, 'cert-chain.pem'), fs.readFileSync(path.join(plugged, 'ca-cert.pem')));
    await assert.rejects(
      CertificateAuthority.loadOrCreate({ stateDir: track(tempDir('weft-ca-state-')), trustDomain: 'cluster.local', pluggedCertsDir: plugged, logger: silentLogger }),
      /ca-cert\.pem: does not chain to root-cert\.pem/,
    );
  });

  it('refuses to start over a half-present CA directory instead of replacing it', async () => {
    const stateDir = track(tempDir('weft-ca-state-'));
    await CertificateAuthority.loadOrCreate({ stateDir, trustDomain: 'cluster.local', logger: silentLogger });
    fs.rmSync(rootCertPath(stateDir));
    await assert.rejects(CertificateAuthority.loadOrCreate({ stateDir, trustDomain: 'cluster.local', logger: silentLogger }), /root-cert\.pem: missing/);
    assert.ok(fs.existsSync(path.join(caDir(stateDir), 'ca-key.pem')), 'the key is left alone');
  });
});
