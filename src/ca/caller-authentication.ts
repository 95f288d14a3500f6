// Who is calling on the secure port (15012): a client certificate of this mesh presented on the
// TLS connection (a proxy renewing, or connecting to ADS), or else a bootstrap token in the
// `authorization: Bearer` metadata — Istio's ClientCertAuthenticator then its JWT authenticator.
import type * as grpc from '@grpc/grpc-js';
import type { BootstrapTokens } from './bootstrap-tokens';
import { AUTHORIZATION_METADATA } from './ca-protocol';
import { UnauthenticatedError } from './ca-errors';
import { parseSpiffeId, spiffeId } from './spiffe';

export interface CallerIdentity {
  /** spiffe://<trust domain>/ns/<namespace>/sa/<service account> */
  spiffeId: string;
  namespace: string;
  serviceAccount: string;
  /** The workload a bootstrap token was made for (tokens only). */
  workload?: string;
  via: 'certificate' | 'token';
}

/** The parts of a gRPC server call authentication reads (unary and streaming calls both have them). */
export interface AuthenticatedCall {
  metadata: grpc.Metadata;
  getAuthContext?(): { sslPeerCertificate?: { subjectaltname?: string } } | null;
}

export interface CallerAuthenticatorOptions {
  trustDomain: string;
  tokens: BootstrapTokens;
}

export class CallerAuthenticator {
  constructor(private readonly options: CallerAuthenticatorOptions) {}

  /**
   * The caller's identity, or UnauthenticatedError. A certificate counts only when the TLS layer
   * verified it against the mesh root (grpc-js reports the peer certificate of authorized
   * connections only) and it carries a SPIFFE URI of this trust domain.
   */
  async authenticate(call: AuthenticatedCall): Promise<CallerIdentity> {
    const fromCertificate = this.certificateIdentity(call);
    if (fromCertificate) return fromCertificate;
    const header = call.metadata.get(AUTHORIZATION_METADATA)[0];
    if (header === undefined) {
      throw new UnauthenticatedError('no credentials: present a client certificate issued by this mesh or an "authorization: Bearer <token>" header');
    }
    const m = /^Bearer\s+(\S+)\s*$/i.exec(String(header));
    if (!m) throw new UnauthenticatedError('the authorization header is not "Bearer <token>"');
    const subject = await this.options.tokens.verify(m[1]);
    return {
      spiffeId: spiffeId(this.options.trustDomain, subject.namespace, subject.serviceAccount),
      namespace: subject.namespace,
      serviceAccount: subject.serviceAccount,
      workload: subject.workload,
      via: 'token',
    };
  }

  private certificateIdentity(call: AuthenticatedCall): CallerIdentity | undefined {
    const names = call.getAuthContext?.()?.sslPeerCertificate?.subjectaltname;
    if (!names) return undefined;
    for (const name of names.split(/,\s*/)) {
      if (!name.startsWith('URI:')) continue;
      const uri = name.slice(4);
      const id = parseSpiffeId(uri);
      if (id && id.trustDomain === this.options.trustDomain) {
        return { spiffeId: uri, namespace: id.namespace, serviceAccount: id.serviceAccount, via: 'certificate' };
      }
    }
    return undefined;
  }
}
