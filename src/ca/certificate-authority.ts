// The mesh certificate authority (Istio's Citadel inside istiod): a self-signed root made on first
// start or a plugged-in intermediate, kept under <state dir>/ca/, signing workload CSRs into
// SPIFFE certificates and issuing the control plane's own serving certificate.
import { createHash, randomBytes, webcrypto } from 'node:crypto';
import * as fs from 'node:fs';
import type { Logger } from '../log/logger';
import { caDir } from './state-paths';
import { CaFilesError, IdentityMismatchError, InvalidCsrError } from './ca-errors';
import { readCaMaterial, validateCaMaterial, writeCaMaterial, type CaMaterial, type ValidatedCa } from './ca-files';
import { generateEcKeyPair, privateKeyPem } from './signing-key';
import { x509 } from './x509';

export interface CertificateAuthorityOptions {
  /** The state directory; the CA lives in its `ca/` subdirectory. */
  stateDir: string;
  /** The mesh trust domain (MeshConfig.trustDomain): SPIFFE ids and the self-signed root's O=. */
  trustDomain: string;
  /** Istio's plug-in layout to use instead of a self-signed root; copied into the state directory. */
  pluggedCertsDir?: string;
  logger: Logger;
  /** Longest workload certificate lifetime (Istio MAX_WORKLOAD_CERT_TTL). Default 90 days. */
  maxWorkloadCertTtlSeconds?: number;
}

export interface SignWorkloadOptions {
  /** The SPIFFE id the caller proved; the CSR must ask for exactly this. */
  identity: string;
  /** Requested lifetime; shortened to the maximum and to what is left of the CA's own. */
  ttlSeconds: number;
}

export interface SignedWorkloadCertificate {
  /** PEM certificates as Istio returns them: the workload's first, intermediates, the root(s) last. */
  certChain: string[];
  identity: string;
  /** Hex serial number of the workload certificate. */
  serialNumber: string;
  notAfter: Date;
}

export interface ServerCertificateOptions {
  dnsNames: readonly string[];
  ips: readonly string[];
  ttlSeconds: number;
}

export interface IssuedServerCertificate {
  /** PKCS#8 PEM of a key made for this certificate. */
  privateKeyPem: string;
  /** The server certificate followed by the intermediates (not the root), PEM. */
  certChainPem: string;
  notBefore: Date;
  notAfter: Date;
}

/** Where the CA's material came from this start. */
export type CaOrigin = 'created' | 'loaded' | 'plugged';

export const DEFAULT_MAX_WORKLOAD_CERT_TTL_SECONDS = 90 * 24 * 3600;
/** Istio's self-signed root lives ten years (CITADEL_SELF_SIGNED_CA_CERT_TTL). */
const SELF_SIGNED_ROOT_TTL_SECONDS = 10 * 365 * 24 * 3600;
/** Certificates start a minute in the past so peers whose clocks lag a little accept them. */
const CLOCK_SKEW_MS = 60_000;

const SAN_OID = '2.5.29.17';

export class CertificateAuthority {
  /** root-cert.pem as written: the trust anchor(s) proxies and clients verify against. */
  readonly rootCertPem: string;
  readonly maxWorkloadCertTtlSeconds: number;
  private readonly issuerName: x509.Name;
  private readonly signingNotAfter: Date;
  /** Intermediates then roots, the tail of every chain handed out. */
  private readonly chainTail: string[];
  private authorityKeyId?: x509.AuthorityKeyIdentifierExtension;

  private constructor(
    readonly trustDomain: string,
    private readonly validated: ValidatedCa,
    readonly origin: CaOrigin,
    maxTtlSeconds: number,
  ) {
    this.rootCertPem = validated.material.rootCertPem;
    this.maxWorkloadCertTtlSeconds = maxTtlSeconds;
    const caCert = new x509.X509Certificate(validated.caCert.raw);
    this.issuerName = caCert.subjectName;
    this.signingNotAfter = new Date(validated.caCert.validTo);
    this.chainTail = [...validated.intermediatePems, ...validated.rootPems];
    const ski = caCert.getExtension(x509.SubjectKeyIdentifierExtension);
    if (ski) this.authorityKeyId = new x509.AuthorityKeyIdentifierExtension(ski.keyId);
  }

  /**
   * The CA for `stateDir`. With `pluggedCertsDir` its files are checked and copied into
   * `<stateDir>/ca/` (an operator's explicit choice wins over what the directory held); otherwise
   * the files already there are loaded; otherwise a self-signed root is created and written. Throws
   * CaFilesError naming the file when the material is unusable.
   */
  static async loadOrCreate(options: CertificateAuthorityOptions): Promise<CertificateAuthority> {
    const dir = caDir(options.stateDir);
    const log = options.logger;
    const maxTtl = options.maxWorkloadCertTtlSeconds ?? DEFAULT_MAX_WORKLOAD_CERT_TTL_SECONDS;
    let ca: CertificateAuthority;
    if (options.pluggedCertsDir) {
      const plugged = readCaMaterial(options.pluggedCertsDir);
      if (!plugged) {
        throw new CaFilesError(options.pluggedCertsDir, 'holds no CA files', 'expected ca-cert.pem, ca-key.pem, root-cert.pem and cert-chain.pem');
      }
      const validated = await validateCaMaterial(plugged, options.pluggedCertsDir);
      const previous = safeRead(dir);
      if (previous && previous.rootCertPem !== plugged.rootCertPem) {
        log.warn('ca_root_replaced', { dir, hint: 'certificates issued under the previous root stop being trusted; restart proxies to get new ones' });
      }
      writeCaMaterial(dir, plugged);
      ca = new CertificateAuthority(options.trustDomain, validated, 'plugged', maxTtl);
    } else {
      const existing = readCaMaterial(dir);
      if (existing) {
        ca = new CertificateAuthority(options.trustDomain, await validateCaMaterial(existing, dir), 'loaded', maxTtl);
      } else {
        const created = await createSelfSignedRoot(options.trustDomain);
        writeCaMaterial(dir, created);
        ca = new CertificateAuthority(options.trustDomain, await validateCaMaterial(created, dir), 'created', maxTtl);
      }
    }
    log.info('ca_ready', {
      origin: ca.origin,
      dir,
      trustDomain: ca.trustDomain,
      root: ca.validated.caCert.subject.replace(/\n/g, ', ') || '(empty subject)',
      rootFingerprint: ca.rootFingerprint,
      notAfter: ca.signingNotAfter.toISOString(),
    });
    return ca;
  }

  /** SHA-256 fingerprint of the first root certificate, `AB:CD:...` as openssl prints it. */
  get rootFingerprint(): string {
    return createHash('sha256')
      .update(Buffer.from(this.validated.rootPems[0].replace(/-----[^-]+-----|\s/g, ''), 'base64'))
      .digest('hex')
      .toUpperCase()
      .match(/../g)!
      .join(':');
  }

  /** When the signing certificate (ca-cert.pem) expires: no certificate outlives it. */
  get caNotAfter(): Date {
    return this.signingNotAfter;
  }

  /**
   * Signs a workload CSR. The CSR's own signature must verify and its subject alternative names
   * must be exactly URI SAN(s) equal to `identity` (IdentityMismatchError otherwise; Istio ignores
   * the CSR's names and uses the caller's, Weft refuses so a mistake is visible). The certificate
   * follows Istio's workload certificates: empty subject with a critical URI SAN, digital signature
   * and key encipherment, server and client auth, not a CA.
   */
  async signWorkloadCsr(csrPem: string, options: SignWorkloadOptions): Promise<SignedWorkloadCertificate> {
    const csr = parseCsr(csrPem);
    let signatureValid: boolean;
    try {
      signatureValid = await csr.verify();
    } catch (err) {
      throw new InvalidCsrError(`the CSR's signature cannot be checked: ${(err as Error).message}`);
    }
    if (!signatureValid) throw new InvalidCsrError('the CSR signature does not verify against its own public key');
    const requested = requestedNames(csr);
    const uris = requested.filter((n) => n.type === 'url').map((n) => n.value);
    const others = requested.filter((n) => n.type !== 'url').map((n) => `${n.type.toUpperCase()}:${n.value}`);
    if (uris.length === 0 || others.length > 0 || uris.some((u) => u !== options.identity)) {
      throw new IdentityMismatchError([...uris, ...others], options.identity);
    }
    const now = Date.now();
    const ttlMs = Math.min(options.ttlSeconds, this.maxWorkloadCertTtlSeconds) * 1000;
    const notAfter = wholeSeconds(Math.min(now + ttlMs, this.signingNotAfter.getTime()));
    const certificate = await this.issue({
      publicKey: csr.publicKey,
      notBefore: wholeSeconds(now - CLOCK_SKEW_MS),
      notAfter,
      names: [{ type: 'url', value: options.identity }],
    });
    return {
      certChain: [certificate.toString('pem') + '\n', ...this.chainTail],
      identity: options.identity,
      serialNumber: certificate.serialNumber,
      notAfter,
    };
  }

  /** A fresh key and certificate for the control plane's own TLS port (15012). */
  async issueServerCertificate(options: ServerCertificateOptions): Promise<IssuedServerCertificate> {
    const keys = await generateEcKeyPair();
    const now = Date.now();
    const notBefore = wholeSeconds(now - CLOCK_SKEW_MS);
    const notAfter = wholeSeconds(Math.min(now + options.ttlSeconds * 1000, this.signingNotAfter.getTime()));
    const certificate = await this.issue({
      publicKey: keys.publicKey,
      notBefore,
      notAfter,
      names: [...options.dnsNames.map((value) => ({ type: 'dns' as const, value })), ...options.ips.map((value) => ({ type: 'ip' as const, value }))],
    });
    return {
      privateKeyPem: await privateKeyPem(keys.privateKey),
      certChainPem: [certificate.toString('pem') + '\n', ...this.validated.intermediatePems].join(''),
      notBefore,
      notAfter,
    };
  }

  private async issue(leaf: { publicKey: x509.PublicKeyType; notBefore: Date; notAfter: Date; names: x509.JsonGeneralName[] }): Promise<x509.X509Certificate> {
    const { signingKey } = this.validated;
    this.authorityKeyId ??= await x509.AuthorityKeyIdentifierExtension.create(this.validated.caCert.publicKey.export({ type: 'spki', format: 'der' }));
    return x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: '',
      issuer: this.issuerName,
      notBefore: leaf.notBefore,
      notAfter: leaf.notAfter,
      publicKey: leaf.publicKey,
      signingKey: signingKey.privateKey as unknown as CryptoKeyOfX509,
      signingAlgorithm: signingKey.signingAlgorithm,
      extensions: [
        // Critical because the subject is empty (RFC 5280 4.2.1.6), as in Istio's certificates.
        new x509.SubjectAlternativeNameExtension(leaf.names, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.BasicConstraintsExtension(false, undefined, true),
        this.authorityKeyId,
        await x509.SubjectKeyIdentifierExtension.create(leaf.publicKey),
      ],
    });
  }
}

type CryptoKeyOfX509 = x509.X509CertificateCreateWithKeyParams['signingKey'];

function parseCsr(csrPem: string): x509.Pkcs10CertificateRequest {
  if (typeof csrPem !== 'string' || !csrPem.includes('-----BEGIN CERTIFICATE REQUEST-----')) {
    throw new InvalidCsrError('the request carries no PEM CSR (-----BEGIN CERTIFICATE REQUEST-----)');
  }
  try {
    return new x509.Pkcs10CertificateRequest(csrPem);
  } catch (err) {
    throw new InvalidCsrError(`the CSR cannot be parsed: ${(err as Error).message}`);
  }
}

function requestedNames(csr: x509.Pkcs10CertificateRequest): x509.JsonGeneralName[] {
  const names: x509.JsonGeneralName[] = [];
  for (const ext of csr.extensions) {
    if (ext.type !== SAN_OID) continue;
    names.push(...new x509.SubjectAlternativeNameExtension(ext.rawData).names.toJSON());
  }
  return names;
}

/** X.509 times have whole seconds: what the certificate says is what callers are told. */
function wholeSeconds(ms: number): Date {
  return new Date(Math.floor(ms / 1000) * 1000);
}

/** 128 random bits made a positive DER integer with no leading zero byte. */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] & 0x7f) | 0x40;
  return bytes.toString('hex');
}

function safeRead(dir: string): CaMaterial | undefined {
  try {
    return fs.existsSync(dir) ? readCaMaterial(dir) : undefined;
  } catch {
    return undefined;
  }
}

/** Istio's self-signed root: ECDSA P-256, O=<trust domain>, ten years, CA with cert and CRL signing. */
async function createSelfSignedRoot(trustDomain: string): Promise<CaMaterial> {
  const keys = await generateEcKeyPair();
  const now = Date.now();
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ O: [trustDomain] }],
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(now + SELF_SIGNED_ROOT_TTL_SECONDS * 1000),
    keys: keys as unknown as x509.X509CertificateCreateSelfSignedParams['keys'],
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as webcrypto.EcdsaParams,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as unknown as CryptoKeyOfX509),
    ],
  });
  const rootPem = root.toString('pem') + '\n';
  return { caCertPem: rootPem, caKeyPem: await privateKeyPem(keys.privateKey), rootCertPem: rootPem, certChainPem: '' };
}
