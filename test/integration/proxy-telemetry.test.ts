// Istio's standard metrics and access logs between real Weft sidecars configured by the real
// translator over ADS: a client sidecar calls a server sidecar (standalone mode, Istio mTLS with
// certificates from a test CA) over HTTP and over TCP (a CONNECT tunnel through the client's
// outbound listener), a gateway calls it too, and a client with telemetry off. Each side's
// Prometheus text on its 15090 port is parsed and the series of both reporters checked label by
// label; metadata exchange must fill both sides and never reach the applications or a
// non-mesh client; every access-log line must parse as JSON with Envoy's fields.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { createSnapshot, DEFAULT_MESH_CONFIG } from '../../src/model/snapshot';
import { SecretStore } from '../../src/proxy/identity/secret-store';
import { startProxy, type ProxyOptions, type RunningProxy } from '../../src/proxy/proxy';
import { startAdsHarness, type AdsHarness } from '../support/ads-harness';
import { findSamples, parsePrometheusText, sampleValue, type Exposition } from '../support/prometheus-text';
import { testLogger } from '../support/static-ads';
import { createTestCa, type TestCa } from '../support/test-ca';
import { waitFor } from '../support/wait-for';
import { parseResources } from '../unit/translate/load-fixture';
import { sendThrough, startBackend, type Backend, type BackendEcho } from './proxy-harness';

// Fixed service ports on addresses no other test uses: standalone sidecars bind the workload's
// real ports, and the client's EDS endpoints name them.
const SERVER_IP = '127.0.93.2';
const SERVER_APP_IP = '127.128.93.2';
const CLIENT_IP = '127.0.93.1';
const LEGACY_IP = '127.0.93.4';
const GATEWAY_IP = '127.0.93.3';
const HTTP_PORT = 19380;
const TCP_PORT = 19390;
const GRPC_PORT = 19391;
const GATEWAY_PORT = 19388;
const id = (sa: string) => `spiffe://cluster.local/ns/default/sa/${sa}`;

const MESH = `
apiVersion: v1
kind: Service
metadata: {name: server, namespace: default}
spec:
  selector: {app: server}
  ports: [{name: http, port: ${HTTP_PORT}}, {name: tcp-echo, port: ${TCP_PORT}}, {name: grpc, port: ${GRPC_PORT}}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: server-v1, namespace: default}
spec: {address: ${SERVER_IP}, labels: {app: server, version: v1}, serviceAccount: server-sa}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client, namespace: default}
spec: {address: ${CLIENT_IP}, labels: {app: client, version: v2}, serviceAccount: client-sa}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress, namespace: default}
spec:
  selector: {istio: telemetry-ingress}
  servers: [{port: {number: ${GATEWAY_PORT}, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: via-ingress, namespace: default}
spec:
  hosts: ["*"]
  gateways: [ingress]
  http: [{route: [{destination: {host: server, port: {number: ${HTTP_PORT}}}}]}]
`;

interface Node {
  proxy: RunningProxy;
  /** The parsed Prometheus text of the stats port (15090). */
  scrape(): Promise<Exposition>;
}

function nodeOf(proxy: RunningProxy, address: string): Node {
  return {
    proxy,
    scrape: async () => {
      const res = await request(`http://${address}:${proxy.ports.stats}/stats/prometheus`);
      assert.equal(res.statusCode, 200);
      return parsePrometheusText(await res.body.text());
    },
  };
}

/** Opens a CONNECT tunnel through an outbound listener; resolves with the socket once it is up. */
function connectTunnel(address: string, port: number, target: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, address, () => socket.write(`CONNECT ${target} HTTP/1.1\r\nhost: ${target}\r\n\r\n`));
    let head = '';
    const onData = (d: Buffer) => {
      head += d.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      if (!head.startsWith('HTTP/1.1 200')) return reject(new Error(`CONNECT refused: ${head}`));
      if (head.length > end + 4) socket.unshift(Buffer.from(head.slice(end + 4), 'latin1'));
      resolve(socket);
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

/** Writes `text` through the tunnel and reads its echo, then closes the connection. */
async function echoThrough(socket: net.Socket, text: string): Promise<string> {
  let got = '';
  await new Promise<void>((resolve, reject) => {
    socket.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.length >= text.length) resolve();
    });
    socket.once('error', reject);
    socket.write(text);
  });
  await new Promise<void>((resolve) => {
    socket.once('close', () => resolve());
    socket.end();
  });
  return got;
}

describe('Istio standard metrics, metadata exchange and access logs', () => {
  let ca: TestCa;
  let ads: AdsHarness;
  let app: Backend;
  let echo: net.Server;
  let grpcApp: http2.Http2Server;
  let logDir: string;
  let accessLogFile: string;
  let server: Node;
  let client: Node;
  let legacy: Node;
  let ingress: Node;
  const proxies: RunningProxy[] = [];

  async function identity(serviceAccount: string): Promise<SecretStore> {
    const cert = await ca.issueWorkload(serviceAccount);
    const store = new SecretStore();
    store.setTrustedCa('ROOTCA', ca.rootPem);
    store.setCertificate('default', cert.certPem, cert.keyPem);
    return store;
  }

  async function sidecar(o: { kind?: 'sidecar' | 'router'; name: string; address: string; labels: Record<string, string>; serviceAccount: string; extra?: Partial<ProxyOptions> }): Promise<Node> {
    const proxy = await startProxy({
      xdsAddress: ads.address,
      node: {
        id: `${o.kind ?? 'sidecar'}~${o.address}~${o.name}.default~default.svc.cluster.local`,
        metadata: { NAMESPACE: 'default', WORKLOAD_NAME: o.name, LABELS: o.labels, INSTANCE_IPS: o.address, INTERCEPTION_MODE: 'NONE', WEFT_APP_ADDRESS: SERVER_APP_IP },
      },
      bindAddress: o.address,
      ports: { outbound: 0, inbound: 0, admin: 0, stats: 0, health: 0 },
      listenerPorts: { [GATEWAY_PORT]: 0 },
      secrets: await identity(o.serviceAccount),
      logger: testLogger(),
      xdsBackoff: { initialMs: 50, maxMs: 500 },
      initialFetchTimeoutMs: 3000,
      ...o.extra,
    });
    proxies.push(proxy);
    await proxy.ready;
    const nacks = Object.entries(proxy.xdsStatus()).filter(([, s]) => s.lastError);
    assert.deepEqual(nacks, [], `${o.name} refused its config`);
    return nodeOf(proxy, o.address);
  }

  const outbound = (n: Node) => n.proxy.listenerPort('virtualOutbound')!;

  before(async () => {
    ca = await createTestCa('weft-telemetry-test');
    logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-telemetry-'));
    accessLogFile = path.join(logDir, 'access.log');
    const snapshot = createSnapshot({
      sequence: 1,
      reason: 'test',
      resources: parseResources(MESH),
      meshConfig: { ...DEFAULT_MESH_CONFIG, accessLogFile, accessLogEncoding: 'JSON' },
    });
    ads = await startAdsHarness({ initial: snapshot, debounceAfterMs: 10, debounceMaxMs: 50 });
    app = await startBackend('server-app', SERVER_APP_IP);
    await new Promise<void>((resolve, reject) => {
      app.server.close();
      app.server.once('error', reject);
      app.server.listen(HTTP_PORT, SERVER_APP_IP, () => resolve());
    });
    echo = net.createServer((s) => {
      s.on('error', () => undefined);
      s.pipe(s);
    });
    await new Promise<void>((resolve) => echo.listen(TCP_PORT, SERVER_APP_IP, resolve));
    // A gRPC server that answers every call NOT_FOUND (5) in its trailers.
    grpcApp = http2.createServer();
    grpcApp.on('stream', (stream) => {
      stream.on('error', () => undefined);
      stream.resume();
      stream.on('end', () => {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '5', 'grpc-message': 'no such thing' }));
        stream.end();
      });
    });
    await new Promise<void>((resolve) => grpcApp.listen(GRPC_PORT, SERVER_APP_IP, resolve));

    server = await sidecar({ name: 'server-v1', address: SERVER_IP, labels: { app: 'server', version: 'v1' }, serviceAccount: 'server-sa' });
    client = await sidecar({ name: 'client', address: CLIENT_IP, labels: { app: 'client', version: 'v2' }, serviceAccount: 'client-sa' });
    legacy = await sidecar({ name: 'legacy', address: LEGACY_IP, labels: { app: 'legacy' }, serviceAccount: 'legacy-sa', extra: { telemetry: false } });
    ingress = await sidecar({ kind: 'router', name: 'ingress', address: GATEWAY_IP, labels: { istio: 'telemetry-ingress', app: 'ingress' }, serviceAccount: 'ingress-sa' });
  });

  after(async () => {
    await Promise.all(proxies.map((p) => p.close(200)));
    await ads?.close();
    await app?.close();
    echo?.close();
    grpcApp?.close();
    if (logDir) fs.rmSync(logDir, { recursive: true, force: true });
  });

  it('labels HTTP requests on both reporters from exchanged peer metadata and certificates', async () => {
    const host = `server:${HTTP_PORT}`;
    const { Pool } = await import('undici');
    const pool = new Pool(`http://${CLIENT_IP}:${outbound(client)}`, { connections: 2 });
    try {
      for (let i = 0; i < 5; i++) {
        const res = await sendThrough(pool, host, `/ok/${i}`, { headers: { 'user-agent': 'telemetry-test' } });
        assert.equal(res.status, 200);
        // Metadata exchange stays between the proxies: neither application sees it.
        assert.equal(res.headers['x-envoy-peer-metadata'], undefined);
        assert.equal(res.headers['x-envoy-peer-metadata-id'], undefined);
      }
      app.handle((_req, res) => {
        res.writeHead(404, { 'content-length': '9' });
        res.end('not found');
      });
      const missing = await sendThrough(pool, host, '/missing');
      assert.equal(missing.status, 404);
    } finally {
      app.handle((req, res, body) => {
        const text = JSON.stringify({ backend: 'server-app', method: req.method ?? '', path: req.url ?? '', headers: req.headers, body } satisfies BackendEcho);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      });
      await pool.close();
    }
    for (const r of app.received) {
      assert.equal(r.headers['x-envoy-peer-metadata'], undefined, 'the server application never sees peer metadata');
      assert.equal(r.headers['x-envoy-peer-metadata-id'], undefined);
    }

    const source = {
      reporter: 'source',
      source_workload: 'client',
      source_canonical_service: 'client',
      source_canonical_revision: 'v2',
      source_workload_namespace: 'default',
      source_principal: id('client-sa'),
      source_app: 'client',
      source_version: 'v2',
      source_cluster: 'Kubernetes',
      destination_workload: 'server-v1',
      destination_workload_namespace: 'default',
      destination_principal: id('server-sa'),
      // app and version come only from the server's response headers (EDS metadata has neither).
      destination_app: 'server',
      destination_version: 'v1',
      destination_service: 'server.default.svc.cluster.local',
      destination_canonical_service: 'server',
      destination_canonical_revision: 'v1',
      destination_service_name: 'server',
      destination_service_namespace: 'default',
      destination_cluster: 'Kubernetes',
      request_protocol: 'http',
      grpc_response_status: '',
      response_flags: '-',
      connection_security_policy: 'unknown',
    };
    const clientText = await waitFor(async () => {
      const t = await client.scrape();
      return findSamples(t, 'istio_requests_total', { response_code: '404' }).length ? t : undefined;
    });
    assert.deepEqual(findSamples(clientText, 'istio_requests_total', { response_code: '200' })[0]?.labels, { ...source, response_code: '200' });
    assert.equal(sampleValue(clientText, 'istio_requests_total', { ...source, response_code: '200' }), 5);
    assert.equal(sampleValue(clientText, 'istio_requests_total', { ...source, response_code: '404' }), 1);
    assert.equal(sampleValue(clientText, 'istio_request_duration_milliseconds_count', { ...source, response_code: '200' }), 5);
    assert.equal(sampleValue(clientText, 'istio_request_duration_milliseconds_bucket', { ...source, response_code: '200', le: '+Inf' }), 5);
    assert.equal(sampleValue(clientText, 'istio_response_bytes_sum', { ...source, response_code: '404' }), 9);
    assert.ok(sampleValue(clientText, 'istio_response_bytes_sum', { ...source, response_code: '200' }) > 5 * 100);

    const destination = {
      reporter: 'destination',
      source_workload: 'client',
      source_canonical_service: 'client',
      source_canonical_revision: 'v2',
      source_workload_namespace: 'default',
      source_principal: id('client-sa'),
      source_app: 'client',
      source_version: 'v2',
      source_cluster: 'Kubernetes',
      destination_workload: 'server-v1',
      destination_workload_namespace: 'default',
      destination_principal: id('server-sa'),
      destination_app: 'server',
      destination_version: 'v1',
      destination_service: 'server.default.svc.cluster.local',
      destination_canonical_service: 'server',
      destination_canonical_revision: 'v1',
      destination_service_name: 'server',
      destination_service_namespace: 'default',
      destination_cluster: 'Kubernetes',
      request_protocol: 'http',
      grpc_response_status: '',
      response_flags: '-',
      connection_security_policy: 'mutual_tls',
    };
    const serverText = await server.scrape();
    assert.deepEqual(findSamples(serverText, 'istio_requests_total', { reporter: 'destination', response_code: '200', source_workload: 'client' })[0]?.labels, {
      ...destination,
      response_code: '200',
    });
    assert.equal(sampleValue(serverText, 'istio_requests_total', { ...destination, response_code: '200' }), 5);
    assert.equal(sampleValue(serverText, 'istio_requests_total', { ...destination, response_code: '404' }), 1);
    assert.equal(sampleValue(serverText, 'istio_request_bytes_count', { ...destination, response_code: '200' }), 5);
    // The server reports only as destination, the client only as source.
    assert.deepEqual(new Set(findSamples(serverText, 'istio_requests_total').map((s) => s.labels.reporter)), new Set(['destination']));
    assert.deepEqual(new Set(findSamples(clientText, 'istio_requests_total').map((s) => s.labels.reporter)), new Set(['source']));
  });

  it('labels TCP connections on both reporters from the istio-peer-exchange preamble', async () => {
    const socket = await connectTunnel(CLIENT_IP, outbound(client), `server:${TCP_PORT}`);
    const message = 'ping over a mesh tunnel';
    assert.equal(await echoThrough(socket, message), message);

    const common = { request_protocol: 'tcp', response_flags: '-', destination_service: 'server.default.svc.cluster.local', destination_service_name: 'server' };
    const clientSide = {
      ...common,
      reporter: 'source',
      source_workload: 'client',
      source_principal: id('client-sa'),
      destination_workload: 'server-v1',
      destination_principal: id('server-sa'),
      destination_app: 'server',
      destination_version: 'v1',
      connection_security_policy: 'unknown',
    };
    const clientText = await waitFor(async () => {
      const t = await client.scrape();
      return findSamples(t, 'istio_tcp_connections_closed_total', clientSide).length ? t : undefined;
    });
    assert.equal(sampleValue(clientText, 'istio_tcp_connections_opened_total', clientSide), 1);
    assert.equal(sampleValue(clientText, 'istio_tcp_connections_closed_total', clientSide), 1);
    assert.equal(sampleValue(clientText, 'istio_tcp_received_bytes_total', clientSide), message.length);
    assert.equal(sampleValue(clientText, 'istio_tcp_sent_bytes_total', clientSide), message.length);
    assert.equal(findSamples(clientText, 'istio_tcp_connections_opened_total', clientSide)[0].labels.response_code, undefined);

    const serverSide = {
      ...common,
      reporter: 'destination',
      source_workload: 'client',
      source_app: 'client',
      source_version: 'v2',
      source_principal: id('client-sa'),
      destination_workload: 'server-v1',
      destination_principal: id('server-sa'),
      connection_security_policy: 'mutual_tls',
    };
    const serverText = await waitFor(async () => {
      const t = await server.scrape();
      return findSamples(t, 'istio_tcp_connections_closed_total', serverSide).length ? t : undefined;
    });
    assert.equal(sampleValue(serverText, 'istio_tcp_connections_opened_total', serverSide), 1);
    // The preamble is not application data: only the message counts.
    assert.equal(sampleValue(serverText, 'istio_tcp_received_bytes_total', serverSide), message.length);
    assert.equal(sampleValue(serverText, 'istio_tcp_sent_bytes_total', serverSide), message.length);
  });

  it('labels gRPC calls with request_protocol grpc and the grpc-status of the trailers', async () => {
    const session = http2.connect(`http://${CLIENT_IP}:${outbound(client)}`);
    try {
      const status = await new Promise<{ http: number; grpc?: string }>((resolve, reject) => {
        const req = session.request({
          ':method': 'POST',
          ':path': '/weft.test.Catalog/Find',
          ':authority': `server:${GRPC_PORT}`,
          'content-type': 'application/grpc',
          te: 'trailers',
        });
        let http = 0;
        req.on('response', (h) => (http = Number(h[':status'])));
        req.on('trailers', (t) => resolve({ http, grpc: String(t['grpc-status']) }));
        req.on('error', reject);
        req.resume();
        req.end(Buffer.from([0, 0, 0, 0, 0]));
      });
      assert.deepEqual(status, { http: 200, grpc: '5' });
    } finally {
      session.close();
    }
    const grpc = { request_protocol: 'grpc', response_code: '200', grpc_response_status: '5', destination_service: 'server.default.svc.cluster.local', source_workload: 'client' };
    const clientText = await waitFor(async () => {
      const t = await client.scrape();
      return findSamples(t, 'istio_requests_total', grpc).length ? t : undefined;
    });
    assert.equal(sampleValue(clientText, 'istio_requests_total', { ...grpc, reporter: 'source', destination_workload: 'server-v1' }), 1);
    const serverText = await waitFor(async () => {
      const t = await server.scrape();
      return findSamples(t, 'istio_requests_total', grpc).length ? t : undefined;
    });
    assert.equal(sampleValue(serverText, 'istio_requests_total', { ...grpc, reporter: 'destination', connection_security_policy: 'mutual_tls' }), 1);
  });

  it('reports a gateway as source and keeps peer metadata from the non-mesh client', async () => {
    const res = await request(`http://${GATEWAY_IP}:${ingress.proxy.listenerPort(`0.0.0.0_${GATEWAY_PORT}`)}/from-outside`, {
      headers: { host: 'shop.example.com' },
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['x-envoy-peer-metadata'], undefined);
    assert.equal(res.headers['x-envoy-peer-metadata-id'], undefined);
    await res.body.dump();

    const gatewaySide = {
      reporter: 'source',
      source_workload: 'ingress',
      source_app: 'ingress',
      source_principal: id('ingress-sa'),
      destination_workload: 'server-v1',
      destination_app: 'server',
      destination_service: 'server.default.svc.cluster.local',
      response_code: '200',
    };
    const text = await waitFor(async () => {
      const t = await ingress.scrape();
      return findSamples(t, 'istio_requests_total', gatewaySide).length ? t : undefined;
    });
    assert.equal(sampleValue(text, 'istio_requests_total', gatewaySide), 1);
    const serverText = await server.scrape();
    assert.equal(sampleValue(serverText, 'istio_requests_total', { reporter: 'destination', source_workload: 'ingress', source_principal: id('ingress-sa'), response_code: '200' }), 1);
  });

  it('falls back on the peer certificate when the client sends no metadata, and on nothing for plaintext', async () => {
    const { Pool } = await import('undici');
    const pool = new Pool(`http://${LEGACY_IP}:${outbound(legacy)}`);
    try {
      assert.equal((await sendThrough(pool, `server:${HTTP_PORT}`, '/legacy')).status, 200);
    } finally {
      await pool.close();
    }
    // TCP from a client that sends no preamble: the server sidecar passes the bytes on untouched.
    const tunnel = await connectTunnel(LEGACY_IP, outbound(legacy), `server:${TCP_PORT}`);
    assert.equal(await echoThrough(tunnel, 'no preamble here'), 'no preamble here');
    // Straight to the server sidecar in plaintext (PERMISSIVE), as a client outside the mesh.
    const direct = await request(`http://${SERVER_IP}:${HTTP_PORT}/direct`, { headers: { host: 'server' } });
    assert.equal(direct.statusCode, 200);
    assert.equal(direct.headers['x-envoy-peer-metadata'], undefined, 'no metadata toward a non-mesh client');
    await direct.body.dump();

    const legacyText = await legacy.scrape();
    assert.equal(findSamples(legacyText, 'istio_requests_total').length, 0, 'telemetry off: no istio_* metrics');
    const serverText = await waitFor(async () => {
      const t = await server.scrape();
      return findSamples(t, 'istio_requests_total', { connection_security_policy: 'none' }).length ? t : undefined;
    });
    assert.equal(
      sampleValue(serverText, 'istio_requests_total', {
        reporter: 'destination',
        source_workload: 'unknown',
        source_app: 'unknown',
        source_principal: id('legacy-sa'),
        source_workload_namespace: 'default',
        connection_security_policy: 'mutual_tls',
        response_code: '200',
      }),
      1,
    );
    const legacyTcp = { reporter: 'destination', request_protocol: 'tcp', source_workload: 'unknown', source_principal: id('legacy-sa'), connection_security_policy: 'mutual_tls' };
    const tcpText = await waitFor(async () => {
      const t = await server.scrape();
      return findSamples(t, 'istio_tcp_connections_closed_total', legacyTcp).length ? t : undefined;
    });
    assert.equal(sampleValue(tcpText, 'istio_tcp_received_bytes_total', legacyTcp), 'no preamble here'.length);
    assert.equal(
      sampleValue(serverText, 'istio_requests_total', {
        reporter: 'destination',
        source_workload: 'unknown',
        source_principal: 'unknown',
        source_workload_namespace: 'unknown',
        destination_principal: 'unknown',
        connection_security_policy: 'none',
        response_code: '200',
      }),
      1,
    );
  });

  it('writes one JSON access-log line per request and connection on each side', async () => {
    // client and server: 7 HTTP requests each (one gRPC), 1 TCP connection each; gateway and server: 1 each;
    // legacy and server: 1 HTTP request and 1 TCP connection each (telemetry off leaves access
    // logs on); the direct request: 1.
    const expected = 7 + 7 + 1 + 1 + 2 + 4 + 1;
    const lines = await waitFor(
      () => {
        const text = fs.existsSync(accessLogFile) ? fs.readFileSync(accessLogFile, 'utf8') : '';
        const all = text.split('\n').filter(Boolean);
        return all.length >= expected ? all : undefined;
      },
      { message: () => `${expected} access-log lines in ${accessLogFile}` },
    );
    assert.equal(lines.length, expected);
    const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const fields = [
      'start_time', 'route_name', 'method', 'path', 'protocol', 'response_code', 'response_flags', 'response_code_details',
      'connection_termination_details', 'bytes_received', 'bytes_sent', 'duration', 'upstream_service_time', 'x_forwarded_for',
      'user_agent', 'request_id', 'authority', 'upstream_host', 'upstream_cluster', 'upstream_local_address',
      'downstream_local_address', 'downstream_remote_address', 'requested_server_name', 'upstream_transport_failure_reason',
      'downstream_peer_uri_san', 'upstream_peer_uri_san',
    ];
    for (const e of entries) {
      assert.deepEqual(Object.keys(e).sort(), [...fields].sort());
      assert.ok(!Number.isNaN(Date.parse(e.start_time as string)), `start_time ${e.start_time}`);
      assert.equal(typeof e.duration, 'number');
      assert.equal(typeof e.bytes_sent, 'number');
    }

    // One request seen from both sides: same x-request-id, each side's own view.
    const out = entries.find((e) => e.path === '/ok/0' && e.upstream_cluster === `outbound|${HTTP_PORT}||server.default.svc.cluster.local`);
    const inb = entries.find((e) => e.path === '/ok/0' && e.upstream_cluster === `inbound|${HTTP_PORT}||`);
    assert.ok(out && inb, 'both sides logged /ok/0');
    assert.equal(out.request_id, inb.request_id);
    assert.match(String(out.request_id), /^[0-9a-f-]{36}$/);
    assert.deepEqual(
      { method: out.method, protocol: out.protocol, code: out.response_code, flags: out.response_flags, authority: out.authority, ua: out.user_agent },
      { method: 'GET', protocol: 'HTTP/1.1', code: 200, flags: '-', authority: `server:${HTTP_PORT}`, ua: 'telemetry-test' },
    );
    assert.equal(out.upstream_host, `${SERVER_IP}:${HTTP_PORT}`);
    assert.equal(out.upstream_peer_uri_san, id('server-sa'));
    assert.equal(out.response_code_details, 'via_upstream');
    assert.equal(typeof out.upstream_service_time, 'string');
    assert.equal(inb.downstream_peer_uri_san, id('client-sa'));
    assert.equal(inb.upstream_host, `${SERVER_APP_IP}:${HTTP_PORT}`);
    assert.match(String(inb.downstream_local_address), new RegExp(`^${SERVER_IP.replace(/\./g, '\\.')}:${HTTP_PORT}$`));
    assert.equal(inb.requested_server_name, `outbound_.${HTTP_PORT}_._.server.default.svc.cluster.local`);

    const tcp = entries.filter((e) => e.protocol === 'TCP' && e.bytes_received === 'ping over a mesh tunnel'.length);
    assert.equal(tcp.length, 2);
    const tcpOut = tcp.find((e) => e.upstream_cluster === `outbound|${TCP_PORT}||server.default.svc.cluster.local`)!;
    const tcpIn = tcp.find((e) => e.upstream_cluster === `inbound|${TCP_PORT}||`)!;
    assert.equal(tcpOut.bytes_received, 'ping over a mesh tunnel'.length);
    assert.equal(tcpOut.upstream_peer_uri_san, id('server-sa'));
    assert.match(String(tcpOut.upstream_local_address), /^127\.0\.93\.1:\d+$|^127\.0\.0\.1:\d+$/);
    assert.equal(tcpIn.downstream_peer_uri_san, id('client-sa'));
    assert.equal(tcpIn.bytes_sent, 'ping over a mesh tunnel'.length);
    assert.equal(tcpIn.method, null);
  });
});
