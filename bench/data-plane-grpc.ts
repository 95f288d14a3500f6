// The data-plane benchmark's HTTP/2 rows: gRPC unary calls over h2c (prior knowledge), 1 KB
// response messages, on loopback.
//   gRPC direct                    h2load -> gRPC backend
//   gRPC weft proxy                h2load -> Weft gateway proxy (127.0.0.3, a GRPC Gateway server,
//                                  configured over ADS) -> h2c -> gRPC backend (Service port `grpc`)
//   gRPC nginx proxy (grpc_pass)   h2load -> nginx `grpc_pass` (upstream keep-alive pool) -> backend
// Backend: nginx speaking h2c, answering every POST with one static length-prefixed message,
// content-type application/grpc and the trailer grpc-status 0 (bench/nginx/grpc-backend.conf.template).
// Every call is checked: the fixed-rate client requires :status 200, the whole message and
// grpc-status 0; h2load cannot read trailers, so its run counts as errors the calls that did not
// bring back the whole message (a proxy's local reply to a gRPC call is a 200 with grpc-status 14
// and no message), on top of the failed/errored/timed-out ones it reports.
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as path from 'node:path';
import { grpcUnaryCall, type FixedRateRequest } from './fixed-rate-client';
import { gatewayYaml, HOST, sum, type Saturator } from './data-plane-lib';

export const GRPC_PORTS = { backend: 18100, nginxProxy: 18101, weftGateway: 18102 } as const;
/** The gRPC gateway binds its listener and admin ports on its own loopback address. */
export const GRPC_WEFT_HOST = '127.0.0.3';
export const GRPC_PATH = '/weft.bench.Echo/Unary';
/** Concurrent calls are multiplexed as gRPC clients do: --connections streams, 8 per HTTP/2 connection. */
export const GRPC_STREAMS_PER_CONNECTION = 8;
export const GRPC_ROWS = { direct: 'gRPC direct', weft: 'gRPC weft proxy', nginx: 'gRPC nginx proxy (grpc_pass)' } as const;

/** A protobuf message with one bytes field (tag 1), length-prefixed as gRPC frames it (flag 0, u32 length). */
function grpcFrame(totalBytes: number, fill: string): Buffer {
  const payload = totalBytes - 5;
  // field 1, wire type 2: tag byte, varint length, bytes; the varint is 1 byte below 128, else 2
  const fieldLen = payload - 1 - (payload - 2 > 127 ? 2 : 1);
  const varint = fieldLen > 127 ? [0x80 | (fieldLen & 0x7f), fieldLen >> 7] : [fieldLen];
  const message = Buffer.concat([Buffer.from([0x0a, ...varint]), Buffer.alloc(fieldLen, fill)]);
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

export interface GrpcMessages {
  /** The request body h2load and the fixed-rate client send (a 64-byte frame). */
  requestFile: string;
  /** The backend's static response (1 KB, frame included). */
  responseFile: string;
  responseBytes: number;
}

/** Writes the request and response messages into the bench's scratch directory. */
export function writeGrpcMessages(work: string): GrpcMessages {
  const requestFile = path.join(work, 'grpc-request.bin');
  const responseFile = path.join(work, 'www', 'grpc-response.bin');
  fs.writeFileSync(requestFile, grpcFrame(64, 'q'), { mode: 0o644 });
  const response = grpcFrame(1024, 'x');
  fs.writeFileSync(responseFile, response, { mode: 0o644 });
  return { requestFile, responseFile, responseBytes: response.length };
}

export function grpcRequest(m: GrpcMessages): FixedRateRequest {
  return { kind: 'grpc', bodyFile: m.requestFile, responseBytes: m.responseBytes, streamsPerConnection: GRPC_STREAMS_PER_CONNECTION };
}

/** h2load (nghttp2-client) sending gRPC unary calls: -c connections x -m streams = --connections in flight. */
export function h2load(m: GrpcMessages): Saturator {
  return {
    tool: 'h2load',
    args: (t, seconds, connections) => {
      const conns = Math.max(1, Math.ceil(connections / GRPC_STREAMS_PER_CONNECTION));
      return ['-t1', `-c${conns}`, `-m${GRPC_STREAMS_PER_CONNECTION}`, '-D', String(seconds), '-d', m.requestFile,
        '-H', 'content-type: application/grpc', '-H', 'te: trailers', ...(t.host ? ['-H', `:authority: ${t.host}`] : []), t.url];
    },
    parse(stdout) {
      const rps = Number(/finished in [\d.]+\w*, ([\d.]+) req\/s/.exec(stdout)?.[1]);
      const req = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(stdout);
      const data = Number(/traffic: .*\((\d+)\) data/.exec(stdout)?.[1]);
      if (!req || !Number.isFinite(rps) || !Number.isFinite(data)) throw new Error(`h2load: cannot read its output:\n${stdout}`);
      const [done, succeeded, failed, errored, timeout] = req.slice(3).map(Number);
      // Every successful call carries exactly one response message; calls that got less were not answered by the backend.
      const withoutMessage = Math.max(0, succeeded - Math.floor(data / m.responseBytes));
      return { rps, requests: done, errors: sum([failed, errored, timeout, withoutMessage]) };
    },
  };
}

/** Retries one gRPC call until it succeeds (200, the whole message, grpc-status 0), or throws. */
export async function waitForGrpcOk(url: string, what: string, m: GrpcMessages, timeoutMs: number, logFile?: string): Promise<void> {
  const target = new URL(url);
  const body = fs.readFileSync(m.requestFile);
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const session = http2.connect(target.origin);
    session.on('error', () => undefined);
    try {
      await Promise.race([
        grpcUnaryCall(session, target.pathname, body, m.responseBytes),
        new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), 2_000)),
      ]);
      return;
    } catch (err) {
      last = (err as Error).message;
    } finally {
      session.destroy();
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not answer a gRPC call with grpc-status 0 at ${url} within ${timeoutMs} ms (last: ${last})${logFile ? `; see ${logFile}` : ''}`);
}

/** The Istio config of the gRPC row: a GRPC Gateway server, and the backend's Service port named `grpc`, so Weft's upstream is h2c. */
export function grpcMeshYaml(): string {
  return `# The gRPC row: a gateway on its own address (${GRPC_WEFT_HOST}) routing every call to the h2c backend.
apiVersion: v1
kind: Service
metadata: {name: grpc-backend, namespace: default}
spec:
  selector: {app: grpc-backend}
  ports:
  - {name: grpc, port: ${GRPC_PORTS.backend}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: grpc-backend-1, namespace: default}
spec:
  address: ${HOST}
  labels: {app: grpc-backend}
  ports: {grpc: ${GRPC_PORTS.backend}}
---
${gatewayYaml('bench-gateway-grpc', GRPC_PORTS.weftGateway, 'GRPC')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bench-grpc, namespace: default}
spec:
  hosts: ["*"]
  gateways: [bench-gateway-grpc]
  http:
  - route:
    - destination: {host: grpc-backend, port: {number: ${GRPC_PORTS.backend}}}
`;
}
