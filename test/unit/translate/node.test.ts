// parseProxyNode: Istio node ids and metadata, and grpc-js-xds bootstraps.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseProxyNode } from '../../../src/xds/translate';

describe('parseProxyNode', () => {
  it('reads a sidecar id and metadata, metadata winning', () => {
    const p = parseProxyNode({
      id: 'sidecar~10.0.0.1~reviews-v1-abc.bookinfo~bookinfo.svc.cluster.local',
      metadata: { LABELS: { app: 'reviews', version: 'v1' }, WORKLOAD_NAME: 'reviews-v1', INSTANCE_IPS: '10.0.0.1,fd00::1' },
    });
    assert.equal(p.type, 'sidecar');
    assert.equal(p.namespace, 'bookinfo');
    assert.equal(p.workloadName, 'reviews-v1');
    assert.deepEqual(p.ips, ['10.0.0.1', 'fd00::1']);
    assert.deepEqual(p.labels, { app: 'reviews', version: 'v1' });
  });
  it('takes the namespace from metadata over the id, and the pod name as workload name', () => {
    const p = parseProxyNode({ id: 'router~10.0.0.9~ingress-1.istio-system~istio-system.svc.cluster.local', metadata: { NAMESPACE: 'gw' } });
    assert.equal(p.type, 'router');
    assert.equal(p.namespace, 'gw');
    assert.equal(p.workloadName, 'ingress-1');
    assert.deepEqual(p.ips, ['10.0.0.9']);
  });
  it('marks GENERATOR grpc as proxyless (grpc-js-xds bootstrap)', () => {
    const p = parseProxyNode({ id: 'sidecar~127.0.0.1~client.default~default.svc.cluster.local', metadata: { GENERATOR: 'grpc' } });
    assert.equal(p.type, 'proxyless');
    assert.equal(p.namespace, 'default');
  });
  it('rejects ids that name no proxy type', () => {
    assert.throws(() => parseProxyNode({ id: 'envoy-1' }), /TYPE sidecar or router/);
  });
});
