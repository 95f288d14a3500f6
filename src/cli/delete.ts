// `weft delete -f FILE` / `weft delete KIND NAME...`: removes resources from the control plane's
// config directory (the file they live in; a file left empty is deleted) and the mesh.
import { MANIFEST_BUNDLE_TYPE } from '../control/config-api-contract';
import type { DeleteOutcome } from '../control/config-writer';
import { bareError, parseCommandArgs, UsageError } from './cli-errors';
import type { CliIo } from './cli-io';
import { ApiError, CONTROL_HELP, CONTROL_OPTION, ControlClient } from './control-client';
import { refusal } from './apply';
import { kindInfo, singularName } from './kind-names';
import { readManifestInputs } from './manifest-input';

export const DELETE_USAGE = `Usage: weft delete -f FILE|DIR|- [-f ...] [options]
       weft delete KIND NAME... [-n NAMESPACE] [options]

Deletes resources from the running control plane: each is removed from the file in its config
directory that defines it (a file left with no resources is deleted) and the mesh is updated.
With -f, only kind and metadata of each document are read, and nothing is deleted unless every
resource named exists.

Options:
  -f, --filename PATH    a YAML/JSON file, a directory of them, or - for stdin (repeatable)
  -R, --recursive        read directories recursively
  -n, --namespace NS     namespace of KIND NAME (default "default")
      --ignore-not-found treat resources that do not exist as deleted
      --dry-run          report what would be deleted, without deleting
  -m, --message TEXT     why: recorded with the change
${CONTROL_HELP}
`;

export async function runDelete(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    argv,
    {
      filename: { type: 'string', short: 'f', multiple: true },
      recursive: { type: 'boolean', short: 'R' },
      namespace: { type: 'string', short: 'n' },
      'ignore-not-found': { type: 'boolean' },
      'dry-run': { type: 'boolean' },
      message: { type: 'string', short: 'm' },
      ...CONTROL_OPTION,
    },
    DELETE_USAGE,
    true,
  );
  const files = values.filename ?? [];
  if (files.length > 0 && positionals.length > 0) throw new UsageError('give either -f or KIND NAME, not both', DELETE_USAGE);
  if (files.length === 0 && positionals.length === 0) throw new UsageError('you must specify -f FILE or KIND NAME', DELETE_USAGE);
  const query = new URLSearchParams();
  if (values['dry-run']) query.set('dryRun', 'true');
  if (values['ignore-not-found']) query.set('ignoreNotFound', 'true');
  if (values.message !== undefined) query.set('message', values.message);
  const qs = query.toString() ? `?${query}` : '';

  if (files.length > 0) {
    const client = ControlClient.fromFlag(values.control, io.env, DELETE_USAGE);
    const sources = await readManifestInputs(files, Boolean(values.recursive), io);
    let outcome: DeleteOutcome;
    try {
      outcome = await client.request<DeleteOutcome>('POST', `/api/v1/delete${qs}`, {
        contentType: MANIFEST_BUNDLE_TYPE,
        text: JSON.stringify({ sources }),
      });
    } catch (err) {
      throw notFound(err) ?? refusal(err);
    }
    print(outcome, io);
    return 0;
  }

  let [kindArg, ...names] = positionals;
  if (kindArg.includes('/')) [kindArg, ...names] = [kindArg.split('/')[0], kindArg.split('/')[1], ...names];
  if (names.length === 0) throw new UsageError(`resource(s) were provided, but no name was specified`, DELETE_USAGE);
  const info = kindInfo(kindArg);
  const namespace = values.namespace ?? 'default';
  const client = ControlClient.fromFlag(values.control, io.env, DELETE_USAGE);
  // One request per name, like kubectl: the names that exist are deleted even if one does not.
  const failures: string[] = [];
  for (const name of names) {
    const path = `/api/v1/resources/${encodeURIComponent(info.plural)}/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}${qs}`;
    try {
      print(await client.request<DeleteOutcome>('DELETE', path), io);
    } catch (err) {
      const missing = notFound(err);
      if (!missing) throw err;
      failures.push(missing.message);
    }
  }
  if (failures.length > 0) throw bareError(failures.join('\n'));
  return 0;
}

function print(outcome: DeleteOutcome, io: CliIo): void {
  for (const w of outcome.warnings) io.err(`${w}\n`);
  const suffix = outcome.dryRun ? ' (server dry run)' : '';
  for (const r of outcome.results) io.out(`${singularName(kindInfo(r.kind))} "${r.name}" deleted${suffix}\n`);
}

/** kubectl's `Error from server (NotFound): ...` for a 404. */
function notFound(err: unknown) {
  if (!(err instanceof ApiError) || err.status !== 404) return undefined;
  return bareError(
    err.message
      .split('; ')
      .map((m) => `Error from server (NotFound): ${m}`)
      .join('\n'),
  );
}
