// `weft dashboard`: where the control plane's dashboard is (http://HOST:PORT/ui), after checking
// that it answers; with --open, hands the URL to the desktop's browser opener.
import { spawn } from 'node:child_process';
import { isIP } from 'node:net';
import { CliError, parseCommandArgs } from './cli-errors';
import type { CliIo } from './cli-io';
import { ApiError, CONTROL_HELP, CONTROL_OPTION, ControlClient } from './control-client';

export const DASHBOARD_USAGE = `Usage: weft dashboard [--control HOST:PORT] [--open]

Prints the URL of the dashboard the control plane serves on its HTTP address (/ui): the live
service graph (request rate, errors, p50/p99 and mTLS per edge), golden signals per service, the
config with its validation messages, proxy sync status (STALE and NACK in red) and the last config
versions. It is built from the proxies' own stats; no Prometheus is needed.

Options:
      --open               also open it in a browser (xdg-open; open on macOS)
${CONTROL_HELP}
`;

interface ProxyHealthAnswer {
  configVersion?: string;
  proxies: { id: string; health: { state: string; unhealthy: boolean } }[];
}

export async function runDashboard(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs(argv, { open: { type: 'boolean' }, ...CONTROL_OPTION }, DASHBOARD_USAGE);
  const client = ControlClient.fromFlag(values.control, io.env, DASHBOARD_USAGE);
  let health: ProxyHealthAnswer;
  try {
    health = await client.get<ProxyHealthAnswer>('/api/v1/proxy-health');
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      throw new CliError(`the control plane at ${client.address.text} serves no dashboard (hint: it is older than this weft; upgrade it)`);
    }
    throw err;
  }
  const url = dashboardUrl(client.address.host, client.address.port);
  io.out(url + '\n');
  const bad = health.proxies.filter((p) => p.health.unhealthy);
  io.err(
    `config ${health.configVersion ?? '(none yet)'}, ${health.proxies.length} connected ${health.proxies.length === 1 ? 'proxy' : 'proxies'}` +
      (bad.length ? `, ${bad.length} out of sync: ${bad.map((p) => `${p.id} (${p.health.state})`).join(', ')}` : '') +
      '\n',
  );
  if (values.open) await openInBrowser(url, io);
  return 0;
}

/** The URL a browser on this machine uses: a wildcard bind address is reached on loopback. */
export function dashboardUrl(host: string, port: number): string {
  const reachable = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${isIP(reachable) === 6 ? `[${reachable}]` : reachable}:${port}/ui`;
}

function openInBrowser(url: string, io: CliIo): Promise<void> {
  const opener = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  return new Promise((resolve) => {
    const child = spawn(opener, [url], { stdio: 'ignore', detached: true });
    child.once('error', (err: NodeJS.ErrnoException) => {
      io.err(`could not open a browser (${opener}: ${err.code === 'ENOENT' ? 'not installed' : err.message}); open the URL above yourself\n`);
      resolve();
    });
    child.once('spawn', () => {
      child.unref();
      resolve();
    });
  });
}
