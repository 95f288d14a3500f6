// ServiceEntry validation: Istio's documented examples pass; resolution, endpoints and ports are checked.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { check, checkAll, fixture, paths, resourceYaml } from './config-test-support';

function assertErrors(spec: string, expectedPaths: string[]) {
  const result = check(resourceYaml('ServiceEntry', spec));
  assert.deepEqual(paths(result.errors), expectedPaths, result.errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
  return result;
}

describe('ServiceEntry validation', () => {
  it("accepts every example of Istio's ServiceEntry reference", () => {
    const results = checkAll(fixture('istio-docs/service-entry.yaml'));
    assert.equal(results.length, 6);
    for (const result of results) {
      assert.deepEqual(result.errors, [], result.errors.map((e) => `${e.name} ${e.path}: ${e.message}`).join('\n'));
      assert.deepEqual(result.warnings, []);
    }
  });

  it('requires hosts, and rejects "*" and malformed hosts', () => {
    assertErrors('ports: [{number: 80, name: http}]', ['spec.hosts']);
    const result = assertErrors('hosts: ["*", "bad host", "foo.*.com", "*.example.com"]', [
      'spec.hosts[0]',
      'spec.hosts[1]',
      'spec.hosts[2]',
    ]);
    // Istio also warns about the partial wildcard.
    assert.deepEqual(paths(result.warnings), ['spec.hosts[2]']);
  });

  it('requires ports with unique names and numbers, valid names and protocols', () => {
    assertErrors(
      `
      hosts: [api.example.com]
      ports:
      - {number: 443, name: https, protocol: HTTPS}
      - {number: 443, name: https, protocol: HTTPS}
      - {number: 70000, name: Not_Valid, protocol: SPDY}
      - {name: missing-number}
      - {number: 8080, name: target, targetPort: 70000}
      `,
      [
        'spec.ports[2].protocol',
        'spec.ports[2].number',
        'spec.ports[2].name',
        'spec.ports[3].number',
        'spec.ports[4].targetPort',
        'spec.ports[1].name',
        'spec.ports[1].number',
      ],
    );
  });

  it('checks resolution and location enums', () => {
    assertErrors('hosts: [a.example.com]\nresolution: ROUND_ROBIN\nlocation: OUTSIDE', ['spec.resolution', 'spec.location']);
  });

  it('requires IP (or unix://) endpoint addresses with STATIC resolution, and ports the entry defines', () => {
    assertErrors(
      `
      hosts: [db.example.com]
      resolution: STATIC
      ports: [{number: 5432, name: tcp-db, protocol: TCP}]
      endpoints:
      - address: 10.0.0.1
        ports: {tcp-db: 15432}
      - address: db1.example.com
      - address: 10.0.0.2
        ports: {other: 80}
      - address: unix://relative/path
      `,
      ['spec.endpoints[1].address', 'spec.endpoints[2].ports.other', 'spec.endpoints[3].address'],
    );
  });

  it('requires FQDN hosts for DNS resolution without endpoints, and at most one endpoint for DNS_ROUND_ROBIN', () => {
    assertErrors('hosts: ["*.example.com"]\nresolution: DNS\nports: [{number: 80, name: http, protocol: HTTP}]', ['spec.hosts[0]']);
    assertErrors(
      `
      hosts: [api.example.com]
      resolution: DNS_ROUND_ROBIN
      ports: [{number: 80, name: http, protocol: HTTP}]
      endpoints: [{address: a.example.com}, {address: "b example"}]
      `,
      ['spec.endpoints', 'spec.endpoints[1].address'],
    );
  });

  it('rejects endpoints with NONE resolution, endpoints together with a workload selector, and CIDRs with DNS', () => {
    assertErrors('hosts: [a.example.com]\nresolution: NONE\nendpoints: [{address: 1.2.3.4}]', ['spec.endpoints']);
    assertErrors('hosts: [a.example.com]\nresolution: STATIC\nworkloadSelector: {labels: {app: a}}\nendpoints: [{address: 1.2.3.4}]', [
      'spec.endpoints',
    ]);
    assertErrors('hosts: [a.example.com]\naddresses: [1.2.3.4/16, 300.1.1.1]\nresolution: DNS', ['spec.addresses[1]', 'spec.addresses']);
  });

  it('rejects several hosts on plain TCP ports unless resolution is NONE', () => {
    assertErrors('hosts: [a.example.com, b.example.com]\nresolution: DNS\nports: [{number: 3306, name: mysql, protocol: MYSQL}]', [
      'spec.ports[0]',
    ]);
    assertErrors('hosts: [a.example.com, b.example.com]\nresolution: NONE\nports: [{number: 3306, name: mysql, protocol: MYSQL}]', []);
  });

  it('checks workload selectors and exportTo (which may be "~" for a ServiceEntry)', () => {
    assertErrors('hosts: [a.example.com]\nresolution: STATIC\nworkloadSelector: {labels: {"*": x}}', ['spec.workloadSelector.labels["*"]']);
    assertErrors('hosts: [a.example.com]\nexportTo: ["~"]', []);
    assertErrors('hosts: [a.example.com]\nexportTo: ["~", "prod"]', ['spec.exportTo']);
  });
});
