// YAML ingestion: splits a multi-document file into raw documents with their origin, expands `kind: List`,
// and turns syntax errors into problems that carry file and line.
import { isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Document } from 'yaml';
import type { ResourceOrigin } from './resources';
import { ProblemCode, type ConfigProblem, type LocateField, type PathSegment, type SourcePosition } from './problems';

export interface ParsedDocument {
  /** The document as plain JSON-like data (maps, arrays, strings, numbers, booleans, null). */
  raw: unknown;
  origin: ResourceOrigin;
  /** Finds the source position of a field path inside this document, when parsed from text. */
  locate?: LocateField;
}

/** Aliases expand into copies; this bounds "billion laughs" documents. */
const MAX_ALIAS_COUNT = 100;

/**
 * Parses every YAML document in `text`. Empty documents are skipped, but `origin.document` keeps the
 * position of the document in the file (0-based, counting empty ones) so problems point at the
 * right place. Items of a `kind: List` document become documents of their own with the List's index.
 */
export function parseYamlDocuments(
  text: string,
  origin: Omit<ResourceOrigin, 'document'>,
): { documents: ParsedDocument[]; problems: ConfigProblem[] } {
  const documents: ParsedDocument[] = [];
  const problems: ConfigProblem[] = [];
  const lineCounter = new LineCounter();
  // `merge` enables YAML merge keys (<<: *anchor), which Kubernetes' YAML reader accepts too.
  const parsed = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true, merge: true });
  const yamlDocuments: Document.Parsed[] = Array.isArray(parsed) ? parsed : [];

  yamlDocuments.forEach((doc, index) => {
    const documentOrigin: ResourceOrigin = { ...origin, document: index };
    if (doc.errors.length > 0) {
      for (const error of doc.errors) problems.push(syntaxProblem(error, documentOrigin, lineCounter));
      return;
    }
    if (doc.contents === null) return;
    let raw: unknown;
    try {
      raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      const message = `YAML document cannot be read: ${(err as Error).message}`;
      problems.push(documentProblem(ProblemCode.YamlSyntaxError, documentOrigin, undefined, message));
      return;
    }
    if (raw === null || raw === undefined) return;
    const locate = locatorFor(doc, lineCounter);
    if (isKubernetesList(raw)) {
      expandList(raw, documentOrigin, locate, documents, problems);
      return;
    }
    documents.push({ raw, origin: documentOrigin, locate });
  });

  return { documents, problems };
}

function isKubernetesList(raw: unknown): raw is Record<string, unknown> {
  return typeof raw === 'object' && raw !== null && !Array.isArray(raw) && (raw as Record<string, unknown>).kind === 'List';
}

function expandList(
  list: Record<string, unknown>,
  origin: ResourceOrigin,
  locate: LocateField,
  documents: ParsedDocument[],
  problems: ConfigProblem[],
): void {
  const items = list.items;
  if (items === undefined || items === null) return;
  if (!Array.isArray(items)) {
    const position = locate(['items']);
    const message = 'a List must hold an array of resources in items';
    problems.push(documentProblem(ProblemCode.MalformedDocument, origin, position, message, 'items'));
    return;
  }
  items.forEach((item, i) => {
    const prefix: PathSegment[] = ['items', i];
    documents.push({ raw: item, origin, locate: (segments) => locate([...prefix, ...segments]) });
  });
}

function syntaxProblem(
  error: { message: string; pos?: [number, number]; linePos?: unknown },
  origin: ResourceOrigin,
  lineCounter: LineCounter,
): ConfigProblem {
  const linePos = error.pos ? lineCounter.linePos(error.pos[0]) : undefined;
  const position = linePos ? { line: linePos.line, column: linePos.col } : undefined;
  const firstLine = error.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
  const where = position ? ` (line ${position.line}, column ${position.column})` : '';
  return documentProblem(ProblemCode.YamlSyntaxError, origin, position, `YAML syntax error${where}: ${firstLine}`);
}

function documentProblem(
  code: string,
  origin: ResourceOrigin,
  position: SourcePosition | undefined,
  message: string,
  path = '',
): ConfigProblem {
  const problem: ConfigProblem = {
    code,
    severity: 'error',
    kind: '',
    namespace: '',
    name: '',
    path,
    message,
  };
  if (origin.file !== undefined) problem.file = origin.file;
  if (origin.document !== undefined) problem.document = origin.document;
  if (position) {
    problem.line = position.line;
    problem.column = position.column;
  }
  return problem;
}

/**
 * Walks the YAML node tree along a field path and returns the deepest position found: the key of
 * the last map entry that exists, or the list item. A missing field therefore points at its parent.
 */
function locatorFor(doc: Document.Parsed, lineCounter: LineCounter): LocateField {
  return (segments) => {
    let node: unknown = doc.contents;
    let offset = rangeStart(node);
    for (const segment of segments) {
      if (isMap(node)) {
        const pair = node.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(segment));
        if (!pair) break;
        offset = rangeStart(pair.key) ?? offset;
        node = pair.value;
      } else if (isSeq(node) && typeof segment === 'number') {
        const item = node.items[segment];
        if (item === undefined) break;
        offset = rangeStart(item) ?? offset;
        node = item;
      } else {
        break;
      }
    }
    if (offset === undefined) return undefined;
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] } | null)?.range;
  return range ? range[0] : undefined;
}
