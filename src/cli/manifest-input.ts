// `-f FILE|DIR|-` as kubectl reads it: a file, every .yaml/.yml/.json file in a directory
// (recursively with -R), or stdin. Each input keeps its name so problems point at it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ManifestSource } from '../control/config-writer';
import { CliError } from './cli-errors';
import type { CliIo } from './cli-io';

const MANIFEST_FILE = /\.(ya?ml|json)$/i;

export async function readManifestInputs(paths: readonly string[], recursive: boolean, io: CliIo): Promise<ManifestSource[]> {
  const sources: ManifestSource[] = [];
  let stdinRead = false;
  for (const p of paths) {
    if (p === '-') {
      if (stdinRead) continue;
      stdinRead = true;
      sources.push({ name: 'stdin', content: await io.readStdin() });
      continue;
    }
    if (!fs.existsSync(p)) throw new CliError(`the path "${p}" does not exist`);
    if (!fs.statSync(p).isDirectory()) {
      sources.push({ name: p, content: fs.readFileSync(p, 'utf8') });
      continue;
    }
    const files = listManifestFiles(p, recursive);
    if (files.length === 0) throw new CliError(`no .yaml, .yml or .json files in ${p}${recursive ? '' : ' (hint: -R reads subdirectories too)'}`);
    for (const file of files) sources.push({ name: file, content: fs.readFileSync(file, 'utf8') });
  }
  return sources;
}

function listManifestFiles(dir: string, recursive: boolean): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (entry.name.startsWith('.')) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (recursive) out.push(...listManifestFiles(full, true));
    } else if (MANIFEST_FILE.test(entry.name)) {
      out.push(full);
    }
  }
  return out;
}
