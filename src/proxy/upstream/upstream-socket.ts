// Opening one upstream connection for a connection pool: TCP with the cluster's keep-alive, or TLS
// with the material resolved for this very connection (so a rotated certificate is used from the
// next connection on) and the session resumed when the material is unchanged; bounded by the
// cluster's connect timeout. The pools own the socket from then on.
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { TcpKeepaliveSettings } from '../config/model';
import type { UpstreamTlsSettings } from '../config/upstream-tls';
import { SecureContextCache, type ClientTls } from '../identity/secure-contexts';
import { UpstreamFailure } from './upstream-call';

export interface SocketSettings {
  connectTimeoutMs: number;
  tcpKeepalive?: TcpKeepaliveSettings;
  tls?: UpstreamTlsSettings;
  contexts?: SecureContextCache;
}

const NO_SECRETS = new SecureContextCache(undefined);

/** TLS material for a new connection now; a missing SDS secret is a connection failure (UF). */
export function upstreamClientTls(t: UpstreamTlsSettings, contexts: SecureContextCache | undefined): ClientTls {
  try {
    return (contexts ?? NO_SECRETS).client(t);
  } catch (err) {
    throw new UpstreamFailure('connect-failure', `TLS error: ${(err as Error).message}`, true);
  }
}

/** The last TLS session per material version, so reconnects resume instead of a full handshake. */
export class TlsSessionCache {
  private key = '';
  private session: Buffer | undefined;

  get(materialKey: string): Buffer | undefined {
    return materialKey === this.key ? this.session : undefined;
  }

  set(materialKey: string, session: Buffer): void {
    this.key = materialKey;
    this.session = session;
  }
}

export interface PendingSocket {
  /** Gives up on a connection still being made (the callback is not called). */
  cancel(): void;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Node's and OpenSSL's codes for a failed handshake ("transport failure reason: TLS error"). */
export const TLS_ERROR = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED|SELF_SIGNED_CERT|HOSTNAME_MISMATCH)/;

/**
 * Connects to `address:port`; `done` gets the connected (TLS: handshaken) socket or an
 * UpstreamFailure of kind connect-failure. `alpn` is what this pool speaks (`http/1.1` or `h2`):
 * the pool decides, not the cluster's ALPN list, exactly as Envoy's HTTP connection pools do.
 */
export function connectUpstream(
  address: string,
  port: number,
  settings: SocketSettings,
  alpn: string,
  sessions: TlsSessionCache | undefined,
  done: (err: UpstreamFailure | null, socket: net.Socket | null, timedOut: boolean) => void,
): PendingSocket {
  let material: ClientTls | undefined;
  if (settings.tls) {
    try {
      material = upstreamClientTls(settings.tls, settings.contexts);
    } catch (err) {
      queueMicrotask(() => done(err as UpstreamFailure, null, false));
      return { cancel: () => undefined };
    }
  }
  let finished = false;
  const socket: net.Socket = material
    ? tls.connect({
        ...material.options,
        host: address,
        port,
        ALPNProtocols: [alpn],
        session: sessions?.get(material.key),
      })
    : net.connect({ host: address, port });
  socket.setNoDelay(true);
  const ka = settings.tcpKeepalive;
  // Node sets the idle time before the first probe; probe count and interval stay the OS's.
  if (ka) socket.setKeepAlive(true, ka.timeSeconds > 0 ? ka.timeSeconds * 1000 : 0);
  if (material && sessions) {
    const key = material.key;
    socket.on('session', (s: Buffer) => sessions.set(key, s));
  }
  const timeoutMs = settings.connectTimeoutMs > 0 ? settings.connectTimeoutMs : DEFAULT_CONNECT_TIMEOUT_MS;
  const timer = setTimeout(() => fail(new UpstreamFailure('connect-failure', `connect timeout after ${timeoutMs}ms`, true), true), timeoutMs);
  const onError = (err: NodeJS.ErrnoException) => {
    const code = err.code ?? '';
    const tlsFailure = material && (TLS_ERROR.test(code) || code === 'EPROTO');
    fail(new UpstreamFailure('connect-failure', tlsFailure ? `TLS error: ${code || 'handshake'}: ${err.message}` : `${code || err.name}: ${err.message}`, true), false);
  };
  const onClose = () => fail(new UpstreamFailure('connect-failure', 'connection closed during connect', true), false);
  socket.once('error', onError);
  socket.once('close', onClose);
  socket.once(material ? 'secureConnect' : 'connect', () => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.off('error', onError);
    socket.off('close', onClose);
    done(null, socket, false);
  });

  /** Gives the attempt up once: false when it already ended. */
  function abandon(): boolean {
    if (finished) return false;
    finished = true;
    clearTimeout(timer);
    socket.off('close', onClose);
    socket.on('error', () => undefined);
    socket.destroy();
    return true;
  }

  function fail(failure: UpstreamFailure, timedOut: boolean): void {
    if (abandon()) done(failure, null, timedOut);
  }

  return { cancel: () => void abandon() };
}
