// The CA's failures: one base class with a stable `code` and the gRPC status it answers with, so
// the service maps every refusal in one place (Istio's caerror types and their status codes).
import { status } from '@grpc/grpc-js';

export abstract class CaError extends Error {
  abstract readonly code: string;
  abstract readonly grpcStatus: status;
}

/** The caller proved no identity: no or a bad bootstrap token, no client certificate of this mesh. */
export class UnauthenticatedError extends CaError {
  readonly code: string = 'UNAUTHENTICATED';
  readonly grpcStatus = status.UNAUTHENTICATED;
}

/** The caller is known but asked for something its identity does not allow. */
export class PermissionDeniedError extends CaError {
  readonly code: string = 'PERMISSION_DENIED';
  readonly grpcStatus = status.PERMISSION_DENIED;
}

/** The CSR asks for an identity other than the caller's (Istio: IDENTITY mismatch). */
export class IdentityMismatchError extends PermissionDeniedError {
  override readonly code = 'IDENTITY_MISMATCH';
  constructor(
    readonly requested: readonly string[],
    readonly allowed: string,
  ) {
    super(`the CSR requests identity ${requested.length ? requested.join(', ') : '(none)'}; the caller may only request ${allowed}`);
  }
}

/** The request itself is malformed: not a PEM CSR, a bad CSR signature, an unsupported key. */
export class InvalidCsrError extends CaError {
  readonly code = 'CSR_INVALID';
  readonly grpcStatus = status.INVALID_ARGUMENT;
}

/** The CA's own files are missing, unreadable or inconsistent; the message names the file. */
export class CaFilesError extends CaError {
  readonly code = 'CA_FILES';
  readonly grpcStatus = status.FAILED_PRECONDITION;
  constructor(
    readonly file: string,
    problem: string,
    hint?: string,
  ) {
    super(`${file}: ${problem}${hint ? ` (hint: ${hint})` : ''}`);
  }
}

/** A namespace, service account or workload name that is not a Kubernetes name. */
export class InvalidNameError extends CaError {
  readonly code = 'INVALID_NAME';
  readonly grpcStatus = status.INVALID_ARGUMENT;
}
