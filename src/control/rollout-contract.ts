// What the rollout API (/api/v1/rollouts, /api/v1/apply-watches) and its clients agree on: the
// request and status shapes, the defaults, and how thresholds are written ("1%", "500ms"). Free
// of the server's dependencies, so `weft rollout` loads only this.
import { parseDuration } from '../config/validate/formats';

/** Defaults of `weft rollout` (and of the API when a field is left out). */
export const ROLLOUT_DEFAULTS = {
  steps: [10, 25, 50, 100],
  intervalMs: 30_000,
  maxErrorRate: 0.01,
  maxP99Ms: 500,
  /** A step is judged only on at least this many requests served by the new subset. */
  minRequests: 20,
} as const;

/** POST /api/v1/rollouts */
export interface RolloutRequest {
  namespace?: string;
  service: string;
  /** The subset traffic moves to. */
  to: string;
  /** The subset traffic moves from; default: what the service's route sends to now. */
  from?: string;
  /** Percentages sent to `to`, increasing, ending at 100. */
  steps?: number[];
  intervalMs?: number;
  /** 0..1: the new subset's share of 5xx above which the rollout rolls back. */
  maxErrorRate?: number;
  maxP99Ms?: number;
  minRequests?: number;
  /** How long a step may wait for enough traffic before it rolls back. Default: 5 intervals, at least a minute. */
  noTrafficTimeoutMs?: number;
}

export type RolloutState = 'running' | 'completed' | 'rolled-back' | 'aborted' | 'failed';

/** What a rollout step observed from the proxies' metrics (the new subset only). */
export interface RolloutObservation {
  requests: number;
  /** 0..1, null without requests. */
  errorRate: number | null;
  /** ms, null without duration samples. */
  p99: number | null;
  /** Seconds of collection rounds the numbers cover. */
  seconds: number;
}

/** One line of a rollout's progress (`weft rollout` prints them as they come). */
export interface RolloutEvent {
  /** 1, 2, ...: GET ...?since=N returns the events after N. */
  seq: number;
  at: string;
  kind: 'started' | 'step' | 'converged' | 'observation' | 'no-traffic' | 'passed' | 'rolled-back' | 'aborted' | 'completed' | 'failed';
  text: string;
}

export interface RolloutWeight {
  /** Empty: the service's endpoints without a subset. */
  subset: string;
  weight: number;
}

export interface RolloutStatus {
  id: string;
  namespace: string;
  service: string;
  /** The VirtualService the rollout writes (`namespace/name`). */
  virtualService: string;
  to: string;
  from: string[];
  steps: number[];
  /** Index into steps of the step in progress (or last reached). -1 before the first. */
  stepIndex: number;
  weights: RolloutWeight[];
  thresholds: { maxErrorRate: number; maxP99Ms: number; minRequests: number };
  intervalSeconds: number;
  /** The latest observation of the step in progress. */
  observed?: RolloutObservation;
  state: RolloutState;
  /** Why it ended (rolled back, aborted, failed) or how. */
  reason?: string;
  /** The config version the rollout started from (and rolls back to). */
  startVersion: string;
  /** Versions it wrote, in order (steps, then the final or rollback version). */
  versions: string[];
  startedAt: string;
  endedAt?: string;
  events: RolloutEvent[];
}

/** POST /api/v1/apply?watch=60s...: how a health-gated apply is judged. */
export interface ApplyWatchRequest {
  windowMs: number;
  maxErrorRate?: number;
  maxP99Ms?: number;
  minRequests?: number;
}

export type ApplyWatchState = 'watching' | 'healthy' | 'rolled-back' | 'unjudged' | 'failed';

export interface ApplyWatchStatus {
  id: string;
  /** The version the apply produced, and the one before it. */
  version: string;
  previousVersion: string;
  /** Services whose signals are compared (`namespace/name`). */
  services: string[];
  windowSeconds: number;
  thresholds: { maxErrorRate: number; maxP99Ms: number; minRequests: number };
  state: ApplyWatchState;
  reason?: string;
  /** The version that undid the change, when it was rolled back. */
  rollbackVersion?: string;
  startedAt: string;
  endedAt?: string;
  events: RolloutEvent[];
}

/** `1%`, `0.5%` or a share `0.01` -> 0..1; undefined when not one of those. */
export function parseRate(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(%?)$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]) / (m[2] ? 100 : 1);
  return n >= 0 && n <= 1 ? n : undefined;
}

/** `500ms`, `1.5s`, or a number of milliseconds -> ms; undefined when not a duration. */
export function parseMillis(text: string): number | undefined {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t);
  const ms = parseDuration(t);
  return ms !== undefined && ms >= 0 ? ms : undefined;
}

/** `10,25,50,100` -> [10, 25, 50, 100]; undefined unless increasing integers in 1..100 ending at 100. */
export function parseSteps(text: string): number[] | undefined {
  const steps = text.split(',').map((s) => s.trim().replace(/%$/, ''));
  if (steps.some((s) => !/^\d+$/.test(s))) return undefined;
  const numbers = steps.map(Number);
  return validSteps(numbers) ? numbers : undefined;
}

export function validSteps(steps: readonly number[]): boolean {
  if (steps.length === 0 || steps[steps.length - 1] !== 100) return false;
  return steps.every((n, i) => Number.isInteger(n) && n >= 1 && n <= 100 && (i === 0 || n > steps[i - 1]));
}

export function formatPercent(share: number | null): string {
  if (share === null) return '-';
  const p = share * 100;
  return `${p >= 10 || Number.isInteger(p) ? Math.round(p * 10) / 10 : Math.round(p * 100) / 100}%`;
}

export function formatMs(ms: number | null): string {
  if (ms === null) return '-';
  return ms >= 1000 ? `${Math.round(ms / 10) / 100}s` : `${Math.round(ms * 10) / 10}ms`;
}
