// Tiny gRPC backends for tests: a `Whoami` unary method, defined without a .proto (raw Buffer
// codec), that answers with the backend's name and version so a test can tell where a call landed.
import * as grpc from '@grpc/grpc-js';

export const WHOAMI_SERVICE = 'weft.test.Whoami';
export const WHOAMI_METHOD_PATH = `/${WHOAMI_SERVICE}/Whoami`;

const passthrough = (bytes: Buffer) => bytes;

/** Request and response bodies are JSON bytes; the method is unary. */
export const whoamiServiceDefinition: grpc.ServiceDefinition = {
  Whoami: {
    path: WHOAMI_METHOD_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: passthrough,
    requestDeserialize: passthrough,
    responseSerialize: passthrough,
    responseDeserialize: passthrough,
  },
};

export interface WhoamiReply {
  name: string;
  version: string;
  /** The `x-user` header the call carried, if any. */
  user?: string;
}

export interface GrpcBackend {
  name: string;
  version: string;
  host: string;
  port: number;
  /** Calls served so far. */
  readonly calls: number;
  close(): Promise<void>;
}

/** Starts a Whoami server on `host` (default 127.0.0.1) and a free port. */
export async function startGrpcBackend(options: { name: string; version: string; host?: string }): Promise<GrpcBackend> {
  const host = options.host ?? '127.0.0.1';
  const server = new grpc.Server();
  let calls = 0;
  server.addService(whoamiServiceDefinition, {
    Whoami: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      calls++;
      const user = call.metadata.get('x-user')[0];
      const reply: WhoamiReply = { name: options.name, version: options.version, ...(user ? { user: String(user) } : {}) };
      callback(null, Buffer.from(JSON.stringify(reply)));
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(new Error(`backend ${options.name} cannot listen on ${host}: ${err.message}`)) : resolve(p),
    ),
  );
  return {
    name: options.name,
    version: options.version,
    host,
    port,
    get calls() {
      return calls;
    },
    close: () =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
