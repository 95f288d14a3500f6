// Route compilation details: Istio's retry conversion, match translation, virtual host domains.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MeshService } from '../../../src/registry/types';
import { retryPolicy, translateRouteMatch, virtualHostDomains } from '../../../src/xds/translate/routes';

const PREVIOUS_HOSTS = [
  {
    name: 'envoy.retry_host_predicates.previous_hosts',
    typed_config: { '@type': 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate' },
  },
];

describe('retryPolicy (Istio retry.ConvertPolicy)', () => {
  it("uses Istio's default policy when retries are unset", () => {
    assert.deepEqual(retryPolicy(undefined), {
      retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
      num_retries: 2,
      retriable_status_codes: [503],
      retry_host_predicate: PREVIOUS_HOSTS,
      host_selection_retry_max_attempts: 5,
    });
  });
  it('disables retries for attempts 0', () => {
    assert.equal(retryPolicy({ attempts: 0 }), undefined);
  });
  it('splits status codes out of retryOn', () => {
    assert.deepEqual(retryPolicy({ attempts: 3, retryOn: '5xx,502, 504', perTryTimeout: '2s' }), {
      retry_on: '5xx,retriable-status-codes',
      num_retries: 3,
      retriable_status_codes: [502, 504],
      retry_host_predicate: PREVIOUS_HOSTS,
      host_selection_retry_max_attempts: 5,
      per_try_timeout: '2s',
    });
  });
});

describe('translateRouteMatch', () => {
  it('translates uri, headers, method, authority and query parameters', () => {
    assert.deepEqual(
      translateRouteMatch({
        uri: { regex: '/a/.*' },
        ignoreUriCase: true,
        headers: { 'End-User': { exact: 'jason' }, present: {}, anything: { prefix: '' } },
        method: { exact: 'POST' },
        authority: { prefix: 'api.' },
        queryParams: { q: { exact: '1' } },
      }),
      {
        safe_regex: { regex: '/a/.*' },
        case_sensitive: false,
        headers: [
          { name: 'anything', present_match: true },
          { name: 'end-user', string_match: { exact: 'jason' } },
          { name: 'present', present_match: true },
          { name: ':method', string_match: { exact: 'POST' } },
          { name: ':authority', string_match: { prefix: 'api.' } },
        ],
        query_parameters: [{ name: 'q', string_match: { exact: '1' } }],
      },
    );
  });
  it('matches everything without a uri', () => {
    assert.deepEqual(translateRouteMatch(undefined), { prefix: '/' });
  });
});

describe('virtualHostDomains (Istio generateVirtualHostDomains)', () => {
  const svc: MeshService = {
    hostname: 'reviews.bookinfo.svc.cluster.local',
    namespace: 'bookinfo',
    name: 'reviews',
    ports: [],
    resolution: 'STATIC',
    location: 'MESH_INTERNAL',
    addresses: ['10.96.0.7'],
    declaredBy: 'Service/bookinfo/reviews',
  };
  it('adds short names in the same namespace', () => {
    assert.deepEqual(virtualHostDomains(svc, 9080, 'bookinfo', 'cluster.local', false), [
      'reviews.bookinfo.svc.cluster.local',
      'reviews',
      'reviews.bookinfo.svc',
      'reviews.bookinfo',
      '10.96.0.7',
    ]);
  });
  it('adds only namespace-qualified names from another namespace, with ports when asked', () => {
    assert.deepEqual(virtualHostDomains(svc, 9080, 'other', 'cluster.local', true), [
      'reviews.bookinfo.svc.cluster.local',
      'reviews.bookinfo.svc.cluster.local:9080',
      'reviews.bookinfo',
      'reviews.bookinfo:9080',
      'reviews.bookinfo.svc',
      'reviews.bookinfo.svc:9080',
      '10.96.0.7',
      '10.96.0.7:9080',
    ]);
  });
});
