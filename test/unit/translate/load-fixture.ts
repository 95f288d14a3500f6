// Test-support loader for golden cases: Istio YAML (multi-document) -> ConfigResource[] through
// the real parser and validator (a fixture Istio would reject fails loudly), and proxy.json ->
// ProxyNode.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseYamlDocuments } from '../../../src/config/parse';
import { formatProblem } from '../../../src/config/problems';
import type { ConfigResource } from '../../../src/config/resources';
import { validateResource } from '../../../src/config/validate';
import type { ProxyNode } from '../../../src/model/proxy';
import { createSnapshot, type MeshConfig, type MeshSnapshot } from '../../../src/model/snapshot';
import { parseProxyNode } from '../../../src/xds/translate';

/** Parses and validates Istio/Kubernetes YAML; throws with every problem when any is invalid. */
export function parseResources(text: string, file = 'in.yaml'): ConfigResource[] {
  const { documents, problems } = parseYamlDocuments(text, { file, source: 'test' });
  const errors = problems.filter((p) => p.severity === 'error');
  const out: ConfigResource[] = [];
  for (const doc of documents) {
    const result = validateResource(doc);
    if (result.valid) out.push(result.resource);
    else errors.push(...(result.errors.length ? result.errors : result.warnings));
  }
  if (errors.length) throw new Error(`invalid fixture:\n${errors.map(formatProblem).join('\n')}`);
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
