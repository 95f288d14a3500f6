// Edits one YAML manifest file as text: replaces, removes or appends resources by identity
// (`Kind/namespace/name`) and leaves every other document byte for byte as it was, comments
// included. Pure: text in, text out; the config writer does the file I/O.
import { isMap, parseAllDocuments, stringify, type Document } from 'yaml';

/** A resource document as plain data (what the user applied), written back as YAML. */
export type ManifestObject = Record<string, unknown>;

export interface ManifestEdit {
  /** key -> new content for documents (or `kind: List` items) with that identity. */
  replace: ReadonlyMap<string, ManifestObject>;
  /** Keys whose documents (or List items) are removed. */
  remove: ReadonlySet<string>;
  /** New documents added at the end of the file. */
  append: readonly ManifestObject[];
}

export interface ManifestEditResult {
  /** The new text, or undefined when no document with content is left (delete the file). */
  text: string | undefined;
  /** Keys of `replace` and `remove` found in the file. */
  found: Set<string>;
}

/** A manifest file that does not parse: it is never rewritten (the edit would guess). */
export class UnparsableManifestError extends Error {
  constructor(
    readonly line: number | undefined,
    detail: string,
  ) {
    super(`it does not parse as YAML${line !== undefined ? ` (line ${line})` : ''}: ${detail}`);
  }
}

const MAX_ALIAS_COUNT = 100;

/** `Kind/namespace/name` of a raw document, as the store keys it; undefined without kind or name. */
export function identityOf(raw: unknown): string | undefined {
  if (!isObject(raw) || typeof raw.kind !== 'string' || !isObject(raw.metadata)) return undefined;
  const { name, namespace } = raw.metadata;
  if (typeof name !== 'string' || name === '') return undefined;
  return `${raw.kind}/${typeof namespace === 'string' && namespace !== '' ? namespace : 'default'}/${name}`;
}

/** YAML for one resource: block style, no line folding (long strings stay on one line). */
export function manifestYaml(raw: ManifestObject): string {
  return stringify(raw, { lineWidth: 0 });
}

/**
 * Applies `edit` to `text`. A key found twice in the file keeps its first document (replaced) and
 * loses the others, so the file ends up defining it once. Replacements whose key is not in the
 * file are appended.
 */
export function editManifest(text: string, edit: ManifestEdit): ManifestEditResult {
  const parsed = parseAllDocuments(text, { uniqueKeys: true, merge: true });
  const documents: Document.Parsed[] = Array.isArray(parsed) ? parsed : [];
  for (const doc of documents) {
    const error = doc.errors[0];
    if (error) throw new UnparsableManifestError(lineOf(text, error.pos?.[0]), error.message.split('\n')[0]);
  }

  const found = new Set<string>();
  const splices: { start: number; end: number; text: string }[] = [];
  const seen = new Set<string>();
  /** What happens to one resource occurrence: kept, replaced (new content) or removed. */
  const decide = (key: string | undefined): 'keep' | 'remove' | ManifestObject => {
    if (key === undefined) return 'keep';
    const duplicate = seen.has(key);
    seen.add(key);
    if (edit.remove.has(key)) {
      found.add(key);
      return 'remove';
    }
    const replacement = edit.replace.get(key);
    if (!replacement) return 'keep';
    found.add(key);
    return duplicate ? 'remove' : replacement;
  };

  for (const doc of documents) {
    const contents = doc.contents;
    if (contents === null || !contents.range) continue;
    let raw: unknown;
    try {
      raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      throw new UnparsableManifestError(lineOf(text, contents.range[0]), (err as Error).message);
    }
    const [start, , end] = contents.range;
    if (isObject(raw) && raw.kind === 'List' && Array.isArray(raw.items) && isMap(contents)) {
      let changed = false;
      const items: unknown[] = [];
      for (const item of raw.items) {
        const decision = decide(identityOf(item));
        if (decision === 'keep') items.push(item);
        else if (decision !== 'remove') items.push(decision);
        changed ||= decision !== 'keep';
      }
      if (!changed) continue;
      if (items.length === 0) splices.push({ start: doc.range[0], end: doc.range[2], text: '' });
      else splices.push({ start, end, text: manifestYaml({ ...raw, items }) });
      continue;
    }
    const decision = decide(identityOf(raw));
    if (decision === 'remove') splices.push({ start: doc.range[0], end: doc.range[2], text: '' });
    else if (decision !== 'keep') splices.push({ start, end, text: manifestYaml(decision) });
  }

  let out = text;
  for (const s of splices.sort((a, b) => b.start - a.start)) {
    // A replacement ends with a newline; keep the file's own line break after the old node.
    const next = out.slice(s.end);
    const body = s.text && next.startsWith('\n') && s.text.endsWith('\n') ? s.text.slice(0, -1) : s.text;
    out = out.slice(0, s.start) + body + next;
  }

  const appended = [...edit.append, ...[...edit.replace].filter(([key]) => !found.has(key)).map(([, raw]) => raw)];
  for (const raw of appended) {
    const hasContent = hasDocuments(out);
    if (out.length > 0 && !out.endsWith('\n')) out += '\n';
    out += (hasContent ? '---\n' : '') + manifestYaml(raw);
  }
  return { text: hasDocuments(out) ? out : undefined, found };
}

/** True when some document in `text` has content (comments and `---` alone do not count). */
export function hasDocuments(text: string): boolean {
  const parsed = parseAllDocuments(text);
  return Array.isArray(parsed) && parsed.some((d) => d.contents !== null);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function lineOf(text: string, offset: number | undefined): number | undefined {
  if (offset === undefined) return undefined;
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}
