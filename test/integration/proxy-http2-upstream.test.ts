// The proxy's HTTP/2 upstream pool against a real node:http2 server that allows only two
// concurrent streams (SETTINGS_MAX_CONCURRENT_STREAMS 2): a backlog of requests handed to a fresh
// connection before the server's SETTINGS arrive must not fail. The connection takes at most 100
// streams until then (nghttp2's assumption, as Envoy's codec), the server refuses the excess with
// RST_STREAM REFUSED_STREAM, and refused streams (never processed upstream) go back to the pool,
// bodies included, instead of failing. Retries are off, so nothing else can hide a failure.
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { kubeService, virtualService, workloadEntry } from '../support/mesh-resources';
import { startMesh, startTestProxy, type Mesh, type TestProxy } from './proxy-harness';

const UPSTREAM_HOST = '127.0.81.1';
const PROXY_HOST = '127.0.81.2';

interface LimitedUpstream {
  port: number;
  /** Streams the server's handler saw, and the most one connection ran at once. */
  readonly served: number;
  readonly maxActive: number;
  /** Connections it accepted. */
  readonly sessions: number;
  close(): Promise<void>;
}

/** An HTTP/2 server allowing two streams at once; it answers like a gRPC server after 15 ms. */
async function startLimitedUpstream(): Promise<LimitedUpstream> {
  const server = http2.createServer({ settings: { maxConcurrentStreams: 2 } });
  const sessions = new Set<http2.ServerHttp2Session>();
  const active = new WeakMap<http2.Http2Session, number>();
  let maxActive = 0;
  let served = 0;
  let accepted = 0;
  server.on('session', (s) => {
    accepted++;
    sessions.add(s);
    active.set(s, 0);
    s.once('close', () => sessions.delete(s));
  });
  server.on('stream', (stream, headers) => {
    served++;
    const session = stream.session!;
    active.set(session, active.get(session)! + 1);
    maxActive = Math.max(maxActive, active.get(session)!);
    let counted = true;
    // Over on this side once the response's last frame is handed to node (the client may open
    // its next stream as soon as it sees it; 'close' comes later).
    const done = () => {
      if (counted) active.set(session, active.get(session)! - 1);
      counted = false;
    };
    stream.once('close', done);
    stream.on('error', () => undefined);
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      setTimeout(() => {
        if (stream.destroyed) return;
        const body = Buffer.concat(chunks);
        const grpc = headers['content-type'] === 'application/grpc';
        stream.respond({ ':status': 200, 'content-type': grpc ? 'application/grpc' : 'text/plain', 'x-path': String(headers[':path']) }, { waitForTrailers: grpc });
        if (grpc) {
          stream.once('wantTrailers', () => {
            done();
            stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'ok' });
          });
          stream.end(body);
        } else {
          done();
          stream.end(`echo ${headers[':path']}`);
        }
      }, 15);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, UPSTREAM_HOST, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get served() {
      return served;
    },
    get maxActive() {
      return maxActive;
    },
    get sessions() {
      return accepted;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
}

interface H2Response {
  status: number;
  body: Buffer;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders | null;
}

function send(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body: Buffer | null): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: body === null });
    let status = 0;
    let head: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | null = null;
    const chunks: Buffer[] = [];
    req.on('response', (h) => {
      status = Number(h[':status']);
      head = h;
    });
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => resolve({ status, headers: head, body: Buffer.concat(chunks), trailers }));
    req.on('error', reject);
    if (body !== null) req.end(body);
  });
}

/** A gRPC message frame: uncompressed, 4-byte length, payload. */
function grpcFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

describe('proxy HTTP/2 upstream pool', () => {
  let mesh: Mesh;
  let proxy: TestProxy;
  let upstream: LimitedUpstream;
  /** A second server, so the second test starts with a pool that has not seen SETTINGS either. */
  let plain: LimitedUpstream;

  before(async () => {
    upstream = await startLimitedUpstream();
    plain = await startLimitedUpstream();
    // Port name grpc: the clusters speak HTTP/2 upstream.
    mesh = await startMesh([
      kubeService('limited', [{ name: 'grpc', port: 50061 }], { app: 'limited' }),
      workloadEntry('limited-1', { address: UPSTREAM_HOST, labels: { app: 'limited' }, ports: { grpc: upstream.port } }),
      virtualService('limited', { hosts: ['limited'], http: [{ route: [{ destination: { host: 'limited' } }], retries: { attempts: 0 } }] }),
      kubeService('plain', [{ name: 'grpc', port: 50062 }], { app: 'plain' }),
      workloadEntry('plain-1', { address: UPSTREAM_HOST, labels: { app: 'plain' }, ports: { grpc: plain.port } }),
      virtualService('plain', { hosts: ['plain'], http: [{ route: [{ destination: { host: 'plain' } }], retries: { attempts: 0 } }] }),
    ]);
    proxy = await startTestProxy(mesh, { name: 'h2-client', address: PROXY_HOST });
  });

  after(async () => {
    await proxy?.close();
    await mesh?.close();
    await upstream?.close();
    await plain?.close();
  });

  it('queues more calls than the upstream allows at once onto a fresh connection without failures', async () => {
    const client = http2.connect(`http://${PROXY_HOST}:${proxy.outboundPort}`);
    try {
      const calls = 40;
      const results = await Promise.all(
        Array.from({ length: calls }, (_, i) =>
          send(
            client,
            { ':method': 'POST', ':path': '/weft.test.Limited/Echo', ':authority': 'limited:50061', 'content-type': 'application/grpc', te: 'trailers' },
            grpcFrame(`call-${i}`),
          ),
        ),
      );
      results.forEach((r, i) => {
        assert.equal(r.status, 200, `call ${i}: status`);
        assert.equal(r.trailers?.['grpc-status'], '0', `call ${i}: ${JSON.stringify(r.trailers ?? r.headers)}`);
        assert.deepEqual(r.body, grpcFrame(`call-${i}`), `call ${i}: the whole message came back`);
      });
      assert.ok(upstream.maxActive <= 2, `no connection ran more than 2 streams at once (${upstream.maxActive})`);
      const records = proxy.records.filter((r) => r.upstreamCluster === 'outbound|50061||limited.default.svc.cluster.local');
      assert.equal(records.length, calls);
      assert.ok(records.every((r) => r.status === 200 && !r.flags.length), `no failure flags: ${JSON.stringify(records.map((r) => r.flags))}`);
    } finally {
      client.close();
    }
  });

  it('does the same for bodiless requests, and serves the next burst on the connections it has', async () => {
    const client = http2.connect(`http://${PROXY_HOST}:${proxy.outboundPort}`);
    try {
      // Twice: the second burst lands on a connection whose SETTINGS are known.
      for (let round = 0; round < 2; round++) {
        const results = await Promise.all(
          Array.from({ length: 25 }, (_, i) => send(client, { ':method': 'GET', ':path': `/r${round}/${i}`, ':authority': 'plain:50062' }, null)),
        );
        results.forEach((r, i) => {
          assert.equal(r.status, 200, `round ${round} request ${i}`);
          assert.equal(r.body.toString(), `echo /r${round}/${i}`);
        });
      }
      assert.ok(plain.maxActive <= 2, `no connection ran more than 2 streams at once (${plain.maxActive})`);
    } finally {
      client.close();
    }
  });
});
