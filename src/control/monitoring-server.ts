// The control plane's HTTP address (Istio: 15014): readiness, Prometheus metrics, the debug
// views operators read when something is off (/debug/syncz, /debug/configz, /debug/snapshots),
// the dashboard (/ui and its JSON, in src/dashboard/),
// and the config API the `weft` CLI talks to (/api/v1/*, in config-api.ts).
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { formatProblem } from '../config/problems';
import { resourceKey } from '../config/resources';
import { matchConfigApi, runApiHandler } from './config-api';
import type { ControlPlane } from './control-plane';

export interface MonitoringServer {
  port: number;
  close(): Promise<void>;
}

type Handler = (req: http.IncomingMessage, url: URL) => Promise<{ status: number; type: string; body: string }> | { status: number; type: string; body: string };

function json(value: unknown, status = 200) {
  return { status, type: 'application/json', body: JSON.stringify(value, null, 2) + '\n' };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** The landing page of the HTTP address: what is here, and the state at a glance. */
function indexPage(cp: ControlPlane) {
  const snapshot = cp.current();
  const proxies = cp.ads.syncStatus();
  const links = [
    ['/ui', 'the dashboard: service graph, golden signals per service, config and proxy sync'],
    ['/debug/syncz', 'every connected proxy: what was sent, ACKed and NACKed'],
    ['/debug/configz', 'accepted and rejected resources, with validation messages'],
    ['/debug/snapshots', 'config versions (weft history)'],
    ['/metrics', 'Prometheus metrics (pilot_* names)'],
    ['/api/v1/resources', 'the config, as the CLI reads it'],
  ];
  const body = `<!doctype html><meta charset="utf-8"><title>Weft control plane</title>
<h1>Weft control plane</h1>
<p>Serving ${snapshot ? `config ${escapeHtml(snapshot.version)} (${snapshot.resources.size} resources, ${snapshot.registry.services.size} services)` : 'no config yet'}
to ${proxies.length} connected ${proxies.length === 1 ? 'proxy' : 'proxies'}; ${cp.store.rejected().length} rejected resources.</p>
<ul>${links.map(([href, what]) => `<li><a href="${href}">${href}</a> — ${what}</li>`).join('')}</ul>
`;
  return { status: 200, type: 'text/html; charset=utf-8', body };
}

function buildRoutes(cp: ControlPlane): Record<string, Handler> {
  return {
    '/': () => indexPage(cp),
    '/ready': () => {
      const snapshot = cp.current();
      return snapshot
        ? { status: 200, type: 'text/plain', body: `ready ${snapshot.version}\n` }
        : { status: 503, type: 'text/plain', body: 'not ready: no snapshot built yet\n' };
    },
    '/metrics': async () => ({ status: 200, type: cp.metrics.contentType, body: await cp.metrics.metrics() }),
    '/debug/syncz': () => json(cp.ads.syncStatus()),
    '/debug/configz': () => {
      const snapshot = cp.current();
      return json({
        version: snapshot?.version,
        createdAt: snapshot?.createdAt,
        accepted: cp.store.resources().map((r) => ({
          key: resourceKey(r),
          apiVersion: r.apiVersion,
          source: cp.store.sourceOf(resourceKey(r)),
          resource: { apiVersion: r.apiVersion, kind: r.kind, metadata: r.metadata, spec: r.spec },
        })),
        rejected: cp.store.rejected().map((r) => ({
          key: r.key,
          source: r.sourceId,
          lastGoodServing: r.lastGoodServing,
          at: r.at,
          errors: r.problems,
          messages: r.problems.map(formatProblem),
        })),
        warnings: [...cp.store.warnings(), ...cp.analysisProblems()].map((p) => ({ ...p, message: formatProblem(p) })),
      });
    },
    // The config history's versions, oldest first (the same list as `weft history`).
    '/debug/snapshots': () => json(cp.history.list().map((v) => cp.history.summary(v))),
  };
}

const WORKLOAD_PATH = /^\/api\/v1\/workloads\/([^/]+)\/([^/]+)$/;

/** Routes with parameters in the path. */
function prefixRoute(cp: ControlPlane, pathname: string): Handler | undefined {
  const workload = WORKLOAD_PATH.exec(pathname);
  if (workload) {
    // What a proxy needs to start for a WorkloadEntry: address, labels, service account, ports.
    return () => {
      const [namespace, name] = [decodeURIComponent(workload[1]), decodeURIComponent(workload[2])];
      const found = cp.current()?.registry.workloads.get(`${namespace}/${name}`);
      if (!found) return json({ error: `WorkloadEntry ${namespace}/${name} not found`, hint: 'declare it in the config directory first' }, 404);
      return json(found);
    };
  }
  return undefined;
}

export function startMonitoringServer(cp: ControlPlane, address: string): Promise<MonitoringServer> {
  const routes = buildRoutes(cp);
  const dashboard = cp.dashboard;
  const server = http.createServer((req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('malformed request URL\n');
      return;
    }
    if (dashboard.serves(url.pathname)) {
      dashboard.handle(req, url).then(
        (r) => res.writeHead(r.status, { 'content-type': r.type, ...r.headers }).end(req.method === 'HEAD' ? undefined : r.body),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`internal error: ${err.message}\n`),
      );
      return;
    }
    const api = matchConfigApi(cp, url.pathname);
    if (api) {
      const method = (req.method ?? 'GET') as 'GET';
      const apiHandler = api.methods[method];
      if (!apiHandler) {
        const allow = Object.keys(api.methods).join(', ');
        res
          .writeHead(405, { 'content-type': 'application/json', allow })
          .end(JSON.stringify({ error: `method ${req.method} not allowed on ${url.pathname}; use ${allow}` }) + '\n');
        req.resume();
        return;
      }
      runApiHandler(cp, apiHandler, req, url, api.params).then(
        (r) => {
          res.writeHead(r.status, { 'content-type': r.type, ...r.headers }).end(r.body);
          req.resume(); // drain what a refused request still sends
        },
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`internal error: ${err.message}\n`),
      );
      return;
    }
    const handler = routes[url.pathname] ?? prefixRoute(cp, url.pathname);
    if (!handler) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${url.pathname}\n`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET' }).end('method not allowed\n');
      return;
    }
    Promise.resolve(handler(req, url)).then(
      (r) => res.writeHead(r.status, { 'content-type': r.type }).end(r.body),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`internal error: ${err.message}\n`),
    );
  });
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(i + 1));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      dashboard.start();
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => dashboard.stop().then(done, done));
            server.closeAllConnections();
          }),
      });
    });
  });
}
