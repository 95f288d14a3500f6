// Sidecar listener model details that the golden cases do not pin down on their own.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSnapshot, DEFAULT_MESH_CONFIG } from '../../../src/model/snapshot';
import { TypeUrl } from '../../../src/xds/protos';
import { parseProxyNode, translateForProxy } from '../../../src/xds/translate';
import { parseResources } from './load-fixture';

const MESH = `
apiVersion: v1
kind: Service
metadata: {name: legacy, namespace: default}
spec:
  selector: {app: legacy}
  ports: [{name: web, port: 8000, targetPort: 18000}]
---
apiVersion: v1
kind: Service
metadata: {name: other, namespace: default}
spec:
  selector: {app: other}
  ports: [{name: http, port: 80}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: legacy-1, namespace: default}
spec: {address: 127.0.10.40, labels: {app: legacy}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: narrow-legacy, namespace: default}
spec:
  workloadSelector: {labels: {app: legacy}}
  egress:
  - hosts: ["./legacy.default.svc.cluster.local"]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
`;

function translate(labels: Record<string, string>, workload: string, ip = '127.0.10.40') {
  const snapshot = createSnapshot({ sequence: 1, reason: 't', resources: parseResources(MESH), meshConfig: DEFAULT_MESH_CONFIG });
  const proxy = parseProxyNode({
    id: `sidecar~${ip}~${workload}.default~default.svc.cluster.local`,
    metadata: { LABELS: labels, WORKLOAD_NAME: workload },
  });
  return translateForProxy(snapshot, proxy);
}

describe('sidecar listeners', () => {
  it('sniffs an auto-detected inbound port: HTTP chain by ALPN, TCP otherwise, to the workload address', () => {
    // legacy-1 has no service account (no identity): PERMISSIVE offers plaintext only.
    const out = translate({ app: 'legacy' }, 'legacy-1');
    const inbound = out[TypeUrl.Listener].get('virtualInbound') as Record<string, any>;
    assert.deepEqual(
      inbound.filter_chains.map((c: any) => [c.filter_chain_match, c.filters[0].name]),
      [
        [
          { destination_port: 18000, transport_protocol: 'raw_buffer', application_protocols: ['http/1.1', 'h2c'] },
          'envoy.filters.network.http_connection_manager',
        ],
        [{ destination_port: 18000, transport_protocol: 'raw_buffer' }, 'envoy.filters.network.tcp_proxy'],
      ],
    );
    assert.deepEqual(
      inbound.listener_filters.map((f: any) => f.name),
      ['envoy.filters.listener.original_dst', 'envoy.filters.listener.tls_inspector', 'envoy.filters.listener.http_inspector'],
    );
    const cluster = out[TypeUrl.Cluster].get('inbound|18000||') as Record<string, any>;
    assert.deepEqual(cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address, {
      address: '127.0.10.40',
      port_value: 18000,
    });
  });

  it('applies the workload-selected Sidecar: egress narrowing and REGISTRY_ONLY', () => {
    const out = translate({ app: 'legacy' }, 'legacy-1');
    assert.deepEqual(
      [...out[TypeUrl.Cluster].keys()].filter((n) => n.startsWith('outbound')),
      ['outbound|8000||legacy.default.svc.cluster.local'],
    );
    const http = out[TypeUrl.RouteConfiguration].get('http_proxy') as Record<string, any>;
    assert.equal(http.virtual_hosts.at(-1).name, 'block_all');
    const vo = out[TypeUrl.Listener].get('virtualOutbound') as Record<string, any>;
    assert.equal(vo.filter_chains[1].filters[0].typed_config.cluster, 'BlackHoleCluster');
  });

  it('finds the workload by address when the name is unknown', () => {
    const out = translate({ app: 'legacy' }, 'not-a-workload-entry');
    assert.ok(out[TypeUrl.Listener].has('virtualInbound'));
  });

  it('leaves other workloads unscoped, and emits no virtualInbound for a proxy that serves nothing', () => {
    const out = translate({ app: 'client' }, 'client-1', '127.0.10.99');
    assert.ok(out[TypeUrl.Cluster].has('outbound|80||other.default.svc.cluster.local'));
    assert.equal(out[TypeUrl.Listener].has('virtualInbound'), false);
  });
});
