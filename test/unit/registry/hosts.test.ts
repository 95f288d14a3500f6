// Host rules: Istio short-name resolution and wildcard matching.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hostCovers, hostsIntersect, labelsMatch, moreSpecificHost, toFqdn } from '../../../src/registry/hosts';

describe('toFqdn (Istio ResolveShortnameToFQDN)', () => {
  it('resolves names with no dot in the given namespace', () => {
    assert.equal(toFqdn('reviews', 'bookinfo', 'cluster.local'), 'reviews.bookinfo.svc.cluster.local');
  });
  it('leaves name.ns as written, as Istio does (only dot-less names are short)', () => {
    assert.equal(toFqdn('reviews.prod', 'bookinfo', 'cluster.local'), 'reviews.prod');
  });
  it('leaves IP addresses alone', () => {
    assert.equal(toFqdn('::1', 'x', 'cluster.local'), '::1');
  });
  it('leaves other names and wildcards unchanged', () => {
    assert.equal(toFqdn('reviews.prod.svc.cluster.local', 'x', 'cluster.local'), 'reviews.prod.svc.cluster.local');
    assert.equal(toFqdn('api.example.com', 'x', 'cluster.local'), 'api.example.com');
    assert.equal(toFqdn('*', 'x', 'cluster.local'), '*');
    assert.equal(toFqdn('*.example.com', 'x', 'cluster.local'), '*.example.com');
  });
});

describe('host matching', () => {
  it('covers by wildcard suffix, never the bare suffix', () => {
    assert.ok(hostCovers('*.example.com', 'a.example.com'));
    assert.ok(hostCovers('*.example.com', 'a.b.example.com'));
    assert.ok(!hostCovers('*.example.com', 'example.com'));
    assert.ok(hostCovers('*', 'anything'));
    assert.ok(hostCovers('*.com', '*.example.com'));
    assert.ok(!hostCovers('a.example.com', '*.example.com'));
  });
  it('intersects in either direction and picks the more specific host', () => {
    assert.ok(hostsIntersect('a.example.com', '*.example.com'));
    assert.ok(!hostsIntersect('a.example.com', 'b.example.com'));
    assert.equal(moreSpecificHost('*', 'bookinfo.com'), 'bookinfo.com');
    assert.equal(moreSpecificHost('a.example.com', '*.example.com'), 'a.example.com');
  });
  it('matches label selectors as subsets', () => {
    assert.ok(labelsMatch({ app: 'a' }, { app: 'a', version: 'v1' }));
    assert.ok(!labelsMatch({ app: 'a', version: 'v2' }, { app: 'a', version: 'v1' }));
    assert.ok(labelsMatch(undefined, {}));
  });
});
