// Retry decisions (Envoy's retry_on semantics), backoff bounds, and small request-time helpers.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileRetryPolicy } from '../../../src/proxy/config/route-config';
import { Problems } from '../../../src/proxy/config/validation';
import { parseGrpcTimeout, readCookie, retriableFailure, retriableResponse, retryBackoffMs } from '../../../src/proxy/http/forwarder';
import { UpstreamFailure } from '../../../src/proxy/upstream/upstream-call';

function policy(retryOn: string, extra: Record<string, unknown> = {}) {
  const problems = new Problems('test');
  const p = compileRetryPolicy({ retry_on: retryOn, num_retries: 2, ...extra }, problems, 'retry_policy');
  assert.deepEqual(problems.errors, []);
  return p;
}

const connectFailure = new UpstreamFailure('connect-failure', 'ECONNREFUSED', true);
const reset = new UpstreamFailure('connection-termination', 'socket closed', true);
const refused = new UpstreamFailure('refused-stream', 'REFUSED_STREAM', true);

describe('retry_on: responses', () => {
  it('5xx retries every 5xx; gateway-error only 502/503/504', () => {
    assert.equal(retriableResponse(policy('5xx'), 500, []), true);
    assert.equal(retriableResponse(policy('5xx'), 404, []), false);
    assert.equal(retriableResponse(policy('gateway-error'), 500, []), false);
    assert.equal(retriableResponse(policy('gateway-error'), 503, []), true);
  });
  it('retriable-status-codes and retriable-4xx (409)', () => {
    const p = policy('retriable-status-codes', { retriable_status_codes: [429] });
    assert.equal(retriableResponse(p, 429, []), true);
    assert.equal(retriableResponse(p, 503, []), false);
    assert.equal(retriableResponse(policy('retriable-4xx'), 409, []), true);
  });
  it('gRPC conditions read grpc-status from the headers (trailers-only responses)', () => {
    const p = policy('unavailable,cancelled');
    assert.equal(retriableResponse(p, 200, ['grpc-status', '14']), true);
    assert.equal(retriableResponse(p, 200, ['grpc-status', '1']), true);
    assert.equal(retriableResponse(p, 200, ['grpc-status', '13']), false);
    assert.equal(retriableResponse(p, 200, []), false);
  });
  it('retriable-headers', () => {
    const p = policy('retriable-headers', { retriable_headers: [{ name: 'x-retry-me', string_match: { exact: 'yes' } }] });
    assert.equal(retriableResponse(p, 200, ['x-retry-me', 'yes']), true);
    assert.equal(retriableResponse(p, 200, ['x-retry-me', 'no']), false);
  });
});

describe('retry_on: failures', () => {
  it('connect-failure covers only connection failures', () => {
    assert.equal(retriableFailure(policy('connect-failure'), connectFailure), true);
    assert.equal(retriableFailure(policy('connect-failure'), reset), false);
    assert.equal(retriableFailure(policy('connect-failure'), 'timeout'), false);
  });
  it('5xx, gateway-error and reset cover resets and per-try timeouts too', () => {
    for (const cond of ['5xx', 'gateway-error', 'reset']) {
      assert.equal(retriableFailure(policy(cond), reset), true, cond);
      assert.equal(retriableFailure(policy(cond), 'timeout'), true, cond);
    }
  });
  it('refused-stream', () => {
    assert.equal(retriableFailure(policy('refused-stream'), refused), true);
    assert.equal(retriableFailure(policy('refused-stream'), reset), false);
  });
  it('an unknown condition is refused at config time', () => {
    const problems = new Problems('RouteConfiguration "x"');
    compileRetryPolicy({ retry_on: '5xx,sometimes' }, problems, 'retry_policy');
    assert.match(problems.errors[0], /retry_policy\.retry_on: unknown retry condition "sometimes"/);
  });
});

describe('backoff', () => {
  it('is fully jittered and bounded by (2^n - 1) x base and max_interval', () => {
    const p = policy('5xx', { retry_back_off: { base_interval: '0.1s', max_interval: '0.25s' } });
    assert.equal(retryBackoffMs(p, 1, () => 0.999), 99);
    assert.equal(retryBackoffMs(p, 2, () => 0.999), 249);
    assert.equal(retryBackoffMs(p, 5, () => 0.999), 249);
    assert.equal(retryBackoffMs(p, 3, () => 0), 0);
  });
});

describe('helpers', () => {
  it('parses grpc-timeout', () => {
    assert.equal(parseGrpcTimeout('2S'), 2000);
    assert.equal(parseGrpcTimeout('150m'), 150);
    assert.equal(parseGrpcTimeout('1H'), 3_600_000);
    assert.equal(parseGrpcTimeout('10x'), undefined);
  });
  it('reads cookies', () => {
    assert.equal(readCookie('a=1; session="abc"; b=2', 'session'), 'abc');
    assert.equal(readCookie('a=1', 'session'), undefined);
  });
});

describe('path normalisation (HCM normalize_path, merge_slashes)', () => {
  it('removes dot segments and merges slashes, leaving the query alone', async () => {
    const { normalizePath } = await import('../../../src/proxy/http/http-stream');
    assert.equal(normalizePath('/a/b/../c', true, false), '/a/c');
    assert.equal(normalizePath('/../../etc/passwd', true, false), '/etc/passwd');
    assert.equal(normalizePath('/a//b?x=//', false, true), '/a/b?x=//');
    assert.equal(normalizePath('/a\\b/../c', true, false), '/a/c');
    assert.equal(normalizePath('/reviews/1', true, true), '/reviews/1');
  });
});
