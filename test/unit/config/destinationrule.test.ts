// DestinationRule validation: Istio's documented examples pass; each invalid field is reported at its path.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { check, checkAll, fixture, paths, resourceYaml } from './config-test-support';

function assertErrors(spec: string, expectedPaths: string[], opts: { namespace?: string } = {}) {
  const result = check(resourceYaml('DestinationRule', spec, opts));
  assert.deepEqual(paths(result.errors), expectedPaths, result.errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
  return result;
}

describe('DestinationRule validation', () => {
  it("accepts every example of Istio's DestinationRule reference", () => {
    const results = checkAll(fixture('istio-docs/destination-rule.yaml'));
    assert.equal(results.length, 11);
    for (const result of results) {
      assert.deepEqual(result.errors, [], result.errors.map((e) => `${e.name} ${e.path}: ${e.message}`).join('\n'));
      assert.deepEqual(result.warnings, []);
    }
  });

  it('requires a valid host', () => {
    assertErrors('subsets: [{name: v1, labels: {version: v1}}]', ['spec.host']);
    assertErrors('host: "bad host"', ['spec.host']);
  });

  it('requires subsets with unique DNS-label names and valid labels', () => {
    assertErrors(
      `
      host: reviews
      subsets:
      - name: v1
        labels: {version: v1}
      - name: v1
        labels: {version: v1-again}
      - name: V_2
        labels: {"version!": v2}
      - labels: {version: v3}
      `,
      ['spec.subsets[2].labels["version!"]', 'spec.subsets[2].name', 'spec.subsets[3].name', 'spec.subsets[1].name'],
    );
    assertErrors(
      `
      host: reviews
      subsets:
      - name: v1
      - name: v1
      `,
      ['spec.subsets[1].name'],
    );
  });

  it('allows simple or consistentHash load balancing, not both, and one hash key', () => {
    assertErrors(
      `
      host: reviews
      trafficPolicy:
        loadBalancer:
          simple: ROUND_ROBIN
          consistentHash: {httpHeaderName: x-user, useSourceIp: true}
      `,
      ['spec.trafficPolicy.loadBalancer.consistentHash.useSourceIp', 'spec.trafficPolicy.loadBalancer.consistentHash'],
    );
    assertErrors('host: reviews\ntrafficPolicy: {loadBalancer: {simple: FASTEST}}', ['spec.trafficPolicy.loadBalancer.simple']);
    assertErrors(
      `
      host: reviews
      trafficPolicy:
        loadBalancer:
          consistentHash: {httpCookie: {ttl: 10s}, maglev: {tableSize: 1000}}
      `,
      ['spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name', 'spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize'],
    );
  });

  it('follows Istio on connection pools: non-negative numbers, durations, at least one of tcp or http', () => {
    assertErrors(
      `
      host: reviews
      trafficPolicy:
        connectionPool:
          tcp: {maxConnections: -1, connectTimeout: 0s, idleTimeout: 0s}
          http: {http2MaxRequests: -5, idleTimeout: 1x, h2UpgradePolicy: UPGRADE, useClientProtocol: true}
      `,
      [
        'spec.trafficPolicy.connectionPool.tcp.maxConnections',
        'spec.trafficPolicy.connectionPool.tcp.connectTimeout',
        'spec.trafficPolicy.connectionPool.http.http2MaxRequests',
        'spec.trafficPolicy.connectionPool.http.idleTimeout',
        'spec.trafficPolicy.connectionPool.http.useClientProtocol',
      ],
    );
    assertErrors('host: reviews\ntrafficPolicy: {connectionPool: {}}', ['spec.trafficPolicy.connectionPool']);
  });

  it('checks outlier detection ranges and durations', () => {
    const result = assertErrors(
      `
      host: reviews
      trafficPolicy:
        outlierDetection:
          consecutiveErrors: 5
          consecutiveLocalOriginFailures: 3
          maxEjectionPercent: 120
          minHealthPercent: -1
          interval: 10
          baseEjectionTime: 30ms
      `,
      [
        'spec.trafficPolicy.outlierDetection.maxEjectionPercent',
        'spec.trafficPolicy.outlierDetection.minHealthPercent',
        'spec.trafficPolicy.outlierDetection.interval',
      ],
    );
    assert.deepEqual(paths(result.warnings), ['spec.trafficPolicy.outlierDetection.consecutiveErrors']);
    // Once the types are right, the semantic check runs too.
    assertErrors(
      `
      host: reviews
      trafficPolicy: {outlierDetection: {consecutiveLocalOriginFailures: 3}}
      `,
      ['spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures'],
    );
  });

  it('checks client TLS: mode enum, MUTUAL needs a certificate and key unless credentialName is set', () => {
    assertErrors('host: reviews\ntrafficPolicy: {tls: {mode: MUTUAL}}', [
      'spec.trafficPolicy.tls.clientCertificate',
      'spec.trafficPolicy.tls.privateKey',
    ]);
    assertErrors('host: reviews\ntrafficPolicy: {tls: {mode: MUTUAL, credentialName: client-credential}}', []);
    assertErrors('host: reviews\ntrafficPolicy: {tls: {mode: SIMPLE, credentialName: c, caCertificates: /ca.pem}}', [
      'spec.trafficPolicy.tls.credentialName',
    ]);
    assertErrors('host: reviews\ntrafficPolicy: {tls: {mode: STRICT}}', ['spec.trafficPolicy.tls.mode']);
    assertErrors('host: reviews\ntrafficPolicy: {tls: {mode: SIMPLE, insecureSkipVerify: true, subjectAltNames: [a]}}', [
      'spec.trafficPolicy.tls.insecureSkipVerify',
    ]);
  });

  it('requires a port and at least one setting in port level settings', () => {
    assertErrors(
      `
      host: reviews
      trafficPolicy:
        portLevelSettings:
        - loadBalancer: {simple: RANDOM}
        - port: {number: 80}
        - port: {number: 0}
          tls: {mode: ISTIO_MUTUAL}
      `,
      [
        'spec.trafficPolicy.portLevelSettings[0].port',
        'spec.trafficPolicy.portLevelSettings[1]',
        'spec.trafficPolicy.portLevelSettings[2].port.number',
      ],
    );
  });

  it('checks locality load balancing and warns when failover has no outlier detection', () => {
    const result = assertErrors(
      `
      host: reviews
      trafficPolicy:
        loadBalancer:
          localityLbSetting:
            distribute:
            - from: us-west/zone1/*
              to: {"us-west/zone1/*": 80, "us-west/zone2/*": 30}
      `,
      ['spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to'],
    );
    assert.deepEqual(result.warnings, []);
    const failover = assertErrors(
      `
      host: reviews
      trafficPolicy:
        loadBalancer:
          localityLbSetting:
            failover: [{from: us-east, to: us-east}]
      `,
      ['spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0]'],
    );
    assert.deepEqual(paths(failover.warnings), ['spec.trafficPolicy.loadBalancer.localityLbSetting']);
  });

  it('requires traffic policies to set something, and tunnels to name a target', () => {
    assertErrors('host: reviews\ntrafficPolicy: {}', ['spec.trafficPolicy']);
    assertErrors('host: reviews\ntrafficPolicy: {tunnel: {protocol: GET, targetHost: "bad host", targetPort: 0}}', [
      'spec.trafficPolicy.tunnel.protocol',
      'spec.trafficPolicy.tunnel.targetHost',
      'spec.trafficPolicy.tunnel.targetPort',
    ]);
  });

  it('rejects unknown fields at any depth', () => {
    assertErrors('host: reviews\ntrafficPolicy: {connectionPool: {tcp: {maxConnection: 10}}}', [
      'spec.trafficPolicy.connectionPool.tcp.maxConnection',
    ]);
  });

  it('checks workload selectors and their exportTo', () => {
    const result = assertErrors('host: reviews\nworkloadSelector: {matchLabels: {}}\nexportTo: ["*"]', ['spec.exportTo'], {
      namespace: 'prod',
    });
    assert.deepEqual(paths(result.warnings), ['spec.workloadSelector']);
    assertErrors('host: reviews\nworkloadSelector: {matchLabels: {app: "*"}}\nexportTo: ["."]', ['spec.workloadSelector.matchLabels.app']);
  });
});
