// httpbin: the request-echo service of Istio's samples/httpbin (kennethreitz/httpbin, as the
// kong/httpbin image Istio deploys), for the resilience and security tasks: /get, /headers,
// /status/{codes}, /delay/{seconds}, /ip, /anything, /uuid and friends, with its JSON shapes
// (header names Title-Cased, query arguments as strings or lists).
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody, route, sendJson, sendText, type Route } from './http-app';

/** Longest /delay httpbin honours, in seconds. */
export const MAX_DELAY_SECONDS = 10;

/** `x-b3-traceid` -> `X-B3-Traceid`, as httpbin (werkzeug) shows header names. */
export function titleCaseHeader(name: string): string {
  return name
    .split('-')
    .map((part) => (part ? part[0]!.toUpperCase() + part.slice(1).toLowerCase() : part))
    .join('-');
}

function echoedHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = titleCaseHeader(req.rawHeaders[i]!);
    const value = req.rawHeaders[i + 1]!;
    out[name] = name in out ? `${out[name]},${value}` : value;
  }
  return out;
}

function echoedArgs(url: URL): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const key of new Set(url.searchParams.keys())) {
    const values = url.searchParams.getAll(key);
    out[key] = values.length === 1 ? values[0]! : values;
  }
  return out;
}

function origin(req: IncomingMessage): string {
  const xff = req.headers['x-forwarded-for'];
  if (typeof xff === 'string' && xff) return xff;
  return req.socket.remoteAddress ?? '';
}

function fullUrl(req: IncomingMessage, url: URL): string {
  const proto = typeof req.headers['x-forwarded-proto'] === 'string' ? req.headers['x-forwarded-proto'] : 'http';
  return `${proto}://${req.headers.host ?? 'httpbin'}${url.pathname}${url.search}`;
}

/** The response of /get: {args, headers, origin, url}. */
function getResponse(req: IncomingMessage, url: URL) {
  return { args: echoedArgs(url), headers: echoedHeaders(req), origin: origin(req), url: fullUrl(req, url) };
}

/** The response of /anything, /post, ...: the request with its body as data, form and json. */
async function bodyResponse(req: IncomingMessage, url: URL) {
  const raw = (await readBody(req)).toString('utf8');
  const contentType = (req.headers['content-type'] ?? '').toLowerCase();
  const form: Record<string, string | string[]> = {};
  let data = raw;
  if (contentType.startsWith('application/x-www-form-urlencoded')) {
    data = '';
    const params = new URLSearchParams(raw);
    for (const key of new Set(params.keys())) {
      const values = params.getAll(key);
      form[key] = values.length === 1 ? values[0]! : values;
    }
  }
  let json: unknown = null;
  if (contentType.includes('json')) {
    try {
      json = JSON.parse(raw);
    } catch {
      json = null;
    }
  }
  return {
    args: echoedArgs(url),
    data,
    files: {},
    form,
    headers: echoedHeaders(req),
    json,
    method: req.method,
    origin: origin(req),
    url: fullUrl(req, url),
  };
}

/**
 * Picks the status for /status/{codes}: one code, a comma list chosen at random, or weighted
 * `code:weight` entries, as httpbin. Undefined when the list does not parse.
 */
export function chooseStatus(spec: string, random: () => number = Math.random): number | undefined {
  const entries: Array<{ code: number; weight: number }> = [];
  for (const part of spec.split(',')) {
    const [codeText, weightText] = part.split(':');
    const code = Number(codeText);
    const weight = weightText === undefined ? 1 : Number(weightText);
    if (!Number.isInteger(code) || code < 100 || code > 599 || !Number.isFinite(weight) || weight < 0) return undefined;
    entries.push({ code, weight });
  }
  const total = entries.reduce((sum, e) => sum + e.weight, 0);
  if (entries.length === 0 || total <= 0) return undefined;
  let point = random() * total;
  for (const entry of entries) {
    if (point < entry.weight) return entry.code;
    point -= entry.weight;
  }
  return entries[entries.length - 1]!.code;
}

function sendStatus(res: ServerResponse, status: number): void {
  if (status === 418) {
    sendText(res, 418, '\n    -=[ teapot ]=-\n\n       _...._\n     .\'  _ _ `.\n    | ."` ^ `". _,\n    \\_;`"---"`|//\n      |       ;/\n      \\_     _/\n        `"""`\n', 'text/plain');
    return;
  }
  const headers: Record<string, string> = { 'content-length': '0' };
  if ([301, 302, 303, 305, 307].includes(status)) headers.location = '/redirect/1';
  res.writeHead(status, headers);
  res.end();
}

export function httpbinRoutes(): Route[] {
  return [
    route('GET', /^\/health$/, ({ res }) => sendJson(res, 200, { status: 'httpbin is healthy' })),
    route('GET', /^\/$/, ({ res }) =>
      sendText(res, 200, 'httpbin: HTTP request and response service. Try /get, /headers, /status/418, /delay/2, /ip, /uuid, /anything\n'),
    ),
    route('GET', /^\/get$/, ({ req, res, url }) => sendJson(res, 200, getResponse(req, url))),
    route('GET', /^\/headers$/, ({ req, res }) => sendJson(res, 200, { headers: echoedHeaders(req) })),
    route('GET', /^\/ip$/, ({ req, res }) => sendJson(res, 200, { origin: origin(req) })),
    route('GET', /^\/user-agent$/, ({ req, res }) => sendJson(res, 200, { 'user-agent': req.headers['user-agent'] ?? null })),
    route('GET', /^\/uuid$/, ({ res }) => sendJson(res, 200, { uuid: randomUUID() })),
    route('*', /^\/anything(?:\/.*)?$/, async ({ req, res, url }) => sendJson(res, 200, await bodyResponse(req, url))),
    route('POST', /^\/post$/, async ({ req, res, url }) => sendJson(res, 200, await bodyResponse(req, url))),
    route('PUT', /^\/put$/, async ({ req, res, url }) => sendJson(res, 200, await bodyResponse(req, url))),
    route('PATCH', /^\/patch$/, async ({ req, res, url }) => sendJson(res, 200, await bodyResponse(req, url))),
    route('DELETE', /^\/delete$/, async ({ req, res, url }) => sendJson(res, 200, await bodyResponse(req, url))),
    route('*', /^\/status\/([^/]+)$/, ({ res, params }) => {
      const status = chooseStatus(decodeURIComponent(params[0]!));
      if (status === undefined) sendText(res, 400, 'Invalid status code');
      else sendStatus(res, status);
    }),
    route('*', /^\/delay\/([^/]+)$/, async ({ req, res, url }) => {
      const seconds = Number(decodeURIComponent(url.pathname.slice('/delay/'.length)));
      if (!Number.isFinite(seconds) || seconds < 0) {
        sendText(res, 400, 'Invalid delay');
        return;
      }
      const body = await bodyResponse(req, url);
      const delivered = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(true), Math.min(seconds, MAX_DELAY_SECONDS) * 1000);
        res.once('close', () => {
          clearTimeout(timer);
          resolve(false);
        });
      });
      if (delivered) {
        const { json: _json, method: _method, ...rest } = body;
        sendJson(res, 200, rest);
      }
    }),
  ];
}
