// `weft route`: what-if routing. Asks the control plane how one HTTP request would be handled —
// which proxy, listener and filter chain, VirtualService rule, destination clusters with weights,
// the route's policies and the authorization decision at the destination — for the running config
// or with candidate files on top (nothing is applied). The answer comes from the translator and
// the proxy's own matchers (src/control/what-if-route.ts); this module only asks and prints.
import type { RouteRequestBody } from '../control/config-api-contract';
import type { AuthorizationAnswer, RouteAnswer } from '../control/what-if-route';
import { outputFormat, parseCommandArgs, UsageError } from './cli-errors';
import type { CliIo } from './cli-io';
import { CONTROL_HELP, CONTROL_OPTION, ControlClient } from './control-client';
import { readManifestInputs } from './manifest-input';
import { refusal } from './apply';

export const ROUTE_USAGE = `Usage: weft route [--from WORKLOAD] URL [-H 'name: value']... [-X METHOD] [-f FILE]... [-o json]

Prints how the mesh would handle one HTTP request, without sending it: the proxy that takes it
(the --from workload's sidecar, called as its HTTP_PROXY; without --from, the ingress gateway
whose Gateway serves the URL's host and port), the listener and filter chain, the VirtualService
and rule (http[i]) that match, the destination clusters with their weights and subsets, the
route's timeout, retries, fault injection, mirroring, rewrites and header edits, and the
authorization decision at each destination's sidecar. The answer is computed by the same
translator and the same route matchers the proxies run.

With -f, the files are applied on top of the running config for this answer only (validated as
\`weft apply --dry-run\` validates them); nothing is changed.

Examples:
  weft route http://127.0.0.1:8080/productpage
  weft route --from productpage-v1 http://reviews:9080/reviews/0 -H 'end-user: jason'
  weft route --from productpage-v1 http://reviews:9080/reviews/0 -f virtual-service-reviews-50-v3.yaml

Options:
      --from WORKLOAD     the calling workload (WorkloadEntry name, or a connected gateway's name)
  -n, --namespace NS      namespace of --from (default "default")
  -H, --header 'N: V'     a request header (repeatable)
  -X, --request METHOD    the request method (default GET)
  -f, --filename PATH     candidate YAML/JSON file, directory, or - for stdin (repeatable)
  -R, --recursive         read -f directories recursively
  -o, --output json       the answer as JSON
${CONTROL_HELP}
`;

export async function runRoute(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs(
    argv,
    {
      from: { type: 'string' },
      namespace: { type: 'string', short: 'n' },
      header: { type: 'string', short: 'H', multiple: true },
      request: { type: 'string', short: 'X' },
      filename: { type: 'string', short: 'f', multiple: true },
      recursive: { type: 'boolean', short: 'R' },
      output: { type: 'string', short: 'o' },
      ...CONTROL_OPTION,
    },
    ROUTE_USAGE,
    true,
  );
  const format = outputFormat(values.output, ['json'] as const, ROUTE_USAGE);
  if (positionals.length === 0) throw new UsageError('give the URL of the request (e.g. http://reviews:9080/reviews/0)', ROUTE_USAGE);
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}" (hint: one URL; headers go with -H)`, ROUTE_USAGE);
  const headers = (values.header ?? []).map((h): [string, string] => {
    const colon = h.indexOf(':');
    if (colon <= 0) throw new UsageError(`-H "${h}" is not "name: value"`, ROUTE_USAGE);
    return [h.slice(0, colon).trim(), h.slice(colon + 1).trim()];
  });
  const client = ControlClient.fromFlag(values.control, io.env, ROUTE_USAGE);
  const sources = values.filename?.length ? await readManifestInputs(values.filename, Boolean(values.recursive), io) : [];
  const body: RouteRequestBody = {
    url: positionals[0],
    ...(values.from ? { from: values.from } : {}),
    ...(values.namespace ? { namespace: values.namespace } : {}),
    ...(values.request ? { method: values.request } : {}),
    ...(headers.length ? { headers } : {}),
    ...(sources.length ? { sources } : {}),
  };
  let answer: RouteAnswer;
  try {
    answer = await client.request<RouteAnswer>('POST', '/api/v1/route', { contentType: 'application/json', text: JSON.stringify(body) });
  } catch (err) {
    throw refusal(err);
  }
  if (format === 'json') {
    io.out(JSON.stringify(answer, null, 2) + '\n');
    return 0;
  }
  for (const w of answer.candidate?.warnings ?? []) io.err(`${w}\n`);
  io.out(formatRouteAnswer(answer));
  return 0;
}

/** The human form: one labelled line per stage, in the order the request meets them. */
export function formatRouteAnswer(a: RouteAnswer): string {
  const lines: [string, string][] = [];
  const add = (label: string, text: string) => lines.push([label, text]);
  const headerText = Object.entries(a.request.headers).map(([k, v]) => `${k}: ${v}`).join(', ');
  add('Request', `${a.request.method} ${a.request.url}${headerText ? `  (${headerText})` : ''}`);
  add('Config', a.candidate ? `${a.version ?? '?'} + ${a.candidate.files.join(', ')} (candidate, not applied)` : `${a.version ?? '?'} (running)`);
  add('Proxy', `${a.proxy.type === 'router' ? 'gateway' : 'sidecar'} ${a.proxy.workload ?? a.proxy.id}.${a.proxy.namespace}${a.proxy.connected ? '' : ' (not connected)'} — ${a.proxy.why}`);
  if (a.listener) {
    add('Listener', `${a.listener.name} on ${a.listener.address}:${a.listener.port}, filter chain ${a.listener.filterChain}${a.listener.routeConfig ? `, route config ${a.listener.routeConfig}` : ''}`);
  }
  if (a.authorization) add('Authorization', authzText(a.authorization));
  if (a.virtualHost) add('Virtual host', a.virtualHost);
  if (a.route) {
    const r = a.route;
    const vs = r.virtualService ? `VirtualService ${r.virtualService.namespace}/${r.virtualService.name}` : 'no VirtualService (the default route)';
    const rule = r.httpIndex !== undefined ? ` http[${r.httpIndex}]${r.matchIndex !== undefined ? ` match[${r.matchIndex}]` : ''}` : '';
    add('Route', `${vs}${rule}, route ${r.name ? `"${r.name}"` : '(unnamed)'} (#${r.index} of the virtual host)${r.matchPercent !== undefined ? `, matches ${r.matchPercent}% of requests` : ''}`);
  }
  const action = a.action;
  if (action?.kind === 'forward') {
    for (const d of action.destinations) {
      const where = [d.host, d.subset ? `subset ${d.subset}` : undefined, d.port ? `port ${d.port}` : undefined].filter(Boolean).join(', ');
      add('Destination', `${String(d.percent).padStart(3)}%  ${d.cluster}${where ? `  (${where})` : ''}${d.known ? '' : '  NOT IN THE PROXY (503 NC)'}`);
      if (d.endpoints.length === 0 && d.known) add('', '      no endpoints (503 UH)');
      for (const e of d.endpoints) {
        add('', `      ${e.address}:${e.port} ${e.health}${e.workload ? ` ${e.workload}` : ''}${e.mtls ? ', mTLS' : ', plaintext'}${e.authorization ? ` — ${authzText(e.authorization)}` : ''}`);
      }
    }
    add('Timeout', action.timeoutMs > 0 ? durationText(action.timeoutMs) : 'none');
    if (action.retries) {
      const r = action.retries;
      const codes = r.retriableStatusCodes.length ? ` (${r.retriableStatusCodes.join(',')})` : '';
      add('Retries', `${r.attempts} attempt${r.attempts === 1 ? '' : 's'}, per try ${r.perTryTimeoutMs > 0 ? durationText(r.perTryTimeoutMs) : 'no timeout'}, on ${r.retryOn.join(',')}${codes}`);
    } else add('Retries', 'none');
    add('Mirror', action.mirrors.length ? action.mirrors.map((m) => `${m.cluster} (${m.percent}%)`).join(', ') : 'none');
    if (action.rewrite) add('Rewrite', [action.rewrite.authority ? `authority ${action.rewrite.authority}` : '', action.rewrite.path ? `path ${action.rewrite.path}` : ''].filter(Boolean).join(', '));
    if (action.requestHeaders) {
      const h = action.requestHeaders;
      add('Headers', `request: ${[...Object.entries(h.set).map(([k, v]) => `set ${k}: ${v}`), ...h.removed.map((k) => `remove ${k}`)].join('; ')}`);
    }
    if (action.responseHeaders) {
      const h = action.responseHeaders;
      add(action.requestHeaders ? '' : 'Headers', `response: ${[...h.add.map((x) => `add ${x}`), ...h.remove.map((k) => `remove ${k}`)].join('; ')}`);
    }
  } else if (action?.kind === 'redirect') {
    add('Redirect', `${action.status} to ${action.location}`);
  } else if (action?.kind === 'direct') {
    add('Direct response', `${action.status}${action.body ? ` "${action.body.length > 60 ? `${action.body.slice(0, 59)}…` : action.body}"` : ''}`);
  }
  if (a.fault) {
    const parts = [
      a.fault.delay ? `delay ${durationText(a.fault.delay.fixedDelayMs)} for ${a.fault.delay.percent}% of requests` : '',
      a.fault.abort ? `abort ${a.fault.abort.httpStatus ?? `grpc ${a.fault.abort.grpcStatus}`} for ${a.fault.abort.percent}% of requests` : '',
    ].filter(Boolean);
    add('Fault', `${parts.join('; ')}${a.fault.applies ? '' : ' (its header conditions do not hold: not injected)'}`);
  } else if (action?.kind === 'forward') add('Fault', 'none');
  add('Result', a.outcome.summary);
  for (const n of a.notes) add('Note', n);
  const width = Math.max(...lines.map(([l]) => l.length)) + 2;
  return lines.map(([l, t]) => `${l.padEnd(width)}${t}`.trimEnd()).join('\n') + '\n';
}

function authzText(a: AuthorizationAnswer): string {
  return `${a.decision}: ${a.reason}`;
}

function durationText(ms: number): string {
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
