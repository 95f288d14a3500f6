// Where a workload runs, as Istio sees it: the locality `region/zone/subzone` of a WorkloadEntry,
// the topology labels Istio derives from it (and the network) for failoverPriority, and Istio's
// locality matching and failover priority rules.

export interface Locality {
  readonly region: string;
  readonly zone: string;
  readonly subZone: string;
}

/** Istio's well-known topology labels (label.TopologySubzone etc.). */
export const REGION_LABEL = 'topology.kubernetes.io/region';
export const ZONE_LABEL = 'topology.kubernetes.io/zone';
export const SUBZONE_LABEL = 'topology.istio.io/subzone';
export const NETWORK_LABEL = 'topology.istio.io/network';

/** `region/zone/subzone` (later parts optional; a subzone may itself contain `/`), as Istio splits it. */
export function parseLocality(text: string | undefined): Locality {
  if (!text) return { region: '', zone: '', subZone: '' };
  const [region = '', zone = '', ...rest] = text.split('/');
  return { region, zone, subZone: rest.join('/') };
}

/**
 * Istio's labelutil.AugmentLabels: the topology labels a workload (or a proxy) carries besides its
 * own, for failoverPriority. A workload's own labels win.
 */
export function topologyLabels(locality: string | undefined, network: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const l = parseLocality(locality);
  if (l.region) out[REGION_LABEL] = l.region;
  if (l.zone) out[ZONE_LABEL] = l.zone;
  if (l.subZone) out[SUBZONE_LABEL] = l.subZone;
  if (network) out[NETWORK_LABEL] = network;
  return out;
}

/**
 * Istio's util.LocalityMatch: whether `locality` is within `rule` (`region/zone/subzone`, each
 * part `*` or absent for any).
 */
export function localityMatches(locality: Locality, rule: string): boolean {
  const r = parseLocality(rule);
  const region = r.region === '*' || r.region === locality.region;
  const zone = r.zone === '*' || r.zone === '' || r.zone === locality.zone;
  const subZone = r.subZone === '*' || r.subZone === '' || r.subZone === locality.subZone;
  return region && zone && subZone;
}

/**
 * Istio's LbPriority: 0 for the proxy's own subzone, 1 its zone, 2 its region, 3 elsewhere.
 */
export function localityPriority(proxy: Locality, endpoint: Locality): number {
  if (proxy.region !== endpoint.region) return 3;
  if (proxy.zone !== endpoint.zone) return 2;
  if (proxy.subZone !== endpoint.subZone) return 1;
  return 0;
}
