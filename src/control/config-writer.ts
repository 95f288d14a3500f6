// The write path of the config API: `weft apply` and `weft delete` become edits of the files in
// the control plane's config directory, so a restart keeps them and the files and the mesh never
// disagree. Every change is validated with the same code as the file source (parse, validate,
// cross-resource analysis) and refused whole when any document is invalid. Writes are serialized:
// one change at a time, each ending with a synchronous rescan that publishes the new snapshot.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { analyzeResources } from '../config/analyze';
import { KNOWN_KINDS, kindByName, lookupKind, type KindInfo } from '../config/kinds';
import { parseYamlDocuments, type ParsedDocument } from '../config/parse';
import { formatProblem, ProblemCode, type ConfigProblem } from '../config/problems';
import { resourceKey, type ConfigResource, type ResourceKind } from '../config/resources';
import { hashResource, type ConfigStore } from '../config/store';
import { validateResource } from '../config/validate';
import type { Logger } from '../log/logger';
import type { ChangePreview } from './change-preview';
import { knownKindNames, pluralName } from './config-api-contract';
import { editManifest, UnparsableManifestError, type ManifestObject } from './manifest-edit';

/** What an API change did; recorded as the version's source in the config history. */
export type ChangeOperation = 'apply' | 'delete' | 'rollback' | 'rollout';

/** Why a snapshot was built: the file watcher, a mesh config edit, or an API call (with the operator's message). */
export interface ChangeCause {
  source: 'file' | 'api' | 'mesh-config';
  operation?: ChangeOperation;
  /** `weft apply -m MESSAGE`: kept with the version in the config history. */
  message?: string;
  /** Keys (`Kind/namespace/name`) the request changed. */
  resources?: string[];
}

/** One input text: a file's content, stdin, or a request body. `name` appears in problems. */
export interface ManifestSource {
  name: string;
  content: string;
}

export interface ApplyRequest {
  sources: readonly ManifestSource[];
  dryRun?: boolean;
  message?: string;
  /** Recorded as the version's source: `apply` (default), or `rollout` for a progressive-delivery step. */
  operation?: 'apply' | 'rollout';
}

/** Makes the config exactly `resources` (`weft rollback`): files rewritten, one new version. */
export interface RestoreRequest {
  resources: readonly ConfigResource[];
  operation: 'rollback' | 'rollout';
  message?: string;
  dryRun?: boolean;
}

/** kubectl's words. */
export type ApplyAction = 'created' | 'configured' | 'unchanged';

export interface ResourceRef {
  kind: ResourceKind;
  /** API group ('' for core). */
  group: string;
  namespace: string;
  name: string;
}

export interface ApplyResult extends ResourceRef {
  action: ApplyAction;
  /** The file (relative to the config directory) that holds the resource. */
  file: string;
}

export interface ChangeOutcome<R> {
  dryRun: boolean;
  /** The snapshot version serving after the change (unchanged for a dry run or a no-op). */
  version: string | undefined;
  previousVersion: string | undefined;
  message?: string;
  results: R[];
  /** Warnings (validation and analysis) about the resources changed, formatted. */
  warnings: string[];
  /** For a dry run: the diff against the running config and the proxies that would get new config. */
  preview?: ChangePreview;
}

export type ApplyOutcome = ChangeOutcome<ApplyResult>;

export interface DeleteRequest {
  /** Resources named directly (`weft delete KIND NAME`). */
  targets?: readonly { kind: string; namespace?: string; name: string }[];
  /** Manifests naming the resources (`weft delete -f FILE`); only kind and metadata are read. */
  sources?: readonly ManifestSource[];
  dryRun?: boolean;
  ignoreNotFound?: boolean;
  message?: string;
}

export interface DeleteResult extends ResourceRef {
  action: 'deleted';
  /** Files the resource was removed from (relative to the config directory). */
  files: string[];
}

export type DeleteOutcome = ChangeOutcome<DeleteResult>;

export interface RestoreResult extends ResourceRef {
  action: 'created' | 'configured' | 'deleted';
  /** The files written (relative to the config directory). */
  files: string[];
}

export type RestoreOutcome = ChangeOutcome<RestoreResult>;

/** A refused request: HTTP status, one-sentence error, and details for the response body. */
export class ConfigRequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** What the writer needs from the control plane. */
export interface ConfigWriterHost {
  /** Absolute path of the watched config directory. */
  readonly configDir: string;
  readonly store: ConfigStore;
  readonly domainSuffix: string;
  readonly logger: Logger;
  /** Analyzer findings for the current config. */
  analysisProblems(): readonly ConfigProblem[];
  /** Rescans the directory synchronously (publishing a snapshot when something changed). */
  rescan(cause?: ChangeCause): void;
  currentVersion(): string | undefined;
  /** The diff from the running config to `candidate`, and (withProxies) the proxies it would change. */
  preview(candidate: readonly ConfigResource[], withProxies: boolean): ChangePreview;
}

/** The directory, under the config directory, that holds resources first created through the API. */
export const APPLIED_DIR = 'applied';

interface PreparedResource {
  key: string;
  info: KindInfo;
  resource: ConfigResource;
  /** The document exactly as sent (written to the file as YAML). */
  raw: ManifestObject;
}

export class ConfigWriter {
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly host: ConfigWriterHost) {}

  /** Validates and applies every resource of the request, or none (ConfigRequestError). */
  apply(request: ApplyRequest): Promise<ApplyOutcome> {
    return this.serialize(() => this.applyNow(request));
  }

  /** Removes the named resources from their files, or none when one is unknown (404). */
  delete(request: DeleteRequest): Promise<DeleteOutcome> {
    return this.serialize(() => this.deleteNow(request));
  }

  /** Rewrites the config directory so the accepted config is exactly `request.resources`. */
  restore(request: RestoreRequest): Promise<RestoreOutcome> {
    return this.serialize(() => this.restoreNow(request));
  }

  /** Runs `fn` after every change queued before it has finished (one writer at a time). */
  private serialize<T>(fn: () => T): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /**
   * The config an apply of `request` would make — the running resources with the request's on
   * top — after exactly the validation `apply --dry-run` does; nothing is written. Refused
   * requests throw the same ConfigRequestError. For `weft route -f` (what-if routing).
   */
  candidate(request: Pick<ApplyRequest, 'sources'>): Promise<{ resources: ConfigResource[]; warnings: string[]; version: string | undefined }> {
    return this.serialize(() => {
      const { wouldBe, relevantWarnings, previousVersion } = this.validateApply(request);
      return { resources: [...wouldBe.values()], warnings: relevantWarnings.map(formatProblem), version: previousVersion };
    });
  }

  /** apply's checks: parse, validate, and the analysis of the config the change would make. */
  private validateApply(request: Pick<ApplyRequest, 'sources'>) {
    const { host } = this;
    // Catch up with file edits the watcher has not delivered yet, so we compare with the disk.
    host.rescan();
    const previousVersion = host.currentVersion();
    const { prepared, errors, warnings } = readResources(request.sources);
    if (errors.length > 0) throw invalid(errors, 'the request has invalid resources');
    if (prepared.length === 0) throw new ConfigRequestError(400, 'the request holds no resources', { hint: 'send one or more YAML or JSON documents' });

    const current = new Map(host.store.resources().map((r) => [resourceKey(r), r]));
    const wouldBe = new Map(current);
    for (const p of prepared) wouldBe.set(p.key, p.resource);
    // Refused: any analyzer error about a resource being applied, and any error the change
    // would introduce elsewhere (a DestinationRule losing a subset a route still uses).
    const analysis = analyzeResources([...wouldBe.values()], { domainSuffix: host.domainSuffix });
    const applied = new Set(prepared.map((p) => p.key));
    const introduced = new Set(newProblems(host.analysisProblems(), analysis));
    const blocking = analysis.filter((p) => p.severity === 'error' && (applied.has(problemKey(p)) || introduced.has(p)));
    if (blocking.length > 0) throw invalid(blocking, 'the change would leave references that do not resolve');
    const relevantWarnings = [...warnings, ...analysis.filter((p) => p.severity === 'warning' && applied.has(problemKey(p)))];
    return { previousVersion, prepared, current, wouldBe, relevantWarnings };
  }

  private applyNow(request: ApplyRequest): ApplyOutcome {
    const { host } = this;
    const { previousVersion, prepared, current, wouldBe, relevantWarnings } = this.validateApply(request);

    const rejectedKeys = new Map(host.store.rejected().map((r) => [r.key, r]));
    const results: ApplyResult[] = [];
    const edits = new FileEdits();
    for (const p of prepared) {
      const existing = current.get(p.key);
      const rejection = rejectedKeys.get(p.key);
      const home = host.store.sourceOf(p.key) ?? rejection?.sourceId;
      const file = home ?? newResourceFile(p);
      let action: ApplyAction;
      if (!existing && !rejection) action = 'created';
      else if (existing && !rejection && existing.apiVersion === p.resource.apiVersion && hashResource(existing) === hashResource(p.resource)) action = 'unchanged';
      else action = 'configured';
      results.push({ ...refOf(p.info, p.resource), action, file });
      if (action === 'unchanged') continue;
      if (home) edits.of(file).replace.set(p.key, p.raw);
      else edits.of(file).append.push(p.raw);
    }

    const outcome: ApplyOutcome = {
      dryRun: Boolean(request.dryRun),
      version: previousVersion,
      previousVersion,
      ...(request.message ? { message: request.message } : {}),
      results,
      warnings: relevantWarnings.map(formatProblem),
    };
    if (request.dryRun) {
      outcome.preview = host.preview([...wouldBe.values()], true);
      return outcome;
    }
    if (edits.size === 0) return outcome;

    const changed = results.filter((r) => r.action !== 'unchanged').map((r) => `${r.kind}/${r.namespace}/${r.name}`);
    this.commit(edits, { source: 'api', operation: request.operation ?? 'apply', message: request.message, resources: changed }, () => {
      const rejectedNow = new Map(host.store.rejected().map((r) => [r.key, r]));
      const problems = changed.flatMap((key) => rejectedNow.get(key)?.problems ?? []);
      const missing = changed.filter((key) => !host.store.get(key));
      return problems.length > 0 || missing.length > 0
        ? `the control plane did not accept what was written (${[...problems.map(formatProblem), ...missing.map((k) => `${k} missing`)].join('; ')})`
        : undefined;
    });
    outcome.version = host.currentVersion();
    host.logger.info('config_applied', {
      version: outcome.version,
      previousVersion,
      message: request.message,
      created: results.filter((r) => r.action === 'created').length,
      configured: results.filter((r) => r.action === 'configured').length,
      unchanged: results.filter((r) => r.action === 'unchanged').length,
      resources: changed,
    });
    return outcome;
  }

  private deleteNow(request: DeleteRequest): DeleteOutcome {
    const { host } = this;
    host.rescan();
    const previousVersion = host.currentVersion();
    const targets = deleteTargets(request);
    if (targets.length === 0) throw new ConfigRequestError(400, 'the request names no resources to delete');

    const rejectedKeys = new Map(host.store.rejected().map((r) => [r.key, r]));
    const exists = (key: string) => host.store.get(key) !== undefined || rejectedKeys.has(key);
    const missing = targets.filter((t) => !exists(t.key));
    if (missing.length > 0 && !request.ignoreNotFound) {
      const described = missing.map((t) => `${pluralName(t.info)} "${t.name}" not found in namespace "${t.namespace}"`);
      throw new ConfigRequestError(404, described.join('; '), {
        notFound: missing.map((t) => ({ kind: t.info.kind, namespace: t.namespace, name: t.name })),
        hint: 'list what exists with `weft get KIND -A`',
      });
    }
    const present = targets.filter((t) => exists(t.key));
    const keys = new Set(present.map((t) => t.key));

    const remaining = host.store.resources().filter((r) => !keys.has(resourceKey(r)));
    const analysis = analyzeResources(remaining, { domainSuffix: host.domainSuffix });
    // Not refused (a delete never is), but said: what the mesh is left referring to in vain.
    const warnings = newProblems(host.analysisProblems(), analysis).map((p) => formatProblem({ ...p, severity: 'warning' }));
    const filesOf = new Map<string, string[]>(present.map((t) => [t.key, []]));
    const outcome: DeleteOutcome = {
      dryRun: Boolean(request.dryRun),
      version: previousVersion,
      previousVersion,
      ...(request.message ? { message: request.message } : {}),
      results: [],
      warnings,
    };
    const results = () =>
      present.map((t) => ({ kind: t.info.kind, group: t.info.group, namespace: t.namespace, name: t.name, action: 'deleted' as const, files: filesOf.get(t.key) ?? [] }));
    if (request.dryRun || present.length === 0) {
      outcome.results = results();
      return outcome;
    }

    // A resource defined in two files (the later one wins in the store) is removed from both:
    // after each round, whatever still serves it names its next file.
    const cause: ChangeCause = { source: 'api', operation: 'delete', message: request.message, resources: [...keys] };
    for (let round = 0; round < 8; round++) {
      const rejectedNow = new Map(host.store.rejected().map((r) => [r.key, r]));
      const edits = new FileEdits();
      for (const key of keys) {
        const file = host.store.sourceOf(key) ?? rejectedNow.get(key)?.sourceId;
        if (!file || filesOf.get(key)!.includes(file)) continue;
        edits.of(file).remove.add(key);
        filesOf.get(key)!.push(file);
      }
      if (edits.size === 0) break;
      this.commit(edits, cause, () => undefined);
    }
    outcome.results = results();
    outcome.version = host.currentVersion();
    host.logger.info('config_deleted', { version: outcome.version, previousVersion, message: request.message, resources: [...keys] });
    return outcome;
  }

  private restoreNow(request: RestoreRequest): RestoreOutcome {
    const { host } = this;
    host.rescan();
    const previousVersion = host.currentVersion();
    const target = new Map(request.resources.map((r) => [resourceKey(r), r]));
    const current = new Map(host.store.resources().map((r) => [resourceKey(r), r]));
    const rejectedKeys = new Map(host.store.rejected().map((r) => [r.key, r]));
    const same = (a: ConfigResource | undefined, b: ConfigResource) => a !== undefined && a.apiVersion === b.apiVersion && hashResource(a) === hashResource(b);

    const results: RestoreResult[] = [];
    const edits = new FileEdits();
    for (const [key, r] of target) {
      const existing = current.get(key);
      // A file holding an invalid edit of the resource is rewritten too, so files match the mesh.
      if (same(existing, r) && !rejectedKeys.has(key)) continue;
      const info = kindByName(r.kind);
      if (!info) throw new ConfigRequestError(500, `cannot restore ${key}: unknown kind`);
      const home = host.store.sourceOf(key) ?? rejectedKeys.get(key)?.sourceId;
      const raw = manifestOf(r);
      const file = home ?? newResourceFile({ info, resource: r });
      if (home) edits.of(file).replace.set(key, raw);
      else edits.of(file).append.push(raw);
      results.push({ ...refOf(info, r), action: existing ? 'configured' : 'created', files: [file] });
    }
    const removals = [...current.keys()].filter((key) => !target.has(key));
    for (const key of removals) {
      const r = current.get(key)!;
      const file = host.store.sourceOf(key)!;
      edits.of(file).remove.add(key);
      results.push({ ...refOf(kindByName(r.kind)!, r), action: 'deleted', files: [file] });
    }
    results.sort((a, b) => (`${a.kind}/${a.namespace}/${a.name}` < `${b.kind}/${b.namespace}/${b.name}` ? -1 : 1));

    const outcome: RestoreOutcome = {
      dryRun: Boolean(request.dryRun),
      version: previousVersion,
      previousVersion,
      ...(request.message ? { message: request.message } : {}),
      results,
      warnings: [],
    };
    if (request.dryRun) {
      outcome.preview = host.preview([...target.values()], true);
      return outcome;
    }
    if (edits.size === 0) return outcome;
    outcome.preview = host.preview([...target.values()], false);

    const cause: ChangeCause = { source: 'api', operation: request.operation, message: request.message, resources: results.map((r) => `${r.kind}/${r.namespace}/${r.name}`) };
    this.commit(edits, cause, () => {
      const rejectedNow = new Map(host.store.rejected().map((r) => [r.key, r]));
      const wrong = [...target].filter(([key, r]) => rejectedNow.has(key) || !same(host.store.get(key), r)).map(([key]) => key);
      return wrong.length > 0
        ? `the control plane did not accept the restored config (${wrong
            .slice(0, 5)
            .map((key) => [key, ...(rejectedNow.get(key)?.problems.map(formatProblem) ?? [])].join(': '))
            .join('; ')})`
        : undefined;
    });
    // A resource also defined in a second file (the later one wins in the store) still serves
    // from there: remove it from each file in turn, as delete does.
    for (let round = 0; round < 8; round++) {
      const left = new FileEdits();
      for (const key of removals) {
        const file = host.store.sourceOf(key);
        if (!file) continue;
        left.of(file).remove.add(key);
        results.find((r) => `${r.kind}/${r.namespace}/${r.name}` === key)?.files.push(file);
      }
      if (left.size === 0) break;
      this.commit(left, cause, () => undefined);
    }
    outcome.version = host.currentVersion();
    host.logger.info('config_restored', { version: outcome.version, previousVersion, operation: request.operation, message: request.message, resources: cause.resources });
    return outcome;
  }

  /**
   * Writes every edited file (atomically, one rename each), rescans, and checks the outcome with
   * `verify`. On any failure every file is restored and the directory rescanned, so a refused or
   * failed change leaves files and mesh as they were.
   */
  private commit(edits: FileEdits, cause: ChangeCause, verify: () => string | undefined): void {
    const { host } = this;
    const planned: { file: string; absolute: string; before: string | undefined; after: string | undefined }[] = [];
    for (const [file, edit] of edits.entries()) {
      const absolute = insideConfigDir(host.configDir, file);
      const before = fs.existsSync(absolute) ? fs.readFileSync(absolute, 'utf8') : undefined;
      let after: string | undefined;
      try {
        after = editManifest(before ?? '', edit).text;
      } catch (err) {
        if (!(err instanceof UnparsableManifestError)) throw err;
        throw new ConfigRequestError(409, `cannot edit ${file}: ${err.message}`, {
          file,
          hint: `fix or remove ${file} in the config directory first; nothing was changed`,
        });
      }
      planned.push({ file, absolute, before, after });
    }
    const written: typeof planned = [];
    try {
      for (const p of planned) {
        writeOrRemove(p.absolute, p.after);
        written.push(p);
      }
      host.rescan(cause);
      const failure = verify();
      if (failure) throw new ConfigRequestError(500, failure);
    } catch (err) {
      for (const p of written.reverse()) {
        try {
          writeOrRemove(p.absolute, p.before);
        } catch (restoreError) {
          host.logger.error('config_restore_failed', { file: p.file, error: restoreError });
        }
      }
      host.rescan({ source: 'file' });
      if (err instanceof ConfigRequestError) throw err;
      throw new ConfigRequestError(500, `cannot write the config directory: ${(err as Error).message}`, {
        hint: `check that ${host.configDir} is writable by the control plane; nothing was changed`,
      });
    }
  }
}

/** Edits grouped by file (relative path). */
class FileEdits {
  private readonly byFile = new Map<string, { replace: Map<string, ManifestObject>; remove: Set<string>; append: ManifestObject[] }>();
  of(file: string) {
    let edit = this.byFile.get(file);
    if (!edit) this.byFile.set(file, (edit = { replace: new Map(), remove: new Set(), append: [] }));
    return edit;
  }
  get size(): number {
    return this.byFile.size;
  }
  entries() {
    return this.byFile.entries();
  }
}

// ---------------------------------------------------------------------------------------------
// Reading and validating request documents

function readResources(sources: readonly ManifestSource[]): { prepared: PreparedResource[]; errors: ConfigProblem[]; warnings: ConfigProblem[] } {
  const prepared: PreparedResource[] = [];
  const errors: ConfigProblem[] = [];
  const warnings: ConfigProblem[] = [];
  const firstSeen = new Map<string, ParsedDocument>();
  for (const source of sources) {
    const parsed = parseYamlDocuments(source.content, { file: source.name, source: 'api' });
    errors.push(...parsed.problems.filter((p) => p.severity === 'error'));
    warnings.push(...parsed.problems.filter((p) => p.severity === 'warning'));
    for (const doc of parsed.documents) {
      const result = validateResource(doc);
      if (!result.valid) {
        errors.push(...result.errors);
        // An unknown kind is skipped by the file source; applying it is an error.
        for (const w of result.warnings) {
          if (w.code === ProblemCode.UnknownKind) errors.push({ ...w, severity: 'error', message: unknownKindMessage(doc.raw) });
          else warnings.push(w);
        }
        continue;
      }
      warnings.push(...result.warnings);
      const key = resourceKey(result.resource);
      const earlier = firstSeen.get(key);
      if (earlier) {
        errors.push({
          code: ProblemCode.DuplicateEntry,
          severity: 'error',
          kind: result.resource.kind,
          namespace: result.resource.metadata.namespace,
          name: result.resource.metadata.name,
          ...(doc.origin.file !== undefined ? { file: doc.origin.file } : {}),
          ...(doc.origin.document !== undefined ? { document: doc.origin.document } : {}),
          path: 'metadata.name',
          message: `${key} is also defined in ${earlier.origin.file}#${earlier.origin.document}; a change may define each resource once`,
        });
        continue;
      }
      firstSeen.set(key, doc);
      prepared.push({ key, info: kindByName(result.resource.kind)!, resource: result.resource, raw: doc.raw as ManifestObject });
    }
  }
  return { prepared, errors, warnings };
}

function unknownKindMessage(raw: unknown): string {
  const kind = String((raw as { kind?: unknown }).kind);
  const suggestion = lookupKind(kind);
  const hint = suggestion ? `; did you mean "${suggestion.kind}"? (kinds are case-sensitive)` : '';
  return `kind ${kind} is not one Weft reads, so it cannot be applied (known: ${KNOWN_KINDS.map((k) => k.kind).join(', ')})${hint}`;
}

interface DeleteTarget {
  key: string;
  info: KindInfo;
  namespace: string;
  name: string;
}

function deleteTargets(request: DeleteRequest): DeleteTarget[] {
  const targets: DeleteTarget[] = [];
  const errors: ConfigProblem[] = [];
  const add = (info: KindInfo, namespace: string, name: string) => {
    const key = `${info.kind}/${namespace}/${name}`;
    if (!targets.some((t) => t.key === key)) targets.push({ key, info, namespace, name });
  };
  for (const t of request.targets ?? []) {
    const info = lookupKind(t.kind);
    if (!info) throw new ConfigRequestError(400, `unknown kind "${t.kind}"`, { hint: `known kinds: ${knownKindNames()}` });
    if (!t.name) throw new ConfigRequestError(400, 'a resource name is required');
    add(info, t.namespace || 'default', t.name);
  }
  for (const source of request.sources ?? []) {
    const parsed = parseYamlDocuments(source.content, { file: source.name, source: 'api' });
    errors.push(...parsed.problems.filter((p) => p.severity === 'error'));
    for (const doc of parsed.documents) {
      const raw = doc.raw as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null;
      const kind = typeof raw?.kind === 'string' ? raw.kind : '';
      const name = typeof raw?.metadata?.name === 'string' ? raw.metadata.name : '';
      const namespace = typeof raw?.metadata?.namespace === 'string' && raw.metadata.namespace ? raw.metadata.namespace : 'default';
      const info = kindByName(kind);
      const problem = (path: string, message: string): ConfigProblem => ({
        code: ProblemCode.MalformedDocument,
        severity: 'error',
        kind,
        namespace,
        name,
        ...(doc.origin.file !== undefined ? { file: doc.origin.file } : {}),
        ...(doc.origin.document !== undefined ? { document: doc.origin.document } : {}),
        path,
        message,
      });
      if (!info) errors.push(problem('kind', kind ? unknownKindMessage(raw) : 'kind is required to name the resource to delete'));
      else if (!name) errors.push(problem('metadata.name', 'metadata.name is required to name the resource to delete'));
      else add(info, namespace, name);
    }
  }
  if (errors.length > 0) throw invalid(errors, 'the request does not name resources clearly');
  return targets;
}

// ---------------------------------------------------------------------------------------------

function invalid(problems: ConfigProblem[], summary: string): ConfigRequestError {
  const count = problems.filter((p) => p.severity === 'error').length;
  return new ConfigRequestError(422, `${summary}: ${count} error(s); nothing was changed`, {
    problems,
    messages: problems.map(formatProblem),
  });
}

/** Problems in `after` that `before` did not have (origin and position aside). */
function newProblems(before: readonly ConfigProblem[], after: readonly ConfigProblem[]): ConfigProblem[] {
  const signature = (p: ConfigProblem) => [p.code, p.severity, p.kind, p.namespace, p.name, p.path, p.message].join('\u0000');
  const known = new Set(before.map(signature));
  return after.filter((p) => !known.has(signature(p)));
}

function problemKey(p: ConfigProblem): string {
  return `${p.kind}/${p.namespace}/${p.name}`;
}

function refOf(info: KindInfo, r: ConfigResource): ResourceRef {
  return { kind: info.kind, group: info.group, namespace: r.metadata.namespace, name: r.metadata.name };
}

/** A resource as written to a file: Kubernetes' shape, without where it came from. */
function manifestOf(r: ConfigResource): ManifestObject {
  return JSON.parse(JSON.stringify({ apiVersion: r.apiVersion, kind: r.kind, metadata: r.metadata, spec: r.spec })) as ManifestObject;
}

function newResourceFile(p: Pick<PreparedResource, 'info' | 'resource'>): string {
  return path.join(APPLIED_DIR, `${p.info.kind.toLowerCase()}-${p.resource.metadata.namespace}-${p.resource.metadata.name}.yaml`);
}


function insideConfigDir(configDir: string, file: string): string {
  const absolute = path.resolve(configDir, file);
  if (absolute !== configDir && !absolute.startsWith(configDir + path.sep)) {
    throw new ConfigRequestError(400, `refusing to write ${file}: outside the config directory`);
  }
  return absolute;
}

/** Atomic replace (write a hidden temp file, rename), or removal when `text` is undefined. */
function writeOrRemove(file: string, text: string | undefined): void {
  if (text === undefined) {
    fs.rmSync(file, { force: true });
    return;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(temp, text);
  fs.renameSync(temp, file);
}

