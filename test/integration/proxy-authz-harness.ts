// Test support for the proxy's authentication and authorization filters: a real Weft proxy fed
// hand-written Envoy resources (the Istio-shaped RBAC and jwt_authn config the translator emits)
// by a real AdsServer over gRPC, real HTTP/TCP backends, raw-socket HTTP for exact request lines.
import * as net from 'node:net';
import { Registry } from 'prom-client';
import { silentLogger } from '../../src/log/logger';
import type { RequestRecord } from '../../src/proxy/access-log';
import type { Json } from '../../src/proxy/config/validation';
import { startProxy, type RunningProxy } from '../../src/proxy/proxy';
import { TypeUrl } from '../../src/xds/protos';
import { AdsServer } from '../../src/xds/server/ads-server';
import { parseProxyNode } from '../../src/xds/translate';
import { SnapshotSequence } from '../support/mesh-resources';
import { sidecarNodeId } from './proxy-harness';

export const TYPE = {
  hcm: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  tcpProxy: 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  httpRbac: 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC',
  networkRbac: 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC',
  jwtAuthn: 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication',
  fileLog: 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
};

export interface EnvoyConfig {
  listeners: Json[];
  clusters: Json[];
}

/** A STATIC cluster of one endpoint. */
export function staticCluster(name: string, address: string, port: number): Json {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address, port_value: port } } } }] }] },
  };
}

export const router = (): Json => ({ name: 'envoy.filters.http.router', typed_config: { '@type': TYPE.router } });

/** An envoy.filters.http.rbac instance with `rules` (and more fields, e.g. shadow_rules). */
export function httpRbac(config: Json): Json {
  return { name: 'envoy.filters.http.rbac', typed_config: { '@type': TYPE.httpRbac, ...config } };
}

export function jwtAuthn(config: Json): Json {
  return { name: 'envoy.filters.http.jwt_authn', typed_config: { '@type': TYPE.jwtAuthn, ...config } };
}

/** An HTTP listener on 127.0.0.1:`port` (rebound to an ephemeral port) routing everything to `cluster`. */
export function httpListener(name: string, port: number, cluster: string, o: { filters: Json[]; hcm?: Json; routes?: Json[] }): Json {
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: port } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': TYPE.hcm,
              stat_prefix: name,
              route_config: {
                name: 'local',
                virtual_hosts: [{ name: 'all', domains: ['*'], routes: o.routes ?? [{ match: { prefix: '/' }, route: { cluster, timeout: '5s' } }] }],
              },
              http_filters: [...o.filters, router()],
              ...o.hcm,
            },
          },
        ],
      },
    ],
  };
}

/** A TCP listener with network filters ahead of tcp_proxy. */
export function tcpListener(name: string, port: number, cluster: string, networkFilters: Json[]): Json {
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: port } },
    filter_chains: [
      {
        filters: [...networkFilters, { name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TYPE.tcpProxy, stat_prefix: name, cluster } }],
      },
    ],
  };
}

export interface HandWrittenProxy {
  proxy: RunningProxy;
  records: RequestRecord[];
  port(listener: string): number;
  /** Replaces the configuration; resolves once the proxy answered it (ACK or NACK). */
  apply(config: EnvoyConfig): Promise<void>;
  /** The proxy's last NACK per xDS type, e.g. `LDS: Listener "x": ...`. */
  nacks(): string[];
  /** The proxy's /stats text. */
  stats(): Promise<string>;
  close(): Promise<void>;
}

function byName(list: Json[]): Map<string, Json> {
  return new Map(list.map((r) => [String(r.name), r]));
}

/** Starts an AdsServer serving exactly `initial`, and a proxy connected to it. */
export async function startHandWrittenProxy(initial: EnvoyConfig, listenerPorts: number[]): Promise<HandWrittenProxy> {
  let current = initial;
  const seq = new SnapshotSequence();
  const server = new AdsServer({
    generate: () => ({
      [TypeUrl.Cluster]: byName(current.clusters),
      [TypeUrl.ClusterLoadAssignment]: new Map(),
      [TypeUrl.Listener]: byName(current.listeners),
      [TypeUrl.RouteConfiguration]: new Map(),
    }),
    parseNode: parseProxyNode,
    logger: silentLogger,
    metrics: new Registry(),
    debounceAfterMs: 5,
    debounceMaxMs: 20,
  });
  server.publish(seq.next([]));
  const xdsPort = await server.listen('127.0.0.1:0');
  const records: RequestRecord[] = [];
  const proxy = await startProxy({
    xdsAddress: `127.0.0.1:${xdsPort}`,
    node: { id: sidecarNodeId('authz', '127.0.0.1'), metadata: { NAMESPACE: 'default', WORKLOAD_NAME: 'authz', LABELS: { app: 'authz' } } },
    bindAddress: '127.0.0.1',
    ports: { outbound: 0, inbound: 0, admin: 0, stats: 0, health: 0 },
    listenerPorts: Object.fromEntries(listenerPorts.map((p) => [p, 0])),
    logger: silentLogger,
    onRequest: (r) => records.push(r),
    xdsBackoff: { initialMs: 50, maxMs: 500 },
    initialFetchTimeoutMs: 2000,
  });
  await proxy.ready;
  const nacks = () =>
    Object.entries(proxy.xdsStatus())
      .filter(([, st]) => st.lastError)
      .map(([type, st]) => `${type}: ${st.lastError}`);
  if (nacks().length) {
    await proxy.close(0);
    await server.close(0);
    throw new Error(`the proxy refused the test config:\n${nacks().join('\n')}`);
  }
  return {
    proxy,
    records,
    port: (name) => {
      const port = proxy.listenerPort(name);
      if (!port) throw new Error(`listener ${name} is not bound: ${JSON.stringify(proxy.listeners())}`);
      return port;
    },
    apply: async (config) => {
      current = config;
      server.publish(seq.next([]));
      await server.waitForConvergence({ timeoutMs: 10_000 });
    },
    nacks,
    stats: async () => {
      const res = await fetch(`http://${proxy.adminAddress}:${proxy.ports.admin}/stats`);
      return res.text();
    },
    close: async () => {
      await proxy.close(200);
      await server.close(200);
    },
  };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * One HTTP/1.1 request written byte for byte (the request line exactly as given: no client
 * normalizes `..`, `//`, `%2F` or `#`), answered with `connection: close`.
 */
export function rawRequest(port: number, target: string, o: { method?: string; headers?: Record<string, string> } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const headEnd = text.indexOf('\r\n\r\n');
      if (headEnd < 0) return reject(new Error(`no HTTP response for ${target}: ${JSON.stringify(text)}`));
      const [statusLine, ...lines] = text.slice(0, headEnd).split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const colon = l.indexOf(':');
        headers[l.slice(0, colon).toLowerCase()] = l.slice(colon + 1).trim();
      }
      let body = text.slice(headEnd + 4);
      if (headers['transfer-encoding'] === 'chunked') {
        let out = '';
        let rest = body;
        for (;;) {
          const nl = rest.indexOf('\r\n');
          const size = parseInt(rest.slice(0, nl), 16);
          if (!size) break;
          out += rest.slice(nl + 2, nl + 2 + size);
          rest = rest.slice(nl + 2 + size + 2);
        }
        body = out;
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body });
    });
    const extra = Object.entries(o.headers ?? {})
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    socket.write(`${o.method ?? 'GET'} ${target} HTTP/1.1\r\nhost: authz.test\r\nconnection: close\r\n${extra}\r\n`);
  });
}
