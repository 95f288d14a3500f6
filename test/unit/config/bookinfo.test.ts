// Istio's Bookinfo networking samples (examples/bookinfo/networking) validate, and analyze cleanly with the services.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { analyzeResources } from '../../../src/config/analyze';
import type { ConfigResource } from '../../../src/config/resources';
import { checkAll, fixture, readRepoFile, validResources } from './config-test-support';

const SAMPLES = [
  'destination-rule-all.yaml',
  'virtual-service-all-v1.yaml',
  'virtual-service-reviews-test-v2.yaml',
  'virtual-service-reviews-50-v3.yaml',
  'virtual-service-ratings-test-delay.yaml',
  'virtual-service-ratings-test-abort.yaml',
  'bookinfo-gateway.yaml',
];

const BOOKINFO_SERVICES = ['productpage', 'reviews', 'ratings', 'details']
  .map(
    (name) =>
      `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}}\nspec: {ports: [{port: 9080, name: http}], selector: {app: ${name}}}`,
  )
  .join('\n---\n');

const sample = (file: string) => readRepoFile(path.join('examples/bookinfo/networking', file));

describe('Bookinfo networking samples', () => {
  it('are all present', () => {
    const dir = path.resolve(__dirname, '../../../../examples/bookinfo/networking');
    for (const file of SAMPLES) assert.ok(fs.existsSync(path.join(dir, file)), file);
  });

  for (const file of SAMPLES) {
    it(`${file} validates without problems`, () => {
      const results = checkAll(sample(file), file);
      assert.ok(results.length > 0);
      for (const result of results) {
        assert.deepEqual(result.errors, [], result.errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
        assert.deepEqual(result.warnings, []);
      }
    });
  }

  it('analyze cleanly with the Bookinfo services: every subset, gateway and host resolves', () => {
    const resources: ConfigResource[] = [
      ...validResources(BOOKINFO_SERVICES, 'bookinfo.yaml'),
      ...validResources(sample('destination-rule-all.yaml'), 'destination-rule-all.yaml'),
      ...validResources(sample('virtual-service-all-v1.yaml'), 'virtual-service-all-v1.yaml'),
      ...validResources(sample('bookinfo-gateway.yaml'), 'bookinfo-gateway.yaml'),
    ];
    assert.deepEqual(analyzeResources(resources), []);
    assert.deepEqual(
      resources.map((r) => `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`).filter((k) => k.startsWith('Gateway')),
      ['Gateway/default/bookinfo-gateway'],
    );
  });

  it('flag the subsets the routes use when the DestinationRules are missing', () => {
    const resources = [
      ...validResources(BOOKINFO_SERVICES),
      ...validResources(sample('virtual-service-all-v1.yaml'), 'virtual-service-all-v1.yaml'),
    ];
    const problems = analyzeResources(resources);
    assert.deepEqual(
      problems.map((p) => `${p.code} ${p.name} ${p.path}`),
      ['productpage', 'reviews', 'ratings', 'details'].map((name) => `IST0101 ${name} spec.http[0].route[0].destination.subset`),
    );
    assert.equal(problems[0].file, 'virtual-service-all-v1.yaml');
  });

  it('keep the Bookinfo Services fixture in step with the samples', () => {
    assert.equal(
      checkAll(fixture('istio-docs/service.yaml')).every((r) => r.valid),
      true,
    );
  });
});
