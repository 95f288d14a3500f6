// `weft diff [A] [B]`: what changed between two config versions, resource by resource and field by
// field (default: the last change, the version before the current one against the current one).
// Also the renderer `weft apply --dry-run` and `weft rollback` print their diffs with.
import type { ChangePreview, ProxyImpact } from '../control/change-preview';
import type { ConfigDiff, FieldChange } from '../control/config-diff';
import type { VersionSummary } from '../control/config-history';
import { CliError, outputFormat, parseCommandArgs, UsageError } from './cli-errors';
import type { CliIo } from './cli-io';
import { ApiError, CONTROL_HELP, CONTROL_OPTION, ControlClient, withHint } from './control-client';

export const DIFF_USAGE = `Usage: weft diff [A] [B] [-o json]

Shows what changed between two config versions (see \`weft history\`): each resource added (+),
removed (-) or changed (~) by kind, namespace and name, and for a changed one every field that
differs, by field path, old -> new. Colored on a terminal (NO_COLOR turns colours off).

  weft diff          the last change: the version before the current one -> the current one
  weft diff A        version A -> the current one
  weft diff A B      version A -> version B

Versions are numbers (7 or v7), or -1, -2, ... counting back from the current one.

Options:
  -o, --output json   the control plane's answer as JSON
${CONTROL_HELP}
`;

/** GET /api/v1/diff. */
export interface VersionDiff extends ConfigDiff {
  from: VersionSummary;
  to: VersionSummary;
}

export async function runDiff(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, { output: { type: 'string', short: 'o' }, ...CONTROL_OPTION }, DIFF_USAGE, true);
  const format = outputFormat(values.output, ['json'] as const, DIFF_USAGE);
  if (positionals.length > 2) throw new UsageError(`expected at most two versions, got ${positionals.length}`, DIFF_USAGE);
  const query = new URLSearchParams();
  if (positionals[0] !== undefined) query.set('from', positionals[0]);
  if (positionals[1] !== undefined) query.set('to', positionals[1]);
  const client = ControlClient.fromFlag(values.control, io.env, DIFF_USAGE);
  const diff = await client.get<VersionDiff>(`/api/v1/diff${query.toString() ? `?${query}` : ''}`).catch(explained);
  if (format === 'json') {
    io.out(JSON.stringify(diff, null, 2) + '\n');
    return 0;
  }
  const paint = painter(io);
  const what = (v: VersionSummary) => `${v.version} (${v.source}${v.message ? `: ${v.message}` : ''})`;
  io.out(paint.bold(`${what(diff.from)} -> ${what(diff.to)}: ${summarize(diff)}`) + '\n');
  io.out(formatDiff(diff, paint));
  return 0;
}

/** An API refusal as one line with its hint (`error: ... (hint: ...)`). */
export function explained(err: unknown): never {
  throw err instanceof ApiError ? new CliError(withHint(err)) : err;
}

/** `1 added, 2 changed, 0 removed`, or `no changes`. */
export function summarize(diff: ConfigDiff): string {
  if (diff.resources.length === 0) return 'no changes';
  return `${diff.added} added, ${diff.changed} changed, ${diff.removed} removed`;
}

export interface Painter {
  on: boolean;
  added(text: string): string;
  removed(text: string): string;
  changed(text: string): string;
  bold(text: string): string;
  dim(text: string): string;
}

/** ANSI colours only on a terminal and unless NO_COLOR is set (no-color.org). */
export function painter(io: CliIo): Painter {
  const on = io.stdoutIsTTY === true && !io.env.NO_COLOR;
  const wrap = (code: string) => (text: string) => (on ? `\x1b[${code}m${text}\x1b[0m` : text);
  return { on, added: wrap('32'), removed: wrap('31'), changed: wrap('33'), bold: wrap('1'), dim: wrap('2') };
}

/**
 * One line per resource (`+ Kind namespace/name`), and under a changed one a line per field:
 * `~ path: old -> new`, `+ path: new`, `- path: old`; objects and lists as indented YAML.
 */
export function formatDiff(diff: ConfigDiff, paint: Painter): string {
  const lines: string[] = [];
  for (const r of diff.resources) {
    const title = `${r.kind} ${r.namespace}/${r.name}`;
    if (r.action === 'added') lines.push(paint.added(`+ ${title}`));
    else if (r.action === 'removed') lines.push(paint.removed(`- ${title}`));
    else {
      lines.push(paint.changed(`~ ${title}`));
      for (const f of r.fields ?? []) lines.push(...formatField(f, paint));
    }
  }
  return lines.length ? lines.join('\n') + '\n' : '';
}

const INDENT = '    ';

function formatField(f: FieldChange, paint: Painter): string[] {
  if (f.action === 'added') return valueLines(`${INDENT}+ ${f.path}:`, f.new, paint.added);
  if (f.action === 'removed') return valueLines(`${INDENT}- ${f.path}:`, f.old, paint.removed);
  if (isScalar(f.old) && isScalar(f.new)) {
    return [`${INDENT}${paint.changed('~')} ${f.path}: ${paint.removed(scalarText(f.old))} -> ${paint.added(scalarText(f.new))}`];
  }
  return [
    `${INDENT}${paint.changed('~')} ${f.path}:`,
    ...valueLines(`${INDENT}    was:`, f.old, paint.removed),
    ...valueLines(`${INDENT}    now:`, f.new, paint.added),
  ];
}

/** `head value` for a scalar; `head` then the value as YAML, indented, for an object or list. */
function valueLines(head: string, value: unknown, color: (text: string) => string): string[] {
  if (isScalar(value)) return [color(`${head} ${scalarText(value)}`)];
  const pad = ' '.repeat(head.length - head.trimStart().length + 4);
  return [color(head), ...yamlText(value).map((line) => color(pad + line))];
}

function isScalar(value: unknown): boolean {
  return value === null || typeof value !== 'object' || (Array.isArray(value) ? value.length === 0 : Object.keys(value).length === 0);
}

/** A scalar as YAML writes it (strings unquoted unless they need quotes). */
function scalarText(value: unknown): string {
  if (value === undefined) return '(none)';
  if (typeof value === 'object' && value !== null) return Array.isArray(value) ? '[]' : '{}';
  if (typeof value === 'string') return value.includes('\n') ? JSON.stringify(value) : yamlText(value).join(' ');
  return String(value);
}

// Loaded on first use.
let stringifyYaml: ((value: unknown, options: { lineWidth: number }) => string) | undefined;

function yamlText(value: unknown): string[] {
  stringifyYaml ??= (require('yaml') as typeof import('yaml')).stringify;
  return stringifyYaml(value, { lineWidth: 0 }).trimEnd().split('\n');
}

/** The diff and proxy sections of a dry run. */
export function formatPreview(preview: ChangePreview | undefined, paint: Painter): string {
  if (!preview) return '';
  const out: string[] = [];
  const against = preview.against ? ` (${preview.against})` : '';
  if (preview.diff.resources.length === 0) {
    out.push(`\nNo change to the running config${against}.`);
  } else {
    out.push(`\nDiff against the running config${against}: ${summarize(preview.diff)}`);
    out.push(formatDiff(preview.diff, paint).trimEnd());
  }
  if (preview.proxies) out.push(formatProxyImpact(preview.proxies, paint));
  return out.join('\n') + '\n';
}

function formatProxyImpact(impact: ProxyImpact, paint: Painter): string {
  const connected = `${impact.connected} connected`;
  if (impact.affected.length === 0) return `\nNo connected proxy's configuration would change (${connected}).`;
  const lines = [`\nProxies whose configuration would change (${impact.affected.length} of ${connected}):`];
  for (const p of impact.affected) {
    const parts = p.changes.map((c) => {
      const names = [...c.added.map((n) => paint.added(`+${n}`)), ...c.changed.map((n) => paint.changed(`~${n}`)), ...c.removed.map((n) => paint.removed(`-${n}`))];
      const shown = names.length > 4 ? [...names.slice(0, 4), `(+${names.length - 4} more)`] : names;
      return `${c.type} ${shown.join(' ')}`;
    });
    lines.push(`  ${p.id}`);
    lines.push(`      ${parts.join('; ')}`);
  }
  return lines.join('\n');
}
