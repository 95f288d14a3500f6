// Sidecar validation: Istio's documented examples pass; listeners, hosts and policies are checked.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { check, checkAll, fixture, paths, resourceYaml } from './config-test-support';

function assertErrors(spec: string, expectedPaths: string[]) {
  const result = check(resourceYaml('Sidecar', spec, { namespace: 'prod' }));
  assert.deepEqual(paths(result.errors), expectedPaths, result.errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
  return result;
}

describe('Sidecar validation', () => {
  it("accepts every example of Istio's Sidecar reference", () => {
    const results = checkAll(fixture('istio-docs/sidecar.yaml'));
    assert.equal(results.length, 6);
    for (const result of results) {
      assert.deepEqual(result.errors, [], result.errors.map((e) => `${e.name} ${e.path}: ${e.message}`).join('\n'));
      assert.deepEqual(result.warnings, []);
    }
  });

  it('rejects an empty Sidecar', () => {
    assertErrors('{}', ['spec']);
  });

  it('requires egress hosts in namespace/dnsName form', () => {
    assertErrors(
      `
      egress:
      - hosts: ["prod/*", "./reviews.prod.svc.cluster.local", "*/*.example.com", "~/*", "reviews", "prod/reviews", "Bad_NS/*"]
      - port: {number: 9080, protocol: HTTP, name: http}
      `,
      // The port-less listener is not last, which is an error of its own.
      ['spec.egress[0]', 'spec.egress[0].hosts[4]', 'spec.egress[0].hosts[5]', 'spec.egress[0].hosts[6]', 'spec.egress[1].hosts'],
    );
  });

  it('allows one egress listener without a port, and only as the last one', () => {
    assertErrors(
      `
      egress:
      - hosts: ["istio-system/*"]
      - port: {number: 9080, protocol: HTTP, name: http}
        hosts: ["prod/*"]
      `,
      ['spec.egress[0]'],
    );
  });

  it('checks egress ports, binds, capture modes and duplicates', () => {
    const result = assertErrors(
      `
      egress:
      - port: {number: 0, protocol: HTTP, name: uds}
        bind: 127.0.0.1
        hosts: ["prod/*"]
      - port: {number: 3306, protocol: MYSQL, name: mysql}
        bind: not-an-ip
        captureMode: SOMETIMES
        hosts: ["*/mysql.foo.com", "*/mysql.foo.com"]
      - port: {number: 3306, protocol: PROTO, name: mysql2}
        hosts: ["prod/*"]
      `,
      [
        'spec.egress[1].captureMode',
        'spec.egress[2].port.protocol',
        'spec.egress[0].bind',
        'spec.egress[1].bind',
        'spec.egress[2].port.number',
      ],
    );
    assert.deepEqual(paths(result.warnings), ['spec.egress[1].hosts[1]']);
  });

  it('requires an ingress port and checks the default endpoint', () => {
    assertErrors(
      `
      ingress:
      - defaultEndpoint: 127.0.0.1:8080
      - port: {number: 9080, protocol: HTTP, name: http}
        defaultEndpoint: 10.0.0.1:8080
      - port: {number: 9081, protocol: HTTP, name: http2}
        defaultEndpoint: "127.0.0.1:http"
      - port: {number: 9082, protocol: HTTP, name: http3}
        defaultEndpoint: "[::1]:8080"
      - port: {number: 9082, protocol: HTTP, name: http4}
        defaultEndpoint: unix://relative
      `,
      [
        'spec.ingress[0].port',
        'spec.ingress[1].defaultEndpoint',
        'spec.ingress[2].defaultEndpoint',
        'spec.ingress[4].port.number',
        'spec.ingress[4].defaultEndpoint',
      ],
    );
  });

  it('checks ingress TLS like a gateway server, minus what a sidecar cannot do', () => {
    assertErrors(
      `
      ingress:
      - port: {number: 8443, protocol: HTTPS, name: https}
        defaultEndpoint: 127.0.0.1:8080
        tls: {mode: SIMPLE, serverCertificate: /c.pem, privateKey: /k.pem}
      - port: {number: 8444, protocol: HTTP, name: http}
        tls: {mode: ISTIO_MUTUAL, credentialName: x}
      `,
      ['spec.ingress[1].tls.credentialName', 'spec.ingress[1].tls.credentialName', 'spec.ingress[1].tls.mode', 'spec.ingress[1].tls'],
    );
  });

  it('checks the outbound traffic policy: mode enum, egressProxy only with ALLOW_ANY', () => {
    assertErrors('outboundTrafficPolicy: {mode: DENY_ALL}', ['spec.outboundTrafficPolicy.mode']);
    assertErrors('outboundTrafficPolicy: {mode: REGISTRY_ONLY, egressProxy: {host: proxy.example.com, port: {number: 3128}}}', [
      'spec.outboundTrafficPolicy.egressProxy',
    ]);
    assertErrors('outboundTrafficPolicy: {mode: ALLOW_ANY, egressProxy: {host: proxy.example.com}}', [
      'spec.outboundTrafficPolicy.egressProxy.port',
    ]);
    assertErrors('outboundTrafficPolicy: {mode: ALLOW_ANY, egressProxy: {host: proxy.example.com, port: {number: 3128}}}', []);
  });

  it('warns about a workload selector without labels', () => {
    const result = assertErrors('workloadSelector: {labels: {}}\negress: [{hosts: ["./*"]}]', []);
    assert.deepEqual(paths(result.warnings), ['spec.workloadSelector']);
  });
});
