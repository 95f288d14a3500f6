// Resource names match Istio's spelling.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  gatewayHttpRouteConfigName,
  gatewayHttpsRouteConfigName,
  inboundClusterName,
  listenerName,
  outboundClusterName,
  outboundRouteConfigName,
  parseClusterName,
} from '../../../src/xds/translate/names';

describe('Istio resource names', () => {
  it('builds subset keys like BuildSubsetKey', () => {
    assert.equal(outboundClusterName('reviews.default.svc.cluster.local', 9080), 'outbound|9080||reviews.default.svc.cluster.local');
    assert.equal(outboundClusterName('reviews.default.svc.cluster.local', 9080, 'v1'), 'outbound|9080|v1|reviews.default.svc.cluster.local');
    assert.equal(inboundClusterName(9080), 'inbound|9080||');
  });
  it('parses them back', () => {
    assert.deepEqual(parseClusterName('outbound|9080|v1|reviews.default.svc.cluster.local'), {
      direction: 'outbound',
      port: 9080,
      subset: 'v1',
      host: 'reviews.default.svc.cluster.local',
    });
    assert.equal(parseClusterName('BlackHoleCluster'), undefined);
    assert.equal(parseClusterName('sideways|1||x'), undefined);
  });
  it('names listeners and route configurations like Istio', () => {
    assert.equal(listenerName('0.0.0.0', 9080), '0.0.0.0_9080');
    assert.equal(outboundRouteConfigName(9080), '9080');
    assert.equal(gatewayHttpRouteConfigName(8080), 'http.8080');
    assert.equal(gatewayHttpsRouteConfigName(443, 'https', 'bookinfo-gateway', 'default'), 'https.443.https.bookinfo-gateway.default');
  });
});
