// Compiled TLS settings + the secret store -> what node:tls needs for one handshake. A SecureContext
// is built once per (settings, secret versions) and reused by every connection until a secret is
// rotated; the next handshake then builds the new one. Nothing is rebuilt on the config side and
// open connections keep the context they were made with.
import * as tls from 'node:tls';
import type { CommonTlsSettings, SdsSecretRef } from '../config/common-tls-context';
import type { DownstreamTlsSettings } from '../config/downstream-tls';
import { serverIdentityCheck, verifiesServer, type UpstreamTlsSettings } from '../config/upstream-tls';
import type { SecretStore } from './secret-store';

/** A TLS setting names an SDS secret that is not (yet) available. */
export class SecretNotReadyError extends Error {
  readonly code = 'WEFT_SDS_SECRET_NOT_READY';
  constructor(readonly secret: string) {
    super(`SDS secret "${secret}" is not available yet (hint: has the identity agent got its certificate from the CA? see /certs and the proxy log)`);
  }
}

export interface ClientTls {
  /** Changes whenever the material changes (secret versions); equal keys mean the same options. */
  key: string;
  options: tls.ConnectionOptions;
}

export interface ServerTls {
  key: string;
  /** For tls.Server#setSecureContext / tls.createServer. */
  options: tls.SecureContextOptions;
}

interface Material {
  cert?: Buffer | string;
  key?: Buffer | string;
  ca?: Buffer | string;
  version: string;
}

export class SecureContextCache {
  private readonly clients = new WeakMap<UpstreamTlsSettings, ClientTls>();
  private readonly servers = new WeakMap<DownstreamTlsSettings, ServerTls>();

  constructor(private readonly secrets: SecretStore | undefined) {}

  /** Whether every secret `t` names is present now. */
  ready(t: CommonTlsSettings): boolean {
    try {
      this.material(t);
      return true;
    } catch {
      return false;
    }
  }

  private secretVersion(ref: SdsSecretRef | undefined): number {
    if (!ref) return 0;
    const s = ref.name && this.secrets ? this.secrets.certificate(ref.name) ?? this.secrets.validation(ref.name) : undefined;
    if (!s) throw new SecretNotReadyError(ref.name);
    return s.version;
  }

  /** The certificate, key and CA for `t` at the current secret versions. Throws SecretNotReadyError. */
  private material(t: CommonTlsSettings): Material {
    const certVersion = this.secretVersion(t.certificateSecret);
    const caVersion = this.secretVersion(t.validationSecret);
    const out: Material = { cert: t.cert, key: t.key, ca: t.ca, version: `${certVersion}/${caVersion}` };
    if (t.certificateSecret) {
      const s = this.secrets!.certificate(t.certificateSecret.name)!;
      out.cert = s.certChainPem;
      out.key = s.privateKeyPem;
    }
    if (t.validationSecret) out.ca = this.secrets!.validation(t.validationSecret.name)!.trustedCaPem;
    return out;
  }

  /** Options for a new upstream connection now. Throws SecretNotReadyError. */
  client(t: UpstreamTlsSettings): ClientTls {
    const cached = this.clients.get(t);
    // File-only settings never change; SDS ones are re-checked against the store's versions.
    if (cached && (!t.certificateSecret && !t.validationSecret ? true : cached.key === this.currentKey(t))) return cached;
    const m = this.material(t);
    const secureContext = tls.createSecureContext({ cert: m.cert, key: m.key, ca: m.ca, minVersion: t.minVersion, maxVersion: t.maxVersion });
    const next: ClientTls = {
      key: m.version,
      options: {
        secureContext,
        servername: t.sni,
        rejectUnauthorized: verifiesServer(t),
        ALPNProtocols: t.alpn.length ? [...t.alpn] : undefined,
        checkServerIdentity: serverIdentityCheck(t),
      },
    };
    this.clients.set(t, next);
    return next;
  }

  /** Secure context options for terminating `t` now. Throws SecretNotReadyError. */
  server(t: DownstreamTlsSettings): ServerTls {
    const cached = this.servers.get(t);
    if (cached && (!t.certificateSecret && !t.validationSecret ? true : cached.key === this.currentKey(t))) return cached;
    const m = this.material(t);
    const next: ServerTls = { key: m.version, options: { cert: m.cert, key: m.key, ca: m.ca, minVersion: t.minVersion, maxVersion: t.maxVersion } };
    this.servers.set(t, next);
    return next;
  }

  private currentKey(t: CommonTlsSettings): string {
    return `${this.secretVersion(t.certificateSecret)}/${this.secretVersion(t.validationSecret)}`;
  }
}
