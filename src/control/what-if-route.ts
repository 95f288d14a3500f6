// What-if routing (`weft route`): how one HTTP request would be handled, answered by the code that
// handles it for real. The proxy is picked (the --from workload's sidecar, else the ingress gateway
// whose Gateway serves the URL), its xDS is produced by the same translator the ADS server uses
// (translateForProxy) and put through the same protobuf encode/decode, compiled by the proxy's own
// compile functions (listener, route config, cluster, endpoints), and the request walks the
// proxy's own matchers: listener and filter chain (filter-chain-match.ts), virtual host and route
// (route-config.ts findVirtualHost, route-matching.ts selectRoute), the route's settings
// (filterOverride, retryPolicyFor, mirrorsFor, upstreamAuthority/upstreamPath, redirectLocation)
// and RBAC (evaluateRbac) at the first hop and at each destination endpoint's sidecar. Nothing
// here decides routing itself; it only reports what those functions decide.
import type { MeshSnapshot } from '../model/snapshot';
import { APP_ADDRESS_METADATA, appAddressFor, type ProxyNode } from '../model/proxy';
import type { Workload } from '../registry/types';
import { compileCluster } from '../proxy/config/cluster';
import { compileLoadAssignment } from '../proxy/config/endpoints';
import { compileListener } from '../proxy/config/listener';
import type {
  CompiledCluster,
  CompiledFilterChain,
  CompiledListener,
  CompiledLoadAssignment,
  CompiledRoute,
  CompiledRouteConfig,
  CompiledVirtualHost,
  DownstreamTlsInfo,
  FaultSettings,
  ForwardAction,
  HeaderEdits,
  HttpConnectionManagerConfig,
  RequestView,
} from '../proxy/config/model';
import { requestHeader } from '../proxy/config/model';
import { addressBytes, evaluateRbac, type AuthzSubject } from '../proxy/config/rbac';
import { compileRouteConfig, findVirtualHost } from '../proxy/config/route-config';
import { selectTransportSocket, type UpstreamTlsSettings } from '../proxy/config/upstream-tls';
import type { Json, Validation } from '../proxy/config/validation';
import { upstreamAuthority, upstreamPath } from '../proxy/http/forwarder';
import { applyRequestEdits } from '../proxy/http/header-mutation';
import { redirectLocation, sanitizePath } from '../proxy/http/http-stream';
import { filterOverride, mirrorsFor, parseQuery, retryPolicyFor, selectRoute } from '../proxy/http/route-matching';
import { selectFilterChain } from '../proxy/listener/filter-chain-match';
import { findVirtualListener, listenerBindAddress } from '../proxy/listener/listener-manager';
import { decodeResource, encodeResource, TypeUrl } from '../xds/protos';
import { parseProxyNode, type Translator } from '../xds/translate';
import { ROUTE_ORIGIN_METADATA } from '../xds/translate/routes';

/** The port applications send to as HTTP_PROXY (the sidecar's virtualOutbound listener). */
export const SIDECAR_HTTP_PROXY_PORT = 15001;

/** The question: one request, from one workload (or from outside, through a gateway). */
export interface RouteQuestion {
  url: string;
  method?: string;
  /** Request headers, in order (repeated names are joined with a comma, as the proxy reads them). */
  headers?: readonly (readonly [string, string])[];
  /** A workload (WorkloadEntry name, or a connected gateway's name); absent: the ingress gateway serving the URL. */
  from?: string;
  /** Namespace of `from` (default `default`). */
  namespace?: string;
}

/** A refused question: HTTP status, one sentence, a hint. */
export class WhatIfError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

export interface ProxyAnswer {
  id: string;
  type: 'sidecar' | 'router';
  namespace: string;
  workload?: string;
  /** Connected to the control plane now; otherwise the node is built as `weft proxy` would present it. */
  connected: boolean;
  /** Why this proxy: "--from productpage-v1", "Gateway istio-system/bookinfo-gateway serves *:8080". */
  why: string;
  /** The SPIFFE identity its certificate carries. */
  identity: string;
}

export interface DestinationAnswer {
  cluster: string;
  /** Share of requests, in percent (100 for a single destination). */
  percent: number;
  weight?: number;
  host?: string;
  subset?: string;
  port?: number;
  /** Whether the client proxy has the cluster (otherwise: 503 NC). */
  known: boolean;
  endpoints: EndpointAnswer[];
}

export interface EndpointAnswer {
  address: string;
  port: number;
  health: string;
  workload?: string;
  /** Istio mutual TLS on the connection to it (transport socket chosen by the cluster). */
  mtls: boolean;
  authorization?: AuthorizationAnswer;
}

export interface AuthorizationAnswer {
  /** Where the decision is made: a proxy and its listener. */
  at: string;
  decision: 'ALLOW' | 'DENY';
  /** The RBAC policy that decided (Istio's `ns[NS]-policy[NAME]-rule[I]`), when one did. */
  policy?: string;
  /** The AuthorizationPolicy behind `policy`. */
  authorizationPolicy?: PolicyRef;
  /** A denial because no ALLOW policy matched: the ALLOW policies of the workload, none of which matched. */
  unmatchedAllowPolicies?: PolicyRef[];
  /** One sentence: "allowed by ...", "denied: no ALLOW policy matched", "no policy applies". */
  reason: string;
}

/** An AuthorizationPolicy rule, from Istio's RBAC policy name `ns[NS]-policy[NAME]-rule[I]`. */
export interface PolicyRef {
  namespace: string;
  name: string;
  rule: number;
}

export interface FaultAnswer {
  delay?: { fixedDelayMs: number; percent: number };
  abort?: { httpStatus?: number; grpcStatus?: number; percent: number };
  /** The fault's header conditions hold for this request. */
  applies: boolean;
}

export interface RouteAnswer {
  /** The config version asked about; with candidate files, the running version they sit on. */
  version?: string;
  candidate?: { files: string[]; warnings: string[] };
  request: { method: string; url: string; authority: string; path: string; headers: Record<string, string> };
  proxy: ProxyAnswer;
  listener?: { name: string; address: string; port: number; filterChain: string; routeConfig?: string; statPrefix?: string };
  virtualHost?: string;
  route?: {
    name: string;
    /** Position in the virtual host's route list. */
    index: number;
    virtualService?: { namespace: string; name: string };
    /** Istio's http[i] of the VirtualService. */
    httpIndex?: number;
    /** Which of http[i].match[] matched. */
    matchIndex?: number;
    /** runtime_fraction below 1: the route matches only this share of requests. */
    matchPercent?: number;
  };
  action?:
    | {
        kind: 'forward';
        destinations: DestinationAnswer[];
        /** Route timeout in ms; 0: none. */
        timeoutMs: number;
        retries?: { attempts: number; perTryTimeoutMs: number; retryOn: string[]; retriableStatusCodes: number[] };
        mirrors: { cluster: string; percent: number }[];
        rewrite?: { authority?: string; path?: string };
        requestHeaders?: { set: Record<string, string>; removed: string[] };
        responseHeaders?: { add: string[]; remove: string[] };
      }
    | { kind: 'redirect'; status: number; location: string }
    | { kind: 'direct'; status: number; body?: string };
  fault?: FaultAnswer;
  /** RBAC on the first proxy (gateways with policies), before routing takes effect. */
  authorization?: AuthorizationAnswer;
  /** What the client would get. */
  outcome: { status?: number; flag?: string; summary: string };
  notes: string[];
}

export interface WhatIfInput {
  snapshot: MeshSnapshot;
  /** Proxies connected now (preferred over nodes built from config). */
  connected: readonly ProxyNode[];
  translate: Translator;
  question: RouteQuestion;
}

const HTTP1_PROTOCOLS = ['http/1.1', 'http/1.0'];

/** Answers a RouteQuestion against `snapshot`; throws WhatIfError for questions it cannot answer. */
export function whatIfRoute(input: WhatIfInput): RouteAnswer {
  const { snapshot, question } = input;
  const url = parseUrl(question.url);
  const method = (question.method ?? 'GET').toUpperCase();
  const headers = headerRecord(question.headers ?? []);
  const notes: string[] = [];
  const trustDomain = snapshot.meshConfig.trustDomain;

  const picked = question.from ? proxyForWorkload(input, question.from, question.namespace ?? 'default') : gatewayForUrl(input, url);
  const client = new CompiledProxy(picked.node, snapshot, input.translate);
  const proxy: ProxyAnswer = {
    id: picked.node.id,
    type: picked.node.type === 'router' ? 'router' : 'sidecar',
    namespace: picked.node.namespace,
    ...(picked.node.workloadName ? { workload: picked.node.workloadName } : {}),
    connected: picked.connected,
    why: picked.why,
    identity: identityOf(picked.node, snapshot, trustDomain),
  };
  const base = { version: snapshot.version, proxy, notes };

  // Where the connection lands: the sidecar's HTTP_PROXY port, or the gateway's port.
  const clientIp = picked.node.ips[0] ?? '0.0.0.0';
  const dest = picked.node.type === 'sidecar' ? { ip: clientIp, port: SIDECAR_HTTP_PROXY_PORT } : { ip: clientIp, port: url.port };
  const requestSummary = { method, url: url.href, authority: url.authority, path: url.path, headers };
  const found = client.listenerFor(dest);
  if (!found) {
    throw new WhatIfError(
      404,
      `no listener of ${describeNode(picked.node)} accepts connections to ${dest.ip}:${dest.port}`,
      picked.node.type === 'router'
        ? `the Gateway's servers decide the gateway's ports; see them with \`weft get gateways -A\``
        : `the sidecar serves HTTP_PROXY on :${SIDECAR_HTTP_PROXY_PORT}; is ${picked.node.workloadName} an HTTP workload of the mesh?`,
    );
  }
  const { listener, bound } = found;
  const tls = url.scheme === 'https';
  const chain = selectFilterChain(listener, {
    destinationPort: dest.port,
    destinationIp: dest.ip,
    sourceIp: picked.node.type === 'sidecar' ? clientIp : '127.0.0.1',
    transportProtocol: tls ? 'tls' : 'raw_buffer',
    serverName: tls ? url.hostname : undefined,
    applicationProtocols: tls ? ['http/1.1'] : HTTP1_PROTOCOLS,
  });
  if (!chain) {
    return {
      ...base,
      request: requestSummary,
      listener: { name: listener.name, address: bound.address, port: bound.port, filterChain: '(none)' },
      outcome: { summary: `the connection is closed: no filter chain of listener ${listener.name} matches it` },
    };
  }
  if (chain.terminal.kind === 'tcp') {
    const cluster = chain.terminal.cluster ?? chain.terminal.weighted?.names.join(', ') ?? '';
    return {
      ...base,
      request: requestSummary,
      listener: { name: listener.name, address: bound.address, port: bound.port, filterChain: chain.name },
      outcome: { summary: `not routed as HTTP: the filter chain ${chain.name} proxies TCP to ${cluster}` },
    };
  }
  const hcm = chain.terminal;
  // An HTTP_PROXY request's absolute URI names the authority; at a gateway, Host does (curl -H 'host: ...').
  const authority = picked.node.type === 'sidecar' ? url.authority : (headers.host ?? url.authority);
  const view = new QuestionRequest({ method, url, authority, headers, hcm, remoteAddress: picked.node.type === 'sidecar' ? clientIp : '127.0.0.1', destinationPort: dest.port });
  const listenerAnswer = {
    name: listener.name,
    address: bound.address,
    port: bound.port,
    filterChain: chain.name,
    ...(hcm.routeConfigName ? { routeConfig: hcm.routeConfigName } : {}),
    statPrefix: hcm.statPrefix,
  };
  const answer: RouteAnswer = {
    ...base,
    request: { ...requestSummary, path: view.path },
    listener: listenerAnswer,
    outcome: { summary: '' },
  };

  // The HTTP filters run before the router, with or without a route: jwt_authn, RBAC, fault.
  if (hcm.filters.some((f) => f.kind === 'jwt_authn')) notes.push(`jwt_authn runs on ${describeNode(picked.node)}: tokens are not checked here (the request is taken as it is)`);
  const firstHop = authorize(hcm, view, undefined, `${describeNode(picked.node)} listener ${listener.name}`);
  if (firstHop) answer.authorization = firstHop;

  const rc = hcm.inlineRouteConfig ?? (hcm.routeConfigName ? client.routeConfig(hcm.routeConfigName) : undefined);
  const vh = rc ? findVirtualHost(rc, view.authority) : undefined;
  const route = vh ? selectRoute(vh, view, () => 0) : undefined;
  if (vh) answer.virtualHost = vh.name;
  if (rc && vh && route) answer.route = describeRoute(rc, vh, route);

  if (firstHop?.decision === 'DENY') {
    answer.outcome = { status: 403, summary: `403 RBAC: access denied on ${describeNode(picked.node)} (${firstHop.reason})` };
    return answer;
  }
  if (!rc) {
    answer.outcome = { status: 404, flag: 'NR', summary: `404: the route configuration ${hcm.routeConfigName ?? ''} is missing` };
    return answer;
  }
  if (!vh || !route) {
    answer.outcome = {
      status: 404,
      flag: 'NR',
      summary: vh ? `404 NR: no route of virtual host ${vh.name} matches ${method} ${view.path}` : `404 NR: no virtual host of ${rc.name} serves the authority ${view.authority}`,
    };
    return answer;
  }

  const action = route.action;
  const faultFilter = hcm.filters.find((f) => f.kind === 'fault');
  if (action.kind === 'direct') {
    answer.action = { kind: 'direct', status: action.status, ...(action.body ? { body: action.body.toString('utf8') } : {}) };
    answer.outcome = { status: action.status, summary: `${action.status}: a direct response from ${describeNode(picked.node)}` };
    return answer;
  }
  if (action.kind === 'redirect') {
    const location = redirectLocation(action, view, route);
    answer.action = { kind: 'redirect', status: action.status, location };
    answer.outcome = { status: action.status, summary: `${action.status} redirect to ${location}` };
    return answer;
  }

  // Forward: destinations, policies, then what each destination's sidecar decides.
  const fault = faultFilter ? describeFault(filterOverride('fault', undefined, route, vh), faultFilter.kind === 'fault' ? faultFilter.settings : undefined, view) : undefined;
  if (fault) answer.fault = fault;
  const upstream = upstreamRequest(action, route, vh, rc, view);
  const destinations = forwardDestinations(action, view, client, notes);
  for (const d of destinations) {
    for (const e of d.endpoints) {
      const authorization = destinationAuthorization(input, e, method, picked.node, proxy.identity, upstream, notes);
      if (authorization) e.authorization = authorization;
    }
  }
  const retry = retryPolicyFor(action, vh);
  answer.action = {
    kind: 'forward',
    destinations,
    timeoutMs: action.timeoutMs,
    ...(retry
      ? {
          retries: {
            attempts: retry.numRetries,
            perTryTimeoutMs: retry.perTryTimeoutMs,
            retryOn: [...retry.on],
            retriableStatusCodes: [...retry.retriableStatusCodes],
          },
        }
      : {}),
    mirrors: mirrorsFor(action, vh).map((m) => ({ cluster: m.cluster, percent: round(m.probability * 100) })),
    ...(upstream.rewrite ? { rewrite: upstream.rewrite } : {}),
    ...(upstream.requestHeaders ? { requestHeaders: upstream.requestHeaders } : {}),
    ...(upstream.responseHeaders ? { responseHeaders: upstream.responseHeaders } : {}),
  };
  answer.outcome = forwardOutcome(destinations, fault);
  return answer;
}

// ---------------------------------------------------------------------------------------------
// Picking the proxy

interface PickedProxy {
  node: ProxyNode;
  connected: boolean;
  why: string;
}

function proxyForWorkload(input: WhatIfInput, name: string, namespace: string): PickedProxy {
  const connected = input.connected.filter((p) => p.workloadName === name && p.namespace === namespace && p.type !== 'proxyless');
  const sidecar = connected.find((p) => p.type === 'sidecar') ?? connected[0];
  if (sidecar) return { node: sidecar, connected: true, why: `--from ${name}` };
  const workload = input.snapshot.registry.workloads.get(`${namespace}/${name}`);
  if (workload) return { node: sidecarNodeOf(workload), connected: false, why: `--from ${name} (not connected: its sidecar as \`weft proxy --workload ${name}\` would present it)` };
  const known = [...input.snapshot.registry.workloads.values()].filter((w) => w.namespace === namespace).map((w) => w.name);
  const gateways = input.connected.filter((p) => p.type === 'router' && p.namespace === namespace && p.workloadName).map((p) => p.workloadName!);
  const names = [...new Set([...known, ...gateways])].sort();
  throw new WhatIfError(
    404,
    `workload "${name}" not found in namespace "${namespace}"`,
    names.length ? `workloads in ${namespace}: ${names.join(', ')} (another namespace: -n NAMESPACE)` : `no workloads in namespace ${namespace}; list them with \`weft get workloadentries -A\``,
  );
}

/** The node `weft proxy --workload NAME` sends (src/cli/proxy.ts), for a sidecar that is not connected. */
function sidecarNodeOf(w: Workload): ProxyNode {
  return parseProxyNode({
    id: `sidecar~${w.address}~${w.name}.${w.namespace}~${w.namespace}.svc.cluster.local`,
    metadata: {
      NAMESPACE: w.namespace,
      WORKLOAD_NAME: w.name,
      LABELS: w.labels,
      INSTANCE_IPS: w.address,
      SERVICE_ACCOUNT: w.serviceAccount || 'default',
      INTERCEPTION_MODE: 'NONE',
      [APP_ADDRESS_METADATA]: appAddressFor(w.address),
    },
  });
}

function gatewayForUrl(input: WhatIfInput, url: ParsedUrl): PickedProxy {
  const gateways = input.snapshot.byKind.Gateway;
  for (const gw of gateways) {
    const server = gw.spec.servers.find((s) => s.port.number === url.port && s.hosts.some((h) => gatewayHostMatches(h, url.hostname)));
    if (!server) continue;
    const selector = gw.spec.selector ?? {};
    const matches = (labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);
    const why = `Gateway ${gw.metadata.namespace}/${gw.metadata.name} serves ${server.hosts.join(',')} on port ${url.port}`;
    const connected = input.connected.filter((p) => p.type === 'router' && matches(p.labels));
    // Prefer the gateway bound to the URL's address when several match.
    const node = connected.find((p) => p.ips.includes(url.hostname)) ?? connected[0];
    if (node) return { node, connected: true, why };
    const address = /^\d+\.\d+\.\d+\.\d+$/.test(url.hostname) ? url.hostname : '0.0.0.0';
    const name = 'ingressgateway';
    return {
      node: parseProxyNode({
        id: `router~${address}~${name}.${gw.metadata.namespace}~${gw.metadata.namespace}.svc.cluster.local`,
        metadata: { NAMESPACE: gw.metadata.namespace, WORKLOAD_NAME: name, LABELS: selector, INSTANCE_IPS: address, SERVICE_ACCOUNT: `${name}-service-account` },
      }),
      connected: false,
      why: `${why} (no gateway proxy with labels ${labelText(selector)} is connected: one is assumed)`,
    };
  }
  const ports = [...new Set(gateways.flatMap((g) => g.spec.servers.map((s) => s.port.number)))].sort((a, b) => a - b);
  throw new WhatIfError(
    404,
    `no Gateway serves ${url.hostname}:${url.port}, so no listener takes this request from outside the mesh`,
    `to ask how a workload's sidecar routes it, name the caller: --from WORKLOAD (e.g. --from productpage-v1)` +
      (ports.length ? `; Gateways serve port${ports.length > 1 ? 's' : ''} ${ports.join(', ')}` : '; no Gateway is configured'),
  );
}

/** Istio's Gateway hosts: `ns/host` or `host`, `*` or `*.suffix` wildcards. */
function gatewayHostMatches(pattern: string, host: string): boolean {
  const h = pattern.includes('/') ? pattern.slice(pattern.indexOf('/') + 1) : pattern;
  if (h === '*') return true;
  if (h.startsWith('*.')) return host.endsWith(h.slice(1));
  return h.toLowerCase() === host.toLowerCase();
}

function identityOf(node: ProxyNode, snapshot: MeshSnapshot, trustDomain: string): string {
  const workload = node.workloadName ? snapshot.registry.workloads.get(`${node.namespace}/${node.workloadName}`) : undefined;
  const sa = (typeof node.metadata.SERVICE_ACCOUNT === 'string' && node.metadata.SERVICE_ACCOUNT) || workload?.serviceAccount || 'default';
  return `spiffe://${trustDomain}/ns/${node.namespace}/sa/${sa}`;
}

function describeNode(node: ProxyNode): string {
  return `${node.type === 'router' ? 'gateway' : 'sidecar'} ${node.workloadName ?? node.id}.${node.namespace}`;
}

function labelText(labels: Record<string, string>): string {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',') || '(none)';
}

// ---------------------------------------------------------------------------------------------
// One proxy's config, as that proxy would compile it

/**
 * The translation for one proxy, each resource encoded and decoded as it travels over ADS, then
 * compiled by the proxy's own compile functions on first use. A resource the proxy would NACK is
 * an error here too.
 */
class CompiledProxy {
  private readonly generated: ReturnType<Translator>;
  private listeners?: CompiledListener[];
  private readonly routes = new Map<string, CompiledRouteConfig | undefined>();
  private readonly clusters = new Map<string, CompiledCluster | undefined>();
  private readonly assignments = new Map<string, CompiledLoadAssignment | undefined>();

  constructor(
    readonly node: ProxyNode,
    private readonly snapshot: MeshSnapshot,
    translate: Translator,
  ) {
    this.generated = translate(snapshot, node);
  }

  private compile<T>(typeUrl: string, name: string, compile: (raw: Json, version: string) => Validation<T>): T | undefined {
    const resource = this.generated[typeUrl]?.get(name);
    if (resource === undefined) return undefined;
    const raw = decodeResource<Json>(typeUrl, encodeResource(typeUrl, resource as object));
    const result = compile(raw, this.snapshot.version);
    if (!result.valid) throw new WhatIfError(500, `${describeNode(this.node)} would refuse its config (NACK): ${result.errors.join('; ')}`);
    return result.result;
  }

  allListeners(): CompiledListener[] {
    if (!this.listeners) {
      const names = [...(this.generated[TypeUrl.Listener]?.keys() ?? [])];
      this.listeners = names.map((n) => this.compile(TypeUrl.Listener, n, compileListener)!).filter(Boolean);
    }
    return this.listeners;
  }

  /**
   * The listener that takes a connection to `dest`, as the proxy's ListenerManager binds them
   * (0.0.0.0 listeners on the node's address), and, for an original-destination listener, the
   * bind_to_port=false listener it hands the connection to.
   */
  listenerFor(dest: { ip: string; port: number }): { listener: CompiledListener; bound: { address: string; port: number } } | undefined {
    const all = this.allListeners();
    const policy = { bindAddress: this.node.ips[0] ?? '0.0.0.0', portOverrides: new Map<number, number>() };
    for (const l of all) {
      if (!l.bindToPort) continue;
      const bound = listenerBindAddress(l, policy);
      if (bound.port !== dest.port || (bound.address !== dest.ip && bound.address !== '0.0.0.0')) continue;
      const capture = l.useOriginalDst || l.inspectors.has('original-dst');
      const owner = capture && dest.port !== l.port ? findVirtualListener(all.filter((v) => !v.bindToPort), dest) : undefined;
      return { listener: owner ?? l, bound };
    }
    return undefined;
  }

  routeConfig(name: string): CompiledRouteConfig | undefined {
    if (!this.routes.has(name)) this.routes.set(name, this.compile(TypeUrl.RouteConfiguration, name, compileRouteConfig));
    return this.routes.get(name);
  }

  cluster(name: string): CompiledCluster | undefined {
    if (!this.clusters.has(name)) this.clusters.set(name, this.compile(TypeUrl.Cluster, name, compileCluster));
    return this.clusters.get(name);
  }

  loadAssignment(cluster: CompiledCluster): CompiledLoadAssignment | undefined {
    if (cluster.loadAssignment) return cluster.loadAssignment;
    const name = cluster.edsServiceName ?? cluster.name;
    if (!this.assignments.has(name)) this.assignments.set(name, this.compile(TypeUrl.ClusterLoadAssignment, name, compileLoadAssignment));
    return this.assignments.get(name);
  }
}

// ---------------------------------------------------------------------------------------------
// The request as the proxy's matchers see it

interface ParsedUrl {
  href: string;
  scheme: 'http' | 'https';
  hostname: string;
  port: number;
  /** host:port as the client sends it (the port left out when it is the scheme's default). */
  authority: string;
  /** Path and query. */
  path: string;
}

function parseUrl(text: string): ParsedUrl {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new WhatIfError(400, `"${text}" is not a URL`, 'give one like http://reviews:9080/reviews/0');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new WhatIfError(400, `the URL's scheme is ${u.protocol.replace(':', '')}; weft route answers for http and https`);
  const scheme = u.protocol === 'https:' ? 'https' : 'http';
  const port = u.port ? Number(u.port) : scheme === 'https' ? 443 : 80;
  const hostname = u.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return { href: u.href, scheme, hostname, port, authority: u.host.toLowerCase(), path: `${u.pathname}${u.search}` };
}

function headerRecord(list: readonly (readonly [string, string])[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [rawName, value] of list) {
    const name = rawName.trim().toLowerCase();
    if (!name) throw new WhatIfError(400, 'a header needs a name ("name: value")');
    out[name] = out[name] !== undefined ? `${out[name]},${value}` : value;
  }
  return out;
}

/** A RequestView (config/model.ts) built from a URL and headers instead of a live stream. */
class QuestionRequest implements RequestView {
  readonly method: string;
  readonly authority: string;
  readonly path: string;
  readonly scheme: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly remoteAddress: string;
  readonly tls: DownstreamTlsInfo | undefined;
  readonly destinationPort: number;

  constructor(o: {
    method: string;
    url: ParsedUrl;
    authority: string;
    headers: Record<string, string>;
    hcm: HttpConnectionManagerConfig;
    remoteAddress: string;
    destinationPort: number;
    tls?: DownstreamTlsInfo;
    /** Already sanitized (a hop further on: the path as the upstream request carries it). */
    rawPath?: boolean;
  }) {
    this.method = o.method;
    this.authority = o.authority.toLowerCase();
    this.path = o.rawPath ? o.url.path : sanitizePath(o.url.path, o.hcm).path;
    this.scheme = o.url.scheme;
    this.headers = { ...o.headers };
    this.remoteAddress = o.remoteAddress;
    this.tls = o.tls;
    this.destinationPort = o.destinationPort;
  }

  pathOnly(): string {
    const q = this.path.indexOf('?');
    return q < 0 ? this.path : this.path.slice(0, q);
  }

  query(): ReadonlyMap<string, string> {
    return parseQuery(this.path);
  }

  header(name: string): string | undefined {
    return requestHeader(this, name);
  }
}

/** RBAC's view of a request (rbac-filter.ts's HttpAuthzSubject, for a request that is not live). */
class QuestionSubject implements AuthzSubject {
  constructor(
    readonly request: QuestionRequest,
    private readonly destinationAddress: string | undefined,
  ) {}
  get tls() {
    return this.request.tls;
  }
  get requestedServerName(): string {
    return this.request.tls?.serverName ?? '';
  }
  get destinationPort(): number {
    return this.request.destinationPort;
  }
  destinationIp(): Uint8Array | undefined {
    return addressBytes(this.destinationAddress);
  }
  directRemoteIp(): Uint8Array | undefined {
    return addressBytes(this.request.remoteAddress);
  }
  remoteIp(): Uint8Array | undefined {
    return addressBytes(this.request.remoteAddress);
  }
  metadata(): Readonly<Record<string, unknown>> | undefined {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Routes, destinations, policies

function describeRoute(rc: CompiledRouteConfig, vh: CompiledVirtualHost, route: CompiledRoute): NonNullable<RouteAnswer['route']> {
  const index = vh.routes.indexOf(route);
  const rawVh = ((rc.raw.virtual_hosts ?? []) as Json[])[rc.virtualHosts.indexOf(vh)];
  const raw = ((rawVh?.routes ?? []) as Json[])[index];
  const meta = (raw?.metadata?.filter_metadata ?? {}) as Json;
  const config = typeof meta.istio?.config === 'string' ? /\/namespaces\/([^/]+)\/virtual-service\/([^/]+)$/.exec(meta.istio.config) : null;
  const origin = meta[ROUTE_ORIGIN_METADATA] as Json | undefined;
  return {
    name: route.name,
    index,
    ...(config ? { virtualService: { namespace: config[1], name: config[2] } } : {}),
    ...(typeof origin?.http_index === 'number' ? { httpIndex: origin.http_index } : {}),
    ...(typeof origin?.match_index === 'number' ? { matchIndex: origin.match_index } : {}),
    ...(route.fraction < 1 ? { matchPercent: round(route.fraction * 100) } : {}),
  };
}

function describeFault(override: FaultSettings | null | undefined, filterDefault: FaultSettings | undefined, req: RequestView): FaultAnswer | undefined {
  const settings = override === undefined ? filterDefault : override;
  if (!settings || (!settings.delay && !settings.abort)) return undefined;
  const lookup = (name: string) => req.header(name);
  return {
    ...(settings.delay ? { delay: { fixedDelayMs: settings.delay.fixedDelayMs, percent: round(settings.delay.probability * 100) } } : {}),
    ...(settings.abort
      ? {
          abort: {
            ...(settings.abort.httpStatus !== undefined ? { httpStatus: settings.abort.httpStatus } : {}),
            ...(settings.abort.grpcStatus !== undefined ? { grpcStatus: settings.abort.grpcStatus } : {}),
            percent: round(settings.abort.probability * 100),
          },
        }
      : {}),
    applies: settings.headers.every((h) => h.test(lookup)),
  };
}

interface UpstreamRequest {
  authority: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  rewrite?: { authority?: string; path?: string };
  requestHeaders?: { set: Record<string, string>; removed: string[] };
  responseHeaders?: { add: string[]; remove: string[] };
}

/** The request the client proxy sends upstream: rewrites and header edits as the forwarder makes them. */
function upstreamRequest(action: ForwardAction, route: CompiledRoute, vh: CompiledVirtualHost, rc: CompiledRouteConfig, req: QuestionRequest): UpstreamRequest {
  const authority = upstreamAuthority(action, undefined, req);
  const path = upstreamPath(action, route, req.path);
  const headers: Record<string, string | string[] | undefined> = { ...req.headers };
  const levels: HeaderEdits[] = [route.requestHeaders, vh.requestHeaders, rc.requestHeaders];
  if (rc.mostSpecificHeaderMutationsWins) levels.reverse();
  for (const edits of levels) applyRequestEdits(headers, edits, req);
  const set: Record<string, string> = {};
  const removed: string[] = [];
  for (const [k, v] of Object.entries(headers)) {
    const before = req.headers[k];
    if (v === undefined) {
      if (before !== undefined) removed.push(k);
    } else if (String(v) !== String(before)) set[k] = Array.isArray(v) ? v.join(',') : v;
  }
  const responseAdd = [route.responseHeaders, vh.responseHeaders, rc.responseHeaders].flatMap((e) => e.add.map((a) => `${a.key}: ${typeof a.value === 'string' ? a.value : '(per request)'}`));
  const responseRemove = [route.responseHeaders, vh.responseHeaders, rc.responseHeaders].flatMap((e) => [...e.remove]);
  const rewrite = {
    ...(authority !== req.authority ? { authority } : {}),
    ...(path !== req.path ? { path } : {}),
  };
  return {
    authority,
    path,
    headers,
    ...(Object.keys(rewrite).length ? { rewrite } : {}),
    ...(Object.keys(set).length || removed.length ? { requestHeaders: { set, removed } } : {}),
    ...(responseAdd.length || responseRemove.length ? { responseHeaders: { add: responseAdd, remove: responseRemove } } : {}),
  };
}

/** `outbound|9080|v1|reviews.default.svc.cluster.local` -> host, subset, port. */
function parseClusterName(name: string): { host?: string; subset?: string; port?: number } {
  const parts = name.split('|');
  if (parts.length !== 4) return {};
  return { host: parts[3], port: Number(parts[1]) || undefined, ...(parts[2] ? { subset: parts[2] } : {}) };
}

function forwardDestinations(action: ForwardAction, req: RequestView, client: CompiledProxy, notes: string[]): DestinationAnswer[] {
  const targets: { cluster: string; percent: number; weight?: number }[] = [];
  if (action.weighted) {
    const total = action.weighted.total;
    for (const c of action.weighted.choices) targets.push({ cluster: c.name, weight: c.weight, percent: round((c.weight / total) * 100) });
  } else if (action.cluster) {
    targets.push({ cluster: action.cluster, percent: 100 });
  } else if (action.clusterHeader) {
    const value = req.header(action.clusterHeader) ?? '';
    notes.push(`the cluster is named by the request header ${action.clusterHeader}`);
    targets.push({ cluster: value, percent: 100 });
  }
  return targets.map((t) => {
    const cluster = t.cluster ? client.cluster(t.cluster) : undefined;
    const assignment = cluster ? client.loadAssignment(cluster) : undefined;
    const endpoints: EndpointAnswer[] = (assignment?.endpoints ?? []).map((e) => {
      const tls = cluster ? selectTransportSocket(cluster.transportSocketMatches, cluster.tls, e.transportSocketMetadata) : undefined;
      const answer: EndpointAnswer = { address: e.address, port: e.port, health: e.health, mtls: tls !== undefined };
      if (tls) endpointTls.set(answer, tls);
      return answer;
    });
    return { cluster: t.cluster, percent: t.percent, ...(t.weight !== undefined ? { weight: t.weight } : {}), ...parseClusterName(t.cluster), known: cluster !== undefined, endpoints };
  });
}

/** The TLS settings the client's cluster uses for an endpoint (Istio mTLS: the workload certificate). */
const endpointTls = new WeakMap<EndpointAnswer, UpstreamTlsSettings>();

/**
 * Authorization at the destination endpoint's sidecar: the workload behind the address, its
 * translation, the listener bound on address:port, the filter chain for the client's transport
 * (TLS with the client's ALPN and SNI under mesh mTLS, else plaintext HTTP/1.1), and that chain's
 * RBAC filters on the request as the client proxy sends it.
 */
function destinationAuthorization(
  input: WhatIfInput,
  endpoint: EndpointAnswer,
  method: string,
  client: ProxyNode,
  clientIdentity: string,
  upstream: UpstreamRequest,
  notes: string[],
): AuthorizationAnswer | undefined {
  const tlsSettings = endpointTls.get(endpoint);
  const workload = [...input.snapshot.registry.workloads.values()].find((w) => w.address === endpoint.address);
  if (!workload) return undefined;
  endpoint.workload = `${workload.name}.${workload.namespace}`;
  const picked = proxyForWorkload(input, workload.name, workload.namespace);
  const proxy = new CompiledProxy(picked.node, input.snapshot, input.translate);
  const found = proxy.listenerFor({ ip: endpoint.address, port: endpoint.port });
  const at = `sidecar ${workload.name}.${workload.namespace} (${endpoint.address}:${endpoint.port})`;
  if (!found) {
    notes.push(`${at}: no listener of its sidecar binds ${endpoint.address}:${endpoint.port}; the connection would be refused`);
    return undefined;
  }
  const clientIp = client.ips[0] ?? '127.0.0.1';
  const chain: CompiledFilterChain | undefined = selectFilterChain(found.listener, {
    destinationPort: endpoint.port,
    destinationIp: endpoint.address,
    sourceIp: clientIp,
    transportProtocol: tlsSettings ? 'tls' : 'raw_buffer',
    serverName: tlsSettings?.sni,
    applicationProtocols: tlsSettings ? tlsSettings.alpn : HTTP1_PROTOCOLS,
  });
  if (!chain) {
    return { at, decision: 'DENY', reason: `no filter chain accepts ${tlsSettings ? 'mutual TLS' : 'plaintext'} from ${describeNode(client)}: the connection is closed` };
  }
  if (chain.terminal.kind !== 'http') return { at, decision: 'ALLOW', reason: `the port is proxied as TCP (network RBAC not evaluated)` };
  const hcm = chain.terminal;
  const tls: DownstreamTlsInfo | undefined = tlsSettings
    ? { serverName: tlsSettings.sni, version: 'TLSv1.3', peerPrincipal: clientIdentity, peerUriSans: [clientIdentity] }
    : undefined;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(upstream.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(',') : v;
  headers.host = upstream.authority;
  const req = new QuestionRequest({
    method,
    url: { href: '', scheme: 'http', hostname: '', port: endpoint.port, authority: upstream.authority, path: sanitizePath(upstream.path, hcm).path },
    authority: upstream.authority,
    headers,
    hcm,
    remoteAddress: clientIp,
    destinationPort: endpoint.port,
    tls,
    rawPath: true,
  });
  if (hcm.filters.some((f) => f.kind === 'jwt_authn')) notes.push(`${at}: jwt_authn runs there; tokens are not checked here`);
  return authorize(hcm, req, endpoint.address, at) ?? { at, decision: 'ALLOW', reason: 'no authorization policy applies' };
}

/**
 * The HCM's RBAC filters in chain order (Istio: CUSTOM, DENY, AUDIT, ALLOW), each evaluated by
 * the proxy's evaluateRbac; the first denial decides. Undefined when the chain has no RBAC.
 */
function authorize(hcm: HttpConnectionManagerConfig, req: QuestionRequest, destinationAddress: string | undefined, at: string): AuthorizationAnswer | undefined {
  const subject = new QuestionSubject(req, destinationAddress);
  const allowedBy: string[] = [];
  let enforced = false;
  for (const f of hcm.filters) {
    if (f.kind !== 'rbac' || !f.settings.rules) continue;
    const rules = f.settings.rules;
    if (rules.action === 'LOG') continue;
    enforced = true;
    const d = evaluateRbac(rules, subject);
    if (!d.allowed) {
      const reason =
        rules.action === 'DENY'
          ? `denied by ${policyText(d.matchedPolicy ?? '')}`
          : rules.policies.length === 0
            ? 'denied: an ALLOW policy with no rules allows nothing'
            : `denied: no ALLOW policy matches (${rules.policies.map((p) => policyText(p.name)).join(', ')})`;
      const unmatched = rules.action === 'ALLOW' ? rules.policies.map((p) => parsePolicyName(p.name)).filter((p): p is PolicyRef => p !== undefined) : [];
      return { at, decision: 'DENY', ...policyFields(d.matchedPolicy), ...(unmatched.length ? { unmatchedAllowPolicies: unmatched } : {}), reason };
    }
    if (rules.action === 'ALLOW' && d.matchedPolicy) allowedBy.push(d.matchedPolicy);
  }
  if (!enforced) return undefined;
  return allowedBy.length
    ? { at, decision: 'ALLOW', ...policyFields(allowedBy[0]), reason: `allowed by ${policyText(allowedBy[0])}` }
    : { at, decision: 'ALLOW', reason: 'no DENY policy matches and no ALLOW policy applies' };
}

function policyFields(policy: string | undefined): Pick<AuthorizationAnswer, 'policy' | 'authorizationPolicy'> {
  if (!policy) return {};
  const ref = parsePolicyName(policy);
  return { policy, ...(ref ? { authorizationPolicy: ref } : {}) };
}

/** `AuthorizationPolicy default/details-viewer rule 0`, or the RBAC policy name as it is. */
function policyText(policy: string): string {
  const ref = parsePolicyName(policy);
  return ref ? `AuthorizationPolicy ${ref.namespace}/${ref.name} rule ${ref.rule}` : policy;
}

function parsePolicyName(policy: string): PolicyRef | undefined {
  const m = /^ns\[([^\]]*)\]-policy\[([^\]]*)\]-rule\[(\d+)\]$/.exec(policy);
  return m ? { namespace: m[1], name: m[2], rule: Number(m[3]) } : undefined;
}

function forwardOutcome(destinations: DestinationAnswer[], fault: FaultAnswer | undefined): RouteAnswer['outcome'] {
  if (fault?.applies && fault.abort && fault.abort.percent >= 100) {
    const status = fault.abort.httpStatus ?? 200;
    return { status, flag: 'FI', summary: `${status}: fault abort (100% of requests)${fault.delay ? ` after a ${fault.delay.fixedDelayMs} ms delay (${fault.delay.percent}%)` : ''}` };
  }
  const prefix = fault?.applies && fault.abort && fault.abort.percent > 0 ? `${fault.abort.percent}% fault abort ${fault.abort.httpStatus ?? 200}; otherwise ` : '';
  const unknown = destinations.filter((d) => !d.known);
  if (destinations.length === 0 || unknown.length === destinations.length) return { status: 503, flag: 'NC', summary: `${prefix}503 NC: the proxy has no cluster ${unknown.map((d) => d.cluster).join(', ')}` };
  const reachable = destinations.filter((d) => d.known && d.endpoints.some((e) => e.health === 'HEALTHY' || e.health === 'UNKNOWN'));
  if (reachable.length === 0) return { status: 503, flag: 'UH', summary: `${prefix}503 UH: no healthy upstream` };
  const denied = reachable.filter((d) => d.endpoints.every((e) => e.authorization?.decision === 'DENY'));
  if (denied.length === reachable.length) {
    const first = denied[0].endpoints[0].authorization!;
    return { status: 403, summary: `${prefix}403 RBAC: access denied at ${first.at} (${first.reason})` };
  }
  const delay = fault?.applies && fault.delay && fault.delay.percent > 0 ? ` after a ${fault.delay.fixedDelayMs} ms fault delay (${fault.delay.percent}% of requests)` : '';
  const names = reachable.map((d) => `${d.cluster}${reachable.length > 1 ? ` (${d.percent}%)` : ''}`).join(', ');
  const someDenied = denied.length ? `; 403 where it goes to ${denied.map((d) => d.cluster).join(', ')}` : '';
  return { summary: `${prefix}forwarded to ${names}${delay}: the upstream answers${someDenied}` };
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
