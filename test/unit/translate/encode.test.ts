// Every resource translation emits is real Envoy v3 config: for every golden input, translated
// for a sidecar, a gateway and a proxyless client alike, each resource encodes with
// encodeResource without losing a field, and grpc-js-xds accepts everything sent to proxyless.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { parseProxyNode, translateForProxy } from '../../../src/xds/translate';
import { loadFixture } from './load-fixture';
import { assertEncodable, assertGrpcAccepts } from './resource-checks';

const GOLDEN_DIR = path.resolve(__dirname, '../../../../test/unit/translate/golden');

describe('every emitted resource is valid Envoy v3', () => {
  for (const name of fs.readdirSync(GOLDEN_DIR).sort()) {
    const dir = path.join(GOLDEN_DIR, name);
    if (!fs.existsSync(path.join(dir, 'in.yaml'))) continue;
    it(`${name}: sidecar, gateway and proxyless views`, () => {
      const { snapshot, proxy } = loadFixture(dir);
      const ns = proxy.namespace;
      const views = [
        parseProxyNode({ id: `sidecar~${proxy.ips[0] ?? '10.0.0.1'}~${proxy.workloadName ?? 'w'}.${ns}~${ns}.svc.cluster.local`, metadata: { ...proxy.metadata, GENERATOR: undefined } }),
        parseProxyNode({ id: `router~10.0.0.50~gw.${ns}~${ns}.svc.cluster.local`, metadata: { LABELS: { istio: 'ingressgateway' } } }),
        parseProxyNode({ id: `sidecar~127.0.0.1~client.${ns}~${ns}.svc.cluster.local`, metadata: { GENERATOR: 'grpc', NAMESPACE: ns } }),
      ];
      for (const view of views) {
        const generated = translateForProxy(snapshot, view);
        assertEncodable(generated);
        if (view.type === 'proxyless') assertGrpcAccepts(generated);
      }
    });
  }
});
