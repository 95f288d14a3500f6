// Config history: every accepted change to the configuration is a version — id, time, source,
// the operator's message, and the full set of resources — kept under the control plane's state
// directory so it survives a restart. The snapshot served to proxies carries the same id (`v<id>`),
// so "version 7" means one thing in `weft history`, `weft proxy-status` and the dashboard.
//
// On disk (`<state dir>/history/`), content-addressed so versions share unchanged resources:
//
//   versions/<id, 10 digits>.json   {id, createdAt, source, message?, reason, counts, resources: {key: sha256}}
//   blobs/<2 hex>/<sha256>.json     one resource {apiVersion, kind, metadata, spec}, named by its hash
//
// Every file is written to a temporary name and renamed into place; a version file is written
// after its blobs, so a crash leaves at most unreferenced blobs (collected with the next pruning).
// Only the last `maxVersions` versions are kept.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { resourceKey, type ConfigResource } from '../config/resources';
import type { Logger } from '../log/logger';
import type { MeshSnapshot } from '../model/snapshot';
import { canonicalJson, type DiffableResource } from './config-diff';

/**
 * What made a version: the config directory's watcher (`file`), a CLI/API operation, a mesh config
 * edit, or a progressive rollout step (`rollout`, recorded by whoever drives the rollout through
 * ConfigWriter.apply with operation 'rollout').
 */
export type VersionSource = 'file' | 'apply' | 'delete' | 'rollback' | 'rollout' | 'mesh-config';

/** A resource as history stores it (what the user wrote: no origin, no derived state). */
export type StoredResource = DiffableResource & ConfigResource;

/** One version, as kept in memory and on disk. */
export interface VersionRecord {
  readonly id: number;
  readonly createdAt: string;
  readonly source: VersionSource;
  readonly message?: string;
  /** Why the snapshot was built, e.g. `file change: reviews.yaml` or `weft apply: VirtualService/default/reviews`. */
  readonly reason: string;
  /** `Kind/namespace/name` -> content hash of the resource (its blob). */
  readonly resources: ReadonlyMap<string, string>;
  /** Compared with the version before it. */
  readonly added: number;
  readonly changed: number;
  readonly removed: number;
  /** Services in the registry built from it (for the dashboard). */
  readonly services: number;
}

/** A version as the API returns it (`GET /api/v1/history`, `/debug/snapshots`). */
export interface VersionSummary {
  id: number;
  /** `v<id>`: the snapshot version proxies report. */
  version: string;
  createdAt: string;
  source: VersionSource;
  message?: string;
  reason: string;
  /** How many resources the version holds. */
  resources: number;
  services: number;
  added: number;
  changed: number;
  removed: number;
}

export interface ConfigHistoryOptions {
  /** Where history lives (`<state dir>/history`); without one it is kept in memory only. */
  dir?: string;
  /** Versions kept (the oldest are dropped). Default 100. */
  maxVersions?: number;
  logger: Logger;
}

/** The history directory cannot be used: the control plane does not start. */
export class ConfigHistoryError extends Error {}

export const DEFAULT_HISTORY_SIZE = 100;

/** A version named by the operator that history does not hold. */
export class UnknownVersionError extends Error {}

const FORMAT = 1;
/** Blobs kept in memory after reading them from disk. */
const BLOB_CACHE_SIZE = 20_000;

interface VersionFile {
  format: number;
  id: number;
  createdAt: string;
  source: VersionSource;
  message?: string;
  reason: string;
  added: number;
  changed: number;
  removed: number;
  services: number;
  resources: Record<string, string>;
}

export class ConfigHistory {
  readonly maxVersions: number;
  readonly dir?: string;
  private readonly logger: Logger;
  private readonly records: VersionRecord[] = [];
  /** Blob contents: every blob without a directory, a bounded cache with one. */
  private readonly blobs = new Map<string, StoredResource>();
  /** Blobs on disk (or, without a directory, in `blobs`) referenced by a kept version. */
  private readonly storedBlobs = new Set<string>();
  /** Blobs that could not be written: kept in memory so their versions stay restorable. */
  private readonly unwrittenBlobs = new Map<string, StoredResource>();
  /** Content hashes by resource object (store resources are immutable and reused across versions). */
  private readonly hashes = new WeakMap<object, string>();
  private lastId = 0;

  constructor(options: ConfigHistoryOptions) {
    this.maxVersions = Math.max(1, Math.floor(options.maxVersions ?? DEFAULT_HISTORY_SIZE));
    this.dir = options.dir ? path.resolve(options.dir) : undefined;
    this.logger = options.logger;
  }

  /**
   * Reads the versions kept on disk and checks that the directory is writable. Throws
   * ConfigHistoryError (with a hint) when it is not: changes that cannot be recorded would break
   * the promise that every change can be undone.
   */
  open(): void {
    const dir = this.dir;
    if (!dir) return;
    try {
      fs.mkdirSync(path.join(dir, 'versions'), { recursive: true, mode: 0o700 });
      fs.mkdirSync(path.join(dir, 'blobs'), { recursive: true, mode: 0o700 });
      const probe = path.join(dir, `.probe.${process.pid}.tmp`);
      fs.writeFileSync(probe, 'ok');
      fs.rmSync(probe, { force: true });
    } catch (err) {
      throw new ConfigHistoryError(
        `cannot keep config history in ${dir}: ${(err as Error).message} (hint: make the state directory writable by the control plane, or start it with --state-dir DIR)`,
      );
    }
    const versionsDir = path.join(dir, 'versions');
    for (const name of fs.readdirSync(versionsDir).sort()) {
      const file = path.join(versionsDir, name);
      if (name.startsWith('.')) {
        fs.rmSync(file, { force: true }); // a temporary file left by a crash
        continue;
      }
      if (!/^\d+\.json$/.test(name)) continue;
      try {
        const record = parseVersionFile(fs.readFileSync(file, 'utf8'));
        this.records.push(record);
        for (const hash of record.resources.values()) this.storedBlobs.add(hash);
      } catch (err) {
        this.logger.warn('config_history_version_unreadable', { file, error: err, hint: 'the file is skipped; remove it to silence this warning' });
      }
    }
    this.records.sort((a, b) => a.id - b.id);
    this.lastId = this.records[this.records.length - 1]?.id ?? 0;
    this.prune();
    this.logger.info('config_history_loaded', { dir, versions: this.records.length, latest: this.lastId || undefined, maxVersions: this.maxVersions });
  }

  /** The id the next version gets (ids are never reused, even after pruning). */
  nextId(): number {
    return this.lastId + 1;
  }

  latest(): VersionRecord | undefined {
    return this.records[this.records.length - 1];
  }

  get(id: number): VersionRecord | undefined {
    return this.records.find((r) => r.id === id);
  }

  /** Oldest first. */
  list(): readonly VersionRecord[] {
    return this.records;
  }

  /** The kept version just before `id`, if any. */
  previous(id: number): VersionRecord | undefined {
    const i = this.records.findIndex((r) => r.id === id);
    return i > 0 ? this.records[i - 1] : undefined;
  }

  /**
   * `7`, `v7`, or relative `-1` (one before the current), `current`: the version, or an
   * UnknownVersionError saying what is kept.
   */
  resolve(ref: string | number): VersionRecord {
    const text = String(ref).trim();
    const latest = this.latest();
    let found: VersionRecord | undefined;
    if (text === 'current' || text === 'latest') found = latest;
    else if (/^-\d+$/.test(text)) found = this.records[this.records.length - 1 + Number(text)];
    else if (/^v?\d+$/.test(text)) found = this.get(Number(text.replace(/^v/, '')));
    else throw new UnknownVersionError(`"${text}" is not a version (use a number such as 7 or v7, or -1 for the one before the current)`);
    if (found) return found;
    const oldest = this.records[0];
    const kept = oldest ? `history keeps v${oldest.id} to v${latest!.id} (the last ${this.maxVersions})` : 'history is empty';
    throw new UnknownVersionError(`version ${text} is not in the config history: ${kept}`);
  }

  /** True when `resources` are exactly the latest version's (a restart on an unchanged directory). */
  sameAsLatest(resources: Iterable<ConfigResource>): boolean {
    const latest = this.latest();
    if (!latest) return false;
    let count = 0;
    for (const r of resources) {
      count++;
      if (latest.resources.get(resourceKey(r)) !== this.hashOf(r)) return false;
    }
    return count === latest.resources.size;
  }

  /**
   * Records `snapshot` (whose sequence must be nextId()) as a new version and writes it. A write
   * failure is logged, not thrown: the change is already serving, and the version stays in memory.
   */
  record(snapshot: MeshSnapshot, source: VersionSource, message?: string): VersionRecord {
    if (snapshot.sequence !== this.nextId()) throw new Error(`version ${snapshot.sequence} recorded out of order (next is ${this.nextId()})`);
    const resources = new Map<string, string>();
    const newBlobs: [string, StoredResource][] = [];
    for (const [key, r] of snapshot.resources) {
      const hash = this.hashOf(r);
      resources.set(key, hash);
      if (!this.storedBlobs.has(hash) && !this.unwrittenBlobs.has(hash)) newBlobs.push([hash, storedForm(r)]);
    }
    const before = this.latest()?.resources ?? new Map<string, string>();
    let added = 0;
    let changed = 0;
    for (const [key, hash] of resources) {
      const old = before.get(key);
      if (old === undefined) added++;
      else if (old !== hash) changed++;
    }
    let removed = 0;
    for (const key of before.keys()) if (!resources.has(key)) removed++;
    const record: VersionRecord = Object.freeze({
      id: snapshot.sequence,
      createdAt: snapshot.createdAt,
      source,
      ...(message ? { message } : {}),
      reason: snapshot.reason,
      resources,
      added,
      changed,
      removed,
      services: snapshot.registry.services.size,
    });
    this.persist(record, newBlobs);
    this.records.push(record);
    this.lastId = record.id;
    this.prune();
    return record;
  }

  /** The resources of version `id`, by key (blobs read from disk as needed). */
  resourcesOf(id: number): Map<string, StoredResource> {
    const record = this.get(id);
    if (!record) throw new UnknownVersionError(`version ${id} is not in the config history`);
    const out = new Map<string, StoredResource>();
    for (const [key, hash] of record.resources) out.set(key, this.blob(hash));
    return out;
  }

  summary(record: VersionRecord): VersionSummary {
    return {
      id: record.id,
      version: `v${record.id}`,
      createdAt: record.createdAt,
      source: record.source,
      ...(record.message ? { message: record.message } : {}),
      reason: record.reason,
      resources: record.resources.size,
      services: record.services,
      added: record.added,
      changed: record.changed,
      removed: record.removed,
    };
  }

  private hashOf(r: ConfigResource): string {
    let hash = this.hashes.get(r);
    if (!hash) {
      hash = createHash('sha256').update(canonicalJson(storedForm(r))).digest('hex');
      this.hashes.set(r, hash);
    }
    return hash;
  }

  private blob(hash: string): StoredResource {
    const known = this.blobs.get(hash) ?? this.unwrittenBlobs.get(hash);
    if (known) return known;
    if (!this.dir) throw new Error(`config history lost resource ${hash}`);
    const file = this.blobPath(hash);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(`config history is missing ${file}: ${(err as Error).message}`);
    }
    const resource = deepFreeze(JSON.parse(text) as StoredResource);
    if (createHash('sha256').update(canonicalJson(resource)).digest('hex') !== hash) throw new Error(`config history file ${file} is corrupt (its content does not match its name)`);
    this.cache(hash, resource);
    return resource;
  }

  /** Keeps a blob's content in memory: all of them without a directory, the most recent with one. */
  private cache(hash: string, resource: StoredResource): void {
    if (this.dir && this.blobs.size >= BLOB_CACHE_SIZE) this.blobs.delete(this.blobs.keys().next().value!);
    this.blobs.set(hash, resource);
  }

  private blobPath(hash: string): string {
    return path.join(this.dir!, 'blobs', hash.slice(0, 2), `${hash}.json`);
  }

  private versionPath(id: number): string {
    return path.join(this.dir!, 'versions', `${String(id).padStart(10, '0')}.json`);
  }

  private persist(record: VersionRecord, newBlobs: [string, StoredResource][]): void {
    for (const [hash, r] of newBlobs) this.cache(hash, r);
    if (!this.dir) {
      for (const [hash] of newBlobs) this.storedBlobs.add(hash);
      return;
    }
    let written = 0;
    try {
      for (const [hash, r] of newBlobs) {
        const file = this.blobPath(hash);
        // Not flushed one by one (thousands on a first start); a torn blob fails its hash check on read.
        if (!fs.existsSync(file)) writeFileAtomic(file, JSON.stringify(r), false);
        this.storedBlobs.add(hash);
        written++;
      }
      const body: VersionFile = {
        format: FORMAT,
        id: record.id,
        createdAt: record.createdAt,
        source: record.source,
        ...(record.message ? { message: record.message } : {}),
        reason: record.reason,
        added: record.added,
        changed: record.changed,
        removed: record.removed,
        services: record.services,
        resources: Object.fromEntries(record.resources),
      };
      writeFileAtomic(this.versionPath(record.id), JSON.stringify(body));
    } catch (err) {
      for (const [hash, r] of newBlobs.slice(written)) this.unwrittenBlobs.set(hash, r);
      this.logger.error('config_history_write_failed', {
        dir: this.dir,
        version: record.id,
        error: err,
        hint: 'the change is serving and stays in memory, but will not survive a restart; check the state directory (space, permissions)',
      });
    }
  }

  /** Drops the oldest versions beyond maxVersions, then every blob no kept version uses. */
  private prune(): void {
    if (this.records.length <= this.maxVersions) return;
    const dropped = this.records.splice(0, this.records.length - this.maxVersions);
    if (this.dir) for (const r of dropped) fs.rmSync(this.versionPath(r.id), { force: true });
    const used = new Set<string>();
    for (const r of this.records) for (const hash of r.resources.values()) used.add(hash);
    for (const hash of [...this.storedBlobs]) {
      if (used.has(hash)) continue;
      this.storedBlobs.delete(hash);
      this.blobs.delete(hash);
      if (this.dir) fs.rmSync(this.blobPath(hash), { force: true });
    }
    for (const hash of [...this.unwrittenBlobs.keys()]) if (!used.has(hash)) this.unwrittenBlobs.delete(hash);
  }
}

/** The source a ChangeCause records as (see VersionSource). */
export function versionSourceOf(cause: { source: 'file' | 'api' | 'mesh-config'; operation?: string }): VersionSource {
  if (cause.source !== 'api') return cause.source;
  const op = cause.operation;
  return op === 'delete' || op === 'rollback' || op === 'rollout' ? op : 'apply';
}

/** Kubernetes' shape of a resource, re-appliable as it is. */
function storedForm(r: ConfigResource): StoredResource {
  return { apiVersion: r.apiVersion, kind: r.kind, metadata: r.metadata, spec: r.spec } as StoredResource;
}

function parseVersionFile(text: string): VersionRecord {
  const v = JSON.parse(text) as Partial<VersionFile>;
  if (v.format !== FORMAT || typeof v.id !== 'number' || typeof v.createdAt !== 'string' || typeof v.resources !== 'object' || v.resources === null) {
    throw new Error('not a config history version file of this format');
  }
  return Object.freeze({
    id: v.id,
    createdAt: v.createdAt,
    source: (v.source ?? 'file') as VersionSource,
    ...(v.message ? { message: v.message } : {}),
    reason: String(v.reason ?? ''),
    resources: new Map(Object.entries(v.resources)),
    added: Number(v.added ?? 0),
    changed: Number(v.changed ?? 0),
    removed: Number(v.removed ?? 0),
    services: Number(v.services ?? 0),
  });
}

/** Write a hidden temporary file beside `file`, flush it (unless told not to), and rename it into place. */
function writeFileAtomic(file: string, text: string, flush = true): void {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  let fd: number;
  try {
    fd = fs.openSync(temp, 'w', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    fd = fs.openSync(temp, 'w', 0o600);
  }
  try {
    fs.writeSync(fd, text);
    if (flush) fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temp, file);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}
