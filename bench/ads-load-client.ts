// A light ADS load client for benchmarks: many simulated proxies on real gRPC streams, each
// ACKing like Envoy (CDS+LDS wildcard, then EDS for the clusters and RDS for the route configs it
// was given). Responses are taken as raw bytes and only the fields needed to follow dependencies
// are read (names of clusters, route names of listeners), so its own CPU stays small.
// Run as a child process: `node ads-load-client.js ADDRESS COUNT [FIRST_INDEX]`; prints JSON lines
// on stdout. It exits when its stdin closes (the benchmark died) or on SIGTERM, and by itself after
// `WEFT_LOAD_CLIENT_MAX_S` seconds (default 900) so a lost parent never leaves it running.
import * as grpc from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';
import { decodeResource, TypeUrl } from '../src/xds/protos';
import { ADS_STREAM_METHOD_PATH, encodeDiscoveryRequest, type DiscoveryRequest } from '../src/xds/server/ads-service';

/** Field 1 (`name`) of a Cluster or Listener, read without decoding the rest. */
function readName(bytes: Uint8Array, start: number, end: number): string {
  const reader = protobuf.Reader.create(bytes.subarray(start, end));
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag >>> 3 === 1 && (tag & 7) === 2) return reader.string();
    reader.skipType(tag & 7);
  }
  return '';
}

interface RawResponse {
  version: string;
  typeUrl: string;
  nonce: string;
  /** [start, end) of each resource's Any.value in `bytes`. */
  values: [number, number][];
  bytes: Buffer;
}

/** The few DiscoveryResponse fields a proxy needs to ACK and follow dependencies. */
function parseResponse(bytes: Buffer): RawResponse {
  const reader = protobuf.Reader.create(bytes);
  const out: RawResponse = { version: '', typeUrl: '', nonce: '', values: [], bytes };
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    if (field === 1) out.version = reader.string();
    else if (field === 4) out.typeUrl = reader.string();
    else if (field === 5) out.nonce = reader.string();
    else if (field === 2) {
      const len = reader.uint32();
      const end = reader.pos + len;
      // google.protobuf.Any: 1 type_url, 2 value.
      while (reader.pos < end) {
        const t = reader.uint32();
        if (t >>> 3 === 2 && (t & 7) === 2) {
          const l = reader.uint32();
          out.values.push([reader.pos, reader.pos + l]);
          reader.pos += l;
        } else reader.skipType(t & 7);
      }
    } else reader.skipType(tag & 7);
  }
  return out;
}

function routeNamesOf(bytes: Buffer, start: number, end: number): string[] {
  const listener = decodeResource<any>(TypeUrl.Listener, bytes.subarray(start, end)); // eslint-disable-line @typescript-eslint/no-explicit-any
  const names: string[] = [];
  for (const chain of listener.filter_chains ?? []) {
    for (const filter of chain.filters ?? []) {
      const name = filter.typed_config?.rds?.route_config_name;
      if (name) names.push(name);
    }
  }
  return names;
}

let stopping = false;

interface Stats {
  reconnects: number;
  responses: number;
  bytes: number;
  byType: Record<string, number>;
}

const SHORT: Record<string, string> = {
  [TypeUrl.Cluster]: 'CDS',
  [TypeUrl.ClusterLoadAssignment]: 'EDS',
  [TypeUrl.Listener]: 'LDS',
  [TypeUrl.RouteConfiguration]: 'RDS',
};

/** Encoded resource_names per subscription list (the same array is sent with every ACK). */
const encodedNames = new WeakMap<readonly string[], Buffer>();

/**
 * A DiscoveryRequest whose (long) name list is encoded once per subscription: an ACK of a
 * 3,000-cluster EDS subscription would otherwise re-encode 150 KB of names every time. Envoy's
 * cost of this is on its own machine; here it shares the CPUs with the control plane.
 */
function serializeRequest(request: DiscoveryRequest): Buffer {
  const names = request.resource_names ?? [];
  if (names.length < 32) return encodeDiscoveryRequest(request);
  let wire = encodedNames.get(names);
  if (!wire) {
    const writer = protobuf.Writer.create();
    for (const n of names) writer.uint32(26).string(n);
    wire = Buffer.from(writer.finish());
    encodedNames.set(names, wire);
  }
  return Buffer.concat([encodeDiscoveryRequest({ ...request, resource_names: [] }), wire]);
}

function startProxy(address: string, index: number, stats: Stats, onFirstFullConfig: () => void): grpc.Client {
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
    'grpc.max_receive_message_length': 256 * 1024 * 1024,
    // Envoy's default HTTP/2 windows for its xDS stream are 256 MiB (initial_stream_window_size,
    // initial_connection_window_size); grpc-js's 64 KiB would make every 3 MB response a long
    // series of WINDOW_UPDATE round trips on a busy machine.
    'grpc-node.flow_control_window': 64 * 1024 * 1024,
  });
  const ip = `127.1.${Math.floor(index / 250)}.${(index % 250) + 1}`;
  const node = {
    id: `sidecar~${ip}~load-${index}.default~default.svc.cluster.local`,
    metadata: { NAMESPACE: 'default', WORKLOAD_NAME: `load-${index}` },
  };
  const seen = new Set<string>();
  // Like Envoy, a lost stream (e.g. a keepalive timeout on an overloaded machine) is reopened
  // after a short backoff and everything is asked for again.
  const open = () => {
    const stream = client.makeBidiStreamRequest<DiscoveryRequest, Buffer>(ADS_STREAM_METHOD_PATH, serializeRequest, (b: Buffer) => b);
    const subscriptions = new Map<string, string[]>();
    let nodeSent = false;
    let lost = false;
    const send = (typeUrl: string, names: string[], version = '', nonce = '') => {
      if (lost) return;
      stream.write({ ...(nodeSent ? {} : { node }), type_url: typeUrl, resource_names: names, version_info: version, response_nonce: nonce });
      nodeSent = true;
    };
    const subscribe = (typeUrl: string, names: string[]) => {
      const previous = subscriptions.get(typeUrl);
      const sorted = [...new Set(names)].sort();
      if (previous && previous.length === sorted.length && previous.every((n, i) => n === sorted[i])) return false;
      subscriptions.set(typeUrl, sorted);
      return true;
    };
    stream.on('data', (bytes: Buffer) => {
      const response = parseResponse(bytes);
      stats.responses++;
      let size = 0;
      for (const [s, e] of response.values) size += e - s;
      stats.bytes += size;
      const short = SHORT[response.typeUrl] ?? response.typeUrl;
      stats.byType[short] = (stats.byType[short] ?? 0) + size;
      send(response.typeUrl, subscriptions.get(response.typeUrl) ?? [], response.version, response.nonce);
      seen.add(response.typeUrl);
      if (response.typeUrl === TypeUrl.Cluster) {
        if (subscribe(TypeUrl.ClusterLoadAssignment, response.values.map(([s, e]) => readName(bytes, s, e)))) {
          send(TypeUrl.ClusterLoadAssignment, subscriptions.get(TypeUrl.ClusterLoadAssignment)!);
        }
      } else if (response.typeUrl === TypeUrl.Listener) {
        if (subscribe(TypeUrl.RouteConfiguration, response.values.flatMap(([s, e]) => routeNamesOf(bytes, s, e)))) {
          send(TypeUrl.RouteConfiguration, subscriptions.get(TypeUrl.RouteConfiguration)!);
        }
      }
      if (seen.size === 4 && !seen.has('done')) {
        seen.add('done');
        onFirstFullConfig();
      }
    });
    const reopen = () => {
      if (lost || stopping) return;
      lost = true;
      stats.reconnects++;
      setTimeout(open, 500 + Math.random() * 500);
    };
    stream.on('error', reopen);
    stream.on('end', reopen);
    subscriptions.set(TypeUrl.Cluster, []);
    subscriptions.set(TypeUrl.Listener, []);
    send(TypeUrl.Cluster, []);
    send(TypeUrl.Listener, []);
  };
  open();
  return client;
}

function main(): void {
  const [address, countText, firstText] = process.argv.slice(2);
  const count = Number(countText);
  const first = Number(firstText ?? 0);
  const stats: Stats = { reconnects: 0, responses: 0, bytes: 0, byType: {} };
  const started = Date.now();
  let full = 0;
  const clients: grpc.Client[] = [];
  const report = () => {
    const cpu = process.cpuUsage();
    process.stdout.write(
      JSON.stringify({ event: 'stats', ...stats, full, cpuMs: (cpu.user + cpu.system) / 1000, rss: process.memoryUsage().rss }) + '\n',
    );
  };
  for (let i = 0; i < count; i++) {
    clients.push(
      startProxy(address, first + i, stats, () => {
        full++;
        if (full === count) process.stdout.write(JSON.stringify({ event: 'all_full_config', ms: Date.now() - started }) + '\n');
      }),
    );
  }
  process.stdout.write(JSON.stringify({ event: 'started', proxies: count, first }) + '\n');
  const timer = setInterval(report, 1000);
  const stop = () => {
    stopping = true;
    clearInterval(timer);
    for (const c of clients) c.close();
    process.exit(0);
  };
  // The parent asks for a report by writing a line, and stops us by closing stdin or SIGTERM.
  process.stdin.on('data', () => report());
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdout.on('error', stop); // the benchmark went away (EPIPE)
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  setTimeout(stop, Number(process.env.WEFT_LOAD_CLIENT_MAX_S ?? 900) * 1000).unref();
}

main();
