// AuthorizationPolicy -> Envoy RBAC filters (Istio's authz builder and model/generator): one RBAC
// filter per action, each rule a policy `ns[<ns>]-policy[<name>]-rule[<i>]` whose permissions
// (what is asked: to.operation and destination/connection conditions) and principals (who asks:
// from.source and source/request conditions) are ANDs of per-field ORs.
import type {
  AuthorizationAction,
  AuthorizationCondition,
  AuthorizationOperation,
  AuthorizationPolicyResource,
  AuthorizationRule,
  AuthorizationSource,
} from './security-selection';
import { cidrRange, FILTER, TYPE } from './values';

type Json = Record<string, unknown>;

/** The RBAC actions of Envoy's RBAC filter. */
type RbacAction = 'ALLOW' | 'DENY' | 'LOG';

/** Istio's RBACTCPFilterStatPrefix. */
const TCP_STAT_PREFIX = 'tcp.';

/** The dynamic metadata namespace where the proxy's jwt_authn publishes the request's identity. */
export const AUTHN_METADATA = 'istio_authn';

/** A field that only HTTP has (paths, methods, request headers, JWT claims...), on a TCP chain. */
class HttpOnly extends Error {
  constructor(key: string) {
    super(`"${key}" is HTTP only`);
  }
}

// ---------------------------------------------------------------------------------------------
// String matchers (Istio's matcher package)

function regexMatcher(regex: string): Json {
  return { safe_regex: { regex } };
}

/** Escapes RE2 metacharacters (Go's regexp.QuoteMeta). */
function quoteMeta(s: string): string {
  return s.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
}

/**
 * Istio's StringMatcherWithPrefix: `*` -> any non-empty value, `*x` -> suffix (a regex when there
 * is a prefix to keep), `x*` -> prefix, else exact; `prefix` is prepended to the value.
 */
export function stringMatcherWithPrefix(v: string, prefix = ''): Json {
  if (v === '*') return regexMatcher('.+');
  if (v.startsWith('*')) return prefix === '' ? { suffix: v.slice(1) } : regexMatcher(`${prefix}.*${v.slice(1)}`);
  if (v.endsWith('*')) return { prefix: prefix + v.slice(0, -1) };
  return { exact: prefix + v };
}

/** Istio's HeaderMatcher: `*` -> present, `*x` -> suffix, `x*` -> prefix, else exact. */
function headerMatcher(name: string, v: string): Json {
  if (v === '*') return { name, present_match: true };
  if (v.startsWith('*')) return { name, string_match: { suffix: v.slice(1) } };
  if (v.endsWith('*')) return { name, string_match: { prefix: v.slice(0, -1) } };
  return { name, string_match: { exact: v } };
}

/**
 * Istio's HostMatcher: like headerMatcher on `:authority` but case-insensitive. The value is
 * matched as the client sent it, port included: `example.com` does not match `example.com:8080`,
 * `example.com*` matches both (Istio's documented behaviour; see its security best practices).
 */
function hostMatcher(v: string): Json {
  const name = ':authority';
  if (v === '*') return { name, present_match: true };
  if (v.startsWith('*')) return { name, string_match: { suffix: v.slice(1), ignore_case: true } };
  if (v.endsWith('*')) return { name, string_match: { prefix: v.slice(0, -1), ignore_case: true } };
  return { name, string_match: { exact: v, ignore_case: true } };
}

/**
 * Istio's path templates (`/{*}/admin`, `/api/{**}`): `{*}` is one path segment, `{**}` any number
 * of segments. Istio emits Envoy's uri_template matcher; Weft emits the equivalent RE2 regex, which
 * every RBAC implementation already supports.
 */
function pathTemplateRegex(template: string): string {
  return template
    .split(/(\{\*\*\}|\{\*\})/)
    .map((part) => (part === '{*}' ? '[^/]+' : part === '{**}' ? '.*' : quoteMeta(part)))
    .join('');
}

function pathMatcher(v: string): Json {
  if (v.includes('{*}') || v.includes('{**}')) return { path: regexMatcher(pathTemplateRegex(v)) };
  return { path: stringMatcherWithPrefix(v) };
}

function metadataMatcher(filter: string, keys: readonly string[], value: Json): Json {
  return { filter, path: keys.map((key) => ({ key })), value };
}

// ---------------------------------------------------------------------------------------------
// Generators: one value of one field -> a permission or a principal (Istio's generator.go)

type Generate = (value: string, forTcp: boolean) => Json;

const SPIFFE_PREFIX = 'spiffe://';

const permissions = {
  host: (key: string): Generate => (v, tcp) => (tcp ? httpOnly(key) : { header: hostMatcher(v) }),
  method: (key: string): Generate => (v, tcp) => (tcp ? httpOnly(key) : { header: headerMatcher(':method', v) }),
  path: (key: string): Generate => (v, tcp) => (tcp ? httpOnly(key) : { url_path: pathMatcher(v) }),
  port: (): Generate => (v) => ({ destination_port: Number(v) }),
  destinationIp: (): Generate => (v) => ({ destination_ip: cidrRange(v) }),
  sni: (): Generate => (v) => ({ requested_server_name: stringMatcherWithPrefix(v) }),
  /** `experimental.envoy.filters.a.b[c]`: dynamic metadata `c` of filter `envoy.filters.a.b`; `[v]` = list. */
  envoyFilter: (key: string): Generate => (v) => {
    const [filter, field] = key.slice('experimental.'.length, -1).split('[');
    const list = v.startsWith('[') && v.endsWith(']');
    const string = { string_match: stringMatcherWithPrefix(list ? v.slice(1, -1) : v) };
    return { metadata: metadataMatcher(filter, [field], list ? { list_match: { one_of: string } } : string) };
  },
};

function authenticated(principalName: Json): Json {
  return { authenticated: { principal_name: principalName } };
}

function authnMetadata(keys: readonly string[], value: Json): Json {
  return { metadata: metadataMatcher(AUTHN_METADATA, keys, value) };
}

const principals = {
  /** Peer identity `cluster.local/ns/x/sa/y` from the mTLS certificate (spiffe:// added). */
  principal: (): Generate => (v) => authenticated(stringMatcherWithPrefix(v, SPIFFE_PREFIX)),
  namespace: (): Generate => (v) => authenticated(regexMatcher(`.*/ns/${v.replace(/\*/g, '.*')}/.*`)),
  /** `sa` (in the policy's namespace) or `ns/sa` (Istio 1.23's serviceAccounts). */
  serviceAccount: (policyNamespace: string): Generate => (v) => {
    const slash = v.indexOf('/');
    const [ns, sa] = slash >= 0 ? [v.slice(0, slash), v.slice(slash + 1)] : [policyNamespace, v];
    return authenticated(regexMatcher(`spiffe://.+/ns/${ns}/(.+/|)sa/${sa}(/.+)?`));
  },
  directRemoteIp: (): Generate => (v) => ({ direct_remote_ip: cidrRange(v) }),
  remoteIp: (): Generate => (v) => ({ remote_ip: cidrRange(v) }),
  /** JWT `iss/sub`, `request.auth.audiences`, `request.auth.presenter`: string metadata. */
  authn: (key: string): Generate => (v, tcp) => (tcp ? httpOnly(key) : authnMetadata([key], { string_match: stringMatcherWithPrefix(v) })),
  /** `request.auth.claims[a][b]`: metadata path [request.auth.claims, a, b], a list holding the value. */
  claim: (key: string): Generate => (v, tcp) => {
    if (tcp) return httpOnly(key);
    const names = bracketNames(key.slice('request.auth.claims'.length));
    return authnMetadata(['request.auth.claims', ...names], { list_match: { one_of: { string_match: stringMatcherWithPrefix(v) } } });
  },
  header: (key: string): Generate => (v, tcp) => {
    if (tcp) return httpOnly(key);
    return { header: headerMatcher(bracketNames(key.slice('request.headers'.length))[0], v) };
  },
};

function httpOnly(key: string): never {
  throw new HttpOnly(key);
}

/** `[a][b.c]` -> ['a', 'b.c'] (Istio's extractNameInNestedBrackets). */
function bracketNames(text: string): string[] {
  return [...text.matchAll(/\[([^\]]+)\]/g)].map((m) => m[1]);
}

// ---------------------------------------------------------------------------------------------
// The rule model (Istio's model.go)

interface Field {
  key: string;
  values: readonly string[];
  notValues: readonly string[];
  generate: Generate;
}

function field(key: string, generate: Generate, values: readonly string[] | undefined, notValues: readonly string[] | undefined): Field[] {
  return values?.length || notValues?.length ? [{ key, values: values ?? [], notValues: notValues ?? [], generate }] : [];
}

/** The `when` conditions of a rule, split into permission and principal fields in Istio's way. */
function conditionFields(when: readonly AuthorizationCondition[], policyNamespace: string): { permission: Field[]; principal: Field[] } {
  const permission: Field[] = [];
  const principal: Field[] = [];
  for (const c of when) {
    const k = c.key;
    const add = (list: Field[], g: Generate) => list.push(...field(k, g, c.values, c.notValues));
    if (k === 'destination.ip') add(permission, permissions.destinationIp());
    else if (k === 'destination.port') add(permission, permissions.port());
    else if (k === 'connection.sni') add(permission, permissions.sni());
    else if (k.startsWith('experimental.envoy.filters.')) add(permission, permissions.envoyFilter(k));
    else if (k === 'source.ip') add(principal, principals.directRemoteIp());
    else if (k === 'remote.ip') add(principal, principals.remoteIp());
    else if (k === 'source.namespace') add(principal, principals.namespace());
    else if (k === 'source.serviceAccount') add(principal, principals.serviceAccount(policyNamespace));
    else if (k === 'source.principal') add(principal, principals.principal());
    else if (k === 'request.auth.principal' || k === 'request.auth.audiences' || k === 'request.auth.presenter') add(principal, principals.authn(k));
    else if (k.startsWith('request.headers')) add(principal, principals.header(k));
    else if (k.startsWith('request.auth.claims')) add(principal, principals.claim(k));
    // Validation rejects other keys.
  }
  return { permission, principal };
}

/** from.source fields, in the order Istio's model puts them first (insertFront), then the conditions. */
function sourceFields(s: AuthorizationSource, policyNamespace: string): Field[] {
  return [
    ...field('source.principal', principals.principal(), s.principals, s.notPrincipals),
    ...field('request.auth.principal', principals.authn('request.auth.principal'), s.requestPrincipals, s.notRequestPrincipals),
    ...field('source.serviceAccount', principals.serviceAccount(policyNamespace), s.serviceAccounts, s.notServiceAccounts),
    ...field('source.namespace', principals.namespace(), s.namespaces, s.notNamespaces),
    ...field('remote.ip', principals.remoteIp(), s.remoteIpBlocks, s.notRemoteIpBlocks),
    ...field('source.ip', principals.directRemoteIp(), s.ipBlocks, s.notIpBlocks),
  ];
}

function operationFields(o: AuthorizationOperation): Field[] {
  return [
    ...field('request.host', permissions.host('hosts'), o.hosts, o.notHosts),
    ...field('request.method', permissions.method('methods'), o.methods, o.notMethods),
    ...field('request.path', permissions.path('paths'), o.paths, o.notPaths),
    ...field('destination.port', permissions.port(), o.ports, o.notPorts),
  ];
}

/**
 * One side of a policy: AND over fields of (OR over values) and NOT(OR over notValues); `any` when
 * there is no field. On a TCP chain an HTTP-only field throws for ALLOW (the rule is dropped: allow
 * less) and is left out otherwise (DENY/AUDIT/CUSTOM match more: deny more), as Istio does.
 */
function generateSide(fields: readonly Field[], forTcp: boolean, allow: boolean, kind: 'permission' | 'principal'): Json {
  const [and, or, not] = kind === 'permission' ? (['and_rules', 'or_rules', 'not_rule'] as const) : (['and_ids', 'or_ids', 'not_id'] as const);
  const list = kind === 'permission' ? 'rules' : 'ids';
  const items: Json[] = [];
  const build = (f: Field, values: readonly string[]): Json[] => {
    const out: Json[] = [];
    for (const v of values) {
      try {
        out.push(f.generate(v, forTcp));
      } catch (err) {
        if (!(err instanceof HttpOnly) || allow) throw err;
      }
    }
    return out;
  };
  for (const f of fields) {
    const yes = build(f, f.values);
    if (yes.length) items.push({ [or]: { [list]: yes } });
    const no = build(f, f.notValues);
    if (no.length) items.push({ [not]: { [or]: { [list]: no } } });
  }
  if (items.length === 0) items.push({ any: true });
  return { [and]: { [list]: items } };
}

/** An Envoy RBAC policy for one rule, or undefined when the rule cannot apply (ALLOW on TCP with HTTP fields). */
export function generateRulePolicy(rule: AuthorizationRule, policyNamespace: string, forTcp: boolean, action: RbacAction): Json | undefined {
  const when = conditionFields(rule.when ?? [], policyNamespace);
  const principalLists = rule.from?.length ? rule.from.map((f) => [...sourceFields(f.source ?? {}, policyNamespace), ...when.principal]) : [when.principal];
  const permissionLists = rule.to?.length ? rule.to.map((t) => [...operationFields(t.operation ?? {}), ...when.permission]) : [when.permission];
  const allow = action === 'ALLOW';
  try {
    return {
      permissions: permissionLists.map((l) => generateSide(l, forTcp, allow, 'permission')),
      principals: principalLists.map((l) => generateSide(l, forTcp, allow, 'principal')),
    };
  } catch (err) {
    if (err instanceof HttpOnly) return undefined;
    throw err;
  }
}

/** Istio's rule name, which RBAC reports as the effective policy. */
export function rbacPolicyName(policy: AuthorizationPolicyResource, rule: number): string {
  return `ns[${policy.metadata.namespace}]-policy[${policy.metadata.name}]-rule[${rule}]`;
}

/** The RBAC `rules` for the policies of one action. */
function rbacRules(policies: readonly AuthorizationPolicyResource[], action: RbacAction, forTcp: boolean): Json {
  const out: Json = {};
  for (const policy of policies) {
    (policy.spec.rules ?? []).forEach((rule, i) => {
      const generated = generateRulePolicy(rule ?? {}, policy.metadata.namespace, forTcp, action);
      if (generated) out[rbacPolicyName(policy, i)] = generated;
    });
  }
  return { action, policies: out };
}

/** Policies that apply to one proxy, by action. */
export interface AuthorizationPoliciesByAction {
  readonly custom: readonly AuthorizationPolicyResource[];
  readonly deny: readonly AuthorizationPolicyResource[];
  readonly audit: readonly AuthorizationPolicyResource[];
  readonly allow: readonly AuthorizationPolicyResource[];
}

export function groupByAction(policies: readonly AuthorizationPolicyResource[]): AuthorizationPoliciesByAction {
  const of = (a: AuthorizationAction) => policies.filter((p) => (p.spec.action ?? 'ALLOW') === a);
  return { custom: of('CUSTOM'), deny: of('DENY'), audit: of('AUDIT'), allow: of('ALLOW') };
}

/**
 * The RBAC filters for a proxy, in order: CUSTOM, DENY, AUDIT (RBAC action LOG), ALLOW; a filter
 * only for an action some policy has. So: no ALLOW policy = allow all; an ALLOW policy without
 * rules yields an ALLOW filter without policies = deny all ("allow-nothing"); a DENY policy whose
 * rules list is empty denies nothing.
 *
 * CUSTOM delegates to an external authorizer in Istio (ext_authz). Weft has none, so CUSTOM fails
 * closed: its rules become a DENY filter, denying every request the external authorizer would
 * have been asked about.
 */
function rbacFilters(byAction: AuthorizationPoliciesByAction, forTcp: boolean): Json[] {
  const steps: [readonly AuthorizationPolicyResource[], RbacAction][] = [
    [byAction.custom, 'DENY'],
    [byAction.deny, 'DENY'],
    [byAction.audit, 'LOG'],
    [byAction.allow, 'ALLOW'],
  ];
  const out: Json[] = [];
  for (const [policies, action] of steps) {
    if (policies.length === 0) continue;
    const rules = rbacRules(policies, action, forTcp);
    out.push(
      forTcp
        ? { name: FILTER.RbacNetwork, typed_config: { '@type': TYPE.RbacNetwork, rules, stat_prefix: TCP_STAT_PREFIX } }
        : { name: FILTER.RbacHttp, typed_config: { '@type': TYPE.RbacHttp, rules } },
    );
  }
  return out;
}

/** `envoy.filters.http.rbac` filters for HTTP connection managers (before the router). */
export function buildHttpRbacFilters(byAction: AuthorizationPoliciesByAction): Json[] {
  return rbacFilters(byAction, false);
}

/** `envoy.filters.network.rbac` filters for TCP chains (before tcp_proxy). */
export function buildTcpRbacFilters(byAction: AuthorizationPoliciesByAction): Json[] {
  return rbacFilters(byAction, true);
}
