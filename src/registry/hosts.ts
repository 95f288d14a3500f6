// Host name rules shared by registry and translation: Istio's short-name resolution and wildcard
// host matching (pkg/config/host.Name Matches / SubsetOf).
import { isIP } from 'node:net';

/** A host as Istio resolves it from a resource in `namespace`: `reviews` -> `reviews.<ns>.svc.<suffix>`. */
export function toFqdn(host: string, namespace: string, domainSuffix = 'cluster.local'): string {
  // Istio's ResolveShortnameToFQDN: only a name without a dot is short. `reviews.prod` stays as
  // written (sidecars still answer to it: it is among every service's virtual host domains).
  if (host === '' || host === '*' || isIP(host) !== 0 || host.includes('.')) return host;
  let fqdn = host;
  if (namespace) fqdn += `.${namespace}`;
  if (domainSuffix) fqdn += `.svc.${domainSuffix}`;
  return fqdn;
}

/** True when `pattern` (possibly `*` or `*.suffix`) covers every name `host` covers (host.SubsetOf). */
export function hostCovers(pattern: string, host: string): boolean {
  if (pattern === '*') return true;
  if (pattern.startsWith('*')) {
    const suffix = pattern.slice(1); // ".example.com"
    if (host.startsWith('*')) return host.slice(1).endsWith(suffix);
    return host.endsWith(suffix) && host.length > suffix.length;
  }
  return !host.startsWith('*') && pattern.toLowerCase() === host.toLowerCase();
}

/** True when the two host patterns share at least one name (Istio's host.Name.Matches). */
export function hostsIntersect(a: string, b: string): boolean {
  return hostCovers(a, b) || hostCovers(b, a);
}

/** Of two intersecting hosts, the more specific one (used for gateway virtual host names). */
export function moreSpecificHost(a: string, b: string): string {
  return hostCovers(b, a) ? a : b;
}

/** Kubernetes-style pieces of `name.ns.svc.<suffix>`, or undefined for other host names. */
export function splitKubeHost(host: string, domainSuffix: string): { name: string; namespace: string } | undefined {
  const tail = `.svc.${domainSuffix}`;
  if (!host.endsWith(tail)) return undefined;
  const parts = host.slice(0, -tail.length).split('.');
  if (parts.length !== 2) return undefined;
  return { name: parts[0], namespace: parts[1] };
}

/** Labels selector semantics: every selector key present with the same value (empty selects all). */
export function labelsMatch(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (!selector) return true;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}
