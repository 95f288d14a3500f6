// Parses the xDS Node a client sends (Istio's node id and metadata) into a ProxyNode.
import type { ProxyNode, ProxyType } from '../../model/proxy';

export interface XdsNodeLike {
  id?: string;
  metadata?: Record<string, unknown>;
}

/**
 * Istio node id: `TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.DOMAIN` (TYPE `sidecar` or `router`).
 * Metadata wins over the id: NAMESPACE, LABELS, WORKLOAD_NAME, INSTANCE_IPS (comma list);
 * GENERATOR `grpc` marks a proxyless gRPC client (grpc-js-xds bootstraps). Throws on a node
 * that names no type Weft serves.
 */
export function parseProxyNode(node: XdsNodeLike): ProxyNode {
  const id = node.id ?? '';
  const metadata = { ...(node.metadata ?? {}) };
  const parts = id.split('~');
  const proxyless = metadata.GENERATOR === 'grpc';
  let type: ProxyType;
  if (proxyless) type = 'proxyless';
  else if (parts[0] === 'sidecar' || parts[0] === 'router') type = parts[0];
  else throw new Error(`node id "${id}" is not TYPE~IP~NAME.NAMESPACE~DOMAIN with TYPE sidecar or router`);

  const idIp = parts.length >= 2 ? parts[1] : '';
  const podPart = parts.length >= 3 ? parts[2] : '';
  const domain = parts.length >= 4 ? parts[3] : '';
  const dot = podPart.indexOf('.');
  const podName = dot >= 0 ? podPart.slice(0, dot) : podPart;
  const podNamespace = dot >= 0 ? podPart.slice(dot + 1) : '';
  const domainNamespace = domain.includes('.svc.') ? domain.slice(0, domain.indexOf('.svc.')) : '';

  const namespace = stringField(metadata.NAMESPACE) || podNamespace || domainNamespace || 'default';
  const ipsText = stringField(metadata.INSTANCE_IPS);
  const ips = ipsText ? ipsText.split(',').map((s) => s.trim()).filter(Boolean) : idIp ? [idIp] : [];
  const workloadName = stringField(metadata.WORKLOAD_NAME) || podName || undefined;
  const labels: Record<string, string> = {};
  const rawLabels = metadata.LABELS;
  if (rawLabels && typeof rawLabels === 'object' && !Array.isArray(rawLabels)) {
    for (const [k, v] of Object.entries(rawLabels as Record<string, unknown>)) {
      if (v !== undefined && v !== null) labels[k] = String(v);
    }
  }
  return {
    id,
    type,
    ips,
    namespace,
    ...(workloadName ? { workloadName } : {}),
    labels,
    metadata,
  };
}

function stringField(v: unknown): string {
  return typeof v === 'string' ? v : '';
}
