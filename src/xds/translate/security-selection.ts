// Which security.istio.io policies apply to a proxy (Istio's WorkloadPolicyMatcher and
// getConfigsForWorkload): the typed shapes of PeerAuthentication, AuthorizationPolicy and
// RequestAuthentication specs as translation reads them, Istio's policy order, and the match of a
// policy's `selector` or `targetRef(s)` against a workload or gateway.
import type { ConfigResource, ObjectMeta } from '../../config/resources';
import type { ProxyNode } from '../../model/proxy';
import { labelsMatch } from '../../registry/hosts';

export interface WorkloadSelectorSpec {
  matchLabels?: Record<string, string>;
}

export interface PolicyTargetRef {
  group?: string;
  kind: string;
  name: string;
}

export type MtlsModeSpec = 'UNSET' | 'DISABLE' | 'PERMISSIVE' | 'STRICT';

export interface PeerAuthenticationSpec {
  selector?: WorkloadSelectorSpec;
  mtls?: { mode?: MtlsModeSpec };
  /** Keyed by the workload's (target) port number. */
  portLevelMtls?: Record<string, { mode?: MtlsModeSpec }>;
}

export interface AuthorizationSource {
  principals?: string[];
  notPrincipals?: string[];
  requestPrincipals?: string[];
  notRequestPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
  ipBlocks?: string[];
  notIpBlocks?: string[];
  remoteIpBlocks?: string[];
  notRemoteIpBlocks?: string[];
  serviceAccounts?: string[];
  notServiceAccounts?: string[];
}

export interface AuthorizationOperation {
  hosts?: string[];
  notHosts?: string[];
  ports?: string[];
  notPorts?: string[];
  methods?: string[];
  notMethods?: string[];
  paths?: string[];
  notPaths?: string[];
}

export interface AuthorizationCondition {
  key: string;
  values?: string[];
  notValues?: string[];
}

export interface AuthorizationRule {
  from?: { source?: AuthorizationSource }[];
  to?: { operation?: AuthorizationOperation }[];
  when?: AuthorizationCondition[];
}

export type AuthorizationAction = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

export interface AuthorizationPolicySpec {
  selector?: WorkloadSelectorSpec;
  targetRef?: PolicyTargetRef;
  targetRefs?: PolicyTargetRef[];
  rules?: AuthorizationRule[];
  action?: AuthorizationAction;
  provider?: { name?: string };
}

export interface JwtRuleSpec {
  issuer?: string;
  audiences?: string[];
  jwksUri?: string;
  jwks?: string;
  fromHeaders?: { name: string; prefix?: string }[];
  fromParams?: string[];
  fromCookies?: string[];
  outputPayloadToHeader?: string;
  forwardOriginalToken?: boolean;
  outputClaimToHeaders?: { header: string; claim: string }[];
  timeout?: string;
}

export interface RequestAuthenticationSpec {
  selector?: WorkloadSelectorSpec;
  targetRef?: PolicyTargetRef;
  targetRefs?: PolicyTargetRef[];
  jwtRules?: JwtRuleSpec[];
}

export type PeerAuthenticationResource = ConfigResource<'PeerAuthentication', PeerAuthenticationSpec>;
export type AuthorizationPolicyResource = ConfigResource<'AuthorizationPolicy', AuthorizationPolicySpec>;
export type RequestAuthenticationResource = ConfigResource<'RequestAuthentication', RequestAuthenticationSpec>;

/** Kubernetes Gateway API label naming the Gateway a gateway proxy was deployed for. */
export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';
const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';

/**
 * Istio's policy order within a namespace (sortConfigByCreationTime): oldest creationTimestamp
 * first, then name. A missing timestamp counts as the oldest (Go's zero time), as for resources
 * from files, which then fall back to name order.
 */
export function compareByAge(a: { metadata: ObjectMeta }, b: { metadata: ObjectMeta }): number {
  const ta = creationTime(a.metadata);
  const tb = creationTime(b.metadata);
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}

function creationTime(meta: ObjectMeta): number {
  const t = meta.creationTimestamp ? Date.parse(meta.creationTimestamp) : NaN;
  return Number.isNaN(t) ? Number.NEGATIVE_INFINITY : t;
}

/** What a policy's `selector` / `targetRefs` are matched against. */
export interface PolicySubject {
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Gateway proxies: selector policies match their labels, Gateway targetRefs their gateway name. */
  readonly gateway: boolean;
}

export function policySubjectOf(proxy: ProxyNode): PolicySubject {
  return { namespace: proxy.namespace, labels: proxy.labels, gateway: proxy.type === 'router' };
}

/** `targetRef` and `targetRefs` as one list. */
export function targetRefsOf(spec: { targetRef?: PolicyTargetRef; targetRefs?: PolicyTargetRef[] }): PolicyTargetRef[] {
  return [...(spec.targetRef ? [spec.targetRef] : []), ...(spec.targetRefs ?? [])];
}

/** What selection reads of any of the three kinds. */
export interface TargetablePolicy {
  readonly metadata: ObjectMeta;
  readonly spec: { selector?: WorkloadSelectorSpec; targetRef?: PolicyTargetRef; targetRefs?: PolicyTargetRef[] };
}

/**
 * Istio's ShouldAttachPolicy for sidecars and gateways: a policy without targetRefs applies when
 * its selector's labels are all on the subject (no selector: every workload of the namespace, or
 * of the mesh in the root namespace). A policy with targetRefs applies only to a gateway proxy
 * whose `gateway.networking.k8s.io/gateway-name` label names a targeted Gateway of the policy's own
 * namespace; Service/ServiceEntry targets are for waypoints, which Weft does not have, so they
 * select no sidecar (as in Istio).
 */
export function policyApplies(policy: TargetablePolicy, subject: PolicySubject): boolean {
  const refs = targetRefsOf(policy.spec);
  if (refs.length === 0) return labelsMatch(policy.spec.selector?.matchLabels, subject.labels as Record<string, string>);
  if (!subject.gateway || policy.metadata.namespace !== subject.namespace) return false;
  const gatewayName = subject.labels[GATEWAY_NAME_LABEL];
  return refs.some((r) => r.kind === 'Gateway' && (r.group ?? GATEWAY_API_GROUP) === GATEWAY_API_GROUP && r.name === gatewayName);
}

/**
 * The policies of `byNamespace` that apply to the subject: those of its own namespace, then those of
 * the root namespace (mesh-wide, or selecting workloads in any namespace), each in Istio's order.
 */
export function selectPolicies<T extends TargetablePolicy>(
  byNamespace: ReadonlyMap<string, readonly T[]>,
  subject: PolicySubject,
  rootNamespace: string,
): T[] {
  const namespaces = subject.namespace === rootNamespace ? [rootNamespace] : [subject.namespace, rootNamespace];
  const out: T[] = [];
  for (const ns of namespaces) {
    for (const p of byNamespace.get(ns) ?? []) if (policyApplies(p, subject)) out.push(p);
  }
  return out;
}
