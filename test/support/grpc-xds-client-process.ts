// Parent side of the proxyless gRPC test client: forks grpc-xds-client.js with an xDS bootstrap
// pointing at a control plane, and asks it to make calls. A child process keeps grpc-js-xds's
// global state (bootstrap, xDS client, protobufjs) apart from the test process, as in real life.
import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { CLIENT_ENV_FLAG, CLIENT_TARGET_ENV, type CallTally, type ClientCommand, type ClientReply } from './grpc-xds-client';

export interface GrpcXdsClientOptions {
  /** host:port of the control plane's xDS server. */
  xdsAddress: string;
  /** e.g. `xds:///whoami.default.svc.cluster.local:7070` */
  target: string;
  nodeId: string;
  nodeMetadata?: Record<string, unknown>;
  /** How long to wait for the child to start. Default 10s. */
  startTimeoutMs?: number;
}

/** The gRPC xDS bootstrap (gRFC A27) for a control plane reached in plaintext. */
export function xdsBootstrap(xdsAddress: string, nodeId: string, metadata: Record<string, unknown>): object {
  return {
    xds_servers: [{ server_uri: xdsAddress, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    // grpc-js-xds rejects a bootstrap node without a locality (an empty one is fine).
    node: { id: nodeId, metadata, locality: {} },
  };
}

export class GrpcXdsClientProcess {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (t: CallTally) => void; reject: (e: Error) => void }>();
  /** Everything the child wrote to stderr (grpc traces when GRPC_TRACE is set). */
  stderr = '';

  private constructor(private readonly child: ChildProcess) {
    child.stderr?.on('data', (d) => (this.stderr += d));
    child.on('message', (message: ClientReply) => {
      if (message.id === 0) return;
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      if ('ok' in message && message.ok) waiter.resolve(message.tally);
      else waiter.reject(new Error(`grpc-xds client: ${(message as { error: string }).error}`));
    });
    child.on('exit', (code, signal) => {
      for (const waiter of this.pending.values()) {
        waiter.reject(new Error(`grpc-xds client exited (code ${code}, signal ${signal}); stderr:\n${this.stderr.slice(-4000)}`));
      }
      this.pending.clear();
    });
  }

  static async start(options: GrpcXdsClientOptions): Promise<GrpcXdsClientProcess> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify(xdsBootstrap(options.xdsAddress, options.nodeId, options.nodeMetadata ?? {})),
      [CLIENT_ENV_FLAG]: '1',
      [CLIENT_TARGET_ENV]: options.target,
    };
    delete env.GRPC_XDS_BOOTSTRAP; // it would win over the inline config
    const child = fork(path.join(__dirname, 'grpc-xds-client.js'), [], { env, stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
    const client = new GrpcXdsClientProcess(child);
    const timeoutMs = options.startTimeoutMs ?? 10_000;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill();
        reject(new Error(`grpc-xds client did not start within ${timeoutMs}ms; stderr:\n${client.stderr}`));
      }, timeoutMs);
      child.on('message', (m: ClientReply) => {
        if (m.id === 0) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`grpc-xds client exited during start (code ${code}); stderr:\n${client.stderr}`));
      });
    });
    return client;
  }

  /** Makes `count` Whoami calls (optionally with metadata) and tallies the versions that answered. */
  call(count: number, options: { metadata?: Record<string, string>; concurrency?: number; deadlineMs?: number } = {}): Promise<CallTally> {
    const id = this.nextId++;
    const command: ClientCommand = { id, cmd: 'call', count, ...options };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.send(command, (err) => {
        if (err) {
          this.pending.delete(id);
          reject(new Error(`cannot reach grpc-xds client: ${err.message}`));
        }
      });
    });
  }

  /** Stops the child; kills it if it does not exit within a second. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 1000);
    try {
      this.child.send({ id: 0, cmd: 'exit' } satisfies ClientCommand);
    } catch {
      this.child.kill('SIGKILL');
    }
    await exited;
    clearTimeout(timer);
  }
}
