// `weft run --workload NAME -- COMMAND...`: meshes the user's own application — starts a sidecar
// for WorkloadEntry NAME, then runs COMMAND beside it with HTTP_PROXY pointing at the sidecar and
// the workload's address in the environment. Stops both when either ends, or on Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import * as path from 'node:path';
import { appAddressFor } from '../model/proxy';
import { CliError, parseCommandArgs, UsageError } from './cli-errors';
import type { CliIo } from './cli-io';
import { CONTROL_HELP, CONTROL_OPTION, ControlClient } from './control-client';

export const RUN_USAGE = `Usage: weft run --workload NAME [-n NS] [--xds HOST:PORT] [--state-dir DIR] [--control HOST:PORT] -- COMMAND [ARGS...]

Starts a sidecar for WorkloadEntry NAME (as \`weft proxy --workload NAME\`), waits until it is
ready, then runs COMMAND with:
  HTTP_PROXY / http_proxy   http://<workload address>:15001 (call other services by mesh name)
  NO_PROXY                  localhost,127.0.0.1 (calls to itself bypass the sidecar)
  BIND_ADDRESS              the app address: listen there on the service's target port. The
                            sidecar owns <workload address>:<port>, terminates mesh mTLS there,
                            applies the workload's policies and forwards to you.
  WORKLOAD_NAME, POD_NAMESPACE
When COMMAND exits the sidecar is stopped, and weft run exits with COMMAND's status.

Options:
      --workload NAME    WorkloadEntry to run as
  -n, --namespace NS     its namespace (default "default")
      --xds HOST:PORT    control plane xDS address (default 127.0.0.1:15012, mutual TLS)
      --xds-auth MODE    mutual-tls | none (default mutual-tls on port 15012, else none)
      --state-dir DIR    the control plane's state directory: mesh root and bootstrap token
                         (default $WEFT_STATE_DIR or .weft/state)
${CONTROL_HELP}
`;

const WEFT = path.resolve(__dirname, '..', '..', '..', 'bin', 'weft');

function healthy(address: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(`http://${address}:15021/healthz/ready`, { timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

function exitOf(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + 15 : 1)));
  });
}

export async function runRun(argv: string[], io: CliIo): Promise<number> {
  const separator = argv.indexOf('--');
  if (separator < 0 || separator === argv.length - 1) throw new UsageError('give the command to run after --', RUN_USAGE);
  const command = argv.slice(separator + 1);
  const { values } = parseCommandArgs(
    argv.slice(0, separator),
    {
      workload: { type: 'string' },
      namespace: { type: 'string', short: 'n', default: 'default' },
      xds: { type: 'string', default: '127.0.0.1:15012' },
      'state-dir': { type: 'string' },
      'xds-auth': { type: 'string' },
      ...CONTROL_OPTION,
    },
    RUN_USAGE,
  );
  if (!values.workload) throw new UsageError('--workload NAME is required', RUN_USAGE);
  const control = ControlClient.fromFlag(values.control, io.env, RUN_USAGE);
  const workload = await control.get<{ address: string; name: string }>(
    `/api/v1/workloads/${encodeURIComponent(values.namespace!)}/${encodeURIComponent(values.workload)}`,
  );
  const proxyArgs = [WEFT, 'proxy', '--workload', values.workload, '-n', values.namespace!, '--xds', values.xds!, '--control', control.address.text];
  if (values['state-dir']) proxyArgs.push('--state-dir', values['state-dir']);
  if (values['xds-auth']) proxyArgs.push('--xds-auth', values['xds-auth']);
  const appAddress = appAddressFor(workload.address);
  const sidecar = spawn(process.execPath, proxyArgs, { stdio: ['ignore', 'inherit', 'inherit'] });
  const sidecarExit = exitOf(sidecar);
  const deadline = Date.now() + 30_000;
  let sidecarGone = false;
  void sidecarExit.then(() => (sidecarGone = true));
  while (!(await healthy(workload.address))) {
    if (sidecarGone) throw new CliError(`the sidecar for ${values.workload} exited before it was ready (see its log above)`);
    if (Date.now() > deadline) {
      sidecar.kill('SIGTERM');
      throw new CliError(`the sidecar for ${values.workload} was not ready within 30s`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const proxyUrl = `http://${workload.address}:15001`;
  const app = spawn(command[0], command.slice(1), {
    stdio: 'inherit',
    env: {
      ...process.env,
      HTTP_PROXY: proxyUrl,
      http_proxy: proxyUrl,
      NO_PROXY: 'localhost,127.0.0.1',
      no_proxy: 'localhost,127.0.0.1',
      BIND_ADDRESS: appAddress,
      WORKLOAD_NAME: workload.name,
      POD_NAMESPACE: values.namespace,
    },
  });
  app.on('error', (err) => io.err(`weft run: cannot start ${command[0]}: ${err.message}\n`));
  const forward = (signal: NodeJS.Signals) => {
    app.kill(signal);
  };
  process.once('SIGINT', () => forward('SIGINT'));
  process.once('SIGTERM', () => forward('SIGTERM'));
  const code = await Promise.race([exitOf(app), sidecarExit.then(() => -1)]);
  if (code === -1) {
    io.err(`weft run: the sidecar for ${values.workload} exited; stopping ${command[0]}\n`);
    app.kill('SIGTERM');
    await exitOf(app);
    return 1;
  }
  sidecar.kill('SIGTERM');
  await sidecarExit;
  return code;
}
