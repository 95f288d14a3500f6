// `weft proxy-status [PROXY]`: every proxy connected to the control plane and, per xDS type,
// whether it has what it was sent (SYNCED), has not answered yet (STALE), rejected it (NACK,
// with the proxy's error) or was sent nothing (NOT SENT) — istioctl proxy-status's view. On a
// terminal, STALE and NACK are red: the proxies not running the config they were sent.
import type { ProxySyncStatus, TypeSyncStatus } from '../xds/server/ads-connection';
import { CliError, outputFormat, parseCommandArgs, UsageError } from './cli-errors';
import type { CliIo } from './cli-io';
import { CONTROL_HELP, CONTROL_OPTION, ControlClient } from './control-client';
import { formatTable } from './table';

export const PROXY_STATUS_USAGE = `Usage: weft proxy-status [PROXY] [-o json]

Shows every proxy connected to the control plane: its id, namespace and address, and for each xDS
type (CDS, LDS, EDS, RDS) SYNCED (ACKed what was sent), STALE (sent, no answer yet), NACK (rejected;
the proxy keeps its previous config and its error is printed) or NOT SENT; on a terminal STALE and
NACK are shown in red (NO_COLOR turns colours off). VERSION is the snapshot the proxy's config was
computed from. With PROXY (an id, id prefix, NAME.NAMESPACE or workload name), shows that proxy's
per-type details.

Options:
  -o, --output json   the control plane's answer as JSON
${CONTROL_HELP}
`;

/** One entry of GET /api/v1/proxies. */
export interface ProxyEntry extends ProxySyncStatus {
  ips: string[];
  workloadName?: string;
  /** Where the proxy's admin endpoint should listen (loopback). */
  adminAddress: string;
}

const TYPES = ['CDS', 'LDS', 'EDS', 'RDS'] as const;

export async function runProxyStatus(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, { output: { type: 'string', short: 'o' }, ...CONTROL_OPTION }, PROXY_STATUS_USAGE, true);
  const format = outputFormat(values.output, ['json'] as const, PROXY_STATUS_USAGE);
  if (positionals.length > 1) throw new UsageError(`expected at most one PROXY, got ${positionals.length}`, PROXY_STATUS_USAGE);
  const client = ControlClient.fromFlag(values.control, io.env, PROXY_STATUS_USAGE);
  const all = await client.get<ProxyEntry[]>('/api/v1/proxies');
  const proxies = positionals.length ? [findProxy(all, positionals[0])] : all;

  if (format === 'json') {
    io.out(JSON.stringify(positionals.length ? proxies[0] : proxies, null, 2) + '\n');
    return 0;
  }
  if (proxies.length === 0) {
    io.err(`No proxies are connected to the control plane at ${client.address.text}.\n`);
    return 0;
  }
  const paint = painter(io);
  const rows = [...proxies]
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((p) => [
      isOutOfSync(p.state) ? paint.red(p.id) : p.id,
      p.namespace,
      p.ips[0] ?? p.address,
      ...TYPES.map((t) => paint.state(stateOf(p, t))),
      p.snapshotVersion ?? '',
    ]);
  io.out(formatTable(['NAME', 'NAMESPACE', 'ADDRESS', ...TYPES, 'VERSION'], rows));

  const nacks = proxies.flatMap((p) => p.types.filter((t) => t.state === 'NACK' && t.lastNack).map((t) => ({ p, t })));
  if (positionals.length) {
    io.out('\n' + details(proxies[0], paint));
  } else if (nacks.length > 0) {
    io.out('\nNACKed (the proxy keeps serving its previous config):\n');
    for (const { p, t } of nacks) io.out(`  ${paint.red(`${p.id} ${t.type} ${t.lastNack!.version}`)}: ${t.lastNack!.message}\n`);
  }
  return 0;
}

function isOutOfSync(state: string): boolean {
  return state === 'STALE' || state === 'NACK';
}

/** Red for the out-of-sync states, only on a terminal and unless NO_COLOR is set (no-color.org). */
function painter(io: CliIo) {
  const on = io.stdoutIsTTY === true && !io.env.NO_COLOR;
  const red = (text: string) => (on ? `\x1b[31m${text}\x1b[0m` : text);
  return { red, state: (state: string) => (isOutOfSync(state) ? red(state) : state) };
}

function stateOf(p: ProxyEntry, type: string): string {
  const t = p.types.find((x) => x.type === type);
  return !t || t.state === 'NOT_SENT' ? 'NOT SENT' : t.state;
}

function details(p: ProxyEntry, paint: ReturnType<typeof painter>): string {
  const rows = p.types.map((t: TypeSyncStatus) => [
    t.type,
    paint.state(t.state === 'NOT_SENT' ? 'NOT SENT' : t.state),
    t.versionSent ?? '',
    t.versionAcked ?? '',
    String(t.resourcesSent),
    t.resourceNames.length > 3 ? `${t.resourceNames.slice(0, 3).join(',')} +${t.resourceNames.length - 3}` : t.resourceNames.join(','),
    t.lastNack ? `${t.lastNack.version}: ${t.lastNack.message}` : '',
  ]);
  const head = [
    `Proxy:      ${p.id}`,
    `Type:       ${p.type}`,
    `Workload:   ${p.workloadName ?? ''}`,
    `Addresses:  ${p.ips.join(', ')}`,
    `Stream:     ${p.connectionId} from ${p.address}, connected ${p.connectedAt}`,
    `Admin:      ${p.adminAddress}`,
    '',
  ].join('\n');
  return head + '\n' + formatTable(['TYPE', 'STATE', 'SENT', 'ACKED', 'RESOURCES', 'SUBSCRIBED', 'LAST NACK'], rows);
}

/**
 * The proxy named by `query`: an exact id, an istioctl-style `NAME.NAMESPACE`, a workload name, or
 * a unique id prefix. Throws with the candidates when it is unknown or ambiguous.
 */
export function findProxy(proxies: readonly ProxyEntry[], query: string): ProxyEntry {
  const exact = proxies.filter((p) => p.id === query);
  if (exact.length > 0) return exact[0];
  const tiers: ((p: ProxyEntry) => boolean)[] = [
    (p) => `${p.workloadName}.${p.namespace}` === query,
    (p) => p.workloadName === query,
    (p) => p.id.startsWith(query),
    (p) => p.id.includes(query),
  ];
  for (const matches of tiers) {
    const found = proxies.filter(matches);
    const ids = [...new Set(found.map((p) => p.id))];
    if (ids.length === 1) return found[0];
    if (ids.length > 1) throw new CliError(`"${query}" matches ${ids.length} proxies: ${ids.join(', ')} (hint: give more of the id)`);
  }
  const known = proxies.map((p) => p.id);
  throw new CliError(
    `no proxy "${query}" is connected to the control plane${known.length ? ` (connected: ${known.slice(0, 10).join(', ')}${known.length > 10 ? ', ...' : ''})` : ' (none is connected)'}`,
  );
}
