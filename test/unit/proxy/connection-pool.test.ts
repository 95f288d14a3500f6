// Envoy's connection pools against real loopback servers: circuit breakers (max_connections,
// max_pending_requests, max_requests) overflowing with `overflow`, connection lifetime
// (max_requests_per_connection, idle_timeout, max_connection_duration), TCP keep-alive, failed
// connects failing every waiting request, the keep-alive race flagged as a reused connection, and
// HTTP/2 streams per connection.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { after, describe, it } from 'node:test';
import { DEFAULT_THRESHOLDS } from '../../../src/proxy/config/cluster';
import type { CircuitBreakerThresholds } from '../../../src/proxy/config/model';
import { ClusterResources, newClusterStats } from '../../../src/proxy/upstream/cluster-resources';
import type { PoolSettings } from '../../../src/proxy/upstream/connection-pool';
import type { HostStats } from '../../../src/proxy/upstream/host';
import { Http1Connector } from '../../../src/proxy/upstream/http1-connector';
import { Http2Connector } from '../../../src/proxy/upstream/http2-connector';
import type { EndpointConnector, UpstreamFailure, UpstreamRequest } from '../../../src/proxy/upstream/upstream-call';
import { waitFor } from '../../support/wait-for';

interface Outcome {
  status?: number;
  body?: string;
  failure?: UpstreamFailure;
}

function send(connector: EndpointConnector, request: Partial<UpstreamRequest> = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    let status = 0;
    const chunks: Buffer[] = [];
    connector.dispatch(
      { method: 'GET', path: '/', headers: { host: 'upstream' }, body: null, ...request },
      {
        onHeaders: (s) => (status = s),
        onData: (c) => {
          chunks.push(c);
          return true;
        },
        onEnd: () => resolve({ status, body: Buffer.concat(chunks).toString() }),
        onError: (failure) => resolve({ failure }),
      },
    );
  });
}

function hostStats(): HostStats {
  return { rqTotal: 0, rqSuccess: 0, rqError: 0, rqTimeout: 0, cxConnectFail: 0, cxTotal: 0 };
}

function settings(limits: Partial<CircuitBreakerThresholds> = {}, extra: Partial<PoolSettings> = {}): PoolSettings {
  return {
    connectTimeoutMs: 1000,
    idleTimeoutMs: 3_600_000,
    maxRequestsPerConnection: 0,
    maxConnectionDurationMs: 0,
    maxConcurrentStreams: 0,
    resources: new ClusterResources({ ...DEFAULT_THRESHOLDS, ...limits }, newClusterStats()),
    ...extra,
  };
}

/** An HTTP/1.1 server that counts connections and can hold requests until released. */
async function startServer(): Promise<{
  port: number;
  sockets: Set<net.Socket>;
  connections: () => number;
  hold: boolean;
  release: () => void;
  handled: number;
  server: http.Server;
}> {
  const held: http.ServerResponse[] = [];
  let total = 0;
  const sockets = new Set<net.Socket>();
  const state = {
    port: 0,
    sockets,
    connections: () => total,
    hold: false,
    handled: 0,
    release: () => {
      for (const res of held.splice(0)) res.end('released');
    },
    server: http.createServer((req, res) => {
      state.handled++;
      if (state.hold) held.push(res);
      else res.end(`ok ${req.url}`);
    }),
  };
  state.server.keepAliveTimeout = 30_000;
  state.server.on('connection', (s: net.Socket) => {
    total++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => state.server.listen(0, '127.0.0.1', r));
  state.port = (state.server.address() as net.AddressInfo).port;
  return state;
}

const servers: http.Server[] = [];
after(() => {
  for (const s of servers) s.close();
  for (const s of servers) s.closeAllConnections();
});

function h1(port: number, s: PoolSettings, stats = hostStats()): Http1Connector {
  return new Http1Connector({ address: '127.0.0.1', port, stats }, s);
}

describe('HTTP/1.1 connection pool: circuit breakers', () => {
  it('max_connections 1 + max_pending_requests 1: one request runs, one waits, the third overflows', async () => {
    const srv = await startServer();
    servers.push(srv.server);
    srv.hold = true;
    const s = settings({ maxConnections: 1, maxPendingRequests: 1 });
    const pool = h1(srv.port, s);
    const first = send(pool);
    await waitFor(() => srv.handled === 1);
    const second = send(pool);
    const third = await send(pool);
    assert.equal(third.failure?.kind, 'overflow');
    assert.equal(s.resources.stats.upstream_rq_pending_overflow, 1);
    assert.ok(s.resources.stats.upstream_cx_overflow >= 1, 'the waiting request could not open a second connection');
    assert.equal(s.resources.pendingRequests, 1);
    assert.equal(s.resources.gauges()['circuit_breakers.default.rq_pending_open'], 1);
    srv.release();
    assert.equal((await first).status, 200);
    await waitFor(() => srv.handled === 2);
    srv.release();
    assert.equal((await second).body, 'released');
    assert.equal(srv.connections(), 1, 'the waiting request reused the one connection');
    assert.equal(s.resources.requests, 0);
    assert.equal(s.resources.pendingRequests, 0);
    await pool.close();
  });

  it('max_requests overflows requests beyond it, before any connection', async () => {
    const srv = await startServer();
    servers.push(srv.server);
    srv.hold = true;
    const s = settings({ maxRequests: 1 });
    const pool = h1(srv.port, s);
    const first = send(pool);
    await waitFor(() => srv.handled === 1);
    assert.equal((await send(pool)).failure?.kind, 'overflow');
    assert.equal(s.resources.stats.upstream_rq_pending_overflow, 1);
    srv.hold = false;
    srv.release();
    assert.equal((await first).status, 200);
    assert.equal((await send(pool)).status, 200, 'room again once the first ended');
    await pool.close();
  });

  it('a failed connect fails every waiting request (connect-failure), counted once per connection', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const s = settings({ maxConnections: 1 });
    const stats = hostStats();
    const pool = h1(port, s, stats);
    const results = await Promise.all([send(pool), send(pool), send(pool)]);
    assert.deepEqual(
      results.map((r) => r.failure?.kind),
      ['connect-failure', 'connect-failure', 'connect-failure'],
    );
    assert.equal(s.resources.stats.upstream_cx_connect_fail, 1);
    assert.equal(stats.cxConnectFail, 1);
    assert.equal(s.resources.stats.upstream_rq_pending_failure_eject, 3);
    assert.equal(s.resources.connections, 0);
    await pool.close();
  });
});

describe('HTTP/1.1 connection pool: connection lifetime', () => {
  it('keeps one connection alive for sequential requests', async () => {
    const srv = await startServer();
    servers.push(srv.server);
    const pool = h1(srv.port, settings());
    for (let i = 0; i < 5; i++) assert.equal((await send(pool, { path: `/${i}` })).body, `ok /${i}`);
    assert.equal(srv.connections(), 1);
    await pool.close();
  });

  it('max_requests_per_connection 1: a new connection per request, the old one closed', async () => {
    const srv = await startServer();
    servers.push(srv.server);
    const s = settings({}, { maxRequestsPerConnection: 1 });
    const pool = h1(srv.port, s);
    for (let i = 0; i < 3; i++) assert.equal((await send(pool)).status, 200);
    assert.equal(srv.connections(), 3);
    assert.equal(s.resources.stats.upstream_cx_max_requests, 3);
    await waitFor(() => srv.sockets.size === 0, { message: 'every used connection closed' });
    assert.equal(s.resources.connections, 0);
    await pool.close();
  });

  it('idle_timeout closes an idle connection', async () => {
    const srv = await startServer();
    servers.push(srv.server);
    const s = settings({}, { idleTimeoutMs: 100 });
    const pool = h1(srv.port, s);
    assert.equal((await send(pool)).status, 200);
    await waitFor(() => srv.sockets.size === 0, { timeoutMs: 3000, message: 'idle connection closed' });
    await waitFor(() => s.resources.stats.upstream_cx_idle_timeout === 1);
    assert.equal(s.resources.stats.upstream_cx_destroy_local, 1);
    assert.equal(s.resources.connections, 0);
    assert.equal((await send(pool)).status, 200, 'a new connection serves the next request');
    assert.equal(srv.connections(), 2);
    await pool.close();
  });

  it('max_connection_duration drains a connection: the next request gets a new one', async () => {
    const srv = await startServer();
    servers.push(srv.server);
    const s = settings({}, { maxConnectionDurationMs: 150 });
    const pool = h1(srv.port, s);
    assert.equal((await send(pool)).status, 200);
    await waitFor(() => s.resources.stats.upstream_cx_max_duration_reached === 1, { timeoutMs: 3000 });
    await waitFor(() => srv.sockets.size === 0);
    assert.equal((await send(pool)).status, 200);
    assert.equal(srv.connections(), 2);
    await pool.close();
  });

  it('turns TCP keep-alive on with the configured idle time', async () => {
    const srv = await startServer();
    servers.push(srv.server);
    const calls: unknown[][] = [];
    const original = net.Socket.prototype.setKeepAlive;
    net.Socket.prototype.setKeepAlive = function (this: net.Socket, ...args: unknown[]) {
      calls.push(args);
      return original.apply(this, args as [boolean, number]);
    };
    try {
      const pool = h1(srv.port, settings({}, { tcpKeepalive: { probes: 3, timeSeconds: 7, intervalSeconds: 2 } }));
      assert.equal((await send(pool)).status, 200);
      await pool.close();
    } finally {
      net.Socket.prototype.setKeepAlive = original;
    }
    assert.deepEqual(calls[0], [true, 7000]);
  });

  it('a connection the server closes as a request arrives fails it as a reset on a reused connection', async () => {
    // The keep-alive race, made deterministic: the server answers the first request on a
    // connection and closes the connection when the second arrives, without a response byte.
    let seen = 0;
    const server = net.createServer((socket) => {
      let served = 0;
      socket.on('data', () => {
        seen++;
        if (served++ === 0) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
        else socket.destroy();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const pool = h1(port, settings());
    assert.equal((await send(pool)).status, 200);
    const raced = await send(pool);
    assert.equal(raced.failure?.kind, 'connection-termination');
    assert.equal(raced.failure?.beforeHeaders, true);
    assert.equal(raced.failure?.reusedConnection, true);
    const fresh = await send(pool, { freshConnection: true });
    assert.equal(fresh.status, 200, 'a fresh connection answers');
    assert.equal(seen, 3);
    await pool.close();
    server.close();
  });
});

describe('HTTP/2 connection pool', () => {
  it('carries max_concurrent_streams per connection; beyond it requests wait (max_connections 1)', async () => {
    let active = 0;
    let peak = 0;
    const sessions = new Set<http2.ServerHttp2Session>();
    const server = http2.createServer();
    server.on('session', (s) => sessions.add(s));
    server.on('stream', (stream) => {
      active++;
      peak = Math.max(peak, active);
      setTimeout(() => {
        active--;
        stream.respond({ ':status': 200 });
        stream.end('h2');
      }, 50);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const s = settings({ maxConnections: 1 }, { maxConcurrentStreams: 2 });
    const pool = new Http2Connector(`http://127.0.0.1:${port}`, { address: '127.0.0.1', port, stats: hostStats() }, s);
    const results = await Promise.all(Array.from({ length: 6 }, () => send(pool)));
    assert.deepEqual(results.map((r) => r.body), Array(6).fill('h2'));
    assert.equal(peak, 2, 'never more than two streams at once');
    assert.equal(sessions.size, 1, 'one connection');
    assert.ok(s.resources.stats.upstream_rq_pending_total >= 4);
    await pool.close();
    server.close();
  });

  it('max_requests_per_connection opens a new session after that many streams', async () => {
    const sessions = new Set<http2.ServerHttp2Session>();
    const server = http2.createServer();
    server.on('session', (s) => sessions.add(s));
    server.on('stream', (stream) => {
      stream.respond({ ':status': 200 });
      stream.end('h2');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const s = settings({}, { maxRequestsPerConnection: 2 });
    const pool = new Http2Connector(`http://127.0.0.1:${port}`, { address: '127.0.0.1', port, stats: hostStats() }, s);
    for (let i = 0; i < 5; i++) assert.equal((await send(pool)).status, 200);
    assert.equal(sessions.size, 3);
    await pool.close();
    server.close();
  });
});
