// Trace context propagation (W3C and B3 in, both out), the sampling decision (the caller's when
// it made one, else random at the configured rate), span parentage with and without
// spawn_upstream_span, and what the proxy accepts or refuses in an HCM's `tracing`.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../../src/log/logger';
import type { RequestRecord } from '../../../src/proxy/access-log';
import { compileListener } from '../../../src/proxy/config/listener';
import { Problems, type Json } from '../../../src/proxy/config/validation';
import { extractContext, IdGenerator, injectContext, parseB3Single, parseTraceparent } from '../../../src/proxy/tracing/propagation';
import { Tracer, type TracedRequest } from '../../../src/proxy/tracing/tracer';
import { compileTracing, type TracingSettings } from '../../../src/proxy/tracing/tracing-config';
import { lds, TYPES } from './wire';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';
const OTEL_TYPE = 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig';

function otelTracing(extra: Json = {}): Json {
  return {
    random_sampling: { value: 100 },
    provider: {
      name: 'envoy.tracers.opentelemetry',
      typed_config: {
        '@type': OTEL_TYPE,
        http_service: { http_uri: { uri: 'http://127.0.0.1:4318/v1/traces', cluster: 'outbound|4318||127.0.0.1', timeout: '1s' } },
        service_name: 'client.default',
      },
    },
    ...extra,
  };
}

/** The HCM `tracing` as the proxy receives it: through the real codec inside a Listener. */
function compiled(tracing: Json): { settings?: TracingSettings; errors: string[] } {
  const result = compileListener(
    lds({
      name: 'l',
      address: { socket_address: { address: '127.0.0.1', port_value: 15001 } },
      traffic_direction: 'OUTBOUND',
      filter_chains: [
        {
          filters: [
            {
              name: 'envoy.filters.network.http_connection_manager',
              typed_config: {
                '@type': TYPES.hcm,
                stat_prefix: 'outbound',
                rds: { config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: 'r' },
                http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': TYPES.router } }],
                tracing,
              },
            },
          ],
        },
      ],
    }),
    'v1',
  );
  if (!result.valid) return { errors: result.errors };
  const terminal = result.result.filterChains[0].terminal;
  return { settings: terminal.kind === 'http' ? terminal.tracing : undefined, errors: [] };
}

function settings(extra: Json = {}): TracingSettings {
  const s = compiled(otelTracing(extra)).settings;
  assert.ok(s);
  return s;
}

function tracer(randoms: number[] = []): Tracer {
  let i = 0;
  return new Tracer({ nodeId: 'sidecar~127.0.0.1~client.default~default.svc.cluster.local', logger: createLogger({ level: 'error', write: () => undefined }), random: () => randoms[i++ % randoms.length] ?? 0.5 });
}

describe('trace context propagation', () => {
  it('parses W3C traceparent, and refuses what the spec calls invalid', () => {
    assert.deepEqual(parseTraceparent(`00-${TRACE}-${SPAN}-01`), { traceId: TRACE, spanId: SPAN, sampled: true });
    assert.deepEqual(parseTraceparent(`00-${TRACE}-${SPAN}-00`), { traceId: TRACE, spanId: SPAN, sampled: false });
    // A later version may carry more fields; its first four still count.
    assert.deepEqual(parseTraceparent(`01-${TRACE}-${SPAN}-03-extra`), { traceId: TRACE, spanId: SPAN, sampled: true });
    for (const bad of [
      `ff-${TRACE}-${SPAN}-01`,
      `00-${TRACE.toUpperCase()}-${SPAN}-01`,
      `00-${'0'.repeat(32)}-${SPAN}-01`,
      `00-${TRACE}-${'0'.repeat(16)}-01`,
      `00-${TRACE}-${SPAN}-01-extra`,
      `00-${TRACE}-${SPAN}-1`,
      `00-${TRACE.slice(2)}-${SPAN}-01`,
      '',
    ]) {
      assert.equal(parseTraceparent(bad), undefined, bad);
    }
  });

  it('parses single-header b3, including the sampling-only form and 64-bit trace ids', () => {
    assert.deepEqual(parseB3Single(`${TRACE}-${SPAN}-1-${'b7ad6b7169203331'}`), { parent: { traceId: TRACE, spanId: SPAN, sampled: true }, sampled: true });
    assert.deepEqual(parseB3Single(`a3ce929d0e0e4736-${SPAN}`), { parent: { traceId: `0000000000000000a3ce929d0e0e4736`, spanId: SPAN, sampled: undefined } });
    assert.deepEqual(parseB3Single('0'), { sampled: false });
    assert.deepEqual(parseB3Single('d'), { sampled: true });
    assert.equal(parseB3Single(`${TRACE}`), undefined);
  });

  it('prefers traceparent, then b3, then the x-b3-* headers', () => {
    const b3multi = { 'x-b3-traceid': 'a3ce929d0e0e4736', 'x-b3-spanid': 'b7ad6b7169203331', 'x-b3-sampled': '0' };
    assert.deepEqual(extractContext({ traceparent: `00-${TRACE}-${SPAN}-01`, tracestate: ['a=1', 'b=2'], ...b3multi }), {
      parent: { traceId: TRACE, spanId: SPAN, sampled: true, traceState: 'a=1,b=2' },
      sampled: true,
    });
    assert.deepEqual(extractContext({ b3: `${TRACE}-${SPAN}-0`, ...b3multi }).parent?.spanId, SPAN);
    assert.deepEqual(extractContext(b3multi), {
      parent: { traceId: '0000000000000000a3ce929d0e0e4736', spanId: 'b7ad6b7169203331', sampled: false },
      sampled: false,
    });
    // x-b3-flags: 1 is debug: sampled whatever x-b3-sampled says.
    assert.equal(extractContext({ ...b3multi, 'x-b3-flags': '1' }).sampled, true);
    assert.deepEqual(extractContext({ 'x-b3-sampled': '1' }), { sampled: true });
    assert.deepEqual(extractContext({ traceparent: 'garbage' }), {});
    assert.deepEqual(extractContext({}), {});
  });

  it('injects W3C and B3 together, and never leaves a stale header behind', () => {
    const headers: Record<string, string | string[] | undefined> = {
      b3: '1',
      'x-b3-flags': '1',
      'x-b3-parentspanid': 'ffffffffffffffff',
      tracestate: 'stale=1',
    };
    injectContext(headers, { traceId: TRACE, spanId: SPAN, sampled: false });
    assert.deepEqual(
      Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== undefined)),
      {
        traceparent: `00-${TRACE}-${SPAN}-00`,
        'x-b3-traceid': TRACE,
        'x-b3-spanid': SPAN,
        'x-b3-sampled': '0',
        b3: `${TRACE}-${SPAN}-0`,
      },
    );
    injectContext(headers, { traceId: TRACE, spanId: SPAN, sampled: true, traceState: 'k=v' }, 'b7ad6b7169203331');
    assert.equal(headers.traceparent, `00-${TRACE}-${SPAN}-01`);
    assert.equal(headers.tracestate, 'k=v');
    assert.equal(headers['x-b3-parentspanid'], 'b7ad6b7169203331');
    assert.equal(headers.b3, `${TRACE}-${SPAN}-1-b7ad6b7169203331`);
    // What was injected reads back as the same context.
    assert.deepEqual(extractContext(headers).parent, { traceId: TRACE, spanId: SPAN, sampled: true, traceState: 'k=v' });
  });

  it('generates distinct, valid ids', () => {
    const ids = new IdGenerator();
    const spans = new Set(Array.from({ length: 2000 }, () => ids.spanId()));
    assert.equal(spans.size, 2000);
    for (const id of spans) assert.match(id, /^[0-9a-f]{16}$/);
    assert.match(ids.traceId(), /^[0-9a-f]{32}$/);
  });
});

describe('sampling and span parentage', () => {
  it('keeps the caller\'s decision, either way, whatever the local rate', () => {
    const never = settings({ random_sampling: { value: 0 } });
    const always = settings({ random_sampling: { value: 100 } });
    const t = tracer([0]);
    const joined = t.startRequest({ traceparent: `00-${TRACE}-${SPAN}-01` }, never, 'OUTBOUND');
    assert.equal(joined.sampled, true);
    assert.equal(joined.context.traceId, TRACE);
    assert.equal(joined.parentSpanId, SPAN);
    assert.notEqual(joined.context.spanId, SPAN);
    assert.equal(t.startRequest({ traceparent: `00-${TRACE}-${SPAN}-00` }, always, 'OUTBOUND').sampled, false);
    assert.equal(t.startRequest({ 'x-b3-sampled': '0' }, always, 'OUTBOUND').sampled, false);
  });

  it('decides at random, at the configured rate, for requests that bring no decision', () => {
    const half = settings({ random_sampling: { value: 50 } });
    const t = tracer([0.49, 0.51]);
    assert.equal(t.startRequest({}, half, 'INBOUND').sampled, true);
    assert.equal(t.startRequest({}, half, 'INBOUND').sampled, false);
    // A B3 context without a decision ("defer") is joined, and sampled here.
    const deferred = t.startRequest({ 'x-b3-traceid': TRACE, 'x-b3-spanid': SPAN }, half, 'INBOUND');
    assert.equal(deferred.context.traceId, TRACE);
    assert.equal(deferred.sampled, true);
    assert.deepEqual([t.sampled, t.notSampled], [2, 1]);
  });

  it('starts a new trace when none came in; unsampled ones still propagate their ids', () => {
    const never = settings({ random_sampling: { value: 0 } });
    const span = tracer([0]).startRequest({}, never, 'OUTBOUND');
    assert.equal(span.sampled, false);
    assert.equal(span.parentSpanId, undefined);
    const upstream: Record<string, string | string[] | undefined> = {};
    assert.equal(span.upstream(upstream, 'outbound|9080||server.default.svc.cluster.local'), undefined);
    assert.equal(upstream.traceparent, `00-${span.context.traceId}-${span.context.spanId}-00`);
    assert.equal(upstream['x-b3-sampled'], '0');
  });

  it('names the request span as the upstream parent, or a CLIENT child per attempt with spawn_upstream_span', () => {
    const t = tracer();
    const sidecar = t.startRequest({ traceparent: `00-${TRACE}-${SPAN}-01` }, settings(), 'OUTBOUND');
    const h1: Record<string, string | string[] | undefined> = {};
    sidecar.upstream(h1, 'c');
    assert.equal(h1.traceparent, `00-${TRACE}-${sidecar.context.spanId}-01`);
    assert.equal(h1['x-b3-parentspanid'], SPAN);

    const gateway = t.startRequest({}, settings({ spawn_upstream_span: true }), 'OUTBOUND');
    const first: Record<string, string | string[] | undefined> = {};
    const retry: Record<string, string | string[] | undefined> = {};
    const a = gateway.upstream(first, 'c')!;
    const b = gateway.upstream(retry, 'c')!;
    assert.notEqual(a.context.spanId, b.context.spanId, 'each attempt has a span of its own');
    assert.equal(first['x-b3-parentspanid'], gateway.context.spanId);
    assert.equal(extractContext(first).parent?.spanId, a.context.spanId);
    assert.equal(extractContext(retry).parent?.spanId, b.context.spanId);
  });

  it('exports nothing for an unsampled request and never fails one whose collector is unreachable', () => {
    const t = tracer([0.9]);
    const request: TracedRequest = {
      scheme: 'http',
      remoteAddress: '127.0.0.1',
      header: () => undefined,
      metadata: () => undefined,
      record: () => ({ method: 'GET', path: '/', authority: 'a', status: 200, flags: [], protocol: 'HTTP/1.1', bytesReceived: 0, bytesSent: 0 }) as unknown as RequestRecord,
    };
    t.startRequest({}, settings({ random_sampling: { value: 10 } }), 'INBOUND').end(request);
    assert.equal(t.stats.http_reports_sent, 0);
    assert.deepEqual(t.statLines().filter((l) => l.includes('requests_')), ['tracing.weft.requests_sampled: 0', 'tracing.weft.requests_not_sampled: 1']);
  });
});

describe('HCM tracing config', () => {
  it('compiles sampling, custom tags and the OTLP/HTTP endpoint', () => {
    const s = settings({
      random_sampling: { value: 0 },
      max_path_tag_length: 32,
      spawn_upstream_span: true,
      custom_tags: [
        { tag: 'team', literal: { value: 'bookinfo' } },
        { tag: 'stage', environment: { name: 'STAGE', default_value: 'dev' } },
        { tag: 'user', request_header: { name: 'End-User', default_value: 'anonymous' } },
        { tag: 'authz', metadata: { kind: { request: {} }, metadata_key: { key: 'envoy.filters.http.rbac', path: [{ key: 'shadow_effective_policy_id' }] } } },
      ],
    });
    // Percent 0 arrives as an empty message (protobuf drops the default): 0%, not the 100% default.
    assert.equal(s.randomSampling, 0);
    assert.equal(s.overallSampling, 1);
    assert.equal(s.spawnUpstreamSpan, true);
    assert.equal(s.maxPathTagLength, 32);
    assert.equal(s.serviceName, 'client.default');
    assert.deepEqual(s.endpoint, {
      uri: 'http://127.0.0.1:4318/v1/traces',
      cluster: 'outbound|4318||127.0.0.1',
      timeoutMs: 1000,
      headers: [],
      key: s.endpoint.key,
    });
    assert.deepEqual(
      s.customTags.map((t) => [t.tag, t.source.kind]),
      [
        ['team', 'literal'],
        ['stage', 'environment'],
        ['user', 'request-header'],
        ['authz', 'request-metadata'],
      ],
    );
    const t = tracer();
    const value = (i: number) =>
      t.customTagValue(s.customTags[i], {
        scheme: 'http',
        remoteAddress: '',
        header: (n) => (n === 'end-user' ? 'jason' : undefined),
        metadata: (f) => (f === 'envoy.filters.http.rbac' ? { shadow_effective_policy_id: 'p1' } : undefined),
        record: () => ({}) as RequestRecord,
      });
    assert.deepEqual([value(0), value(2), value(3)], ['bookinfo', 'jason', 'p1']);
  });

  it('refuses tracers and exporters the proxy cannot run, naming the field (the listener is NACKed)', () => {
    const zipkin = compiled({
      // The codec does not load ZipkinConfig: it arrives as an undecoded Any, as from Istio.
      provider: { name: 'envoy.tracers.zipkin', typed_config: { type_url: 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig', value: Buffer.alloc(0) } },
    });
    assert.equal(zipkin.errors.length, 1);
    assert.match(zipkin.errors[0], /tracing\.provider\.typed_config: tracer "envoy\.tracers\.zipkin" .* is not supported by the Weft proxy; use envoy\.tracers\.opentelemetry with http_service/);
    const grpc = compiled({ provider: { name: 'envoy.tracers.opentelemetry', typed_config: { '@type': OTEL_TYPE, grpc_service: { envoy_grpc: { cluster_name: 'otel' } } } } });
    assert.match(grpc.errors.join('\n'), /grpc_service: OTLP\/gRPC export is not supported by the Weft proxy; use http_service/);
    assert.match(compiled({ random_sampling: { value: 5 } }).errors.join('\n'), /tracing\.provider: a tracing provider is required/);
    const https = otelTracing();
    https.provider.typed_config.http_service.http_uri.uri = 'https://collector:4318/v1/traces';
    assert.match(compiled(https).errors.join('\n'), /only plaintext http:\/\/ collectors are supported/);
  });

  it('leaves an HCM without tracing untraced', () => {
    const problems = new Problems('Listener "x"');
    assert.equal(compileTracing(undefined, problems, 'tracing'), undefined);
    assert.deepEqual(problems.errors, []);
  });
});
