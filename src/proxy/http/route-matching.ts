// Request-time evaluation of compiled routes: the first route of the virtual host whose path,
// headers, query parameters, gRPC and runtime-fraction conditions all hold wins (Envoy order);
// and which of a route's settings apply (per-filter overrides, retries, mirrors). Pure: the
// request path and `weft route` (src/control/what-if-route.ts) both call these.
import type {
  CompiledRoute,
  CompiledVirtualHost,
  FilterOverrides,
  ForwardAction,
  MirrorPolicy,
  PathMatch,
  RequestView,
  RetryPolicy,
  WeightedClusterChoice,
} from '../config/model';
import { isGrpcRequest } from './local-reply';

export function pathMatches(m: PathMatch, req: RequestView): boolean {
  switch (m.kind) {
    case 'any':
      return true;
    case 'prefix': {
      // Envoy compares the prefix with :path as received, query string included.
      const p = m.caseSensitive ? req.path : req.path.toLowerCase();
      return p.startsWith(m.value);
    }
    case 'path': {
      const p = m.caseSensitive ? req.pathOnly() : req.pathOnly().toLowerCase();
      return p === m.value;
    }
    case 'separated-prefix': {
      const p = m.caseSensitive ? req.pathOnly() : req.pathOnly().toLowerCase();
      return p === m.value || (p.startsWith(m.value) && p.charCodeAt(m.value.length) === 47 /* / */);
    }
    case 'regex':
      return m.regex !== undefined && m.regex.test(req.pathOnly());
  }
}

export function routeMatches(route: CompiledRoute, req: RequestView, random: () => number): boolean {
  if (!pathMatches(route.path, req)) return false;
  if (route.grpcOnly && !isGrpcRequest(req.headers)) return false;
  const lookup = (name: string) => req.header(name);
  for (const h of route.headers) if (!h.test(lookup)) return false;
  if (route.query.length) {
    const q = req.query();
    for (const m of route.query) if (!m.test(q)) return false;
  }
  if (route.fraction < 1 && random() >= route.fraction) return false;
  return true;
}

export function selectRoute(vh: CompiledVirtualHost, req: RequestView, random: () => number = Math.random): CompiledRoute | undefined {
  const routes = vh.routes;
  for (let i = 0; i < routes.length; i++) if (routeMatches(routes[i], req, random)) return routes[i];
  return undefined;
}

/** Splits a query string into its first value per name (Envoy matches the first occurrence). */
export function parseQuery(path: string): Map<string, string> {
  const out = new Map<string, string>();
  const q = path.indexOf('?');
  if (q < 0) return out;
  let query = path.slice(q + 1);
  const hash = query.indexOf('#');
  if (hash >= 0) query = query.slice(0, hash);
  for (const part of query.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const rawName = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? '' : part.slice(eq + 1);
    const name = safeDecode(rawName);
    if (!out.has(name)) out.set(name, safeDecode(rawValue));
  }
  return out;
}

function safeDecode(s: string): string {
  if (!s.includes('%') && !s.includes('+')) return s;
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

/**
 * The per-filter config (typed_per_filter_config) in effect for a request: the most specific
 * level that sets it wins — weighted cluster, then route, then virtual host; undefined: none
 * overrides the filter's own config, null: disabled.
 */
export function filterOverride<K extends keyof FilterOverrides>(
  kind: K,
  choice: WeightedClusterChoice | undefined,
  route: CompiledRoute | undefined,
  vh: CompiledVirtualHost | undefined,
): FilterOverrides[K] | undefined {
  const fromChoice = choice?.filters[kind];
  if (fromChoice !== undefined) return fromChoice;
  const fromRoute = route?.filters[kind];
  if (fromRoute !== undefined) return fromRoute;
  return vh?.filters[kind];
}

/** The retry policy of a forward: the route's, else the virtual host's (Envoy: no merge). */
export function retryPolicyFor(action: ForwardAction, vh: CompiledVirtualHost | undefined): RetryPolicy | undefined {
  return action.retry ?? vh?.retry;
}

/** The mirror policies of a forward: the route's when it has any, else the virtual host's. */
export function mirrorsFor(action: ForwardAction, vh: CompiledVirtualHost | undefined): readonly MirrorPolicy[] {
  return action.mirrors.length ? action.mirrors : (vh?.mirrors ?? []);
}
