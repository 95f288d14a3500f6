// Envoy's filter chain selection: at each criterion (destination port, destination IP, transport
// protocol, application protocols, source IP, source port) the most specific matching chains win,
// chains that leave the criterion unset are the fallback; nothing left means no chain.
import * as net from 'node:net';
import type { CidrRange, CompiledFilterChain, CompiledListener } from '../config/model';
import { cidrContains, ipBytes } from '../config/listener';
import { serverNameScore } from './tls-client-hello';

export interface ConnectionFacts {
  destinationPort: number;
  /** Destination IP; undefined when the destination is a host name (forward-proxy requests). */
  destinationIp?: string;
  sourceIp?: string;
  sourcePort?: number;
  transportProtocol: 'raw_buffer' | 'tls';
  /** SNI of a TLS ClientHello. */
  serverName?: string;
  /** Detected by sniffing (http/1.1, http/1.0, h2c); undefined when not sniffed. */
  applicationProtocols?: readonly string[];
}

function longestPrefix(ranges: readonly CidrRange[], ip: Uint8Array | undefined): number {
  if (!ip) return -1;
  let best = -1;
  for (const r of ranges) if (r.prefixLen > best && cidrContains(r, ip)) best = r.prefixLen;
  return best;
}

/** Keeps the chains most specific for one criterion: `score` -1 = no match, 0 = unset. */
function narrow(chains: CompiledFilterChain[], score: (c: CompiledFilterChain) => number): CompiledFilterChain[] {
  let best = -1;
  for (const c of chains) best = Math.max(best, score(c));
  if (best < 0) return [];
  return chains.filter((c) => score(c) === best);
}

export function selectFilterChain(listener: CompiledListener, facts: ConnectionFacts): CompiledFilterChain | undefined {
  let chains = listener.filterChains as CompiledFilterChain[];
  if (chains.length) {
    chains = narrow(chains, (c) => (c.match.destinationPort === undefined ? 0 : c.match.destinationPort === facts.destinationPort ? 1 : -1));
    const dst = facts.destinationIp && net.isIP(facts.destinationIp) ? ipBytes(facts.destinationIp) : undefined;
    chains = narrow(chains, (c) => {
      if (c.match.prefixRanges.length === 0) return 0;
      const len = longestPrefix(c.match.prefixRanges, dst);
      return len < 0 ? -1 : len + 1;
    });
    chains = narrow(chains, (c) => serverNameScore(c.match.serverNames, facts.serverName));
    chains = narrow(chains, (c) => (!c.match.transportProtocol ? 0 : c.match.transportProtocol === facts.transportProtocol ? 1 : -1));
    chains = narrow(chains, (c) => {
      if (c.match.applicationProtocols.length === 0) return 0;
      return facts.applicationProtocols?.some((p) => c.match.applicationProtocols.includes(p)) ? 1 : -1;
    });
    const src = facts.sourceIp && net.isIP(facts.sourceIp) ? ipBytes(facts.sourceIp) : undefined;
    chains = narrow(chains, (c) => {
      if (c.match.sourcePrefixRanges.length === 0) return 0;
      const len = longestPrefix(c.match.sourcePrefixRanges, src);
      return len < 0 ? -1 : len + 1;
    });
    chains = narrow(chains, (c) => (c.match.sourcePorts.length === 0 ? 0 : facts.sourcePort !== undefined && c.match.sourcePorts.includes(facts.sourcePort) ? 1 : -1));
  }
  return chains[0] ?? listener.defaultFilterChain;
}

/** Whether choosing a chain for this destination needs the first bytes (application protocol). */
export function needsSniffing(listener: CompiledListener, destinationPort: number): boolean {
  return listener.filterChains.some(
    (c) =>
      (c.match.destinationPort === undefined || c.match.destinationPort === destinationPort) &&
      (c.match.applicationProtocols.length > 0 || c.match.transportProtocol !== undefined || c.match.serverNames.length > 0),
  );
}
