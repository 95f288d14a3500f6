// `weft run --netns`: one workload in its own network namespace with transparent capture — the
// namespace, rules and hosts file (src/capture/captured-workload.ts), the sidecar inside it as
// group 1337 (`weft proxy --capture`), then the unchanged application. Everything it created is
// removed when the application ends, the sidecar dies, or on Ctrl-C / SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { CapturedWorkload, CONTROL_PLANE_HOST, PROXY_GID } from '../capture/captured-workload';
import type { CaptureRulesOptions } from '../capture/iptables-rules';
import type { HostsService } from '../capture/mesh-hosts';
import { namespaceNameFor, parseBridge } from '../capture/network-namespace';
import { exitCodeOf, sidecarReady } from './workload-processes';
import { CliError } from './cli-errors';
import type { CliIo } from './cli-io';
import { parseHostPort, type ControlClient } from './control-client';

const WEFT = path.resolve(__dirname, '..', '..', '..', 'bin', 'weft');
const READY_TIMEOUT_MS = 60_000;
const HOSTS_REFRESH_MS = 5_000;

export interface NetnsRunOptions {
  workload: string;
  namespace: string;
  command: string[];
  control: ControlClient;
  xds?: string;
  'state-dir'?: string;
  'xds-auth'?: string;
  'netns-name'?: string;
  bridge?: string;
  'bridge-address'?: string;
}

interface ResourceList {
  items?: { kind: string; metadata: { name: string; namespace?: string }; spec?: { clusterIP?: string; hosts?: string[]; addresses?: string[] } }[];
}

/** The mesh's Services and ServiceEntries, for the namespace's hosts file. */
export async function listHostsServices(control: ControlClient): Promise<HostsService[]> {
  const out: HostsService[] = [];
  for (const kind of ['Service', 'ServiceEntry'] as const) {
    const list = await control.get<ResourceList>(`/api/v1/resources?kind=${kind}`);
    for (const r of list.items ?? []) {
      out.push({
        kind,
        name: r.metadata.name,
        namespace: r.metadata.namespace ?? 'default',
        clusterIP: r.spec?.clusterIP,
        hosts: r.spec?.hosts,
        addresses: r.spec?.addresses,
      });
    }
  }
  return out;
}

function isLoopbackOrAny(host: string): boolean {
  return host === 'localhost' || host === '0.0.0.0' || host === '::' || host === '::1' || /^127\./.test(host);
}

async function stop(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = exitCodeOf(child);
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(timer);
}

export async function runInNetworkNamespace(o: NetnsRunOptions, io: CliIo): Promise<number> {
  if (process.platform !== 'linux') throw new CliError('--netns needs Linux (network namespaces and iptables)');
  if (process.getuid?.() !== 0) throw new CliError('--netns needs root: it creates a network namespace, a veth pair and iptables rules (hint: sudo)');
  // The addon first: nothing is created when capture could not work anyway.
  const { loadOriginalDstAddon, CaptureUnavailableError } = await import('../capture/original-destination');
  try {
    loadOriginalDstAddon();
  } catch (err) {
    if (err instanceof CaptureUnavailableError) throw new CliError(`--netns: ${err.message}`);
    throw err;
  }
  const bridge = parseBridge(o.bridge ?? 'weft0', o['bridge-address'] ?? '10.250.0.1/24');
  const workload = await o.control.get<{ address: string; name: string }>(
    `/api/v1/workloads/${encodeURIComponent(o.namespace)}/${encodeURIComponent(o.workload)}`,
  );
  const services = await listHostsServices(o.control);

  // The control plane as seen from inside: its loopback ports are DNATed from the bridge address.
  const xds = parseHostPort(o.xds ?? '127.0.0.1:15012', '--xds');
  const controlAddr = o.control.address;
  const controlPorts: number[] = [];
  const inside = (a: { host: string; port: number }) => {
    if (!isLoopbackOrAny(a.host)) return `${a.host}:${a.port}`;
    controlPorts.push(a.port);
    return `${CONTROL_PLANE_HOST}:${a.port}`;
  };
  const xdsInside = inside(xds);
  const controlInside = inside(controlAddr);
  // As `weft proxy` decides: mutual TLS on 15012 unless told otherwise; the CA is then the xDS
  // address, else the host's 15012, reached the same way.
  const xdsAuth = o['xds-auth'] ?? (xds.port === 15012 ? 'mutual-tls' : 'none');
  const caInside = xdsAuth === 'mutual-tls' ? xdsInside : inside(parseHostPort('127.0.0.1:15012', 'CA'));

  const rules: CaptureRulesOptions = {
    outboundPort: 15001,
    inboundPort: 15006,
    proxyUids: [],
    proxyGids: [PROXY_GID],
    includeOutboundCidrs: '*',
    excludeOutboundCidrs: [],
    includeInboundPorts: '*',
    excludeInboundPorts: [],
    excludeOutboundPorts: [],
  };
  const netnsName = o['netns-name'] ?? namespaceNameFor(o.workload, o.namespace);
  let captured: CapturedWorkload;
  try {
    captured = CapturedWorkload.setUp({ netnsName, address: workload.address, workloadNamespace: o.namespace, bridge, controlPorts, services, rules });
  } catch (err) {
    throw new CliError(`--netns: ${(err as Error).message}`);
  }
  io.err(`weft run: ${o.workload} in network namespace ${netnsName} (${workload.address} on ${bridge.name}), capture installed\n`);

  const children: ChildProcess[] = [];
  let refresh: NodeJS.Timeout | undefined;
  let stopping = false;
  const cleanup = async () => {
    if (refresh) clearInterval(refresh);
    for (const c of [...children].reverse()) await stop(c, 8000);
    captured.tearDown();
  };
  try {
    const proxyArgs = [WEFT, 'proxy', '--capture', '--workload', o.workload, '-n', o.namespace, '--xds', xdsInside, '--control', controlInside];
    if (o['state-dir']) proxyArgs.push('--state-dir', o['state-dir']);
    proxyArgs.push('--xds-auth', xdsAuth, '--ca-address', caInside);
    // The sidecar keeps root's uid (it reads the root-only token) in group 1337: the rules' owner match.
    const sidecar = spawn(captured.exec()[0], [...captured.exec().slice(1), 'setpriv', `--regid=${PROXY_GID}`, '--clear-groups', process.execPath, ...proxyArgs], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    children.push(sidecar);
    const sidecarExit = exitCodeOf(sidecar);
    let sidecarGone = false;
    void sidecarExit.then(() => (sidecarGone = true));
    const interrupted = new Promise<number>((resolve) => {
      const onSignal = (signal: NodeJS.Signals) => {
        stopping = true;
        const app = children[1];
        if (app) app.kill(signal);
        else resolve(130);
      };
      process.once('SIGINT', () => onSignal('SIGINT'));
      process.once('SIGTERM', () => onSignal('SIGTERM'));
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!(await sidecarReady(workload.address))) {
      if (stopping) return 130;
      if (sidecarGone) throw new CliError(`the sidecar for ${o.workload} exited before it was ready (see its log above)`);
      if (Date.now() > deadline) throw new CliError(`the sidecar for ${o.workload} was not ready within ${READY_TIMEOUT_MS / 1000}s`);
      await new Promise((r) => setTimeout(r, 100));
    }
    refresh = setInterval(() => {
      listHostsServices(o.control).then(
        (s) => captured.updateServices(s),
        () => undefined,
      );
    }, HOSTS_REFRESH_MS);
    refresh.unref();
    const env: NodeJS.ProcessEnv = { ...process.env, WORKLOAD_NAME: workload.name, POD_NAMESPACE: o.namespace, INSTANCE_IP: workload.address };
    for (const k of ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'NO_PROXY', 'no_proxy', 'BIND_ADDRESS']) delete env[k];
    const app = spawn(captured.exec()[0], [...captured.exec().slice(1), ...o.command], { stdio: 'inherit', env });
    app.on('error', (err) => io.err(`weft run: cannot start ${o.command[0]}: ${err.message}\n`));
    children.push(app);
    const code = await Promise.race([exitCodeOf(app), sidecarExit.then(() => -1), interrupted]);
    if (code === -1) {
      io.err(`weft run: the sidecar for ${o.workload} exited; stopping ${o.command[0]}\n`);
      return 1;
    }
    return code;
  } finally {
    await cleanup();
  }
}
