// Envoy's outlier detection for one cluster. A host is ejected at once when it reaches
// consecutive_5xx, consecutive_gateway_failure or (with split_external_local_origin_errors)
// consecutive_local_origin_failure; at each interval, hosts whose success rate of the last interval
// falls below mean - stdev_factor x stdev (success-rate ejection) or whose failure share reaches
// failure_percentage_threshold are ejected too. An ejection lasts base_ejection_time x a multiplier
// that grows with each ejection (capped at max_ejection_time, plus jitter) and shrinks at each
// interval the host stays healthy; hosts return on the first interval after their time is up.
// Ejections stop at max_ejection_percent of the cluster's hosts. Without split_external_local_origin
// errors, local failures count as HTTP codes: connect failure or reset 503, timeout 504.
import type { OutlierDetectionSettings } from '../config/model';
import type { ClusterStats } from './cluster-resources';
import type { Host } from './host';

/** How a request ended, as outlier detection classifies it. */
export type OutlierResult =
  | { kind: 'http'; status: number }
  /** Connect failure or reset: the proxy saw the failure itself ("local origin"). */
  | { kind: 'local-origin-failure' }
  /** The upstream did not answer in time (Envoy: LOCAL_ORIGIN_TIMEOUT). */
  | { kind: 'timeout' }
  /** A connection to the host was established (Envoy: LOCAL_ORIGIN_CONNECT_SUCCESS). */
  | { kind: 'local-origin-success' };

type EjectionType =
  | 'consecutive_5xx'
  | 'consecutive_gateway_failure'
  | 'consecutive_local_origin_failure'
  | 'success_rate'
  | 'local_origin_success_rate'
  | 'failure_percentage'
  | 'failure_percentage_local_origin';

export interface OutlierCallbacks {
  hosts(): readonly Host[];
  /** The usable host set changed (an ejection or a return). */
  onChange(): void;
  readonly stats: ClusterStats;
}

export class OutlierDetector {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly settings: OutlierDetectionSettings,
    private readonly callbacks: OutlierCallbacks,
    private readonly random: () => number = Math.random,
    private readonly now: () => number = Date.now,
    /** Off in tests that drive `onInterval` themselves. */
    runTimer = true,
  ) {
    if (runTimer) {
      this.timer = setInterval(() => this.onInterval(), Math.max(10, settings.intervalMs));
      this.timer.unref();
    }
  }

  record(host: Host, result: OutlierResult): void {
    const o = host.outlier;
    if (this.settings.splitExternalLocalOriginErrors) {
      switch (result.kind) {
        case 'http':
          // A response means the connection worked: the local-origin streak is over.
          this.localResult(host, true);
          this.httpCode(host, result.status);
          return;
        case 'local-origin-success':
          this.localResult(host, true);
          return;
        default:
          this.localResult(host, false);
          return;
      }
    }
    switch (result.kind) {
      case 'http':
        this.httpCode(host, result.status);
        return;
      case 'local-origin-failure':
        this.httpCode(host, 503);
        return;
      case 'timeout':
        this.httpCode(host, 504);
        return;
      case 'local-origin-success':
        // Envoy maps it to no code: the HTTP response that follows is what counts.
        void o;
    }
  }

  private localResult(host: Host, ok: boolean): void {
    const o = host.outlier;
    o.localTotal++;
    if (ok) {
      o.localSuccess++;
      o.consecutiveLocalOriginFailure = 0;
      return;
    }
    if (++o.consecutiveLocalOriginFailure === this.settings.consecutiveLocalOriginFailure) {
      this.consecutiveError(host, 'consecutive_local_origin_failure');
    }
  }

  /** Envoy's putHttpResponseCode: 5xx streaks; 502/503/504 also a gateway streak. */
  private httpCode(host: Host, status: number): void {
    const o = host.outlier;
    const s = this.settings;
    o.externalTotal++;
    if (status < 500) {
      o.externalSuccess++;
      o.consecutive5xx = 0;
      o.consecutiveGatewayFailure = 0;
      return;
    }
    if (status === 502 || status === 503 || status === 504) {
      if (++o.consecutiveGatewayFailure === s.consecutiveGatewayFailure) this.consecutiveError(host, 'consecutive_gateway_failure');
    } else {
      o.consecutiveGatewayFailure = 0;
    }
    if (++o.consecutive5xx === s.consecutive5xx) this.consecutiveError(host, 'consecutive_5xx');
  }

  private consecutiveError(host: Host, type: EjectionType): void {
    if (host.outlier.ejected) return;
    this.callbacks.stats[`outlier_detection.ejections_detected_${type}`]++;
    if (type === 'consecutive_5xx') this.callbacks.stats['outlier_detection.ejections_consecutive_5xx']++;
    this.eject(host, type);
    // Reset so a new streak is needed, whether or not the host was ejected.
    const o = host.outlier;
    if (type === 'consecutive_5xx') o.consecutive5xx = 0;
    else if (type === 'consecutive_gateway_failure') o.consecutiveGatewayFailure = 0;
    else o.consecutiveLocalOriginFailure = 0;
  }

  private enforcing(type: EjectionType): number {
    const s = this.settings;
    switch (type) {
      case 'consecutive_5xx':
        return s.enforcing5xx;
      case 'consecutive_gateway_failure':
        return s.enforcingGatewayFailure;
      case 'consecutive_local_origin_failure':
        return s.enforcingLocalOriginFailure;
      case 'success_rate':
        return s.enforcingSuccessRate;
      case 'local_origin_success_rate':
        return s.enforcingLocalOriginSuccessRate;
      case 'failure_percentage':
        return s.enforcingFailurePercentage;
      case 'failure_percentage_local_origin':
        return s.enforcingFailurePercentageLocalOrigin;
    }
  }

  /** Envoy's ejectHost: within max_ejection_percent (counting this host), then by enforcement. */
  private eject(host: Host, type: EjectionType): boolean {
    const s = this.settings;
    const stats = this.callbacks.stats;
    const hosts = this.callbacks.hosts();
    const active = this.ejectedCount();
    const share = (100 * (active + 1)) / Math.max(1, hosts.length);
    if (!(share <= s.maxEjectionPercent || (s.alwaysEjectOneHost && active === 0))) {
      stats['outlier_detection.ejections_overflow']++;
      return false;
    }
    // Envoy's deprecated total counts only these two kinds.
    if (type === 'consecutive_5xx' || type === 'success_rate') stats['outlier_detection.ejections_total']++;
    const enforcing = this.enforcing(type);
    if (enforcing <= 0 || (enforcing < 1 && this.random() >= enforcing)) return false;
    const o = host.outlier;
    const now = this.now();
    o.ejected = true;
    o.ejections++;
    o.lastEjectionTime = now;
    o.jitterMs = s.maxEjectionTimeJitterMs > 0 ? Math.floor(this.random() * (s.maxEjectionTimeJitterMs + 1)) : 0;
    // Envoy lets the multiplier reach one step past max_ejection_time, so a host that keeps failing
    // needs that many healthy intervals more before its ejections shorten.
    if (o.ejectTimeBackoff * s.baseEjectionTimeMs < s.maxEjectionTimeMs + s.baseEjectionTimeMs) o.ejectTimeBackoff++;
    stats['outlier_detection.ejections_enforced_total']++;
    stats[`outlier_detection.ejections_enforced_${type}`]++;
    this.callbacks.onChange();
    return true;
  }

  /** How long `host`'s current ejection lasts. */
  ejectionDurationMs(host: Host): number {
    const s = this.settings;
    const o = host.outlier;
    return Math.min(s.baseEjectionTimeMs * Math.max(1, o.ejectTimeBackoff), s.maxEjectionTimeMs) + o.jitterMs;
  }

  /** The interval timer: returns hosts whose time is up, then success-rate and failure-percentage ejections. */
  onInterval(): void {
    const now = this.now();
    let changed = false;
    const hosts = this.callbacks.hosts();
    for (const host of hosts) {
      const o = host.outlier;
      if (o.ejected && now - o.lastEjectionTime >= this.ejectionDurationMs(host)) {
        o.ejected = false;
        o.lastUnejectionTime = now;
        // Envoy resets the streaks so a host just back is not ejected again on a few errors.
        o.consecutive5xx = 0;
        o.consecutiveGatewayFailure = 0;
        o.consecutiveLocalOriginFailure = 0;
        changed = true;
      }
      // Close this interval's success-rate bucket.
      o.externalSuccessRate = -1;
      o.localSuccessRate = -1;
    }
    if (changed) this.callbacks.onChange();
    const buckets = hosts.map((h) => {
      const o = h.outlier;
      const b = { host: h, externalTotal: o.externalTotal, externalSuccess: o.externalSuccess, localTotal: o.localTotal, localSuccess: o.localSuccess };
      o.externalTotal = o.externalSuccess = o.localTotal = o.localSuccess = 0;
      return b;
    });
    this.rateEjections(
      buckets.map((b) => ({ host: b.host, total: b.externalTotal, success: b.externalSuccess })),
      'success_rate',
      'failure_percentage',
      (h, rate) => (h.outlier.externalSuccessRate = rate),
    );
    if (this.settings.splitExternalLocalOriginErrors) {
      this.rateEjections(
        buckets.map((b) => ({ host: b.host, total: b.localTotal, success: b.localSuccess })),
        'local_origin_success_rate',
        'failure_percentage_local_origin',
        (h, rate) => (h.outlier.localSuccessRate = rate),
      );
    }
    // A host healthy for a whole interval since it came back: its next ejection is shorter.
    for (const host of hosts) {
      const o = host.outlier;
      if (!o.ejected && o.lastUnejectionTime > 0 && now - o.lastUnejectionTime >= this.settings.intervalMs && o.ejectTimeBackoff > 0) o.ejectTimeBackoff--;
    }
  }

  /** Envoy's processSuccessRateEjections for one origin (external or local). */
  private rateEjections(
    samples: readonly { host: Host; total: number; success: number }[],
    srType: EjectionType,
    fpType: EjectionType,
    publish: (host: Host, rate: number) => void,
  ): void {
    const s = this.settings;
    const stats = this.callbacks.stats;
    if (samples.length < s.successRateMinimumHosts && samples.length < s.failurePercentageMinimumHosts) return;
    const live = samples.filter((x) => !x.host.outlier.ejected && x.total > 0).map((x) => ({ ...x, rate: (100 * x.success) / x.total }));
    for (const x of live) if (x.total >= Math.min(s.successRateRequestVolume, s.failurePercentageRequestVolume)) publish(x.host, x.rate);
    const forRate = live.filter((x) => x.total >= s.successRateRequestVolume);
    const forFailure = live.filter((x) => x.total >= s.failurePercentageRequestVolume);
    if (forRate.length > 0 && forRate.length >= s.successRateMinimumHosts) {
      const mean = forRate.reduce((a, x) => a + x.rate, 0) / forRate.length;
      const stdev = Math.sqrt(forRate.reduce((a, x) => a + (x.rate - mean) ** 2, 0) / forRate.length);
      const threshold = mean - s.successRateStdevFactor * stdev;
      for (const x of forRate) {
        if (x.rate < threshold && !x.host.outlier.ejected) {
          stats[`outlier_detection.ejections_detected_${srType}`]++;
          this.eject(x.host, srType);
        }
      }
    }
    if (forFailure.length > 0 && forFailure.length >= s.failurePercentageMinimumHosts) {
      for (const x of forFailure) {
        if (100 - x.rate >= s.failurePercentageThreshold && !x.host.outlier.ejected) {
          stats[`outlier_detection.ejections_detected_${fpType}`]++;
          this.eject(x.host, fpType);
        }
      }
    }
  }

  ejectedCount(): number {
    let n = 0;
    for (const h of this.callbacks.hosts()) if (h.outlier.ejected) n++;
    return n;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
