// Istio's Telemetry API: the schema and Istio's ValidateTelemetry, which Telemetry resources apply
// to a proxy (root namespace < namespace < workload selector), and what they make of tracing and
// access logging, down to the HCM `tracing` the translator emits.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConfigResource } from '../../../src/config/resources';
import { createSnapshot, DEFAULT_MESH_CONFIG, type MeshConfig, type MeshSnapshot } from '../../../src/model/snapshot';
import type { ProxyNode } from '../../../src/model/proxy';
import { TypeUrl } from '../../../src/xds/protos';
import { createTranslator, parseProxyNode } from '../../../src/xds/translate';
import { accessLogEnabled, accessLogsFor, applicableTelemetries, tracingFor } from '../../../src/xds/translate/telemetry';
import { hcmTracing } from '../../../src/xds/translate/tracing';
import { check, paths, validResources } from './config-test-support';

function telemetryYaml(spec: string, o: { name?: string; namespace?: string; apiVersion?: string } = {}): string {
  return `apiVersion: ${o.apiVersion ?? 'telemetry.istio.io/v1'}
kind: Telemetry
metadata: {name: ${o.name ?? 'test'}, namespace: ${o.namespace ?? 'default'}}
spec:
${spec
  .replace(/^\n/, '')
  .split('\n')
  .map((l) => `  ${l}`)
  .join('\n')}
`;
}

function errorsOf(spec: string): string[] {
  const r = check(telemetryYaml(spec));
  return r.errors.map((e) => `${e.path}: ${e.message}`);
}

const OTEL: MeshConfig = {
  ...DEFAULT_MESH_CONFIG,
  extensionProviders: [
    { name: 'otel', opentelemetry: { service: 'otel-collector.observability.svc.cluster.local', port: 4318, http: { path: '/v1/traces' } } },
    { name: 'other-otel', opentelemetry: { service: '10.0.0.9', port: 4318, http: { timeout: '2s' } } },
    { name: 'zipkin', unsupported: 'zipkin' },
    { name: 'file', envoyFileAccessLog: { path: '/tmp/access.log' } },
  ],
};

function snapshotOf(yaml: string, mesh: MeshConfig = OTEL): MeshSnapshot {
  return createSnapshot({ sequence: 1, reason: 'test', resources: yaml ? validResources(yaml) : [], meshConfig: mesh, createdAt: new Date(0) });
}

function sidecar(name: string, labels: Record<string, string>, namespace = 'default'): ProxyNode {
  return parseProxyNode({ id: `sidecar~127.0.0.1~${name}.${namespace}~${namespace}.svc.cluster.local`, metadata: { NAMESPACE: namespace, WORKLOAD_NAME: name, LABELS: labels } });
}

const ROOT = telemetryYaml(
  `
tracing:
- providers: [{name: otel}]
  randomSamplingPercentage: 10
accessLogging:
- providers: [{name: envoy}]
`,
  { name: 'mesh-default', namespace: 'istio-system' },
);
const NAMESPACE = telemetryYaml(
  `
tracing:
- randomSamplingPercentage: 50
  customTags:
    team: {literal: {value: bookinfo}}
`,
  { name: 'namespace-default' },
);
const REVIEWS = telemetryYaml(
  `
selector: {matchLabels: {app: reviews}}
tracing:
- providers: [{name: other-otel}]
  randomSamplingPercentage: 100
accessLogging:
- disabled: true
`,
  { name: 'reviews' },
);

describe('Telemetry', () => {
  describe('validation', () => {
    it("accepts Istio's examples in telemetry.istio.io v1 and v1alpha1", () => {
      for (const apiVersion of ['telemetry.istio.io/v1', 'telemetry.istio.io/v1alpha1']) {
        const r = check(
          telemetryYaml(
            `
selector: {matchLabels: {app: reviews}}
tracing:
- providers: [{name: otel}]
  randomSamplingPercentage: 25.5
  disableSpanReporting: false
  customTags:
    my_tag_header: {header: {name: x-header, defaultValue: unknown}}
    my_tag_env: {environment: {name: ENV, defaultValue: dev}}
    my_tag_literal: {literal: {value: x}}
accessLogging:
- providers: [{name: envoy}]
  match: {mode: CLIENT}
  filter: {expression: "true"}
metrics:
- providers: [{name: prometheus}]
  overrides:
  - match: {metric: REQUEST_COUNT, mode: CLIENT_AND_SERVER}
    tagOverrides:
      request_host: {operation: REMOVE}
      request_method: {value: request.method}
  - match: {metric: ALL_METRICS}
    disabled: true
`,
            { apiVersion },
          ),
        );
        assert.deepEqual(r.errors, [], r.errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
        assert.equal(r.resource?.kind, 'Telemetry');
      }
    });

    it('refuses CEL filters it cannot evaluate, with the reason and what to do instead', () => {
      const [error] = errorsOf(`
accessLogging:
- providers: [{name: envoy}]
  filter: {expression: "response.code >= 400"}
`);
      assert.match(error, /^spec\.accessLogging\[0\]\.filter\.expression: CEL filter "response\.code >= 400" is not supported: Weft proxies do not evaluate CEL/);
      assert.match(error, /disabled: true/);
      assert.deepEqual(errorsOf('accessLogging: [{filter: {expression: "false"}}]'), []);
    });

    it("checks Istio's rules on tracing, custom tags and metric overrides", () => {
      assert.deepEqual(paths(check(telemetryYaml('tracing: [{randomSamplingPercentage: 101}]')).errors), ['spec.tracing[0].randomSamplingPercentage']);
      assert.deepEqual(errorsOf('tracing: [{randomSamplingPercentage: 1}, {randomSamplingPercentage: 2}]'), [
        'spec.tracing[1]: multiple tracing entries are not supported; use one',
      ]);
      assert.deepEqual(paths(check(telemetryYaml('tracing: [{customTags: {a: {literal: {value: x}, header: {name: y}}}}]')).errors), [
        'spec.tracing[0].customTags.a.header',
      ]);
      assert.deepEqual(paths(check(telemetryYaml('tracing: [{customTags: {a: {}}}]')).errors), ['spec.tracing[0].customTags.a']);
      assert.deepEqual(paths(check(telemetryYaml('tracing: [{customTags: {a: {formatter: {value: "%REQ(x)%"}}}}]')).errors), [
        'spec.tracing[0].customTags.a.formatter',
      ]);
      assert.deepEqual(
        errorsOf(`
metrics:
- overrides:
  - match: {metric: REQUEST_COUNTS}
  - tagOverrides: {a: {operation: REMOVE, value: x}, b: {operation: UPSERT}}
`),
        [
          'spec.metrics[0].overrides[0].match.metric: "REQUEST_COUNTS" is not one of ALL_METRICS, REQUEST_COUNT, REQUEST_DURATION, REQUEST_SIZE, RESPONSE_SIZE, TCP_OPENED_CONNECTIONS, TCP_CLOSED_CONNECTIONS, TCP_SENT_BYTES, TCP_RECEIVED_BYTES, GRPC_REQUEST_MESSAGES, GRPC_RESPONSE_MESSAGES',
          'spec.metrics[0].overrides[1].tagOverrides.a.value: value must not be set when operation is REMOVE',
          'spec.metrics[0].overrides[1].tagOverrides.b.value: value must be set when operation is UPSERT',
        ],
      );
      assert.deepEqual(paths(check(telemetryYaml('selector: {matchLabels: {app: a}}\ntargetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: gw}]')).errors), [
        'spec.targetRefs',
      ]);
      assert.deepEqual(paths(check(telemetryYaml('tracing: [{sampling: 5}]')).errors), ['spec.tracing[0].sampling']);
    });
  });

  describe('precedence (root namespace < namespace < workload selector)', () => {
    const snapshot = snapshotOf([ROOT, NAMESPACE, REVIEWS].join('---\n'));
    const productpage = sidecar('productpage-v1', { app: 'productpage', version: 'v1' });
    const reviews = sidecar('reviews-v2', { app: 'reviews', version: 'v2' });
    const elsewhere = sidecar('ratings-v1', { app: 'ratings' }, 'prod');

    it('picks the root, namespace and selecting Telemetry for each proxy', () => {
      const names = (p: ProxyNode) => {
        const a = applicableTelemetries(snapshot, p);
        return [a.root?.metadata.name, a.namespace?.metadata.name, a.workload?.metadata.name];
      };
      assert.deepEqual(names(productpage), ['mesh-default', 'namespace-default', undefined]);
      assert.deepEqual(names(reviews), ['mesh-default', 'namespace-default', 'reviews']);
      assert.deepEqual(names(elsewhere), ['mesh-default', undefined, undefined]);
    });

    it('merges tracing field by field, deeper levels winning', () => {
      const tp = tracingFor(snapshot, productpage)!;
      assert.equal(tp.client.provider?.name, 'otel');
      assert.equal(tp.client.randomSamplingPercentage, 50);
      assert.deepEqual(tp.server.customTags, { team: { literal: { value: 'bookinfo' } } });
      const tr = tracingFor(snapshot, reviews)!;
      assert.equal(tr.server.provider?.name, 'other-otel');
      assert.equal(tr.server.randomSamplingPercentage, 100);
      assert.equal(tracingFor(snapshot, elsewhere)!.client.randomSamplingPercentage, 10);
    });

    it('turns access logging off where a deeper level disables it', () => {
      assert.deepEqual(accessLogsFor(snapshot, productpage, 'outbound'), { source: 'telemetry', logs: [{ provider: 'envoy', file: { path: '/dev/stdout' } }] });
      assert.deepEqual(accessLogsFor(snapshot, reviews, 'inbound'), { source: 'telemetry', logs: [] });
      assert.equal(accessLogEnabled(snapshot, reviews, 'outbound'), false);
      assert.equal(accessLogEnabled(snapshot, productpage, 'inbound'), true);
    });

    it('leaves the decision to the mesh config when no Telemetry or default provider speaks', () => {
      const none = snapshotOf('');
      assert.equal(tracingFor(none, productpage), undefined);
      assert.deepEqual(accessLogsFor(none, productpage, 'inbound'), { source: 'mesh-config' });
      assert.equal(accessLogEnabled(none, productpage, 'inbound'), false);
      const withFile = snapshotOf('', { ...OTEL, accessLogFile: '/dev/stdout' } as MeshConfig);
      assert.equal(accessLogEnabled(withFile, productpage, 'inbound'), true);
      // meshConfig.defaultProviders alone decides too.
      const defaults = snapshotOf('', { ...OTEL, defaultProviders: { tracing: ['otel'], accessLogging: ['file'] } });
      assert.equal(tracingFor(defaults, productpage)?.client.provider?.name, 'otel');
      assert.deepEqual(accessLogsFor(defaults, productpage, 'inbound'), { source: 'telemetry', logs: [{ provider: 'file', file: { path: '/tmp/access.log' } }] });
    });

    it('applies match.mode to one side only', () => {
      const s = snapshotOf(
        [
          ROOT,
          telemetryYaml(
            `
tracing:
- match: {mode: SERVER}
  disableSpanReporting: true
accessLogging:
- match: {mode: CLIENT}
  disabled: true
`,
            { name: 'server-side' },
          ),
        ].join('---\n'),
      );
      assert.equal(hcmTracing(s, productpage, 'inbound'), undefined);
      assert.ok(hcmTracing(s, productpage, 'outbound'));
      assert.equal(accessLogEnabled(s, productpage, 'outbound'), false);
      assert.equal(accessLogEnabled(s, productpage, 'inbound'), true);
    });
  });

  describe('HCM tracing', () => {
    const productpage = sidecar('productpage-v1', { app: 'productpage', version: 'v1' });

    it('samples at Istio precedence: Telemetry, else meshConfig.defaultConfig.tracing.sampling, else 1%', () => {
      const defaults: MeshConfig = { ...OTEL, defaultProviders: { tracing: ['otel'] } };
      const sampling = (s: MeshSnapshot) => (hcmTracing(s, productpage, 'outbound')?.random_sampling as { value: number }).value;
      assert.equal(sampling(snapshotOf('', defaults)), 1);
      assert.equal(sampling(snapshotOf('', { ...defaults, defaultConfig: { tracing: { sampling: 0 } } })), 1, "Istio reads 0 as 'unset'");
      assert.equal(sampling(snapshotOf('', { ...defaults, defaultConfig: { tracing: { sampling: 100 } } })), 100);
      assert.equal(sampling(snapshotOf(telemetryYaml('tracing: [{randomSamplingPercentage: 0}]'), { ...defaults, defaultConfig: { tracing: { sampling: 100 } } })), 0);
    });

    it('emits the OpenTelemetry provider, service name and Istio tags of the proxy', () => {
      const s = snapshotOf(ROOT);
      assert.deepEqual(hcmTracing(s, productpage, 'outbound'), {
        client_sampling: { value: 100 },
        random_sampling: { value: 10 },
        overall_sampling: { value: 100 },
        custom_tags: [
          { tag: 'istio.canonical_revision', literal: { value: 'v1' } },
          { tag: 'istio.canonical_service', literal: { value: 'productpage' } },
          { tag: 'istio.cluster_id', literal: { value: 'Kubernetes' } },
          { tag: 'istio.mesh_id', literal: { value: 'cluster.local' } },
          { tag: 'istio.namespace', literal: { value: 'default' } },
        ],
        provider: {
          name: 'envoy.tracers.opentelemetry',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig',
            http_service: {
              http_uri: {
                uri: 'http://otel-collector.observability.svc.cluster.local:4318/v1/traces',
                cluster: 'outbound|4318||otel-collector.observability.svc.cluster.local',
                timeout: '5s',
              },
            },
            service_name: 'productpage.default',
          },
        },
      });
    });

    it('configures no tracing for providers Weft cannot serve, or with span reporting off', () => {
      assert.equal(hcmTracing(snapshotOf(telemetryYaml('tracing: [{providers: [{name: zipkin}]}]')), productpage, 'outbound'), undefined);
      assert.equal(hcmTracing(snapshotOf(telemetryYaml('tracing: [{providers: [{name: nope}]}]')), productpage, 'outbound'), undefined);
      assert.equal(hcmTracing(snapshotOf([ROOT, telemetryYaml('tracing: [{disableSpanReporting: true}]')].join('---\n')), productpage, 'inbound'), undefined);
    });

    it('gives proxies of different services their own listeners, and the same service shared ones', () => {
      const resources: ConfigResource[] = validResources(`
apiVersion: v1
kind: Service
metadata: {name: details, namespace: default}
spec: {selector: {app: details}, ports: [{name: http, port: 9080}]}
`);
      const snapshot = createSnapshot({ sequence: 1, reason: 'test', resources: [...resources, ...validResources(ROOT)], meshConfig: OTEL });
      const translate = createTranslator();
      const listener = (p: ProxyNode) => translate(snapshot, p)[TypeUrl.Listener].get('0.0.0.0_9080');
      const a = listener(sidecar('productpage-v1', { app: 'productpage', version: 'v1' }));
      const b = listener(sidecar('productpage-v2', { app: 'productpage', version: 'v1' }));
      const c = listener(sidecar('reviews-v1', { app: 'reviews', version: 'v1' }));
      assert.equal(a, b, 'same service and revision: the very same listener');
      assert.notEqual(a, c);
      const serviceName = (l: unknown) =>
        JSON.stringify(l).match(/"service_name":"([^"]+)"/)?.[1];
      assert.equal(serviceName(a), 'productpage.default');
      assert.equal(serviceName(c), 'reviews.default');
    });
  });
});
