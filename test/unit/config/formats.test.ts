// Istio's value formats: durations, hosts, RE2 regexes, header values.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  gatewayBoundHostError,
  headerValueError,
  hostIsSubsetOf,
  hostsOverlap,
  parseDuration,
  re2Error,
  wildcardDomainError,
} from '../../../src/config/validate/formats';

describe('parseDuration', () => {
  it('reads Go duration strings into milliseconds', () => {
    assert.equal(parseDuration('3s'), 3000);
    assert.equal(parseDuration('1.5s'), 1500);
    assert.equal(parseDuration('100ms'), 100);
    assert.equal(parseDuration('1m'), 60000);
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('1.1s'), 1100);
    assert.equal(parseDuration('250us'), 0.25);
    assert.equal(parseDuration('0'), 0);
    assert.equal(parseDuration('-2s'), -2000);
  });

  it('rejects numbers without units and unknown units', () => {
    for (const bad of ['', '5', '1d', 's', '1.s.', '1 s', 'ms', '.']) assert.equal(parseDuration(bad), undefined, bad);
  });
});

describe('hosts', () => {
  it('accepts FQDNs and a leading wildcard label only', () => {
    assert.equal(wildcardDomainError('*'), undefined);
    assert.equal(wildcardDomainError('*.example.com'), undefined);
    assert.equal(wildcardDomainError('reviews'), undefined);
    assert.equal(wildcardDomainError('istio.io.'), undefined);
    assert.match(wildcardDomainError('foo.*.com') ?? '', /invalid/);
    assert.match(wildcardDomainError('example.123') ?? '', /all-numeric/);
    assert.match(wildcardDomainError('') ?? '', /empty/);
  });

  it('accepts the outbound_ SNI form on gateways', () => {
    assert.equal(gatewayBoundHostError('outbound_.80_._.e2e.foobar.mesh', true), undefined);
    assert.match(gatewayBoundHostError('outbound_.x_._.e2e', true) ?? '', /invalid/);
  });

  it("matches wildcards the way Istio's host.Name does", () => {
    assert.equal(hostsOverlap('*.example.com', 'api.example.com'), true);
    assert.equal(hostsOverlap('*.example.com', '*.com'), true);
    assert.equal(hostsOverlap('a.example.com', 'b.example.com'), false);
    assert.equal(hostIsSubsetOf('login.bookinfo.com', '*.bookinfo.com'), true);
    assert.equal(hostIsSubsetOf('*.bookinfo.com', 'login.bookinfo.com'), false);
    assert.equal(hostIsSubsetOf('*.a.bookinfo.com', '*.bookinfo.com'), true);
  });
});

describe('re2Error', () => {
  it('accepts RE2 syntax, including its flags and named groups', () => {
    for (const ok of ['^/api/v[0-9]+/.*', '(?i)^/Reviews', '(?P<id>[0-9]+)', '(?i:abc)def', '\\d+\\.\\d+'])
      assert.equal(re2Error(ok), undefined, ok);
  });

  it('rejects what RE2 does not support and syntax errors', () => {
    assert.match(re2Error('(?=lookahead)') ?? '', /lookahead or lookbehind/);
    assert.match(re2Error('(a)\\1') ?? '', /backreference/);
    assert.match(re2Error('(unclosed') ?? '', /invalid regex/);
    assert.match(re2Error('a'.repeat(1025)) ?? '', /too large/);
  });
});

describe('headerValueError', () => {
  it("accepts Envoy's %COMMAND% and %% forms and rejects stray percent signs and control characters", () => {
    for (const ok of ['plain', '%HOSTNAME%', '100%%', 'prefix %REQ(x-foo)% suffix', '%DOWNSTREAM_REMOTE_ADDRESS%'])
      assert.equal(headerValueError(ok), undefined, ok);
    for (const bad of ['abc%123', '%START_TIME%%', 'line\nbreak']) assert.notEqual(headerValueError(bad), undefined, bad);
  });
});
