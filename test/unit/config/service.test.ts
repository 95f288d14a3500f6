// Kubernetes Service validation: the Bookinfo Services pass; ports, names and selectors are checked.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { check, checkAll, fixture, paths, resourceYaml } from './config-test-support';

function assertErrors(spec: string, expectedPaths: string[]) {
  const result = check(resourceYaml('Service', spec, { name: 'reviews' }));
  assert.deepEqual(paths(result.errors), expectedPaths, result.errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
  return result;
}

describe('Service validation', () => {
  it('accepts the Bookinfo Services', () => {
    const results = checkAll(fixture('istio-docs/service.yaml'));
    assert.equal(results.length, 2);
    for (const result of results) assert.deepEqual([result.errors, result.warnings], [[], []]);
    assert.deepEqual(results[1].resource?.spec, { ports: [{ port: 9080, name: 'http' }], selector: { app: 'reviews' } });
  });

  it('only accepts apiVersion v1', () => {
    const result = check(resourceYaml('Service', 'ports: [{port: 80}]', { apiVersion: 'apps/v1' }));
    assert.deepEqual(paths(result.errors), ['apiVersion']);
  });

  it('requires ports with a number, except for headless and ExternalName services', () => {
    assertErrors('selector: {app: reviews}', ['spec.ports']);
    assertErrors('clusterIP: None\nselector: {app: reviews}', []);
    assertErrors('type: ExternalName\nexternalName: reviews.example.com', []);
    assertErrors('ports: [{name: http}, {port: 0, name: zero}]', ['spec.ports[0].port', 'spec.ports[1].port']);
  });

  it('requires unique port names when there is more than one port', () => {
    assertErrors(
      `
      ports:
      - {port: 9080, name: http}
      - {port: 9081, name: http}
      - {port: 9082}
      - {port: 9083, name: Not_Valid}
      `,
      ['spec.ports[3].name', 'spec.ports[1].name', 'spec.ports[2].name'],
    );
  });

  it('accepts a number or a named port as targetPort', () => {
    assertErrors('ports: [{port: 80, name: http, targetPort: 8080}, {port: 81, name: web, targetPort: web-port}]', []);
    assertErrors(
      'ports: [{port: 80, name: http, targetPort: 0}, {port: 81, name: web, targetPort: "Not a name"}, {port: 82, name: b, targetPort: true}]',
      ['spec.ports[0].targetPort', 'spec.ports[1].targetPort', 'spec.ports[2].targetPort'],
    );
  });

  it('checks the selector labels, protocol, type and clusterIP', () => {
    assertErrors('ports: [{port: 80, protocol: HTTP}]\nselector: {"bad key!": x}\ntype: Internal\nclusterIP: 10.0.0.300', [
      'spec.ports[0].protocol',
      'spec.selector["bad key!"]',
      'spec.type',
      'spec.clusterIP',
    ]);
  });
});
