// Mutual TLS between Weft sidecars, with certificates from a test CA and Istio-shaped config
// written by hand: the client sidecar picks mTLS per endpoint (transport_socket_matches on EDS
// metadata), the server sidecar terminates it on its inbound chain and sees the client's SPIFFE
// id. HTTP/1.1, h2 and tcp_proxy over TLS; refusals (plaintext on a STRICT chain, no client
// certificate, a certificate from another CA, a server with the wrong SAN); rotation without
// dropping connections; NACK and readiness rules for SDS; the secrets in the admin API and CLI.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { Client, Pool, request } from 'undici';
import { runProxyConfig } from '../../src/cli/proxy-config';
import { SecretStore } from '../../src/proxy/identity/secret-store';
import { startProxy, type ProxyOptions, type RunningProxy } from '../../src/proxy/proxy';
import type { RequestRecord } from '../../src/proxy/access-log';
import { createTestCa, type IssuedCertificate, type TestCa } from '../support/test-ca';
import {
  edsCluster,
  httpConnectionManager,
  istioDownstreamTls,
  istioTransportSocketMatches,
  listener,
  loadAssignment,
  startStaticAds,
  staticCluster,
  tcpProxy,
  testLogger,
  type ProxyResources,
  type StaticAds,
} from '../support/static-ads';
import { waitFor } from '../support/wait-for';
import { sidecarNodeId, startBackend, type Backend, type BackendEcho } from './proxy-harness';

const CLIENT_ID = 'spiffe://cluster.local/ns/default/sa/client';
const SERVER_ID = 'spiffe://cluster.local/ns/default/sa/server';
const SNI = 'outbound_.9080_._.server.default.svc.cluster.local';
/** Listener ports the tests use; each is bound on a free port instead. */
const PORTS = { outbound: 15001, tcpOut: 15002, inbound: 15006, strict: 15007, tcpIn: 15008, https: 15443 };

interface Sidecar {
  proxy: RunningProxy;
  records: RequestRecord[];
  port(listener: keyof typeof PORTS): number;
  admin(path: string): Promise<{ status: number; body: string }>;
  close(): Promise<void>;
}

async function startSidecar(ads: StaticAds, name: string, secrets: SecretStore | undefined, extra: Partial<ProxyOptions> = {}): Promise<Sidecar> {
  const records: RequestRecord[] = [];
  const proxy = await startProxy({
    xdsAddress: ads.address,
    node: { id: sidecarNodeId(name, '127.0.0.1'), metadata: { NAMESPACE: 'default', WORKLOAD_NAME: name, INSTANCE_IPS: '127.0.0.1' } },
    bindAddress: '127.0.0.1',
    ports: { outbound: 0, inbound: 0, admin: 0, stats: 0, health: 0 },
    listenerPorts: { [PORTS.tcpOut]: 0, [PORTS.strict]: 0, [PORTS.tcpIn]: 0, [PORTS.https]: 0 },
    secrets,
    logger: testLogger(),
    onRequest: (r) => records.push(r),
    xdsBackoff: { initialMs: 50, maxMs: 500 },
    initialFetchTimeoutMs: 3000,
    ...extra,
  });
  const names: Record<keyof typeof PORTS, string> = { outbound: 'virtualOutbound', tcpOut: 'tcp-out', inbound: 'virtualInbound', strict: 'strict', tcpIn: 'tcp-in', https: 'gateway-https' };
  return {
    proxy,
    records,
    port: (l) => {
      const p = proxy.listenerPort(names[l]);
      if (!p) throw new Error(`${name} has no listener ${names[l]}: ${JSON.stringify(proxy.listeners())}`);
      return p;
    },
    admin: async (path) => {
      const r = await request(`http://${proxy.adminAddress}:${proxy.ports.admin}${path}`);
      return { status: r.statusCode, body: await r.body.text() };
    },
    close: () => proxy.close(200),
  };
}

function storeWith(ca: TestCa, cert: IssuedCertificate): SecretStore {
  const store = new SecretStore();
  store.setTrustedCa('ROOTCA', ca.rootPem);
  store.setCertificate('default', cert.certPem, cert.keyPem);
  return store;
}

async function tcpEcho(): Promise<{ port: number; close(): void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.on('data', (d) => s.write(d));
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

/** One TLS connection straight to a listener: an HTTP/1.1 GET, or the reason it failed. */
function tlsExchange(port: number, o: { ca: string; cert?: IssuedCertificate }): Promise<{ error?: string; response?: string; serverSerial?: string }> {
  return new Promise((resolve) => {
    let data = '';
    let serverSerial: string | undefined;
    let error: string | undefined;
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      ca: o.ca,
      cert: o.cert?.certPem,
      key: o.cert?.keyPem,
      ALPNProtocols: ['http/1.1'],
      // Mesh certificates name a SPIFFE id, not a host.
      checkServerIdentity: () => undefined,
    });
    socket.on('secureConnect', () => {
      serverSerial = socket.getPeerCertificate().serialNumber?.toUpperCase();
      socket.write('GET /direct HTTP/1.1\r\nhost: server\r\nconnection: close\r\n\r\n');
    });
    socket.on('data', (d: Buffer) => (data += d.toString()));
    socket.on('error', (err: Error & { code?: string }) => (error ??= err.code ?? err.message));
    socket.on('close', () => resolve({ error: data ? undefined : error ?? 'closed without a response', response: data || undefined, serverSerial }));
  });
}

function echoOf(body: string): BackendEcho {
  return JSON.parse(body) as BackendEcho;
}

describe('mutual TLS between sidecars', () => {
  let ca: TestCa;
  let otherCa: TestCa;
  let serverCert: IssuedCertificate;
  let clientCert: IssuedCertificate;
  let ads: StaticAds;
  let backend: Backend;
  let echo: { port: number; close(): void };
  let serverSecrets: SecretStore;
  let server: Sidecar;
  let client: Sidecar;
  let clientPool: Pool;
  const others: Sidecar[] = [];

  const inboundHeaders = { 'x-peer-uri-san': '%DOWNSTREAM_PEER_URI_SAN%', 'x-tls-version': '%DOWNSTREAM_TLS_VERSION%' };
  const serverResources = (): ProxyResources => {
    const httpChain = (tlsChain: boolean) => ({
      filter_chain_match: { transport_protocol: tlsChain ? 'tls' : 'raw_buffer' },
      ...(tlsChain ? { transport_socket: istioDownstreamTls() } : {}),
      filters: [httpConnectionManager('inbound_0.0.0.0_9080', 'inbound|9080||', { requestHeadersToAdd: inboundHeaders })],
    });
    return {
      clusters: [staticCluster('inbound|9080||', '127.0.0.1', backend.port), staticCluster('inbound|9000||', '127.0.0.1', echo.port)],
      listeners: [
        // PERMISSIVE: mTLS and plaintext side by side, told apart by the tls_inspector.
        listener('virtualInbound', PORTS.inbound, [httpChain(true), httpChain(false)]),
        // STRICT: mTLS only.
        listener('strict', PORTS.strict, [httpChain(true)]),
        listener('tcp-in', PORTS.tcpIn, [{ filter_chain_match: { transport_protocol: 'tls' }, transport_socket: istioDownstreamTls({ alpn: ['istio-peer-exchange', 'istio'] }), filters: [tcpProxy('inbound|9000||', 'inbound|9000||')] }]),
      ],
    };
  };

  const clientResources = (): ProxyResources => {
    const serverInbound = { address: '127.0.0.1', port: server.port('strict'), tlsMode: 'istio' };
    const matches = istioTransportSocketMatches(SNI, [SERVER_ID]);
    return {
      clusters: [
        edsCluster('outbound|9080||server', { transport_socket_matches: matches }),
        edsCluster('outbound|9080||server-h2', { transport_socket_matches: matches, http2_protocol_options: {} }),
        edsCluster('outbound|9080||mixed', { transport_socket_matches: matches }),
        edsCluster('outbound|9080||wrong-san', { transport_socket_matches: istioTransportSocketMatches(SNI, ['spiffe://cluster.local/ns/default/sa/impostor']) }),
        edsCluster('outbound|9000||tcp', { transport_socket_matches: istioTransportSocketMatches(SNI, [SERVER_ID]) }),
      ],
      endpoints: [
        loadAssignment('outbound|9080||server', [serverInbound]),
        loadAssignment('outbound|9080||server-h2', [serverInbound]),
        // One endpoint with a sidecar (mTLS), one without (the backend itself, plaintext).
        loadAssignment('outbound|9080||mixed', [serverInbound, { address: '127.0.0.1', port: backend.port }]),
        loadAssignment('outbound|9080||wrong-san', [serverInbound]),
        loadAssignment('outbound|9000||tcp', [{ address: '127.0.0.1', port: server.port('tcpIn'), tlsMode: 'istio' }]),
      ],
      listeners: [
        listener('virtualOutbound', PORTS.outbound, [
          {
            filters: [
              httpConnectionManager(
                'outbound_0.0.0.0_9080',
                { server: 'outbound|9080||server', 'server-h2': 'outbound|9080||server-h2', mixed: 'outbound|9080||mixed', 'wrong-san': 'outbound|9080||wrong-san' },
                { retry: { retry_on: 'connect-failure', num_retries: 2 } },
              ),
            ],
          },
        ]),
        listener('tcp-out', PORTS.tcpOut, [{ filters: [tcpProxy('outbound|9000||tcp', 'outbound|9000||tcp')] }], { inspectors: false }),
      ],
    };
  };

  const get = async (host: string, path = '/') => {
    const r = await clientPool.request({ method: 'GET', path, headers: { host } });
    return { status: r.statusCode, body: await r.body.text() };
  };

  before(async () => {
    ca = await createTestCa('mesh-root');
    otherCa = await createTestCa('another-root');
    serverCert = await ca.issueWorkload('server');
    clientCert = await ca.issueWorkload('client');
    backend = await startBackend('server-app');
    echo = await tcpEcho();
    ads = await startStaticAds();
    await ads.set('server', serverResources());
    serverSecrets = storeWith(ca, serverCert);
    server = await startSidecar(ads, 'server', serverSecrets);
    await server.proxy.ready;
    await ads.set('client', clientResources());
    client = await startSidecar(ads, 'client', storeWith(ca, clientCert));
    await client.proxy.ready;
    clientPool = new Pool(`http://127.0.0.1:${client.port('outbound')}`, { connections: 8 });
  });

  after(async () => {
    await clientPool?.close();
    for (const s of [client, server, ...others]) await s?.close();
    await ads?.close();
    await backend?.close();
    echo?.close();
  });

  it('carries HTTP/1.1 over mutual TLS, and the server sidecar sees the client SPIFFE id', async () => {
    const r = await get('server', '/hello');
    assert.equal(r.status, 200, r.body);
    const seen = echoOf(r.body);
    assert.equal(seen.path, '/hello');
    assert.equal(seen.headers['x-peer-uri-san'], CLIENT_ID);
    assert.equal(seen.headers['x-tls-version'], 'TLSv1.3');
    assert.equal(server.records.at(-1)?.listener, 'strict');
  });

  it('carries HTTP/2 over mutual TLS (ALPN h2) to an http2 cluster', async () => {
    const before = server.records.length;
    const r = await get('server-h2', '/h2');
    assert.equal(r.status, 200, r.body);
    assert.equal(echoOf(r.body).headers['x-peer-uri-san'], CLIENT_ID);
    const record = server.records.slice(before).find((x) => x.path === '/h2');
    assert.equal(record?.protocol, 'HTTP/2');
  });

  it('carries tcp_proxy over mutual TLS', async () => {
    const socket = net.connect(client.port('tcpOut'), '127.0.0.1');
    const received: Buffer[] = [];
    socket.on('data', (d) => received.push(d));
    socket.write('ping over mtls');
    await waitFor(() => Buffer.concat(received).toString() === 'ping over mtls', { timeoutMs: 5000, message: 'echo through two sidecars' });
    socket.end();
    await waitFor(() => client.records.some((r) => r.protocol === 'TCP' && r.upstreamCluster === 'outbound|9000||tcp'));
  });

  it('chooses the transport per endpoint: mTLS to the endpoint with a sidecar, plaintext to the one without', async () => {
    const viaSidecar: string[] = [];
    const direct: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await get('mixed', `/mixed/${i}`);
      assert.equal(r.status, 200, r.body);
      const seen = echoOf(r.body);
      (seen.headers['x-peer-uri-san'] ? viaSidecar : direct).push(seen.path);
    }
    assert.ok(viaSidecar.length > 0 && direct.length > 0, `round robin over both endpoints: ${viaSidecar.length} via the sidecar, ${direct.length} direct`);
    for (const p of viaSidecar) assert.equal(server.records.find((r) => r.path === p)?.listener, 'strict', 'the sidecar endpoint was reached over TLS (its chain is mTLS-only)');
    // A plaintext request reaching the server's STRICT port would have been refused, so none of
    // the plaintext endpoint's connections went there; none of the TLS ones reached the backend
    // directly either (its requests would lack the peer header).
    assert.ok(direct.every((p) => !server.records.some((r) => r.path === p)));
  });

  it('refuses a plaintext client on an mTLS-only chain', async () => {
    await assert.rejects(request(`http://127.0.0.1:${server.port('strict')}/plain`, { headers: { host: 'server' } }).then((r) => r.body.text()));
    // The PERMISSIVE listener takes the same request in plaintext.
    const r = await request(`http://127.0.0.1:${server.port('inbound')}/plain`, { headers: { host: 'server' } });
    assert.equal(r.statusCode, 200);
    // No peer: the formatter is empty and Envoy then adds no header.
    assert.equal(echoOf(await r.body.text()).headers['x-peer-uri-san'], undefined);
  });

  it('fails the handshake of a TLS client without a certificate', async () => {
    const r = await tlsExchange(server.port('strict'), { ca: ca.rootPem });
    assert.equal(r.response, undefined);
    assert.match(r.error ?? '', /CERTIFICATE_REQUIRED|ECONNRESET|closed/);
  });

  it('refuses a TLS client whose certificate comes from another CA', async () => {
    const stranger = await otherCa.issueWorkload('client');
    const r = await tlsExchange(server.port('strict'), { ca: ca.rootPem, cert: stranger });
    assert.equal(r.response, undefined, 'no HTTP response over the refused connection');
    const good = await tlsExchange(server.port('strict'), { ca: ca.rootPem, cert: clientCert });
    assert.match(good.response ?? '', /^HTTP\/1\.1 200/);
    const stats = await server.admin('/stats?filter=ssl');
    assert.match(stats.body, /listener\.strict\.ssl\.fail_verify_no_cert: [1-9]/);
  });

  it('treats a server certificate with the wrong SAN as a connect failure: 503 UF, counted, retried', async () => {
    const before = client.records.length;
    const r = await get('wrong-san', '/impostor');
    assert.equal(r.status, 503);
    assert.match(r.body, /^upstream connect error or disconnect\/reset before headers\. (retried and the latest )?reset reason: connection failure, transport failure reason: TLS_error: ERR_TLS_CERT_ALTNAME_INVALID: upstream certificate SANs \[URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/server\] match none/);
    const record = client.records.slice(before).find((x) => x.path === '/impostor')!;
    assert.match(record.details, /^upstream_reset_before_response_started\{connection_failure\|TLS_error:_ERR_TLS_CERT_ALTNAME_INVALID:_\S+\}$/);
    assert.ok(record.flags.includes('UF'), record.flags.join(','));
    assert.ok(record.flags.includes('URX'), 'retried per the retry policy');
    assert.equal(record.attempts, 3);
    const stats = await client.admin('/stats?filter=wrong-san');
    assert.match(stats.body, /cluster\.outbound\|9080\|\|wrong-san\.upstream_cx_connect_fail: 3/);
  });

  it('rotates the certificate for new handshakes without dropping open connections', async () => {
    const handshakes = async () => Number(/listener\.strict\.ssl\.handshake: (\d+)/.exec((await server.admin('/stats?filter=ssl')).body)?.[1] ?? 0);
    const keep = new Client(`https://127.0.0.1:${server.port('strict')}`, {
      connect: { ca: ca.rootPem, cert: clientCert.certPem, key: clientCert.keyPem, checkServerIdentity: () => undefined },
    });
    try {
      const h0 = await handshakes();
      const first = await keep.request({ method: 'GET', path: '/kept/1', headers: { host: 'server' } });
      assert.equal(first.statusCode, 200);
      await first.body.text();
      assert.equal((await tlsExchange(server.port('strict'), { ca: ca.rootPem, cert: clientCert })).serverSerial, serverCert.serialNumber);

      const rotated = await ca.issueWorkload('server');
      serverSecrets.setCertificate('default', rotated.certPem, rotated.keyPem);

      const second = await keep.request({ method: 'GET', path: '/kept/2', headers: { host: 'server' } });
      assert.equal(second.statusCode, 200, 'the open connection keeps working');
      await second.body.text();
      assert.equal((await tlsExchange(server.port('strict'), { ca: ca.rootPem, cert: clientCert })).serverSerial, rotated.serialNumber, 'new handshakes use the new certificate');
      assert.equal(await handshakes(), h0 + 3, 'the kept connection was not re-established');
      // The client sidecar's pooled connection carries on too, and new ones verify the new certificate.
      assert.equal((await get('server', '/after-rotation')).status, 200);
    } finally {
      await keep.close();
    }
  });

  it('exposes the secrets in /config_dump (key redacted), /certs and `weft proxy-config secret`', async () => {
    const dump = await server.admin('/config_dump');
    assert.equal(dump.status, 200);
    assert.doesNotMatch(dump.body, /PRIVATE KEY/);
    const secretsDump = JSON.parse(dump.body).configs.find((c: { '@type': string }) => c['@type'].endsWith('SecretsConfigDump'));
    const byName = new Map<string, Record<string, any>>(secretsDump.dynamic_active_secrets.map((s: { name: string }) => [s.name, s])); // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.deepEqual([...byName.keys()].sort(), ['ROOTCA', 'default']);
    const current = serverSecrets.certificate('default')!;
    assert.equal(Buffer.from(byName.get('default')!.secret.tls_certificate.certificate_chain.inline_bytes, 'base64').toString(), current.certChainPem);
    assert.equal(byName.get('default')!.secret.tls_certificate.private_key.inline_string, '[redacted]');
    assert.equal(Buffer.from(byName.get('ROOTCA')!.secret.validation_context.trusted_ca.inline_bytes, 'base64').toString(), ca.rootPem);

    const certs = JSON.parse((await server.admin('/certs')).body);
    assert.equal(certs.certificates[0].cert_chain[0].serial_number, current.facts.serialNumber.toLowerCase());
    assert.deepEqual(certs.certificates[0].cert_chain[0].subject_alt_names, [{ uri: SERVER_ID }]);

    let out = '';
    const code = await runProxyConfig(['secret', '--admin', `${server.proxy.adminAddress}:${server.proxy.ports.admin}`], {
      out: (t) => (out += t),
      err: () => undefined,
      readStdin: async () => '',
      env: {},
    });
    assert.equal(code, 0);
    const [header, ...rows] = out.trim().split('\n');
    assert.match(header, /^RESOURCE NAME\s+TYPE\s+STATUS\s+VALID CERT\s+SERIAL NUMBER\s+NOT AFTER\s+NOT BEFORE\s+SPIFFE ID$/);
    assert.match(rows.find((r) => r.startsWith('default'))!, new RegExp(`^default\\s+Cert Chain\\s+ACTIVE\\s+true\\s+${current.facts.serialNumber.toLowerCase()}\\s+\\S+Z\\s+\\S+Z\\s+${SERVER_ID}$`));
    assert.match(rows.find((r) => r.startsWith('ROOTCA'))!, /^ROOTCA\s+CA\s+ACTIVE\s+true\s+[0-9a-f]+\s+\S+Z\s+\S+Z$/);
  });

  it('terminates a gateway\'s HTTPS with file certificates, chosen by SNI: SIMPLE and MUTUAL, HTTP/1.1 and h2', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-gateway-certs-'));
    try {
      const site = await ca.issue({ dns: ['bookinfo.example.com', 'mutual.example.com'] });
      const file = (name: string, text: string) => {
        fs.writeFileSync(path.join(dir, name), text);
        return { filename: path.join(dir, name) };
      };
      const certificates = [{ certificate_chain: file('tls.crt', site.certPem), private_key: file('tls.key', site.keyPem) }];
      const tlsContext = (mutual: boolean) => ({
        name: 'envoy.transport_sockets.tls',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
          ...(mutual ? { require_client_certificate: true } : {}),
          common_tls_context: {
            tls_certificates: certificates,
            alpn_protocols: ['h2', 'http/1.1'],
            ...(mutual ? { validation_context: { trusted_ca: file('ca.crt', ca.rootPem) } } : {}),
          },
        },
      });
      const chain = (host: string, mutual: boolean) => ({
        filter_chain_match: { server_names: [host] },
        transport_socket: tlsContext(mutual),
        filters: [httpConnectionManager(`https.${host}`, 'backend', { requestHeadersToAdd: inboundHeaders })],
      });
      await ads.set('gateway', {
        clusters: [staticCluster('backend', '127.0.0.1', backend.port)],
        listeners: [listener('gateway-https', PORTS.https, [chain('bookinfo.example.com', false), chain('mutual.example.com', true)])],
      });
      // No identity at all: file certificates need none.
      const gateway = await startSidecar(ads, 'gateway', undefined);
      others.push(gateway);
      await gateway.proxy.ready;
      const port = gateway.port('https');

      const simple = new Client(`https://127.0.0.1:${port}`, { connect: { ca: ca.rootPem, servername: 'bookinfo.example.com' } });
      const r = await simple.request({ method: 'GET', path: '/simple', headers: { host: 'bookinfo.example.com' } });
      assert.equal(r.statusCode, 200);
      assert.equal(echoOf(await r.body.text()).headers['x-tls-version'], 'TLSv1.3');
      await simple.close();

      const h2 = http2.connect(`https://127.0.0.1:${port}`, { ca: ca.rootPem, servername: 'bookinfo.example.com' });
      const status = await new Promise<number>((resolve, reject) => {
        const stream = h2.request({ ':path': '/h2-gateway', ':authority': 'bookinfo.example.com' });
        stream.on('response', (headers) => resolve(Number(headers[':status'])));
        stream.on('error', reject);
        stream.resume();
      });
      h2.close();
      assert.equal(status, 200);
      assert.equal(gateway.records.find((x) => x.path === '/h2-gateway')?.protocol, 'HTTP/2');

      const mutualOk = new Client(`https://127.0.0.1:${port}`, { connect: { ca: ca.rootPem, servername: 'mutual.example.com', cert: clientCert.certPem, key: clientCert.keyPem } });
      const m = await mutualOk.request({ method: 'GET', path: '/mutual', headers: { host: 'mutual.example.com' } });
      assert.equal(m.statusCode, 200);
      assert.equal(echoOf(await m.body.text()).headers['x-peer-uri-san'], CLIENT_ID);
      await mutualOk.close();

      const mutualNoCert = new Client(`https://127.0.0.1:${port}`, { connect: { ca: ca.rootPem, servername: 'mutual.example.com' } });
      await assert.rejects(mutualNoCert.request({ method: 'GET', path: '/mutual', headers: { host: 'mutual.example.com' } }).then((x) => x.body.text()));
      await mutualNoCert.close();

      const unknownSni = new Client(`https://127.0.0.1:${port}`, { connect: { ca: ca.rootPem, servername: 'other.example.com', checkServerIdentity: () => undefined } });
      await assert.rejects(unknownSni.request({ method: 'GET', path: '/', headers: { host: 'other.example.com' } }).then((x) => x.body.text()), 'no chain for that name');
      await unknownSni.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is not ready until the secrets its config names are there', async () => {
    const pending = new SecretStore();
    await ads.set('waiting', serverResources());
    const waiting = await startSidecar(ads, 'waiting', pending);
    others.push(waiting);
    await waitFor(() => waiting.proxy.xdsStatus().LDS?.received && waiting.proxy.xdsStatus().CDS?.received, { message: 'config received' });
    assert.equal(waiting.proxy.state(), 'PRE_INITIALIZING');
    const health = await request(`http://127.0.0.1:${waiting.proxy.ports.health}/healthz/ready`);
    assert.equal(health.statusCode, 503);
    await health.body.text();
    pending.setTrustedCa('ROOTCA', ca.rootPem);
    pending.setCertificate('default', serverCert.certPem, serverCert.keyPem);
    await waiting.proxy.ready;
    assert.equal(waiting.proxy.state(), 'LIVE');
  });

  it('NACKs config naming SDS secrets when the proxy has no identity, saying why', async () => {
    await ads.set('no-identity', { ...serverResources(), clusters: [...serverResources().clusters!, edsCluster('outbound|9080||server', { transport_socket_matches: istioTransportSocketMatches(SNI, [SERVER_ID]) })] });
    const plain = await startSidecar(ads, 'no-identity', undefined);
    others.push(plain);
    await plain.proxy.ready;
    // The NACK goes out once the handlers return; readiness can come first.
    const status = await waitFor(() => {
      const s = plain.proxy.xdsStatus();
      return s.CDS.lastError && s.LDS?.lastError ? s : undefined;
    });
    assert.match(status.CDS.lastError ?? '', /Cluster "outbound\|9080\|\|server": transport_socket_matches\[0\]\.transport_socket\.typed_config\.common_tls_context\.tls_certificate_sds_secret_configs\[0\]: SDS secret "default" comes from the proxy's identity agent, which is disabled/);
    assert.match(status.LDS.lastError ?? '', /Listener "virtualInbound": filter_chains\[0\]\.transport_socket\.typed_config\.common_tls_context\.tls_certificate_sds_secret_configs\[0\]: SDS secret "default"/);
  });
});
