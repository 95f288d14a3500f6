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

/**
 * Istio's INTERCEPTION_MODE node metadata. NONE (no iptables, Weft's standalone mode): the sidecar
 * binds the workload's service ports on its address itself and the application listens on its
 * private app address. REDIRECT: traffic is captured to 15001/15006 (issue 10).
 */
export type InterceptionMode = 'NONE' | 'REDIRECT';

/** Node metadata key: where the application listens in INTERCEPTION_MODE NONE. */
export const APP_ADDRESS_METADATA = 'WEFT_APP_ADDRESS';

/**
 * The application's private address for a workload in standalone mode, so that on one machine the
 * sidecar can own `<workload address>:<port>` while the app listens on the same port elsewhere:
 * a loopback workload address 127.A.B.C maps to 127.(A+128).B.C (A < 128); any other address to
 * 127.0.0.1, as on a VM with one workload (Istio's Sidecar ingress defaultEndpoint).
 */
export function appAddressFor(workloadAddress: string): string {
  const m = /^127\.(\d+)\.(\d+)\.(\d+)$/.exec(workloadAddress);
  if (m && Number(m[1]) < 128) return `127.${Number(m[1]) + 128}.${m[2]}.${m[3]}`;
  return '127.0.0.1';
}
