// Security translation rules the golden cases show only by example: PeerAuthentication
// precedence, policy selection, auto mTLS decisions, RBAC generation (Istio's matchers and the TCP
// rules) and the jwt_authn provider list.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConfigResource } from '../../../src/config/resources';
import { createSnapshot, DEFAULT_MESH_CONFIG, type MeshConfig } from '../../../src/model/snapshot';
import { tlsModeOf } from '../../../src/registry/registry';
import { TypeUrl } from '../../../src/xds/protos';
import { createTranslator, parseProxyNode } from '../../../src/xds/translate';
import { generateRulePolicy, stringMatcherWithPrefix } from '../../../src/xds/translate/authorization';
import { composePeerAuthentication, mtlsModeForPort, namespaceMtlsMode, workloadMtls } from '../../../src/xds/translate/peer-authentication';
import { buildJwtAuthnFilter } from '../../../src/xds/translate/request-authentication';
import type { PeerAuthenticationResource, RequestAuthenticationResource } from '../../../src/xds/translate/security-selection';
import { policyApplies } from '../../../src/xds/translate/security-selection';
import { buildSnapshotIndex } from '../../../src/xds/translate/snapshot-index';
import { parseResources } from './load-fixture';

function pa(namespace: string, name: string, spec: PeerAuthenticationResource['spec'], creationTimestamp?: string): PeerAuthenticationResource {
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'PeerAuthentication',
    metadata: { name, namespace, ...(creationTimestamp ? { creationTimestamp } : {}) },
    spec,
  };
}

const ROOT = 'istio-system';

/** A snapshot of security policies only (their specs are typed here, untyped in ConfigResource). */
function policySnapshot(resources: PeerAuthenticationResource[], sequence = 1) {
  return createSnapshot({ sequence, reason: 't', resources: resources as unknown as ConfigResource[], meshConfig: DEFAULT_MESH_CONFIG });
}
const app = { matchLabels: { app: 'reviews' } };

describe('PeerAuthentication precedence (Istio ComposePeerAuthentication)', () => {
  it('is PERMISSIVE when no policy applies', () => {
    assert.deepEqual(composePeerAuthentication(ROOT, []), { mode: 'PERMISSIVE', perPort: new Map() });
  });

  it('prefers workload over namespace over mesh', () => {
    const mesh = pa(ROOT, 'default', { mtls: { mode: 'STRICT' } });
    const ns = pa('default', 'default', { mtls: { mode: 'DISABLE' } });
    const workload = pa('default', 'reviews', { selector: app, mtls: { mode: 'PERMISSIVE' } });
    assert.equal(composePeerAuthentication(ROOT, [mesh]).mode, 'STRICT');
    assert.equal(composePeerAuthentication(ROOT, [mesh, ns]).mode, 'DISABLE');
    assert.equal(composePeerAuthentication(ROOT, [mesh, ns, workload]).mode, 'PERMISSIVE');
  });

  it('lets UNSET (or no mtls) inherit from the level above', () => {
    const mesh = pa(ROOT, 'default', { mtls: { mode: 'STRICT' } });
    const ns = pa('default', 'default', { mtls: { mode: 'UNSET' } });
    const workload = pa('default', 'reviews', { selector: app });
    assert.equal(composePeerAuthentication(ROOT, [mesh, ns, workload]).mode, 'STRICT');
  });

  it('takes the oldest policy of a level (the input order), whatever its name', () => {
    const older = pa('default', 'z-older', { selector: app, mtls: { mode: 'STRICT' } }, '2024-01-01T00:00:00Z');
    const newer = pa('default', 'a-newer', { selector: app, mtls: { mode: 'DISABLE' } }, '2024-06-01T00:00:00Z');
    // The index sorts oldest first; resolution through a snapshot proves it.
    const snapshot = policySnapshot([newer, older]);
    const index = buildSnapshotIndex(snapshot);
    assert.deepEqual(
      index.security.peerAuthentications.get('default')?.map((p) => p.metadata.name),
      ['z-older', 'a-newer'],
    );
    assert.equal(workloadMtls(snapshot, index, 'default', { app: 'reviews' }).mode, 'STRICT');
    // Same age (or none): first by name.
    const sameAge = [pa('default', 'b', { selector: app, mtls: { mode: 'DISABLE' } }), pa('default', 'a', { selector: app, mtls: { mode: 'STRICT' } })];
    const s2 = policySnapshot(sameAge, 2);
    assert.equal(workloadMtls(s2, buildSnapshotIndex(s2), 'default', { app: 'reviews' }).mode, 'STRICT');
  });

  it('ignores selector policies in the root namespace and treats an empty selector as namespace-wide', () => {
    const rootSelector = pa(ROOT, 'reviews', { selector: app, mtls: { mode: 'DISABLE' } });
    const emptySelector = pa('default', 'all', { selector: { matchLabels: {} }, mtls: { mode: 'STRICT' } });
    assert.equal(composePeerAuthentication(ROOT, [rootSelector]).mode, 'PERMISSIVE');
    assert.equal(composePeerAuthentication(ROOT, [emptySelector]).mode, 'STRICT');
  });

  it('applies portLevelMtls of the workload policy per target port, UNSET inheriting the workload mode', () => {
    const ns = pa('default', 'default', { mtls: { mode: 'STRICT' } });
    const workload = pa('default', 'reviews', {
      selector: app,
      mtls: { mode: 'PERMISSIVE' },
      portLevelMtls: { '9090': { mode: 'DISABLE' }, '9091': { mode: 'UNSET' } },
    });
    const merged = composePeerAuthentication(ROOT, [ns, workload]);
    assert.equal(mtlsModeForPort(merged, 9080), 'PERMISSIVE');
    assert.equal(mtlsModeForPort(merged, 9090), 'DISABLE');
    assert.equal(mtlsModeForPort(merged, 9091), 'PERMISSIVE');
  });

  it('selects workload policies by the workload labels, in its own namespace only', () => {
    const resources = [
      pa(ROOT, 'default', { mtls: { mode: 'STRICT' } }),
      pa('default', 'reviews', { selector: app, mtls: { mode: 'DISABLE' } }),
      pa('other', 'reviews', { selector: app, mtls: { mode: 'PERMISSIVE' } }),
    ];
    const snapshot = policySnapshot(resources);
    const index = buildSnapshotIndex(snapshot);
    assert.equal(workloadMtls(snapshot, index, 'default', { app: 'reviews' }).mode, 'DISABLE');
    assert.equal(workloadMtls(snapshot, index, 'default', { app: 'ratings' }).mode, 'STRICT');
    assert.equal(workloadMtls(snapshot, index, 'third', { app: 'reviews' }).mode, 'STRICT');
  });

  it('gives clients the namespace mode, else the mesh mode, ignoring workload policies', () => {
    const resources = [
      pa(ROOT, 'default', { mtls: { mode: 'STRICT' } }),
      pa('legacy', 'default', { mtls: { mode: 'DISABLE' } }),
      pa('unset', 'default', { mtls: { mode: 'UNSET' } }),
      pa('default', 'reviews', { selector: app, mtls: { mode: 'DISABLE' } }),
    ];
    const snapshot = policySnapshot(resources);
    const index = buildSnapshotIndex(snapshot);
    assert.equal(namespaceMtlsMode(snapshot, index, 'legacy'), 'DISABLE');
    assert.equal(namespaceMtlsMode(snapshot, index, 'unset'), 'STRICT');
    assert.equal(namespaceMtlsMode(snapshot, index, 'default'), 'STRICT');
    const none = policySnapshot([], 2);
    assert.equal(namespaceMtlsMode(none, buildSnapshotIndex(none), 'default'), undefined);
  });
});

describe('policy selection', () => {
  const policy = (spec: Record<string, unknown>, namespace = 'istio-system') => ({ metadata: { name: 'p', namespace }, spec });
  const gateway = { namespace: 'istio-system', labels: { istio: 'ingressgateway', 'gateway.networking.k8s.io/gateway-name': 'ingress' }, gateway: true };

  it('matches selectors against labels, no selector matching everything', () => {
    assert.ok(policyApplies(policy({}), gateway));
    assert.ok(policyApplies(policy({ selector: { matchLabels: { istio: 'ingressgateway' } } }), gateway));
    assert.equal(policyApplies(policy({ selector: { matchLabels: { istio: 'egressgateway' } } }), gateway), false);
  });

  it('attaches targetRefs only to the named Gateway of the same namespace, never to sidecars', () => {
    const ref = (name: string) => policy({ targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name }] });
    assert.ok(policyApplies(ref('ingress'), gateway));
    assert.equal(policyApplies(ref('other'), gateway), false);
    assert.equal(policyApplies({ ...ref('ingress'), metadata: { name: 'p', namespace: 'default' } }, gateway), false);
    assert.equal(policyApplies(ref('ingress'), { ...gateway, gateway: false }), false);
    assert.equal(policyApplies(policy({ targetRef: { kind: 'Service', name: 'reviews' } }, 'default'), { namespace: 'default', labels: {}, gateway: false }), false);
  });
});

describe('endpoint tlsMode (Istio WorkloadEntry rule)', () => {
  it('reads the tlsMode label first, then a declared service account', () => {
    assert.equal(tlsModeOf({ serviceAccount: 'sa', labels: { 'security.istio.io/tlsMode': 'disabled' } }), 'disabled');
    assert.equal(tlsModeOf({ labels: { 'security.istio.io/tlsMode': 'istio' } }), 'istio');
    assert.equal(tlsModeOf({ serviceAccount: 'sa' }), 'istio');
    assert.equal(tlsModeOf({}), 'disabled');
  });
});

describe('auto mTLS', () => {
  const MESH = `
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1, namespace: default}
spec: {address: 127.0.10.4, labels: {app: reviews}, serviceAccount: bookinfo-reviews}
`;
  const translate = (mesh: Partial<MeshConfig>, extra = '') => {
    const snapshot = createSnapshot({
      sequence: 1,
      reason: 't',
      resources: parseResources(MESH + extra),
      meshConfig: { ...DEFAULT_MESH_CONFIG, ...mesh },
    });
    const proxy = parseProxyNode({ id: 'sidecar~127.0.10.9~client.default~default.svc.cluster.local', metadata: { LABELS: { app: 'client' } } });
    return createTranslator()(snapshot, proxy)[TypeUrl.Cluster].get('outbound|9080||reviews.default.svc.cluster.local') as any;
  };

  it('is on by default and off with meshConfig.enableAutoMtls false', () => {
    assert.ok(translate({}).transport_socket_matches);
    const off = translate({ enableAutoMtls: false });
    assert.equal(off.transport_socket_matches, undefined);
    assert.equal(off.transport_socket, undefined);
  });

  it('still honours DestinationRule ISTIO_MUTUAL when auto mTLS is off', () => {
    const dr = `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec: {host: reviews, trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}}
`;
    const c = translate({ enableAutoMtls: false }, dr);
    assert.equal(c.transport_socket.typed_config.sni, 'outbound_.9080_._.reviews.default.svc.cluster.local');
    assert.deepEqual(c.transport_socket.typed_config.common_tls_context.combined_validation_context.default_validation_context, {
      match_subject_alt_names: [{ exact: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews' }],
    });
  });

  it('uses the mesh trust domain in SANs', () => {
    const c = translate({ trustDomain: 'example.org' });
    const sans = c.transport_socket_matches[0].transport_socket.typed_config.common_tls_context.combined_validation_context.default_validation_context;
    assert.deepEqual(sans, { match_subject_alt_names: [{ exact: 'spiffe://example.org/ns/default/sa/bookinfo-reviews' }] });
  });

  it('is off for the services of a namespace whose PeerAuthentication is DISABLE', () => {
    const disable = `---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec: {mtls: {mode: DISABLE}}
`;
    assert.equal(translate({}, disable).transport_socket_matches, undefined);
  });
});

describe('RBAC generation (Istio authz model)', () => {
  it("writes Istio's string matcher forms", () => {
    assert.deepEqual(stringMatcherWithPrefix('*'), { safe_regex: { regex: '.+' } });
    assert.deepEqual(stringMatcherWithPrefix('*.example.com'), { suffix: '.example.com' });
    assert.deepEqual(stringMatcherWithPrefix('/api/*'), { prefix: '/api/' });
    assert.deepEqual(stringMatcherWithPrefix('/exact'), { exact: '/exact' });
    assert.deepEqual(stringMatcherWithPrefix('*-sa', 'spiffe://'), { safe_regex: { regex: 'spiffe://.*-sa' } });
    assert.deepEqual(stringMatcherWithPrefix('cluster.local/ns/a/*', 'spiffe://'), { prefix: 'spiffe://cluster.local/ns/a/' });
  });

  it('ANDs fields, ORs values and NOTs notValues; an empty rule matches everything', () => {
    assert.deepEqual(generateRulePolicy({}, 'default', false, 'ALLOW'), {
      permissions: [{ and_rules: { rules: [{ any: true }] } }],
      principals: [{ and_ids: { ids: [{ any: true }] } }],
    });
    const p = generateRulePolicy({ to: [{ operation: { methods: ['GET', 'HEAD'], notPaths: ['/admin'] } }] }, 'default', false, 'ALLOW') as any;
    assert.deepEqual(p.permissions[0].and_rules.rules, [
      { or_rules: { rules: [{ header: { name: ':method', string_match: { exact: 'GET' } } }, { header: { name: ':method', string_match: { exact: 'HEAD' } } }] } },
      { not_rule: { or_rules: { rules: [{ url_path: { path: { exact: '/admin' } } }] } } },
    ]);
  });

  it('matches hosts case-insensitively, port included as sent, and path templates by segment', () => {
    const p = generateRulePolicy(
      { to: [{ operation: { hosts: ['example.com', 'example.com:*', '*'], paths: ['/a/{*}/b', '/c/{**}'] } }] },
      'default',
      false,
      'ALLOW',
    ) as any;
    const [hosts, paths] = p.permissions[0].and_rules.rules;
    assert.deepEqual(hosts.or_rules.rules, [
      { header: { name: ':authority', string_match: { exact: 'example.com', ignore_case: true } } },
      { header: { name: ':authority', string_match: { prefix: 'example.com:', ignore_case: true } } },
      { header: { name: ':authority', present_match: true } },
    ]);
    assert.deepEqual(paths.or_rules.rules, [
      { url_path: { path: { safe_regex: { regex: '/a/[^/]+/b' } } } },
      { url_path: { path: { safe_regex: { regex: '/c/.*' } } } },
    ]);
  });

  it('on TCP drops an ALLOW rule using HTTP-only fields, and removes those fields from a DENY rule', () => {
    const rule = { from: [{ source: { namespaces: ['untrusted'] } }], to: [{ operation: { ports: ['27017'], methods: ['GET'] } }] };
    assert.equal(generateRulePolicy(rule, 'default', true, 'ALLOW'), undefined);
    assert.deepEqual((generateRulePolicy(rule, 'default', true, 'DENY') as any).permissions, [
      { and_rules: { rules: [{ or_rules: { rules: [{ destination_port: 27017 }] } }] } },
    ]);
    const requestOnly = { from: [{ source: { requestPrincipals: ['*'] } }] };
    assert.deepEqual((generateRulePolicy(requestOnly, 'default', true, 'DENY') as any).principals, [{ and_ids: { ids: [{ any: true }] } }]);
  });

  it('maps request identity to istio_authn metadata and claims to a list match on the nested path', () => {
    const p = generateRulePolicy(
      { from: [{ source: { requestPrincipals: ['iss/sub'] } }], when: [{ key: 'request.auth.claims[a][b]', values: ['x'] }] },
      'default',
      false,
      'ALLOW',
    ) as any;
    assert.deepEqual(p.principals[0].and_ids.ids, [
      { or_ids: { ids: [{ metadata: { filter: 'istio_authn', path: [{ key: 'request.auth.principal' }], value: { string_match: { exact: 'iss/sub' } } } }] } },
      {
        or_ids: {
          ids: [
            {
              metadata: {
                filter: 'istio_authn',
                path: [{ key: 'request.auth.claims' }, { key: 'a' }, { key: 'b' }],
                value: { list_match: { one_of: { string_match: { exact: 'x' } } } },
              },
            },
          ],
        },
      },
    ]);
  });
});

describe('jwt_authn providers', () => {
  const ra = (name: string, jwtRules: RequestAuthenticationResource['spec']['jwtRules']): RequestAuthenticationResource => ({
    apiVersion: 'security.istio.io/v1',
    kind: 'RequestAuthentication',
    metadata: { name, namespace: 'default' },
    spec: { jwtRules },
  });

  it('is absent without JWT rules', () => {
    assert.equal(buildJwtAuthnFilter([ra('empty', [])]), undefined);
  });

  it('names providers origins-<i> after sorting every policy`s rules by issuer', () => {
    const f = buildJwtAuthnFilter([ra('a', [{ issuer: 'zeta', jwks: '{"keys":[]}' }]), ra('b', [{ issuer: 'alpha', jwksUri: 'http://keys.local:8080/jwks' }])]) as any;
    const providers = f.typed_config.providers;
    assert.equal(providers['origins-0'].issuer, 'alpha');
    assert.deepEqual(providers['origins-0'].remote_jwks.http_uri, { uri: 'http://keys.local:8080/jwks', cluster: 'outbound|8080||keys.local', timeout: '5s' });
    assert.equal(providers['origins-1'].issuer, 'zeta');
    assert.deepEqual(f.typed_config.rules[0].requires.requires_any.requirements, [
      { provider_name: 'origins-0' },
      { provider_name: 'origins-1' },
      { allow_missing: {} },
    ]);
  });
});
