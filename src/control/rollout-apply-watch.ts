// Health-gated apply (`weft apply --watch 60s`): after a change, the control plane watches the
// golden signals of the services the change touches (every service when it cannot tell) for a
// window and undoes the change — the changed resources restored to the version before it, source
// `rollback` — when they regress. "Regress", per service, over the requests since the proxies
// ACKed the change (at least minRequests of them): the error rate is above the maximum AND higher
// than in the same length of time before the change, or the p99 is above the maximum AND higher
// than before. A service that was already over a threshold and got no worse is not a regression.
import { resourceKey, type ConfigResource } from '../config/resources';
import type { MeshSnapshot } from '../model/snapshot';
import { toFqdn } from '../registry/hosts';
import { ConfigRequestError } from './config-writer';
import { formatMs, formatPercent, ROLLOUT_DEFAULTS, type ApplyWatchRequest, type ApplyWatchStatus } from './rollout-contract';
import { EventLog, nextRound, type RolloutHost } from './rollout';

/** Watches kept for the API. */
const KEPT = 20;

interface ServiceRef {
  namespace: string;
  name: string;
  hostname: string;
}

/** The services a set of changed resources can affect: hosts of VirtualServices and DestinationRules, else all. */
export function affectedServices(snapshot: MeshSnapshot, changed: readonly ConfigResource[]): ServiceRef[] {
  const suffix = snapshot.meshConfig.domainSuffix;
  const all = [...snapshot.registry.services.values()].filter((s) => s.location === 'MESH_INTERNAL');
  const hosts = new Set<string>();
  for (const r of changed) {
    if (r.kind === 'VirtualService') {
      const vs = r as ConfigResource<'VirtualService'>;
      for (const h of vs.spec.hosts ?? []) hosts.add(toFqdn(h, r.metadata.namespace, suffix));
      for (const rule of [...(vs.spec.http ?? []), ...(vs.spec.tcp ?? []), ...(vs.spec.tls ?? [])]) {
        for (const d of rule.route ?? []) hosts.add(toFqdn(d.destination.host, r.metadata.namespace, suffix));
      }
    } else if (r.kind === 'DestinationRule') {
      const host = (r as ConfigResource<'DestinationRule'>).spec.host;
      if (host) hosts.add(toFqdn(host, r.metadata.namespace, suffix));
    } else {
      return all.map((s) => ({ namespace: s.namespace, name: s.name, hostname: s.hostname }));
    }
  }
  return all.filter((s) => hosts.has(s.hostname)).map((s) => ({ namespace: s.namespace, name: s.name, hostname: s.hostname }));
}

class ApplyWatch {
  readonly log = new EventLog();
  readonly stop = new AbortController();
  readonly status: ApplyWatchStatus;
  done: Promise<void> = Promise.resolve();

  constructor(
    private readonly host: RolloutHost,
    private readonly versionId: number,
    private readonly previousId: number,
    private readonly services: ServiceRef[],
    private readonly changedKeys: string[],
    private readonly request: Required<ApplyWatchRequest>,
  ) {
    this.status = {
      id: `v${versionId}`,
      version: `v${versionId}`,
      previousVersion: `v${previousId}`,
      services: services.map((s) => `${s.namespace}/${s.name}`),
      windowSeconds: request.windowMs / 1000,
      thresholds: { maxErrorRate: request.maxErrorRate, maxP99Ms: request.maxP99Ms, minRequests: request.minRequests },
      state: 'watching',
      startedAt: new Date().toISOString(),
      events: this.log.events,
    };
  }

  async run(): Promise<void> {
    const { host, request, status, log } = this;
    const appliedAt = Date.parse(host.history.resolve(this.versionId).createdAt) || Date.now();
    log.add('started', `watching ${status.services.join(', ') || 'no service'} for ${request.windowMs / 1000}s after ${status.version}: roll back if error rate > ${formatPercent(request.maxErrorRate)} or p99 > ${formatMs(request.maxP99Ms)} and worse than before`);
    try {
      try {
        await host.ads.waitForConvergence({ version: status.version, timeoutMs: 30_000 });
        log.add('converged', `proxies ACKed ${status.version}`);
      } catch (err) {
        log.add('converged', `not every proxy ACKed ${status.version}; watching anyway (${(err as Error).message})`);
      }
      const since = Date.now();
      const before = new Map(this.services.map((s) => [s.hostname, host.dashboard.inboundSince(s, appliedAt - request.windowMs, appliedAt)]));
      const endAt = since + request.windowMs;
      let round = host.dashboard.lastRoundAt;
      let judged = false;
      for (;;) {
        await nextRound(host.dashboard, round, host.dashboard.collector.intervalMs * 3 + 2000, this.stop.signal);
        if (this.stop.signal.aborted) return this.end('unjudged', 'the control plane stopped');
        round = host.dashboard.lastRoundAt;
        const now = Date.now();
        for (const s of this.services) {
          const was = before.get(s.hostname)!;
          const n = host.dashboard.inboundSince(s, since, now);
          if (n.requests < request.minRequests) continue;
          judged = true;
          let why: string | undefined;
          if (n.errorRate !== null && n.errorRate > request.maxErrorRate && n.errorRate > (was.errorRate ?? 0)) {
            why = `error rate of ${s.name} ${formatPercent(n.errorRate)} > ${formatPercent(request.maxErrorRate)} (was ${formatPercent(was.errorRate ?? 0)})`;
          } else if (n.p99 !== null && n.p99 > request.maxP99Ms && n.p99 > (was.p99 ?? 0)) {
            why = `p99 of ${s.name} ${formatMs(n.p99)} > ${formatMs(request.maxP99Ms)} (was ${formatMs(was.p99)})`;
          }
          log.add('observation', `${s.name}: ${n.requests} requests, error rate ${formatPercent(n.errorRate)} (before ${formatPercent(was.errorRate)}), p99 ${formatMs(n.p99)} (before ${formatMs(was.p99)})`);
          if (why) return await this.rollBack(why);
        }
        if (now >= endAt) {
          return judged
            ? this.end('healthy', `no regression within ${request.windowMs / 1000}s: ${status.version} stays`)
            : this.end('unjudged', `fewer than ${request.minRequests} requests to ${status.services.join(', ') || 'the changed services'} within ${request.windowMs / 1000}s: nothing to judge, ${status.version} stays`);
        }
      }
    } catch (err) {
      this.host.logger.error('apply_watch_failed', { version: status.version, error: err });
      this.end('failed', (err as Error).message);
    }
  }

  private end(state: ApplyWatchStatus['state'], reason: string): void {
    this.status.state = state;
    this.status.reason = reason;
    this.status.endedAt = new Date().toISOString();
    this.log.add(state === 'rolled-back' ? 'rolled-back' : state === 'failed' ? 'failed' : 'completed', reason);
  }

  /** Restores the resources the change touched to the version before it; later changes to others stay. */
  private async rollBack(why: string): Promise<void> {
    const { host, status } = this;
    const previous = host.history.resourcesOf(this.previousId);
    const changed = new Set(this.changedKeys);
    const resources: ConfigResource[] = [...host.current()!.resources.values()].filter((r) => !changed.has(resourceKey(r)));
    for (const key of changed) {
      const before = previous.get(key);
      if (before) resources.push(before);
    }
    const message = `weft apply --watch: ${status.version} rolled back: ${why} within ${this.request.windowMs / 1000}s`;
    const outcome = await host.restore({ resources, operation: 'rollback', message });
    status.rollbackVersion = outcome.results.length > 0 ? outcome.version : undefined;
    host.logger.warn('apply_rolled_back', { version: status.version, rollbackVersion: status.rollbackVersion, reason: why });
    this.end('rolled-back', `${message}; ${status.rollbackVersion ?? 'the previous config'} is serving`);
  }
}

/** Health-gated applies in progress and recently finished. */
export class ApplyWatches {
  private readonly watches: ApplyWatch[] = [];

  constructor(private readonly host: RolloutHost) {}

  /** Starts watching the change that made `version` (ConfigRequestError when there is nothing to watch). */
  watch(version: string | undefined, previousVersion: string | undefined, request: ApplyWatchRequest): ApplyWatchStatus {
    const { host } = this;
    if (!version || !previousVersion || version === previousVersion) throw new ConfigRequestError(409, 'the apply changed nothing, so there is nothing to watch');
    const id = host.history.resolve(version).id;
    const previousId = host.history.resolve(previousVersion).id;
    const [beforeHashes, afterHashes] = [host.history.resolve(previousId).resources, host.history.resolve(id).resources];
    const changedKeys = [...new Set([...beforeHashes.keys(), ...afterHashes.keys()])].filter((k) => beforeHashes.get(k) !== afterHashes.get(k));
    const before = host.history.resourcesOf(previousId);
    const after = host.history.resourcesOf(id);
    const changed = changedKeys.map((k) => after.get(k) ?? before.get(k)!);
    const settings: Required<ApplyWatchRequest> = {
      windowMs: request.windowMs,
      maxErrorRate: request.maxErrorRate ?? ROLLOUT_DEFAULTS.maxErrorRate,
      maxP99Ms: request.maxP99Ms ?? ROLLOUT_DEFAULTS.maxP99Ms,
      minRequests: request.minRequests ?? ROLLOUT_DEFAULTS.minRequests,
    };
    if (!(settings.windowMs > 0)) throw new ConfigRequestError(400, 'the watch window must be a positive duration');
    const w = new ApplyWatch(host, id, previousId, affectedServices(host.current()!, changed), changedKeys, settings);
    this.watches.push(w);
    const finished = this.watches.filter((x) => x.status.state !== 'watching');
    for (const old of finished.slice(0, Math.max(0, finished.length - KEPT))) this.watches.splice(this.watches.indexOf(old), 1);
    w.done = w.run();
    return w.status;
  }

  get(id: string): ApplyWatchStatus | undefined {
    return this.find(id)?.status;
  }

  list(): ApplyWatchStatus[] {
    return [...this.watches].reverse().map((w) => w.status);
  }

  waitForEvents(id: string, seq: number, timeoutMs: number): Promise<void> {
    const w = this.find(id);
    if (!w || w.status.state !== 'watching') return Promise.resolve();
    return w.log.waitAfter(seq, timeoutMs);
  }

  async close(): Promise<void> {
    for (const w of this.watches) w.stop.abort();
    await Promise.all(this.watches.map((w) => w.done.catch(() => undefined)));
  }

  private find(id: string): ApplyWatch | undefined {
    const ref = id.startsWith('v') ? id : `v${id}`;
    for (let i = this.watches.length - 1; i >= 0; i--) if (this.watches[i].status.id === ref) return this.watches[i];
    return undefined;
  }
}
