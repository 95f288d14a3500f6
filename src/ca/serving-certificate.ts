// The control plane's own certificate for its TLS port (15012), issued by the mesh CA and handed
// to grpc-js as a certificate provider, so the port can ask for client certificates without
// requiring them and a renewed certificate takes effect without rebinding.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../log/logger';
import type { CertificateAuthority, IssuedServerCertificate } from './certificate-authority';

type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;

/** Istio's istiod names plus Weft's own: what clients of 15012 may dial. */
export const CONTROL_PLANE_DNS_NAMES = ['istiod.istio-system.svc', 'weft-control', 'localhost'] as const;

/**
 * The serving certificate lives a year and is re-issued on every start; a process that runs long
 * re-issues it once two thirds of its life have passed (checked daily: timers cannot span a year).
 */
const SERVING_CERT_TTL_SECONDS = 365 * 24 * 3600;
const RENEWAL_CHECK_MS = 24 * 3600 * 1000;

export interface ServingCertificateOptions {
  ca: CertificateAuthority;
  dnsNames: readonly string[];
  ips: readonly string[];
  logger: Logger;
  ttlSeconds?: number;
}

export class ServingCertificate implements grpc.experimental.CertificateProvider {
  private current!: IssuedServerCertificate;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();
  private renewalTimer?: NodeJS.Timeout;

  private constructor(private readonly options: ServingCertificateOptions) {}

  /** Issues the first certificate and starts the renewal check. */
  static async issue(options: ServingCertificateOptions): Promise<ServingCertificate> {
    const serving = new ServingCertificate(options);
    await serving.renew();
    serving.renewalTimer = setInterval(() => serving.renewIfDue(), RENEWAL_CHECK_MS).unref();
    return serving;
  }

  /**
   * Server credentials that request a client certificate verified against the mesh root but do
   * not require one: the CSR path authenticates with a token, ADS with either.
   * (grpc-js's createSsl(root, pairs, true) would make the certificate mandatory.)
   */
  serverCredentials(): grpc.ServerCredentials {
    // grpc-js names the first parameter caCertificateProvider but uses it as the identity provider;
    // this object is both, and a non-null second provider is what turns requestCert on.
    return grpc.experimental.createCertificateProviderServerCredentials(this, this, false);
  }

  get notAfter(): Date {
    return this.current.notAfter;
  }

  /** The certificate chain being served (PEM), for clients that pin it in tests. */
  get certChainPem(): string {
    return this.current.certChainPem;
  }

  async renew(): Promise<void> {
    const { ca, dnsNames, ips } = this.options;
    this.current = await ca.issueServerCertificate({ dnsNames, ips, ttlSeconds: this.options.ttlSeconds ?? SERVING_CERT_TTL_SECONDS });
    this.options.logger.info('serving_certificate_issued', { dnsNames, ips, notAfter: this.current.notAfter.toISOString() });
    for (const listener of this.identityListeners) listener(this.identityUpdate());
  }

  close(): void {
    if (this.renewalTimer) clearInterval(this.renewalTimer);
  }

  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    // Never synchronously: grpc-js registers its watcher only after this call returns.
    queueMicrotask(() => {
      if (this.caListeners.has(listener)) listener({ caCertificate: Buffer.from(this.options.ca.rootCertPem) });
    });
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    queueMicrotask(() => {
      if (this.identityListeners.has(listener)) listener(this.identityUpdate());
    });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }

  private identityUpdate(): grpc.experimental.IdentityCertificateUpdate {
    return { certificate: Buffer.from(this.current.certChainPem), privateKey: Buffer.from(this.current.privateKeyPem) };
  }

  private renewIfDue(): void {
    const { notBefore, notAfter } = this.current;
    const renewAt = notBefore.getTime() + ((notAfter.getTime() - notBefore.getTime()) * 2) / 3;
    if (Date.now() < renewAt) return;
    this.renew().catch((err: unknown) => this.options.logger.error('serving_certificate_renewal_failed', { error: err }));
  }
}
