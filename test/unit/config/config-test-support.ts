// Test support for the config tests: validate YAML text in one call and read fixtures.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseYamlDocuments } from '../../../src/config/parse';
import type { ConfigProblem } from '../../../src/config/problems';
import type { ConfigResource } from '../../../src/config/resources';
import { validateResource } from '../../../src/config/validate';

export interface Checked {
  valid: boolean;
  resource?: ConfigResource;
  errors: ConfigProblem[];
  warnings: ConfigProblem[];
}

/** Parses and validates every document in `text`; parse problems become a failed entry of their own. */
export function checkAll(text: string, file = 'test.yaml'): Checked[] {
  const { documents, problems } = parseYamlDocuments(text, { file, source: 'test' });
  const results: Checked[] = problems.map((p) => ({ valid: false, errors: [p], warnings: [] }));
  for (const doc of documents) {
    const result = validateResource(doc);
    results.push(
      result.valid
        ? { valid: true, resource: result.resource, errors: [], warnings: result.warnings }
        : { valid: false, errors: result.errors, warnings: result.warnings },
    );
  }
  return results;
}

/** Validates a single-document text. */
export function check(text: string): Checked {
  const results = checkAll(text);
  if (results.length !== 1) throw new Error(`expected one document, got ${results.length}`);
  return results[0];
}

/** Valid resources of `text`; throws with the problems if any document is invalid. */
export function validResources(text: string, file = 'test.yaml'): ConfigResource[] {
  return checkAll(text, file).map((r, i) => {
    if (!r.resource) throw new Error(`document ${i} is invalid:\n${r.errors.map((e) => `${e.path}: ${e.message}`).join('\n')}`);
    return r.resource;
  });
}

export function paths(problems: readonly ConfigProblem[]): string[] {
  return problems.map((p) => p.path);
}

const REPO_ROOT = path.resolve(__dirname, '../../../..');

/** Reads a file relative to the repository root (tests run from dist/, fixtures stay in test/). */
export function readRepoFile(relativePath: string): string {
  return fs.readFileSync(path.join(REPO_ROOT, relativePath), 'utf8');
}

export function fixture(name: string): string {
  return readRepoFile(path.join('test/unit/config/fixtures', name));
}

/** Removes the common leading indentation of a template literal's lines (and its first/last blank lines). */
export function dedent(text: string): string {
  const lines = text
    .replace(/^\n/, '')
    .replace(/\n\s*$/, '')
    .split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => l.match(/^ */)![0].length));
  return lines.map((l) => l.slice(indent)).join('\n');
}

/** A resource document: the usual envelope around `spec` (block YAML, any indentation). */
export function resourceYaml(kind: string, spec: string, opts: { name?: string; namespace?: string; apiVersion?: string } = {}): string {
  const apiVersion =
    opts.apiVersion ??
    (kind === 'Service'
      ? 'v1'
      : ['PeerAuthentication', 'AuthorizationPolicy', 'RequestAuthentication'].includes(kind)
        ? 'security.istio.io/v1'
        : 'networking.istio.io/v1');
  const namespace = opts.namespace ? `\n  namespace: ${opts.namespace}` : '';
  const body = dedent(spec)
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
  return `apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata:\n  name: ${opts.name ?? 'test'}${namespace}\nspec:\n${body}\n`;
}
