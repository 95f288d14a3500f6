// `weft history`: every config version the control plane keeps — id, time, what made it (file,
// apply, delete, rollback, ...), the operator's message, and how many resources it added, changed
// and removed — oldest first, the one serving marked like kubectl marks the current context.
import type { VersionSummary } from '../control/config-history';
import { outputFormat, parseCommandArgs, UsageError } from './cli-errors';
import type { CliIo } from './cli-io';
import { CONTROL_HELP, CONTROL_OPTION, ControlClient } from './control-client';
import { formatTable } from './table';

export const HISTORY_USAGE = `Usage: weft history [-o json]

Lists the config versions the control plane keeps (the last 100 by default; they survive a
restart), oldest first. Every accepted change is a version: an edit in the config directory
(SOURCE file), weft apply, weft delete, weft rollback, or a mesh config edit. MESSAGE is what
\`weft apply -m\` said, else why the version was made. The version serving is marked with *.

See what a version changed with \`weft diff\`, and go back to one with \`weft rollback\`.

Options:
  -o, --output json   the control plane's answer as JSON
${CONTROL_HELP}
`;

/** GET /api/v1/history. */
export interface HistoryAnswer {
  current?: string;
  maxVersions: number;
  persistent: boolean;
  versions: VersionSummary[];
}

export async function runHistory(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, { output: { type: 'string', short: 'o' }, ...CONTROL_OPTION }, HISTORY_USAGE, true);
  const format = outputFormat(values.output, ['json'] as const, HISTORY_USAGE);
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`, HISTORY_USAGE);
  const client = ControlClient.fromFlag(values.control, io.env, HISTORY_USAGE);
  const answer = await client.get<HistoryAnswer>('/api/v1/history');
  if (format === 'json') {
    io.out(JSON.stringify(answer, null, 2) + '\n');
    return 0;
  }
  if (answer.versions.length === 0) {
    io.err('No config versions yet.\n');
    return 0;
  }
  const rows = answer.versions.map((v) => [
    v.version === answer.current ? '*' : '',
    v.version,
    v.createdAt.replace(/\.\d+Z$/, 'Z'),
    v.source,
    String(v.added),
    String(v.changed),
    String(v.removed),
    String(v.resources),
    oneLine(v.message ?? v.reason),
  ]);
  io.out(formatTable(['CURRENT', 'VERSION', 'CREATED', 'SOURCE', 'ADDED', 'CHANGED', 'REMOVED', 'RESOURCES', 'MESSAGE'], rows));
  return 0;
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 100 ? `${flat.slice(0, 99)}…` : flat;
}
