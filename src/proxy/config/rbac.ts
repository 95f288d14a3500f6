// Envoy's RBAC (envoy.config.rbac.v3) compiled into predicates once, when config arrives: the
// policies of the HTTP filter (extensions.filters.http.rbac.v3.RBAC) and of the network filter
// (extensions.filters.network.rbac.v3.RBAC), and the one pure evaluation both filters share.
// Anything in a policy the proxy cannot evaluate is a problem with its field path (a NACK), never
// a matcher that silently matches or fails.
import * as net from 'node:net';
import type { DownstreamTlsInfo, RequestView } from './model';
import { cidrContains, ipBytes, parseCidr } from './listener';
import { compileHeaderMatcher, compileStringMatcher, type StringPredicate } from './string-matcher';
import { join, wrapped, type Json, type Problems } from './validation';

export const HTTP_RBAC_TYPE = 'envoy.extensions.filters.http.rbac.v3.RBAC';
export const HTTP_RBAC_PER_ROUTE_TYPE = 'envoy.extensions.filters.http.rbac.v3.RBACPerRoute';
export const NETWORK_RBAC_TYPE = 'envoy.extensions.filters.network.rbac.v3.RBAC';

// ---------------------------------------------------------------------------------------------
// What the matchers read

/**
 * A request (HTTP RBAC) or a connection (network RBAC) as RBAC matchers see it. Implementations
 * parse addresses lazily and at most once; matchers only call what their policy needs.
 */
export interface AuthzSubject {
  /** The HTTP request; undefined for a connection (header and url_path matchers never match). */
  readonly request: RequestView | undefined;
  readonly tls: DownstreamTlsInfo | undefined;
  /** SNI of the connection (Envoy's requestedServerName), '' when none. */
  readonly requestedServerName: string;
  readonly destinationPort: number;
  destinationIp(): Uint8Array | undefined;
  /** The physical peer (Envoy's direct_remote_ip; source_ip is its deprecated alias here). */
  directRemoteIp(): Uint8Array | undefined;
  /** The client address derived from x-forwarded-for per the HCM settings (Envoy's remote_ip). */
  remoteIp(): Uint8Array | undefined;
  /** Dynamic metadata of one filter namespace (e.g. `istio_authn`), undefined when none. */
  metadata(filter: string): Readonly<Record<string, unknown>> | undefined;
}

/** Parsed bytes of an address, or undefined when it is not an IP (empty, a host name). */
export function addressBytes(address: string | undefined): Uint8Array | undefined {
  if (!address) return undefined;
  const bare = address.startsWith('[') ? address.slice(1, address.indexOf(']')) : address;
  return net.isIP(bare) ? ipBytes(bare) : undefined;
}

type Matcher = (s: AuthzSubject) => boolean;

// ---------------------------------------------------------------------------------------------
// Compiled model

export type RbacAction = 'ALLOW' | 'DENY' | 'LOG';

export interface CompiledPolicy {
  name: string;
  matches: Matcher;
}

/** One `rules` (or `shadow_rules`) block: an action and its policies in lexicographic order. */
export interface CompiledRbac {
  action: RbacAction;
  policies: readonly CompiledPolicy[];
}

/** The HTTP filter's settings; the network filter adds a stat prefix. */
export interface RbacFilterSettings {
  /** Enforced rules; undefined: nothing enforced (Envoy: rules absent). */
  rules?: CompiledRbac;
  /** Evaluated, counted and published as metadata, never enforced. */
  shadowRules?: CompiledRbac;
  rulesStatPrefix: string;
  shadowRulesStatPrefix: string;
}

export interface NetworkRbacConfig extends RbacFilterSettings {
  /** The filter's name in the chain (its dynamic metadata namespace). */
  name: string;
  /** Envoy's stat_prefix; counters are `<stat_prefix>rbac.allowed` etc. */
  statPrefix: string;
}

export interface RbacDecision {
  allowed: boolean;
  /** The first matching policy in name order (Envoy's effective policy id). */
  matchedPolicy: string | undefined;
}

/**
 * Envoy's RoleBasedAccessControlEngine: ALLOW allows iff some policy matches (no policies: deny
 * everything), DENY denies iff some policy matches, LOG always allows (the caller sets
 * `envoy.common` `access_log_hint` to whether a policy matched).
 */
export function evaluateRbac(rbac: CompiledRbac, subject: AuthzSubject): RbacDecision {
  let matchedPolicy: string | undefined;
  const policies = rbac.policies;
  for (let i = 0; i < policies.length; i++) {
    if (policies[i].matches(subject)) {
      matchedPolicy = policies[i].name;
      break;
    }
  }
  switch (rbac.action) {
    case 'ALLOW':
      return { allowed: matchedPolicy !== undefined, matchedPolicy };
    case 'DENY':
      return { allowed: matchedPolicy === undefined, matchedPolicy };
    case 'LOG':
      return { allowed: true, matchedPolicy };
  }
}

/** Envoy's response code details for a denial: `rbac_access_denied_matched_policy[<id>|none]`. */
export function rbacDeniedDetails(decision: RbacDecision): string {
  return `rbac_access_denied_matched_policy[${decision.matchedPolicy ?? 'none'}]`;
}

// ---------------------------------------------------------------------------------------------
// Compilation

const ACTIONS: Record<string, RbacAction> = { ALLOW: 'ALLOW', DENY: 'DENY', LOG: 'LOG' };

/** Compiles envoy.config.rbac.v3.RBAC. */
export function compileRbacRules(r: Json, problems: Problems, path: string): CompiledRbac {
  problems.fields(r, path, ['action', 'policies', 'audit_logging_options']);
  if (r.audit_logging_options && Object.keys(r.audit_logging_options).length) {
    problems.add(join(path, 'audit_logging_options'), 'RBAC audit loggers are not supported by the Weft proxy (use action LOG and the access log)');
  }
  const actionName = String(r.action ?? 'ALLOW');
  const action = ACTIONS[actionName];
  if (!action) problems.add(join(path, 'action'), `unknown RBAC action "${actionName}"`);
  const names = Object.keys((r.policies ?? {}) as Json).sort();
  const policies = names.map((name) => ({
    name,
    matches: compilePolicy((r.policies as Json)[name] as Json, problems, `${path}.policies[${JSON.stringify(name)}]`),
  }));
  return { action: action ?? 'DENY', policies };
}

function compilePolicy(p: Json, problems: Problems, path: string): Matcher {
  problems.fields(p, path, ['permissions', 'principals']);
  if (p.condition) problems.add(join(path, 'condition'), 'CEL conditions are not supported by the Weft proxy');
  if (p.checked_condition) problems.add(join(path, 'checked_condition'), 'CEL conditions are not supported by the Weft proxy');
  const permissions = ((p.permissions ?? []) as Json[]).map((x, i) => compilePermission(x, problems, join(join(path, 'permissions'), i)));
  const principals = ((p.principals ?? []) as Json[]).map((x, i) => compilePrincipal(x, problems, join(join(path, 'principals'), i)));
  // Envoy's proto validation requires at least one of each.
  if (permissions.length === 0) problems.add(join(path, 'permissions'), 'a policy needs at least one permission (use any: true to match everything)');
  if (principals.length === 0) problems.add(join(path, 'principals'), 'a policy needs at least one principal (use any: true to match everyone)');
  const anyPermission = anyOf(permissions);
  const anyPrincipal = anyOf(principals);
  return (s) => anyPermission(s) && anyPrincipal(s);
}

function anyOf(matchers: Matcher[]): Matcher {
  if (matchers.length === 1) return matchers[0];
  return (s) => {
    for (let i = 0; i < matchers.length; i++) if (matchers[i](s)) return true;
    return false;
  };
}

function allOf(matchers: Matcher[]): Matcher {
  if (matchers.length === 1) return matchers[0];
  return (s) => {
    for (let i = 0; i < matchers.length; i++) if (!matchers[i](s)) return false;
    return true;
  };
}

const never: Matcher = () => false;
const always: Matcher = () => true;

/** The one set field of a oneof; reports none or several. */
function oneKey(obj: Json, keys: readonly string[], problems: Problems, path: string, what: string): string | undefined {
  // A oneof member is present even at its default value (`bool_match: false`).
  const present = keys.filter((k) => obj[k] !== undefined && obj[k] !== null);
  const unknown = Object.keys(obj).filter((k) => !keys.includes(k) && obj[k] !== undefined && obj[k] !== null && obj[k] !== false);
  for (const k of unknown) problems.add(join(path, k), `${what} rule "${k}" is not supported by the Weft proxy`);
  if (present.length === 0) {
    if (unknown.length === 0) problems.add(path, `${what} has no rule set`);
    return undefined;
  }
  if (present.length > 1) problems.add(path, `${what} sets more than one rule (${present.join(', ')})`);
  return present[0];
}

const PERMISSION_RULES = [
  'and_rules',
  'or_rules',
  'any',
  'header',
  'url_path',
  'destination_ip',
  'destination_port',
  'destination_port_range',
  'metadata',
  'not_rule',
  'requested_server_name',
] as const;

export function compilePermission(p: Json, problems: Problems, path: string): Matcher {
  const key = oneKey(p, PERMISSION_RULES, problems, path, 'permission');
  const v = key ? p[key] : undefined;
  const at = key ? join(path, key) : path;
  switch (key) {
    case 'and_rules':
    case 'or_rules': {
      problems.fields(v, at, ['rules']);
      const rules = ((v.rules ?? []) as Json[]).map((x, i) => compilePermission(x, problems, join(join(at, 'rules'), i)));
      // Envoy: an empty and-set matches, an empty or-set does not.
      if (rules.length === 0) return key === 'and_rules' ? always : never;
      return key === 'and_rules' ? allOf(rules) : anyOf(rules);
    }
    case 'any':
      if (v !== true) problems.add(at, 'any must be true');
      return always;
    case 'header':
      return headerMatcher(v, problems, at);
    case 'url_path':
      return urlPathMatcher(v, problems, at);
    case 'destination_ip':
      return cidrMatcher(v, problems, at, (s) => s.destinationIp());
    case 'destination_port': {
      const port = Number(v);
      return (s) => s.destinationPort === port;
    }
    case 'destination_port_range': {
      problems.fields(v, at, ['start', 'end']);
      const start = Number(v.start ?? 0);
      const end = Number(v.end ?? 0);
      return (s) => s.destinationPort >= start && s.destinationPort < end;
    }
    case 'metadata':
      return metadataMatcher(v, problems, at);
    case 'not_rule': {
      const inner = compilePermission(v, problems, at);
      return (s) => !inner(s);
    }
    case 'requested_server_name': {
      const m = compileStringMatcher(v, problems, at);
      return (s) => m(s.requestedServerName);
    }
    default:
      return never;
  }
}

const PRINCIPAL_IDS = [
  'and_ids',
  'or_ids',
  'any',
  'authenticated',
  'source_ip',
  'direct_remote_ip',
  'remote_ip',
  'header',
  'url_path',
  'metadata',
  'not_id',
] as const;

export function compilePrincipal(p: Json, problems: Problems, path: string): Matcher {
  const key = oneKey(p, PRINCIPAL_IDS, problems, path, 'principal');
  const v = key ? p[key] : undefined;
  const at = key ? join(path, key) : path;
  switch (key) {
    case 'and_ids':
    case 'or_ids': {
      problems.fields(v, at, ['ids']);
      const ids = ((v.ids ?? []) as Json[]).map((x, i) => compilePrincipal(x, problems, join(join(at, 'ids'), i)));
      if (ids.length === 0) return key === 'and_ids' ? always : never;
      return key === 'and_ids' ? allOf(ids) : anyOf(ids);
    }
    case 'any':
      if (v !== true) problems.add(at, 'any must be true');
      return always;
    case 'authenticated':
      return authenticatedMatcher(v, problems, at);
    case 'source_ip':
    case 'direct_remote_ip':
      return cidrMatcher(v, problems, at, (s) => s.directRemoteIp());
    case 'remote_ip':
      return cidrMatcher(v, problems, at, (s) => s.remoteIp());
    case 'header':
      return headerMatcher(v, problems, at);
    case 'url_path':
      return urlPathMatcher(v, problems, at);
    case 'metadata':
      return metadataMatcher(v, problems, at);
    case 'not_id': {
      const inner = compilePrincipal(v, problems, at);
      return (s) => !inner(s);
    }
    default:
      return never;
  }
}

/**
 * Envoy's AuthenticatedMatcher: only a connection with a verified peer certificate is
 * authenticated; principal_name is matched against each URI SAN, then each DNS SAN, then the
 * subject (Weft keeps the URI SANs and the principal, the first of those that exists).
 */
function authenticatedMatcher(v: Json, problems: Problems, path: string): Matcher {
  problems.fields(v, path, ['principal_name']);
  if (!v.principal_name) return (s) => s.tls?.peerPrincipal !== undefined;
  const m = compileStringMatcher(v.principal_name, problems, join(path, 'principal_name'));
  return (s) => {
    const tls = s.tls;
    if (!tls || tls.peerPrincipal === undefined) return false;
    const sans = tls.peerUriSans;
    for (let i = 0; i < sans.length; i++) if (m(sans[i])) return true;
    return m(tls.peerPrincipal);
  };
}

function headerMatcher(v: Json, problems: Problems, path: string): Matcher {
  const h = compileHeaderMatcher(v, problems, path);
  return (s) => {
    const req = s.request;
    // A connection has no headers: every header is absent (Envoy's network RBAC).
    return h.test(req ? (name) => req.header(name) : () => undefined);
  };
}

/** envoy.type.matcher.v3.PathMatcher: the path without query (and fragment). */
function urlPathMatcher(v: Json, problems: Problems, path: string): Matcher {
  problems.fields(v, path, ['path']);
  if (!v.path) {
    problems.add(join(path, 'path'), 'path matcher is required');
    return never;
  }
  const m = compileStringMatcher(v.path, problems, join(path, 'path'));
  return (s) => s.request !== undefined && m(s.request.pathOnly());
}

/** envoy.config.core.v3.CidrRange; an absent prefix_len is 0, as in Envoy. */
function cidrMatcher(v: Json, problems: Problems, path: string, ip: (s: AuthzSubject) => Uint8Array | undefined): Matcher {
  problems.fields(v, path, ['address_prefix', 'prefix_len']);
  const range = parseCidr(String(v.address_prefix ?? ''), Number(wrapped<number>(v.prefix_len) ?? 0), problems, path);
  if (!range) return never;
  return (s) => {
    const bytes = ip(s);
    return bytes !== undefined && cidrContains(range, bytes);
  };
}

// ---- metadata ----

type ValuePredicate = (value: unknown) => boolean;

/**
 * envoy.type.matcher.v3.MetadataMatcher against the request's dynamic metadata: the value at
 * `filter` + `path` (undefined when any step is missing) tested by the value matcher, then
 * inverted if asked.
 */
function metadataMatcher(v: Json, problems: Problems, path: string): Matcher {
  problems.fields(v, path, ['filter', 'path', 'value', 'invert']);
  const filter = String(v.filter ?? '');
  if (!filter) problems.add(join(path, 'filter'), 'filter is required');
  const keys = ((v.path ?? []) as Json[]).map((seg, i) => {
    problems.fields(seg, join(join(path, 'path'), i), ['key']);
    return String(seg.key ?? '');
  });
  if (keys.length === 0) problems.add(join(path, 'path'), 'at least one path segment is required');
  if (!v.value) problems.add(join(path, 'value'), 'value matcher is required');
  const value = v.value ? compileValueMatcher(v.value, problems, join(path, 'value')) : () => false;
  const invert = v.invert === true;
  return (s) => {
    let current: unknown = s.metadata(filter);
    for (let i = 0; i < keys.length && current !== undefined; i++) {
      current = current !== null && typeof current === 'object' && !Array.isArray(current) ? (current as Record<string, unknown>)[keys[i]] : undefined;
    }
    return value(current) !== invert;
  };
}

/** envoy.type.matcher.v3.ValueMatcher over JSON values (undefined = Envoy's KIND_NOT_SET). */
export function compileValueMatcher(v: Json, problems: Problems, path: string): ValuePredicate {
  const key = oneKey(v, ['null_match', 'double_match', 'string_match', 'bool_match', 'present_match', 'list_match', 'or_match'], problems, path, 'value matcher');
  const at = key ? join(path, key) : path;
  switch (key) {
    case 'null_match':
      return (x) => x === null;
    case 'double_match': {
      const d = v.double_match as Json;
      problems.fields(d, at, ['range', 'exact']);
      if (d.range) {
        const start = Number(d.range.start ?? 0);
        const end = Number(d.range.end ?? 0);
        return (x) => typeof x === 'number' && x >= start && x < end;
      }
      const exact = Number(d.exact ?? 0);
      return (x) => typeof x === 'number' && x === exact;
    }
    case 'string_match': {
      const m: StringPredicate = compileStringMatcher(v.string_match, problems, at);
      return (x) => typeof x === 'string' && m(x);
    }
    case 'bool_match': {
      const want = v.bool_match === true;
      return (x) => typeof x === 'boolean' && x === want;
    }
    case 'present_match':
      // Envoy's PresentMatcher: present_match false never matches.
      return v.present_match === true ? (x) => x !== undefined : () => false;
    case 'list_match': {
      const l = v.list_match as Json;
      problems.fields(l, at, ['one_of']);
      if (!l.one_of) {
        problems.add(join(at, 'one_of'), 'one_of is required');
        return () => false;
      }
      const element = compileValueMatcher(l.one_of, problems, join(at, 'one_of'));
      return (x) => Array.isArray(x) && x.some(element);
    }
    case 'or_match': {
      const o = v.or_match as Json;
      problems.fields(o, at, ['value_matchers']);
      const list = ((o.value_matchers ?? []) as Json[]).map((m, i) => compileValueMatcher(m, problems, join(join(at, 'value_matchers'), i)));
      return (x) => list.some((m) => m(x));
    }
    default:
      // An empty ValueMatcher is what decoding makes of `null_match: {}`.
      if (Object.keys(v).length === 0) return (x) => x === null;
      return () => false;
  }
}

// ---- the filters ----

function compileFilterSettings(f: Json, problems: Problems, path: string): RbacFilterSettings {
  if (f.matcher) problems.add(join(path, 'matcher'), 'the RBAC matcher tree (xds.type.matcher) is not supported by the Weft proxy; use rules');
  if (f.shadow_matcher) problems.add(join(path, 'shadow_matcher'), 'the RBAC matcher tree (xds.type.matcher) is not supported by the Weft proxy; use shadow_rules');
  return {
    rules: f.rules ? compileRbacRules(f.rules, problems, join(path, 'rules')) : undefined,
    shadowRules: f.shadow_rules ? compileRbacRules(f.shadow_rules, problems, join(path, 'shadow_rules')) : undefined,
    rulesStatPrefix: String(f.rules_stat_prefix ?? ''),
    shadowRulesStatPrefix: String(f.shadow_rules_stat_prefix ?? ''),
  };
}

/** Compiles envoy.extensions.filters.http.rbac.v3.RBAC. */
export function compileHttpRbac(f: Json, problems: Problems, path: string): RbacFilterSettings {
  problems.fields(f, path, ['rules', 'rules_stat_prefix', 'shadow_rules', 'shadow_rules_stat_prefix', 'matcher', 'shadow_matcher'], [
    // Per-policy counters: stats only.
    'track_per_rule_stats',
  ]);
  return compileFilterSettings(f, problems, path);
}

/** Compiles envoy.extensions.filters.network.rbac.v3.RBAC (evaluated once per connection). */
export function compileNetworkRbac(name: string, f: Json, problems: Problems, path: string): NetworkRbacConfig {
  problems.fields(f, path, ['rules', 'shadow_rules', 'shadow_rules_stat_prefix', 'stat_prefix', 'matcher', 'shadow_matcher', 'enforcement_type']);
  const statPrefix = String(f.stat_prefix ?? '');
  if (!statPrefix) problems.add(join(path, 'stat_prefix'), 'stat_prefix is required');
  if (f.enforcement_type && f.enforcement_type !== 'ONE_TIME_ON_FIRST_BYTE') {
    problems.add(join(path, 'enforcement_type'), `enforcement type ${f.enforcement_type} is not supported (only ONE_TIME_ON_FIRST_BYTE)`);
  }
  return { name, statPrefix, ...compileFilterSettings(f, problems, path) };
}
