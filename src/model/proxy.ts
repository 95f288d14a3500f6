// What the control plane knows about a connected proxy, parsed from the xDS Node it sends.
// Istio's node id form is `TYPE~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local`.

export type ProxyType = 'sidecar' | 'router' | 'proxyless';

export interface ProxyNode {
  /** node.id exactly as sent. */
  id: string;
  type: ProxyType;
  /** Workload IPs (first is primary). */
  ips: string[];
  namespace: string;
  /** WorkloadEntry name (sidecars) or gateway deployment name (routers). */
  workloadName?: string;
  /** Workload labels; for routers the labels Gateway.selector matches. */
  labels: Record<string, string>;
  /** Raw node.metadata, for generators that need more. */
  metadata: Record<string, unknown>;
}
