// The rollout part of the config API (on the control plane's HTTP address, beside config-api.ts):
//
//   POST /api/v1/rollouts                                 {service, to, from?, steps?, intervalMs?, ...} -> 201 status
//   GET  /api/v1/rollouts                                 every rollout kept, newest first
//   GET  /api/v1/rollouts/:namespace/:service[?since=N&wait=10s]   the newest rollout of a service;
//                                                         with `since`, only later events, and with
//                                                         `wait`, held until there is one (long poll)
//   POST /api/v1/rollouts/:namespace/:service/abort       roll back to the start; answers when done
//   GET  /api/v1/apply-watches[/:version][?since=N&wait=10s]   health-gated applies (weft apply --watch)
//
// A health-gated apply starts with POST /api/v1/apply?watch=60s[&maxErrorRate=1%&maxP99=500ms&minRequests=20].
import type * as http from 'node:http';
import { ConfigRequestError, type ApplyOutcome } from './config-writer';
import type { ApiResponse, ApiRoute } from './config-api';
import type { ControlPlane } from './control-plane';
import { parseMillis, parseRate, type ApplyWatchRequest, type ApplyWatchStatus, type RolloutRequest, type RolloutStatus } from './rollout-contract';

type Methods = ApiRoute['methods'];

/** Longest a long poll is held. */
const MAX_WAIT_MS = 30_000;

function json(value: unknown, status = 200): ApiResponse {
  return { status, type: 'application/json', body: JSON.stringify(value, null, 2) + '\n' };
}

/** The routes, for config-api.ts's table. */
export function rolloutRoutes(cp: ControlPlane): [RegExp, Methods][] {
  return [
    [/^\/api\/v1\/rollouts$/, { GET: () => json({ rollouts: cp.rollouts.list() }), POST: (req) => startRollout(cp, req) }],
    [/^\/api\/v1\/rollouts\/([^/]+)\/([^/]+)$/, { GET: (_req, url, [namespace, service]) => rolloutStatus(cp, url, namespace, service) }],
    [/^\/api\/v1\/rollouts\/([^/]+)\/([^/]+)\/abort$/, { POST: async (_req, _url, [namespace, service]) => json(await cp.rollouts.abort(namespace, service)) }],
    [/^\/api\/v1\/apply-watches$/, { GET: () => json({ watches: cp.applyWatches.list() }) }],
    [/^\/api\/v1\/apply-watches\/([^/]+)$/, { GET: (_req, url, [id]) => applyWatchStatus(cp, url, id) }],
  ];
}

/** The `?watch=DURATION&maxErrorRate=..&maxP99=..&minRequests=..` of POST /api/v1/apply, checked before anything is applied. */
export function applyWatchParams(url: URL): ApplyWatchRequest | undefined {
  const watch = url.searchParams.get('watch');
  if (!watch) return undefined;
  const windowMs = parseMillis(watch);
  if (windowMs === undefined || windowMs <= 0) throw new ConfigRequestError(400, `watch=${watch} is not a duration`, { hint: 'for example watch=60s' });
  const rate = url.searchParams.get('maxErrorRate');
  const p99 = url.searchParams.get('maxP99');
  const min = url.searchParams.get('minRequests');
  return {
    windowMs,
    ...(rate !== null ? { maxErrorRate: required(parseRate(rate), `maxErrorRate=${rate} is not a rate such as 1%`) } : {}),
    ...(p99 !== null ? { maxP99Ms: required(parseMillis(p99), `maxP99=${p99} is not a duration such as 500ms`) } : {}),
    ...(min !== null ? { minRequests: required(/^\d+$/.test(min) ? Number(min) : undefined, `minRequests=${min} is not a number`) } : {}),
  };
}

/** After POST /api/v1/apply?watch=..: starts the health-gated watch of the change (not for a dry run or a change of nothing). */
export function watchAfterApply(cp: ControlPlane, watch: ApplyWatchRequest | undefined, outcome: ApplyOutcome): ApplyOutcome & { watch?: ApplyWatchStatus } {
  if (!watch || outcome.dryRun || !outcome.version || outcome.version === outcome.previousVersion) return outcome;
  return { ...outcome, watch: cp.applyWatches.watch(outcome.version, outcome.previousVersion, watch) };
}

function required<T>(value: T | undefined, message: string): T {
  if (value === undefined) throw new ConfigRequestError(400, message);
  return value;
}

async function startRollout(cp: ControlPlane, req: http.IncomingMessage): Promise<ApiResponse> {
  const text = await readSmallBody(req);
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigRequestError(400, `the rollout request is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof body !== 'object' || body === null) throw new ConfigRequestError(400, 'a rollout request is a JSON object');
  const str = (name: string) => {
    const v = body[name];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') throw new ConfigRequestError(400, `${name} must be a string`);
    return v;
  };
  const num = (name: string) => {
    const v = body[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ConfigRequestError(400, `${name} must be a number`);
    return v;
  };
  const steps = body.steps;
  if (steps !== undefined && (!Array.isArray(steps) || steps.some((s) => typeof s !== 'number'))) throw new ConfigRequestError(400, 'steps must be an array of percentages');
  const request: RolloutRequest = {
    namespace: str('namespace'),
    service: str('service') ?? '',
    to: str('to') ?? '',
    from: str('from'),
    steps: steps as number[] | undefined,
    intervalMs: num('intervalMs'),
    maxErrorRate: num('maxErrorRate'),
    maxP99Ms: num('maxP99Ms'),
    minRequests: num('minRequests'),
    noTrafficTimeoutMs: num('noTrafficTimeoutMs'),
  };
  return json(cp.rollouts.start(request), 201);
}

/** `since` and `wait` of a status request: events after `since`, held up to `wait` for one. */
function pollParams(url: URL): { since: number; waitMs: number } {
  const since = Number(url.searchParams.get('since') ?? 0);
  const wait = url.searchParams.get('wait');
  const waitMs = wait ? parseMillis(wait) : 0;
  if (!Number.isInteger(since) || since < 0) throw new ConfigRequestError(400, 'since must be an event number (0 or more)');
  if (waitMs === undefined) throw new ConfigRequestError(400, `wait=${wait} is not a duration`);
  return { since, waitMs: Math.min(waitMs, MAX_WAIT_MS) };
}

async function rolloutStatus(cp: ControlPlane, url: URL, namespace: string, service: string): Promise<ApiResponse> {
  const { since, waitMs } = pollParams(url);
  if (!cp.rollouts.find(namespace, service)) throw new ConfigRequestError(404, `no rollout of ${service} in namespace ${namespace}`, { hint: 'start one with `weft rollout SERVICE --to SUBSET`' });
  if (waitMs > 0) await cp.rollouts.waitForEvents(namespace, service, since, waitMs);
  const status = cp.rollouts.find(namespace, service)!;
  return json({ ...status, events: status.events.filter((e) => e.seq > since) } satisfies RolloutStatus);
}

async function applyWatchStatus(cp: ControlPlane, url: URL, id: string): Promise<ApiResponse> {
  const { since, waitMs } = pollParams(url);
  if (!cp.applyWatches.get(id)) throw new ConfigRequestError(404, `no health-gated apply of ${id}`, { hint: 'start one with `weft apply -f FILE --watch 60s`' });
  if (waitMs > 0) await cp.applyWatches.waitForEvents(id, since, waitMs);
  const status = cp.applyWatches.get(id)!;
  return json({ ...status, events: status.events.filter((e) => e.seq > since) });
}

function readSmallBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 1024 * 1024) reject(new ConfigRequestError(413, 'the request body is larger than 1 MiB'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', (err) => reject(new ConfigRequestError(400, `the request body could not be read: ${err.message}`)));
  });
}
