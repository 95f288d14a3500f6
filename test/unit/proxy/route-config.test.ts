// RouteConfiguration compilation and request-time matching: virtual host selection, first match
// wins, every matcher kind, weighted clusters, retry/timeout settings, and NACK messages.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileRouteConfig, findVirtualHost } from '../../../src/proxy/config/route-config';
import type { CompiledRouteConfig, ForwardAction } from '../../../src/proxy/config/model';
import { selectRoute } from '../../../src/proxy/http/route-matching';
import type { Json } from '../../../src/proxy/config/validation';
import { rds, requestView, TYPES } from './wire';

function compile(r: Json): CompiledRouteConfig {
  const result = compileRouteConfig(rds(r), 'v1');
  if (!result.valid) assert.fail(result.errors.join('\n'));
  return result.result;
}

function errorsOf(r: Json): string[] {
  const result = compileRouteConfig(rds(r), 'v1');
  assert.equal(result.valid, false, 'expected the route configuration to be rejected');
  return result.valid ? [] : result.errors;
}

const route = (name: string, match: Json, cluster = name): Json => ({ name, match, route: { cluster, timeout: '0s' } });

function routeFor(rc: CompiledRouteConfig, req: Parameters<typeof requestView>[0], random = () => 0.5): string | undefined {
  const view = requestView(req);
  const vh = findVirtualHost(rc, view.authority);
  return vh ? selectRoute(vh, view, random)?.name : undefined;
}

describe('virtual host selection (Envoy order)', () => {
  const rc = compile({
    name: '9080',
    virtual_hosts: [
      { name: 'exact', domains: ['reviews', 'reviews:9080', 'reviews.default.svc.cluster.local'], routes: [route('exact', { prefix: '/' })] },
      { name: 'suffix', domains: ['*.example.com'], routes: [route('suffix', { prefix: '/' })] },
      { name: 'longer-suffix', domains: ['*.api.example.com'], routes: [route('longer-suffix', { prefix: '/' })] },
      { name: 'prefix', domains: ['ratings.*'], routes: [route('prefix', { prefix: '/' })] },
      { name: 'any', domains: ['*'], routes: [route('any', { prefix: '/' })] },
    ],
  });
  it('prefers exact domains, case-insensitively', () => {
    assert.equal(routeFor(rc, { authority: 'REVIEWS:9080' }), 'exact');
    assert.equal(routeFor(rc, { authority: 'reviews.default.svc.cluster.local' }), 'exact');
  });
  it('then the longest suffix wildcard', () => {
    assert.equal(routeFor(rc, { authority: 'v1.api.example.com' }), 'longer-suffix');
    assert.equal(routeFor(rc, { authority: 'www.example.com' }), 'suffix');
  });
  it('then prefix wildcards, then *', () => {
    assert.equal(routeFor(rc, { authority: 'ratings.default' }), 'prefix');
    assert.equal(routeFor(rc, { authority: 'unknown:80' }), 'any');
  });
  it('matches the host with its port unless ignore_port_in_host_matching', () => {
    const strict = compile({ name: 'p', virtual_hosts: [{ name: 'a', domains: ['a'], routes: [route('a', { prefix: '/' })] }] });
    assert.equal(routeFor(strict, { authority: 'a:8080' }), undefined);
    const loose = compile({ name: 'p', ignore_port_in_host_matching: true, virtual_hosts: [{ name: 'a', domains: ['a'], routes: [route('a', { prefix: '/' })] }] });
    assert.equal(routeFor(loose, { authority: 'a:8080' }), 'a');
  });
});

describe('route matching: the first matching route wins', () => {
  const rc = compile({
    name: 'routes',
    virtual_hosts: [
      {
        name: 'vh',
        domains: ['*'],
        routes: [
          route('exact-path', { path: '/login' }),
          route('regex', { safe_regex: { regex: '/api/v[0-9]+/users' } }),
          route('jason', { prefix: '/reviews', headers: [{ name: 'end-user', string_match: { exact: 'jason' } }] }),
          route('post-only', { prefix: '/reviews', headers: [{ name: ':method', string_match: { exact: 'POST' } }] }),
          route('query', { prefix: '/search', query_parameters: [{ name: 'q', string_match: { prefix: 'weft' } }] }),
          route('has-debug', { prefix: '/search', query_parameters: [{ name: 'debug', present_match: true }] }),
          route('ci', { prefix: '/CASE', case_sensitive: false }),
          route('not-canary', { prefix: '/x', headers: [{ name: 'canary', present_match: true, invert_match: true }] }),
          route('authority', { prefix: '/', headers: [{ name: ':authority', string_match: { suffix: '.internal' } }] }),
          route('catch-all', { prefix: '/' }),
        ],
      },
    ],
  });

  it('path exact ignores the query string; prefix and regex too', () => {
    assert.equal(routeFor(rc, { path: '/login?next=/' }), 'exact-path');
    assert.equal(routeFor(rc, { path: '/login/x' }), 'catch-all');
    assert.equal(routeFor(rc, { path: '/api/v2/users?x=1' }), 'regex');
    assert.equal(routeFor(rc, { path: '/api/v2/users/7' }), 'catch-all', 'safe_regex is a full match');
  });
  it('header matches, including the :method pseudo-header', () => {
    assert.equal(routeFor(rc, { path: '/reviews/1', headers: { 'end-user': 'jason' } }), 'jason');
    assert.equal(routeFor(rc, { path: '/reviews/1', method: 'POST' }), 'post-only');
    assert.equal(routeFor(rc, { path: '/reviews/1' }), 'catch-all');
  });
  it('query parameter matches (value and presence)', () => {
    assert.equal(routeFor(rc, { path: '/search?q=weft+mesh' }), 'query');
    assert.equal(routeFor(rc, { path: '/search?debug' }), 'has-debug');
    assert.equal(routeFor(rc, { path: '/search?q=istio' }), 'catch-all');
  });
  it('case-insensitive prefixes and inverted matches', () => {
    assert.equal(routeFor(rc, { path: '/case/Study' }), 'ci');
    assert.equal(routeFor(rc, { path: '/x' }), 'not-canary');
    assert.equal(routeFor(rc, { path: '/x', headers: { canary: '1' } }), 'catch-all');
  });
  it(':authority matches', () => {
    assert.equal(routeFor(rc, { path: '/', authority: 'db.internal' }), 'authority');
  });
  it('runtime_fraction routes a share of requests', () => {
    const frac = compile({
      name: 'f',
      virtual_hosts: [
        {
          name: 'vh',
          domains: ['*'],
          routes: [
            route('tenth', { prefix: '/', runtime_fraction: { default_value: { numerator: 10, denominator: 'HUNDRED' }, runtime_key: 'k' } }),
            route('rest', { prefix: '/' }),
          ],
        },
      ],
    });
    assert.equal(routeFor(frac, {}, () => 0.05), 'tenth');
    assert.equal(routeFor(frac, {}, () => 0.5), 'rest');
  });
});

describe('route actions compile into settings', () => {
  const rc = compile({
    name: 'actions',
    virtual_hosts: [
      {
        name: 'vh',
        domains: ['*'],
        retry_policy: { retry_on: '5xx', num_retries: 1 },
        routes: [
          {
            name: 'weighted',
            match: { prefix: '/w' },
            route: {
              weighted_clusters: { clusters: [{ name: 'v1', weight: 75 }, { name: 'v2', weight: 25 }] },
              timeout: '1.5s',
              retry_policy: {
                retry_on: 'gateway-error,connect-failure,retriable-status-codes',
                num_retries: 3,
                per_try_timeout: '0.2s',
                retriable_status_codes: [409],
                retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts', typed_config: { '@type': TYPES.previousHosts } }],
                host_selection_retry_max_attempts: 5,
              },
              hash_policy: [{ header: { header_name: 'x-user' } }, { cookie: { name: 'session', ttl: '10s' }, terminal: true }],
              request_mirror_policies: [{ cluster: 'mirror', runtime_fraction: { default_value: { numerator: 50 } } }],
              prefix_rewrite: '/v2/',
            },
          },
          { name: 'no-timeout', match: { prefix: '/d' }, route: { cluster: 'c' } },
          { name: 'redirect', match: { prefix: '/r' }, redirect: { https_redirect: true, host_redirect: 'example.com', response_code: 'PERMANENT_REDIRECT' } },
          { name: 'direct', match: { prefix: '/' }, direct_response: { status: 418, body: { inline_string: 'teapot' } } },
        ],
      },
    ],
  });
  const routes = rc.virtualHosts[0].routes;
  it('weighted clusters keep cumulative weights', () => {
    const a = routes[0].action as ForwardAction;
    assert.deepEqual(a.weighted?.cumulative, [75, 100]);
    assert.equal(a.weighted?.total, 100);
  });
  it('timeouts: explicit, and Envoy default 15s when absent', () => {
    assert.equal((routes[0].action as ForwardAction).timeoutMs, 1500);
    assert.equal((routes[1].action as ForwardAction).timeoutMs, 15_000);
  });
  it('retry policy: conditions, counts, per-try timeout, previous hosts, backoff defaults', () => {
    const r = (routes[0].action as ForwardAction).retry!;
    assert.deepEqual([...r.on].sort(), ['connect-failure', 'gateway-error', 'retriable-status-codes']);
    assert.equal(r.numRetries, 3);
    assert.equal(r.perTryTimeoutMs, 200);
    assert.deepEqual([...r.retriableStatusCodes], [409]);
    assert.equal(r.avoidPreviousHosts, true);
    assert.equal(r.hostSelectionMaxAttempts, 5);
    assert.equal(r.backoffBaseMs, 25);
    assert.equal(r.backoffMaxMs, 250);
    assert.equal(rc.virtualHosts[0].retry?.numRetries, 1, 'virtual host retry policy');
  });
  it('hash policies, mirrors and rewrites', () => {
    const a = routes[0].action as ForwardAction;
    assert.deepEqual(
      a.hashPolicies.map((h) => h.kind),
      ['header', 'cookie'],
    );
    assert.equal(a.mirrors[0].cluster, 'mirror');
    assert.equal(a.mirrors[0].probability, 0.5);
    assert.equal(a.prefixRewrite, '/v2/');
  });
  it('redirects and direct responses', () => {
    assert.deepEqual(
      { ...routes[2].action, regexRewrite: undefined },
      { kind: 'redirect', scheme: 'https', host: 'example.com', port: undefined, path: undefined, prefixRewrite: undefined, regexRewrite: undefined, status: 308, stripQuery: false },
    );
    const d = routes[3].action;
    assert.equal(d.kind, 'direct');
    assert.equal(d.kind === 'direct' && d.body?.toString(), 'teapot');
  });
});

describe('refusals name the resource and the field', () => {
  it('an unsupported route action', () => {
    const errors = errorsOf({ name: 'bad', virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, non_forwarding_action: {} }] }] });
    assert.ok(errors.some((e) => e.startsWith('RouteConfiguration "bad": virtual_hosts[0].routes[0]')), errors.join('\n'));
  });
  it('an invalid regex', () => {
    const errors = errorsOf({ name: 'bad', virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [route('r', { safe_regex: { regex: '(' } })] }] });
    assert.match(errors[0], /virtual_hosts\[0\]\.routes\[0\]\.match\.safe_regex\.regex: invalid regex/);
  });
  it('per-route config for a filter the proxy lacks', () => {
    const errors = errorsOf({
      name: 'bad',
      virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ ...route('r', { prefix: '/' }), typed_per_filter_config: { 'envoy.filters.http.rbac': { '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute' } } }] }],
    });
    assert.match(errors.join('\n'), /typed_per_filter_config\.envoy\.filters\.http\.rbac: per-route config of type "envoy\.extensions\.filters\.http\.rbac\.v3\.RBACPerRoute" is not supported/);
  });
  it('fields the proxy does not implement', () => {
    const errors = errorsOf({ name: 'bad', virtual_hosts: [{ name: 'vh', domains: ['*'], rate_limits: [{ actions: [{ generic_key: { descriptor_value: 'x' } }] }], routes: [] }] });
    assert.match(errors.join('\n'), /virtual_hosts\[0\]\.rate_limits: field is not supported by the Weft proxy/);
  });
  it('collects every error, not just the first', () => {
    const errors = errorsOf({
      name: 'bad',
      virtual_hosts: [
        { name: 'a', domains: ['*'], routes: [route('r', { safe_regex: { regex: '[' } })] },
        { name: 'b', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { weighted_clusters: { clusters: [{ name: 'x', weight: 1 }], total_weight: 5 } } }] },
      ],
    });
    assert.ok(errors.length >= 3, errors.join('\n'));
  });
});

describe('per-filter settings', () => {
  it('fault and CORS per route, disabled per virtual host', () => {
    const rc = compile({
      name: 'f',
      virtual_hosts: [
        {
          name: 'vh',
          domains: ['*'],
          typed_per_filter_config: { 'envoy.filters.http.cors': { '@type': 'type.googleapis.com/envoy.config.route.v3.FilterConfig', disabled: true } },
          routes: [
            {
              ...route('r', { prefix: '/' }),
              typed_per_filter_config: {
                'envoy.filters.http.fault': {
                  '@type': TYPES.fault,
                  delay: { fixed_delay: '0.1s', percentage: { numerator: 50, denominator: 'HUNDRED' } },
                  abort: { http_status: 503, percentage: { numerator: 1000, denominator: 'TEN_THOUSAND' } },
                },
                'envoy.filters.http.cors': {
                  '@type': TYPES.corsPolicy,
                  allow_origin_string_match: [{ exact: 'https://a.example' }, { safe_regex: { regex: 'https://.*\\.b\\.example' } }],
                  allow_methods: 'GET,POST',
                  allow_credentials: true,
                },
              },
            },
          ],
        },
      ],
    });
    const r = rc.virtualHosts[0].routes[0];
    assert.deepEqual(r.filters.fault?.delay, { fixedDelayMs: 100, probability: 0.5 });
    assert.deepEqual(r.filters.fault?.abort, { httpStatus: 503, grpcStatus: undefined, probability: 0.1 });
    assert.equal(r.filters.cors?.allowOrigin.length, 2);
    assert.equal(r.filters.cors?.allowOrigin[1]('https://x.b.example'), true);
    assert.equal(r.filters.cors?.allowCredentials, true);
    assert.equal(rc.virtualHosts[0].filters.cors, null);
  });
});
