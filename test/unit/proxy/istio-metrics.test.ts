// Istio's standard metrics and metadata exchange, piece by piece: the Struct codec against
// protobufjs (so the bytes are Istio's), peer headers and the TCP preamble, the label sets and
// Prometheus text of the registry (parsed back, never matched as substrings), the access-log
// operators Istio's default formats use, and the access_log config the translator emits.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as protobuf from 'protobufjs';
import { formatAccessLog, formatJsonAccessLog, type RequestRecord } from '../../../src/proxy/access-log';
import { compileListener } from '../../../src/proxy/config/listener';
import { IstioMetrics, ISTIO_BUCKETS, type EdgeLabels, type PeerLabels } from '../../../src/proxy/telemetry/istio-metrics';
import {
  decodePeerHeader,
  encodePeerHeader,
  endpointPeer,
  PeerMetadataCache,
  principalNamespace,
  workloadFromNode,
} from '../../../src/proxy/telemetry/peer-metadata';
import { decodeAny, decodeStruct, encodeAny, encodeStruct, STRUCT_TYPE_URL } from '../../../src/proxy/telemetry/protobuf-struct';
import { exchangePreamble, PeerPreambleReader } from '../../../src/proxy/telemetry/tcp-peer-exchange';
import { createSnapshot, DEFAULT_MESH_CONFIG, type MeshConfig } from '../../../src/model/snapshot';
import { TypeUrl } from '../../../src/xds/protos';
import { parseProxyNode, translateForProxy } from '../../../src/xds/translate';
import { ISTIO_JSON_ACCESS_LOG_FORMAT } from '../../../src/xds/translate/access-logs';
import { findSamples, parsePrometheusText, sampleValue } from '../../support/prometheus-text';
import { parseResources } from '../translate/load-fixture';
import { lds } from './wire';

const structType = protobuf.Root.fromJSON(protobuf.common.get('google/protobuf/struct.proto')!).lookupType('google.protobuf.Struct');
const anyType = protobuf.Root.fromJSON(protobuf.common.get('google/protobuf/any.proto')!).lookupType('google.protobuf.Any');

const NODE_ID = 'sidecar~10.0.0.7~reviews-v2-5d8f.prod~prod.svc.cluster.local';
const REVIEWS = workloadFromNode(NODE_ID, {
  NAMESPACE: 'prod',
  WORKLOAD_NAME: 'reviews-v2',
  LABELS: { app: 'reviews', version: 'v2', 'service.istio.io/canonical-name': 'reviews' },
});

describe('google.protobuf.Struct codec', () => {
  it('writes bytes protobufjs reads, and reads what protobufjs writes', () => {
    const value = { a: 'x', n: 1.5, t: true, z: null, list: ['p', 2], nested: { deep: { k: 'v' } } };
    const ours = encodeStruct(value);
    const theirs = structType.toObject(structType.decode(ours)) as { fields: Record<string, Record<string, unknown>> };
    assert.deepEqual(theirs.fields.a, { stringValue: 'x' });
    assert.deepEqual(theirs.fields.n, { numberValue: 1.5 });
    assert.deepEqual(theirs.fields.t, { boolValue: true });
    assert.deepEqual((theirs.fields.nested as any).structValue.fields.deep.structValue.fields.k, { stringValue: 'v' });
    assert.deepEqual((theirs.fields.list as any).listValue.values, [{ stringValue: 'p' }, { numberValue: 2 }]);

    const message = structType.fromObject({
      fields: { s: { stringValue: 'é' }, st: { structValue: { fields: { b: { boolValue: false } } } }, l: { listValue: { values: [{ nullValue: 0 }] } } },
    });
    const decoded = decodeStruct(Buffer.from(structType.encode(message).finish()));
    assert.deepEqual({ ...decoded, st: { ...(decoded.st as object) } }, { s: 'é', st: { b: false }, l: [null] });
  });

  it('packs an Any that protobufjs reads back', () => {
    const packed = encodeAny(STRUCT_TYPE_URL, encodeStruct({ k: 'v' }));
    const any = anyType.decode(packed) as unknown as { type_url: string; value: Uint8Array };
    assert.equal(any.type_url, STRUCT_TYPE_URL);
    assert.equal(decodeAny(packed).typeUrl, STRUCT_TYPE_URL);
    assert.deepEqual({ ...decodeStruct(Buffer.from(any.value)) }, { k: 'v' });
  });

  it('refuses truncated and absurdly nested input instead of looping or overflowing', () => {
    const good = encodeStruct({ key: 'value' });
    assert.throws(() => decodeStruct(good.subarray(0, good.length - 2)), /past the end|truncated/);
    let nested: Record<string, unknown> = { leaf: 'x' };
    for (let i = 0; i < 40; i++) nested = { n: nested };
    assert.throws(() => decodeStruct(encodeStruct(nested as never)), /nested too deep/);
  });

  it('does not let a key named __proto__ reach a prototype', () => {
    const bytes = Buffer.from(structType.encode(structType.fromObject({ fields: { ['__proto__']: { stringValue: 'x' } } })).finish());
    const decoded = decodeStruct(bytes);
    assert.equal(Object.getPrototypeOf(decoded), null);
    assert.equal(decoded['__proto__'], 'x');
  });
});

describe('peer metadata', () => {
  it("takes the proxy's identity from its node, with Istio's canonical-service fallbacks", () => {
    assert.deepEqual(
      { ...REVIEWS },
      { instance: 'reviews-v2-5d8f', namespace: 'prod', workload: 'reviews-v2', cluster: 'Kubernetes', canonicalService: 'reviews', canonicalRevision: 'v2', app: 'reviews', version: 'v2' },
    );
    const bare = workloadFromNode('router~127.0.0.1~ingress.istio-system~istio-system.svc.cluster.local', { LABELS: { istio: 'ingressgateway' } });
    assert.equal(bare.workload, 'ingress');
    assert.equal(bare.namespace, 'istio-system');
    assert.equal(bare.canonicalService, 'ingress');
    assert.equal(bare.canonicalRevision, 'latest');
    assert.equal(bare.app, '');
  });

  it("round-trips through the x-envoy-peer-metadata header in Istio's field names", () => {
    const header = encodePeerHeader(REVIEWS);
    const wire = structType.toObject(structType.decode(Buffer.from(header, 'base64'))) as { fields: Record<string, any> };
    assert.equal(wire.fields.WORKLOAD_NAME.stringValue, 'reviews-v2');
    assert.equal(wire.fields.NAMESPACE.stringValue, 'prod');
    assert.equal(wire.fields.CLUSTER_ID.stringValue, 'Kubernetes');
    assert.equal(wire.fields.LABELS.structValue.fields['service.istio.io/canonical-name'].stringValue, 'reviews');
    assert.equal(wire.fields.LABELS.structValue.fields.app.stringValue, 'reviews');
    assert.deepEqual({ ...decodePeerHeader(header) }, { ...REVIEWS });
    assert.equal(decodePeerHeader('not base64 protobuf %%%'), undefined);
  });

  it('decodes each distinct header once and bounds the cache', () => {
    const cache = new PeerMetadataCache(2);
    const header = encodePeerHeader(REVIEWS);
    assert.equal(cache.get(header), cache.get(header));
    cache.get(encodePeerHeader({ ...REVIEWS, workload: 'a' }));
    cache.get(encodePeerHeader({ ...REVIEWS, workload: 'b' }));
    assert.equal(cache.get(header)?.workload, 'reviews-v2');
  });

  it("reads EDS istio.workload metadata and tlsMode (Istio's endpoint encoding)", () => {
    const peer = endpointPeer({
      istio: { workload: 'ratings-v1;default;ratings;v1;Kubernetes', service_account: 'bookinfo-ratings' },
      'envoy.transport_socket_match': { tlsMode: 'istio' },
    });
    assert.equal(peer?.sidecar, true);
    assert.deepEqual(
      { ...peer?.metadata },
      { instance: '', workload: 'ratings-v1', namespace: 'default', canonicalService: 'ratings', canonicalRevision: 'v1', cluster: 'Kubernetes', app: '', version: '', serviceAccount: 'bookinfo-ratings' },
    );
    assert.equal(endpointPeer({ istio: { workload: 'too;short' } }), undefined);
    assert.equal(endpointPeer(undefined), undefined);
    assert.equal(principalNamespace('spiffe://cluster.local/ns/prod/sa/reviews'), 'prod');
    assert.equal(principalNamespace('CN=something'), '');
  });
});

describe('TCP metadata exchange preamble', () => {
  const preamble = exchangePreamble(REVIEWS, NODE_ID);

  it("is Istio's: magic, length, then an Any of a Struct with the metadata and node id", () => {
    assert.equal(preamble.readUInt32BE(0), 0x3d230467);
    assert.equal(preamble.readUInt32BE(4), preamble.length - 8);
    const any = anyType.decode(preamble.subarray(8)) as unknown as { type_url: string; value: Uint8Array };
    assert.equal(any.type_url, 'type.googleapis.com/google.protobuf.Struct');
    const s = structType.toObject(structType.decode(any.value)) as { fields: Record<string, any> };
    assert.equal(s.fields['x-envoy-peer-metadata-id'].stringValue, NODE_ID);
    assert.equal(s.fields['x-envoy-peer-metadata'].structValue.fields.WORKLOAD_NAME.stringValue, 'reviews-v2');
  });

  it('strips the preamble however the bytes are split, and hands on what follows', () => {
    const stream = Buffer.concat([preamble, Buffer.from('hello')]);
    for (const step of [1, 3, 7, stream.length]) {
      const reader = new PeerPreambleReader();
      const out: Buffer[] = [];
      for (let i = 0; i < stream.length; i += step) out.push(reader.push(stream.subarray(i, i + step)));
      assert.equal(reader.done, true);
      assert.equal(reader.peer?.workload, 'reviews-v2');
      assert.equal(reader.peerId, NODE_ID);
      assert.equal(Buffer.concat(out).toString(), 'hello', `split every ${step} bytes`);
    }
  });

  it('passes a stream without the magic through untouched, deciding on the first differing byte', () => {
    const reader = new PeerPreambleReader();
    assert.equal(reader.push(Buffer.from('OK\n')).toString(), 'OK\n');
    assert.equal(reader.done, true);
    assert.equal(reader.peer, undefined);
    const http = new PeerPreambleReader();
    assert.equal(http.push(Buffer.from('GET / HTTP/1.1\r\n')).toString(), 'GET / HTTP/1.1\r\n');
  });

  it('treats an oversized length as no preamble', () => {
    const bogus = Buffer.alloc(12);
    bogus.writeUInt32BE(0x3d230467, 0);
    bogus.writeUInt32BE(10 * 1024 * 1024, 4);
    const reader = new PeerPreambleReader();
    assert.equal(reader.push(bogus).length, 12);
    assert.equal(reader.peer, undefined);
  });
});

function peer(workload: string, extra: Partial<PeerLabels> = {}): PeerLabels {
  return { workload, canonicalService: workload, canonicalRevision: 'latest', namespace: 'default', principal: 'unknown', app: workload, version: 'unknown', cluster: 'Kubernetes', ...extra };
}

function edge(o: Partial<EdgeLabels> = {}): EdgeLabels {
  return {
    reporter: 'source',
    source: peer('productpage-v1'),
    destination: { ...peer('reviews-v1'), service: 'reviews.default.svc.cluster.local', serviceName: 'reviews', serviceNamespace: 'default' },
    protocol: 'http',
    securityPolicy: 'unknown',
    ...o,
  };
}

describe('IstioMetrics', () => {
  it("renders valid Prometheus text with Istio's names, labels and buckets", () => {
    const m = new IstioMetrics();
    const e = m.httpEdge(edge());
    m.recordRequest(e.series(200, -1, []), 3.7, 0, 1024);
    m.recordRequest(e.series(200, -1, []), 40, 10, 2048);
    // Flags in the order the router met them; the label has Envoy's order.
    m.recordRequest(e.series(503, -1, ['URX', 'UF']), 1, 0, 91);
    const grpc = m.httpEdge(edge({ protocol: 'grpc' }));
    m.recordRequest(grpc.series(200, 14, []), 2, 5, 0);
    const text = parsePrometheusText(m.renderPrometheus());

    assert.equal(text.types.get('istio_requests_total'), 'counter');
    assert.equal(text.types.get('istio_request_duration_milliseconds'), 'histogram');
    assert.equal(text.types.get('istio_request_bytes'), 'histogram');
    assert.equal(text.types.get('istio_response_bytes'), 'histogram');
    for (const name of text.types.keys()) assert.ok(text.help.get(name), `HELP for ${name}`);

    const ok = findSamples(text, 'istio_requests_total', { response_code: '200', request_protocol: 'http' });
    assert.equal(ok.length, 1);
    assert.deepEqual(Object.keys(ok[0].labels), [
      'reporter', 'source_workload', 'source_canonical_service', 'source_canonical_revision', 'source_workload_namespace',
      'source_principal', 'source_app', 'source_version', 'source_cluster', 'destination_workload',
      'destination_workload_namespace', 'destination_principal', 'destination_app', 'destination_version',
      'destination_service', 'destination_canonical_service', 'destination_canonical_revision', 'destination_service_name',
      'destination_service_namespace', 'destination_cluster', 'request_protocol', 'response_code', 'grpc_response_status',
      'response_flags', 'connection_security_policy',
    ]);
    assert.equal(ok[0].value, 2);
    assert.equal(ok[0].labels.grpc_response_status, '');
    assert.equal(ok[0].labels.response_flags, '-');
    assert.equal(sampleValue(text, 'istio_requests_total', { response_code: '503', response_flags: 'UF,URX' }), 1);
    assert.equal(sampleValue(text, 'istio_requests_total', { request_protocol: 'grpc', grpc_response_status: '14' }), 1);

    // Histogram: cumulative buckets over Istio's boundaries, +Inf equal to the count; whole milliseconds.
    const buckets = findSamples(text, 'istio_request_duration_milliseconds_bucket', { response_code: '200', request_protocol: 'http' });
    assert.deepEqual(buckets.map((b) => b.labels.le), [...ISTIO_BUCKETS.map(String), '+Inf']);
    const at = (le: string) => buckets.find((b) => b.labels.le === le)!.value;
    assert.equal(at('1'), 0);
    assert.equal(at('5'), 1); // 3.7 ms is recorded as 3
    assert.equal(at('25'), 1);
    assert.equal(at('50'), 2);
    assert.equal(at('+Inf'), 2);
    assert.equal(sampleValue(text, 'istio_request_duration_milliseconds_sum', { response_code: '200', request_protocol: 'http' }), 43);
    assert.equal(sampleValue(text, 'istio_request_duration_milliseconds_count', { response_code: '200', request_protocol: 'http' }), 2);
    assert.equal(sampleValue(text, 'istio_response_bytes_sum', { response_code: '200', request_protocol: 'http' }), 3072);
    const sizes = findSamples(text, 'istio_response_bytes_bucket', { response_code: '200', request_protocol: 'http' });
    assert.equal(sizes.find((b) => b.labels.le === '1000')!.value, 0);
    assert.equal(sizes.find((b) => b.labels.le === '2500')!.value, 2);
  });

  it('gives equal label sets one series, whichever objects they were resolved from', () => {
    const m = new IstioMetrics();
    m.recordRequest(m.httpEdge(edge()).series(200, -1, []), 1, 0, 0);
    m.recordRequest(m.httpEdge(edge()).series(200, -1, []), 1, 0, 0);
    assert.equal(m.seriesCount, 1);
    assert.equal(sampleValue(parsePrometheusText(m.renderPrometheus()), 'istio_requests_total'), 2);
  });

  it('escapes label values that came from the network', () => {
    const m = new IstioMetrics();
    const evil = 'a"b\\c\nd} 1\nistio_requests_total{x="y';
    m.recordRequest(m.httpEdge(edge({ source: peer(evil) })).series(200, -1, []), 1, 0, 0);
    const text = parsePrometheusText(m.renderPrometheus());
    assert.equal(findSamples(text, 'istio_requests_total').length, 1);
    assert.equal(sampleValue(text, 'istio_requests_total', { source_workload: evil }), 1);
  });

  it('renders TCP counters with request_protocol tcp and no response code', () => {
    const m = new IstioMetrics();
    const s = m.tcpEdge(edge({ protocol: 'tcp', reporter: 'destination', securityPolicy: 'mutual_tls' })).series([])!;
    s.opened++;
    s.received += 5;
    s.sent += 7;
    s.closed++;
    const text = parsePrometheusText(m.renderPrometheus());
    const match = { reporter: 'destination', request_protocol: 'tcp', response_flags: '-', connection_security_policy: 'mutual_tls' };
    assert.equal(sampleValue(text, 'istio_tcp_connections_opened_total', match), 1);
    assert.equal(sampleValue(text, 'istio_tcp_connections_closed_total', match), 1);
    assert.equal(sampleValue(text, 'istio_tcp_received_bytes_total', match), 5);
    assert.equal(sampleValue(text, 'istio_tcp_sent_bytes_total', match), 7);
    assert.equal(findSamples(text, 'istio_tcp_connections_opened_total')[0].labels.response_code, undefined);
    assert.equal(text.types.get('istio_requests_total'), undefined);
  });

  it('stops creating series at the limit and counts what it dropped', () => {
    const m = new IstioMetrics(2);
    for (let i = 0; i < 5; i++) m.recordRequest(m.httpEdge(edge({ source: peer(`w${i}`) })).series(200, -1, []), 1, 0, 0);
    const text = parsePrometheusText(m.renderPrometheus());
    assert.equal(findSamples(text, 'istio_requests_total').length, 2);
    assert.equal(sampleValue(text, 'weft_istio_metrics_overflow_total'), 3);
  });
});

const RECORD: RequestRecord = {
  startTime: Date.UTC(2026, 0, 2, 3, 4, 5, 6),
  durationMs: 12.4,
  listener: 'virtualInbound',
  protocol: 'HTTP/1.1',
  method: 'GET',
  path: '/reviews/0',
  authority: 'reviews:9080',
  status: 200,
  flags: [],
  details: 'via_upstream',
  routeName: 'default',
  upstreamCluster: 'inbound|9080||',
  upstreamHost: '127.0.0.1:9080',
  attempts: 1,
  bytesReceived: 0,
  bytesSent: 358,
  requestId: 'c0ffee',
  userAgent: 'curl/8',
  upstreamServiceTimeMs: 3,
  downstreamRemoteAddress: '10.0.0.9',
  downstreamRemotePort: 40312,
  downstreamLocalAddress: '10.0.0.7',
  downstreamLocalPort: 9080,
  requestedServerName: 'outbound_.9080_._.reviews.default.svc.cluster.local',
  downstreamPeerUriSan: 'spiffe://cluster.local/ns/default/sa/productpage',
};

describe("access log operators of Istio's default formats", () => {
  it("fills every field of Istio's JSON format (null where Envoy has no value)", () => {
    const line = formatJsonAccessLog(RECORD, { ...ISTIO_JSON_ACCESS_LOG_FORMAT });
    assert.ok(line.endsWith('\n'));
    const entry = JSON.parse(line);
    assert.deepEqual(entry, {
      start_time: '2026-01-02T03:04:05.006Z',
      route_name: 'default',
      method: 'GET',
      path: '/reviews/0',
      protocol: 'HTTP/1.1',
      response_code: 200,
      response_flags: '-',
      response_code_details: 'via_upstream',
      connection_termination_details: null,
      bytes_received: 0,
      bytes_sent: 358,
      duration: 12,
      upstream_service_time: '3',
      x_forwarded_for: null,
      user_agent: 'curl/8',
      request_id: 'c0ffee',
      authority: 'reviews:9080',
      upstream_host: '127.0.0.1:9080',
      upstream_cluster: 'inbound|9080||',
      upstream_local_address: null,
      downstream_local_address: '10.0.0.7:9080',
      downstream_remote_address: '10.0.0.9:40312',
      requested_server_name: 'outbound_.9080_._.reviews.default.svc.cluster.local',
      upstream_transport_failure_reason: null,
      downstream_peer_uri_san: 'spiffe://cluster.local/ns/default/sa/productpage',
      upstream_peer_uri_san: null,
    });
  });

  it('prints the text operators, with and without ports', () => {
    const text = formatAccessLog(RECORD, '%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_LOCAL_PORT% %REQUESTED_SERVER_NAME% %UPSTREAM_TRANSPORT_FAILURE_REASON%\n');
    assert.equal(text, '10.0.0.9 9080 outbound_.9080_._.reviews.default.svc.cluster.local -\n');
  });
});

const MESH = `
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}, {name: tcp-db, port: 3306}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1, namespace: default}
spec: {address: 127.0.20.1, labels: {app: reviews, version: v1}, serviceAccount: reviews}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ["*"]}]
`;

function translated(mesh: Partial<MeshConfig>, node: { id: string; metadata: Record<string, unknown> }) {
  const snapshot = createSnapshot({ sequence: 1, reason: 't', resources: parseResources(MESH), meshConfig: { ...DEFAULT_MESH_CONFIG, ...mesh } });
  return translateForProxy(snapshot, parseProxyNode(node));
}

const SIDECAR = { id: 'sidecar~127.0.20.1~reviews-v1.default~default.svc.cluster.local', metadata: { WORKLOAD_NAME: 'reviews-v1', LABELS: { app: 'reviews', version: 'v1' } } };
const GATEWAY = { id: 'router~127.0.0.1~gw.default~default.svc.cluster.local', metadata: { LABELS: { istio: 'ingressgateway' } } };

/** Every HCM and tcp_proxy typed_config of a set of listeners. */
function terminals(listeners: ReadonlyMap<string, Record<string, unknown>>): Record<string, any>[] {
  return [...listeners.values()].flatMap((l: any) => [...(l.filter_chains ?? []), ...(l.default_filter_chain ? [l.default_filter_chain] : [])])
    .flatMap((c: any) => c.filters)
    .map((f: any) => f.typed_config)
    .filter((t: any) => /HttpConnectionManager|TcpProxy/.test(t['@type']));
}

describe('access_log from meshConfig (translator)', () => {
  it('emits nothing without accessLogFile', () => {
    const out = translated({}, SIDECAR);
    assert.ok(terminals(out[TypeUrl.Listener] as never).every((t) => t.access_log === undefined));
  });

  it("puts Istio's JSON file logger on every inbound, outbound and gateway HCM and tcp_proxy, and the proxy accepts it", () => {
    for (const node of [SIDECAR, GATEWAY]) {
      const out = translated({ accessLogFile: '/dev/stdout', accessLogEncoding: 'JSON' }, node);
      const listeners = out[TypeUrl.Listener] as ReadonlyMap<string, Record<string, unknown>>;
      const all = terminals(listeners);
      assert.ok(all.length >= (node === SIDECAR ? 4 : 1), `${all.length} terminals for ${node.id}`);
      for (const t of all) {
        assert.deepEqual(t.access_log, [
          {
            name: 'envoy.access_loggers.file',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
              path: '/dev/stdout',
              log_format: { json_format: { ...ISTIO_JSON_ACCESS_LOG_FORMAT } },
            },
          },
        ]);
      }
      for (const l of listeners.values()) {
        // Through the real codec (a Struct inside), then the proxy's compiler.
        const compiled = compileListener(lds(l), 'v1');
        assert.ok(compiled.valid, compiled.valid ? '' : compiled.errors.join('\n'));
        for (const c of compiled.result.filterChains) {
          assert.equal(c.terminal.accessLogs.length, 1);
          assert.deepEqual(c.terminal.accessLogs[0].jsonFormat, { ...ISTIO_JSON_ACCESS_LOG_FORMAT });
        }
      }
    }
  });

  it("uses Istio's text format by default, and accessLogFormat when given", () => {
    const text = translated({ accessLogFile: '/var/log/weft.log' }, SIDECAR);
    const logs = terminals(text[TypeUrl.Listener] as never).map((t) => t.access_log[0].typed_config);
    assert.ok(logs.every((l) => l.path === '/var/log/weft.log' && l.log_format.text_format_source.inline_string.startsWith('[%START_TIME%] "%REQ(:METHOD)%')));
    const custom = translated({ accessLogFile: '/dev/stdout', accessLogFormat: '%RESPONSE_CODE% %UPSTREAM_HOST%' }, SIDECAR);
    const one = terminals(custom[TypeUrl.Listener] as never)[0].access_log[0].typed_config;
    assert.equal(one.log_format.text_format_source.inline_string, '%RESPONSE_CODE% %UPSTREAM_HOST%\n');
    const json = translated({ accessLogFile: '/dev/stdout', accessLogEncoding: 'JSON', accessLogFormat: '{"code":"%RESPONSE_CODE%"}' }, SIDECAR);
    assert.deepEqual(terminals(json[TypeUrl.Listener] as never)[0].access_log[0].typed_config.log_format, { json_format: { code: '%RESPONSE_CODE%' } });
  });
});
