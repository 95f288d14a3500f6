// Test support for the data plane: the real control plane (AdsServer + translateForProxy fed
// snapshots built from Istio resources), real Weft proxies, and real HTTP backends, all on
// loopback with ephemeral ports.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import type { ConfigResource } from '../../src/config/resources';
import { createLogger } from '../../src/log/logger';
import type { RequestRecord } from '../../src/proxy/access-log';
import { startProxy, type ProxyOptions, type RunningProxy } from '../../src/proxy/proxy';
import { SecretStore } from '../../src/proxy/identity/secret-store';
import { createTestCa, type TestCa } from '../support/test-ca';
import { startAdsHarness, type AdsHarness } from '../support/ads-harness';
import { kubeService, SnapshotSequence, workloadEntry } from '../support/mesh-resources';
import { waitFor } from '../support/wait-for';

export { waitFor };

export interface Mesh {
  ads: AdsHarness;
  /** Replaces the mesh configuration (a new snapshot, pushed to every proxy). */
  publish(resources: ConfigResource[]): void;
  /** Resolves when every connected proxy has answered the latest snapshot's pushes. */
  converged(): Promise<unknown>;
  close(): Promise<void>;
}

export async function startMesh(resources: ConfigResource[]): Promise<Mesh> {
  const seq = new SnapshotSequence();
  const ads = await startAdsHarness({ initial: seq.next(resources), debounceAfterMs: 10, debounceMaxMs: 50 });
  return {
    ads,
    publish: (r) => ads.server.publish(seq.next(r)),
    converged: () => ads.server.waitForConvergence({ timeoutMs: 10_000 }),
    close: () => ads.close(),
  };
}

export interface TestProxy {
  proxy: RunningProxy;
  records: RequestRecord[];
  /** Port of the outbound (15001) listener. */
  outboundPort: number;
  /** A keep-alive client to the outbound listener (requests carry Host: service:port). */
  client: Pool;
  /** GET (or other) through the outbound listener; returns status, headers and body text. */
  request(host: string, path?: string, init?: RequestInit): Promise<TestResponse>;
  close(): Promise<void>;
}

export interface RequestInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

export interface TestResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json<T = BackendEcho>(): T;
}

/** What test backends answer: who they are and what they received. */
export interface BackendEcho {
  backend: string;
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export function sidecarNodeId(name: string, address: string, namespace = 'default'): string {
  return `sidecar~${address}~${name}.${namespace}~${namespace}.svc.cluster.local`;
}

export async function startTestProxy(
  mesh: Mesh,
  o: { name: string; address?: string; namespace?: string; labels?: Record<string, string>; options?: Partial<ProxyOptions> },
): Promise<TestProxy> {
  const address = o.address ?? '127.0.0.1';
  const namespace = o.namespace ?? 'default';
  const records: RequestRecord[] = [];
  // Every sidecar has an identity (the translator's config names SDS default/ROOTCA): a
  // certificate for spiffe://cluster.local/ns/<ns>/sa/<name> from one test CA per process.
  const secrets = o.options?.secrets ?? (o.options?.identity ? undefined : await testIdentity(namespace, o.name));
  const proxy = await startProxy({
    secrets,
    xdsAddress: mesh.ads.address,
    node: {
      id: sidecarNodeId(o.name, address, namespace),
      metadata: { NAMESPACE: namespace, WORKLOAD_NAME: o.name, LABELS: o.labels ?? { app: o.name }, INSTANCE_IPS: address },
    },
    bindAddress: address,
    ports: { outbound: 0, inbound: 0, admin: 0, stats: 0, health: 0 },
    logger: createLogger({ level: process.env.WEFT_TEST_LOGS === '1' ? 'debug' : 'error', write: (l) => process.stderr.write(l + '\n') }),
    onRequest: (r) => records.push(r),
    xdsBackoff: { initialMs: 50, maxMs: 500 },
    initialFetchTimeoutMs: 3000,
    ...o.options,
  });
  await proxy.ready;
  const outboundPort = proxy.listenerPort('virtualOutbound');
  if (!outboundPort) throw new Error(`proxy ${o.name} has no virtualOutbound listener: ${JSON.stringify(proxy.listeners())}`);
  const client = new Pool(`http://${address}:${outboundPort}`, { connections: 16 });
  return {
    proxy,
    records,
    outboundPort,
    client,
    request: (host, path = '/', init = {}) => sendThrough(client, host, path, init),
    close: async () => {
      await client.close();
      await proxy.close(500);
    },
  };
}

let testCa: Promise<TestCa> | undefined;

async function testIdentity(namespace: string, serviceAccount: string): Promise<SecretStore> {
  const ca = await (testCa ??= createTestCa('weft-test-mesh'));
  const cert = await ca.issueWorkload(serviceAccount, namespace);
  const store = new SecretStore();
  store.setTrustedCa('ROOTCA', ca.rootPem);
  store.setCertificate('default', cert.certPem, cert.keyPem);
  return store;
}

export async function sendThrough(client: Pool, host: string, path: string, init: RequestInit = {}): Promise<TestResponse> {
  const res = await client.request({
    method: (init.method ?? 'GET') as 'GET',
    path,
    headers: { host, ...init.headers },
    body: init.body,
  });
  const body = await res.body.text();
  return {
    status: res.statusCode,
    headers: res.headers,
    body,
    json: <T>() => JSON.parse(body) as T,
  };
}

export interface Backend {
  name: string;
  address: string;
  port: number;
  /** Requests received, in order. */
  received: BackendEcho[];
  server: http.Server;
  /** Replace how it answers (default: 200 with a BackendEcho JSON). */
  handle(handler: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void): void;
  close(): Promise<void>;
}

export async function startBackend(name: string, address = '127.0.0.1'): Promise<Backend> {
  const received: BackendEcho[] = [];
  let custom: ((req: http.IncomingMessage, res: http.ServerResponse, body: string) => void) | undefined;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      const echo: BackendEcho = { backend: name, method: req.method ?? '', path: req.url ?? '', headers: req.headers, body };
      received.push(echo);
      if (custom) return custom(req, res, body);
      const text = JSON.stringify(echo);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-backend': name });
      res.end(text);
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    name,
    address,
    port,
    received,
    server,
    handle: (h) => (custom = h),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * A Kubernetes-style Service `name` on `port` whose endpoints are the given backends, each as a
 * WorkloadEntry labelled app=name plus its own labels (e.g. version=v1).
 */
export function serviceWithBackends(
  name: string,
  port: number,
  backends: { backend: Backend; labels?: Record<string, string> }[],
  portName = 'http',
): ConfigResource[] {
  return [
    kubeService(name, [{ name: portName, port, targetPort: port }], { app: name }),
    ...backends.map(({ backend, labels }) =>
      workloadEntry(`${backend.name}`, {
        address: backend.address,
        labels: { app: name, ...labels },
        ports: { [portName]: backend.port },
      }),
    ),
  ];
}

/** Counts of `key(x)` over `items`. */
export function countBy<T>(items: readonly T[], key: (x: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of items) out[key(x)] = (out[key(x)] ?? 0) + 1;
  return out;
}
