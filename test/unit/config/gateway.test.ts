// Gateway validation: Istio's documented examples pass; each invalid server field is reported at its path.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { check, checkAll, fixture, paths, resourceYaml } from './config-test-support';

function assertErrors(spec: string, expectedPaths: string[]) {
  const result = check(resourceYaml('Gateway', spec));
  assert.deepEqual(paths(result.errors), expectedPaths, result.errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
  return result;
}

describe('Gateway validation', () => {
  it("accepts every example of Istio's Gateway reference", () => {
    const results = checkAll(fixture('istio-docs/gateway.yaml'));
    assert.equal(results.length, 4);
    for (const result of results) {
      assert.deepEqual(result.errors, [], result.errors.map((e) => `${e.name} ${e.path}: ${e.message}`).join('\n'));
      assert.deepEqual(result.warnings, []);
    }
  });

  it('requires servers', () => {
    assertErrors('selector: {istio: ingressgateway}', ['spec.servers']);
    assertErrors('servers: []', ['spec.servers']);
  });

  it('requires each server to have a port (number, protocol, name) and hosts', () => {
    assertErrors(
      `
      servers:
      - hosts: ["*"]
      - port: {number: 80, name: http, protocol: HTTP}
      - port: {number: 0, name: zero, protocol: HTTP}
        hosts: ["*"]
      - port: {number: 81, protocol: QUIC}
        hosts: ["*"]
      - port: {number: 82, name: target, protocol: HTTP, targetPort: 8082}
        hosts: ["*"]
      `,
      [
        'spec.servers[0].port',
        'spec.servers[1].hosts',
        'spec.servers[2].port.number',
        'spec.servers[3].port.protocol',
        'spec.servers[3].port.name',
        'spec.servers[4].port.targetPort',
      ],
    );
  });

  it('accepts hosts as dnsName or namespace/dnsName and rejects short names and partial wildcards', () => {
    assertErrors(
      `
      servers:
      - port: {number: 80, name: http, protocol: HTTP}
        hosts: ["*", "uk.bookinfo.com", "prod/*.bookinfo.com", "./reviews.example.com", "*/*", "10.1.2.3", "reviews", "foo*.example.com", "Bad_NS/x.example.com"]
      `,
      ['spec.servers[0].hosts[6]', 'spec.servers[0].hosts[7]', 'spec.servers[0].hosts[7]', 'spec.servers[0].hosts[8]'],
    );
  });

  it('requires TLS settings on HTTPS and TLS ports, and SIMPLE/MUTUAL to have certificates or a credential', () => {
    assertErrors(
      `
      servers:
      - port: {number: 443, name: https, protocol: HTTPS}
        hosts: ["*"]
      - port: {number: 444, name: https-simple, protocol: HTTPS}
        hosts: ["*"]
        tls: {mode: SIMPLE}
      - port: {number: 445, name: https-mutual, protocol: HTTPS}
        hosts: ["*"]
        tls: {mode: MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem}
      - port: {number: 446, name: https-credential, protocol: HTTPS}
        hosts: ["*"]
        tls: {mode: MUTUAL, credentialName: my-secret}
      - port: {number: 447, name: https-istio, protocol: HTTPS}
        hosts: ["*"]
        tls: {mode: ISTIO_MUTUAL, privateKey: /k.pem}
      - port: {number: 448, name: https-both, protocol: HTTPS}
        hosts: ["*"]
        tls: {mode: SIMPLE, credentialName: s, serverCertificate: /c.pem, privateKey: /k.pem}
      `,
      [
        'spec.servers[0].tls',
        'spec.servers[1].tls.serverCertificate',
        'spec.servers[1].tls.privateKey',
        'spec.servers[2].tls.caCertificates',
        'spec.servers[4].tls.privateKey',
        'spec.servers[5].tls',
      ],
    );
  });

  it('allows only httpsRedirect on plain HTTP servers and no TLS on plain TCP servers', () => {
    const result = assertErrors(
      `
      servers:
      - port: {number: 80, name: http, protocol: HTTP}
        hosts: ["*"]
        tls: {mode: SIMPLE, credentialName: s}
      - port: {number: 81, name: tcp, protocol: TCP}
        hosts: ["*"]
        tls: {httpsRedirect: true}
      - port: {number: 443, name: https, protocol: HTTPS}
        hosts: ["*"]
        tls: {mode: SIMPLE, credentialName: s, minProtocolVersion: TLSV1_1, maxProtocolVersion: TLSV9}
      `,
      ['spec.servers[0].tls', 'spec.servers[1].tls', 'spec.servers[2].tls.maxProtocolVersion'],
    );
    assert.deepEqual(paths(result.warnings), ['spec.servers[1].tls.httpsRedirect', 'spec.servers[2].tls.minProtocolVersion']);
  });

  it('requires unique port names across servers', () => {
    assertErrors(
      `
      servers:
      - port: {number: 80, name: http, protocol: HTTP}
        hosts: [a.example.com]
      - port: {number: 8080, name: http, protocol: HTTP}
        hosts: [b.example.com]
      `,
      ['spec.servers[1].port.name'],
    );
  });

  it('checks bind addresses, including unix domain sockets with port 0', () => {
    assertErrors(
      `
      servers:
      - port: {number: 0, name: uds, protocol: HTTP}
        bind: unix:///var/run/gateway.sock
        hosts: ["*"]
      - port: {number: 81, name: bad-bind, protocol: HTTP}
        bind: not-an-ip
        hosts: ["*"]
      `,
      ['spec.servers[1].bind'],
    );
  });
});
