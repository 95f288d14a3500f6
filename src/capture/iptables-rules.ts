// The NAT rules of transparent capture (Istio's istio-iptables, REDIRECT mode), as data: pure,
// so `--dry-run` prints exactly what would run and tests check the rules without root.
//
// Chains (nat table), Weft's own names so a real istio-iptables in the same namespace is left
// alone and `--cleanup` removes exactly these:
//   WEFT_INBOUND     from PREROUTING: inbound TCP to capture, minus excluded ports
//   WEFT_IN_REDIRECT REDIRECT to the inbound capture port (15006)
//   WEFT_OUTPUT      from OUTPUT: outbound TCP, minus the proxy's own traffic (owner uid/gid),
//                    loopback, excluded ports and CIDRs
//   WEFT_REDIRECT    REDIRECT to the outbound capture port (15001)
// IPv4 only (ip6tables rules are not installed; the addon reads IPv6 original destinations).

export const CHAINS = { inbound: 'WEFT_INBOUND', inRedirect: 'WEFT_IN_REDIRECT', output: 'WEFT_OUTPUT', redirect: 'WEFT_REDIRECT' } as const;

/** Inbound ports never captured: the proxy's own (Istio: 15008, 15090, 15021, 15020) plus admin and capture ports. */
export const PROXY_INBOUND_PORTS = [15000, 15001, 15006, 15008, 15020, 15021, 15090] as const;

export interface CaptureRulesOptions {
  /** Outbound capture port (-p, Istio's envoy port). */
  outboundPort: number;
  /** Inbound capture port (-z). */
  inboundPort: number;
  /** Owner uids/gids whose traffic is the proxy's own and never captured (-u, -g). */
  proxyUids: readonly number[];
  proxyGids: readonly number[];
  /** '*' = all; else CIDRs (-i). Empty: no outbound capture. */
  includeOutboundCidrs: '*' | readonly string[];
  excludeOutboundCidrs: readonly string[];
  /** '*' = all; else ports (-b). Empty: no inbound capture. */
  includeInboundPorts: '*' | readonly number[];
  excludeInboundPorts: readonly number[];
  excludeOutboundPorts: readonly number[];
}

export const DEFAULT_PROXY_ID = 1337;

/** One iptables invocation (arguments after `iptables`). */
export type Rule = readonly string[];

/** The rules that install capture, in order. */
export function captureRules(o: CaptureRulesOptions): Rule[] {
  const t = ['-t', 'nat'];
  const rules: Rule[] = [];
  for (const chain of Object.values(CHAINS)) rules.push([...t, '-N', chain]);
  rules.push([...t, '-A', CHAINS.redirect, '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', String(o.outboundPort)]);
  rules.push([...t, '-A', CHAINS.inRedirect, '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', String(o.inboundPort)]);

  // Inbound.
  const includeAllInbound = o.includeInboundPorts === '*';
  if (includeAllInbound || o.includeInboundPorts.length > 0) {
    rules.push([...t, '-A', 'PREROUTING', '-p', 'tcp', '-j', CHAINS.inbound]);
    if (includeAllInbound) {
      const excluded = [...new Set([...PROXY_INBOUND_PORTS, ...o.excludeInboundPorts])].sort((a, b) => a - b);
      for (const port of excluded) rules.push([...t, '-A', CHAINS.inbound, '-p', 'tcp', '--dport', String(port), '-j', 'RETURN']);
      rules.push([...t, '-A', CHAINS.inbound, '-p', 'tcp', '-j', CHAINS.inRedirect]);
    } else {
      for (const port of o.includeInboundPorts as readonly number[]) {
        if (o.excludeInboundPorts.includes(port)) continue;
        rules.push([...t, '-A', CHAINS.inbound, '-p', 'tcp', '--dport', String(port), '-j', CHAINS.inRedirect]);
      }
    }
  }

  // Outbound.
  const includeAllOutbound = o.includeOutboundCidrs === '*';
  if (includeAllOutbound || o.includeOutboundCidrs.length > 0) {
    rules.push([...t, '-A', 'OUTPUT', '-p', 'tcp', '-j', CHAINS.output]);
    for (const port of o.excludeOutboundPorts) rules.push([...t, '-A', CHAINS.output, '-p', 'tcp', '--dport', String(port), '-j', 'RETURN']);
    // Istio's 127.0.0.6 inbound passthrough source.
    rules.push([...t, '-A', CHAINS.output, '-s', '127.0.0.6/32', '-o', 'lo', '-j', 'RETURN']);
    // The app talking to itself over loopback (its own address included) is not captured.
    for (const uid of o.proxyUids) rules.push([...t, '-A', CHAINS.output, '-o', 'lo', '-m', 'owner', '!', '--uid-owner', String(uid), '-j', 'RETURN']);
    if (o.proxyUids.length === 0) for (const gid of o.proxyGids) rules.push([...t, '-A', CHAINS.output, '-o', 'lo', '-m', 'owner', '!', '--gid-owner', String(gid), '-j', 'RETURN']);
    // The proxy's own connections (to the control plane, to peers, to the app) go out as they are.
    for (const uid of o.proxyUids) rules.push([...t, '-A', CHAINS.output, '-m', 'owner', '--uid-owner', String(uid), '-j', 'RETURN']);
    for (const gid of o.proxyGids) rules.push([...t, '-A', CHAINS.output, '-m', 'owner', '--gid-owner', String(gid), '-j', 'RETURN']);
    rules.push([...t, '-A', CHAINS.output, '-d', '127.0.0.1/32', '-j', 'RETURN']);
    for (const cidr of o.excludeOutboundCidrs) rules.push([...t, '-A', CHAINS.output, '-d', cidr, '-j', 'RETURN']);
    if (includeAllOutbound) rules.push([...t, '-A', CHAINS.output, '-j', CHAINS.redirect]);
    else for (const cidr of o.includeOutboundCidrs as readonly string[]) rules.push([...t, '-A', CHAINS.output, '-d', cidr, '-j', CHAINS.redirect]);
  }
  return rules;
}

/**
 * What undoes captureRules: the jumps from PREROUTING/OUTPUT (deleted one by one, whichever are
 * there), then each WEFT_* chain flushed and deleted. Nothing else in the table is touched.
 */
export function cleanupRules(): { jumps: Rule[]; chains: Rule[] } {
  const t = ['-t', 'nat'];
  return {
    jumps: [
      [...t, '-D', 'PREROUTING', '-p', 'tcp', '-j', CHAINS.inbound],
      [...t, '-D', 'OUTPUT', '-p', 'tcp', '-j', CHAINS.output],
    ],
    chains: Object.values(CHAINS).flatMap((chain) => [
      [...t, '-F', chain],
      [...t, '-X', chain],
    ]),
  };
}

/** Parses Istio's comma lists: '*' or CIDRs/IPs (a bare IP becomes /32). */
export function parseCidrList(text: string, flag: string, allowStar: boolean): '*' | string[] {
  const t = text.trim();
  if (t === '*') {
    if (!allowStar) throw new Error(`${flag}: "*" is not allowed here`);
    return '*';
  }
  if (t === '') return [];
  return t.split(',').map((part) => {
    const p = part.trim();
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/.exec(p);
    if (!m || m.slice(1, 5).some((o) => Number(o) > 255) || (m[5] !== undefined && Number(m[5]) > 32)) {
      throw new Error(`${flag}: "${p}" is not an IPv4 address or CIDR`);
    }
    return m[5] === undefined ? `${p}/32` : p;
  });
}

/** Parses '*' or a comma list of ports. */
export function parsePortList(text: string, flag: string, allowStar: boolean): '*' | number[] {
  const t = text.trim();
  if (t === '*') {
    if (!allowStar) throw new Error(`${flag}: "*" is not allowed here`);
    return '*';
  }
  if (t === '') return [];
  return t.split(',').map((part) => {
    const n = Number(part.trim());
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${flag}: "${part.trim()}" is not a port (1-65535)`);
    return n;
  });
}

/** A rule as a shell line (dry runs, error messages). */
export function ruleText(command: string, rule: Rule): string {
  return [command, ...rule.map((a) => (/^[\w./:,*!-]+$/.test(a) ? a : `'${a}'`))].join(' ');
}
