// `weft rollback [VERSION]`: restores the resources of an earlier config version as a new version
// (source rollback): the control plane rewrites its config directory to match, so files and mesh
// never disagree, and pushes the result to the proxies.
import type { RestoreOutcome } from '../control/config-writer';
import { parseCommandArgs, UsageError } from './cli-errors';
import type { CliIo } from './cli-io';
import { CONTROL_HELP, CONTROL_OPTION, ControlClient } from './control-client';
import { explained, formatPreview, painter } from './diff';
import { qualifiedName } from './kind-names';

export const ROLLBACK_USAGE = `Usage: weft rollback [VERSION] [-m MESSAGE] [--dry-run]

Restores the config of VERSION (see \`weft history\`; default: the version before the current
one, i.e. undo the last change) as a new version with source "rollback" and message "rollback to
VERSION". Resources are rewritten in the files of the config directory that hold them (new ones
under applied/, removed ones taken out of their files), and proxies get the restored config.

Options:
  -m, --message TEXT   why: added to the version's message
      --dry-run        show the diff and the proxies that would change, without changing anything
${CONTROL_HELP}
`;

export async function runRollback(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    argv,
    { message: { type: 'string', short: 'm' }, 'dry-run': { type: 'boolean' }, ...CONTROL_OPTION },
    ROLLBACK_USAGE,
    true,
  );
  if (positionals.length > 1) throw new UsageError(`expected at most one VERSION, got ${positionals.length}`, ROLLBACK_USAGE);
  const query = new URLSearchParams();
  if (positionals[0] !== undefined) query.set('version', positionals[0]);
  if (values.message !== undefined) query.set('message', values.message);
  if (values['dry-run']) query.set('dryRun', 'true');
  const client = ControlClient.fromFlag(values.control, io.env, ROLLBACK_USAGE);
  const outcome = await client.request<RestoreOutcome & { target: string }>('POST', `/api/v1/rollback${query.toString() ? `?${query}` : ''}`).catch(explained);
  const suffix = outcome.dryRun ? ' (server dry run)' : '';
  for (const r of outcome.results) io.out(`${qualifiedName(r.kind, r.name)} ${r.action}${suffix}\n`);
  if (outcome.dryRun) {
    io.out(formatPreview(outcome.preview, painter(io)));
    return 0;
  }
  if (outcome.results.length === 0) {
    io.out(`nothing to roll back: the running config (${outcome.version}) already is ${outcome.target}'s\n`);
    return 0;
  }
  io.out(`rolled back to ${outcome.target}: ${outcome.version} is serving\n`);
  return 0;
}
