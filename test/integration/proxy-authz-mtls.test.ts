// Authorization on mesh identities: a Weft sidecar terminating Istio mTLS (certificates from a
// test CA, SDS secrets served locally) enforces AuthorizationPolicy `source.principals` and
// `source.namespaces` as RBAC `authenticated.principal_name` on HTTP, and network RBAC on a TCP
// chain, against the SPIFFE id of the verified client certificate.
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { SecretStore } from '../../src/proxy/identity/secret-store';
import { startProxy, type RunningProxy } from '../../src/proxy/proxy';
import type { Json } from '../../src/proxy/config/validation';
import { createTestCa, type IssuedCertificate, type TestCa } from '../support/test-ca';
import { httpConnectionManager, istioDownstreamTls, listener, startStaticAds, staticCluster, tcpProxy, testLogger, type StaticAds } from '../support/static-ads';
import { sidecarNodeId, startBackend, type Backend } from './proxy-harness';
import { httpRbac, TYPE } from './proxy-authz-harness';

const CLIENT_ID = 'spiffe://cluster.local/ns/default/sa/client';
const PORTS = { http: 15106, tcp: 15107 };

/** HTTP/1.1 GET over mTLS straight to the listener: the status line, or the failure. */
function mtlsGet(port: number, ca: string, cert: IssuedCertificate): Promise<{ status?: number; body?: string; error?: string }> {
  return new Promise((resolve) => {
    let data = '';
    const socket = tls.connect({ host: '127.0.0.1', port, ca, cert: cert.certPem, key: cert.keyPem, ALPNProtocols: ['http/1.1'], checkServerIdentity: () => undefined });
    socket.on('secureConnect', () => socket.write('GET /reviews HTTP/1.1\r\nhost: server\r\nconnection: close\r\n\r\n'));
    socket.on('data', (d: Buffer) => (data += d.toString()));
    socket.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    socket.on('close', () => {
      if (!data) return resolve({ error: 'closed without a response' });
      resolve({ status: Number(data.split(' ')[1]), body: data.slice(data.indexOf('\r\n\r\n') + 4) });
    });
  });
}

/** Writes `text` over mTLS and collects what comes back until the connection closes. */
function mtlsEcho(port: number, ca: string, cert: IssuedCertificate, text: string): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    const socket = tls.connect({ host: '127.0.0.1', port, ca, cert: cert.certPem, key: cert.keyPem, ALPNProtocols: ['istio'], checkServerIdentity: () => undefined });
    socket.on('secureConnect', () => socket.write(text));
    socket.on('data', (d: Buffer) => {
      data += d.toString();
      if (data === text) socket.end();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(data));
  });
}

describe('authorization on peer identities (mTLS)', () => {
  let ca: TestCa;
  let ads: StaticAds;
  let backend: Backend;
  let echo: net.Server;
  let proxy: RunningProxy;
  let client: IssuedCertificate;
  let stranger: IssuedCertificate;
  let otherNamespace: IssuedCertificate;

  before(async () => {
    ca = await createTestCa();
    const serverCert = await ca.issueWorkload('server');
    client = await ca.issueWorkload('client');
    stranger = await ca.issueWorkload('stranger');
    otherNamespace = await ca.issueWorkload('client', 'prod');
    backend = await startBackend('server');
    echo = net.createServer((s) => {
      s.on('error', () => undefined);
      s.pipe(s);
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    ads = await startStaticAds();
    const principals: Json[] = [
      // source.principals: ["cluster.local/ns/default/sa/client"]
      { authenticated: { principal_name: { exact: CLIENT_ID } } },
    ];
    const hcm = httpConnectionManager('inbound_0.0.0.0_9080', 'inbound|9080||');
    hcm.typed_config.http_filters = [
      httpRbac({
        rules: {
          policies: {
            'ns[default]-policy[from-client]-rule[0]': { permissions: [{ any: true }], principals },
            // source.namespaces: ["prod"], on /reviews only.
            'ns[default]-policy[from-prod]-rule[0]': {
              permissions: [{ url_path: { path: { prefix: '/reviews' } } }],
              principals: [{ authenticated: { principal_name: { safe_regex: { regex: '.*/ns/prod/.*' } } } }],
            },
          },
        },
      }),
      ...hcm.typed_config.http_filters,
    ];
    const networkRbac = {
      name: 'envoy.filters.network.rbac',
      typed_config: { '@type': TYPE.networkRbac, stat_prefix: 'tcp.', rules: { policies: { 'ns[default]-policy[from-client]-rule[0]': { permissions: [{ any: true }], principals } } } },
    };
    const secrets = new SecretStore();
    secrets.setTrustedCa('ROOTCA', ca.rootPem);
    secrets.setCertificate('default', serverCert.certPem, serverCert.keyPem);
    await ads.set('server', {
      clusters: [staticCluster('inbound|9080||', '127.0.0.1', backend.port), staticCluster('inbound|9000||', '127.0.0.1', (echo.address() as net.AddressInfo).port)],
      listeners: [
        listener('http-authz', PORTS.http, [{ filter_chain_match: { transport_protocol: 'tls' }, transport_socket: istioDownstreamTls(), filters: [hcm] }]),
        listener('tcp-authz', PORTS.tcp, [
          { filter_chain_match: { transport_protocol: 'tls' }, transport_socket: istioDownstreamTls({ alpn: ['istio'] }), filters: [networkRbac, tcpProxy('inbound|9000||', 'inbound|9000||')] },
        ]),
      ],
    });
    proxy = await startProxy({
      xdsAddress: ads.address,
      node: { id: sidecarNodeId('server', '127.0.0.1'), metadata: { NAMESPACE: 'default', WORKLOAD_NAME: 'server', INSTANCE_IPS: '127.0.0.1' } },
      bindAddress: '127.0.0.1',
      ports: { outbound: 0, inbound: 0, admin: 0, stats: 0, health: 0 },
      listenerPorts: { [PORTS.http]: 0, [PORTS.tcp]: 0 },
      secrets,
      logger: testLogger(),
      xdsBackoff: { initialMs: 50, maxMs: 500 },
      initialFetchTimeoutMs: 3000,
    });
    await proxy.ready;
    const nacks = Object.entries(proxy.xdsStatus()).filter(([, s]) => s.lastError);
    assert.deepEqual(nacks, []);
  });

  after(async () => {
    await proxy?.close(200);
    await ads?.close();
    await backend?.close();
    await new Promise<void>((r) => (echo ? echo.close(() => r()) : r()));
  });

  it('HTTP: source.principals admits the client SPIFFE id, denies another service account', async () => {
    const port = proxy.listenerPort('http-authz')!;
    const ok = await mtlsGet(port, ca.rootPem, client);
    assert.equal(ok.status, 200, ok.error ?? ok.body);
    const denied = await mtlsGet(port, ca.rootPem, stranger);
    assert.equal(denied.status, 403);
    assert.equal(denied.body, 'RBAC: access denied');
  });

  it('HTTP: source.namespaces matches the namespace inside the SPIFFE id', async () => {
    const ok = await mtlsGet(proxy.listenerPort('http-authz')!, ca.rootPem, otherNamespace);
    assert.equal(ok.status, 200, ok.error ?? ok.body);
  });

  it('TCP: network RBAC admits the client identity and closes the connection of another', async () => {
    const port = proxy.listenerPort('tcp-authz')!;
    assert.equal(await mtlsEcho(port, ca.rootPem, client, 'ping'), 'ping');
    assert.equal(await mtlsEcho(port, ca.rootPem, stranger, 'ping'), '', 'closed without a byte');
  });
});
