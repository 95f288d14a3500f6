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
import { follow } from './rollout';
import { parseMillis, parseRate, type ApplyWatchStatus } from '../control/rollout-contract';

export const APPLY_USAGE = `Usage: weft apply -f FILE|DIR|- [-f ...] [--dry-run] [-m MESSAGE]
                  [--watch DURATION [--max-error-rate 1%] [--max-p99 500ms] [--min-requests 20]]

Validates the resources with the same checks as \`weft analyze\` (schema, values, references
across resources) and applies them to the running control plane: each is written into its config
directory (a resource that lives in a file is rewritten there, a new one goes to applied/), so a
restart keeps it. If any document is invalid, nothing is changed and the problems are printed.

With --dry-run nothing changes: it validates the same way, then prints the diff against the
running config (resources added or changed, field by field) and the connected proxies whose xDS
configuration would change (by node id, with the clusters, endpoints, listeners and routes).

With --watch the change is health-gated: the control plane watches the golden signals of the
services it touches (every service when it changes more than VirtualServices and
DestinationRules) for DURATION, and restores the changed resources (a new version, source
"rollback", saying why) when a service regresses: its error rate (5xx share) over the requests
since the proxies ACKed the change is above --max-error-rate and higher than in the same time
before the change, or likewise its p99 against --max-p99. Judged only on --min-requests. Exit
status 1 when the change was rolled back.

Options:
  -f, --filename PATH   a YAML/JSON file, a directory of them, or - for stdin (repeatable)
  -R, --recursive       read directories recursively
      --dry-run         validate and show what would change, without changing anything
  -m, --message TEXT    why: recorded with the version (\`weft history\`) and in the control plane's log
      --watch DURATION  watch the change for DURATION and roll it back if the mesh regresses
      --max-error-rate RATE, --max-p99 DURATION, --min-requests N
                        --watch thresholds (default 1%, 500ms, 20 requests)
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
      watch: { type: 'string' },
      'max-error-rate': { type: 'string' },
      'max-p99': { type: 'string' },
      'min-requests': { type: 'string' },
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
  const query = new URLSearchParams();
  if (dryRun) query.set('dryRun', 'true');
  if (values.watch !== undefined) {
    const checks: [string, string, (s: string) => unknown, string][] = [
      ['watch', 'watch', (s) => (parseMillis(s)! > 0 ? s : undefined), 'a duration such as 60s'],
      ['max-error-rate', 'maxErrorRate', parseRate, 'a rate such as 1%'],
      ['max-p99', 'maxP99', parseMillis, 'a duration such as 500ms'],
      ['min-requests', 'minRequests', (s) => (/^[1-9]\d*$/.test(s) ? s : undefined), 'a positive number'],
    ];
    for (const [flag, param, parse, what] of checks) {
      const text = values[flag as keyof typeof values] as string | undefined;
      if (text === undefined) continue;
      if (parse(text) === undefined) throw new UsageError(`--${flag} ${text} is not ${what}`, APPLY_USAGE);
      query.set(param, text);
    }
  } else if (values['max-error-rate'] !== undefined || values['max-p99'] !== undefined || values['min-requests'] !== undefined) {
    throw new UsageError('--max-error-rate, --max-p99 and --min-requests go with --watch', APPLY_USAGE);
  }
  let outcome: ApplyOutcome & { watch?: ApplyWatchStatus };
  try {
    outcome = await client.request<ApplyOutcome & { watch?: ApplyWatchStatus }>('POST', `/api/v1/apply${query.toString() ? `?${query}` : ''}`, {
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
  if (outcome.watch) {
    io.out(`${outcome.version} applied; watching it for ${outcome.watch.windowSeconds}s (Ctrl-C stops following, not the watch)\n`);
    return follow(client, io, `/api/v1/apply-watches/${outcome.watch.id}`);
  }
  if (values.watch !== undefined && !outcome.dryRun) io.out('nothing changed, so there is nothing to watch\n');
  return 0;
}

/** A refused change: the analyzer's lines, one per problem, then one `error:` line. */
export function refusal(err: unknown): unknown {
  if (!(err instanceof ApiError)) return err;
  const messages = Array.isArray(err.body.messages) ? (err.body.messages as string[]) : [];
  return messages.length > 0 ? bareError([...messages, `error: ${withHint(err)}`].join('\n')) : new CliError(withHint(err));
}
