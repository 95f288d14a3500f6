// The CA's private key in WebCrypto form. Plugged-in keys come as RSA or EC in PKCS#1, SEC1 or
// PKCS#8 PEM; node:crypto reads all of them and hands WebCrypto a PKCS#8 DER it can import.
import { createPrivateKey, createPublicKey, webcrypto, type KeyObject } from 'node:crypto';
import { toPem } from './pem';

type CryptoKey = webcrypto.CryptoKey;
type SigningAlgorithm = webcrypto.EcdsaParams | webcrypto.RsaHashedImportParams;

export interface SigningKey {
  privateKey: CryptoKey;
  /** SubjectPublicKeyInfo DER of the matching public key, to compare with a certificate's. */
  publicKeySpki: Buffer;
  /** What @peculiar/x509 signs with: ECDSA with the curve's hash, or RSASSA-PKCS1-v1_5 SHA-256. */
  signingAlgorithm: SigningAlgorithm;
}

const EC_CURVES: Record<string, { namedCurve: string; hash: string }> = {
  prime256v1: { namedCurve: 'P-256', hash: 'SHA-256' },
  secp384r1: { namedCurve: 'P-384', hash: 'SHA-384' },
  secp521r1: { namedCurve: 'P-521', hash: 'SHA-512' },
};

/** Throws an Error saying what is wrong with the key (the caller adds the file name). */
export async function importSigningKey(pem: string | KeyObject): Promise<SigningKey> {
  let key: KeyObject;
  try {
    key = typeof pem === 'string' ? createPrivateKey(pem) : pem;
  } catch (err) {
    throw new Error(`not a PEM private key (${(err as Error).message})`);
  }
  const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
  const publicKeySpki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  if (key.asymmetricKeyType === 'rsa') {
    const algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    const privateKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, algorithm, false, ['sign']);
    return { privateKey, publicKeySpki, signingAlgorithm: algorithm };
  }
  if (key.asymmetricKeyType === 'ec') {
    const curve = EC_CURVES[key.asymmetricKeyDetails?.namedCurve ?? ''];
    if (!curve) throw new Error(`EC curve ${key.asymmetricKeyDetails?.namedCurve} is not supported (use P-256, P-384 or P-521)`);
    const privateKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, { name: 'ECDSA', namedCurve: curve.namedCurve }, false, ['sign']);
    return { privateKey, publicKeySpki, signingAlgorithm: { name: 'ECDSA', hash: curve.hash } };
  }
  throw new Error(`${key.asymmetricKeyType} keys are not supported (use RSA or EC)`);
}

/** A new ECDSA P-256 key pair (Istio's default for its self-signed root and workloads), extractable for writing out. */
export function generateEcKeyPair(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
}

export async function privateKeyPem(key: CryptoKey): Promise<string> {
  return toPem(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}
