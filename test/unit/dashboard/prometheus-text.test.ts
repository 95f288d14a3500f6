// The Prometheus text parser: every form the exposition format allows, checked against what
// prom-client (the writer Weft's own control plane uses) prints.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import { parsePrometheusText } from '../../../src/dashboard/prometheus-text';

describe('parsePrometheusText', () => {
  it('reads samples with and without labels, HELP and TYPE', () => {
    const parsed = parsePrometheusText(
      [
        '# HELP istio_requests_total Total requests.',
        '# TYPE istio_requests_total counter',
        'istio_requests_total{reporter="destination",response_code="200"} 42',
        'envoy_server_live 1',
        '',
        '   # indented comment',
        'up{} 1',
      ].join('\n'),
    );
    assert.deepEqual(parsed.problems, []);
    assert.deepEqual(parsed.samples, [
      { name: 'istio_requests_total', labels: { reporter: 'destination', response_code: '200' }, value: 42 },
      { name: 'envoy_server_live', labels: {}, value: 1 },
      { name: 'up', labels: {}, value: 1 },
    ]);
    assert.equal(parsed.types.get('istio_requests_total'), 'counter');
    assert.equal(parsed.help.get('istio_requests_total'), 'Total requests.');
  });

  it('unescapes label values (\\\\, \\", \\n) and keeps commas, braces and spaces inside them', () => {
    const parsed = parsePrometheusText('m{path="C:\\\\dir",quote="say \\"hi\\"",nl="a\\nb",odd="x,y} z=1"} 3\n');
    assert.deepEqual(parsed.problems, []);
    assert.deepEqual(parsed.samples[0].labels, { path: 'C:\\dir', quote: 'say "hi"', nl: 'a\nb', odd: 'x,y} z=1' });
  });

  it('accepts a trailing comma, spaces around tokens, CRLF line ends and timestamps', () => {
    const parsed = parsePrometheusText('m { a = "1" , b="2", } 7 1700000000000\r\nn\t2.5e3\r\n');
    assert.deepEqual(parsed.problems, []);
    assert.deepEqual(parsed.samples, [
      { name: 'm', labels: { a: '1', b: '2' }, value: 7, timestampMs: 1700000000000 },
      { name: 'n', labels: {}, value: 2500 },
    ]);
  });

  it('reads NaN, +Inf, -Inf and the +Inf bucket bound', () => {
    const parsed = parsePrometheusText('a NaN\nb +Inf\nc -Inf\nd_bucket{le="+Inf"} 9\n');
    const [a, b, c, d] = parsed.samples;
    assert.ok(Number.isNaN(a.value));
    assert.equal(b.value, Infinity);
    assert.equal(c.value, -Infinity);
    assert.equal(d.labels.le, '+Inf');
  });

  it('reports a malformed line with its number and keeps reading the rest', () => {
    const parsed = parsePrometheusText(['ok 1', 'bad{a="1" 2', 'novalue', 'x{a=unquoted} 1', 'y{a="\\q"} 1', 'z 12abc', 'ok2 2', '# TYPE q nonsense'].join('\n'));
    assert.deepEqual(
      parsed.samples.map((s) => s.name),
      ['ok', 'ok2'],
    );
    assert.deepEqual(
      parsed.problems.map((p) => p.line),
      [2, 3, 4, 5, 6, 8],
    );
    assert.match(parsed.problems[0].message, /expected "," or "}"/);
    assert.match(parsed.problems[1].message, /novalue: missing value/);
    assert.match(parsed.problems[5].message, /unknown type "nonsense"/);
  });

  it("reads back exactly what prom-client writes, histograms included", async () => {
    const registry = new Registry();
    const counter = new Counter({ name: 'istio_requests_total', help: 'Requests, "quoted" help\\with backslash', labelNames: ['source_workload', 'response_code'], registers: [registry] });
    counter.inc({ source_workload: 'productpage-v1', response_code: '200' }, 5);
    counter.inc({ source_workload: 'we"ird\\name\nx', response_code: '503' }, 2);
    const histogram = new Histogram({ name: 'istio_request_duration_milliseconds', help: 'Durations.', labelNames: ['reporter'], buckets: [1, 5, 10], registers: [registry] });
    for (const v of [0.5, 3, 7, 20]) histogram.observe({ reporter: 'destination' }, v);

    const parsed = parsePrometheusText(await registry.metrics());
    assert.deepEqual(parsed.problems, []);
    assert.equal(parsed.types.get('istio_request_duration_milliseconds'), 'histogram');
    const requests = parsed.samples.filter((s) => s.name === 'istio_requests_total');
    assert.deepEqual(
      requests.map((s) => [s.labels.source_workload, s.labels.response_code, s.value]),
      [
        ['productpage-v1', '200', 5],
        ['we"ird\\name\nx', '503', 2],
      ],
    );
    const buckets = parsed.samples.filter((s) => s.name === 'istio_request_duration_milliseconds_bucket').map((s) => [s.labels.le, s.value]);
    assert.deepEqual(buckets, [
      ['1', 1],
      ['5', 2],
      ['10', 3],
      ['+Inf', 4],
    ]);
    assert.equal(parsed.samples.find((s) => s.name === 'istio_request_duration_milliseconds_sum')?.value, 30.5);
  });
});
