// IstioCertificateService/CreateCertificate: authenticates the caller, checks the CSR asks for the
// caller's own identity, signs it and answers with the chain. Refusals map to gRPC status codes
// here and nowhere else; counted under Istio's citadel_server_* metric names.
import * as grpc from '@grpc/grpc-js';
import { Counter, type Registry } from 'prom-client';
import type { Logger } from '../log/logger';
import { CaError } from './ca-errors';
import { CA_SERVICE_DEFINITION, type CreateCertificateRequest, type CreateCertificateResponse } from './ca-protocol';
import type { CallerAuthenticator } from './caller-authentication';
import type { CertificateAuthority } from './certificate-authority';

/** Istio's default workload certificate lifetime (DEFAULT_WORKLOAD_CERT_TTL). */
export const DEFAULT_WORKLOAD_CERT_TTL_SECONDS = 24 * 3600;

export interface CaServiceOptions {
  ca: CertificateAuthority;
  authenticator: CallerAuthenticator;
  logger: Logger;
  /** citadel_server_* counters are registered here when given. */
  metrics?: Registry;
  /** Lifetime when the request asks for none. Default 24 h. */
  defaultTtlSeconds?: number;
}

interface CaMetrics {
  csr(): void;
  issued(): void;
  signError(error: string): void;
  authenticationFailure(): void;
}

function createCaMetrics(registry: Registry | undefined): CaMetrics {
  if (!registry) return { csr() {}, issued() {}, signError() {}, authenticationFailure() {} };
  const registers = [registry];
  const csr = new Counter({ name: 'citadel_server_csr_count', help: 'The number of CSRs received by Citadel server.', registers });
  const issued = new Counter({
    name: 'citadel_server_success_cert_issuance_count',
    help: 'The number of certificates issuances that have succeeded.',
    registers,
  });
  const signErrors = new Counter({
    name: 'citadel_server_csr_sign_error_count',
    help: 'The number of errors occurred when signing the CSR.',
    labelNames: ['error'],
    registers,
  });
  const authn = new Counter({
    name: 'citadel_server_authentication_failure_count',
    help: 'The number of authentication failures.',
    registers,
  });
  return {
    csr: () => csr.inc(),
    issued: () => issued.inc(),
    signError: (error) => signErrors.inc({ error }),
    authenticationFailure: () => authn.inc(),
  };
}

export class CaService {
  readonly definition = CA_SERVICE_DEFINITION;
  private readonly metrics: CaMetrics;
  private readonly log: Logger;

  constructor(private readonly options: CaServiceOptions) {
    this.metrics = createCaMetrics(options.metrics);
    this.log = options.logger.child({ component: 'ca' });
  }

  /** The handlers to pass to grpc.Server.addService with `definition`. */
  implementation(): grpc.UntypedServiceImplementation {
    return {
      CreateCertificate: (
        call: grpc.ServerUnaryCall<CreateCertificateRequest, CreateCertificateResponse>,
        callback: grpc.sendUnaryData<CreateCertificateResponse>,
      ) => {
        this.createCertificate(call).then(
          (response) => callback(null, response),
          (err: unknown) => callback(this.toStatus(err, call.getPeer())),
        );
      },
    };
  }

  private async createCertificate(call: grpc.ServerUnaryCall<CreateCertificateRequest, CreateCertificateResponse>): Promise<CreateCertificateResponse> {
    this.metrics.csr();
    let caller;
    try {
      caller = await this.options.authenticator.authenticate(call);
    } catch (err) {
      this.metrics.authenticationFailure();
      throw err;
    }
    const requested = Number(call.request.validityDuration);
    const ttlSeconds = Number.isFinite(requested) && requested > 0 ? requested : (this.options.defaultTtlSeconds ?? DEFAULT_WORKLOAD_CERT_TTL_SECONDS);
    const signed = await this.options.ca.signWorkloadCsr(call.request.csr, { identity: caller.spiffeId, ttlSeconds });
    this.metrics.issued();
    this.log.info('certificate_issued', {
      identity: signed.identity,
      serial: signed.serialNumber,
      notAfter: signed.notAfter.toISOString(),
      via: caller.via,
      ...(caller.workload ? { workload: caller.workload } : {}),
      peer: call.getPeer(),
    });
    return { certChain: signed.certChain };
  }

  private toStatus(err: unknown, peer: string): Partial<grpc.StatusObject> {
    if (err instanceof CaError) {
      if (err.grpcStatus !== grpc.status.UNAUTHENTICATED) this.metrics.signError(err.code);
      this.log.warn('certificate_refused', { peer, code: err.code, reason: err.message });
      return { code: err.grpcStatus, details: err.message };
    }
    this.metrics.signError('INTERNAL');
    this.log.error('certificate_failed', { peer, error: err });
    return { code: grpc.status.INTERNAL, details: `CSR signing error: ${(err as Error).message}` };
  }
}
