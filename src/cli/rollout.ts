// `weft rollout SERVICE --to SUBSET`: starts a progressive rollout on the control plane (which
// runs it, so it survives this command going away) and follows its progress, one line per step
// and observation; `weft rollout status [SERVICE]` and `weft rollout abort SERVICE`. Also how
// `weft apply --watch` follows a health-gated apply (followEvents).
import type { ApplyWatchStatus, RolloutEvent, RolloutStatus } from '../control/rollout-contract';
import { formatMs, formatPercent, parseMillis, parseRate, parseSteps, ROLLOUT_DEFAULTS } from '../control/rollout-contract';
import { parseCommandArgs, UsageError } from './cli-errors';
import type { CliIo } from './cli-io';
import { CONTROL_HELP, CONTROL_OPTION, ControlClient } from './control-client';
import { explained } from './diff';
import { formatTable } from './table';

export const ROLLOUT_USAGE = `Usage: weft rollout SERVICE --to SUBSET [--from SUBSET] [--steps 10,25,50,100] [--interval 30s]
                    [--max-error-rate 1%] [--max-p99 500ms] [--min-requests 20] [-n NAMESPACE]
       weft rollout status [SERVICE] [-n NAMESPACE]
       weft rollout abort SERVICE [-n NAMESPACE]

Shifts SERVICE's traffic to the DestinationRule subset SUBSET step by step. Each step is a new
config version (source "rollout") of the service's VirtualService: its default http route gets one
weighted destination per subset (a VirtualService is created when there is none). After the proxies
ACK a step, the control plane watches the new subset's error rate (5xx share) and p99 from the
proxies' metrics for the interval; a step is judged once the subset served --min-requests. When a
threshold is crossed (or a step sees no traffic for 5 intervals), the starting VirtualService is
restored and the rollout ends "rolled-back"; otherwise a final version sends everything to SUBSET.

The control plane runs the rollout: stopping this command (Ctrl-C) leaves it running; follow it
again with \`weft rollout status SERVICE\`, stop it with \`weft rollout abort SERVICE\` (which rolls
back to the start). Exit status: 0 completed, 1 rolled back, aborted or failed.

Options:
      --to SUBSET            the subset to move traffic to (required)
      --from SUBSET          the subset to move it from (default: what the route sends to now)
      --steps LIST           percentages for SUBSET, ending at 100 (default ${ROLLOUT_DEFAULTS.steps.join(',')})
      --interval DURATION    how long each step is watched (default ${ROLLOUT_DEFAULTS.intervalMs / 1000}s)
      --max-error-rate RATE  roll back above this 5xx share of SUBSET (default ${formatPercent(ROLLOUT_DEFAULTS.maxErrorRate)})
      --max-p99 DURATION     roll back above this p99 latency of SUBSET (default ${formatMs(ROLLOUT_DEFAULTS.maxP99Ms)})
      --min-requests N       requests SUBSET must serve before a step is judged (default ${ROLLOUT_DEFAULTS.minRequests})
      --no-follow            start it and return
  -n, --namespace NS         the service's namespace (default "default")
${CONTROL_HELP}
`;

const FINISHED = new Set(['completed', 'rolled-back', 'aborted', 'failed', 'healthy', 'unjudged']);

export async function runRollout(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    argv,
    {
      to: { type: 'string' },
      from: { type: 'string' },
      steps: { type: 'string' },
      interval: { type: 'string' },
      'max-error-rate': { type: 'string' },
      'max-p99': { type: 'string' },
      'min-requests': { type: 'string' },
      'no-follow': { type: 'boolean' },
      namespace: { type: 'string', short: 'n' },
      ...CONTROL_OPTION,
    },
    ROLLOUT_USAGE,
    true,
  );
  const client = ControlClient.fromFlag(values.control, io.env, ROLLOUT_USAGE);
  const namespace = values.namespace ?? 'default';
  const [first, second, ...rest] = positionals;
  if (first === undefined) throw new UsageError('name the service to roll out (or status, abort)', ROLLOUT_USAGE);
  if (first === 'status' && values.to === undefined) {
    if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`, ROLLOUT_USAGE);
    return second === undefined ? listRollouts(client, io) : showRollout(client, io, namespace, second);
  }
  if (first === 'abort' && values.to === undefined) {
    if (second === undefined) throw new UsageError('name the service whose rollout to abort', ROLLOUT_USAGE);
    const status = await client.request<RolloutStatus>('POST', `/api/v1/rollouts/${encodeURIComponent(namespace)}/${encodeURIComponent(second)}/abort`).catch(explained);
    io.out(`rollout of ${status.service} to ${status.to} ${status.state}: ${status.reason ?? ''}\n`);
    return 0;
  }
  if (second !== undefined) throw new UsageError(`unexpected argument "${second}"`, ROLLOUT_USAGE);
  if (!values.to) throw new UsageError('--to SUBSET is required', ROLLOUT_USAGE);
  const option = <T>(name: string, parse: (s: string) => T | undefined, what: string): T | undefined => {
    const text = values[name as keyof typeof values] as string | undefined;
    if (text === undefined) return undefined;
    const parsed = parse(text);
    if (parsed === undefined) throw new UsageError(`--${name} ${text}: ${what}`, ROLLOUT_USAGE);
    return parsed;
  };
  const request = {
    namespace,
    service: first,
    to: values.to,
    from: values.from,
    steps: option('steps', parseSteps, 'give increasing percentages ending at 100, such as 10,25,50,100'),
    intervalMs: option('interval', (s) => { const ms = parseMillis(s); return ms && ms > 0 ? ms : undefined; }, 'give a duration such as 30s'),
    maxErrorRate: option('max-error-rate', parseRate, 'give a rate such as 1% or 0.5%'),
    maxP99Ms: option('max-p99', parseMillis, 'give a duration such as 500ms'),
    minRequests: option('min-requests', (s) => (/^[1-9]\d*$/.test(s) ? Number(s) : undefined), 'give a positive number'),
  };
  const started = await client
    .request<RolloutStatus>('POST', '/api/v1/rollouts', { contentType: 'application/json', text: JSON.stringify(request) })
    .catch(explained);
  if (values['no-follow']) {
    io.out(`rollout of ${started.service} to ${started.to} started (follow it with \`weft rollout status ${started.service}\`)\n`);
    return 0;
  }
  return follow(client, io, `/api/v1/rollouts/${encodeURIComponent(namespace)}/${encodeURIComponent(first)}`);
}

/** Prints the events of a rollout or apply watch as they come, until it ends; 0 when it ended well. */
export async function follow(client: ControlClient, io: CliIo, path: string, since = 0): Promise<number> {
  let seq = since;
  for (;;) {
    const status = await client.request<RolloutStatus | ApplyWatchStatus>('GET', `${path}?since=${seq}&wait=20s`).catch(explained);
    for (const e of status.events) {
      io.out(formatEvent(e));
      seq = Math.max(seq, e.seq);
    }
    if (FINISHED.has(status.state)) return status.state === 'completed' || status.state === 'healthy' || status.state === 'unjudged' ? 0 : 1;
  }
}

function formatEvent(e: RolloutEvent): string {
  const time = e.at.slice(11, 19);
  return `${time}  ${e.kind.padEnd(11)}  ${e.text}\n`;
}

async function listRollouts(client: ControlClient, io: CliIo): Promise<number> {
  const { rollouts } = await client.get<{ rollouts: RolloutStatus[] }>('/api/v1/rollouts').catch(explained);
  if (rollouts.length === 0) {
    io.out('no rollouts (start one with `weft rollout SERVICE --to SUBSET`)\n');
    return 0;
  }
  const rows = rollouts.map((r) => [
    `${r.namespace}/${r.service}`,
    r.to,
    r.stepIndex >= 0 ? `${r.steps[r.stepIndex]}%` : '-',
    r.weights.map((w) => `${w.subset || '(all)'}=${w.weight}`).join(' '),
    r.observed ? formatPercent(r.observed.errorRate) : '-',
    r.observed ? formatMs(r.observed.p99) : '-',
    r.state.toUpperCase(),
    r.startedAt.replace('T', ' ').slice(0, 19),
  ]);
  io.out(formatTable(['SERVICE', 'TO', 'STEP', 'WEIGHTS', 'ERRORS', 'P99', 'STATE', 'STARTED'], rows));
  return 0;
}

async function showRollout(client: ControlClient, io: CliIo, namespace: string, service: string): Promise<number> {
  const path = `/api/v1/rollouts/${encodeURIComponent(namespace)}/${encodeURIComponent(service)}`;
  const r = await client.get<RolloutStatus>(path).catch(explained);
  io.out(`rollout of ${r.namespace}/${r.service} to ${r.to} (from ${r.from.join(', ')}; started ${r.startedAt} at ${r.startVersion}): ${r.state.toUpperCase()}\n`);
  io.out(`  steps ${r.steps.join(',')}%, ${r.intervalSeconds}s each; max error rate ${formatPercent(r.thresholds.maxErrorRate)}, max p99 ${formatMs(r.thresholds.maxP99Ms)}, min ${r.thresholds.minRequests} requests\n`);
  io.out(`  weights: ${r.weights.map((w) => `${w.subset || '(all)'} ${w.weight}`).join(' / ')}; versions: ${r.versions.join(', ') || 'none'}\n`);
  if (r.reason) io.out(`  ${r.reason}\n`);
  if (r.state !== 'running') {
    for (const e of r.events) io.out(formatEvent(e));
    return 0;
  }
  return follow(client, io, path);
}
