// The control plane's config API (JSON over the monitoring address, 15014), what the `weft` CLI
// talks to: apply and delete resources (written to the config directory), list what is accepted,
// and report every connected proxy's xDS sync state. Malformed input gets a 4xx with a sentence
// saying what is wrong; nothing here may take the control plane down.
//
//   POST   /api/v1/apply[?dryRun=true&message=..&source=NAME]   YAML or JSON documents
//   POST   /api/v1/delete[?dryRun=true&ignoreNotFound=true]     YAML naming the resources
//   GET    /api/v1/resources[?kind=&namespace=&name=]           a Kubernetes-style List
//   GET    /api/v1/resources/:kind/:namespace/:name             one resource
//   DELETE /api/v1/resources/:kind/:namespace/:name[?dryRun=true]
//   GET    /api/v1/proxies                                      syncStatus() plus node facts
//   GET    /api/v1/version
//   GET    /api/v1/history                                      every kept config version, oldest first
//   GET    /api/v1/history/:version                             one version with its resources (a List)
//   GET    /api/v1/diff[?from=A&to=B]                           resource and field diff (default: the last change)
//   POST   /api/v1/rollback[?version=N&message=..&dryRun=true]  restore a version as a new one
//   POST   /api/v1/route    {url, from?, namespace?, method?, headers?, sources?} -> how the request
//                           would be handled (what-if routing, `weft route`; sources: candidate files)
//   /api/v1/rollouts..., /api/v1/apply-watches..., POST /api/v1/apply?watch=60s: rollout-api.ts
//   POST   /api/v1/tokens   {namespace, serviceAccount, workload} -> {path, token}: a bootstrap
//                           token file for a proxy without a WorkloadEntry (a gateway)
//
// Bodies of the apply and delete calls are YAML (application/yaml, text/yaml, text/plain, curl's
// default application/x-www-form-urlencoded, or no type), JSON (application/json: one object, a List, or an array of objects), or the CLI's bundle
// (application/vnd.weft.manifests+json: {"sources": [{"name", "content"}], "message"}), which
// keeps each file's name for the problems reported.
import type * as http from 'node:http';
import { CaError } from '../ca/ca-errors';
import { rootCertPath } from '../ca/state-paths';
import { lookupKind } from '../config/kinds';
import type { ConfigResource } from '../config/resources';
import { knownKindNames, MANIFEST_BUNDLE_TYPE, pluralName, type RouteRequestBody } from './config-api-contract';
import { diffResources } from './config-diff';
import { UnknownVersionError, type VersionRecord } from './config-history';
import { ConfigRequestError, type ManifestSource } from './config-writer';
import type { ControlPlane } from './control-plane';
import { applyWatchParams, rolloutRoutes, watchAfterApply } from './rollout-api';

export const WEFT_VERSION: string = require('../../../package.json').version;

/** Largest request body accepted. */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;

/** Istio's default proxy admin port (ProxyConfig.proxyAdminPort). */
export const DEFAULT_PROXY_ADMIN_PORT = 15000;

export interface ApiResponse {
  status: number;
  type: string;
  body: string;
  headers?: Record<string, string>;
}

type ApiHandler = (req: http.IncomingMessage, url: URL, params: string[]) => Promise<ApiResponse> | ApiResponse;

export interface ApiRoute {
  methods: Partial<Record<'GET' | 'POST' | 'DELETE', ApiHandler>>;
  params: string[];
}

function json(value: unknown, status = 200): ApiResponse {
  return { status, type: 'application/json', body: JSON.stringify(value, null, 2) + '\n' };
}

/** The route for `pathname`, or undefined when it is not a config API path. */
export function matchConfigApi(cp: ControlPlane, pathname: string): ApiRoute | undefined {
  const routes: [RegExp, ApiRoute['methods']][] = [
    [/^\/api\/v1\/apply$/, { POST: (req, url) => apply(cp, req, url) }],
    [/^\/api\/v1\/delete$/, { POST: (req, url) => deleteByManifest(cp, req, url) }],
    [/^\/api\/v1\/resources$/, { GET: (_req, url) => listResources(cp, url) }],
    [
      /^\/api\/v1\/resources\/([^/]+)\/([^/]+)\/([^/]+)$/,
      {
        GET: (_req, _url, [kind, namespace, name]) => getResource(cp, kind, namespace, name),
        DELETE: (_req, url, [kind, namespace, name]) => deleteByName(cp, url, kind, namespace, name),
      },
    ],
    [/^\/api\/v1\/proxies$/, { GET: () => json(proxies(cp)) }],
    [/^\/api\/v1\/version$/, { GET: () => json(version(cp)) }],
    [/^\/api\/v1\/tokens$/, { POST: (req) => createToken(cp, req) }],
    [/^\/api\/v1\/history$/, { GET: () => json(history(cp)) }],
    [/^\/api\/v1\/history\/([^/]+)$/, { GET: (_req, _url, [ref]) => json(versionWithResources(cp, ref)) }],
    [/^\/api\/v1\/diff$/, { GET: (_req, url) => json(diffVersions(cp, url)) }],
    [/^\/api\/v1\/rollback$/, { POST: (req, url) => rollback(cp, req, url) }],
    [/^\/api\/v1\/route$/, { POST: (req) => whatIfRoute(cp, req) }],
    ...rolloutRoutes(cp),
  ];
  for (const [pattern, methods] of routes) {
    const m = pattern.exec(pathname);
    if (!m) continue;
    let params: string[];
    try {
      params = m.slice(1).map(decodeURIComponent);
    } catch {
      params = m.slice(1);
    }
    return { methods, params };
  }
  return undefined;
}

/** Runs a handler, turning refusals into their status and anything unexpected into a 500. */
export async function runApiHandler(cp: ControlPlane, handler: ApiHandler, req: http.IncomingMessage, url: URL, params: string[]): Promise<ApiResponse> {
  try {
    return await handler(req, url, params);
  } catch (err) {
    if (err instanceof ConfigRequestError) return json({ error: err.message, ...err.details }, err.status);
    cp.logger.error('config_api_failed', { method: req.method, path: url.pathname, error: err });
    return json({ error: `internal error: ${(err as Error).message}` }, 500);
  }
}

// ---------------------------------------------------------------------------------------------
// apply / delete

async function apply(cp: ControlPlane, req: http.IncomingMessage, url: URL): Promise<ApiResponse> {
  const { sources, message } = await readManifests(req, url);
  const watch = applyWatchParams(url);
  const outcome = await cp.apply({ sources, dryRun: flag(url, 'dryRun'), message });
  return json(watchAfterApply(cp, watch, outcome));
}

async function deleteByManifest(cp: ControlPlane, req: http.IncomingMessage, url: URL): Promise<ApiResponse> {
  const { sources, message } = await readManifests(req, url);
  const outcome = await cp.deleteResources({ sources, dryRun: flag(url, 'dryRun'), ignoreNotFound: flag(url, 'ignoreNotFound'), message });
  return json(outcome);
}

async function deleteByName(cp: ControlPlane, url: URL, kind: string, namespace: string, name: string): Promise<ApiResponse> {
  const outcome = await cp.deleteResources({
    targets: [{ kind, namespace, name }],
    dryRun: flag(url, 'dryRun'),
    ignoreNotFound: flag(url, 'ignoreNotFound'),
    message: url.searchParams.get('message') ?? undefined,
  });
  return json(outcome);
}

/** A boolean query parameter: absent, true/false, 1/0, or kubectl's dryRun=All. */
function flag(url: URL, name: string): boolean {
  const value = url.searchParams.get(name);
  if (value === null) return false;
  const v = value.toLowerCase();
  if (v === '' || v === 'true' || v === '1' || v === 'all') return true;
  if (v === 'false' || v === '0') return false;
  throw new ConfigRequestError(400, `query parameter ${name}=${value} is not a boolean (use true or false)`);
}

async function readManifests(req: http.IncomingMessage, url: URL): Promise<{ sources: ManifestSource[]; message?: string }> {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  const text = await readBody(req);
  const queryMessage = url.searchParams.get('message') ?? undefined;
  const name = url.searchParams.get('source') || 'request';
  if (text.trim() === '') throw new ConfigRequestError(400, 'the request body is empty', { hint: 'send YAML or JSON documents' });

  if (type === MANIFEST_BUNDLE_TYPE) {
    const bundle = parseJson(text, 'manifest bundle') as { sources?: unknown; message?: unknown } | null;
    if (typeof bundle !== 'object' || bundle === null || !Array.isArray(bundle.sources)) {
      throw new ConfigRequestError(400, 'a manifest bundle is {"sources": [{"name": "...", "content": "..."}], "message": "..."}');
    }
    const sources = bundle.sources.map((s: unknown, i: number) => {
      const source = s as { name?: unknown; content?: unknown } | null;
      if (typeof source?.content !== 'string') throw new ConfigRequestError(400, `sources[${i}].content must be a string (the YAML or JSON text)`);
      return { name: typeof source.name === 'string' && source.name ? source.name : `source-${i}`, content: source.content };
    });
    if (bundle.message !== undefined && typeof bundle.message !== 'string') throw new ConfigRequestError(400, 'message must be a string');
    return { sources, message: queryMessage ?? (bundle.message as string | undefined) };
  }
  if (type === 'application/json') {
    const value = parseJson(text, 'JSON body');
    // An array of resources is taken as a List; JSON is YAML, so the same parser reads it.
    const document = Array.isArray(value) ? { apiVersion: 'v1', kind: 'List', items: value } : value;
    return { sources: [{ name, content: Array.isArray(value) ? JSON.stringify(document, null, 2) : text }], message: queryMessage };
  }
  // curl's default type (-d / --data-binary @file.yaml) is taken as the text it is.
  if (type === '' || type === 'text/plain' || type === 'application/x-www-form-urlencoded' || /^(application|text)\/(x-)?yaml$/.test(type)) {
    return { sources: [{ name, content: text }], message: queryMessage };
  }
  throw new ConfigRequestError(415, `content type ${type} is not supported`, {
    hint: `send application/yaml, application/json or ${MANIFEST_BUNDLE_TYPE}`,
  });
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ConfigRequestError(400, `the ${what} is not valid JSON: ${(err as Error).message}`);
  }
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        refused = true;
        reject(new ConfigRequestError(413, `the request body is larger than ${MAX_BODY_BYTES / (1024 * 1024)} MiB`, { hint: 'apply fewer resources at a time' }));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!refused) resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', (err) => {
      if (!refused) reject(new ConfigRequestError(400, `the request body could not be read: ${err.message}`));
    });
    req.on('close', () => {
      if (!refused && !req.complete) reject(new ConfigRequestError(400, 'the client went away before sending the whole body'));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// reading

function kindParam(kind: string) {
  const info = lookupKind(kind);
  if (!info) throw new ConfigRequestError(400, `unknown kind "${kind}"`, { hint: `known kinds: ${knownKindNames()}` });
  return info;
}

/** A resource as the API returns it: Kubernetes' shape, re-appliable as it is. */
function asObject(r: ConfigResource) {
  return { apiVersion: r.apiVersion, kind: r.kind, metadata: r.metadata, spec: r.spec };
}

function listResources(cp: ControlPlane, url: URL): ApiResponse {
  const kind = url.searchParams.get('kind');
  const namespace = url.searchParams.get('namespace');
  const name = url.searchParams.get('name');
  const info = kind ? kindParam(kind) : undefined;
  const snapshot = cp.current();
  const items = [...(snapshot?.resources.values() ?? [])]
    .filter((r) => (!info || r.kind === info.kind) && (!namespace || r.metadata.namespace === namespace) && (!name || r.metadata.name === name))
    .map(asObject);
  return json({ apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: snapshot?.version ?? '' }, items });
}

function getResource(cp: ControlPlane, kind: string, namespace: string, name: string): ApiResponse {
  const info = kindParam(kind);
  const found = cp.current()?.resources.get(`${info.kind}/${namespace}/${name}`);
  if (!found) throw new ConfigRequestError(404, `${pluralName(info)} "${name}" not found in namespace "${namespace}"`);
  return json(asObject(found));
}

/**
 * The ADS server's syncStatus(), each entry with what the proxy's node said about itself: its
 * workload addresses and name, and where its admin endpoint listens (loopback, on its own address
 * when that is a loopback address; Istio's PROXY_CONFIG.proxyAdminPort, default 15000).
 */
function proxies(cp: ControlPlane) {
  return cp.ads.syncStatus().map((status) => {
    const node = cp.proxyNode(status.connectionId);
    const ips = node?.ips ?? [];
    const proxyConfig = node?.metadata.PROXY_CONFIG as { proxyAdminPort?: unknown } | undefined;
    const port = Number(proxyConfig?.proxyAdminPort);
    const adminPort = Number.isInteger(port) && port > 0 && port < 65536 ? port : DEFAULT_PROXY_ADMIN_PORT;
    const adminHost = ips[0]?.startsWith('127.') ? ips[0] : '127.0.0.1';
    return {
      ...status,
      ips,
      ...(node?.workloadName ? { workloadName: node.workloadName } : {}),
      adminAddress: `${adminHost}:${adminPort}`,
    };
  });
}

function version(cp: ControlPlane) {
  const snapshot = cp.current();
  return {
    version: WEFT_VERSION,
    snapshot: snapshot?.version,
    resources: snapshot?.resources.size ?? 0,
    proxies: cp.ads.connectedProxies,
    configDir: cp.configDir,
    ...(cp.ca
      ? { ca: { trustDomain: cp.ca.trustDomain, rootFingerprint: cp.ca.rootFingerprint, notAfter: cp.ca.caNotAfter.toISOString(), origin: cp.ca.origin } }
      : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// bootstrap tokens

async function createToken(cp: ControlPlane, req: http.IncomingMessage): Promise<ApiResponse> {
  if (!cp.tokens || !cp.stateDir) {
    throw new ConfigRequestError(409, 'this control plane runs without a state directory, so it issues no tokens', { hint: 'start weft control with --state-dir' });
  }
  const body = parseJson(await readBody(req), 'token request') as Record<string, unknown> | null;
  const field = (name: string) => {
    const value = body?.[name];
    if (typeof value !== 'string' || value === '') throw new ConfigRequestError(400, `${name} is required (a string)`, { hint: 'send {"namespace", "serviceAccount", "workload"}' });
    return value;
  };
  const subject = { namespace: field('namespace'), serviceAccount: field('serviceAccount'), workload: field('workload') };
  try {
    const written = await cp.createToken(subject);
    return json({ path: written.path, token: written.token, rootCert: rootCertPath(cp.stateDir!) });
  } catch (err) {
    if (err instanceof CaError) throw new ConfigRequestError(400, err.message);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// history, diff, rollback

function history(cp: ControlPlane) {
  return {
    current: cp.current()?.version,
    maxVersions: cp.history.maxVersions,
    persistent: cp.history.dir !== undefined,
    versions: cp.history.list().map((v) => cp.history.summary(v)),
  };
}

/** A version named in a request, or a 404 saying what history keeps. */
function versionParam(cp: ControlPlane, ref: string): VersionRecord {
  try {
    return cp.history.resolve(ref);
  } catch (err) {
    if (err instanceof UnknownVersionError) throw new ConfigRequestError(404, err.message, { hint: 'list versions with `weft history`' });
    throw err;
  }
}

function versionWithResources(cp: ControlPlane, ref: string) {
  const version = versionParam(cp, ref);
  return { ...cp.history.summary(version), items: [...cp.history.resourcesOf(version.id).values()].map(asObject) };
}

/** `to` (default: current) against `from` (default: the version before `to`). */
function diffVersions(cp: ControlPlane, url: URL) {
  const toRef = url.searchParams.get('to');
  const fromRef = url.searchParams.get('from');
  const to = versionParam(cp, toRef || 'current');
  const from = fromRef ? versionParam(cp, fromRef) : cp.history.previous(to.id);
  if (!from) {
    throw new ConfigRequestError(404, `v${to.id} is the oldest version kept; there is nothing before it to compare with`, { hint: 'name two versions: weft diff A B' });
  }
  const diff = diffResources(cp.history.resourcesOf(from.id), cp.history.resourcesOf(to.id));
  return { from: cp.history.summary(from), to: cp.history.summary(to), ...diff };
}

async function rollback(cp: ControlPlane, req: http.IncomingMessage, url: URL): Promise<ApiResponse> {
  // Parameters in the query, or a JSON body {"version", "message"}.
  const text = await readBody(req);
  const body = text.trim() ? (parseJson(text, 'rollback request') as Record<string, unknown> | null) : {};
  const field = (name: string): string | undefined => {
    const value = url.searchParams.get(name) ?? body?.[name];
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value !== 'string' && typeof value !== 'number') throw new ConfigRequestError(400, `${name} must be a string`);
    return String(value);
  };
  const outcome = await cp.rollback({ version: field('version'), message: field('message'), dryRun: flag(url, 'dryRun') || body?.dryRun === true });
  return json(outcome);
}

// ---------------------------------------------------------------------------------------------
// what-if routing

async function whatIfRoute(cp: ControlPlane, req: http.IncomingMessage): Promise<ApiResponse> {
  const body = parseJson(await readBody(req), 'route request') as Partial<RouteRequestBody> | null;
  const shape = 'send {"url": "http://reviews:9080/", "from": "productpage-v1", "headers": [["end-user", "jason"]], "sources": [{"name", "content"}]}';
  if (typeof body !== 'object' || body === null || typeof body.url !== 'string' || body.url === '') throw new ConfigRequestError(400, 'url is required (a string)', { hint: shape });
  const optional = (name: 'from' | 'namespace' | 'method') => {
    const v = body[name];
    if (v !== undefined && (typeof v !== 'string' || v === '')) throw new ConfigRequestError(400, `${name} must be a non-empty string`, { hint: shape });
    return v;
  };
  const headers = body.headers ?? [];
  if (!Array.isArray(headers) || !headers.every((h) => Array.isArray(h) && h.length === 2 && typeof h[0] === 'string' && typeof h[1] === 'string')) {
    throw new ConfigRequestError(400, 'headers must be a list of [name, value] pairs', { hint: shape });
  }
  const sources = body.sources ?? [];
  if (!Array.isArray(sources) || !sources.every((s) => typeof s?.content === 'string')) {
    throw new ConfigRequestError(400, 'sources must be a list of {"name", "content"} (the candidate files)', { hint: shape });
  }
  const answer = await cp.whatIfRoute(
    { url: body.url, from: optional('from'), namespace: optional('namespace'), method: optional('method'), headers },
    sources.map((s, i) => ({ name: typeof s.name === 'string' && s.name ? s.name : `source-${i}`, content: s.content })),
  );
  return json(answer);
}
