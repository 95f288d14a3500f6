// Where the control plane keeps its state and where proxies find what it issued for them. On one
// machine the state directory plays the part Kubernetes' mounted secrets play in Istio: the root
// certificate every proxy trusts, and each workload's bootstrap token.
import * as path from 'node:path';

/** `$WEFT_STATE_DIR`, else `.weft/state` under the working directory. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.WEFT_STATE_DIR || path.join('.weft', 'state'));
}

/** The CA's files, in Istio's "plug in CA certificates" layout. */
export function caDir(stateDir: string): string {
  return path.join(stateDir, 'ca');
}

/** The mesh root certificate (public): what proxies trust for peers and for the control plane. */
export function rootCertPath(stateDir: string): string {
  return path.join(caDir(stateDir), 'root-cert.pem');
}

/** A workload's bootstrap token, readable only by its owner. */
export function workloadTokenPath(stateDir: string, namespace: string, workload: string): string {
  return path.join(stateDir, 'tokens', namespace, `${workload}.jwt`);
}

/** The key bootstrap tokens are signed with (ES256, PKCS#8 PEM, 0600), made on first start. */
export function tokenSigningKeyPath(stateDir: string): string {
  return path.join(stateDir, 'token-signing-key.pem');
}
