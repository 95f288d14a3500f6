// Whether each connected proxy runs the config it was sent: the dashboard's and
// `weft proxy-status`'s red flags. A response awaiting its ACK is normal for a moment after a push;
// only one left unanswered for longer than `staleAfterMs` makes the proxy STALE.
import type { ProxySyncStatus } from '../xds/server/ads-connection';

/**
 * SYNCED: ACKed everything it was sent. SYNCING: a push awaits its ACK (recent). STALE: a push
 * has waited longer than the threshold. NACK: the proxy rejected its latest config (it keeps
 * serving the previous one). NOT_SENT: connected, nothing sent yet.
 */
export type ProxyHealthState = 'SYNCED' | 'SYNCING' | 'STALE' | 'NACK' | 'NOT_SENT';

export interface ProxyHealth {
  state: ProxyHealthState;
  /** Seconds the oldest unanswered push has waited (SYNCING/STALE). */
  waitingSeconds?: number;
  /** One line per NACKed type: `LDS v7: <the proxy's error>`. */
  nacks: string[];
  /** Whether the dashboard and the CLI should show this proxy in red. */
  unhealthy: boolean;
}

/** Istio's proxy-status has no threshold of its own; long enough to cover a push to many proxies. */
export const DEFAULT_STALE_AFTER_MS = 15_000;

export function proxyHealth(status: Pick<ProxySyncStatus, 'types'>, now: number, staleAfterMs = DEFAULT_STALE_AFTER_MS): ProxyHealth {
  const nacks = status.types
    .filter((t) => t.state === 'NACK')
    .map((t) => `${t.type} ${t.lastNack?.version ?? t.versionSent ?? ''}: ${t.lastNack?.message ?? 'rejected'}`);
  if (nacks.length > 0) return { state: 'NACK', nacks, unhealthy: true };
  const waiting = status.types
    .filter((t) => t.state === 'STALE')
    .map((t) => (t.sentAt ? Math.max(0, now - Date.parse(t.sentAt)) : 0));
  if (waiting.length > 0) {
    const oldest = Math.max(...waiting);
    const stale = oldest > staleAfterMs;
    return { state: stale ? 'STALE' : 'SYNCING', waitingSeconds: Math.round(oldest / 100) / 10, nacks, unhealthy: stale };
  }
  if (status.types.length === 0 || status.types.every((t) => t.state === 'NOT_SENT')) return { state: 'NOT_SENT', nacks, unhealthy: false };
  return { state: 'SYNCED', nacks, unhealthy: false };
}
