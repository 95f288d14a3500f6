// Distributed tracing end to end: the real control plane (config directory + a watched mesh
// config file with an OpenTelemetry provider), two real Weft sidecars in standalone mode —
// client -> server over mTLS — configured over xDS, a real backend, and a real OTLP/HTTP receiver
// decoding the protobuf export requests. A request carrying a traceparent yields a CLIENT span
// whose parent is the caller's span and a SERVER span whose parent is the CLIENT span, all in the
// caller's trace; sampling 0% exports nothing; a request without trace headers starts a trace;
// a collector that is down costs spans, never requests; a bad mesh config edit changes nothing.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Pool, request } from 'undici';
import { ControlPlane } from '../../src/control/control-plane';
import { createLogger } from '../../src/log/logger';
import { SecretStore } from '../../src/proxy/identity/secret-store';
import { startProxy, type RunningProxy } from '../../src/proxy/proxy';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver';
import { createTestCa, type TestCa } from '../support/test-ca';
import { waitFor } from '../support/wait-for';
import { sidecarNodeId } from './proxy-harness';

// Workload addresses of their own, so the standalone inbound listener can bind the service port.
const CLIENT_ADDRESS = '127.0.61.1';
const SERVER_ADDRESS = '127.0.61.2';
const SERVER_APP_ADDRESS = '127.128.61.2';
const PORT = 19651;
const TRACE = '5b8aa5a2d2c872e8321cf37308d69df2';
const CALLER_SPAN = '051581bf3cb55c13';
const SERVER_CLUSTER = `outbound|${PORT}||server.default.svc.cluster.local`;

const PLATFORM = `
apiVersion: v1
kind: Service
metadata: {name: server, namespace: default}
spec:
  selector: {app: server}
  ports: [{name: http, port: ${PORT}}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: server, namespace: default}
spec: {address: ${SERVER_ADDRESS}, labels: {app: server, version: v1}, serviceAccount: server}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client, namespace: default}
spec: {address: ${CLIENT_ADDRESS}, labels: {app: client, version: v1}, serviceAccount: client}
`;

function meshConfig(collectorPort: number, extra = ''): string {
  return `defaultConfig:
  tracing:
    sampling: 100
extensionProviders:
- name: otel
  opentelemetry:
    service: 127.0.0.1
    port: ${collectorPort}
    http: {path: /v1/traces, timeout: 2s}
defaultProviders:
  tracing: [otel]
${extra}`;
}

interface Echo {
  headers: http.IncomingHttpHeaders;
}

describe('distributed tracing through Weft sidecars', () => {
  let dir: string;
  let meshFile: string;
  let cp: ControlPlane;
  let ca: TestCa;
  let receiver: OtlpReceiver;
  let backend: http.Server;
  const received: Echo[] = [];
  let client: RunningProxy;
  let server: RunningProxy;
  let pool: Pool;
  const cpLogs: Record<string, unknown>[] = [];

  async function sidecar(name: string, address: string): Promise<RunningProxy> {
    const cert = await ca.issueWorkload(name);
    const secrets = new SecretStore();
    secrets.setTrustedCa('ROOTCA', ca.rootPem);
    secrets.setCertificate('default', cert.certPem, cert.keyPem);
    const proxy = await startProxy({
      xdsAddress: `127.0.0.1:${cp.xdsPort}`,
      node: {
        id: sidecarNodeId(name, address),
        metadata: {
          NAMESPACE: 'default',
          WORKLOAD_NAME: name,
          INSTANCE_IPS: address,
          INTERCEPTION_MODE: 'NONE',
          WEFT_APP_ADDRESS: address.replace(/^127\.0\./, '127.128.'),
          LABELS: { app: name, version: 'v1' },
        },
      },
      bindAddress: address,
      ports: { outbound: 0, inbound: 0, admin: 0, stats: 0, health: 0 },
      secrets,
      logger: createLogger({ level: process.env.WEFT_TEST_LOGS === '1' ? 'debug' : 'error', write: (l) => process.stderr.write(l + '\n') }),
      xdsBackoff: { initialMs: 50, maxMs: 500 },
      initialFetchTimeoutMs: 3000,
    });
    await proxy.ready;
    return proxy;
  }

  /** GET through the client sidecar's outbound listener (as an app with HTTP_PROXY would). */
  async function get(headers: Record<string, string> = {}): Promise<{ status: number; echo: Echo }> {
    const res = await pool.request({ method: 'GET', path: '/reviews/1', headers: { host: `server:${PORT}`, ...headers } });
    const body = await res.body.text();
    return { status: res.statusCode, echo: res.statusCode === 200 ? (JSON.parse(body) as Echo) : { headers: {} } };
  }

  const spansOf = (traceId: string) => receiver.spans.filter((s) => s.traceId === traceId);

  /** Both sidecars serve the control plane's latest snapshot. */
  async function converged(): Promise<void> {
    const version = cp.current()!.version;
    await waitFor(() => [client, server].every((p) => p.xdsStatus().LDS.version === version), {
      timeoutMs: 10_000,
      message: () => `sidecars on ${version}: ${JSON.stringify([client.xdsStatus().LDS, server.xdsStatus().LDS])}`,
    });
  }

  async function stats(proxy: RunningProxy, filter: string): Promise<Record<string, number>> {
    const r = await request(`http://${proxy.adminAddress}:${proxy.ports.admin}/stats?filter=${encodeURIComponent(filter)}`);
    const out: Record<string, number> = {};
    for (const line of (await r.body.text()).trim().split('\n')) {
      if (line) out[line.slice(0, line.indexOf(':'))] = Number(line.slice(line.indexOf(':') + 2));
    }
    return out;
  }

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-tracing-'));
    fs.mkdirSync(path.join(dir, 'config'));
    fs.writeFileSync(path.join(dir, 'config', 'platform.yaml'), PLATFORM);
    receiver = await startOtlpReceiver();
    meshFile = path.join(dir, 'mesh.yaml');
    fs.writeFileSync(meshFile, meshConfig(receiver.port));
    ca = await createTestCa('weft-tracing-test');
    backend = http.createServer((req, res) => {
      received.push({ headers: req.headers });
      const body = JSON.stringify({ headers: req.headers });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    });
    await new Promise<void>((resolve) => backend.listen(PORT, SERVER_APP_ADDRESS, resolve));
    cp = new ControlPlane({
      configDir: path.join(dir, 'config'),
      meshConfigFile: meshFile,
      xdsAddress: '127.0.0.1:0',
      httpAddress: '127.0.0.1:0',
      logger: createLogger({ level: 'info', write: (l) => cpLogs.push(JSON.parse(l)) }),
      pushDebounceMs: 10,
      pushDebounceMaxMs: 50,
    });
    await cp.start();
    server = await sidecar('server', SERVER_ADDRESS);
    client = await sidecar('client', CLIENT_ADDRESS);
    pool = new Pool(`http://${CLIENT_ADDRESS}:${client.listenerPort('virtualOutbound')}`, { connections: 4 });
    const nacks = [client, server].flatMap((p) => Object.values(p.xdsStatus()).filter((s) => s.lastError));
    assert.deepEqual(nacks, []);
  });

  after(async () => {
    await pool?.close();
    await client?.close(200);
    await server?.close(200);
    await cp?.stop(200);
    await receiver?.close();
    await new Promise<void>((resolve) => (backend ? backend.close(() => resolve()) : resolve()));
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("joins the caller's trace: a CLIENT span under the caller's span, a SERVER span under it", async () => {
    const { status, echo } = await get({ traceparent: `00-${TRACE}-${CALLER_SPAN}-01`, 'x-request-id': 'req-tracing-1', 'user-agent': 'tracing-test' });
    assert.equal(status, 200);
    const spans = await waitFor(() => (spansOf(TRACE).length >= 2 ? spansOf(TRACE) : undefined), {
      timeoutMs: 10_000,
      message: () => `two spans of the trace; got ${JSON.stringify(receiver.spans.map((s) => [s.traceId, s.name]))}`,
    });
    assert.equal(spans.length, 2);
    const clientSpan = spans.find((s) => s.serviceName === 'client.default') as ReceivedSpan;
    const serverSpan = spans.find((s) => s.serviceName === 'server.default') as ReceivedSpan;
    assert.ok(clientSpan && serverSpan, JSON.stringify(spans, (_k, v) => (typeof v === 'bigint' ? String(v) : v)));

    assert.equal(clientSpan.kind, 3, 'CLIENT');
    assert.equal(clientSpan.parentSpanId, CALLER_SPAN);
    assert.equal(serverSpan.kind, 2, 'SERVER');
    assert.equal(serverSpan.parentSpanId, clientSpan.spanId);
    assert.notEqual(serverSpan.spanId, clientSpan.spanId);
    assert.ok(clientSpan.startTimeUnixNano <= serverSpan.startTimeUnixNano && serverSpan.endTimeUnixNano <= clientSpan.endTimeUnixNano);

    // The application behind the server sidecar sees the server span as its parent, in both formats.
    assert.equal(echo.headers.traceparent, `00-${TRACE}-${serverSpan.spanId}-01`);
    assert.equal(echo.headers['x-b3-traceid'], TRACE);
    assert.equal(echo.headers['x-b3-spanid'], serverSpan.spanId);
    assert.equal(echo.headers['x-b3-parentspanid'], clientSpan.spanId);
    assert.equal(echo.headers['x-b3-sampled'], '1');
    assert.equal(echo.headers['x-request-id'], 'req-tracing-1');

    // Envoy's and Istio's span tags.
    assert.equal(clientSpan.name, `server.default.svc.cluster.local:${PORT}/*`);
    assert.deepEqual(
      {
        node_id: clientSpan.attributes.node_id,
        guid: clientSpan.attributes['guid:x-request-id'],
        url: clientSpan.attributes['http.url'],
        method: clientSpan.attributes['http.method'],
        protocol: clientSpan.attributes['http.protocol'],
        userAgent: clientSpan.attributes.user_agent,
        status: clientSpan.attributes['http.status_code'],
        flags: clientSpan.attributes.response_flags,
        cluster: clientSpan.attributes.upstream_cluster,
        clusterName: clientSpan.attributes['upstream_cluster.name'],
        service: clientSpan.attributes['istio.canonical_service'],
        revision: clientSpan.attributes['istio.canonical_revision'],
        namespace: clientSpan.attributes['istio.namespace'],
        mesh: clientSpan.attributes['istio.mesh_id'],
        downstreamCluster: clientSpan.attributes.downstream_cluster,
        peer: clientSpan.attributes['peer.address'],
      },
      {
        node_id: sidecarNodeId('client', CLIENT_ADDRESS),
        guid: 'req-tracing-1',
        url: `http://server:${PORT}/reviews/1`,
        method: 'GET',
        protocol: 'HTTP/1.1',
        userAgent: 'tracing-test',
        status: '200',
        flags: '-',
        cluster: SERVER_CLUSTER,
        clusterName: SERVER_CLUSTER,
        service: 'client',
        revision: 'v1',
        namespace: 'default',
        mesh: 'cluster.local',
        downstreamCluster: '-',
        // The test connects from loopback's default source address.
        peer: '127.0.0.1',
      },
    );
    assert.equal(serverSpan.attributes.upstream_cluster, `inbound|${PORT}||`);
    assert.equal(serverSpan.attributes['istio.canonical_service'], 'server');
    assert.equal(serverSpan.attributes['guid:x-request-id'], 'req-tracing-1');
    assert.ok(Number(serverSpan.attributes.response_size) > 0);
    assert.equal(clientSpan.attributes.error, undefined);
    assert.equal(clientSpan.statusCode, 0);
  });

  it('starts a trace for a request without trace headers (sampling 100%)', async () => {
    const before = new Set(receiver.spans.map((s) => s.traceId));
    const { status, echo } = await get();
    assert.equal(status, 200);
    const traceparent = String(echo.headers.traceparent);
    assert.match(traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const traceId = traceparent.slice(3, 35);
    assert.ok(!before.has(traceId));
    const spans = await waitFor(() => (spansOf(traceId).length >= 2 ? spansOf(traceId) : undefined), { timeoutMs: 10_000, message: 'spans of the new trace' });
    const root = spans.find((s) => s.kind === 3) as ReceivedSpan;
    assert.equal(root.parentSpanId, '', 'the client sidecar started the trace');
    assert.equal(spans.find((s) => s.kind === 2)?.parentSpanId, root.spanId);
  });

  it('exports nothing at sampling 0%, still propagating the decision', async () => {
    // Istio's precedence: the mesh-wide Telemetry's rate beats meshConfig.defaultConfig.tracing.sampling.
    fs.writeFileSync(
      path.join(dir, 'config', 'telemetry.yaml'),
      `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  tracing:
  - randomSamplingPercentage: 0
`,
    );
    await waitFor(() => cp.current()?.resources.has('Telemetry/istio-system/mesh-default'), { message: 'the Telemetry was loaded' });
    await converged();
    const unsampled: string[] = [];
    for (let i = 0; i < 20; i++) {
      const { status, echo } = await get();
      assert.equal(status, 200);
      const traceparent = String(echo.headers.traceparent);
      assert.match(traceparent, /-00$/, 'the decision travels with the request');
      assert.equal(echo.headers['x-b3-sampled'], '0');
      unsampled.push(traceparent.slice(3, 35));
    }
    // A caller's sampled trace is still honoured: when its spans have arrived, the exporters have
    // had their chance to send anything the unsampled requests might have produced.
    const marker = 'aaaabbbbccccddddeeeeffff00001111';
    assert.equal((await get({ traceparent: `00-${marker}-${CALLER_SPAN}-01` })).status, 200);
    await waitFor(() => spansOf(marker).length >= 2, { timeoutMs: 10_000, message: 'the sampled marker trace' });
    assert.deepEqual(receiver.spans.filter((s) => unsampled.includes(s.traceId)), []);
    const clientStats = await stats(client, '^tracing\\.');
    assert.ok(clientStats['tracing.weft.requests_not_sampled'] >= 20, JSON.stringify(clientStats));
    fs.rmSync(path.join(dir, 'config', 'telemetry.yaml'));
    await waitFor(() => !cp.current()?.resources.has('Telemetry/istio-system/mesh-default'), { message: 'the Telemetry was removed' });
    await converged();
  });

  it('keeps serving the last good mesh config when an edit is invalid', async () => {
    const version = cp.current()!.version;
    fs.writeFileSync(meshFile, meshConfig(receiver.port, 'defaultProvider: {tracing: [otel]}\n'));
    const rejected = await waitFor(() => cpLogs.find((l) => l.event === 'mesh_config_rejected'), { message: 'the invalid edit was reported' });
    assert.match(String(rejected.problem), /defaultProvider: unknown field "defaultProvider"; did you mean "defaultProviders"\?/);
    assert.equal(cp.current()!.version, version, 'no new snapshot');
    assert.equal(cp.meshConfig.defaultProviders?.tracing?.[0], 'otel');
    const traceId = '0123456789abcdef0123456789abcdef';
    assert.equal((await get({ traceparent: `00-${traceId}-${CALLER_SPAN}-01` })).status, 200);
    await waitFor(() => spansOf(traceId).length >= 2, { timeoutMs: 10_000, message: 'tracing still works' });
  });

  it('never fails a request because the collector is down', async () => {
    // A mesh config edit points the provider at a port nothing listens on: a new snapshot.
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadPort = (closed.address() as { port: number }).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const version = cp.current()!.version;
    fs.writeFileSync(meshFile, meshConfig(deadPort));
    await waitFor(() => cp.current()!.version !== version, { message: 'the mesh config change made a snapshot' });
    assert.match(cp.current()!.reason, /^mesh config change: mesh\.yaml/);
    await converged();
    const spansBefore = receiver.spans.length;
    for (let i = 0; i < 30; i++) assert.equal((await get({ 'x-request-id': `down-${i}` })).status, 200);
    const failed = await waitFor(
      async () => {
        const s = await stats(client, '^tracing\\.opentelemetry\\.');
        return s['tracing.opentelemetry.http_reports_failed'] > 0 ? s : undefined;
      },
      { timeoutMs: 10_000, message: 'the failed exports were counted' },
    );
    assert.ok(failed['tracing.opentelemetry.spans_dropped'] > 0, JSON.stringify(failed));
    assert.equal(receiver.spans.length, spansBefore);
  });
});
