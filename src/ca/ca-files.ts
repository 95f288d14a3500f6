// The CA's key material in Istio's "plug in CA certificates" layout (ca-cert.pem, ca-key.pem,
// root-cert.pem, cert-chain.pem): reading it, checking it is a usable CA, and writing it into the
// state directory. https://istio.io/latest/docs/tasks/security/cert-management/plugin-ca-cert/
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CaFilesError } from './ca-errors';
import { splitPemCertificates } from './pem';
import { ensurePrivateDir, writeFileAtomic } from './private-files';
import { importSigningKey, type SigningKey } from './signing-key';

export const CA_CERT_FILE = 'ca-cert.pem';
export const CA_KEY_FILE = 'ca-key.pem';
export const ROOT_CERT_FILE = 'root-cert.pem';
export const CERT_CHAIN_FILE = 'cert-chain.pem';

/** The four files' contents. `certChainPem` is empty for a self-signed CA (Istio writes none). */
export interface CaMaterial {
  caCertPem: string;
  caKeyPem: string;
  rootCertPem: string;
  certChainPem: string;
}

/** Material that passed validateCaMaterial, parsed. */
export interface ValidatedCa {
  material: CaMaterial;
  caCert: X509Certificate;
  signingKey: SigningKey;
  /** Every trusted root of root-cert.pem (a bundle may hold several), as PEM. */
  rootPems: string[];
  /**
   * PEM certificates between a workload certificate and the root, nearest first: ca-cert.pem and
   * the intermediates above it, in chain order whatever order cert-chain.pem lists them in; empty
   * when ca-cert.pem is itself the root.
   */
  intermediatePems: string[];
}

const REQUIRED = [CA_CERT_FILE, CA_KEY_FILE, ROOT_CERT_FILE] as const;

/**
 * Reads the layout from `dir`: undefined when none of the required files exist (nothing to load),
 * a CaFilesError when only some do (a half-present CA is never silently replaced).
 */
export function readCaMaterial(dir: string): CaMaterial | undefined {
  const present = REQUIRED.filter((f) => fs.existsSync(path.join(dir, f)));
  if (present.length === 0) return undefined;
  const missing = REQUIRED.filter((f) => !present.includes(f));
  if (missing.length > 0) {
    throw new CaFilesError(
      path.join(dir, missing[0]),
      `missing, while ${present.join(', ')} ${present.length === 1 ? 'is' : 'are'} present`,
      `a CA needs ${REQUIRED.join(', ')} (and optionally ${CERT_CHAIN_FILE}); restore the file or move the directory away to start a new CA`,
    );
  }
  const read = (file: string) => {
    try {
      return fs.readFileSync(path.join(dir, file), 'utf8');
    } catch (err) {
      throw new CaFilesError(path.join(dir, file), `cannot be read: ${(err as Error).message}`);
    }
  };
  const chainPath = path.join(dir, CERT_CHAIN_FILE);
  return {
    caCertPem: read(CA_CERT_FILE),
    caKeyPem: read(CA_KEY_FILE),
    rootCertPem: read(ROOT_CERT_FILE),
    certChainPem: fs.existsSync(chainPath) ? read(CERT_CHAIN_FILE) : '',
  };
}

/** Writes the layout into `dir` (made 0700): the key 0600, certificates 0644. */
export function writeCaMaterial(dir: string, material: CaMaterial): void {
  ensurePrivateDir(dir);
  writeFileAtomic(path.join(dir, CA_KEY_FILE), material.caKeyPem, 0o600);
  writeFileAtomic(path.join(dir, CA_CERT_FILE), material.caCertPem, 0o644);
  writeFileAtomic(path.join(dir, CERT_CHAIN_FILE), material.certChainPem, 0o644);
  // The root last: it is what proxies read, so it appears only once the rest is in place.
  writeFileAtomic(path.join(dir, ROOT_CERT_FILE), material.rootCertPem, 0o644);
}

function parseCertificates(text: string, file: string): X509Certificate[] {
  const blocks = splitPemCertificates(text);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new CaFilesError(file, `certificate ${i + 1} cannot be parsed: ${(err as Error).message}`);
    }
  });
}

/**
 * Checks what a CA must satisfy and names the file at fault: the key parses and matches
 * ca-cert.pem, ca-cert.pem is a CA certificate within its validity period, and it chains through
 * cert-chain.pem to a root in root-cert.pem.
 */
export async function validateCaMaterial(material: CaMaterial, dir: string, now = new Date()): Promise<ValidatedCa> {
  const file = (name: string) => path.join(dir, name);
  const caCerts = parseCertificates(material.caCertPem, file(CA_CERT_FILE));
  if (caCerts.length === 0) throw new CaFilesError(file(CA_CERT_FILE), 'holds no PEM certificate');
  const caCert = caCerts[0];
  const roots = parseCertificates(material.rootCertPem, file(ROOT_CERT_FILE));
  if (roots.length === 0) throw new CaFilesError(file(ROOT_CERT_FILE), 'holds no PEM certificate');
  const chain = parseCertificates(material.certChainPem, file(CERT_CHAIN_FILE));

  let signingKey: SigningKey;
  try {
    signingKey = await importSigningKey(material.caKeyPem);
  } catch (err) {
    throw new CaFilesError(file(CA_KEY_FILE), (err as Error).message);
  }
  const certKey = caCert.publicKey.export({ type: 'spki', format: 'der' });
  if (!certKey.equals(signingKey.publicKeySpki)) {
    throw new CaFilesError(file(CA_KEY_FILE), `is not the private key of ${CA_CERT_FILE} (${caCert.subject.replace(/\n/g, ', ')})`, 'the two files must come from the same CA');
  }
  if (!caCert.ca) {
    throw new CaFilesError(file(CA_CERT_FILE), 'is not a CA certificate (basicConstraints CA:TRUE is missing)', 'plug in an intermediate CA certificate, not a workload or server certificate');
  }
  const notAfter = new Date(caCert.validTo);
  if (notAfter.getTime() <= now.getTime()) throw new CaFilesError(file(CA_CERT_FILE), `expired on ${notAfter.toISOString()}`);

  const isRoot = (c: X509Certificate) => roots.some((r) => r.fingerprint256 === c.fingerprint256);
  const issues = (issuer: X509Certificate, subject: X509Certificate) => subject.checkIssued(issuer) && subject.verify(issuer.publicKey);
  const intermediates: X509Certificate[] = [];
  let current = caCert;
  while (!isRoot(current)) {
    intermediates.push(current);
    if (roots.some((r) => issues(r, current))) break;
    const next = chain.find((c) => !intermediates.includes(c) && c.fingerprint256 !== current.fingerprint256 && issues(c, current));
    if (!next || intermediates.length > 8) {
      throw new CaFilesError(
        file(CA_CERT_FILE),
        `does not chain to ${ROOT_CERT_FILE}: no certificate in ${CERT_CHAIN_FILE} or ${ROOT_CERT_FILE} issued "${current.subject.replace(/\n/g, ', ')}" (issuer "${current.issuer.replace(/\n/g, ', ')}")`,
        `${CERT_CHAIN_FILE} must hold the intermediates between ${CA_CERT_FILE} and the root`,
      );
    }
    current = next;
  }
  return {
    material,
    caCert,
    signingKey,
    rootPems: roots.map((r) => r.toString()),
    intermediatePems: intermediates.map((c) => c.toString()),
  };
}
