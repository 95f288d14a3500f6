// TLS termination for one filter chain's DownstreamTlsContext. A node:tls Server that never
// listens: the listener hands it connections after choosing the chain from the ClientHello (the
// bytes are still in the socket's buffer), and it does the handshake, the client-certificate
// check and ALPN. Its secure context is swapped when an SDS secret rotates, at the next
// connection, so open connections keep theirs and nothing is rebuilt.
import type * as net from 'node:net';
import * as tls from 'node:tls';
import { subjectAltNamesMatch } from '../config/common-tls-context';
import type { DownstreamTlsSettings } from '../config/downstream-tls';
import type { SecureContextCache } from '../identity/secure-contexts';

/** What went wrong with downstream TLS, for stats and logs (Envoy's ssl.* counters). */
export interface DownstreamTlsStats {
  handshakes: number;
  /** Handshakes that resumed a session (TLS 1.3 tickets). */
  sessionReused: number;
  connectionErrors: number;
  /** Client gave no certificate where one was required. */
  noCertificate: number;
  /** Client certificate did not verify, or its SANs did not match. */
  verifyErrors: number;
  /** The certificate or CA (SDS) was not available yet. */
  secretNotReady: number;
}

export function newDownstreamTlsStats(): DownstreamTlsStats {
  return { handshakes: 0, sessionReused: 0, connectionErrors: 0, noCertificate: 0, verifyErrors: 0, secretNotReady: 0 };
}

const HANDSHAKE_TIMEOUT_MS = 15_000;

export class TlsTerminator {
  private readonly server: tls.Server;
  private contextKey: string | undefined;

  constructor(
    private readonly settings: DownstreamTlsSettings,
    private readonly contexts: SecureContextCache,
    private readonly stats: DownstreamTlsStats,
    /** The handshake succeeded and the client passed every check; `raw` is the socket handed in. */
    onSecure: (socket: tls.TLSSocket, raw: net.Socket) => void,
  ) {
    const alpn = settings.alpn;
    this.server = tls.createServer({
      // A client certificate is asked for whenever there is a CA to check it against; required
      // only with require_client_certificate (OpenSSL then fails the handshake without one).
      requestCert: !!(settings.ca || settings.validationSecret || settings.systemRoots),
      rejectUnauthorized: settings.requireClientCertificate,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      // Envoy (BoringSSL) goes on without ALPN when nothing overlaps; OpenSSL in node would fail
      // the handshake, and Envoy clients offer Istio's own names (istio-http/1.1, istio). The
      // bytes are sniffed after decryption anyway, so acknowledging the client's first choice is
      // the closest node can come.
      ...(alpn.length ? { ALPNCallback: ({ protocols }: { protocols: string[] }) => alpn.find((p) => protocols.includes(p)) ?? protocols[0] } : {}),
    });
    this.server.on('secureConnection', (socket: tls.TLSSocket) => {
      this.stats.handshakes++;
      if (socket.isSessionReused()) this.stats.sessionReused++;
      socket.on('error', () => undefined);
      if (!this.clientAccepted(socket)) {
        this.stats.verifyErrors++;
        socket.destroy();
        return;
      }
      // The raw socket carries the connection's facts (destination, ClientHello); node keeps it as
      // the TLS socket's `_parent`.
      onSecure(socket, (socket as unknown as { _parent: net.Socket })._parent);
    });
    this.server.on('tlsClientError', (err: Error & { code?: string }) => {
      if (err.code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE') this.stats.noCertificate++;
      else this.stats.connectionErrors++;
    });
  }

  /**
   * A presented certificate must verify even where none is required (Envoy's rule), and match the
   * configured SANs when there are any. Node verifies after the handshake; an unverified required
   * certificate never gets here (node destroys the socket itself).
   */
  private clientAccepted(socket: tls.TLSSocket): boolean {
    const peer = socket.getPeerCertificate();
    const presented = !!peer && Object.keys(peer).length > 0;
    if (!presented) return !this.settings.requireClientCertificate;
    if (!socket.authorized) return false;
    return subjectAltNamesMatch(this.settings.subjectAltNames, peer.subjectaltname);
  }

  /**
   * Starts the handshake on `raw` (its ClientHello still unread or unshifted). False when the
   * certificate or CA is not available (the caller closes the connection, as Envoy does while
   * its secrets are warming).
   */
  accept(raw: net.Socket): boolean {
    let material;
    try {
      material = this.contexts.server(this.settings);
    } catch {
      this.stats.secretNotReady++;
      return false;
    }
    if (material.key !== this.contextKey) {
      this.server.setSecureContext(material.options);
      this.contextKey = material.key;
    }
    this.server.emit('connection', raw);
    return true;
  }
}
