// Locality-aware EDS is per proxy locality: proxies in different localities get their own
// ClusterLoadAssignments (priorities relative to each), proxies in the same locality share them,
// and proxies without a locality keep sharing everything as before.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSnapshot, DEFAULT_MESH_CONFIG } from '../../../src/model/snapshot';
import { TypeUrl } from '../../../src/xds/protos';
import { createTranslator, parseProxyNode } from '../../../src/xds/translate';
import { parseResources } from './load-fixture';

const YAML = `
apiVersion: v1
kind: Service
metadata: {name: backend, namespace: default}
spec:
  selector: {app: backend}
  ports: [{name: http, port: 8080}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: backend, namespace: default}
spec:
  host: backend
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 2}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: backend-east, namespace: default}
spec: {address: 127.0.70.1, labels: {app: backend}, locality: us-east/zone-a}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: backend-west, namespace: default}
spec: {address: 127.0.70.2, labels: {app: backend}, locality: us-west/zone-a}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: east-1, namespace: default}
spec: {address: 127.0.70.11, labels: {app: client}, locality: us-east/zone-a}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: east-2, namespace: default}
spec: {address: 127.0.70.12, labels: {app: client}, locality: us-east/zone-a}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: west-1, namespace: default}
spec: {address: 127.0.70.13, labels: {app: client}, locality: us-west/zone-a}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: nowhere-1, namespace: default}
spec: {address: 127.0.70.14, labels: {app: client}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: nowhere-2, namespace: default}
spec: {address: 127.0.70.15, labels: {app: client}}
`;

const CLUSTER = 'outbound|8080||backend.default.svc.cluster.local';

function proxy(name: string, address: string) {
  return parseProxyNode({
    id: `sidecar~${address}~${name}.default~default.svc.cluster.local`,
    metadata: { NAMESPACE: 'default', WORKLOAD_NAME: name, INSTANCE_IPS: address, LABELS: { app: 'client' } },
  });
}

describe('locality-aware EDS and sharing', () => {
  const snapshot = createSnapshot({ sequence: 1, reason: 'test', resources: parseResources(YAML), meshConfig: DEFAULT_MESH_CONFIG });
  const translate = createTranslator();
  const eds = (name: string, address: string) => translate(snapshot, proxy(name, address))[TypeUrl.ClusterLoadAssignment].get(CLUSTER)!;
  const priorities = (cla: Record<string, any>) =>
    Object.fromEntries((cla.endpoints as any[]).map((g) => [g.lb_endpoints[0].endpoint.address.socket_address.address, g.priority ?? 0]));

  it('ranks endpoints from each proxy’s own locality', () => {
    assert.deepEqual(priorities(eds('east-1', '127.0.70.11')), { '127.0.70.1': 0, '127.0.70.2': 1 });
    assert.deepEqual(priorities(eds('west-1', '127.0.70.13')), { '127.0.70.1': 1, '127.0.70.2': 0 });
    assert.deepEqual(priorities(eds('nowhere-1', '127.0.70.14')), { '127.0.70.1': 0, '127.0.70.2': 0 }, 'no locality: no priorities');
  });

  it('shares assignments between proxies of one locality, and between proxies without one', () => {
    assert.equal(eds('east-1', '127.0.70.11'), eds('east-2', '127.0.70.12'));
    assert.notEqual(eds('east-1', '127.0.70.11'), eds('west-1', '127.0.70.13'));
    assert.equal(eds('nowhere-1', '127.0.70.14'), eds('nowhere-2', '127.0.70.15'));
  });
});
