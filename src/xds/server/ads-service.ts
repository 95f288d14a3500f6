// The AggregatedDiscoveryService gRPC definition with codecs built from Envoy's protos: requests
// decode to the JSON form; responses go out as bytes encoded here so each Any carries exactly the
// bytes encodeResource produced (and cached), never a re-serialised copy.
import type * as grpc from '@grpc/grpc-js';
import * as protobuf from 'protobufjs';
import { decodeResource, encodeResource, envoyProtoRoot } from '../protos';

export const ADS_SERVICE_NAME = 'envoy.service.discovery.v3.AggregatedDiscoveryService';
export const ADS_STREAM_METHOD_PATH = `/${ADS_SERVICE_NAME}/StreamAggregatedResources`;

/** envoy.config.core.v3.Node, the fields the server reads. */
export interface DiscoveryNode {
  id?: string;
  cluster?: string;
  metadata?: Record<string, unknown>;
  user_agent_name?: string;
  user_agent_version?: string;
}

/** envoy.service.discovery.v3.DiscoveryRequest in JSON form. */
export interface DiscoveryRequest {
  version_info?: string;
  node?: DiscoveryNode;
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string };
  /**
   * Set by decodeDiscoveryRequest for a long subscription: field 3 (resource_names) exactly as it
   * came on the wire. Envoy repeats every name in each ACK; comparing these bytes with the
   * subscription held (ads-connection.ts) costs one memcmp, where decoding and checking three
   * thousand names costs about a millisecond. `resource_names` is then decoded only when read.
   */
  resource_names_wire?: Uint8Array;
}

/** A google.protobuf.Any whose value is already encoded. */
export interface EncodedAny {
  type_url: string;
  value: Uint8Array;
}

/** envoy.service.discovery.v3.DiscoveryResponse with resources already encoded. */
export interface DiscoveryResponse {
  version_info: string;
  type_url: string;
  nonce: string;
  resources: readonly EncodedAny[];
  control_plane?: { identifier: string };
}

const DISCOVERY_REQUEST = 'envoy.service.discovery.v3.DiscoveryRequest';
let responseType: protobuf.Type | undefined;

function discoveryResponseType(): protobuf.Type {
  responseType ??= envoyProtoRoot().lookupType('envoy.service.discovery.v3.DiscoveryResponse');
  return responseType;
}

/** Below this many names a request is decoded in full at once. */
const LAZY_NAMES_MIN = 32;

/** Decodes a request into the JSON form (node.metadata as a plain map, as Envoy's JSON shows it). */
export function decodeDiscoveryRequest(bytes: Buffer): DiscoveryRequest {
  try {
    const names = resourceNamesRegion(bytes);
    if (!names) return decodeResource<DiscoveryRequest>(DISCOVERY_REQUEST, bytes);
    const rest = Buffer.concat([bytes.subarray(0, names.start), bytes.subarray(names.end)]);
    const request = decodeResource<DiscoveryRequest>(DISCOVERY_REQUEST, rest);
    const wire = bytes.subarray(names.start, names.end);
    let decoded: string[] | undefined;
    Object.defineProperty(request, 'resource_names', {
      get: () => (decoded ??= decodeResourceNames(wire)),
      enumerable: true,
      configurable: true,
    });
    request.resource_names_wire = wire;
    return request;
  } catch (err) {
    throw new Error(`cannot decode DiscoveryRequest (${bytes.length} bytes): ${(err as Error).message}`);
  }
}

/** Reads a varint at `at`; returns [value, next offset], or undefined past the end. */
function varint(bytes: Uint8Array, at: number): [number, number] | undefined {
  let value = 0;
  let shift = 0;
  while (at < bytes.length && shift < 35) {
    const b = bytes[at++];
    value += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return [value, at];
    shift += 7;
  }
  return undefined;
}

/**
 * Where the resource_names entries are, when there are many and they are contiguous. A plain
 * loop over the bytes (no decoding): an ACK of a 3,000-cluster EDS subscription is ~150 KB.
 */
function resourceNamesRegion(bytes: Uint8Array): { start: number; end: number } | undefined {
  let at = 0;
  let start = -1;
  let end = -1;
  let count = 0;
  while (at < bytes.length) {
    const fieldStart = at;
    const t = varint(bytes, at);
    if (!t) return undefined;
    const [tag, afterTag] = t;
    at = afterTag;
    switch (tag & 7) {
      case 0: {
        const v = varint(bytes, at);
        if (!v) return undefined;
        at = v[1];
        break;
      }
      case 1:
        at += 8;
        break;
      case 5:
        at += 4;
        break;
      case 2: {
        const len = varint(bytes, at);
        if (!len) return undefined;
        at = len[1] + len[0];
        if (tag === 26) {
          if (start < 0) start = fieldStart;
          else if (fieldStart !== end) return undefined;
          end = at;
          count++;
        }
        break;
      }
      default:
        return undefined; // groups: leave it to the full decoder
    }
  }
  if (at !== bytes.length) return undefined;
  return count >= LAZY_NAMES_MIN ? { start, end } : undefined;
}

/** resource_names entries (field 3, tag 26) back to strings. */
export function decodeResourceNames(wire: Uint8Array): string[] {
  const reader = protobuf.Reader.create(wire);
  const out: string[] = [];
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag !== 26) throw new Error(`unexpected tag ${tag} among resource_names`);
    out.push(reader.string());
  }
  return out;
}

/** Names as resource_names entries, in the given order (what decodeResourceNames reads). */
export function encodeResourceNames(names: readonly string[]): Uint8Array {
  const writer = protobuf.Writer.create();
  for (const n of names) writer.uint32(26).string(n);
  return writer.finish();
}

export function encodeDiscoveryRequest(message: DiscoveryRequest): Buffer {
  return Buffer.from(encodeResource(DISCOVERY_REQUEST, message));
}

/**
 * Encodes a response. `encode` (not `fromObject`) is used on purpose: it writes the Any values'
 * bytes as they are, with no JSON round trip.
 */
export function encodeDiscoveryResponse(message: DiscoveryResponse): Buffer {
  const response = discoveryResponseType();
  return Buffer.from(response.encode(message as unknown as protobuf.Message).finish());
}

/**
 * Encodes a response whose `resources` are given already encoded as DiscoveryResponse field 2
 * entries (`body`, see PreparedList.body): the header fields are encoded and the body copied after
 * them (protobuf allows fields in any order), with no per-resource work.
 */
export function encodeDiscoveryResponseWithBody(header: Omit<DiscoveryResponse, 'resources'>, body: Uint8Array): Buffer {
  const head = discoveryResponseType()
    .encode({ ...header, resources: [] } as unknown as protobuf.Message)
    .finish();
  const out = Buffer.allocUnsafe(head.length + body.length);
  out.set(head, 0);
  out.set(body, head.length);
  return out;
}

export function decodeDiscoveryResponse(bytes: Buffer): DiscoveryResponse {
  const decoded = discoveryResponseType().decode(bytes) as unknown as {
    version_info?: string;
    type_url?: string;
    nonce?: string;
    resources?: { type_url?: string; value?: Uint8Array }[];
  };
  return {
    version_info: decoded.version_info ?? '',
    type_url: decoded.type_url ?? '',
    nonce: decoded.nonce ?? '',
    resources: (decoded.resources ?? []).map((r) => ({ type_url: r.type_url ?? '', value: r.value ?? new Uint8Array() })),
  };
}

/**
 * The state-of-the-world ADS method only. Delta xDS (DeltaAggregatedResources) is not served yet;
 * gRPC answers it with UNIMPLEMENTED, which Envoy and gRPC clients handle by not using it.
 */
export const adsServiceDefinition: grpc.ServiceDefinition = {
  StreamAggregatedResources: {
    path: ADS_STREAM_METHOD_PATH,
    requestStream: true,
    responseStream: true,
    requestSerialize: (message: DiscoveryRequest) => encodeDiscoveryRequest(message),
    requestDeserialize: (bytes: Buffer) => decodeDiscoveryRequest(bytes),
    // The server hands over responses already encoded (see AdsConnection.send).
    responseSerialize: (bytes: Buffer) => bytes,
    responseDeserialize: (bytes: Buffer) => decodeDiscoveryResponse(bytes),
  },
};
