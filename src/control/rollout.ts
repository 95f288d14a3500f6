// Progressive delivery (`weft rollout`), run by the control plane so it survives the CLI going
// away: each step writes a VirtualService version (source `rollout`) shifting weight to the new
// subset, waits for the proxies to ACK it and then for the interval, and judges the new subset's
// error rate and p99 from the proxies' metrics (the dashboard collector's numbers). A crossed
// threshold, an abort, or a step that never sees enough traffic restores the starting
// VirtualService (ConfigWriter.restore, operation `rollout`); success records a final version.
import { resourceKey, type ConfigResource } from '../config/resources';
import type { DashboardService } from '../dashboard/dashboard-service';
import type { ServingWorkloads } from '../dashboard/service-signals';
import type { Logger } from '../log/logger';
import type { MeshSnapshot } from '../model/snapshot';
import { toFqdn } from '../registry/hosts';
import type { ConfigHistory } from './config-history';
import { ConfigRequestError, type ApplyOutcome, type ApplyRequest, type RestoreOutcome, type RestoreRequest } from './config-writer';
import {
  formatMs,
  formatPercent,
  ROLLOUT_DEFAULTS,
  validSteps,
  type RolloutEvent,
  type RolloutObservation,
  type RolloutRequest,
  type RolloutStatus,
  type RolloutWeight,
} from './rollout-contract';
import { currentSources, findServiceVirtualService, shiftedRuleIndex, shiftedVirtualService, stepWeights, type SourceDestination } from './rollout-route';

/** What rollouts need from the control plane (ControlPlane satisfies it). */
export interface RolloutHost {
  current(): MeshSnapshot | undefined;
  apply(request: ApplyRequest): Promise<ApplyOutcome>;
  restore(request: RestoreRequest): Promise<RestoreOutcome>;
  readonly history: ConfigHistory;
  readonly ads: { waitForConvergence(options: { version?: string; timeoutMs?: number }): Promise<unknown> };
  readonly dashboard: DashboardService;
  readonly logger: Logger;
}

/** How long a step waits for every proxy to ACK its version before judging anyway. */
const CONVERGE_TIMEOUT_MS = 30_000;
/** Finished rollouts kept for `weft rollout status`. */
const KEPT_FINISHED = 20;

/** A progress log: numbered events, and waiters woken by each new one (the API's long poll). */
export class EventLog {
  readonly events: RolloutEvent[] = [];
  private waiters: (() => void)[] = [];

  add(kind: RolloutEvent['kind'], text: string): RolloutEvent {
    const event = { seq: this.events.length + 1, at: new Date().toISOString(), kind, text };
    this.events.push(event);
    for (const wake of this.waiters.splice(0)) wake();
    return event;
  }

  /** Resolves when there is an event after `seq`, or after `timeoutMs`. */
  waitAfter(seq: number, timeoutMs: number): Promise<void> {
    if (this.events.length > seq) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      timer.unref();
      const waiters = this.waiters;
      function done() {
        clearTimeout(timer);
        const i = waiters.indexOf(done);
        if (i >= 0) waiters.splice(i, 1);
        resolve();
      }
      waiters.push(done);
    });
  }
}

/** Resolves after `ms`, or as soon as `cancelled` is signalled. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

/** Waits for the next collector round after `after` (or `maxMs`), so each observation has new data. */
export async function nextRound(dashboard: DashboardService, after: number | undefined, maxMs: number, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (!signal.aborted && Date.now() < deadline && (dashboard.lastRoundAt ?? 0) <= (after ?? 0)) await pause(Math.min(100, deadline - Date.now()), signal);
}

/** The workloads a DestinationRule subset selects among the service's endpoints. */
export function subsetWorkloads(snapshot: MeshSnapshot, hostname: string, labels: Record<string, string>): ServingWorkloads {
  const workloads = new Set<string>();
  for (const e of snapshot.registry.endpoints.get(hostname) ?? []) {
    if (e.workload && Object.entries(labels).every(([k, v]) => e.labels[k] === v)) workloads.add(e.workload);
  }
  return { workloads, ...(labels.version ? { version: labels.version } : {}) };
}

/** The subsets of the DestinationRules for `hostname` (name -> labels). */
function subsetsOf(snapshot: MeshSnapshot, hostname: string): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  const suffix = snapshot.meshConfig.domainSuffix;
  for (const dr of snapshot.byKind.DestinationRule) {
    if (!dr.spec.host || toFqdn(dr.spec.host, dr.metadata.namespace, suffix) !== hostname) continue;
    for (const s of dr.spec.subsets ?? []) if (!out.has(s.name)) out.set(s.name, s.labels ?? {});
  }
  return out;
}

export const weightsText = (weights: readonly RolloutWeight[]) => weights.map((w) => `${w.subset || '(all)'} ${w.weight}`).join(' / ');

interface Settings {
  steps: number[];
  intervalMs: number;
  maxErrorRate: number;
  maxP99Ms: number;
  minRequests: number;
  noTrafficTimeoutMs: number;
}

/** One rollout: its status (what the API returns) and the loop that drives it. */
class Rollout {
  readonly log = new EventLog();
  readonly stop = new AbortController();
  readonly status: RolloutStatus;
  /** The starting VirtualService (undefined: the rollout created it), restored on rollback. */
  private readonly startVs: ConfigResource | undefined;
  private abortReason?: string;
  /** The control plane is stopping: end without writing anything. */
  private halted = false;
  done: Promise<void> = Promise.resolve();

  constructor(
    private readonly host: RolloutHost,
    readonly ref: { namespace: string; name: string; hostname: string },
    private readonly vsKey: string,
    startVs: ConfigResource | undefined,
    private readonly sources: SourceDestination[],
    readonly to: string,
    private readonly serving: ServingWorkloads,
    private readonly settings: Settings,
    startVersion: string,
  ) {
    this.startVs = startVs;
    this.status = {
      id: `${ref.namespace}/${ref.name}@${startVersion}`,
      namespace: ref.namespace,
      service: ref.name,
      virtualService: vsKey.split('/').slice(1).join('/'),
      to,
      from: sources.map((s) => s.subset || '(all)'),
      steps: settings.steps,
      stepIndex: -1,
      weights: [...sources.map((s) => ({ subset: s.subset, weight: s.weight })), ...(sources.some((s) => s.subset === to) ? [] : [{ subset: to, weight: 0 }])],
      thresholds: { maxErrorRate: settings.maxErrorRate, maxP99Ms: settings.maxP99Ms, minRequests: settings.minRequests },
      intervalSeconds: settings.intervalMs / 1000,
      state: 'running',
      startVersion,
      versions: [],
      startedAt: new Date().toISOString(),
      events: this.log.events,
    };
  }

  get name(): string {
    return `${this.ref.name} to ${this.to}`;
  }

  halt(): void {
    this.halted = true;
    this.stop.abort();
  }

  abort(reason: string): void {
    this.abortReason ??= reason;
    this.stop.abort();
  }

  async run(): Promise<void> {
    const { status, settings, log } = this;
    log.add('started', `rollout of ${this.name}: steps ${settings.steps.join(',')}%, ${settings.intervalMs / 1000}s each, max error rate ${formatPercent(settings.maxErrorRate)}, max p99 ${formatMs(settings.maxP99Ms)} (from ${status.startVersion})`);
    try {
      for (let i = 0; i < settings.steps.length; i++) {
        if (this.stop.signal.aborted) return await this.rollBack('aborted', `rollout of ${this.name} aborted at step ${status.steps[Math.max(i - 1, 0)]}%${this.abortReason ? `: ${this.abortReason}` : ''}`);
        const percent = settings.steps[i];
        const weights = stepWeights(this.sources, this.to, percent);
        const version = await this.write(weights, false, `rollout of ${this.name}: step ${percent}%`);
        status.stepIndex = i;
        status.weights = weights;
        status.observed = undefined;
        log.add('step', `step ${percent}%: ${weightsText(weights)} (${version ?? 'unchanged'})`);
        await this.converge(version);
        const verdict = await this.observe(percent);
        if (verdict !== 'passed') return await this.rollBack(this.stop.signal.aborted ? 'aborted' : 'rolled-back', verdict);
      }
      const version = await this.write(status.weights, true, `rollout of ${this.name} complete`);
      status.state = 'completed';
      status.reason = `all ${this.to}: ${version ?? 'unchanged'}`;
      status.endedAt = new Date().toISOString();
      log.add('completed', `rollout of ${this.name} complete: ${version ?? 'unchanged'} sends all traffic to ${this.to}`);
      this.host.logger.info('rollout_completed', { rollout: status.id, version });
    } catch (err) {
      const message = err instanceof ConfigRequestError ? err.message : (err as Error).message;
      this.host.logger.error('rollout_failed', { rollout: status.id, error: err });
      try {
        await this.rollBack('failed', `rollout of ${this.name} failed: ${message}`);
      } catch (restoreErr) {
        status.state = 'failed';
        status.reason = `${message}; restoring the starting VirtualService also failed: ${(restoreErr as Error).message}`;
        status.endedAt = new Date().toISOString();
        log.add('failed', status.reason);
      }
    }
  }

  /** Writes the step's VirtualService (built on the one serving now, so other edits are kept). */
  private async write(weights: RolloutWeight[], final: boolean, message: string): Promise<string | undefined> {
    const snapshot = this.host.current()!;
    const current = snapshot.resources.get(this.vsKey) as ConfigResource<'VirtualService'> | undefined;
    const manifest = shiftedVirtualService({ current, service: this.ref, domainSuffix: snapshot.meshConfig.domainSuffix, sources: this.sources, to: this.to, weights, final });
    const outcome = await this.host.apply({ sources: [{ name: `rollout ${this.name}`, content: JSON.stringify(manifest) }], operation: 'rollout', message });
    const changed = outcome.results.some((r) => r.action !== 'unchanged');
    if (changed && outcome.version) this.status.versions.push(outcome.version);
    return changed ? outcome.version : undefined;
  }

  private async converge(version: string | undefined): Promise<void> {
    if (!version) return;
    try {
      const aborted = new Promise<void>((resolve) => this.stop.signal.addEventListener('abort', () => resolve(), { once: true }));
      await Promise.race([this.host.ads.waitForConvergence({ version, timeoutMs: CONVERGE_TIMEOUT_MS }), aborted]);
      if (this.stop.signal.aborted) return;
      this.log.add('converged', `proxies ACKed ${version}`);
    } catch (err) {
      this.log.add('converged', `not every proxy ACKed ${version} within ${CONVERGE_TIMEOUT_MS / 1000}s; watching anyway (${(err as Error).message})`);
    }
  }

  /** Watches the new subset for the interval: 'passed', or why the step failed. */
  private async observe(percent: number): Promise<'passed' | string> {
    const { settings, host, log, status } = this;
    const signal = this.stop.signal;
    const since = Date.now();
    const judgeAt = since + settings.intervalMs;
    const giveUpAt = since + Math.max(settings.intervalMs, settings.noTrafficTimeoutMs);
    let round = host.dashboard.lastRoundAt;
    let saidNoTraffic = false;
    const roundMs = host.dashboard.collector.intervalMs;
    for (;;) {
      await nextRound(host.dashboard, round, roundMs * 3 + 2000, signal);
      if (signal.aborted) return `rollout of ${this.name} aborted at step ${percent}%${this.abortReason ? `: ${this.abortReason}` : ''}`;
      round = host.dashboard.lastRoundAt;
      const now = Date.now();
      const n = host.dashboard.inboundSince(this.ref, since, now, this.serving);
      if (n.seconds === 0 && now < judgeAt) continue; // no round of this step yet
      const observed: RolloutObservation = { requests: n.requests, errorRate: n.errorRate, p99: n.p99, seconds: n.seconds };
      status.observed = observed;
      const enough = n.requests >= settings.minRequests;
      log.add(
        'observation',
        `step ${percent}%: ${this.to} served ${n.requests} requests in ${Math.round(n.seconds * 10) / 10}s, error rate ${formatPercent(n.errorRate)} (max ${formatPercent(settings.maxErrorRate)}), p99 ${formatMs(n.p99)} (max ${formatMs(settings.maxP99Ms)})`,
      );
      if (enough && n.errorRate !== null && n.errorRate > settings.maxErrorRate) {
        return `rollout of ${this.name} rolled back: error rate ${formatPercent(n.errorRate)} > ${formatPercent(settings.maxErrorRate)} at step ${percent}%`;
      }
      if (enough && n.p99 !== null && n.p99 > settings.maxP99Ms) {
        return `rollout of ${this.name} rolled back: p99 ${formatMs(n.p99)} > ${formatMs(settings.maxP99Ms)} at step ${percent}%`;
      }
      if (now < judgeAt) continue;
      if (enough) {
        log.add('passed', `step ${percent}% passed: error rate ${formatPercent(n.errorRate)}, p99 ${formatMs(n.p99)} over ${n.requests} requests`);
        return 'passed';
      }
      if (now >= giveUpAt) {
        return `rollout of ${this.name} rolled back: no traffic (${n.requests} < ${settings.minRequests} requests to ${this.to} in ${Math.round((now - since) / 1000)}s) at step ${percent}%`;
      }
      if (!saidNoTraffic) {
        saidNoTraffic = true;
        log.add('no-traffic', `step ${percent}%: no traffic yet (${n.requests} < ${settings.minRequests} requests to ${this.to}); waiting up to ${Math.round((giveUpAt - since) / 1000)}s`);
      }
    }
  }

  /**
   * Restores the VirtualService as it was when the rollout started (deleting it when the rollout
   * created it); every other resource stays as it is now, so changes made meanwhile are kept.
   */
  private async rollBack(state: 'rolled-back' | 'aborted' | 'failed', message: string): Promise<void> {
    if (this.halted) {
      this.status.state = 'failed';
      this.status.reason = `the control plane stopped during the rollout; ${this.status.versions.at(-1) ?? this.status.startVersion} is serving (hint: \`weft rollback ${this.status.startVersion}\` restores the start)`;
      this.status.endedAt = new Date().toISOString();
      this.log.add('failed', this.status.reason);
      return;
    }
    const snapshot = this.host.current()!;
    const resources = [...snapshot.resources.values()].filter((r) => resourceKey(r) !== this.vsKey);
    if (this.startVs) resources.push(this.startVs);
    const outcome = await this.host.restore({ resources, operation: 'rollout', message });
    const version = outcome.results.length > 0 ? outcome.version : undefined;
    if (version) this.status.versions.push(version);
    this.status.state = state;
    this.status.reason = message;
    this.status.weights = this.sources.map((s) => ({ subset: s.subset, weight: s.weight }));
    this.log.add(state === 'aborted' ? 'aborted' : state === 'failed' ? 'failed' : 'rolled-back', `${message}; ${version ?? 'the starting config'} serves ${weightsText(this.status.weights)}`);
    this.host.logger.warn('rollout_rolled_back', { rollout: this.status.id, state, reason: message, version });
    if (version) {
      try {
        await this.host.ads.waitForConvergence({ version, timeoutMs: CONVERGE_TIMEOUT_MS });
      } catch {
        // Reported by proxy-status; the rollout has ended either way.
      }
    }
    this.status.endedAt = new Date().toISOString();
  }
}

/** Starts, tracks and aborts rollouts; one running rollout per service. */
export class RolloutController {
  private readonly rollouts: Rollout[] = [];

  constructor(private readonly host: RolloutHost) {}

  /** Checks the request against the running config and starts the rollout (ConfigRequestError when it cannot). */
  start(request: RolloutRequest): RolloutStatus {
    const snapshot = this.host.current();
    if (!snapshot) throw new ConfigRequestError(503, 'the control plane has no config yet');
    const namespace = request.namespace || 'default';
    if (!request.service || !request.to) throw new ConfigRequestError(400, 'a rollout needs a service and a subset to move to', { hint: 'weft rollout SERVICE --to SUBSET' });
    const suffix = snapshot.meshConfig.domainSuffix;
    const hostname = toFqdn(request.service, namespace, suffix);
    const service = [...snapshot.registry.services.values()].find((s) => s.hostname === hostname);
    if (!service) throw new ConfigRequestError(404, `service "${request.service}" not found in namespace "${namespace}"`, { hint: 'list services with `weft get services -n NAMESPACE`' });
    const settings: Settings = {
      steps: request.steps ?? [...ROLLOUT_DEFAULTS.steps],
      intervalMs: request.intervalMs ?? ROLLOUT_DEFAULTS.intervalMs,
      maxErrorRate: request.maxErrorRate ?? ROLLOUT_DEFAULTS.maxErrorRate,
      maxP99Ms: request.maxP99Ms ?? ROLLOUT_DEFAULTS.maxP99Ms,
      minRequests: request.minRequests ?? ROLLOUT_DEFAULTS.minRequests,
      noTrafficTimeoutMs: 0,
    };
    settings.noTrafficTimeoutMs = request.noTrafficTimeoutMs ?? Math.max(5 * settings.intervalMs, 60_000);
    if (!validSteps(settings.steps)) throw new ConfigRequestError(400, `steps ${settings.steps.join(',')} are not increasing percentages ending at 100`, { hint: 'for example --steps 10,25,50,100' });
    if (!(settings.intervalMs > 0)) throw new ConfigRequestError(400, 'the interval must be positive');
    if (!(settings.maxErrorRate >= 0 && settings.maxErrorRate <= 1)) throw new ConfigRequestError(400, 'the maximum error rate must be between 0% and 100%');
    if (!(settings.maxP99Ms >= 0)) throw new ConfigRequestError(400, 'the maximum p99 must be a duration');
    if (!(Number.isInteger(settings.minRequests) && settings.minRequests >= 1)) throw new ConfigRequestError(400, 'the minimum number of requests must be a positive integer');
    const running = this.rollouts.find((r) => r.status.state === 'running' && r.ref.hostname === hostname);
    if (running) throw new ConfigRequestError(409, `a rollout of ${running.name} is running`, { hint: `follow it with \`weft rollout status ${request.service}\`, or stop it with \`weft rollout abort ${request.service}\`` });

    const subsets = subsetsOf(snapshot, hostname);
    const missing = [request.to, ...(request.from ? [request.from] : [])].filter((s) => !subsets.has(s));
    if (missing.length > 0) {
      throw new ConfigRequestError(400, `no DestinationRule for ${hostname} defines subset ${missing.map((s) => `"${s}"`).join(' or ')}`, {
        hint: `define it first (known subsets: ${[...subsets.keys()].join(', ') || 'none'})`,
      });
    }
    const vs = findServiceVirtualService(snapshot.byKind.VirtualService, hostname, namespace, suffix);
    const vsKey = vs ? resourceKey(vs) : `VirtualService/${namespace}/${request.service}`;
    let sources: SourceDestination[];
    if (request.from) {
      sources = [{ subset: request.from, weight: 100, destination: { host: request.service, subset: request.from } }];
    } else {
      const index = vs ? shiftedRuleIndex(vs.spec, vs.metadata.namespace, hostname, suffix) : -1;
      sources = currentSources(index >= 0 ? vs!.spec.http![index] : undefined).filter((s) => s.subset !== request.to && s.weight > 0);
      if (sources.length === 0) {
        if (index >= 0) throw new ConfigRequestError(409, `${request.service} already sends all traffic to ${request.to}`, { hint: 'name the subset to move from with --from' });
        sources = [{ subset: '', weight: 100, destination: { host: request.service } }];
      }
    }
    if (sources.some((s) => s.subset === request.to)) throw new ConfigRequestError(400, '--from and --to name the same subset');
    const start = this.host.history.latest();
    const rollout = new Rollout(
      this.host,
      { namespace, name: request.service, hostname },
      vsKey,
      vs ? snapshot.resources.get(vsKey) : undefined,
      sources,
      request.to,
      subsetWorkloads(snapshot, hostname, subsets.get(request.to)!),
      settings,
      start ? `v${start.id}` : snapshot.version,
    );
    this.rollouts.push(rollout);
    const finished = this.rollouts.filter((r) => r.status.state !== 'running');
    for (const old of finished.slice(0, Math.max(0, finished.length - KEPT_FINISHED))) this.rollouts.splice(this.rollouts.indexOf(old), 1);
    this.host.logger.info('rollout_started', { rollout: rollout.status.id, to: request.to, from: rollout.status.from, steps: settings.steps });
    rollout.done = rollout.run();
    return rollout.status;
  }

  /** Every rollout kept, newest first. */
  list(): RolloutStatus[] {
    return [...this.rollouts].reverse().map((r) => r.status);
  }

  /** The newest rollout of a service, if any. */
  find(namespace: string, service: string): RolloutStatus | undefined {
    return this.latest(namespace, service)?.status;
  }

  /** Resolves when the rollout has an event after `seq` (or after `timeoutMs`). */
  waitForEvents(namespace: string, service: string, seq: number, timeoutMs: number): Promise<void> {
    const r = this.latest(namespace, service);
    if (!r || r.status.state !== 'running') return Promise.resolve();
    return r.log.waitAfter(seq, timeoutMs);
  }

  /** Rolls a running rollout back to its start; resolves when the rollback is done. */
  async abort(namespace: string, service: string, reason?: string): Promise<RolloutStatus> {
    const r = this.latest(namespace, service);
    if (!r) throw new ConfigRequestError(404, `no rollout of ${service} in namespace ${namespace}`, { hint: 'list rollouts with `weft rollout status`' });
    if (r.status.state !== 'running') throw new ConfigRequestError(409, `the rollout of ${r.name} is not running (${r.status.state})`);
    r.abort(reason ?? 'by request');
    await r.done;
    return r.status;
  }

  /** Stops every running rollout where it is (the control plane is stopping): no further writes. */
  async close(): Promise<void> {
    for (const r of this.rollouts) if (r.status.state === 'running') r.halt();
    await Promise.all(this.rollouts.map((r) => r.done.catch(() => undefined)));
  }

  private latest(namespace: string, service: string): Rollout | undefined {
    for (let i = this.rollouts.length - 1; i >= 0; i--) {
      const r = this.rollouts[i];
      if (r.ref.namespace === namespace && r.ref.name === service) return r;
    }
    return undefined;
  }
}
