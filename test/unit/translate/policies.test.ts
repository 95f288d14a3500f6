// DestinationRule precedence and traffic-policy merging (Istio push context / MergeTrafficPolicy).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TrafficPolicy } from '../../../src/config/resources';
import { createSnapshot, DEFAULT_MESH_CONFIG } from '../../../src/model/snapshot';
import { parseProxyNode } from '../../../src/xds/translate';
import { findDestinationRule, mergeTrafficPolicy } from '../../../src/xds/translate/policies';
import { buildProxyScope } from '../../../src/xds/translate/scope';
import { parseResources } from './load-fixture';

function dr(name: string, namespace: string, host: string, extra = ''): string {
  return `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ${name}, namespace: ${namespace}}\nspec:\n  host: "${host}"\n${extra}`;
}

function scopeFor(yaml: string, namespace: string, labels: Record<string, string> = {}) {
  const snapshot = createSnapshot({ sequence: 1, reason: 't', resources: parseResources(yaml), meshConfig: DEFAULT_MESH_CONFIG });
  const proxy = parseProxyNode({ id: `sidecar~10.0.0.1~p.${namespace}~${namespace}.svc.cluster.local`, metadata: { LABELS: labels } });
  return buildProxyScope(snapshot, proxy);
}

const HOST = 'reviews.bookinfo.svc.cluster.local';

describe('findDestinationRule precedence', () => {
  const rules = [
    dr('root', 'istio-system', '*.svc.cluster.local'),
    dr('service-ns', 'bookinfo', 'reviews'),
    dr('client-ns', 'client', 'reviews.bookinfo.svc.cluster.local'),
    dr('client-ns-selected', 'client', 'reviews.bookinfo.svc.cluster.local', '  workloadSelector: {matchLabels: {app: canary}}\n'),
  ].join('---\n');

  it("prefers a rule in the proxy's namespace", () => {
    assert.equal(findDestinationRule(scopeFor(rules, 'client'), HOST, 'bookinfo')?.metadata.name, 'client-ns');
  });
  it('prefers a workloadSelector-matched rule within the proxy namespace', () => {
    assert.equal(findDestinationRule(scopeFor(rules, 'client', { app: 'canary' }), HOST, 'bookinfo')?.metadata.name, 'client-ns-selected');
  });
  it("falls back to the service's namespace, then the root namespace", () => {
    assert.equal(findDestinationRule(scopeFor(rules, 'elsewhere'), HOST, 'bookinfo')?.metadata.name, 'service-ns');
    const onlyRoot = dr('root', 'istio-system', '*.svc.cluster.local');
    assert.equal(findDestinationRule(scopeFor(onlyRoot, 'elsewhere'), HOST, 'bookinfo')?.metadata.name, 'root');
  });
  it('honours exportTo of rules in other namespaces', () => {
    const yaml = dr('private', 'bookinfo', 'reviews', '  exportTo: ["."]\n');
    assert.equal(findDestinationRule(scopeFor(yaml, 'client'), HOST, 'bookinfo'), undefined);
    assert.equal(findDestinationRule(scopeFor(yaml, 'bookinfo'), HOST, 'bookinfo')?.metadata.name, 'private');
  });
  it('picks the most specific host within a tier', () => {
    const yaml = [dr('wild', 'bookinfo', '*.bookinfo.svc.cluster.local'), dr('exact', 'bookinfo', 'reviews'), dr('wider', 'bookinfo', '*.svc.cluster.local')].join('---\n');
    assert.equal(findDestinationRule(scopeFor(yaml, 'client'), HOST, 'bookinfo')?.metadata.name, 'exact');
    assert.equal(findDestinationRule(scopeFor(yaml, 'client'), 'ratings.bookinfo.svc.cluster.local', 'bookinfo')?.metadata.name, 'wild');
  });
});

describe('mergeTrafficPolicy', () => {
  const base: TrafficPolicy = {
    loadBalancer: { simple: 'ROUND_ROBIN' },
    connectionPool: { tcp: { maxConnections: 10 } },
    outlierDetection: { consecutive5xxErrors: 3 },
    portLevelSettings: [{ port: { number: 9090 }, loadBalancer: { simple: 'RANDOM' } }],
  };
  it('applies port-level settings whole, without inheriting the top level', () => {
    assert.deepEqual(mergeTrafficPolicy(base, undefined, 9090), { loadBalancer: { simple: 'RANDOM' } });
    assert.deepEqual(mergeTrafficPolicy(base, undefined, 9080), {
      loadBalancer: { simple: 'ROUND_ROBIN' },
      connectionPool: { tcp: { maxConnections: 10 } },
      outlierDetection: { consecutive5xxErrors: 3 },
    });
  });
  it('lets a subset replace whole fields and keeps the rest from the rule', () => {
    const merged = mergeTrafficPolicy(base, { loadBalancer: { consistentHash: { useSourceIp: true } } }, 9080);
    assert.deepEqual(merged.loadBalancer, { consistentHash: { useSourceIp: true } });
    assert.deepEqual(merged.connectionPool, { tcp: { maxConnections: 10 } });
  });
  it("lets the subset's port-level settings win last", () => {
    const subset: TrafficPolicy = {
      outlierDetection: { consecutive5xxErrors: 9 },
      portLevelSettings: [{ port: { number: 9080 }, connectionPool: { http: { maxRetries: 1 } } }],
    };
    assert.deepEqual(mergeTrafficPolicy(base, subset, 9080), { connectionPool: { http: { maxRetries: 1 } } });
  });
});
