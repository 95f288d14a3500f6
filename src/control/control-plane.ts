// `weft control`: wires the stages together — file source -> config store -> versioned snapshot
// -> ADS server — and serves the monitoring/debug HTTP address and the config API behind the CLI.
// With a state directory it also runs the mesh CA, writes workload bootstrap tokens and serves the
// TLS port (15012) where proxies get certificates and authenticated xDS.
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import { isIP } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { BootstrapTokens, type WorkloadTokenSubject, type WrittenToken } from '../ca/bootstrap-tokens';
import { CaService } from '../ca/ca-service';
import { CallerAuthenticator } from '../ca/caller-authentication';
import { CertificateAuthority } from '../ca/certificate-authority';
import { CONTROL_PLANE_DNS_NAMES, ServingCertificate } from '../ca/serving-certificate';
import { analyzeResources } from '../config/analyze';
import { FileConfigSource, type FileUpdate } from '../config/file-source';
import { MeshConfigFile } from '../config/mesh-config';
import { formatProblem, type ConfigProblem } from '../config/problems';
import type { ConfigResource } from '../config/resources';
import { ConfigStore, isEmptyChange, type StoreChange } from '../config/store';
import type { Logger } from '../log/logger';
import type { ProxyNode } from '../model/proxy';
import { createSnapshot, DEFAULT_MESH_CONFIG, type MeshConfig, type MeshSnapshot } from '../model/snapshot';
import { AdsServer } from '../xds/server/ads-server';
import { createIdentityGuard } from '../xds/server/identity-guard';
import { parseProxyNode, translateForProxy } from '../xds/translate';
import { previewChange, type ChangePreview } from './change-preview';
import { ConfigHistory, UnknownVersionError, versionSourceOf, type VersionRecord } from './config-history';
import {
  ConfigRequestError,
  ConfigWriter,
  type ApplyOutcome,
  type ApplyRequest,
  type ChangeCause,
  type DeleteOutcome,
  type DeleteRequest,
  type RestoreOutcome,
  type RestoreRequest,
  type ManifestSource,
} from './config-writer';
import { startMonitoringServer, type MonitoringServer } from './monitoring-server';
import { whatIfRoute, WhatIfError, type RouteAnswer, type RouteQuestion } from './what-if-route';
import { DashboardService } from '../dashboard/dashboard-service';
import { RolloutController } from './rollout';
import { ApplyWatches } from './rollout-apply-watch';

export interface ControlPlaneOptions {
  configDir: string;
  /** host:port for plaintext xDS (Istio: 15010). */
  xdsAddress: string;
  /** host:port for /ready, /metrics, /debug/* (Istio: 15014). */
  httpAddress: string;
  logger: Logger;
  meshConfig?: MeshConfig;
  /**
   * Istio's MeshConfig YAML (`weft control --mesh-config`), watched: a valid change is a new
   * snapshot. Takes the place of `meshConfig`. The control plane does not start on an invalid one.
   */
  meshConfigFile?: string;
  /** Config versions kept in the history (`<stateDir>/history`, else memory). Default 100. */
  historySize?: number;
  pushDebounceMs?: number;
  pushDebounceMaxMs?: number;
  /**
   * Where the CA (`ca/`, Istio's plug-in layout), the token signing key and workload bootstrap
   * tokens (`tokens/<ns>/<name>.jwt`) are kept. Without it the control plane runs no CA, writes no
   * tokens and serves no secure port (`weft control` always passes one).
   */
  stateDir?: string;
  /** host:port of the TLS port serving the CA and authenticated xDS (Istio: 15012). Needs stateDir. */
  secureXdsAddress?: string;
  /** A directory in Istio's "plug in CA certificates" layout to sign with instead of a self-signed root. */
  caCertsDir?: string;
  /** Longest workload certificate lifetime in seconds (Istio MAX_WORKLOAD_CERT_TTL). Default 90 days. */
  maxWorkloadCertTtlSeconds?: number;
  /** How often the dashboard collector scrapes every proxy (rollouts judge its rounds). Default 5000. */
  scrapeIntervalMs?: number;
}

/** A snapshot was published: what changed and why (it is also the newest version in `history`). */
export interface SnapshotPublishedEvent {
  snapshot: MeshSnapshot;
  change: StoreChange;
  cause: ChangeCause;
}

export interface ControlPlaneEvents {
  snapshot: [SnapshotPublishedEvent];
}

export class ControlPlane {
  /** Emitted synchronously; 'snapshot' after every published snapshot. */
  readonly events = new EventEmitter<ControlPlaneEvents>();
  readonly store = new ConfigStore();
  /** Every accepted change as a version (id = snapshot sequence), kept across restarts with a state directory. */
  readonly history: ConfigHistory;
  /** The newest snapshot built. */
  private latest?: MeshSnapshot;
  readonly metrics = new Registry();
  readonly ads: AdsServer;
  private source?: FileConfigSource;
  private meshFile?: MeshConfigFile;
  private monitoring?: MonitoringServer;
  private analysis: ConfigProblem[] = [];
  readonly logger: Logger;
  private readonly snapshotsBuilt: Counter;
  private readonly snapshotBuildTime: Histogram;
  private readonly rejectedGauge: Gauge;
  private readonly configEvents: Counter;
  private readonly writer: ConfigWriter;
  /** The dashboard and its stats collector: golden signals per service, served on the HTTP address. */
  readonly dashboard: DashboardService;
  /** Progressive rollouts (`weft rollout`), run here so they outlive the CLI. */
  readonly rollouts: RolloutController;
  /** Health-gated applies (`weft apply --watch`). */
  readonly applyWatches: ApplyWatches;
  /** Connected proxies by ADS connection id (for the proxies API: addresses, workload names). */
  private readonly proxyNodes = new Map<string, ProxyNode>();
  /** The cause of the rescan in progress, when an API call triggered it. */
  private pendingCause?: ChangeCause;
  /** Absolute path of the watched config directory. */
  readonly configDir: string;
  xdsPort = 0;
  httpPort = 0;
  /** Absolute path of the state directory, when the control plane has one. */
  readonly stateDir?: string;
  /** Bound port of the secure xDS/CA address, 0 when not served. */
  secureXdsPort = 0;
  /** The mesh CA, once started with a state directory. */
  ca?: CertificateAuthority;
  /** Bootstrap token minting and verification, once started with a state directory. */
  tokens?: BootstrapTokens;
  private serving?: ServingCertificate;
  /** Token files are written one snapshot at a time, in order. */
  private tokenSync: Promise<void> = Promise.resolve();

  constructor(private readonly options: ControlPlaneOptions) {
    this.logger = options.logger;
    collectDefaultMetrics({ register: this.metrics });
    this.snapshotsBuilt = new Counter({ name: 'weft_snapshots_total', help: 'Mesh snapshots built from accepted config changes.', registers: [this.metrics] });
    this.snapshotBuildTime = new Histogram({
      name: 'weft_snapshot_build_seconds',
      help: 'Time to build a mesh snapshot (registry included) from the accepted resources.',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [this.metrics],
    });
    this.rejectedGauge = new Gauge({
      name: 'weft_config_rejected_resources',
      help: 'Resources currently rejected by validation (their last good version keeps serving).',
      registers: [this.metrics],
    });
    this.configEvents = new Counter({
      name: 'pilot_k8s_cfg_events',
      help: 'Config change events, by kind and event (add/update/delete).',
      labelNames: ['type', 'event'],
      registers: [this.metrics],
    });
    this.ads = new AdsServer({
      generate: translateForProxy,
      parseNode: parseProxyNode,
      logger: this.logger.child({ component: 'ads' }),
      metrics: this.metrics,
      debounceAfterMs: options.pushDebounceMs,
      debounceMaxMs: options.pushDebounceMaxMs,
    });
    if (options.secureXdsAddress && !options.stateDir) throw new Error('a secure xDS address needs a state directory for the CA');
    this.events.on('snapshot', (e) => this.syncWorkloadTokens(e.snapshot));
    this.ads.events.on('connect', (e) => this.proxyNodes.set(e.connectionId, e.proxy));
    this.ads.events.on('disconnect', (e) => this.proxyNodes.delete(e.connectionId));
    this.configDir = path.resolve(options.configDir);
    this.stateDir = options.stateDir ? path.resolve(options.stateDir) : undefined;
    this.history = new ConfigHistory({
      dir: this.stateDir ? path.join(this.stateDir, 'history') : undefined,
      maxVersions: options.historySize,
      logger: this.logger.child({ component: 'history' }),
    });
    const host = this;
    this.writer = new ConfigWriter({
      configDir: this.configDir,
      store: this.store,
      logger: this.logger,
      get domainSuffix() {
        return host.meshConfig.domainSuffix;
      },
      analysisProblems: () => this.analysis,
      rescan: (cause) => this.rescan(cause),
      currentVersion: () => this.current()?.version,
      preview: (candidate, withProxies) => this.previewChange(candidate, withProxies),
    });
    this.dashboard = new DashboardService(this, { intervalMs: options.scrapeIntervalMs });
    this.rollouts = new RolloutController(this);
    this.applyWatches = new ApplyWatches(this);
  }

  get meshConfig(): MeshConfig {
    return this.meshFile?.current() ?? this.options.meshConfig ?? DEFAULT_MESH_CONFIG;
  }

  /** The snapshot proxies are being served, once the first one is built. */
  current(): MeshSnapshot | undefined {
    return this.latest;
  }

  /** Cross-resource analysis of the current config (warnings and errors, not rejections). */
  analysisProblems(): readonly ConfigProblem[] {
    return this.analysis;
  }

  /**
   * Validates `request` like the file source would and writes it into the config directory
   * (existing resources in their own file, new ones under applied/), then rescans so the result
   * carries the new snapshot version. Throws ConfigRequestError (with the analyzer's problems)
   * and changes nothing when any document is invalid. Serialized with every other change.
   */
  apply(request: ApplyRequest): Promise<ApplyOutcome> {
    return this.writer.apply(request);
  }

  /** Removes resources from their files (a file left empty is deleted) and rescans. */
  deleteResources(request: DeleteRequest): Promise<DeleteOutcome> {
    return this.writer.delete(request);
  }

  /**
   * Restores the resources of an earlier version (default: the one before the current) as a new
   * version with source `rollback`: the config directory is rewritten to match and proxies are
   * pushed. Serialized with apply and delete.
   */
  rollback(request: { version?: string; message?: string; dryRun?: boolean }): Promise<RestoreOutcome & { target: string }> {
    let target: VersionRecord;
    try {
      target = this.history.resolve(request.version ?? '-1');
    } catch (err) {
      if (!(err instanceof UnknownVersionError)) throw err;
      if (request.version !== undefined) throw new ConfigRequestError(404, err.message, { hint: 'list versions with `weft history`' });
      throw new ConfigRequestError(404, `there is no version before the current one (${this.current()?.version ?? 'none'}) to roll back to`, { hint: 'list versions with `weft history`' });
    }
    const resources = [...this.history.resourcesOf(target.id).values()];
    const message = `rollback to v${target.id}${request.message ? `: ${request.message}` : ''}`;
    return this.writer.restore({ resources, operation: 'rollback', message, dryRun: request.dryRun }).then((outcome) => ({ ...outcome, target: `v${target.id}` }));
  }

  /**
   * Makes the config exactly `request.resources` (files rewritten, one new version with the
   * request's operation as its source): how rollouts and health-gated applies undo themselves.
   */
  restore(request: RestoreRequest): Promise<RestoreOutcome> {
    return this.writer.restore(request);
  }

  /** The diff from the running config to `candidate`, and (withProxies) which connected proxies it would change. */
  previewChange(candidate: readonly ConfigResource[], withProxies: boolean): ChangePreview {
    const proxies = withProxies
      ? this.ads
          .syncStatus()
          .map((s) => this.proxyNodes.get(s.connectionId))
          .filter((p): p is ProxyNode => p !== undefined)
      : undefined;
    return previewChange({ current: this.ads.servedSnapshot ?? this.current(), candidate, meshConfig: this.meshConfig, proxies, translate: translateForProxy });
  }

  /**
   * What-if routing (`weft route`): how `question` would be handled by the running config, or,
   * with `sources`, by the running config with those resources applied on top (validated as
   * `apply --dry-run` validates them; nothing is written). Refusals are ConfigRequestErrors.
   */
  async whatIfRoute(question: RouteQuestion, sources?: readonly ManifestSource[]): Promise<RouteAnswer> {
    const running = this.current();
    if (!running) throw new ConfigRequestError(503, 'the control plane has no config snapshot yet', { hint: 'wait for `weft control` to report ready' });
    let snapshot = running;
    let candidate: RouteAnswer['candidate'];
    if (sources && sources.length > 0) {
      const c = await this.writer.candidate({ sources });
      snapshot = createSnapshot({ sequence: running.sequence, reason: 'what-if', resources: c.resources, meshConfig: this.meshConfig });
      candidate = { files: sources.map((s) => s.name), warnings: c.warnings };
    }
    const connected = this.ads
      .syncStatus()
      .map((s) => this.proxyNodes.get(s.connectionId))
      .filter((p): p is ProxyNode => p !== undefined);
    try {
      const answer = whatIfRoute({ snapshot, connected, translate: translateForProxy, question });
      answer.version = running.version;
      if (candidate) answer.candidate = candidate;
      return answer;
    } catch (err) {
      if (err instanceof WhatIfError) throw new ConfigRequestError(err.status, err.message, err.hint ? { hint: err.hint } : {});
      throw err;
    }
  }

  /** What a connected proxy said about itself (by ADS connection id). */
  proxyNode(connectionId: string): ProxyNode | undefined {
    return this.proxyNodes.get(connectionId);
  }

  /**
   * Writes the bootstrap token file of `subject` (always a new token) and returns its path and
   * text; for gateways and other proxies that have no WorkloadEntry.
   */
  async createToken(subject: WorkloadTokenSubject): Promise<WrittenToken> {
    if (!this.tokens) throw new Error('this control plane runs without a state directory, so it issues no tokens');
    const written = await this.tokens.writeWorkloadToken(subject, { force: true });
    this.logger.info('token_created', { ...subject, path: written.path });
    return written;
  }

  /** Resolves once the token files of every snapshot published so far are written. */
  workloadTokensWritten(): Promise<void> {
    return this.tokenSync;
  }

  async start(): Promise<void> {
    const dir = this.configDir;
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
      throw new Error(`config directory ${dir} does not exist (hint: create it, or pass --config-dir)`);
    }
    if (this.options.meshConfigFile) this.loadMeshConfigFile(this.options.meshConfigFile);
    const stateDir = this.stateDir;
    if (stateDir) {
      // Before the first snapshot, so its WorkloadEntries get their token files.
      this.ca = await CertificateAuthority.loadOrCreate({
        stateDir,
        trustDomain: this.meshConfig.trustDomain,
        pluggedCertsDir: this.options.caCertsDir,
        logger: this.logger.child({ component: 'ca' }),
        maxWorkloadCertTtlSeconds: this.options.maxWorkloadCertTtlSeconds,
      });
      this.tokens = await BootstrapTokens.loadOrCreate({ stateDir, logger: this.logger });
    }
    this.history.open();
    this.source = new FileConfigSource({
      dir,
      logger: this.logger,
      onUpdates: (updates) => this.applyFileUpdates(updates, 'file change'),
    });
    this.applyFileUpdates(this.source.loadAll(), 'initial load', true);
    this.source.watch();
    this.meshFile?.watch();
    this.xdsPort = await this.ads.listen(this.options.xdsAddress);
    if (!isLoopbackHost(hostOf(this.options.xdsAddress))) {
      this.logger.warn('plaintext_xds_exposed', {
        address: this.options.xdsAddress,
        hint: 'plaintext xDS has no authentication; keep it on 127.0.0.1 and let remote proxies use the secure address',
      });
    }
    if (this.options.secureXdsAddress) await this.listenSecure(this.options.secureXdsAddress);
    this.monitoring = await startMonitoringServer(this, this.options.httpAddress);
    this.httpPort = this.monitoring.port;
    await this.tokenSync;
    this.logger.info('control_plane_ready', {
      configDir: dir,
      xds: replacePort(this.options.xdsAddress, this.xdsPort),
      ...(this.secureXdsPort ? { secureXds: replacePort(this.options.secureXdsAddress!, this.secureXdsPort) } : {}),
      http: replacePort(this.options.httpAddress, this.httpPort),
      ...(stateDir ? { stateDir } : {}),
      version: this.current()?.version,
      resources: this.current()?.resources.size,
    });
  }

  /**
   * Rescans the config directory now, synchronously (for callers that just wrote files); a
   * resulting snapshot records `cause`. Returns the snapshot serving afterwards.
   */
  rescan(cause?: ChangeCause): MeshSnapshot | undefined {
    this.pendingCause = cause;
    try {
      this.source?.rescan();
    } finally {
      this.pendingCause = undefined;
    }
    return this.current();
  }

  async stop(graceMs = 2000): Promise<void> {
    await this.rollouts.close();
    await this.applyWatches.close();
    this.source?.close();
    this.meshFile?.close();
    this.serving?.close();
    await this.monitoring?.close();
    await this.ads.close(graceMs);
    this.logger.info('control_plane_stopped');
  }

  /** Reads the mesh config file (throwing with every problem when it is invalid) and keeps it watched. */
  private loadMeshConfigFile(file: string): void {
    const meshFile = new MeshConfigFile({
      file,
      logger: this.logger,
      onChange: () => {
        const empty: StoreChange = { added: [], updated: [], removed: [], rejected: [] };
        this.publish(`mesh config change: ${path.basename(meshFile.file)}`, empty, { source: 'mesh-config' });
      },
    });
    const loaded = meshFile.load();
    if (!loaded.valid) {
      const lines = loaded.errors.map((p) => `  ${formatProblem(p)}`).join('\n');
      throw new Error(`invalid mesh config ${meshFile.file}:\n${lines}\n(hint: fix the file, or start without --mesh-config for the defaults)`);
    }
    this.meshFile = meshFile;
    this.logger.info('mesh_config_loaded', { file: meshFile.file, trustDomain: meshFile.current().trustDomain, rootNamespace: meshFile.current().rootNamespace });
  }

  /** The TLS port: the CA service and ADS, both open only to callers with a mesh identity. */
  private async listenSecure(address: string): Promise<void> {
    const ca = this.ca!;
    const tokens = this.tokens!;
    this.serving = await ServingCertificate.issue({
      ca,
      ...servingNames(hostOf(address)),
      logger: this.logger.child({ component: 'ca' }),
    });
    const authenticator = new CallerAuthenticator({ trustDomain: ca.trustDomain, tokens });
    const caService = new CaService({ ca, authenticator, logger: this.logger, metrics: this.metrics });
    this.secureXdsPort = await this.ads.listen(address, {
      credentials: this.serving.serverCredentials(),
      guard: createIdentityGuard(authenticator),
      services: [{ definition: caService.definition, implementation: caService.implementation() }],
    });
  }

  private syncWorkloadTokens(snapshot: MeshSnapshot): void {
    const tokens = this.tokens;
    if (!tokens) return;
    this.tokenSync = this.tokenSync
      .then(() => tokens.syncWorkloadTokens(snapshot.registry.workloads.values()))
      .then((written) => {
        if (written.length > 0) this.logger.info('workload_tokens_written', { version: snapshot.version, count: written.length, files: written.slice(0, 10) });
      })
      .catch((err: unknown) => this.logger.error('workload_tokens_failed', { version: snapshot.version, error: err }));
  }

  private applyFileUpdates(updates: FileUpdate[], reason: string, force = false): void {
    const total: StoreChange = { added: [], updated: [], removed: [], rejected: [] };
    for (const u of updates) {
      const change = u.documents ? this.store.replaceSource(u.sourceId, u.documents, u.problems) : this.store.removeSource(u.sourceId);
      total.added.push(...change.added);
      total.updated.push(...change.updated);
      total.removed.push(...change.removed);
      total.rejected.push(...change.rejected);
    }
    for (const key of total.rejected) {
      const rejection = this.store.rejected().find((r) => r.key === key);
      for (const p of rejection?.problems ?? []) {
        this.logger.warn('config_rejected', {
          resource: key,
          lastGoodServing: rejection?.lastGoodServing,
          problem: formatProblem(p),
        });
      }
    }
    this.rejectedGauge.set(this.store.rejected().length);
    const countEvents = (keys: string[], event: string) => {
      for (const k of keys) this.configEvents.inc({ type: k.split('/')[0], event });
    };
    countEvents(total.added, 'add');
    countEvents(total.updated, 'update');
    countEvents(total.removed, 'delete');
    if (!force && isEmptyChange(total)) return;
    const files = updates.map((u) => u.sourceId);
    const cause: ChangeCause = this.pendingCause ?? { source: 'file' };
    const listed = (items: string[]) => `${items.slice(0, 5).join(', ')}${items.length > 5 ? ` (+${items.length - 5} more)` : ''}`;
    const described =
      cause.source === 'api'
        ? `weft ${cause.operation ?? 'change'}: ${listed(cause.resources ?? files)}${cause.message ? ` — ${JSON.stringify(cause.message)}` : ''}`
        : `${reason}: ${listed(files)}`;
    this.publish(described, total, cause, force);
  }

  /**
   * Builds, records and serves a snapshot. The first one after a start serves the latest kept
   * version again when the config directory still holds exactly its resources.
   */
  private publish(reason: string, change: StoreChange, cause: ChangeCause, initial = false): MeshSnapshot {
    const started = process.hrtime.bigint();
    const resources = this.store.resources();
    const resumed = initial && this.history.sameAsLatest(resources) ? this.history.latest() : undefined;
    const snapshot = createSnapshot({ sequence: resumed?.id ?? this.history.nextId(), reason: resumed?.reason ?? reason, resources, meshConfig: this.meshConfig });
    this.analysis = analyzeResources(resources, { domainSuffix: this.meshConfig.domainSuffix });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    this.snapshotBuildTime.observe(seconds);
    this.snapshotsBuilt.inc();
    if (!resumed) this.history.record(snapshot, versionSourceOf(cause), cause.message);
    this.latest = snapshot;
    this.ads.publish(snapshot);
    this.logger.info('snapshot_published', {
      version: snapshot.version,
      reason,
      resources: snapshot.resources.size,
      services: snapshot.registry.services.size,
      added: change.added.length,
      updated: change.updated.length,
      removed: change.removed.length,
      rejected: change.rejected.length,
      buildMs: Math.round(seconds * 1000 * 100) / 100,
      source: versionSourceOf(cause),
      ...(cause.message ? { message: cause.message } : {}),
      ...(resumed ? { resumed: true } : {}),
    });
    this.events.emit('snapshot', { snapshot, change, cause });
    return snapshot;
  }
}

function hostOf(address: string): string {
  return address.slice(0, address.lastIndexOf(':')).replace(/^\[|\]$/g, '');
}

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/**
 * What the serving certificate names: istiod's and Weft's DNS names, and the addresses clients
 * dial — the bound IP, or every local address when bound to all of them.
 */
function servingNames(host: string): { dnsNames: string[]; ips: string[] } {
  const dnsNames: string[] = [...CONTROL_PLANE_DNS_NAMES];
  const ips = new Set<string>(['127.0.0.1', '::1']);
  if (host === '' || host === '0.0.0.0' || host === '::') {
    for (const addresses of Object.values(os.networkInterfaces())) for (const a of addresses ?? []) ips.add(a.address.replace(/%.*$/, ''));
  } else if (isIP(host)) {
    ips.add(host);
  } else if (!dnsNames.includes(host)) {
    dnsNames.push(host);
  }
  return { dnsNames, ips: [...ips] };
}

function replacePort(address: string, port: number): string {
  const i = address.lastIndexOf(':');
  return `${address.slice(0, i)}:${port}`;
}
