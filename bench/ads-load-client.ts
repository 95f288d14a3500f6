// A light ADS load client for benchmarks: many simulated proxies on real gRPC streams, each
// ACKing like Envoy (CDS+LDS wildcard, then EDS for the clusters and RDS for the route configs it
// was given). It decodes only what it needs to follow dependencies, so its own CPU stays small.
// Run as a child process: `node ads-load-client.js ADDRESS COUNT`; prints JSON lines.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as protobuf from 'protobufjs';
import { decodeResource, PROTO_INCLUDE_DIRS, TypeUrl } from '../src/xds/protos';

const definition = protoLoader.loadSync('envoy/service/discovery/v3/ads.proto', {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
  includeDirs: PROTO_INCLUDE_DIRS,
});
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const AdsClient = (grpc.loadPackageDefinition(definition) as any).envoy.service.discovery.v3.AggregatedDiscoveryService as grpc.ServiceClientConstructor;

/** Field 1 (`name`) of a Cluster or Listener, read without decoding the rest. */
function readName(bytes: Uint8Array): string {
  const reader = protobuf.Reader.create(bytes);
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag >>> 3 === 1 && (tag & 7) === 2) return reader.string();
    reader.skipType(tag & 7);
  }
  return '';
}

function routeNamesOf(listenerBytes: Uint8Array): string[] {
  const listener = decodeResource<any>(TypeUrl.Listener, listenerBytes); // eslint-disable-line @typescript-eslint/no-explicit-any
  const names: string[] = [];
  for (const chain of listener.filter_chains ?? []) {
    for (const filter of chain.filters ?? []) {
      const name = filter.typed_config?.rds?.route_config_name;
      if (name) names.push(name);
    }
  }
  return names;
}

interface Stats {
  responses: number;
  bytes: number;
}

function startProxy(address: string, index: number, stats: Stats, onFirstFullConfig: () => void): grpc.Client {
  const client = new AdsClient(address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1, 'grpc.max_receive_message_length': 256 * 1024 * 1024 });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const stream = (client as any).StreamAggregatedResources() as grpc.ClientDuplexStream<any, any>;
  const ip = `127.1.${Math.floor(index / 250)}.${(index % 250) + 1}`;
  const node = {
    id: `sidecar~${ip}~load-${index}.default~default.svc.cluster.local`,
    metadata: { fields: { NAMESPACE: { stringValue: 'default' }, WORKLOAD_NAME: { stringValue: `load-${index}` } } },
  };
  const subscriptions = new Map<string, string[]>();
  const seen = new Set<string>();
  let nodeSent = false;
  const send = (typeUrl: string, names: string[], version = '', nonce = '') => {
    stream.write({ ...(nodeSent ? {} : { node }), type_url: typeUrl, resource_names: names, version_info: version, response_nonce: nonce });
    nodeSent = true;
  };
  const subscribe = (typeUrl: string, names: string[]) => {
    const previous = subscriptions.get(typeUrl);
    const sorted = [...new Set(names)].sort();
    if (previous && previous.join(',') === sorted.join(',')) return false;
    subscriptions.set(typeUrl, sorted);
    return true;
  };
  stream.on('data', (response: { type_url: string; version_info: string; nonce: string; resources: { value: Buffer }[] }) => {
    stats.responses++;
    for (const r of response.resources) stats.bytes += r.value.length;
    send(response.type_url, subscriptions.get(response.type_url) ?? [], response.version_info, response.nonce);
    seen.add(response.type_url);
    if (response.type_url === TypeUrl.Cluster) {
      if (subscribe(TypeUrl.ClusterLoadAssignment, response.resources.map((r) => readName(r.value)))) {
        send(TypeUrl.ClusterLoadAssignment, subscriptions.get(TypeUrl.ClusterLoadAssignment)!);
      }
    } else if (response.type_url === TypeUrl.Listener) {
      if (subscribe(TypeUrl.RouteConfiguration, response.resources.flatMap((r) => routeNamesOf(r.value)))) {
        send(TypeUrl.RouteConfiguration, subscriptions.get(TypeUrl.RouteConfiguration)!);
      }
    }
    if (seen.size === 4 && !seen.has('done')) {
      seen.add('done');
      onFirstFullConfig();
    }
  });
  stream.on('error', () => undefined);
  subscriptions.set(TypeUrl.Cluster, []);
  subscriptions.set(TypeUrl.Listener, []);
  send(TypeUrl.Cluster, []);
  send(TypeUrl.Listener, []);
  return client;
}

function main(): void {
  const [address, countText] = process.argv.slice(2);
  const count = Number(countText);
  const stats: Stats = { responses: 0, bytes: 0 };
  const started = Date.now();
  let full = 0;
  const clients: grpc.Client[] = [];
  for (let i = 0; i < count; i++) {
    clients.push(
      startProxy(address, i, stats, () => {
        full++;
        if (full === count) process.stdout.write(JSON.stringify({ event: 'all_full_config', ms: Date.now() - started }) + '\n');
      }),
    );
  }
  process.stdout.write(JSON.stringify({ event: 'started', proxies: count }) + '\n');
  const report = setInterval(() => process.stdout.write(JSON.stringify({ event: 'stats', ...stats, full }) + '\n'), 1000);
  process.on('SIGTERM', () => {
    clearInterval(report);
    for (const c of clients) c.close();
    process.exit(0);
  });
}

main();
