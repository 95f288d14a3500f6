// Envoy's consecutive-error outlier detection: a host reaching consecutive_5xx,
// consecutive_gateway_failure or consecutive_local_origin_failure is ejected for
// base_ejection_time x (number of ejections), within max_ejection_percent of the cluster.
import type { OutlierDetectionSettings } from '../config/model';
import type { Host } from './host';

/** How a request ended, as outlier detection classifies it. */
export type OutlierResult =
  | { kind: 'http'; status: number }
  /** Connect failure, timeout or reset: the proxy saw the failure itself ("local origin"). */
  | { kind: 'local-origin-failure' }
  | { kind: 'local-origin-success' };

export interface OutlierCallbacks {
  hosts(): readonly Host[];
  /** The usable host set changed (an ejection or return). */
  onChange(): void;
  onEject(host: Host): void;
}

export class OutlierDetector {
  private timer: NodeJS.Timeout | null = null;
  ejectionsTotal = 0;

  constructor(
    private readonly settings: OutlierDetectionSettings,
    private readonly callbacks: OutlierCallbacks,
    private readonly random: () => number = Math.random,
  ) {
    this.timer = setInterval(() => this.onInterval(), Math.max(10, settings.intervalMs));
    this.timer.unref();
  }

  record(host: Host, result: OutlierResult): void {
    const s = this.settings;
    if (result.kind === 'local-origin-success') {
      host.consecutiveLocalOriginFailure = 0;
      return;
    }
    if (result.kind === 'local-origin-failure') {
      if (s.splitExternalLocalOriginErrors) {
        host.consecutiveLocalOriginFailure++;
        if (host.consecutiveLocalOriginFailure >= s.consecutiveLocalOriginFailure) {
          host.consecutiveLocalOriginFailure = 0;
          this.maybeEject(host, s.enforcingLocalOriginFailure);
        }
        return;
      }
      // Not split: local failures count as a 503 (Envoy maps them to gateway errors).
      this.recordStatus(host, 503);
      return;
    }
    this.recordStatus(host, result.status);
  }

  private recordStatus(host: Host, status: number): void {
    const s = this.settings;
    if (status < 500) {
      host.consecutive5xx = 0;
      host.consecutiveGatewayFailure = 0;
      return;
    }
    host.consecutive5xx++;
    const gateway = status === 502 || status === 503 || status === 504;
    if (gateway) host.consecutiveGatewayFailure++;
    else host.consecutiveGatewayFailure = 0;
    if (gateway && host.consecutiveGatewayFailure >= s.consecutiveGatewayFailure && s.enforcingGatewayFailure > 0) {
      host.consecutiveGatewayFailure = 0;
      if (this.maybeEject(host, s.enforcingGatewayFailure)) {
        host.consecutive5xx = 0;
        return;
      }
    }
    if (host.consecutive5xx >= s.consecutive5xx) {
      host.consecutive5xx = 0;
      this.maybeEject(host, s.enforcing5xx);
    }
  }

  private maybeEject(host: Host, enforcing: number): boolean {
    const now = Date.now();
    if (host.isEjected(now)) return false;
    if (enforcing < 1 && this.random() >= enforcing) return false;
    const hosts = this.callbacks.hosts();
    const ejected = hosts.filter((h) => h.isEjected(now)).length;
    if ((100 * ejected) / Math.max(1, hosts.length) >= this.settings.maxEjectionPercent) return false;
    host.ejections++;
    const duration = Math.min(this.settings.baseEjectionTimeMs * host.ejections, Math.max(this.settings.maxEjectionTimeMs, this.settings.baseEjectionTimeMs));
    host.ejectedUntil = now + duration;
    this.ejectionsTotal++;
    this.callbacks.onEject(host);
    this.callbacks.onChange();
    return true;
  }

  /** Returns hosts whose ejection ended; lowers the multiplier of hosts that stayed healthy. */
  private onInterval(): void {
    const now = Date.now();
    let changed = false;
    for (const host of this.callbacks.hosts()) {
      if (host.ejectedUntil !== 0 && host.ejectedUntil <= now) {
        host.ejectedUntil = 0;
        changed = true;
      } else if (host.ejectedUntil === 0 && host.ejections > 0) {
        host.ejections--;
      }
    }
    if (changed) this.callbacks.onChange();
  }

  ejectedCount(): number {
    const now = Date.now();
    return this.callbacks.hosts().filter((h) => h.isEjected(now)).length;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
