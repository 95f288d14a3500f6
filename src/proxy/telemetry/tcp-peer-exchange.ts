// Istio's TCP metadata exchange over mesh mTLS: when ALPN settled on `istio-peer-exchange`, each
// end sends a preamble before any application byte — magic 0x3D230467 and a length (both
// big-endian uint32), then a google.protobuf.Any holding a Struct with the sender's metadata
// (`x-envoy-peer-metadata`) and node id (`x-envoy-peer-metadata-id`) — and strips the peer's
// preamble from what it reads. Same bytes as Istio's metadata_exchange network filter.
//
// Weft's ends differ from Istio's in when they write: a client writes its preamble as soon as
// the TLS handshake is done; a server writes its own only after it saw the client's magic (or
// before the first byte it sends, as Istio does), so an HTTP client that was acknowledged
// `istio-peer-exchange` (Weft's TLS server answers ALPN with the client's first choice) never
// gets a preamble in its response.
import { decodeAny, decodeStruct, encodeAny, encodeStruct, STRUCT_TYPE_URL, type ProtoStruct } from './protobuf-struct';
import { PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER, workloadFromStruct, workloadToStruct, type WorkloadMetadata } from './peer-metadata';

export const PEER_EXCHANGE_ALPN = 'istio-peer-exchange';
const MAGIC = 0x3d230467;
const HEADER_BYTES = 8;
/** A preamble claiming more is not one (ours is a few hundred bytes). */
const MAX_PREAMBLE_BYTES = 64 * 1024;

/** The preamble this proxy sends: built once. */
export function exchangePreamble(local: WorkloadMetadata, nodeId: string): Buffer {
  const data: ProtoStruct = { [PEER_METADATA_HEADER]: workloadToStruct(local) };
  if (nodeId) data[PEER_METADATA_ID_HEADER] = nodeId;
  const body = encodeAny(STRUCT_TYPE_URL, encodeStruct(data));
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32BE(MAGIC, 0);
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
}

const MAGIC_BYTES = (() => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(MAGIC, 0);
  return b;
})();

/**
 * Reads the peer's preamble off the front of a byte stream. Feed it every chunk until `done`;
 * it returns the bytes that belong to the application (empty while it is still deciding). A
 * stream that does not start with the magic is passed through untouched.
 */
export class PeerPreambleReader {
  done = false;
  /** The peer's metadata, when a valid preamble was read. */
  peer: WorkloadMetadata | undefined;
  peerId: string | undefined;
  private pending: Buffer | null = null;

  push(chunk: Buffer): Buffer {
    if (this.done) return chunk;
    const data = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = null;
    // Decide on the magic as soon as the bytes there disagree with it (a 3-byte greeting that
    // is no preamble must not wait for a fourth byte).
    const n = Math.min(data.length, MAGIC_BYTES.length);
    if (!data.subarray(0, n).equals(MAGIC_BYTES.subarray(0, n))) return this.finish(data);
    if (data.length < HEADER_BYTES) return this.hold(data);
    const size = data.readUInt32BE(4);
    if (size > MAX_PREAMBLE_BYTES) return this.finish(data);
    if (data.length < HEADER_BYTES + size) return this.hold(data);
    try {
      const any = decodeAny(data.subarray(HEADER_BYTES, HEADER_BYTES + size));
      if (any.typeUrl === STRUCT_TYPE_URL) {
        const s = decodeStruct(any.value);
        const meta = s[PEER_METADATA_HEADER];
        if (meta && typeof meta === 'object' && !Array.isArray(meta)) this.peer = workloadFromStruct(meta);
        const id = s[PEER_METADATA_ID_HEADER];
        if (typeof id === 'string') this.peerId = id;
      }
    } catch {
      // Magic and length were right but the payload is not metadata: drop it, as Istio does.
    }
    return this.finish(data.subarray(HEADER_BYTES + size));
  }

  /** Bytes held while undecided (the stream ended early): they belong to the application. */
  flush(): Buffer {
    const rest = this.pending ?? Buffer.alloc(0);
    return this.finish(rest);
  }

  private hold(data: Buffer): Buffer {
    this.pending = data;
    return EMPTY;
  }

  private finish(rest: Buffer): Buffer {
    this.done = true;
    this.pending = null;
    return rest;
  }
}

const EMPTY = Buffer.alloc(0);
