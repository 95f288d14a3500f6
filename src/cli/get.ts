// `weft get KIND [NAME...]`: the resources the control plane accepted, as a kubectl-style table
// or as YAML/JSON that `weft apply -f` takes back unchanged.
import type { KindInfo } from '../config/kinds';
import { bareError, outputFormat, parseCommandArgs, UsageError } from './cli-errors';
import type { CliIo } from './cli-io';
import { CONTROL_HELP, CONTROL_OPTION, ControlClient } from './control-client';
import { COLUMNS, type ApiResource } from './get-columns';
import { kindInfo, pluralName, singularName } from './kind-names';
import { formatTable } from './table';

export const GET_USAGE = `Usage: weft get KIND [NAME...] [-n NAMESPACE | -A] [-o yaml|json|wide|name]

Lists the resources the running control plane accepted. KIND is a kind, its plural or its short
name (virtualservice, virtualservices, vs; destinationrule, dr; gateway, gw; serviceentry, se;
workloadentry, we; sidecar; service, svc; peerauthentication, pa; authorizationpolicy, ap;
requestauthentication, ra); KIND/NAME works too.

Options:
  -n, --namespace NS    namespace (default "default")
  -A, --all-namespaces  every namespace
  -o, --output FORMAT   yaml | json (re-appliable with \`weft apply -f\`), wide (more columns), name
${CONTROL_HELP}
`;

const FORMATS = ['yaml', 'json', 'wide', 'name'] as const;

interface ResourceList {
  apiVersion: string;
  kind: 'List';
  metadata: { resourceVersion: string };
  items: ApiResource[];
}

export async function runGet(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    argv,
    {
      namespace: { type: 'string', short: 'n' },
      'all-namespaces': { type: 'boolean', short: 'A' },
      output: { type: 'string', short: 'o' },
      ...CONTROL_OPTION,
    },
    GET_USAGE,
    true,
  );
  const format = outputFormat(values.output, FORMATS, GET_USAGE);
  if (positionals.length === 0) throw new UsageError('you must specify the type of resource to get', GET_USAGE);
  if (values['all-namespaces'] && values.namespace) throw new UsageError('-n and -A exclude each other', GET_USAGE);
  let [kindArg, ...names] = positionals;
  if (kindArg.includes('/')) {
    if (names.length > 0) throw new UsageError('there is no need to specify a resource type as a separate argument when passing arguments in resource/name form', GET_USAGE);
    [kindArg, ...names] = kindArg.split('/');
  }
  const info = kindInfo(kindArg);
  const allNamespaces = Boolean(values['all-namespaces']);
  const namespace = values.namespace ?? 'default';
  const client = ControlClient.fromFlag(values.control, io.env, GET_USAGE);

  const query = new URLSearchParams({ kind: info.kind });
  if (!allNamespaces) query.set('namespace', namespace);
  if (names.length === 1) query.set('name', names[0]);
  const list = await client.get<ResourceList>(`/api/v1/resources?${query}`);
  const items = names.length > 0 ? list.items.filter((r) => names.includes(r.metadata.name)) : list.items;
  const missing = names.filter((n) => !items.some((r) => r.metadata.name === n));

  if (format === 'yaml' || format === 'json') {
    const value = names.length === 1 ? items[0] : { ...list, items };
    if (value) io.out(format === 'json' ? JSON.stringify(value, null, 2) + '\n' : (await import('yaml')).stringify(value, { lineWidth: 0 }));
  } else if (format === 'name') {
    for (const r of items) io.out(`${singularName(info)}/${r.metadata.name}\n`);
  } else if (items.length > 0) {
    io.out(renderTable(info, items, allNamespaces, format === 'wide'));
  } else if (names.length === 0) {
    io.err(allNamespaces ? 'No resources found\n' : `No resources found in ${namespace} namespace.\n`);
  }
  if (missing.length > 0) {
    throw bareError(missing.map((n) => `Error from server (NotFound): ${pluralName(info)} "${n}" not found`).join('\n'));
  }
  return 0;
}

export function renderTable(info: KindInfo, items: readonly ApiResource[], withNamespace: boolean, wide: boolean): string {
  const columns = COLUMNS[info.kind].filter((c) => wide || !c.wide);
  const headers = [...(withNamespace ? ['NAMESPACE'] : []), 'NAME', ...columns.map((c) => c.header)];
  const rows = items.map((r) => [...(withNamespace ? [r.metadata.namespace] : []), r.metadata.name, ...columns.map((c) => c.value(r))]);
  return formatTable(headers, rows);
}
