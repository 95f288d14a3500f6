// Bootstrap credentials: per-workload JWTs the control plane signs and the CA accepts as proof of
// a service account, the part Kubernetes' projected service-account tokens play in Istio. Each
// WorkloadEntry gets one in a 0600 file under <state dir>/tokens/<ns>/<name>.jwt.
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, exportJWK, jwtVerify, SignJWT } from 'jose';
import type { Logger } from '../log/logger';
import { InvalidNameError, UnauthenticatedError } from './ca-errors';
import { ensurePrivateDir, writeFileAtomic } from './private-files';
import { isKubernetesName, parseServiceAccountSubject, serviceAccountSubject } from './spiffe';
import { tokenSigningKeyPath, workloadTokenPath } from './state-paths';

export const TOKEN_ISSUER = 'weft-control';
export const TOKEN_AUDIENCE = 'weft-ca';
/** Private claim naming the WorkloadEntry (or gateway) the token was made for. */
export const WORKLOAD_CLAIM = 'weft.io/workload';
const TOKEN_LIFETIME_SECONDS = 365 * 24 * 3600;
/** A token file this close to expiry is replaced on the next snapshot. */
const RENEW_BEFORE_SECONDS = 30 * 24 * 3600;

/** Who a token speaks for. */
export interface WorkloadTokenSubject {
  namespace: string;
  serviceAccount: string;
  workload: string;
}

export interface WrittenToken {
  path: string;
  token: string;
  /** False when the file already held a current token for the same subject (left as it was). */
  written: boolean;
}

export interface BootstrapTokensOptions {
  stateDir: string;
  logger: Logger;
}

export class BootstrapTokens {
  private constructor(
    private readonly stateDir: string,
    private readonly privateKey: KeyObject,
    private readonly publicKey: KeyObject,
    /** RFC 7638 thumbprint of the public key: tells tokens of an older key apart. */
    readonly keyId: string,
    private readonly logger: Logger,
  ) {}

  /** Loads the signing key from the state directory, creating it (0600) on first start. */
  static async loadOrCreate(options: BootstrapTokensOptions): Promise<BootstrapTokens> {
    const file = tokenSigningKeyPath(options.stateDir);
    let privateKey: KeyObject;
    if (fs.existsSync(file)) {
      try {
        privateKey = createPrivateKey(fs.readFileSync(file, 'utf8'));
      } catch (err) {
        throw new Error(`${file}: not a PEM private key (${(err as Error).message}) (hint: delete it to start over; existing token files are then replaced)`);
      }
      if (privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new Error(`${file}: not an EC P-256 key (tokens are ES256)`);
    } else {
      ensurePrivateDir(options.stateDir);
      privateKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
      writeFileAtomic(file, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 0o600);
      options.logger.info('token_signing_key_created', { file });
    }
    const publicKey = createPublicKey(privateKey);
    const keyId = await calculateJwkThumbprint(await exportJWK(publicKey));
    return new BootstrapTokens(path.resolve(options.stateDir), privateKey, publicKey, keyId, options.logger);
  }

  /** A signed token for `subject`, valid one year. InvalidNameError for names that are not Kubernetes names. */
  async mint(subject: WorkloadTokenSubject): Promise<string> {
    checkSubject(subject);
    return new SignJWT({ [WORKLOAD_CLAIM]: subject.workload })
      .setProtectedHeader({ alg: 'ES256', kid: this.keyId, typ: 'JWT' })
      .setIssuer(TOKEN_ISSUER)
      .setAudience(TOKEN_AUDIENCE)
      .setSubject(serviceAccountSubject(subject.namespace, subject.serviceAccount))
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + TOKEN_LIFETIME_SECONDS)
      .sign(this.privateKey);
  }

  /** Who `token` speaks for; UnauthenticatedError when it is not a current token of this control plane. */
  async verify(token: string): Promise<WorkloadTokenSubject> {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.publicKey, { issuer: TOKEN_ISSUER, audience: TOKEN_AUDIENCE, algorithms: ['ES256'] }));
    } catch (err) {
      throw new UnauthenticatedError(`bootstrap token refused: ${(err as Error).message}`);
    }
    const account = typeof payload.sub === 'string' ? parseServiceAccountSubject(payload.sub) : undefined;
    const workload = payload[WORKLOAD_CLAIM];
    if (!account || typeof workload !== 'string') throw new UnauthenticatedError('bootstrap token refused: it names no service account or workload');
    return { ...account, workload };
  }

  /**
   * Writes the token file of `subject` (dirs 0700, file 0600). Unless `force`, a file that already
   * holds a token of this key for the same subject, not near expiry, is left alone, so each
   * snapshot rewrites only what changed (a new WorkloadEntry, a changed serviceAccount).
   */
  async writeWorkloadToken(subject: WorkloadTokenSubject, options: { force?: boolean } = {}): Promise<WrittenToken> {
    checkSubject(subject);
    const file = workloadTokenPath(this.stateDir, subject.namespace, subject.workload);
    if (!options.force) {
      const current = this.currentToken(file, subject);
      if (current) return { path: file, token: current, written: false };
    }
    const token = await this.mint(subject);
    ensurePrivateDir(path.dirname(path.dirname(file)));
    ensurePrivateDir(path.dirname(file));
    writeFileAtomic(file, token + '\n', 0o600);
    return { path: file, token, written: true };
  }

  /** Writes the token of every workload that lacks a current one; returns the files written. */
  async syncWorkloadTokens(workloads: Iterable<{ namespace: string; name: string; serviceAccount?: string }>): Promise<string[]> {
    const written: string[] = [];
    for (const w of workloads) {
      // Istio's default service account when a WorkloadEntry names none.
      const subject = { namespace: w.namespace, serviceAccount: w.serviceAccount || 'default', workload: w.name };
      try {
        const result = await this.writeWorkloadToken(subject);
        if (result.written) written.push(result.path);
      } catch (err) {
        this.logger.error('workload_token_failed', { namespace: w.namespace, workload: w.name, error: err });
      }
    }
    return written;
  }

  /** The token in `file` when it is one of ours for `subject` and not about to expire. */
  private currentToken(file: string, subject: WorkloadTokenSubject): string | undefined {
    let token: string;
    try {
      token = fs.readFileSync(file, 'utf8').trim();
      const header = decodeProtectedHeader(token);
      const claims = decodeJwt(token);
      const fresh = typeof claims.exp === 'number' && claims.exp - Date.now() / 1000 > RENEW_BEFORE_SECONDS;
      const same =
        header.kid === this.keyId &&
        claims.sub === serviceAccountSubject(subject.namespace, subject.serviceAccount) &&
        claims[WORKLOAD_CLAIM] === subject.workload;
      return fresh && same ? token : undefined;
    } catch {
      return undefined; // missing or unreadable: write a new one
    }
  }
}

function checkSubject(subject: WorkloadTokenSubject): void {
  for (const [field, value] of Object.entries(subject)) {
    if (typeof value !== 'string' || !isKubernetesName(value)) {
      throw new InvalidNameError(`${field} "${value}" is not a Kubernetes name (lowercase letters, digits, '-' and '.')`);
    }
  }
}
