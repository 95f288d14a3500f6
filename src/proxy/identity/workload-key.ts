// The workload's key pair and certificate signing request, made locally so the private key never
// leaves the proxy (istio-agent does the same): ECDSA P-256, and a PKCS#10 CSR whose only identity
// is the URI SAN `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`.
import { webcrypto, X509Certificate } from 'node:crypto';
import { toPem } from '../../ca/pem';
import type { x509 as X509Module } from '../../ca/x509';

export { splitPemCertificates } from '../../ca/pem';

export interface WorkloadKey {
  /** PKCS#8 PEM: what node:tls takes as `key`. */
  privateKeyPem: string;
  /** PEM CSR carrying the identity as its URI SAN. */
  csrPem: string;
}

const EC_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;


/** A fresh key pair and a CSR for `identity`; every rotation gets a new key. */
export async function createWorkloadKey(identity: string): Promise<WorkloadKey> {
  // Loaded when a key is made, not with the proxy: a proxy without an identity never needs it.
  const { x509 } = require('../../ca/x509') as { x509: typeof X509Module };
  const keys = (await webcrypto.subtle.generateKey(EC_ALGORITHM, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    // Istio's CSRs carry no subject; the identity is the SAN alone.
    keys: keys as unknown as Parameters<typeof X509Module.Pkcs10CertificateRequestGenerator.create>[0]['keys'],
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: identity }], true)],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { privateKeyPem: toPem(pkcs8, 'PRIVATE KEY'), csrPem: csr.toString('pem') };
}

/** What operators and rotation need to know about a certificate. */
export interface CertificateFacts {
  /** Upper-case hex, as Envoy's /certs shows it. */
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  uriSans: string[];
  dnsSans: string[];
  subject: string;
}

export function describeCertificate(pem: string | Buffer): CertificateFacts {
  const cert = new X509Certificate(pem);
  const sans = (cert.subjectAltName ?? '').split(/,\s*/).filter(Boolean);
  const of = (prefix: string) => sans.filter((s) => s.startsWith(prefix)).map((s) => s.slice(prefix.length));
  return {
    serialNumber: cert.serialNumber.toUpperCase(),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    uriSans: of('URI:'),
    dnsSans: of('DNS:'),
    subject: (cert.subject ?? '').replace(/\n/g, ','),
  };
}
