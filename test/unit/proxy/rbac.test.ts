// RBAC policies as the proxy receives them (through the protobuf codec), compiled and evaluated
// against requests and connections: every permission and principal kind, and/or/not, the
// ALLOW/DENY/LOG actions, shadow rules, and the NACK of anything the proxy cannot evaluate.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileListener } from '../../../src/proxy/config/listener';
import type { DownstreamTlsInfo } from '../../../src/proxy/config/model';
import { addressBytes, compileHttpRbac, evaluateRbac, rbacDeniedDetails, type AuthzSubject, type RbacFilterSettings } from '../../../src/proxy/config/rbac';
import { Problems, type Json } from '../../../src/proxy/config/validation';
import { lds, received, requestView, TYPES } from './wire';

const NETWORK_RBAC = 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';

/** An HTTP RBAC filter config after the wire round trip, compiled. */
function filter(config: Json): RbacFilterSettings {
  const decoded = received(TYPES.rbac, config);
  const problems = new Problems('RBAC');
  const settings = compileHttpRbac(decoded, problems, '');
  if (!problems.ok) assert.fail(problems.errors.join('\n'));
  return settings;
}

function errorsOf(config: Json): string {
  const problems = new Problems('RBAC');
  compileHttpRbac(received(TYPES.rbac, config), problems, '');
  assert.equal(problems.ok, false, 'expected the RBAC config to be refused');
  return problems.errors.join('\n');
}

/** A one-policy rules block. */
function policy(permissions: Json[], principals: Json[] = [{ any: true }], action = 'ALLOW'): RbacFilterSettings {
  return filter({ rules: { action, policies: { p: { permissions, principals } } } });
}

interface SubjectInit {
  method?: string;
  path?: string;
  authority?: string;
  headers?: Record<string, string>;
  tls?: DownstreamTlsInfo;
  sni?: string;
  destinationIp?: string;
  destinationPort?: number;
  peer?: string;
  client?: string;
  metadata?: Record<string, Record<string, unknown>>;
  connection?: boolean;
}

function subject(o: SubjectInit = {}): AuthzSubject {
  return {
    request: o.connection ? undefined : requestView({ method: o.method, path: o.path, authority: o.authority, headers: o.headers }),
    tls: o.tls,
    requestedServerName: o.sni ?? '',
    destinationPort: o.destinationPort ?? 9080,
    destinationIp: () => addressBytes(o.destinationIp ?? '10.0.0.5'),
    directRemoteIp: () => addressBytes(o.peer ?? '10.1.1.1'),
    remoteIp: () => addressBytes(o.client ?? o.peer ?? '10.1.1.1'),
    metadata: (f) => o.metadata?.[f],
  };
}

/** Whether the single-policy ALLOW filter lets `s` through. */
function allows(settings: RbacFilterSettings, s: AuthzSubject): boolean {
  return evaluateRbac(settings.rules!, s).allowed;
}

const spiffe = (sa: string, ns = 'default') => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;
const mtls = (principal: string): DownstreamTlsInfo => ({ version: 'TLSv1.3', peerPrincipal: principal, peerUriSans: [principal] });

describe('RBAC permissions', () => {
  it('header: pseudo-headers and every string match kind', () => {
    const get = policy([{ header: { name: ':method', string_match: { exact: 'GET' } } }]);
    assert.equal(allows(get, subject({ method: 'GET' })), true);
    assert.equal(allows(get, subject({ method: 'POST' })), false);
    const host = policy([{ header: { name: ':authority', string_match: { suffix: '.example.com' } } }]);
    assert.equal(allows(host, subject({ authority: 'api.example.com' })), true);
    assert.equal(allows(host, subject({ authority: 'example.org' })), false);
    // :path includes the query string (url_path does not).
    const path = policy([{ header: { name: ':path', string_match: { contains: 'debug=1' } } }]);
    assert.equal(allows(path, subject({ path: '/a?debug=1' })), true);
    const ci = policy([{ header: { name: 'x-user', string_match: { prefix: 'ADMIN', ignore_case: true } } }]);
    assert.equal(allows(ci, subject({ headers: { 'x-user': 'admin-1' } })), true);
    const re = policy([{ header: { name: 'x-version', string_match: { safe_regex: { regex: 'v[0-9]+' } } } }]);
    assert.equal(allows(re, subject({ headers: { 'x-version': 'v12' } })), true);
    assert.equal(allows(re, subject({ headers: { 'x-version': 'v12-beta' } })), false, 'safe_regex is a full match');
  });

  it('header: present_match and invert_match (an absent header never matches a value)', () => {
    const present = policy([{ header: { name: 'x-token', present_match: true } }]);
    assert.equal(allows(present, subject({ headers: { 'x-token': '' } })), true);
    assert.equal(allows(present, subject()), false);
    const notAdmin = policy([{ header: { name: 'x-user', string_match: { exact: 'admin' }, invert_match: true } }]);
    assert.equal(allows(notAdmin, subject({ headers: { 'x-user': 'bob' } })), true);
    assert.equal(allows(notAdmin, subject({ headers: { 'x-user': 'admin' } })), false);
    assert.equal(allows(notAdmin, subject()), true, 'inverted: absent counts as not matching the value');
  });

  it('url_path matches the path without the query string', () => {
    const admin = policy([{ url_path: { path: { exact: '/admin' } } }]);
    assert.equal(allows(admin, subject({ path: '/admin' })), true);
    assert.equal(allows(admin, subject({ path: '/admin?x=1' })), true);
    assert.equal(allows(admin, subject({ path: '/admin/' })), false);
    assert.equal(allows(admin, subject({ path: '/ADMIN' })), false, 'paths are case-sensitive');
    const api = policy([{ url_path: { path: { prefix: '/api/', ignore_case: true } } }]);
    assert.equal(allows(api, subject({ path: '/API/v1' })), true);
    assert.equal(allows(admin, subject({ connection: true })), false, 'a connection has no path');
  });

  it('destination_ip, destination_port and destination_port_range', () => {
    const ip = policy([{ destination_ip: { address_prefix: '10.0.0.0', prefix_len: 24 } }]);
    assert.equal(allows(ip, subject({ destinationIp: '10.0.0.200' })), true);
    assert.equal(allows(ip, subject({ destinationIp: '10.0.1.1' })), false);
    assert.equal(allows(ip, subject({ destinationIp: '::ffff:10.0.0.7' })), true, 'IPv4-mapped IPv6 is IPv4');
    const port = policy([{ destination_port: 9080 }]);
    assert.equal(allows(port, subject({ destinationPort: 9080 })), true);
    assert.equal(allows(port, subject({ destinationPort: 9081 })), false);
    const range = policy([{ destination_port_range: { start: 8000, end: 9000 } }]);
    assert.equal(allows(range, subject({ destinationPort: 8000 })), true);
    assert.equal(allows(range, subject({ destinationPort: 9000 })), false, 'the end is exclusive');
  });

  it('requested_server_name (SNI; none is the empty string)', () => {
    const sni = policy([{ requested_server_name: { exact: 'api.example.com' } }]);
    assert.equal(allows(sni, subject({ sni: 'api.example.com' })), true);
    assert.equal(allows(sni, subject()), false);
    const none = policy([{ requested_server_name: { exact: '' } }]);
    assert.equal(allows(none, subject()), true);
  });

  it('and_rules, or_rules and not_rule', () => {
    const getOnApi = policy([
      {
        and_rules: {
          rules: [{ header: { name: ':method', string_match: { exact: 'GET' } } }, { or_rules: { rules: [{ url_path: { path: { prefix: '/api' } } }, { url_path: { path: { exact: '/health' } } }] } }],
        },
      },
    ]);
    assert.equal(allows(getOnApi, subject({ method: 'GET', path: '/api/x' })), true);
    assert.equal(allows(getOnApi, subject({ method: 'GET', path: '/health' })), true);
    assert.equal(allows(getOnApi, subject({ method: 'POST', path: '/api/x' })), false);
    assert.equal(allows(getOnApi, subject({ method: 'GET', path: '/other' })), false);
    // Istio's notPaths: not_rule of an or-set.
    const notAdmin = policy([{ not_rule: { or_rules: { rules: [{ url_path: { path: { prefix: '/admin' } } }] } } }]);
    assert.equal(allows(notAdmin, subject({ path: '/public' })), true);
    assert.equal(allows(notAdmin, subject({ path: '/admin/users' })), false);
  });

  it('metadata against dynamic metadata', () => {
    const m = policy([{ metadata: { filter: 'envoy.filters.http.jwt_authn', path: [{ key: 'payload' }, { key: 'scope' }], value: { string_match: { exact: 'read' } } } }]);
    assert.equal(allows(m, subject({ metadata: { 'envoy.filters.http.jwt_authn': { payload: { scope: 'read' } } } })), true);
    assert.equal(allows(m, subject()), false);
  });
});

describe('RBAC principals', () => {
  it('authenticated.principal_name: the verified peer certificate only', () => {
    const sleep = policy([{ any: true }], [{ authenticated: { principal_name: { exact: spiffe('sleep') } } }]);
    assert.equal(allows(sleep, subject({ tls: mtls(spiffe('sleep')) })), true);
    assert.equal(allows(sleep, subject({ tls: mtls(spiffe('httpbin')) })), false);
    assert.equal(allows(sleep, subject()), false, 'plaintext: no principal');
    assert.equal(allows(sleep, subject({ tls: { version: 'TLSv1.3', peerUriSans: [] } })), false, 'TLS without a client certificate');
    // Istio's namespaces: a regex over the SPIFFE id; a second URI SAN is matched too.
    const ns = policy([{ any: true }], [{ authenticated: { principal_name: { safe_regex: { regex: '.*/ns/prod/.*' } } } }]);
    assert.equal(allows(ns, subject({ tls: { peerPrincipal: spiffe('a', 'dev'), peerUriSans: [spiffe('a', 'dev'), spiffe('b', 'prod')] } })), true);
    const anyPeer = policy([{ any: true }], [{ authenticated: {} }]);
    assert.equal(allows(anyPeer, subject({ tls: mtls(spiffe('x')) })), true);
    assert.equal(allows(anyPeer, subject({ tls: { peerUriSans: [] } })), false);
  });

  it('direct_remote_ip / source_ip see the peer, remote_ip the x-forwarded-for client', () => {
    const direct = policy([{ any: true }], [{ direct_remote_ip: { address_prefix: '10.1.0.0', prefix_len: 16 } }]);
    const source = policy([{ any: true }], [{ source_ip: { address_prefix: '10.1.0.0', prefix_len: 16 } }]);
    const remote = policy([{ any: true }], [{ remote_ip: { address_prefix: '203.0.113.0', prefix_len: 24 } }]);
    const s = subject({ peer: '10.1.2.3', client: '203.0.113.9' });
    assert.equal(allows(direct, s), true);
    assert.equal(allows(source, s), true);
    assert.equal(allows(remote, s), true);
    assert.equal(allows(remote, subject({ peer: '10.1.2.3' })), false);
    const v6 = policy([{ any: true }], [{ direct_remote_ip: { address_prefix: '2001:db8::', prefix_len: 32 } }]);
    assert.equal(allows(v6, subject({ peer: '2001:db8::1' })), true);
    assert.equal(allows(v6, subject({ peer: '10.1.2.3' })), false);
  });

  it('header and url_path principals, and_ids / or_ids / not_id', () => {
    const p = policy(
      [{ any: true }],
      [
        {
          and_ids: {
            ids: [
              { header: { name: 'x-team', string_match: { exact: 'blue' } } },
              { not_id: { or_ids: { ids: [{ url_path: { path: { prefix: '/private' } } }, { direct_remote_ip: { address_prefix: '10.9.0.0', prefix_len: 16 } }] } } },
            ],
          },
        },
      ],
    );
    assert.equal(allows(p, subject({ headers: { 'x-team': 'blue' }, path: '/x' })), true);
    assert.equal(allows(p, subject({ headers: { 'x-team': 'blue' }, path: '/private/x' })), false);
    assert.equal(allows(p, subject({ headers: { 'x-team': 'blue' }, peer: '10.9.1.1' })), false);
    assert.equal(allows(p, subject({ headers: { 'x-team': 'red' } })), false);
  });

  it('metadata: Istio request principals, audiences, claims; present, list, bool, invert', () => {
    const authn = (fields: Record<string, unknown>) => ({ istio_authn: fields });
    const principal = (value: Json) => policy([{ any: true }], [{ metadata: { filter: 'istio_authn', path: [{ key: 'request.auth.principal' }], value } }]);
    // requestPrincipals: ["*"] is a non-empty match on the principal.
    const anyone = principal({ string_match: { safe_regex: { regex: '.+' } } });
    assert.equal(allows(anyone, subject({ metadata: authn({ 'request.auth.principal': 'https://issuer/alice' }) })), true);
    assert.equal(allows(anyone, subject()), false, 'no token, no principal');
    const present = principal({ present_match: true });
    assert.equal(allows(present, subject({ metadata: authn({ 'request.auth.principal': 'i/s' }) })), true);
    assert.equal(allows(present, subject({ metadata: authn({}) })), false);
    // Envoy: present_match false never matches.
    assert.equal(allows(principal({ present_match: false }), subject()), false);
    const groups = policy(
      [{ any: true }],
      [{ metadata: { filter: 'istio_authn', path: [{ key: 'request.auth.claims' }, { key: 'groups' }], value: { list_match: { one_of: { string_match: { exact: 'admins' } } } } } }],
    );
    assert.equal(allows(groups, subject({ metadata: authn({ 'request.auth.claims': { groups: ['dev', 'admins'] } }) })), true);
    assert.equal(allows(groups, subject({ metadata: authn({ 'request.auth.claims': { groups: 'admins' } }) })), false, 'list_match needs a list');
    const verified = (want: boolean) => policy([{ any: true }], [{ metadata: { filter: 'istio_authn', path: [{ key: 'request.auth.claims' }, { key: 'email_verified' }], value: { bool_match: want } } }]);
    assert.equal(allows(verified(true), subject({ metadata: authn({ 'request.auth.claims': { email_verified: true } }) })), true);
    assert.equal(allows(verified(false), subject({ metadata: authn({ 'request.auth.claims': { email_verified: false } }) })), true, 'bool_match false survives the wire');
    assert.equal(allows(verified(false), subject({ metadata: authn({ 'request.auth.claims': { email_verified: true } }) })), false);
    const notAlice = policy([{ any: true }], [{ metadata: { filter: 'istio_authn', path: [{ key: 'request.auth.principal' }], value: { string_match: { exact: 'i/alice' } }, invert: true } }]);
    assert.equal(allows(notAlice, subject({ metadata: authn({ 'request.auth.principal': 'i/bob' }) })), true);
    assert.equal(allows(notAlice, subject({ metadata: authn({ 'request.auth.principal': 'i/alice' }) })), false);
    assert.equal(allows(notAlice, subject()), true, 'inverted: absent is not alice');
    const audOr = policy(
      [{ any: true }],
      [{ metadata: { filter: 'istio_authn', path: [{ key: 'request.auth.audiences' }], value: { or_match: { value_matchers: [{ string_match: { exact: 'app' } }, { list_match: { one_of: { string_match: { exact: 'app' } } } }] } } } }],
    );
    assert.equal(allows(audOr, subject({ metadata: authn({ 'request.auth.audiences': 'app' }) })), true);
    assert.equal(allows(audOr, subject({ metadata: authn({ 'request.auth.audiences': ['web', 'app'] }) })), true);
  });
});

describe('RBAC actions, shadow rules, decisions', () => {
  it('ALLOW with no policies denies everything (Istio allow-nothing)', () => {
    const nothing = filter({ rules: {} });
    const d = evaluateRbac(nothing.rules!, subject());
    assert.deepEqual(d, { allowed: false, matchedPolicy: undefined });
    assert.equal(rbacDeniedDetails(d), 'rbac_access_denied_matched_policy[none]');
  });

  it('DENY denies when a policy matches, naming the first policy in name order', () => {
    const deny = filter({
      rules: {
        action: 'DENY',
        policies: {
          'ns[foo]-policy[z]-rule[0]': { permissions: [{ url_path: { path: { prefix: '/admin' } } }], principals: [{ any: true }] },
          'ns[foo]-policy[a]-rule[0]': { permissions: [{ url_path: { path: { exact: '/admin/x' } } }], principals: [{ any: true }] },
        },
      },
    });
    const d = evaluateRbac(deny.rules!, subject({ path: '/admin/x' }));
    assert.equal(d.allowed, false);
    assert.equal(rbacDeniedDetails(d), 'rbac_access_denied_matched_policy[ns[foo]-policy[a]-rule[0]]');
    assert.equal(evaluateRbac(deny.rules!, subject({ path: '/public' })).allowed, true);
  });

  it('LOG never denies; it reports whether a policy matched (the access log hint)', () => {
    const log = filter({ rules: { action: 'LOG', policies: { audit: { permissions: [{ url_path: { path: { prefix: '/audited' } } }], principals: [{ any: true }] } } } });
    assert.deepEqual(evaluateRbac(log.rules!, subject({ path: '/audited/1' })), { allowed: true, matchedPolicy: 'audit' });
    assert.deepEqual(evaluateRbac(log.rules!, subject({ path: '/other' })), { allowed: true, matchedPolicy: undefined });
    assert.equal(log.rules!.action, 'LOG');
  });

  it('shadow rules and stat prefixes compile beside (or without) enforced rules', () => {
    const s = filter({ shadow_rules: { action: 'DENY', policies: { dry: { permissions: [{ any: true }], principals: [{ any: true }] } } }, shadow_rules_stat_prefix: 'istio_dry_run_allow_' });
    assert.equal(s.rules, undefined, 'absent rules enforce nothing');
    assert.equal(s.shadowRules!.action, 'DENY');
    assert.equal(s.shadowRulesStatPrefix, 'istio_dry_run_allow_');
    assert.equal(evaluateRbac(s.shadowRules!, subject()).allowed, false);
  });
});

describe('RBAC NACKs (anything the proxy cannot evaluate is refused with its field path)', () => {
  const p = (perm: Json, princ: Json = { any: true }) => ({ rules: { policies: { p: { permissions: [perm], principals: [princ] } } } });
  it('refuses CEL conditions, filter_state, custom matchers, URI templates and matcher trees', () => {
    assert.match(
      errorsOf({ rules: { policies: { p: { permissions: [{ any: true }], principals: [{ any: true }], condition: { id: '1', const_expr: { bool_value: true } } } } } }),
      /rules\.policies\["p"\]\.condition: CEL conditions are not supported/,
    );
    assert.match(errorsOf(p({ any: true }, { filter_state: { key: 'k', string_match: { exact: 'v' } } })), /principals\[0\]\.filter_state: principal rule "filter_state" is not supported/);
    assert.match(
      errorsOf(p({ matcher: { name: 'm', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } } })),
      /permissions\[0\]\.matcher: permission rule "matcher" is not supported/,
    );
    assert.match(
      errorsOf(p({ uri_template: { name: 't', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } } })),
      /permissions\[0\]\.uri_template: permission rule "uri_template" is not supported/,
    );
    assert.match(errorsOf({ matcher: { matcher_list: { matchers: [] } } }), /matcher: .*RBAC matcher tree .* not supported/);
  });

  it('refuses policies without permissions or principals, bad regexes and addresses', () => {
    assert.match(errorsOf({ rules: { policies: { p: { permissions: [], principals: [{ any: true }] } } } }), /permissions: a policy needs at least one permission/);
    assert.match(errorsOf({ rules: { policies: { p: { permissions: [{ any: true }] } } } }), /principals: a policy needs at least one principal/);
    assert.match(errorsOf(p({ header: { name: 'x', string_match: { safe_regex: { regex: '(' } } } })), /invalid regex/);
    assert.match(errorsOf(p({ any: true }, { remote_ip: { address_prefix: 'not-an-ip', prefix_len: 8 } })), /"not-an-ip" is not an IP address/);
    assert.match(errorsOf(p({ any: false })), /permissions\[0\](\.any: any must be true| has no rule set)/);
  });

  it('the network filter: stat_prefix required, CONTINUOUS refused, not ahead of an HCM', () => {
    const listener = (filters: Json[]) =>
      compileListener(lds({ name: 'l', address: { socket_address: { address: '0.0.0.0', port_value: 9000 } }, filter_chains: [{ filters }] }), 'v1');
    const rbacFilter = (extra: Json = {}) => ({ name: 'envoy.filters.network.rbac', typed_config: { '@type': NETWORK_RBAC, stat_prefix: 'tcp.', rules: { policies: {} }, ...extra } });
    const tcp = { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TYPES.tcpProxy, stat_prefix: 'c', cluster: 'c' } };
    const ok = listener([rbacFilter(), tcp]);
    assert.ok(ok.valid, ok.valid ? '' : ok.errors.join('\n'));
    const terminal = ok.valid ? ok.result.filterChains[0].terminal : undefined;
    assert.equal(terminal?.kind === 'tcp' ? terminal.rbac?.[0].statPrefix : undefined, 'tcp.');
    const bad = listener([rbacFilter({ stat_prefix: '', enforcement_type: 'CONTINUOUS' }), tcp]);
    const errors = bad.valid ? '' : bad.errors.join('\n');
    assert.match(errors, /filters\[0\]\.typed_config\.stat_prefix: stat_prefix is required/);
    assert.match(errors, /enforcement type CONTINUOUS is not supported/);
    const hcm = {
      name: 'envoy.filters.network.http_connection_manager',
      typed_config: { '@type': TYPES.hcm, stat_prefix: 'h', route_config: { virtual_hosts: [] }, http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': TYPES.router } }] },
    };
    const onHcm = listener([rbacFilter(), hcm]);
    assert.match(onHcm.valid ? '' : onHcm.errors.join('\n'), /network RBAC ahead of http_connection_manager is not supported/);
  });

  it('per-route RBACPerRoute and per-route disabling of rbac are refused', () => {
    const hcmWith = (vhost: Json) =>
      compileListener(
        lds({
          name: 'l',
          address: { socket_address: { address: '0.0.0.0', port_value: 9000 } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': TYPES.hcm,
                    stat_prefix: 'h',
                    route_config: { virtual_hosts: [vhost] },
                    http_filters: [
                      { name: 'envoy.filters.http.rbac', typed_config: { '@type': TYPES.rbac, rules: {} } },
                      { name: 'envoy.filters.http.router', typed_config: { '@type': TYPES.router } },
                    ],
                  },
                },
              ],
            },
          ],
        }),
        'v1',
      );
    const disabled = hcmWith({
      name: 'v',
      domains: ['*'],
      routes: [{ match: { prefix: '/' }, direct_response: { status: 200 } }],
      typed_per_filter_config: { 'envoy.filters.http.rbac': { '@type': 'type.googleapis.com/envoy.config.route.v3.FilterConfig', disabled: true } },
    });
    assert.match(disabled.valid ? '' : disabled.errors.join('\n'), /disabling filter "envoy\.filters\.http\.rbac" per route is not supported/);
  });
});
