// Admission on the secure xDS port: the caller proves a workload identity (mesh client certificate
// or bootstrap token) and may then only connect as a proxy of that identity's namespace and, when
// the node names one, service account — Istio's checkConnectionIdentity (pilot/pkg/xds/authorize).
import * as grpc from '@grpc/grpc-js';
import { CaError } from '../../ca/ca-errors';
import type { CallerAuthenticator, CallerIdentity } from '../../ca/caller-authentication';
import type { ProxyNode } from '../../model/proxy';
import type { StreamGuard, StreamRefusal } from './ads-server';

export function createIdentityGuard(authenticator: CallerAuthenticator): StreamGuard<CallerIdentity> {
  return {
    async authenticate(call) {
      try {
        return await authenticator.authenticate(call);
      } catch (err) {
        const refusal: StreamRefusal = {
          code: err instanceof CaError ? err.grpcStatus : grpc.status.UNAUTHENTICATED,
          details: `authentication failed: ${(err as Error).message}`,
        };
        throw refusal;
      }
    },
    authorize: authorizeProxyIdentity,
  };
}

/** PERMISSION_DENIED unless `caller` belongs to the node's namespace (and service account, if it names one). */
export function authorizeProxyIdentity(caller: CallerIdentity, proxy: ProxyNode): StreamRefusal | undefined {
  const nodeAccount = typeof proxy.metadata.SERVICE_ACCOUNT === 'string' ? proxy.metadata.SERVICE_ACCOUNT : '';
  if (caller.namespace === proxy.namespace && (!nodeAccount || nodeAccount === caller.serviceAccount)) return undefined;
  const claimed = nodeAccount ? `${proxy.namespace}/${nodeAccount}` : `namespace ${proxy.namespace}`;
  return {
    code: grpc.status.PERMISSION_DENIED,
    details: `authorization failed: identity ${caller.spiffeId} may not connect as node "${proxy.id}" (${claimed})`,
  };
}
