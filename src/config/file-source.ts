// The file config source: every *.yaml / *.yml under a directory (recursively), watched. A burst
// of file events is coalesced into one rescan, and only files whose content changed are re-read.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../log/logger';
import { parseYamlDocuments, type ParsedDocument } from './parse';
import type { ConfigProblem } from './problems';

export interface FileUpdate {
  /** Source id: the file path relative to the config directory. */
  sourceId: string;
  file: string;
  /** undefined when the file was deleted. */
  documents?: ParsedDocument[];
  problems: ConfigProblem[];
}

export interface FileSourceOptions {
  dir: string;
  logger: Logger;
  /** Quiet period after the last file event before rescanning. */
  settleMs?: number;
  /** Called once per rescan with every file that changed (possibly none). */
  onUpdates: (updates: FileUpdate[]) => void;
}

const CONFIG_FILE = /\.ya?ml$/i;

export function listConfigFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile() && CONFIG_FILE.test(entry.name)) out.push(full);
    }
  };
  walk(dir);
  return out.sort();
}

export function readConfigFile(file: string, sourceId: string): FileUpdate {
  const text = fs.readFileSync(file, 'utf8');
  const { documents, problems } = parseYamlDocuments(text, { file: sourceId, source: 'file' });
  return { sourceId, file, documents, problems };
}

export class FileConfigSource {
  private readonly hashes = new Map<string, string>();
  private watcher?: fs.FSWatcher;
  private timer?: NodeJS.Timeout;
  private readonly dir: string;

  constructor(private readonly options: FileSourceOptions) {
    this.dir = path.resolve(options.dir);
  }

  /** Reads every file once and returns the updates (does not call onUpdates). */
  loadAll(): FileUpdate[] {
    return this.scan();
  }

  watch(): void {
    this.watcher = fs.watch(this.dir, { recursive: true }, () => this.schedule());
    this.watcher.on('error', (err) => this.options.logger.error('config_watch_failed', { dir: this.dir, error: err }));
  }

  /** Rescans now (used after the watcher fires, and by callers that just wrote files). */
  rescan(): void {
    const updates = this.scan();
    this.options.onUpdates(updates);
  }

  close(): void {
    this.watcher?.close();
    if (this.timer) clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      try {
        this.rescan();
      } catch (err) {
        this.options.logger.error('config_rescan_failed', { dir: this.dir, error: err });
      }
    }, this.options.settleMs ?? 50);
  }

  private scan(): FileUpdate[] {
    const updates: FileUpdate[] = [];
    const seen = new Set<string>();
    for (const file of listConfigFiles(this.dir)) {
      const sourceId = path.relative(this.dir, file);
      seen.add(sourceId);
      let content: string;
      try {
        content = fs.readFileSync(file, 'utf8');
      } catch {
        continue; // deleted between listing and reading: the next event rescans
      }
      const hash = createHash('sha1').update(content).digest('hex');
      if (this.hashes.get(sourceId) === hash) continue;
      this.hashes.set(sourceId, hash);
      const { documents, problems } = parseYamlDocuments(content, { file: sourceId, source: 'file' });
      updates.push({ sourceId, file, documents, problems });
    }
    for (const sourceId of [...this.hashes.keys()]) {
      if (seen.has(sourceId)) continue;
      this.hashes.delete(sourceId);
      updates.push({ sourceId, file: path.join(this.dir, sourceId), problems: [] });
    }
    return updates;
  }
}
