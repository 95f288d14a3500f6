// The control plane's serving certificate as grpc-js server credentials: a client certificate is
// asked for but optional, and a renewed certificate is served to new connections without rebinding.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { CertificateAuthority } from '../../../src/ca/certificate-authority';
import { ServingCertificate } from '../../../src/ca/serving-certificate';
import { spiffeId } from '../../../src/ca/spiffe';
import { silentLogger } from '../../../src/log/logger';
import { createWorkloadCsr } from '../../support/workload-csr';

describe('serving certificate', () => {
  let stateDir: string;
  let ca: CertificateAuthority;
  let serving: ServingCertificate;
  let server: grpc.Server;
  let port: number;

  /** A TLS handshake with the port, as a gRPC client makes it; resolves with the server's serial. */
  function handshake(client?: { key: string; cert: string }) {
    return new Promise<string>((resolve, reject) => {
      const conn = tls.connect({ host: '127.0.0.1', port, ca: ca.rootCertPem, ALPNProtocols: ['h2'], ...client }, () => {
        resolve(conn.getPeerCertificate().serialNumber);
        conn.destroy();
      });
      conn.on('error', reject);
    });
  }

  before(async () => {
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-serving-'));
    ca = await CertificateAuthority.loadOrCreate({ stateDir, trustDomain: 'cluster.local', logger: silentLogger });
    serving = await ServingCertificate.issue({ ca, dnsNames: ['localhost'], ips: ['127.0.0.1'], logger: silentLogger });
    server = new grpc.Server();
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', serving.serverCredentials(), (err, p) => (err ? reject(err) : resolve(p))),
    );
  });
  after(() => {
    serving.close();
    server.forceShutdown();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  it('asks for a client certificate without requiring one, or requiring it to be valid', async () => {
    assert.ok(await handshake());
    const identity = spiffeId('cluster.local', 'default', 'reviews');
    const { csrPem, keyPem } = await createWorkloadCsr({ uris: [identity] });
    const signed = await ca.signWorkloadCsr(csrPem, { identity, ttlSeconds: 600 });
    assert.ok(await handshake({ key: keyPem, cert: signed.certChain[0] }));
    // A certificate of another CA does not break the handshake; it just proves nothing (see caller-authentication).
    const otherDir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-serving-other-'));
    try {
      const other = await CertificateAuthority.loadOrCreate({ stateDir: otherDir, trustDomain: 'cluster.local', logger: silentLogger });
      const foreign = await other.signWorkloadCsr(csrPem, { identity, ttlSeconds: 600 });
      assert.ok(await handshake({ key: keyPem, cert: foreign.certChain[0] }));
    } finally {
      fs.rmSync(otherDir, { recursive: true, force: true });
    }
  });

  it('serves a renewed certificate to new connections on the same port', async () => {
    const before = await handshake();
    const previousNotAfter = serving.notAfter;
    await serving.renew();
    assert.ok(serving.notAfter.getTime() >= previousNotAfter.getTime());
    const after = await handshake();
    assert.notEqual(after, before);
  });
});
