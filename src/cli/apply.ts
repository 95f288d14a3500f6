// `weft apply -f FILE|DIR|-`: validates on the control plane and writes the resources into its
// config directory, all or nothing; prints kubectl's `virtualservice.networking.istio.io/reviews
// configured` lines, or the analyzer's messages and exit 1 when anything is invalid.
import type { ApplyOutcome } from '../control/config-writer';
import { MANIFEST_BUNDLE_TYPE } from '../control/config-api-contract';
import { bareError, CliError, parseCommandArgs, UsageError } from './cli-errors';
import type { CliIo } from './cli-io';
import { ApiError, CONTROL_HELP, CONTROL_OPTION, ControlClient, withHint } from './control-client';
import { formatPreview, painter } from './diff';
import { qualifiedName } from './kind-names';
import { readManifestInputs } from './manifest-input';

export const APPLY_USAGE = `Usage: weft apply -f FILE|DIR|- [-f ...] [--dry-run] [-m MESSAGE]

Validates the resources with the same checks as \`weft analyze\` (schema, values, references
across resources) and applies them to the running control plane: each is written into its config
directory (a resource that lives in a file is rewritten there, a new one goes to applied/), so a
restart keeps it. If any document is invalid, nothing is changed and the problems are printed.

With --dry-run nothing changes: it validates the same way, then prints the diff against the
running config (resources added or changed, field by field) and the connected proxies whose xDS
configuration would change (by node id, with the clusters, endpoints, listeners and routes).

Options:
  -f, --filename PATH   a YAML/JSON file, a directory of them, or - for stdin (repeatable)
  -R, --recursive       read directories recursively
      --dry-run         validate and show what would change, without changing anything
  -m, --message TEXT    why: recorded with the version (\`weft history\`) and in the control plane's log
${CONTROL_HELP}
`;

export async function runApply(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    argv,
    {
      filename: { type: 'string', short: 'f', multiple: true },
      recursive: { type: 'boolean', short: 'R' },
      'dry-run': { type: 'boolean' },
      message: { type: 'string', short: 'm' },
      ...CONTROL_OPTION,
    },
    APPLY_USAGE,
    true,
  );
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}" (hint: files are given with -f)`, APPLY_USAGE);
  const files = values.filename ?? [];
  if (files.length === 0) throw new UsageError('must specify one of -f', APPLY_USAGE);
  const client = ControlClient.fromFlag(values.control, io.env, APPLY_USAGE);
  const sources = await readManifestInputs(files, Boolean(values.recursive), io);

  const dryRun = Boolean(values['dry-run']);
  let outcome: ApplyOutcome;
  try {
    outcome = await client.request<ApplyOutcome>('POST', `/api/v1/apply${dryRun ? '?dryRun=true' : ''}`, {
      contentType: MANIFEST_BUNDLE_TYPE,
      text: JSON.stringify({ sources, ...(values.message !== undefined ? { message: values.message } : {}) }),
    });
  } catch (err) {
    throw refusal(err);
  }
  for (const w of outcome.warnings) io.err(`${w}\n`);
  const suffix = outcome.dryRun ? ' (server dry run)' : '';
  for (const r of outcome.results) io.out(`${qualifiedName(r.kind, r.name)} ${r.action}${suffix}\n`);
  if (outcome.dryRun) io.out(formatPreview(outcome.preview, painter(io)));
  return 0;
}

/** A refused change: the analyzer's lines, one per problem, then one `error:` line. */
export function refusal(err: unknown): unknown {
  if (!(err instanceof ApiError)) return err;
  const messages = Array.isArray(err.body.messages) ? (err.body.messages as string[]) : [];
  return messages.length > 0 ? bareError([...messages, `error: ${withHint(err)}`].join('\n')) : new CliError(withHint(err));
}
