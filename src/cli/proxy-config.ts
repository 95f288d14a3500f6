// `weft proxy-config clusters|listeners|routes|endpoints|secret|all PROXY`: what one proxy is actually
// running, read from its admin endpoint (/config_dump, /clusters?format=json) and printed as
// `istioctl proxy-config` does. The proxy is found through the control plane (GET /api/v1/proxies)
// unless --admin names its admin address directly.
import { CliError, outputFormat, parseCommandArgs, UsageError } from './cli-errors';
import type { CliIo } from './cli-io';
import { CONTROL_HELP, CONTROL_OPTION, ControlClient, httpRequest, parseHostPort, type HttpAddress } from './control-client';
import {
  clustersTable,
  dumpClusters,
  dumpEndpoints,
  dumpListeners,
  dumpRoutes,
  dumpSecrets,
  endpointsTable,
  listenersTable,
  routesTable,
  secretsTable,
  type Json,
} from './proxy-config-tables';
import { findProxy, type ProxyEntry } from './proxy-status';

export const PROXY_CONFIG_USAGE = `Usage: weft proxy-config clusters|listeners|routes|endpoints|secret|all PROXY [-o json] [--admin HOST:PORT] [--cluster NAME]

Shows the configuration a proxy is running, from its admin endpoint, as \`istioctl proxy-config\`:
  clusters    SERVICE FQDN, PORT, SUBSET, DIRECTION, TYPE, DESTINATION RULE
  listeners   ADDRESSES, PORT, MATCH, DESTINATION
  routes      NAME, VHOST NAME, DOMAINS, MATCH, VIRTUAL SERVICE
  endpoints   ENDPOINT, STATUS, OUTLIER CHECK, CLUSTER (live: OUTLIER CHECK FAILED while outlier
              detection has ejected the endpoint)
  secret      RESOURCE NAME, TYPE, STATUS, VALID CERT, SERIAL NUMBER, NOT AFTER, NOT BEFORE, SPIFFE ID
  all         all of them
PROXY is a proxy id, id prefix, NAME.NAMESPACE or workload name as \`weft proxy-status\` lists them;
its admin endpoint is loopback-only (<proxy address>:15000), so run this on the proxy's machine.

Options:
  -o, --output json    the proxy's own JSON (all: the whole /config_dump)
      --admin HOST:PORT  read this admin address (no control plane needed; PROXY is optional)
      --cluster NAME     endpoints of this cluster only (e.g. "outbound|8000||httpbin.default.svc.cluster.local")
${CONTROL_HELP}
`;

const SECTIONS = {
  clusters: ['clusters', 'cluster', 'c'],
  listeners: ['listeners', 'listener', 'l'],
  routes: ['routes', 'route', 'r'],
  endpoints: ['endpoints', 'endpoint', 'ep', 'e'],
  secret: ['secret', 'secrets', 's'],
  all: ['all'],
} as const;
type Section = keyof typeof SECTIONS;

export async function runProxyConfig(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    argv,
    { output: { type: 'string', short: 'o' }, admin: { type: 'string' }, cluster: { type: 'string' }, ...CONTROL_OPTION },
    PROXY_CONFIG_USAGE,
    true,
  );
  const format = outputFormat(values.output, ['json'] as const, PROXY_CONFIG_USAGE);
  const [sectionArg, proxyArg, ...extra] = positionals;
  if (!sectionArg) throw new UsageError('which configuration? clusters, listeners, routes, endpoints, secret or all', PROXY_CONFIG_USAGE);
  const section = (Object.keys(SECTIONS) as Section[]).find((s) => (SECTIONS[s] as readonly string[]).includes(sectionArg));
  if (!section) throw new UsageError(`unknown configuration "${sectionArg}"; use clusters, listeners, routes, endpoints, secret or all`, PROXY_CONFIG_USAGE);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`, PROXY_CONFIG_USAGE);

  let admin: HttpAddress;
  let label: string;
  if (values.admin !== undefined) {
    admin = parseHostPort(values.admin, '--admin', PROXY_CONFIG_USAGE);
    label = proxyArg ?? admin.text;
  } else {
    if (!proxyArg) throw new UsageError('which proxy? give its id or name (see `weft proxy-status`), or --admin HOST:PORT', PROXY_CONFIG_USAGE);
    const client = ControlClient.fromFlag(values.control, io.env, PROXY_CONFIG_USAGE);
    const proxy: ProxyEntry = findProxy(await client.get<ProxyEntry[]>('/api/v1/proxies'), proxyArg);
    admin = parseHostPort(proxy.adminAddress, 'admin address');
    label = proxy.id;
  }

  const dump = await fetchAdminJson(admin, '/config_dump', label);
  const wants = (s: Section) => section === s || section === 'all';
  if (format === 'json') {
    let value: unknown = dump;
    if (section === 'clusters') value = dumpClusters(dump);
    else if (section === 'listeners') value = dumpListeners(dump);
    else if (section === 'routes') value = dumpRoutes(dump);
    else if (section === 'endpoints') value = (await fetchClusterStatuses(admin, label)) ?? dumpEndpoints(dump);
    else if (section === 'secret') value = { dynamicActiveSecrets: dumpSecrets(dump) };
    io.out(JSON.stringify(value, null, 2) + '\n');
    return 0;
  }
  const tables: string[] = [];
  if (wants('clusters')) tables.push(clustersTable(dumpClusters(dump)));
  if (wants('listeners')) tables.push(listenersTable(dumpListeners(dump)));
  if (wants('routes')) tables.push(routesTable(dumpRoutes(dump)));
  if (wants('endpoints')) {
    const statuses = await fetchClusterStatuses(admin, label);
    tables.push(endpointsTable(statuses ? { clusterStatuses: statuses } : { loadAssignments: dumpEndpoints(dump) }, values.cluster));
  }
  if (wants('secret')) tables.push(secretsTable(dumpSecrets(dump)));
  io.out(tables.join('\n'));
  return 0;
}

function adminUnreachable(admin: HttpAddress, label: string) {
  return (cause: string) =>
    new CliError(
      `cannot reach the admin endpoint of proxy ${label} at ${admin.text}: ${cause} (hint: the admin port listens on loopback only; run this on the proxy's machine, or pass --admin HOST:PORT)`,
    );
}

async function fetchAdminJson(admin: HttpAddress, path: string, label: string): Promise<Json> {
  const res = await httpRequest(admin, 'GET', path, { unreachable: adminUnreachable(admin, label), timeoutMs: 15_000 });
  if (res.status !== 200) throw new CliError(`the admin endpoint of proxy ${label} at ${admin.text} answered ${path} with ${res.status}: ${res.text.split('\n')[0].slice(0, 200)}`);
  try {
    return JSON.parse(res.text) as Json;
  } catch {
    throw new CliError(`the admin endpoint of proxy ${label} at ${admin.text} answered ${path} with something that is not JSON`);
  }
}

/** Live endpoint health, as istioctl reads it; undefined when the proxy does not serve it. */
async function fetchClusterStatuses(admin: HttpAddress, label: string): Promise<Json[] | undefined> {
  const res = await httpRequest(admin, 'GET', '/clusters?format=json', { unreachable: adminUnreachable(admin, label), timeoutMs: 15_000 });
  if (res.status !== 200) return undefined;
  try {
    const body = JSON.parse(res.text) as Json;
    return Array.isArray(body.cluster_statuses) ? body.cluster_statuses : undefined;
  } catch {
    return undefined;
  }
}
