// CSRs for tests of the CA: what a proxy's agent sends (a key of its own and a URI SAN), and the
// malformed ones a CA must refuse (another identity, extra names, a broken signature).
import { webcrypto } from 'node:crypto';
import { x509 } from '../../src/ca/x509';
import { toPem } from '../../src/ca/pem';

export interface TestCsr {
  csrPem: string;
  /** PKCS#8 PEM of the key the CSR was made with. */
  keyPem: string;
}

const ALGORITHMS = {
  ec: { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' },
  rsa: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 },
} as const;

type Keys = x509.Pkcs10CertificateRequestCreateParams['keys'];

export async function createWorkloadCsr(o: { uris?: string[]; dns?: string[]; key?: 'ec' | 'rsa'; subject?: string } = {}): Promise<TestCsr> {
  const algorithm = ALGORITHMS[o.key ?? 'ec'];
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as unknown as Keys;
  const names = [...(o.uris ?? []).map((value) => ({ type: 'url' as const, value })), ...(o.dns ?? []).map((value) => ({ type: 'dns' as const, value }))];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    ...(o.subject ? { name: o.subject } : {}),
    keys,
    signingAlgorithm: algorithm,
    extensions: names.length ? [new x509.SubjectAlternativeNameExtension(names)] : [],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey as unknown as webcrypto.CryptoKey);
  return { csrPem: csr.toString('pem') + '\n', keyPem: toPem(pkcs8, 'PRIVATE KEY') };
}

/** The same CSR with the last byte of its signature flipped: well-formed, but not signed by its key. */
export function withBrokenSignature(csrPem: string): string {
  const der = Buffer.from(csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  der[der.length - 1] ^= 0xff;
  return toPem(der, 'CERTIFICATE REQUEST');
}
