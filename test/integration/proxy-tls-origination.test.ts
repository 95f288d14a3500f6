// TLS origination from a DestinationRule (tls mode SIMPLE and MUTUAL): the application speaks
// plain HTTP to the proxy, the proxy speaks TLS to the destination, verifying the CA and SANs.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ConfigResource } from '../../src/config/resources';
import { destinationRule, kubeService, workloadEntry } from '../support/mesh-resources';
import { startMesh, startTestProxy, type Mesh, type TestProxy } from './proxy-harness';

interface Pki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

/** A throwaway CA, a server certificate for secure.test and a client certificate (openssl). */
function makePki(): Pki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-tls-'));
  const f = (n: string) => path.join(dir, n);
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=weft-test-ca', '-keyout', f('ca.key'), '-out', f('ca.pem')]);
  const leaf = (name: string, ext: string) => {
    run(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`)]);
    fs.writeFileSync(f(`${name}.ext`), ext);
    run(['x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f(`${name}.ext`), '-out', f(`${name}.pem`)]);
  };
  leaf('server', 'subjectAltName=DNS:secure.test,URI:spiffe://cluster.local/ns/default/sa/secure\n');
  leaf('client', 'subjectAltName=URI:spiffe://cluster.local/ns/default/sa/client\nextendedKeyUsage=clientAuth\n');
  return { dir, ca: f('ca.pem'), serverCert: f('server.pem'), serverKey: f('server.key'), clientCert: f('client.pem'), clientKey: f('client.key') };
}

// openssl is installed by scripts/ensure-test-tools.sh (npm test runs it first).
describe('proxy TLS origination', () => {
  let pki: Pki;
  let server: https.Server;
  let mesh: Mesh;
  let proxy: TestProxy;
  let base: ConfigResource[];
  const seen: { sni?: string; clientCert?: string }[] = [];

  before(async () => {
    pki = makePki();
    server = https.createServer(
      { key: fs.readFileSync(pki.serverKey), cert: fs.readFileSync(pki.serverCert), ca: fs.readFileSync(pki.ca), requestCert: true, rejectUnauthorized: false },
      (req, res) => {
        const socket = req.socket as import('node:tls').TLSSocket;
        const peer = socket.getPeerCertificate();
        seen.push({ sni: (socket as unknown as { servername?: string }).servername, clientCert: peer?.subject?.CN as string | undefined });
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`tls ok ${req.url} authorized=${socket.authorized}`);
      },
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    base = [
      kubeService('secure', [{ name: 'http', port: 8443 }], { app: 'secure' }),
      workloadEntry('secure-1', { address: '127.0.0.1', labels: { app: 'secure' }, ports: { http: port } }),
    ];
    mesh = await startMesh(base);
    proxy = await startTestProxy(mesh, { name: 'client', address: '127.0.0.1' });
  });

  after(async () => {
    await proxy?.close();
    await mesh?.close();
    server?.closeAllConnections();
    server?.close();
    if (pki) fs.rmSync(pki.dir, { recursive: true, force: true });
  });

  async function configure(tls: Record<string, unknown>): Promise<void> {
    mesh.publish([...base, destinationRule('secure', { host: 'secure', trafficPolicy: { tls: tls as never } })]);
    await mesh.converged();
  }

  it('SIMPLE: verifies the server against the CA and the subject alt names, sends SNI', async () => {
    await configure({ mode: 'SIMPLE', caCertificates: pki.ca, sni: 'secure.test', subjectAltNames: ['secure.test'] });
    const r = await proxy.request('secure:8443', '/hello');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'tls ok /hello authorized=false');
    assert.equal(seen.at(-1)?.sni, 'secure.test');
  });

  it('refuses a server whose certificate does not carry the expected name (503 UF)', async () => {
    await configure({ mode: 'SIMPLE', caCertificates: pki.ca, sni: 'secure.test', subjectAltNames: ['other.test'] });
    const r = await proxy.request('secure:8443', '/');
    assert.equal(r.status, 503);
    assert.match(r.body, /^upstream connect error or disconnect\/reset before headers\. reset reason: connection failure/);
    assert.ok(proxy.records.at(-1)?.flags.includes('UF'));
  });

  it('MUTUAL: presents the client certificate', async () => {
    await configure({ mode: 'MUTUAL', caCertificates: pki.ca, clientCertificate: pki.clientCert, privateKey: pki.clientKey, sni: 'secure.test' });
    const r = await proxy.request('secure:8443', '/mutual');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'tls ok /mutual authorized=true');
    assert.equal(seen.at(-1)?.clientCert, 'client');
  });
});
