// WorkloadEntry validation: Istio's documented examples pass; address, ports and labels are checked.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { check, checkAll, fixture, paths, resourceYaml } from './config-test-support';

function assertErrors(spec: string, expectedPaths: string[]) {
  const result = check(resourceYaml('WorkloadEntry', spec));
  assert.deepEqual(paths(result.errors), expectedPaths, result.errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
  return result;
}

describe('WorkloadEntry validation', () => {
  it("accepts every example of Istio's WorkloadEntry reference (an address-less entry with a network is a warning)", () => {
    const results = checkAll(fixture('istio-docs/workload-entry.yaml'));
    assert.equal(results.length, 3);
    for (const result of results) assert.deepEqual(result.errors, []);
    assert.deepEqual(
      results.map((r) => paths(r.warnings)),
      [[], [], ['spec.address']],
    );
  });

  it('requires an address (IP, host name or unix socket) unless a network is given', () => {
    assertErrors('labels: {app: a}', ['spec.address']);
    assertErrors('address: "not a host"', ['spec.address']);
    assertErrors('address: "2001:db8::1"', []);
    assertErrors('address: vm-1.example.com', []);
  });

  it('checks unix socket addresses, which take no ports', () => {
    assertErrors('address: unix:///var/run/app.sock', []);
    assertErrors('address: unix://@abstract', []);
    assertErrors('address: unix:///dir/', ['spec.address']);
    assertErrors('address: unix://@foo\nports: {http: 80}', ['spec.ports']);
  });

  it('checks port names and numbers, labels and weight', () => {
    assertErrors(
      `
      address: 10.0.0.1
      ports: {http: 99999, "@": 80, grpc: 0}
      labels: {"app/bad/key": x, version: "v 1"}
      weight: -1
      `,
      ['spec.ports["@"]', 'spec.labels["app/bad/key"]', 'spec.labels.version', 'spec.weight', 'spec.ports.http', 'spec.ports.grpc'],
    );
  });
});
