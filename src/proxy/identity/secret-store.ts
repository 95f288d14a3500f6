// The proxy's SDS secrets, as istio-agent serves them to Envoy: `default` (the workload certificate
// chain and its private key) and `ROOTCA` (the CAs peers must chain to). Each secret has a version
// that changes when it is replaced; `update` events tell listeners and readiness checks. Compiled
// TLS settings only name secrets; handshakes look them up here (see secure-contexts.ts).
import { EventEmitter } from 'node:events';
import { ROOT_CA_SECRET, WORKLOAD_CERTIFICATE_SECRET } from '../config/common-tls-context';
import { describeCertificate, splitPemCertificates, type CertificateFacts } from './workload-key';

export interface CertificateSecret {
  kind: 'certificate';
  name: string;
  /** PEM, leaf first. */
  certChainPem: string;
  privateKeyPem: string;
  /** The leaf certificate. */
  facts: CertificateFacts;
  /** Increases by one on every replacement (starts at 1). */
  version: number;
  lastUpdated: Date;
}

export interface ValidationSecret {
  kind: 'validation';
  name: string;
  /** PEM bundle of trusted CAs. */
  trustedCaPem: string;
  facts: CertificateFacts[];
  version: number;
  lastUpdated: Date;
}

export type Secret = CertificateSecret | ValidationSecret;

export interface SecretStoreEvents {
  update: [name: string];
}

export class SecretStore extends EventEmitter<SecretStoreEvents> {
  private readonly secrets = new Map<string, Secret>();

  /** @param served names this store will ever hold (what config may reference). */
  constructor(readonly served: readonly string[] = [WORKLOAD_CERTIFICATE_SECRET, ROOT_CA_SECRET]) {
    super();
  }

  serves(name: string): boolean {
    return this.served.includes(name);
  }

  /** Replaces a certificate secret; the previous one serves until this call. */
  setCertificate(name: string, certChainPem: string, privateKeyPem: string): CertificateSecret {
    const certs = splitPemCertificates(certChainPem);
    if (certs.length === 0) throw new Error(`secret "${name}": no certificate in the chain`);
    const previous = this.secrets.get(name);
    const secret: CertificateSecret = {
      kind: 'certificate',
      name,
      certChainPem: certs.join(''),
      privateKeyPem,
      facts: describeCertificate(certs[0]),
      version: (previous?.version ?? 0) + 1,
      lastUpdated: new Date(),
    };
    this.secrets.set(name, secret);
    this.emit('update', name);
    return secret;
  }

  /** Replaces a validation secret (trusted CAs); unchanged content keeps its version. */
  setTrustedCa(name: string, trustedCaPem: string): ValidationSecret {
    const certs = splitPemCertificates(trustedCaPem);
    if (certs.length === 0) throw new Error(`secret "${name}": no CA certificate`);
    const previous = this.secrets.get(name);
    const pem = certs.join('');
    if (previous?.kind === 'validation' && previous.trustedCaPem === pem) return previous;
    const secret: ValidationSecret = {
      kind: 'validation',
      name,
      trustedCaPem: pem,
      facts: certs.map((c) => describeCertificate(c)),
      version: (previous?.version ?? 0) + 1,
      lastUpdated: new Date(),
    };
    this.secrets.set(name, secret);
    this.emit('update', name);
    return secret;
  }

  certificate(name: string): CertificateSecret | undefined {
    const s = this.secrets.get(name);
    return s?.kind === 'certificate' ? s : undefined;
  }

  validation(name: string): ValidationSecret | undefined {
    const s = this.secrets.get(name);
    return s?.kind === 'validation' ? s : undefined;
  }

  has(name: string): boolean {
    return this.secrets.has(name);
  }

  all(): Secret[] {
    return [...this.secrets.values()];
  }
}

/**
 * Envoy's SecretsConfigDump for /config_dump. Private keys never leave the process: they show as
 * "[redacted]", as Envoy prints them.
 */
export function secretsConfigDump(store: SecretStore | undefined): unknown {
  const secrets = store?.all() ?? [];
  const SECRET_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
  return {
    '@type': 'type.googleapis.com/envoy.admin.v3.SecretsConfigDump',
    dynamic_active_secrets: secrets.map((s) => ({
      name: s.name,
      version_info: String(s.version),
      last_updated: s.lastUpdated.toISOString(),
      secret:
        s.kind === 'certificate'
          ? {
              '@type': SECRET_TYPE,
              name: s.name,
              tls_certificate: {
                certificate_chain: { inline_bytes: Buffer.from(s.certChainPem).toString('base64') },
                private_key: { inline_string: '[redacted]' },
              },
            }
          : {
              '@type': SECRET_TYPE,
              name: s.name,
              validation_context: { trusted_ca: { inline_bytes: Buffer.from(s.trustedCaPem).toString('base64') } },
            },
    })),
  };
}

function certificateDetails(f: CertificateFacts, path: string): unknown {
  const daysLeft = Math.floor((f.notAfter.getTime() - Date.now()) / 86_400_000);
  return {
    path,
    serial_number: f.serialNumber.toLowerCase(),
    subject_alt_names: [...f.uriSans.map((uri) => ({ uri })), ...f.dnsSans.map((dns) => ({ dns }))],
    days_until_expiration: String(Math.max(0, daysLeft)),
    valid_from: f.notBefore.toISOString(),
    expiration_time: f.notAfter.toISOString(),
  };
}

/** Envoy's /certs: per certificate in use, its CA certificates and its chain. */
export function certsView(store: SecretStore | undefined): unknown {
  const root = store?.validation(ROOT_CA_SECRET);
  const certificates = (store?.all() ?? [])
    .filter((s): s is CertificateSecret => s.kind === 'certificate')
    .map((s) => ({
      ca_cert: root ? root.facts.map((f) => certificateDetails(f, `<sds ${root.name}>`)) : [],
      cert_chain: [certificateDetails(s.facts, `<sds ${s.name}>`)],
    }));
  return { certificates };
}
