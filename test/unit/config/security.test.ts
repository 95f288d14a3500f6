// Security kinds (PeerAuthentication, AuthorizationPolicy, RequestAuthentication): schema and rule structure.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { check, checkAll, fixture, paths, resourceYaml } from './config-test-support';

function assertErrors(kind: string, spec: string, expectedPaths: string[]) {
  const result = check(resourceYaml(kind, spec, { namespace: 'foo' }));
  assert.deepEqual(paths(result.errors), expectedPaths, result.errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
  return result;
}

describe('security policies', () => {
  it("accept the examples of Istio's security references", () => {
    const results = checkAll(fixture('istio-docs/security.yaml'));
    assert.equal(results.length, 8);
    for (const result of results) {
      assert.deepEqual(result.errors, [], result.errors.map((e) => `${e.name} ${e.path}: ${e.message}`).join('\n'));
      assert.deepEqual(result.warnings, []);
    }
  });

  it('are served under security.istio.io v1 and v1beta1 only', () => {
    const result = check(resourceYaml('PeerAuthentication', 'mtls: {mode: STRICT}', { apiVersion: 'networking.istio.io/v1' }));
    assert.deepEqual(paths(result.errors), ['apiVersion']);
    assert.equal(
      check(resourceYaml('PeerAuthentication', 'mtls: {mode: STRICT}', { apiVersion: 'security.istio.io/v1beta1' })).valid,
      true,
    );
  });

  describe('PeerAuthentication', () => {
    it('checks the mTLS mode enum', () => {
      assertErrors('PeerAuthentication', 'mtls: {mode: REQUIRED}', ['spec.mtls.mode']);
      for (const mode of ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT']) assertErrors('PeerAuthentication', `mtls: {mode: ${mode}}`, []);
    });

    it('allows port-level mTLS only with a selector, on valid ports', () => {
      assertErrors('PeerAuthentication', 'portLevelMtls: {8080: {mode: DISABLE}}', ['spec.portLevelMtls']);
      assertErrors(
        'PeerAuthentication',
        'selector: {matchLabels: {app: a}}\nportLevelMtls: {70000: {mode: DISABLE}, http: {mode: STRICT}}',
        ['spec.portLevelMtls["70000"]', 'spec.portLevelMtls.http'],
      );
    });
  });

  describe('AuthorizationPolicy', () => {
    it('checks the action enum and CUSTOM/DENY rules', () => {
      assertErrors('AuthorizationPolicy', 'action: BLOCK', ['spec.action']);
      assertErrors('AuthorizationPolicy', 'action: DENY', ['spec.rules']);
      assertErrors('AuthorizationPolicy', 'action: CUSTOM\nrules: [{}]', ['spec.provider.name']);
      assertErrors('AuthorizationPolicy', 'action: ALLOW\nprovider: {name: ext-authz}\nrules: [{}]', ['spec.provider']);
      assertErrors('AuthorizationPolicy', 'action: CUSTOM\nprovider: {name: ext-authz}\nrules: [{}]', []);
    });

    it('checks rule structure: non-empty sources and operations, ports, IPs, conditions', () => {
      assertErrors(
        'AuthorizationPolicy',
        `
        rules:
        - from: []
          to: [{}]
        - from: [{source: {}}, {source: {ipBlocks: ["10.0.0.0/33"], namespaces: [""]}}]
          to: [{operation: {ports: ["http", "70000"]}}]
          when:
          - key: request.headers[x-token]
          - key: no.such.attribute
            values: [x]
          - key: source.ip
            notValues: ["not-an-ip"]
        - from: [{source: {namespaces: [foo], serviceAccounts: [foo/sa]}}]
        `,
        [
          'spec.rules[0].from',
          'spec.rules[0].to[0].operation',
          'spec.rules[1].from[0].source',
          'spec.rules[1].from[1].source.namespaces[0]',
          'spec.rules[1].from[1].source.ipBlocks[0]',
          'spec.rules[1].to[0].operation.ports[0]',
          'spec.rules[1].to[0].operation.ports[1]',
          'spec.rules[1].when[0]',
          'spec.rules[1].when[1].key',
          'spec.rules[1].when[2].notValues[0]',
          'spec.rules[2].from[0].source',
        ],
      );
    });

    it('rejects unknown fields in rules and both a selector and targetRefs', () => {
      assertErrors('AuthorizationPolicy', 'rules: [{from: [{source: {principal: [x]}}]}]', [
        'spec.rules[0].from[0].source.principal',
        'spec.rules[0].from[0].source',
      ]);
      assertErrors('AuthorizationPolicy', 'selector: {matchLabels: {app: a}}\ntargetRefs: [{kind: Service, name: a}]', ['spec.targetRefs']);
      assertErrors(
        'AuthorizationPolicy',
        'targetRefs: [{kind: Deployment, name: a}, {kind: Gateway, group: gateway.networking.k8s.io, name: gw, namespace: other}]',
        ['spec.targetRefs[0]', 'spec.targetRefs[1].namespace'],
      );
    });
  });

  describe('RequestAuthentication', () => {
    it('requires an issuer or jwksUri in each JWT rule and checks its fields', () => {
      assertErrors(
        'RequestAuthentication',
        `
        jwtRules:
        - audiences: [""]
        - issuer: issuer-foo
          jwksUri: "ftp://example.com/keys"
          jwks: "{not json"
          fromHeaders: [{prefix: "Bearer "}]
          fromParams: [""]
          outputClaimToHeaders: [{header: "bad header", claim: sub}, {claim: sub}]
          timeout: 0s
        `,
        [
          'spec.jwtRules[0].audiences[0]',
          'spec.jwtRules[0].issuer',
          'spec.jwtRules[1].timeout',
          'spec.jwtRules[1].jwksUri',
          'spec.jwtRules[1].jwks',
          'spec.jwtRules[1].fromHeaders[0].name',
          'spec.jwtRules[1].fromParams[0]',
          'spec.jwtRules[1].outputClaimToHeaders[0].header',
          'spec.jwtRules[1].outputClaimToHeaders[1]',
        ],
      );
    });

    it('accepts an inline JWKS', () => {
      assertErrors(
        'RequestAuthentication',
        `jwtRules: [{issuer: testing@secure.istio.io, jwks: '{"keys": [{"kty": "RSA", "e": "AQAB", "n": "xyz"}]}'}]`,
        [],
      );
    });
  });
});
