// A raw ADS (state-of-the-world xDS v3) client for tests: its own codec from @grpc/proto-loader,
// ACKs or NACKs each response on command, records everything, and can follow CDS->EDS and LDS->RDS
// dependencies the way Envoy does.
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { decodeResource, PROTO_INCLUDE_DIRS, TypeUrl } from '../../src/xds/protos';

const packageDefinition = protoLoader.loadSync('envoy/service/discovery/v3/ads.proto', {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
  includeDirs: PROTO_INCLUDE_DIRS,
});
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const adsPackage = grpc.loadPackageDefinition(packageDefinition) as any;
const AdsServiceClient: grpc.ServiceClientConstructor = adsPackage.envoy.service.discovery.v3.AggregatedDiscoveryService;

type EnvoyJson = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface ReceivedResponse {
  typeUrl: string;
  version: string;
  nonce: string;
  /** Resources decoded to Envoy's JSON form, in the order received. */
  resources: EnvoyJson[];
  names: string[];
  /** Encoded size of the resources. */
  bytes: number;
  receivedAt: number;
  /** What this client answered. */
  answer: 'ACK' | 'NACK';
}

export interface SentRequest {
  typeUrl: string;
  version: string;
  nonce: string;
  resourceNames: string[];
  errorMessage?: string;
}

export interface AdsTestClientOptions {
  /** host:port of the ADS server. */
  address: string;
  node: { id: string; metadata?: Record<string, unknown> };
  /**
   * Behave like Envoy: subscribe to all clusters and listeners, then to the endpoints of EDS
   * clusters and the routes listeners reference. Default true.
   */
  followDependencies?: boolean;
  /** Return an error message to NACK a response, undefined to ACK it. Default: ACK everything. */
  judge?: (response: Omit<ReceivedResponse, 'answer'>) => string | undefined;
  /** Use a TCP connection of its own (default true), as separate proxies would. */
  ownConnection?: boolean;
  /** version_info of the first request per type, as a reconnecting Envoy sends the version it runs. */
  initialVersionInfo?: string;
  /** Channel credentials (TLS, client certificate, call credentials); default plaintext. */
  credentials?: grpc.ChannelCredentials;
}

interface TypeState {
  names: string[];
  /** version_info to send: the version last accepted (or the one resumed from). */
  versionInfo: string;
  lastNonce: string;
  /** The last response ACKed on this stream. */
  acceptedResponse?: ReceivedResponse;
  accepted: Map<string, EnvoyJson>;
}

export interface AdsTestClientEvents {
  response: [ReceivedResponse];
  error: [Error];
  end: [];
}

export class AdsTestClient extends EventEmitter<AdsTestClientEvents> {
  readonly responses: ReceivedResponse[] = [];
  readonly requests: SentRequest[] = [];
  private readonly types = new Map<string, TypeState>();
  private readonly nackQueue = new Map<string, string[]>();
  private client: grpc.Client;
  private stream: grpc.ClientDuplexStream<unknown, unknown>;
  private nodeSent = false;
  private ended = false;
  streamError?: Error;

  constructor(private readonly options: AdsTestClientOptions) {
    super();
    this.setMaxListeners(0);
    this.client = new AdsServiceClient(options.address, options.credentials ?? grpc.credentials.createInsecure(), {
      ...(options.ownConnection === false ? {} : { 'grpc.use_local_subchannel_pool': 1 }),
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
    });
    this.stream = this.openStream();
    if (options.followDependencies !== false) {
      this.subscribe(TypeUrl.Cluster, []);
      this.subscribe(TypeUrl.Listener, []);
    }
  }

  private openStream(): grpc.ClientDuplexStream<unknown, unknown> {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const stream = (this.client as any).StreamAggregatedResources() as grpc.ClientDuplexStream<unknown, unknown>;
    stream.on('data', (message: EnvoyJson) => this.onResponse(message));
    stream.on('error', (err: Error) => {
      this.streamError = err;
      if (!this.ended) this.emit('error', err);
    });
    stream.on('end', () => {
      this.ended = true;
      this.emit('end');
    });
    return stream;
  }

  /** Sends a request for `typeUrl` with these names: a new subscription or a changed one. */
  subscribe(typeUrl: string, names: readonly string[]): void {
    const state = this.stateOf(typeUrl);
    state.names = [...names];
    this.send({ typeUrl, version: state.versionInfo, nonce: state.lastNonce, resourceNames: state.names });
  }

  /** NACKs the next response of `typeUrl` with `message` (once). */
  nackNext(typeUrl: string, message: string): void {
    const queue = this.nackQueue.get(typeUrl) ?? [];
    queue.push(message);
    this.nackQueue.set(typeUrl, queue);
  }

  /** Resources of the last ACKed response of the type, by name. */
  accepted(typeUrl: string): Map<string, EnvoyJson> {
    return this.types.get(typeUrl)?.accepted ?? new Map();
  }

  /** Version of the last response ACKed on this stream ('' before any). */
  acceptedVersion(typeUrl: string): string {
    return this.types.get(typeUrl)?.acceptedResponse?.version ?? '';
  }

  responsesOf(typeUrl: string): ReceivedResponse[] {
    return this.responses.filter((r) => r.typeUrl === typeUrl);
  }

  /** Resolves with the first response (already received at index >= `from`, or future) matching. */
  waitForResponse(
    match: (r: ReceivedResponse) => boolean,
    options: { from?: number; timeoutMs?: number; message?: string } = {},
  ): Promise<ReceivedResponse> {
    const existing = this.responses.slice(options.from ?? 0).find(match);
    if (existing) return Promise.resolve(existing);
    const timeoutMs = options.timeoutMs ?? 5000;
    return new Promise((resolve, reject) => {
      const onResponse = (r: ReceivedResponse) => {
        if (!match(r)) return;
        clearTimeout(timer);
        this.off('response', onResponse);
        resolve(r);
      };
      const timer = setTimeout(() => {
        this.off('response', onResponse);
        const seen = this.responses.map((r) => `${typeShort(r.typeUrl)}@${r.version}`).join(', ');
        reject(new Error(`${this.options.node.id}: no matching response within ${timeoutMs}ms${options.message ? ` (${options.message})` : ''}; received: ${seen || 'nothing'}`));
      }, timeoutMs);
      this.on('response', onResponse);
    });
  }

  /** True when every subscribed type has accepted `version`. */
  hasAccepted(version: string, typeUrls: readonly string[] = [...this.types.keys()]): boolean {
    return typeUrls.every((t) => this.acceptedVersion(t) === version);
  }

  /** Half-closes and cancels the stream and closes the channel. */
  close(): void {
    this.ended = true;
    try {
      this.stream.cancel();
    } catch {
      // already closed
    }
    this.client.close();
  }

  private stateOf(typeUrl: string): TypeState {
    let state = this.types.get(typeUrl);
    if (!state) {
      state = { names: [], versionInfo: this.options.initialVersionInfo ?? '', lastNonce: '', accepted: new Map() };
      this.types.set(typeUrl, state);
    }
    return state;
  }

  private send(request: SentRequest): void {
    if (this.ended) return;
    this.requests.push(request);
    const message: EnvoyJson = {
      type_url: request.typeUrl,
      version_info: request.version,
      response_nonce: request.nonce,
      resource_names: request.resourceNames,
    };
    if (request.errorMessage !== undefined) message.error_detail = { code: grpc.status.INVALID_ARGUMENT, message: request.errorMessage };
    if (!this.nodeSent) {
      message.node = { id: this.options.node.id, metadata: toStruct(this.options.node.metadata ?? {}) };
      this.nodeSent = true;
    }
    this.stream.write(message);
  }

  private onResponse(message: EnvoyJson): void {
    const typeUrl: string = message.type_url;
    const anys: { type_url: string; value: Buffer }[] = message.resources ?? [];
    const resources = anys.map((a) => decodeResource<EnvoyJson>(a.type_url, a.value));
    const received: Omit<ReceivedResponse, 'answer'> = {
      typeUrl,
      version: message.version_info ?? '',
      nonce: message.nonce ?? '',
      resources,
      names: resources.map(resourceName),
      bytes: anys.reduce((n, a) => n + a.value.length, 0),
      receivedAt: Date.now(),
    };
    const state = this.stateOf(typeUrl);
    state.lastNonce = received.nonce;
    const queued = this.nackQueue.get(typeUrl)?.shift();
    const rejection = queued ?? this.options.judge?.(received);
    const response: ReceivedResponse = { ...received, answer: rejection === undefined ? 'ACK' : 'NACK' };
    this.responses.push(response);
    if (rejection !== undefined) {
      this.send({ typeUrl, version: state.versionInfo, nonce: received.nonce, resourceNames: state.names, errorMessage: rejection });
    } else {
      state.versionInfo = received.version;
      state.acceptedResponse = response;
      // Like Envoy: a Listener or Cluster response is the whole set; an EDS or RDS response may
      // carry only what changed, and the resources it leaves out (still subscribed) are kept.
      const keep = typeUrl === TypeUrl.ClusterLoadAssignment || typeUrl === TypeUrl.RouteConfiguration;
      const accepted = new Map(keep ? [...state.accepted].filter(([n]) => state.names.includes(n)) : []);
      for (const r of resources) accepted.set(resourceName(r), r);
      state.accepted = accepted;
      this.send({ typeUrl, version: received.version, nonce: received.nonce, resourceNames: state.names });
      if (this.options.followDependencies !== false) this.followDependencies(typeUrl, resources);
    }
    this.emit('response', response);
  }

  /** Envoy's dependency walk: EDS names from EDS clusters, RDS names from HTTP connection managers. */
  private followDependencies(typeUrl: string, resources: EnvoyJson[]): void {
    let wanted: string[] | undefined;
    let dependent: string | undefined;
    if (typeUrl === TypeUrl.Cluster) {
      dependent = TypeUrl.ClusterLoadAssignment;
      wanted = resources.filter((c) => c.type === 'EDS').map((c) => c.eds_cluster_config?.service_name || c.name);
    } else if (typeUrl === TypeUrl.Listener) {
      dependent = TypeUrl.RouteConfiguration;
      wanted = resources.flatMap(routeNamesOfListener);
    }
    if (!dependent || !wanted) return;
    const names = [...new Set(wanted)].sort();
    const current = this.types.get(dependent);
    if (current && sameNames(current.names, names)) return;
    if (!current && names.length === 0) return;
    this.subscribe(dependent, names);
  }
}

/**
 * google.protobuf.Struct in the object form proto-loader encodes. protobufjs defines the
 * well-known types with camelCase field names (stringValue), whatever keepCase says.
 */
function toStruct(map: Record<string, unknown>): { fields: Record<string, unknown> } {
  const value = (v: unknown): Record<string, unknown> => {
    if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
    if (typeof v === 'string') return { stringValue: v };
    if (typeof v === 'number') return { numberValue: v };
    if (typeof v === 'boolean') return { boolValue: v };
    if (Array.isArray(v)) return { listValue: { values: v.map(value) } };
    return { structValue: toStruct(v as Record<string, unknown>) };
  };
  return { fields: Object.fromEntries(Object.entries(map).map(([k, v]) => [k, value(v)])) };
}

/** The xDS name of a decoded resource: ClusterLoadAssignment names itself by cluster_name. */
export function resourceName(resource: EnvoyJson): string {
  return String(resource.name ?? resource.cluster_name ?? '');
}

function routeNamesOfListener(listener: EnvoyJson): string[] {
  const managers: EnvoyJson[] = [];
  const api = listener.api_listener?.api_listener;
  if (api) managers.push(api);
  for (const chain of [...(listener.filter_chains ?? []), ...(listener.default_filter_chain ? [listener.default_filter_chain] : [])]) {
    for (const filter of chain.filters ?? []) if (filter.typed_config) managers.push(filter.typed_config);
  }
  return managers.map((m) => m.rds?.route_config_name).filter((n): n is string => typeof n === 'string' && n.length > 0);
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().every((n, i) => n === b[i]);
}

export function typeShort(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('.') + 1);
}

/** Istio-style node id of a sidecar: `sidecar~IP~NAME.NAMESPACE~NAMESPACE.svc.cluster.local`. */
export function sidecarNodeId(ip: string, name: string, namespace = 'default'): string {
  return `sidecar~${ip}~${name}.${namespace}~${namespace}.svc.cluster.local`;
}
