// The config store: every resource the control plane has accepted, grouped by the source it came
// from (a file, an API call), with the rule that an invalid resource never replaces the last good
// version of itself. Sources are replaced whole; the store reports what changed.
import { createHash } from 'node:crypto';
import type { ConfigProblem } from './problems';
import type { ParsedDocument } from './parse';
import { resourceKey, type ConfigResource } from './resources';
import { validateResource } from './validate';

/** A resource that failed validation, with every problem found. */
export interface Rejection {
  /** `Kind/namespace/name`, or `file#document` when the document has no usable identity. */
  key: string;
  sourceId: string;
  problems: ConfigProblem[];
  /** True when an earlier good version of this resource is still serving. */
  lastGoodServing: boolean;
  at: string;
}

export interface StoreChange {
  added: string[];
  updated: string[];
  removed: string[];
  /** Keys newly rejected by this change (their last good version, if any, keeps serving). */
  rejected: string[];
}

interface Entry {
  resource: ConfigResource;
  sourceId: string;
  hash: string;
}

/** Content hash of a resource (kind, metadata, spec): equal hashes mean an update changes nothing. */
export function hashResource(r: ConfigResource): string {
  return createHash('sha1')
    .update(JSON.stringify({ k: r.kind, m: r.metadata, s: r.spec }))
    .digest('hex');
}

export class ConfigStore {
  private readonly entries = new Map<string, Entry>();
  private readonly rejections = new Map<string, Rejection>();
  /** Warnings (unknown kinds, parse notes) per source, replaced with the source. */
  private readonly sourceWarnings = new Map<string, ConfigProblem[]>();
  private readonly sourceKeys = new Map<string, Set<string>>();

  /**
   * Replaces everything `sourceId` contributed with `documents` (already parsed) and the
   * parse-level `problems` of that source. Valid documents are accepted; invalid ones are
   * rejected while their last good version, if any, keeps serving.
   */
  replaceSource(sourceId: string, documents: readonly ParsedDocument[], parseProblems: readonly ConfigProblem[] = []): StoreChange {
    const change: StoreChange = { added: [], updated: [], removed: [], rejected: [] };
    const now = new Date().toISOString();
    const previousKeys = this.sourceKeys.get(sourceId) ?? new Set<string>();
    const nextKeys = new Set<string>();
    const warnings: ConfigProblem[] = [];

    for (const [key, rejection] of this.rejections) if (rejection.sourceId === sourceId) this.rejections.delete(key);

    // A file that does not parse tells us nothing about which of its resources went away:
    // everything it contributed before keeps serving until it parses again.
    const unparsable = parseProblems.some((p) => p.severity === 'error');
    for (const p of parseProblems) {
      if (p.severity === 'warning') warnings.push(p);
      else {
        const key = `${sourceId}#${p.document ?? 0}`;
        this.rejections.set(key, { key, sourceId, problems: [p], lastGoodServing: unparsable && previousKeys.size > 0, at: now });
        change.rejected.push(key);
      }
    }
    if (unparsable) for (const key of previousKeys) nextKeys.add(key);

    for (const doc of documents) {
      const result = validateResource(doc);
      if (result.valid) {
        warnings.push(...result.warnings);
        const key = resourceKey(result.resource);
        nextKeys.add(key);
        const hash = hashResource(result.resource);
        const existing = this.entries.get(key);
        if (!existing) change.added.push(key);
        else if (existing.hash !== hash) change.updated.push(key);
        this.entries.set(key, { resource: result.resource, sourceId, hash });
        continue;
      }
      warnings.push(...result.warnings);
      if (result.errors.length === 0) continue; // skipped (e.g. unknown kind): reported as a warning
      const first = result.errors[0];
      const identified = first.kind && first.name;
      const key = identified ? `${first.kind}/${first.namespace || 'default'}/${first.name}` : `${sourceId}#${doc.origin.document ?? 0}`;
      const lastGoodServing = this.entries.has(key);
      // Keep serving the last good version: it stays owned by the source that is being edited.
      if (lastGoodServing) nextKeys.add(key);
      this.rejections.set(key, { key, sourceId, problems: result.errors, lastGoodServing, at: now });
      change.rejected.push(key);
    }

    for (const key of previousKeys) {
      if (nextKeys.has(key)) continue;
      const entry = this.entries.get(key);
      if (entry && entry.sourceId === sourceId) {
        this.entries.delete(key);
        change.removed.push(key);
      }
    }
    if (nextKeys.size > 0) this.sourceKeys.set(sourceId, nextKeys);
    else this.sourceKeys.delete(sourceId);
    if (warnings.length > 0) this.sourceWarnings.set(sourceId, warnings);
    else this.sourceWarnings.delete(sourceId);
    return change;
  }

  /** Forgets a source entirely (a deleted file): its resources are removed. */
  removeSource(sourceId: string): StoreChange {
    return this.replaceSource(sourceId, []);
  }

  resources(): ConfigResource[] {
    return [...this.entries.values()].map((e) => e.resource);
  }

  get(key: string): ConfigResource | undefined {
    return this.entries.get(key)?.resource;
  }

  sourceOf(key: string): string | undefined {
    return this.entries.get(key)?.sourceId;
  }

  rejected(): Rejection[] {
    return [...this.rejections.values()].sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  warnings(): ConfigProblem[] {
    return [...this.sourceWarnings.values()].flat();
  }

  sources(): string[] {
    return [...this.sourceKeys.keys()].sort();
  }
}

export function isEmptyChange(change: StoreChange): boolean {
  return change.added.length + change.updated.length + change.removed.length === 0;
}
