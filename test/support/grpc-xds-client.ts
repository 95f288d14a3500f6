// Child-process entry: a proxyless gRPC client built on @grpc/grpc-js-xds (code nobody here wrote)
// that resolves `xds:///host:port` through the control plane named in GRPC_XDS_BOOTSTRAP_CONFIG and
// makes Whoami calls on command from its parent (over the IPC channel), reporting where they landed.
// Started by GrpcXdsClientProcess; run any other way (e.g. by `node --test` on the dist folder)
// it exits at once.
import * as grpc from '@grpc/grpc-js';
import { whoamiServiceDefinition, type WhoamiReply } from './grpc-backends';

/** Parent -> child. */
export type ClientCommand =
  | { id: number; cmd: 'call'; count: number; concurrency?: number; metadata?: Record<string, string>; deadlineMs?: number }
  | { id: number; cmd: 'exit' };

export interface CallTally {
  /** Calls answered, by backend version. */
  byVersion: Record<string, number>;
  /** Failed calls by status code name and details (first few). */
  errors: { code: string; details: string }[];
  failed: number;
}

/** Child -> parent. */
export type ClientReply =
  | { id: 0; ready: true }
  | { id: number; ok: true; tally: CallTally }
  | { id: number; ok: false; error: string };

export const CLIENT_ENV_FLAG = 'WEFT_GRPC_XDS_CLIENT';
export const CLIENT_TARGET_ENV = 'WEFT_XDS_TARGET';

function main(): void {
  // grpc-js-xds reads GRPC_XDS_BOOTSTRAP_CONFIG when the first xds: channel is made; the parent
  // put it in this process's environment, so requiring the plugin here is already late enough.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const grpcXds = require('@grpc/grpc-js-xds') as { register(): void };
  grpcXds.register();
  const target = process.env[CLIENT_TARGET_ENV];
  if (!target) throw new Error(`${CLIENT_TARGET_ENV} is not set`);
  const WhoamiClient = grpc.makeGenericClientConstructor(whoamiServiceDefinition, 'Whoami');
  const client = new WhoamiClient(target, grpc.credentials.createInsecure());
  const reply = (message: ClientReply) => process.send?.(message);

  const callOnce = (metadata: grpc.Metadata, deadlineMs: number) =>
    new Promise<WhoamiReply>((resolve, reject) => {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      (client as any).Whoami(
        Buffer.from('{}'),
        metadata,
        { deadline: Date.now() + deadlineMs, waitForReady: true },
        (err: grpc.ServiceError | null, response?: Buffer) => (err ? reject(err) : resolve(JSON.parse(String(response)))),
      );
    });

  const runCalls = async (command: Extract<ClientCommand, { cmd: 'call' }>): Promise<CallTally> => {
    const tally: CallTally = { byVersion: {}, errors: [], failed: 0 };
    const metadata = new grpc.Metadata();
    for (const [k, v] of Object.entries(command.metadata ?? {})) metadata.set(k, v);
    let remaining = command.count;
    const worker = async () => {
      while (remaining > 0) {
        remaining--;
        try {
          const answer = await callOnce(metadata, command.deadlineMs ?? 5000);
          tally.byVersion[answer.version] = (tally.byVersion[answer.version] ?? 0) + 1;
        } catch (err) {
          const e = err as grpc.ServiceError;
          tally.failed++;
          if (tally.errors.length < 5) tally.errors.push({ code: grpc.status[e.code] ?? String(e.code), details: e.details ?? e.message });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, command.concurrency ?? 8) }, worker));
    return tally;
  };

  process.on('message', (command: ClientCommand) => {
    if (command.cmd === 'exit') {
      client.close();
      process.disconnect?.();
      return;
    }
    runCalls(command).then(
      (tally) => reply({ id: command.id, ok: true, tally }),
      (err: Error) => reply({ id: command.id, ok: false, error: err.message }),
    );
  });
  // Exit with the parent: an orphaned client must never keep a test run alive.
  process.on('disconnect', () => process.exit(0));
  reply({ id: 0, ready: true });
}

if (process.env[CLIENT_ENV_FLAG] === '1' && typeof process.send === 'function') main();
