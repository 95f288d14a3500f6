// `weft run --workload NAME -- COMMAND...`: meshes the user's own application — starts a sidecar
// for WorkloadEntry NAME, then runs COMMAND beside it with HTTP_PROXY pointing at the sidecar and
// the workload's address in the environment. Stops both when either ends, or on Ctrl-C.
// With --netns (transparent capture, Linux and root): the workload gets its own network namespace
// with its address, capture rules and a hosts file for mesh names; the sidecar (`weft proxy
// --capture`, group 1337) and the unchanged COMMAND run inside it (src/capture/).
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { appAddressFor } from '../model/proxy';
import { exitCodeOf, sidecarReady } from './workload-processes';
import { CliError, parseCommandArgs, UsageError } from './cli-errors';
import type { CliIo } from './cli-io';
import { CONTROL_HELP, CONTROL_OPTION, ControlClient } from './control-client';
import { PROXY_NODE_FLAGS } from '../proxy/node-flags';

export const RUN_USAGE = `Usage: weft run --workload NAME [-n NS] [--xds HOST:PORT] [--state-dir DIR] [--control HOST:PORT] -- COMMAND [ARGS...]
       weft run --netns --workload NAME [-n NS] [--netns-name NAME] [--bridge weft0] [--bridge-address 10.250.0.1/24] -- COMMAND [ARGS...]

Starts a sidecar for WorkloadEntry NAME (as \`weft proxy --workload NAME\`), waits until it is
ready, then runs COMMAND with:
  HTTP_PROXY / http_proxy   http://<workload address>:15001 (call other services by mesh name)
  NO_PROXY                  localhost,127.0.0.1 (calls to itself bypass the sidecar)
  BIND_ADDRESS              the app address: listen there on the service's target port. The
                            sidecar owns <workload address>:<port>, terminates mesh mTLS there,
                            applies the workload's policies and forwards to you.
  WORKLOAD_NAME, POD_NAMESPACE
When COMMAND exits the sidecar is stopped, and weft run exits with COMMAND's status.

With --netns (transparent capture, like Istio; Linux, root): creates network namespace
weft-<NAME> (or joins --netns-name) with the WorkloadEntry's address on eth0, a veth pair to the
bridge (created when missing; its address is the namespaces' gateway), installs the capture rules
(as \`weft iptables -g 1337 -u ""\`), writes the namespace's /etc/hosts with the mesh's service names
(Istio's DNS auto-allocation range 240.240.0.0/16 for services without an address) and the
control plane (istiod.istio-system.svc = the bridge address, DNATed to the host's loopback), then
runs the sidecar (\`weft proxy --capture\`, as group 1337) and COMMAND inside it, unchanged: it
listens on its own port (localhost or all addresses) and calls http://reviews:9080 directly. No
HTTP_PROXY, no BIND_ADDRESS. On exit everything created is removed (the namespace, veth and rules;
the bridge when no other workload uses it).

Options:
      --workload NAME    WorkloadEntry to run as
  -n, --namespace NS     its namespace (default "default")
      --xds HOST:PORT    control plane xDS address (default 127.0.0.1:15012, mutual TLS)
      --xds-auth MODE    mutual-tls | none (default mutual-tls on port 15012, else none)
      --state-dir DIR    the control plane's state directory: mesh root and bootstrap token
                         (default $WEFT_STATE_DIR or .weft/state)
      --netns            run in a network namespace with transparent capture (see above)
      --netns-name NAME  the namespace to create or join (default weft-<NAME>)
      --bridge NAME      the bridge namespaces attach to (default weft0)
      --bridge-address A the bridge's address/prefix: the workloads' network (default 10.250.0.1/24)
${CONTROL_HELP}
`;

const WEFT = path.resolve(__dirname, '..', '..', '..', 'bin', 'weft');

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
      netns: { type: 'boolean' },
      'netns-name': { type: 'string' },
      bridge: { type: 'string', default: 'weft0' },
      'bridge-address': { type: 'string', default: '10.250.0.1/24' },
      ...CONTROL_OPTION,
    },
    RUN_USAGE,
  );
  if (!values.workload) throw new UsageError('--workload NAME is required', RUN_USAGE);
  const control = ControlClient.fromFlag(values.control, io.env, RUN_USAGE);
  if (values.netns) {
    const { runInNetworkNamespace } = await import('./run-netns');
    return runInNetworkNamespace({ ...values, workload: values.workload, namespace: values.namespace!, command, control }, io);
  }
  if (values['netns-name']) throw new UsageError('--netns-name goes with --netns', RUN_USAGE);
  const workload = await control.get<{ address: string; name: string }>(
    `/api/v1/workloads/${encodeURIComponent(values.namespace!)}/${encodeURIComponent(values.workload)}`,
  );
  const proxyArgs = [WEFT, 'proxy', '--workload', values.workload, '-n', values.namespace!, '--xds', values.xds!, '--control', control.address.text];
  if (values['state-dir']) proxyArgs.push('--state-dir', values['state-dir']);
  if (values['xds-auth']) proxyArgs.push('--xds-auth', values['xds-auth']);
  const appAddress = appAddressFor(workload.address);
  const sidecar = spawn(process.execPath, [...PROXY_NODE_FLAGS, ...proxyArgs], { stdio: ['ignore', 'inherit', 'inherit'] });
  const sidecarExit = exitCodeOf(sidecar);
  const deadline = Date.now() + 30_000;
  let sidecarGone = false;
  void sidecarExit.then(() => (sidecarGone = true));
  while (!(await sidecarReady(workload.address))) {
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
  const code = await Promise.race([exitCodeOf(app), sidecarExit.then(() => -1)]);
  if (code === -1) {
    io.err(`weft run: the sidecar for ${values.workload} exited; stopping ${command[0]}\n`);
    app.kill('SIGTERM');
    await exitCodeOf(app);
    return 1;
  }
  sidecar.kill('SIGTERM');
  await sidecarExit;
  return code;
}
