// The AggregatedDiscoveryService gRPC definition with codecs built from Envoy's protos: requests
// decode to the JSON form; responses go out as bytes encoded here so each Any carries exactly the
// bytes encodeResource produced (and cached), never a re-serialised copy.
import type * as grpc from '@grpc/grpc-js';
import type * as protobuf from 'protobufjs';
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

/** Decodes a request into the JSON form (node.metadata as a plain map, as Envoy's JSON shows it). */
export function decodeDiscoveryRequest(bytes: Buffer): DiscoveryRequest {
  try {
    return decodeResource<DiscoveryRequest>(DISCOVERY_REQUEST, bytes);
  } catch (err) {
    throw new Error(`cannot decode DiscoveryRequest (${bytes.length} bytes): ${(err as Error).message}`);
  }
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
