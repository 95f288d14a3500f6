// Test-support loader for golden cases: Istio YAML (multi-document) -> ConfigResource[] and
// proxy.json -> ProxyNode. Kept small and separate so it can switch to the real parser later.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { ConfigResource, ResourceKind } from '../../../src/config/resources';
import type { ProxyNode } from '../../../src/model/proxy';
import { createSnapshot, type MeshConfig, type MeshSnapshot } from '../../../src/model/snapshot';
import { parseProxyNode } from '../../../src/xds/translate';

const KINDS = new Set<ResourceKind>([
  'VirtualService',
  'DestinationRule',
  'Gateway',
  'ServiceEntry',
  'WorkloadEntry',
  'Sidecar',
  'Service',
  'PeerAuthentication',
  'AuthorizationPolicy',
  'RequestAuthentication',
]);

/** Parses Istio/Kubernetes YAML into resources (namespace defaults to `default`). */
export function parseResources(text: string, file = 'in.yaml'): ConfigResource[] {
  const out: ConfigResource[] = [];
  parseAllDocuments(text).forEach((doc, index) => {
    if (doc.errors.length) throw new Error(`${file}#${index}: ${doc.errors[0].message}`);
    const obj = doc.toJS() as Record<string, any> | null;
    if (!obj) return;
    if (!KINDS.has(obj.kind)) throw new Error(`${file}#${index}: unsupported kind ${obj.kind}`);
    out.push({
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      metadata: { ...obj.metadata, namespace: obj.metadata?.namespace ?? 'default' },
      spec: obj.spec ?? {},
      origin: { source: 'test', file, document: index },
    } as ConfigResource);
  });
  return out;
}

export interface Fixture {
  snapshot: MeshSnapshot;
  proxy: ProxyNode;
}

/** Reads `<dir>/in.yaml`, `<dir>/proxy.json` and optional `<dir>/mesh.json` (MeshConfig overrides). */
export function loadFixture(dir: string): Fixture {
  const resources = parseResources(fs.readFileSync(path.join(dir, 'in.yaml'), 'utf8'));
  const node = JSON.parse(fs.readFileSync(path.join(dir, 'proxy.json'), 'utf8'));
  const meshFile = path.join(dir, 'mesh.json');
  const meshOverrides: Partial<MeshConfig> = fs.existsSync(meshFile) ? JSON.parse(fs.readFileSync(meshFile, 'utf8')) : {};
  const meshConfig: MeshConfig = {
    rootNamespace: 'istio-system',
    domainSuffix: 'cluster.local',
    trustDomain: 'cluster.local',
    outboundTrafficPolicy: 'ALLOW_ANY',
    ...meshOverrides,
  };
  const snapshot = createSnapshot({ sequence: 1, reason: 'golden', resources, meshConfig, createdAt: new Date(0) });
  return { snapshot, proxy: parseProxyNode(node) };
}
