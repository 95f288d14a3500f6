// DNS for mesh names inside a workload's network namespace: an /etc/hosts for the namespace
// (`ip netns exec` bind-mounts /etc/netns/<ns>/hosts over /etc/hosts), so an unchanged app
// resolves `reviews`, `reviews.default`, `reviews.default.svc.cluster.local`.
//
// Addresses: a Service's clusterIP or a ServiceEntry's first address when it has one; otherwise
// a virtual IP in 240.240.0.0/16, derived from the host name, the range Istio's DNS proxying
// auto-allocates for ServiceEntries without addresses (class E: never routed, so nothing but the
// capture rules ever sees it). The sidecar routes HTTP by Host and opaque TCP by port, so the
// virtual IP only has to be captured, not known to the translator.
import { createHash } from 'node:crypto';

export interface HostsService {
  kind: 'Service' | 'ServiceEntry';
  name: string;
  namespace: string;
  clusterIP?: string;
  /** ServiceEntry hosts. */
  hosts?: string[];
  /** ServiceEntry addresses. */
  addresses?: string[];
}

export interface HostsEntry {
  address: string;
  names: string[];
}

/** Istio's auto-allocation range for DNS proxying. */
export const AUTO_VIP_RANGE = '240.240.0.0/16';

/** A stable virtual IP for a host name in 240.240.0.0/16 (never .0 or .255 in the last octet). */
export function autoVirtualIp(hostname: string, taken: Set<string> = new Set()): string {
  const digest = createHash('sha256').update(hostname).digest();
  let n = digest.readUInt16BE(0);
  for (let i = 0; i < 65536; i++, n = (n + 1) & 0xffff) {
    const ip = `240.240.${n >> 8}.${n & 0xff}`;
    if ((n & 0xff) === 0 || (n & 0xff) === 255 || taken.has(ip)) continue;
    return ip;
  }
  throw new Error('no free virtual IP in 240.240.0.0/16');
}

function isIpv4(a: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(a);
}

/** The hosts entries of the mesh's services as seen from a workload in `ownNamespace`. */
export function meshHostsEntries(services: readonly HostsService[], ownNamespace: string, domainSuffix = 'cluster.local'): HostsEntry[] {
  const taken = new Set<string>();
  const out: HostsEntry[] = [];
  const sorted = [...services].sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  for (const s of sorted) {
    if (s.kind === 'Service') {
      const fqdn = `${s.name}.${s.namespace}.svc.${domainSuffix}`;
      const address = s.clusterIP && isIpv4(s.clusterIP) ? s.clusterIP : autoVirtualIp(fqdn, taken);
      taken.add(address);
      const names = [fqdn, `${s.name}.${s.namespace}.svc`, `${s.name}.${s.namespace}`];
      if (s.namespace === ownNamespace) names.push(s.name);
      out.push({ address, names });
    } else {
      const hosts = (s.hosts ?? []).filter((h) => !h.includes('*'));
      if (hosts.length === 0) continue;
      const fixed = (s.addresses ?? []).find((a) => isIpv4(a));
      for (const host of hosts) {
        const address = fixed ?? autoVirtualIp(host, taken);
        taken.add(address);
        out.push({ address, names: [host] });
      }
    }
  }
  return out;
}

/** The file's text: loopback, the namespace's own name, extra entries (the control plane), the mesh. */
export function hostsFileText(o: { hostname: string; ownAddress: string; extra: readonly HostsEntry[]; mesh: readonly HostsEntry[] }): string {
  const lines = [
    '# Written by weft for this network namespace (mesh names -> service virtual IPs); rewritten on changes.',
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    `${o.ownAddress}\t${o.hostname}`,
    ...o.extra.map((e) => `${e.address}\t${e.names.join(' ')}`),
    ...o.mesh.map((e) => `${e.address}\t${e.names.join(' ')}`),
  ];
  return lines.join('\n') + '\n';
}
