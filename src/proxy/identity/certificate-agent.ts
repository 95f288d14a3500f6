// The proxy's workload identity agent (istio-agent's part): makes a key and a CSR for its SPIFFE
// identity, asks the control plane's CA for a certificate (IstioCertificateService on the secure
// port, TLS verified against the mesh root, the workload's bootstrap token as `authorization:
// Bearer`, and the current certificate as client certificate when renewing), and keeps `default`
// and `ROOTCA` in the secret store. It renews at about half the lifetime plus jitter; on failure
// it retries with backoff while the previous certificate keeps serving.
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { AUTHORIZATION_METADATA, CaClient, type CreateCertificateRequest, type CreateCertificateResponse } from '../../ca/ca-protocol';
import type { Logger } from '../../log/logger';
import { ROOT_CA_SECRET, WORKLOAD_CERTIFICATE_SECRET } from '../config/common-tls-context';
import type { SecretStore } from './secret-store';
import { createWorkloadKey, describeCertificate, splitPemCertificates } from './workload-key';

/** The control plane certificate's DNS name (Istio's istiod service), for non-IP CA addresses. */
export const CONTROL_PLANE_TLS_NAME = 'istiod.istio-system.svc';

export interface CertificateAgentOptions {
  /** host:port of the CA (the control plane's secure port, 15012). */
  caAddress: string;
  /** The mesh root (PEM file): verifies the CA, and is part of ROOTCA. */
  rootCertPath: string;
  /** The workload's bootstrap token (JWT), re-read for every request. */
  tokenPath: string;
  /** spiffe://<trust domain>/ns/<ns>/sa/<sa>: what the certificate must say. */
  identity: string;
  /** Requested lifetime (the CA may shorten it). */
  ttlSeconds: number;
  store: SecretStore;
  logger: Logger;
  /** Name the CA certificate is checked against; default: the address when it is an IP, else istiod.istio-system.svc. */
  serverName?: string;
  /** Retry backoff after a failed request (ms). Default 1s doubling to 30s, ±20% jitter. */
  backoff?: { initialMs: number; maxMs: number };
  /** Per-request deadline. Default 10s. */
  requestTimeoutMs?: number;
  random?: () => number;
}

export interface AgentStatus {
  state: 'starting' | 'ready' | 'retrying' | 'closed';
  identity: string;
  caAddress: string;
  lastError?: string;
  nextRenewal?: string;
  rotations: number;
}

class CertificateRejected extends Error {}

const MAX_TIMER_MS = 2 ** 31 - 1;

const STARTUP_MAX_BACKOFF_MS = 4_000;

export class CertificateAgent {
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private backoffMs: number;
  private readonly log: Logger;
  private readonly random: () => number;
  private status_: AgentStatus;
  private resolveFirst!: () => void;
  /** Resolves once the first certificate is in the store (never rejects; see status()). */
  readonly firstCertificate: Promise<void>;

  constructor(private readonly options: CertificateAgentOptions) {
    this.log = options.logger.child({ component: 'identity-agent' });
    this.random = options.random ?? Math.random;
    this.backoffMs = options.backoff?.initialMs ?? 1_000;
    this.status_ = { state: 'starting', identity: options.identity, caAddress: options.caAddress, rotations: 0 };
    this.firstCertificate = new Promise((resolve) => (this.resolveFirst = resolve));
  }

  start(): void {
    this.schedule(0);
  }

  status(): AgentStatus {
    return { ...this.status_ };
  }

  close(): void {
    this.closed = true;
    this.status_.state = 'closed';
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(delayMs: number): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    // Node fires longer timers at once; a long-lived certificate is then renewed early instead.
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.renew();
    }, Math.min(Math.max(0, delayMs), MAX_TIMER_MS));
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    const o = this.options;
    try {
      const { certChainPem, privateKeyPem, roots } = await this.requestCertificate();
      if (this.closed) return;
      // ROOTCA first: a peer presenting a certificate from a new root must verify before ours changes.
      o.store.setTrustedCa(ROOT_CA_SECRET, roots);
      const secret = o.store.setCertificate(WORKLOAD_CERTIFICATE_SECRET, certChainPem, privateKeyPem);
      const now = Date.now();
      // Lifetime as seen from here: the CA backdates notBefore for clock skew, so half of
      // (notAfter - notBefore) could already be past.
      const remaining = secret.facts.notAfter.getTime() - now;
      const delay = remaining * (0.5 + 0.1 * this.random());
      this.backoffMs = o.backoff?.initialMs ?? 1_000;
      this.status_ = {
        ...this.status_,
        state: 'ready',
        lastError: undefined,
        nextRenewal: new Date(now + delay).toISOString(),
        rotations: this.status_.rotations + (secret.version > 1 ? 1 : 0),
      };
      this.log.info('certificate_received', {
        identity: o.identity,
        serial: secret.facts.serialNumber,
        not_after: secret.facts.notAfter.toISOString(),
        version: secret.version,
        renew_in_ms: Math.round(delay),
      });
      this.resolveFirst();
      this.schedule(delay);
    } catch (err) {
      if (this.closed) return;
      const message = (err as Error).message;
      const current = o.store.certificate(WORKLOAD_CERTIFICATE_SECRET);
      // Never wait past the current certificate's expiry because of backoff.
      const untilExpiry = current ? current.facts.notAfter.getTime() - Date.now() : Infinity;
      const jitter = 1 + (this.random() * 0.4 - 0.2);
      const delay = Math.max(100, Math.min(this.backoffMs * jitter, untilExpiry > 0 ? untilExpiry / 2 : this.backoffMs));
      // Without any certificate the proxy cannot become ready: keep asking every few seconds
      // (a control plane that starts late should not cost half a minute of backoff).
      const maxMs = o.backoff?.maxMs ?? 30_000;
      this.backoffMs = Math.min(this.backoffMs * 2, current ? maxMs : Math.min(maxMs, STARTUP_MAX_BACKOFF_MS));
      this.status_ = { ...this.status_, state: current ? this.status_.state : 'retrying', lastError: message, nextRenewal: new Date(Date.now() + delay).toISOString() };
      this.log.warn('certificate_request_failed', {
        identity: o.identity,
        ca: o.caAddress,
        error: message,
        retry_in_ms: Math.round(delay),
        hint:
          err instanceof CertificateRejected
            ? 'the CA answered with a certificate the agent cannot use'
            : `is the control plane's secure port reachable at ${o.caAddress}, and is the token at ${o.tokenPath} the workload's?`,
      });
      this.schedule(delay);
    }
  }

  private async requestCertificate(): Promise<{ certChainPem: string; privateKeyPem: string; roots: string }> {
    const o = this.options;
    let root: Buffer;
    try {
      root = fs.readFileSync(o.rootCertPath);
    } catch (err) {
      throw new Error(`cannot read the mesh root certificate ${o.rootCertPath}: ${(err as Error).message}`);
    }
    // Renewing: the current certificate authenticates us too (Istio's agent does the same), as
    // long as it is still valid; then the token is optional.
    const current = o.store.certificate(WORKLOAD_CERTIFICATE_SECRET);
    const presentable = current && current.facts.notAfter.getTime() > Date.now() + 1_000 ? current : undefined;
    let token: string | undefined;
    try {
      token = fs.readFileSync(o.tokenPath, 'utf8').trim();
    } catch (err) {
      if (!presentable) throw new Error(`cannot read the bootstrap token ${o.tokenPath}: ${(err as Error).message}`);
    }
    const { privateKeyPem, csrPem } = await createWorkloadKey(o.identity);
    const credentials = presentable
      ? grpc.credentials.createSsl(root, Buffer.from(presentable.privateKeyPem), Buffer.from(presentable.certChainPem))
      : grpc.credentials.createSsl(root);
    const client = new CaClient(o.caAddress, credentials, caChannelOptions(o.caAddress, o.serverName));
    try {
      const metadata = new grpc.Metadata();
      if (token) metadata.set(AUTHORIZATION_METADATA, `Bearer ${token}`);
      const request: CreateCertificateRequest = { csr: csrPem, validityDuration: o.ttlSeconds };
      const response = await new Promise<CreateCertificateResponse>((resolve, reject) => {
        (client as unknown as {
          CreateCertificate(r: CreateCertificateRequest, m: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: CreateCertificateResponse) => void): void;
        }).CreateCertificate(request, metadata, { deadline: Date.now() + (o.requestTimeoutMs ?? 10_000) }, (err, res) => (err ? reject(new Error(`CreateCertificate: ${err.details || err.message}`)) : resolve(res!)));
      });
      return checkResponse(response, o.identity, privateKeyPem, root.toString('utf8'));
    } finally {
      client.close();
    }
  }
}

/** Channel options that make grpc-js check the CA's certificate against the right name. */
export function caChannelOptions(address: string, serverName?: string): grpc.ChannelOptions {
  const host = address.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  const name = serverName ?? (net.isIP(host) ? undefined : CONTROL_PLANE_TLS_NAME);
  return name ? { 'grpc.ssl_target_name_override': name, 'grpc.default_authority': name } : {};
}

/** The leaf must be for our identity and our key; the root ends the chain (Istio's layout). */
function checkResponse(response: CreateCertificateResponse, identity: string, privateKeyPem: string, fileRoot: string): { certChainPem: string; privateKeyPem: string; roots: string } {
  const pems = (response.certChain ?? []).flatMap((c) => splitPemCertificates(c));
  if (pems.length === 0) throw new CertificateRejected('the CA answered with an empty certificate chain');
  const leaf = describeCertificate(pems[0]);
  if (!leaf.uriSans.includes(identity)) throw new CertificateRejected(`the CA issued a certificate for [${leaf.uriSans.join(', ')}], not ${identity}`);
  if (leaf.notAfter.getTime() <= Date.now()) throw new CertificateRejected(`the CA issued a certificate that expired at ${leaf.notAfter.toISOString()}`);
  const leafKey = new X509Certificate(pems[0]).publicKey.export({ format: 'der', type: 'spki' });
  const ourKey = createPublicKey(createPrivateKey(privateKeyPem)).export({ format: 'der', type: 'spki' });
  if (!Buffer.from(leafKey).equals(Buffer.from(ourKey))) throw new CertificateRejected('the CA issued a certificate for another key than the CSR\'s');
  const chain = pems.length > 1 ? pems.slice(0, -1) : pems;
  const caRoot = pems.length > 1 ? pems[pems.length - 1] : undefined;
  // Trust the file root and the CA's root (they differ during a root rotation).
  const roots = [...new Set([...splitPemCertificates(fileRoot), ...(caRoot ? [caRoot] : [])].map((p) => p.trim() + '\n'))].join('');
  return { certChainPem: chain.join(''), privateKeyPem, roots };
}
