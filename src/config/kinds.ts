// The resource kinds Weft reads, with their API groups, served versions and CLI names (as kubectl knows them).
import type { ResourceKind } from './resources';

export interface KindInfo {
  kind: ResourceKind;
  /** API group; '' for the Kubernetes core group (apiVersion `v1`). */
  group: string;
  /** Served versions, preferred first. */
  versions: string[];
  plural: string;
  shortNames: string[];
  namespaced: true;
}

const NETWORKING = 'networking.istio.io';
const SECURITY = 'security.istio.io';
const NETWORKING_VERSIONS = ['v1', 'v1beta1', 'v1alpha3'];
const SECURITY_VERSIONS = ['v1', 'v1beta1'];

export const KNOWN_KINDS: readonly KindInfo[] = Object.freeze([
  networking('VirtualService', 'virtualservices', ['vs']),
  networking('DestinationRule', 'destinationrules', ['dr']),
  networking('Gateway', 'gateways', ['gw']),
  networking('ServiceEntry', 'serviceentries', ['se']),
  networking('WorkloadEntry', 'workloadentries', ['we']),
  networking('Sidecar', 'sidecars', []),
  { kind: 'Service', group: '', versions: ['v1'], plural: 'services', shortNames: ['svc'], namespaced: true },
  security('PeerAuthentication', 'peerauthentications', ['pa']),
  security('AuthorizationPolicy', 'authorizationpolicies', ['ap']),
  security('RequestAuthentication', 'requestauthentications', ['ra']),
  { kind: 'Telemetry', group: 'telemetry.istio.io', versions: ['v1', 'v1alpha1'], plural: 'telemetries', shortNames: ['telemetry'], namespaced: true },
]);

function networking(kind: ResourceKind, plural: string, shortNames: string[]): KindInfo {
  return { kind, group: NETWORKING, versions: [...NETWORKING_VERSIONS], plural, shortNames, namespaced: true };
}

function security(kind: ResourceKind, plural: string, shortNames: string[]): KindInfo {
  return { kind, group: SECURITY, versions: [...SECURITY_VERSIONS], plural, shortNames, namespaced: true };
}

/** Finds a kind by name, plural or short name, case-insensitively ('vs', 'virtualservices', 'VirtualService'). */
export function lookupKind(nameOrPluralOrShort: string): KindInfo | undefined {
  const wanted = nameOrPluralOrShort.trim().toLowerCase();
  return KNOWN_KINDS.find(
    (k) => k.kind.toLowerCase() === wanted || k.plural === wanted || k.kind.toLowerCase() + 's' === wanted || k.shortNames.includes(wanted),
  );
}

/** The kind exactly as written in a document's `kind:` field (case-sensitive, like the API server). */
export function kindByName(kind: string): KindInfo | undefined {
  return KNOWN_KINDS.find((k) => k.kind === kind);
}

/** The apiVersion strings a kind accepts: 'networking.istio.io/v1', ..., or 'v1' for core. */
export function apiVersionsOf(info: KindInfo): string[] {
  return info.versions.map((v) => (info.group ? `${info.group}/${v}` : v));
}
