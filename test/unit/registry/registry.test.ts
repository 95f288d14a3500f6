// Registry: services, endpoints and workloads from Service / ServiceEntry / WorkloadEntry.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_MESH_CONFIG } from '../../../src/model/snapshot';
import { buildServiceRegistry } from '../../../src/registry/registry';
import { parseResources } from '../translate/load-fixture';

const build = (yaml: string) => buildServiceRegistry(parseResources(yaml), DEFAULT_MESH_CONFIG);

describe('buildServiceRegistry', () => {
  it('names Kubernetes Services name.ns.svc.<suffix> and selects WorkloadEntries by label in the same namespace', () => {
    const reg = build(`
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: bookinfo}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1, namespace: bookinfo}
spec: {address: 10.0.0.1, labels: {app: reviews, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-elsewhere, namespace: other}
spec: {address: 10.0.0.2, labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ratings, namespace: bookinfo}
spec: {address: 10.0.0.3, labels: {app: ratings}}
`);
    const svc = reg.services.get('reviews.bookinfo.svc.cluster.local');
    assert.ok(svc);
    assert.equal(svc.resolution, 'STATIC');
    assert.equal(svc.location, 'MESH_INTERNAL');
    assert.deepEqual(svc.ports, [{ name: 'http', port: 9080, protocol: 'HTTP' }]);
    const eps = reg.endpoints.get('reviews.bookinfo.svc.cluster.local') ?? [];
    assert.deepEqual(
      eps.map((e) => [e.address, e.port, e.workload, e.serviceAccount]),
      [['10.0.0.1', 9080, 'bookinfo/reviews-v1', 'default']],
    );
  });

  it('maps ports: WorkloadEntry.ports[port name] over numeric targetPort; string targetPort looked up by name', () => {
    const reg = build(`
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: grpc, port: 90, targetPort: api}
  - {name: admin, port: 100}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: a, namespace: default}
spec: {address: 10.0.0.1, labels: {app: web}, ports: {http: 18080, api: 7000}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: b, namespace: default}
spec: {address: 10.0.0.2, labels: {app: web}}
`);
    const eps = reg.endpoints.get('web.default.svc.cluster.local') ?? [];
    assert.deepEqual(
      eps.map((e) => `${e.servicePort}->${e.address}:${e.port}`),
      ['80->10.0.0.1:18080', '80->10.0.0.2:8080', '90->10.0.0.1:7000', '100->10.0.0.1:100', '100->10.0.0.2:100'],
    );
  });

  it('takes the protocol from appProtocol, then the port name prefix; unknown names stay UNKNOWN', () => {
    const reg = build(`
apiVersion: v1
kind: Service
metadata: {name: p, namespace: default}
spec:
  ports:
  - {name: http-web, port: 1}
  - {name: grpc-web-ui, port: 2}
  - {name: web, port: 3, appProtocol: http2}
  - {name: h2c, port: 4, appProtocol: kubernetes.io/h2c}
  - {name: dns, port: 5, protocol: UDP}
  - {name: mysql-primary, port: 6}
  - {name: custom, port: 7}
  - {name: tcp-ssh, port: 22}
  - {name: https-admin, port: 8}
`);
    const protocols = reg.services.get('p.default.svc.cluster.local')?.ports.map((p) => `${p.port}:${p.protocol}`);
    assert.deepEqual(protocols, ['1:HTTP', '2:GRPC-WEB', '3:HTTP2', '4:HTTP2', '5:UDP', '6:MYSQL', '7:UNKNOWN', '22:TCP', '8:HTTPS']);
  });

  it('turns each ServiceEntry host into a service with inline endpoints mapped by port name', () => {
    const reg = build(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: egress}
spec:
  hosts: [a.example.com, b.example.com]
  addresses: [240.0.0.1]
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 8080}]
  resolution: STATIC
  endpoints:
  - {address: 1.1.1.1}
  - {address: 2.2.2.2, ports: {http: 9090}, weight: 3, locality: r/z}
`);
    assert.deepEqual([...reg.services.keys()], ['a.example.com', 'b.example.com']);
    const a = reg.services.get('a.example.com');
    assert.equal(a?.namespace, 'egress');
    assert.equal(a?.location, 'MESH_EXTERNAL');
    assert.deepEqual(a?.addresses, ['240.0.0.1']);
    assert.deepEqual(
      reg.endpoints.get('b.example.com')?.map((e) => `${e.address}:${e.port}/${e.weight ?? '-'}/${e.locality ?? '-'}`),
      ['1.1.1.1:8080/-/-', '2.2.2.2:9090/3/r/z'],
    );
  });

  it('gives a DNS ServiceEntry without endpoints its own host as endpoint, and selects workloads by workloadSelector', () => {
    const reg = build(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dns, namespace: default}
spec:
  hosts: [httpbin.org]
  ports: [{number: 443, name: tls, protocol: TLS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: vms, namespace: default}
spec:
  hosts: [vm.internal]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  workloadSelector: {labels: {app: vm}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1, namespace: default}
spec: {address: 10.9.0.1, labels: {app: vm}, ports: {http: 8000}, serviceAccount: vm-sa}
`);
    assert.deepEqual(reg.endpoints.get('httpbin.org')?.map((e) => `${e.address}:${e.port}`), ['httpbin.org:443']);
    assert.equal(reg.services.get('httpbin.org')?.resolution, 'DNS');
    assert.deepEqual(reg.endpoints.get('vm.internal')?.map((e) => `${e.address}:${e.port}:${e.serviceAccount}`), ['10.9.0.1:8000:vm-sa']);
    assert.deepEqual(reg.workloads.get('default/vm-1'), {
      name: 'vm-1',
      namespace: 'default',
      address: '10.9.0.1',
      labels: { app: 'vm' },
      serviceAccount: 'vm-sa',
      ports: { http: 8000 },
      tlsMode: 'istio',
    });
  });

  it('reads exportTo from the Service annotation; headless Services are passthrough', () => {
    const reg = build(`
apiVersion: v1
kind: Service
metadata:
  name: db
  namespace: default
  annotations: {networking.istio.io/exportTo: ".,other"}
spec:
  clusterIP: None
  ports: [{name: tcp, port: 5432}]
`);
    const svc = reg.services.get('db.default.svc.cluster.local');
    assert.deepEqual(svc?.exportTo, ['.', 'other']);
    assert.equal(svc?.resolution, 'NONE');
    assert.deepEqual(svc?.addresses, []);
  });

  it('is deterministic: maps come out sorted whatever the input order', () => {
    const yaml = ['zeta', 'alpha', 'mid']
      .map((n) => `apiVersion: v1\nkind: Service\nmetadata: {name: ${n}, namespace: default}\nspec:\n  ports: [{name: http, port: 80}]\n`)
      .join('---\n');
    const reg = build(yaml);
    assert.deepEqual([...reg.services.keys()], [
      'alpha.default.svc.cluster.local',
      'mid.default.svc.cluster.local',
      'zeta.default.svc.cluster.local',
    ]);
  });
});
