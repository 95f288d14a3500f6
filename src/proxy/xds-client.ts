// The proxy's ADS client (state of the world): one bidirectional stream to the control plane
// carrying CDS and LDS (wildcard), then EDS and RDS for the names those reference. Every
// response is handed to the resource handler of its type, which validates and applies it; the
// client ACKs a clean response and NACKs one with errors (all of them, in error_detail), keeping
// the version it had. On stream loss it reconnects with exponential backoff and resubscribes;
// the applied configuration keeps serving in the meantime. Over the control plane's secure port the
// channel is mutual TLS with the workload certificate plus the bootstrap token; a rotated
// certificate is used from the next stream on (the channel is rebuilt when its credentials change).
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../log/logger';
import { decodeResource, envoyProtoRoot, SHORT_TYPE_NAMES, TypeUrl } from '../xds/protos';
import type { Json } from './config/validation';

export interface XdsNode {
  id: string;
  cluster?: string;
  metadata?: Record<string, unknown>;
}

export interface ReceivedResource {
  name: string;
  raw: Json;
}

/** Validates and applies one response's resources; returns every error found (empty: ACK). */
export type ResourceHandler = (version: string, resources: ReceivedResource[]) => Promise<string[]> | string[];

/** How the ADS channel authenticates; absent: plaintext. */
export interface XdsChannelSecurity {
  /**
   * Credentials for the next stream, with a key that changes when they do; undefined while they
   * are not available yet (no workload certificate): the client waits and tries again.
   */
  credentials(): { key: string; credentials: grpc.ChannelCredentials; channelOptions?: grpc.ChannelOptions } | undefined;
  /** Call metadata for each stream (the bootstrap token). */
  metadata(): grpc.Metadata;
}

export interface XdsClientOptions {
  /** host:port of the control plane's ADS. */
  address: string;
  /** TLS and credentials for the channel; absent: plaintext gRPC. */
  security?: XdsChannelSecurity;
  node: XdsNode;
  logger: Logger;
  handlers: Partial<Record<TypeUrl, ResourceHandler>>;
  /** Reconnect backoff (ms): initial and maximum; doubled each failure, with ±20% jitter. */
  backoff?: { initialMs: number; maxMs: number };
  /** Called when the stream goes up or down. */
  onConnectionChange?(connected: boolean): void;
}

interface TypeState {
  /** Subscribed names; undefined: wildcard. */
  names: Set<string> | undefined;
  /** Last accepted (ACKed) version. */
  version: string;
  /** Nonce of the last response received. */
  nonce: string;
  /** Whether this type was requested on the current stream. */
  requested: boolean;
  lastError?: string;
  received: boolean;
}

type AdsStream = grpc.ClientDuplexStream<Json, Json>;

let adsClientConstructor: grpc.ServiceClientConstructor | undefined;

/**
 * The ADS client class, its messages encoded with the Envoy proto root the resources are decoded with
 * (parsing ads.proto a second time through proto-loader cost a fifth of the proxy's start-up).
 */
function adsClientCtor(): grpc.ServiceClientConstructor {
  if (adsClientConstructor) return adsClientConstructor;
  const root = envoyProtoRoot();
  const request = root.lookupType('envoy.service.discovery.v3.DiscoveryRequest');
  const response = root.lookupType('envoy.service.discovery.v3.DiscoveryResponse');
  const toObject = { longs: String, enums: String, defaults: false, oneofs: true } as const;
  adsClientConstructor = grpc.makeGenericClientConstructor(
    {
      StreamAggregatedResources: {
        path: '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
        requestStream: true,
        responseStream: true,
        requestSerialize: (message: Json) => Buffer.from(request.encode(request.fromObject(message)).finish()),
        requestDeserialize: (bytes: Buffer) => request.toObject(request.decode(bytes), toObject) as Json,
        responseSerialize: (message: Json) => Buffer.from(response.encode(response.fromObject(message)).finish()),
        responseDeserialize: (bytes: Buffer) => response.toObject(response.decode(bytes), toObject) as Json,
      },
    },
    'AggregatedDiscoveryService',
  );
  return adsClientConstructor;
}

/** google.protobuf.Struct in the object form protobufjs encodes (camelCase value fields). */
function toStruct(value: Record<string, unknown>): Json {
  const fields: Json = {};
  for (const [k, v] of Object.entries(value)) fields[k] = toValue(v);
  return { fields };
}

function toValue(v: unknown): Json {
  if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toValue) } };
  return { structValue: toStruct(v as Record<string, unknown>) };
}

/** Types subscribed by name (not wildcard) in Envoy's ADS. */
const NAMED_TYPES: ReadonlySet<string> = new Set([TypeUrl.ClusterLoadAssignment, TypeUrl.RouteConfiguration]);

type AdsGrpcClient = grpc.Client & { StreamAggregatedResources(metadata?: grpc.Metadata): AdsStream };

export class XdsClient {
  private client: AdsGrpcClient | null = null;
  /** Key of the credentials `client` was made with. */
  private clientKey: string | undefined;
  private waitingLogged = false;
  private stream: AdsStream | null = null;
  private readonly states = new Map<string, TypeState>();
  private closed = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private backoffMs: number;
  private connected = false;
  /** Responses are processed one at a time, in arrival order. */
  private queue: Promise<void> = Promise.resolve();
  private readonly log: Logger;

  constructor(private readonly options: XdsClientOptions) {
    this.log = options.logger.child({ component: 'xds-client' });
    this.backoffMs = options.backoff?.initialMs ?? 250;
    for (const type of [TypeUrl.Cluster, TypeUrl.Listener]) {
      this.states.set(type, { names: undefined, version: '', nonce: '', requested: false, received: false });
    }
  }

  start(): void {
    this.connect();
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** Per type: subscription, accepted version, last error (for /config_dump and tests). */
  status(): Record<string, { version: string; names?: string[]; lastError?: string; received: boolean }> {
    const out: Record<string, { version: string; names?: string[]; lastError?: string; received: boolean }> = {};
    for (const [type, s] of this.states) {
      out[SHORT_TYPE_NAMES[type as TypeUrl] ?? type] = {
        version: s.version,
        names: s.names ? [...s.names].sort() : undefined,
        lastError: s.lastError,
        received: s.received,
      };
    }
    return out;
  }

  /** Sets the names subscribed for EDS or RDS; sends a request if they changed. */
  subscribe(typeUrl: TypeUrl, names: Iterable<string>): void {
    const next = new Set(names);
    let state = this.states.get(typeUrl);
    if (!state) {
      state = { names: new Set(), version: '', nonce: '', requested: false, received: false };
      this.states.set(typeUrl, state);
    }
    const prev = state.names ?? new Set<string>();
    if (state.requested && prev.size === next.size && [...next].every((n) => prev.has(n))) return;
    state.names = next;
    if (this.stream) this.send(typeUrl, state, undefined);
  }

  /** The gRPC client for the next stream: rebuilt when the channel credentials changed. */
  private channel(): AdsGrpcClient | undefined {
    const security = this.options.security;
    let credentials = grpc.credentials.createInsecure();
    let key = 'insecure';
    let extra: grpc.ChannelOptions = {};
    if (security) {
      const current = security.credentials();
      if (!current) return undefined;
      ({ credentials, key } = current);
      extra = current.channelOptions ?? {};
    }
    if (this.client && this.clientKey === key) return this.client;
    this.client?.close();
    const Ctor = adsClientCtor();
    this.client = new Ctor(this.options.address, credentials, {
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': this.options.backoff?.maxMs ?? 10_000,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      ...extra,
    }) as unknown as AdsGrpcClient;
    this.clientKey = key;
    return this.client;
  }

  private connect(): void {
    if (this.closed) return;
    const client = this.channel();
    if (!client) {
      // mutual TLS needs the workload certificate first; the identity agent is getting it.
      if (!this.waitingLogged) this.log.info('xds_waiting_for_certificate', { address: this.options.address });
      this.waitingLogged = true;
      this.scheduleReconnect();
      return;
    }
    let stream: AdsStream;
    try {
      stream = client.StreamAggregatedResources(this.options.security?.metadata());
    } catch (err) {
      this.log.warn('xds_stream_failed', { error: (err as Error).message, retry_in_ms: this.backoffMs });
      this.scheduleReconnect();
      return;
    }
    this.stream = stream;
    // A new stream starts fresh: nonces of the old one mean nothing to the server; the versions
    // we hold tell it what we already have.
    for (const s of this.states.values()) {
      s.requested = false;
      s.nonce = '';
    }
    stream.on('data', (response: Json) => {
      if (this.stream !== stream) return;
      this.markConnected(true);
      this.backoffMs = this.options.backoff?.initialMs ?? 250;
      this.queue = this.queue.then(() => this.onResponse(stream, response)).catch((err) => this.log.error('xds_response_failed', { error: err }));
    });
    const onEnd = (err?: Error) => {
      if (this.stream !== stream) return;
      this.stream = null;
      this.markConnected(false);
      if (this.closed) return;
      this.log.warn('xds_stream_closed', { error: err?.message, retry_in_ms: this.backoffMs, hint: `is the control plane reachable at ${this.options.address}?` });
      this.scheduleReconnect();
    };
    stream.on('error', (err) => onEnd(err));
    stream.on('end', () => onEnd());
    // Wildcard types first (CDS, then LDS, Envoy's order), then named subscriptions we had.
    for (const type of [TypeUrl.Cluster, TypeUrl.Listener, TypeUrl.ClusterLoadAssignment, TypeUrl.RouteConfiguration]) {
      const state = this.states.get(type);
      if (!state) continue;
      if (NAMED_TYPES.has(type) && (!state.names || state.names.size === 0) && !state.received) continue;
      this.send(type, state, undefined);
    }
  }

  private markConnected(up: boolean): void {
    if (this.connected === up) return;
    this.connected = up;
    if (up) {
      this.waitingLogged = false;
      this.log.info('xds_connected', { address: this.options.address, tls: !!this.options.security });
    }
    this.options.onConnectionChange?.(up);
  }

  /** Connects now if the client is waiting to reconnect (e.g. the certificate it waited for arrived). */
  retryNow(): void {
    if (this.closed || this.stream || !this.retryTimer) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.connect();
  }

  private scheduleReconnect(): void {
    if (this.retryTimer || this.closed) return;
    const jitter = 1 + (Math.random() * 0.4 - 0.2);
    const delay = Math.round(this.backoffMs * jitter);
    this.backoffMs = Math.min(this.backoffMs * 2, this.options.backoff?.maxMs ?? 30_000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, delay);
  }

  private send(typeUrl: string, state: TypeState, errorDetail: string | undefined): void {
    const stream = this.stream;
    if (!stream) return;
    const request: Json = {
      version_info: state.version,
      resource_names: state.names ? [...state.names].sort() : [],
      type_url: typeUrl,
      response_nonce: state.nonce,
    };
    if (!state.requested) {
      // The node goes on the first request of each type on a stream (Envoy sends it once per stream;
      // repeating it per type keeps servers that key on any request happy).
      request.node = {
        id: this.options.node.id,
        cluster: this.options.node.cluster ?? '',
        metadata: toStruct(this.options.node.metadata ?? {}),
        user_agent_name: 'weft',
        user_agent_version: '0.1.0',
      };
    }
    if (errorDetail !== undefined) request.error_detail = { code: 3 /* INVALID_ARGUMENT */, message: errorDetail };
    state.requested = true;
    stream.write(request);
  }

  private async onResponse(stream: AdsStream, response: Json): Promise<void> {
    const typeUrl = String(response.type_url ?? '');
    const version = String(response.version_info ?? '');
    const nonce = String(response.nonce ?? '');
    let state = this.states.get(typeUrl);
    if (!state) {
      state = { names: NAMED_TYPES.has(typeUrl) ? new Set() : undefined, version: '', nonce: '', requested: true, received: false };
      this.states.set(typeUrl, state);
    }
    state.nonce = nonce;
    const handler = this.options.handlers[typeUrl as TypeUrl];
    const errors: string[] = [];
    const resources: ReceivedResource[] = [];
    if (!handler) {
      errors.push(`resource type ${typeUrl} is not supported by the Weft proxy`);
    } else {
      for (const [i, any] of ((response.resources ?? []) as Json[]).entries()) {
        const anyType = String(any.type_url ?? '');
        if (anyType !== typeUrl) {
          errors.push(`resource ${i}: type ${anyType} in a ${typeUrl} response`);
          continue;
        }
        try {
          const raw = decodeResource<Json>(typeUrl, any.value as Uint8Array);
          const name = String(typeUrl === TypeUrl.ClusterLoadAssignment ? raw.cluster_name ?? '' : raw.name ?? '');
          resources.push({ name, raw });
        } catch (err) {
          errors.push(`resource ${i}: cannot decode ${typeUrl}: ${(err as Error).message}`);
        }
      }
      try {
        errors.push(...(await handler(version, resources)));
      } catch (err) {
        errors.push(`applying ${SHORT_TYPE_NAMES[typeUrl as TypeUrl] ?? typeUrl} ${version} failed: ${(err as Error).message}`);
      }
    }
    if (this.stream !== stream) return; // the stream went away while applying
    state.received = true;
    const short = SHORT_TYPE_NAMES[typeUrl as TypeUrl] ?? typeUrl;
    if (errors.length === 0) {
      state.version = version;
      state.lastError = undefined;
      this.log.debug('xds_ack', { type: short, version, resources: resources.length });
      this.send(typeUrl, state, undefined);
    } else {
      const detail = errors.join('; ');
      state.lastError = detail;
      this.log.warn('xds_nack', { type: short, version, rejected_version: version, kept_version: state.version, errors });
      this.send(typeUrl, state, detail);
    }
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const stream = this.stream;
    this.stream = null;
    this.markConnected(false);
    stream?.cancel();
    this.client?.close();
  }
}
