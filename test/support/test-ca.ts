// A certificate authority for tests, made with @peculiar/x509 in memory: a self-signed root and
// leaf certificates for workloads (URI SAN spiffe://...), servers (DNS/IP SANs) or anything else,
// with chosen lifetimes. Independent of Weft's own CA, so the TLS data path is tested against
// certificates that come from somewhere else.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { x509 } from '../../src/ca/x509';

export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
  /** Upper-case hex. */
  serialNumber: string;
}

export interface TestCa {
  /** The root certificate (PEM): what peers trust. */
  rootPem: string;
  /** A leaf certificate with the given SANs, signed by the root. */
  issue(o: { uris?: string[]; dns?: string[]; ips?: string[]; lifetimeMs?: number; notBefore?: Date; commonName?: string }): Promise<IssuedCertificate>;
  /** A workload certificate for `spiffe://cluster.local/ns/<ns>/sa/<sa>`. */
  issueWorkload(serviceAccount: string, namespace?: string, lifetimeMs?: number): Promise<IssuedCertificate>;
}

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;

type KeyPair = x509.Pkcs10CertificateRequestCreateParams['keys'];

async function keyPair(): Promise<KeyPair> {
  return (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as unknown as KeyPair;
}

async function keyPem(keys: KeyPair): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey as unknown as webcrypto.CryptoKey);
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`;
}

function serial(): string {
  // Positive (high bit clear), 16 bytes, as real CAs make them.
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] &= 0x7f;
  bytes[0] |= 0x10;
  return Buffer.from(bytes).toString('hex');
}

export async function createTestCa(name = 'weft-test-ca'): Promise<TestCa> {
  const rootKeys = await keyPair();
  const now = Date.now();
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${name}, O=weft-tests`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 2 * 24 * 3600_000),
    keys: rootKeys,
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey),
    ],
  });
  const issue: TestCa['issue'] = async (o) => {
    const keys = await keyPair();
    const names: { type: 'url' | 'dns' | 'ip'; value: string }[] = [
      ...(o.uris ?? []).map((value) => ({ type: 'url' as const, value })),
      ...(o.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
      ...(o.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
    ];
    const notBefore = o.notBefore ?? new Date(Date.now() - 60_000);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: o.commonName ? `CN=${o.commonName}` : '',
      issuer: root.subject,
      notBefore,
      notAfter: new Date(Date.now() + (o.lifetimeMs ?? 24 * 3600_000)),
      publicKey: keys.publicKey,
      signingKey: rootKeys.privateKey,
      signingAlgorithm: SIGN,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        ...(names.length ? [new x509.SubjectAlternativeNameExtension(names, !o.commonName)] : []),
        await x509.AuthorityKeyIdentifierExtension.create(rootKeys.publicKey),
      ],
    });
    return { certPem: cert.toString('pem') + '\n', keyPem: await keyPem(keys), serialNumber: cert.serialNumber.toUpperCase() };
  };
  return {
    rootPem: root.toString('pem') + '\n',
    issue,
    issueWorkload: (sa, ns = 'default', lifetimeMs) => issue({ uris: [`spiffe://cluster.local/ns/${ns}/sa/${sa}`], lifetimeMs }),
  };
}
