// The VirtualService edits of a rollout step: weights that add up to 100 and the weighted route
// written the way Istio users write a traffic shift, other rules kept.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { currentSources, shiftedRuleIndex, shiftedVirtualService, stepWeights } from '../../../src/control/rollout-route';
import { virtualService } from '../../support/mesh-resources';

const SERVICE = { name: 'reviews', namespace: 'default', hostname: 'reviews.default.svc.cluster.local' };

describe('rollout route edits', () => {
  it('splits the rest among the subsets in proportion, always adding up to 100', () => {
    const sources = [
      { subset: 'v1', weight: 2, destination: { host: 'reviews', subset: 'v1' } },
      { subset: 'v2', weight: 1, destination: { host: 'reviews', subset: 'v2' } },
    ];
    assert.deepEqual(stepWeights(sources, 'v3', 10), [{ subset: 'v1', weight: 60 }, { subset: 'v2', weight: 30 }, { subset: 'v3', weight: 10 }]);
    assert.deepEqual(stepWeights(sources, 'v3', 25), [{ subset: 'v1', weight: 50 }, { subset: 'v2', weight: 25 }, { subset: 'v3', weight: 25 }]);
    assert.deepEqual(stepWeights(sources, 'v3', 100), [{ subset: 'v1', weight: 0 }, { subset: 'v2', weight: 0 }, { subset: 'v3', weight: 100 }]);
    for (const p of [1, 33, 50, 99]) assert.equal(stepWeights(sources, 'v3', p).reduce((n, w) => n + w.weight, 0), 100);
  });

  it('shifts the default rule and keeps the rules with a match', () => {
    const vs = virtualService('default/reviews', {
      hosts: ['reviews'],
      http: [
        { match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] },
        { route: [{ destination: { host: 'reviews', subset: 'v1' } }], timeout: '3s' },
      ],
    });
    const index = shiftedRuleIndex(vs.spec, 'default', SERVICE.hostname, 'cluster.local');
    assert.equal(index, 1);
    const sources = currentSources(vs.spec.http![index]);
    assert.deepEqual(sources.map((s) => [s.subset, s.weight]), [['v1', 100]]);
    const step = shiftedVirtualService({ current: vs, service: SERVICE, domainSuffix: 'cluster.local', sources, to: 'v3', weights: stepWeights(sources, 'v3', 25) });
    assert.deepEqual(step.spec.http![0], vs.spec.http![0]);
    assert.deepEqual(step.spec.http![1], {
      route: [
        { destination: { host: 'reviews', subset: 'v1' }, weight: 75 },
        { destination: { host: 'reviews', subset: 'v3' }, weight: 25 },
      ],
      timeout: '3s',
    });
    const final = shiftedVirtualService({ current: vs, service: SERVICE, domainSuffix: 'cluster.local', sources, to: 'v3', weights: [], final: true });
    assert.deepEqual(final.spec.http![1].route, [{ destination: { host: 'reviews', subset: 'v3' } }]);
  });

  it('makes a VirtualService when the service has none', () => {
    const sources = [{ subset: 'v1', weight: 100, destination: { host: 'reviews', subset: 'v1' } }];
    const made = shiftedVirtualService({ current: undefined, service: SERVICE, domainSuffix: 'cluster.local', sources, to: 'v2', weights: stepWeights(sources, 'v2', 10) });
    assert.deepEqual(made, {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'reviews', namespace: 'default' },
      spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' }, weight: 90 }, { destination: { host: 'reviews', subset: 'v2' }, weight: 10 }] }] },
    });
  });
});
