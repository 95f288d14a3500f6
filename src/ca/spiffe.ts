// SPIFFE identities of workloads, in Istio's form: spiffe://<trust domain>/ns/<namespace>/sa/<service account>.

export interface SpiffeIdentity {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

/** The parts of an Istio workload SPIFFE id, or undefined for any other URI. */
export function parseSpiffeId(uri: string): SpiffeIdentity | undefined {
  const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(uri);
  if (!m) return undefined;
  return { trustDomain: m[1], namespace: m[2], serviceAccount: m[3] };
}

/** Kubernetes' service account subject, the `sub` of a bootstrap token. */
export function serviceAccountSubject(namespace: string, serviceAccount: string): string {
  return `system:serviceaccount:${namespace}:${serviceAccount}`;
}

export function parseServiceAccountSubject(subject: string): { namespace: string; serviceAccount: string } | undefined {
  const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(subject);
  return m ? { namespace: m[1], serviceAccount: m[2] } : undefined;
}

/**
 * A Kubernetes object name usable as one path segment: a DNS-1123 subdomain (lowercase
 * alphanumerics and '-', dot-separated labels, at most 253 characters), so never `..` or a `/`.
 */
export function isKubernetesName(name: string): boolean {
  return name.length > 0 && name.length <= 253 && name.split('.').every((label) => /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(label));
}
