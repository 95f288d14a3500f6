// The authentication and authorization filters of one proxy's inbound (or gateway) chains, from the
// RequestAuthentications and AuthorizationPolicies that apply to it: HTTP chains get jwt_authn then
// the RBAC filters, TCP chains the network RBAC filters.
import type { MeshSnapshot } from '../../model/snapshot';
import { buildHttpRbacFilters, buildTcpRbacFilters, groupByAction } from './authorization';
import { buildJwtAuthnFilter } from './request-authentication';
import type { PolicySubject } from './security-selection';
import { selectPolicies } from './security-selection';
import type { SnapshotIndex } from './snapshot-index';

type Json = Record<string, unknown>;

export interface SecurityFilters {
  /** Before the router (and before cors/fault on gateways): jwt_authn, then RBAC CUSTOM, DENY, AUDIT, ALLOW. */
  readonly http: readonly Json[];
  /** Before tcp_proxy: network RBAC CUSTOM, DENY, AUDIT, ALLOW. */
  readonly tcp: readonly Json[];
}

/**
 * Filters for a workload or gateway. A function of the snapshot and the subject's namespace,
 * labels and kind only; ProxySignature.security keys it.
 */
export function buildSecurityFilters(snapshot: MeshSnapshot, index: SnapshotIndex, subject: PolicySubject): SecurityFilters {
  const root = snapshot.meshConfig.rootNamespace;
  const byAction = groupByAction(selectPolicies(index.security.authorizationPolicies, subject, root));
  const jwt = buildJwtAuthnFilter(selectPolicies(index.security.requestAuthentications, subject, root));
  return { http: [...(jwt ? [jwt] : []), ...buildHttpRbacFilters(byAction)], tcp: buildTcpRbacFilters(byAction) };
}
