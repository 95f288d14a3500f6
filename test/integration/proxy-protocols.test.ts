// Protocols through the Weft proxy with the real control plane: HTTP/2 cleartext clients, gRPC
// (unary, server streaming, error statuses, via HTTP_PROXY too) to HTTP/2 upstreams, and TCP
// services forwarded as raw streams (CONNECT tunnels, server-first protocols included).
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { ConfigResource } from '../../src/config/resources';
import { startGrpcBackend, whoamiServiceDefinition, type GrpcBackend, type WhoamiReply } from '../support/grpc-backends';
import { kubeService, virtualService, workloadEntry } from '../support/mesh-resources';
import { serviceWithBackends, startBackend, startMesh, startTestProxy, type Backend, type Mesh, type TestProxy } from './proxy-harness';

const passthrough = (b: Buffer) => b;
/** A streaming method and a failing method next to Whoami, without a .proto. */
const extraDefinition: grpc.ServiceDefinition = {
  Count: { path: '/weft.test.Extra/Count', requestStream: false, responseStream: true, requestSerialize: passthrough, requestDeserialize: passthrough, responseSerialize: passthrough, responseDeserialize: passthrough },
  Fail: { path: '/weft.test.Extra/Fail', requestStream: false, responseStream: false, requestSerialize: passthrough, requestDeserialize: passthrough, responseSerialize: passthrough, responseDeserialize: passthrough },
  Chat: { path: '/weft.test.Extra/Chat', requestStream: true, responseStream: true, requestSerialize: passthrough, requestDeserialize: passthrough, responseSerialize: passthrough, responseDeserialize: passthrough },
};

async function startExtraServer(): Promise<{ port: number; close(): void }> {
  const server = new grpc.Server();
  server.addService(extraDefinition, {
    Count: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      const n = Number(call.request.toString());
      for (let i = 1; i <= n; i++) call.write(Buffer.from(String(i)));
      call.end();
    },
    Fail: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      cb({ code: grpc.status.FAILED_PRECONDITION, details: 'not today' });
    },
    Chat: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on('data', (d: Buffer) => call.write(Buffer.from(`echo:${d.toString()}`)));
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { port, close: () => server.forceShutdown() };
}

function unary(client: grpc.Client, path: string, body: Buffer, metadata = new grpc.Metadata()): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(path, passthrough, passthrough, body, metadata, { deadline: Date.now() + 5000 }, (err, value) => (err ? reject(err) : resolve(value!))),
  );
}

async function tcpEcho(banner?: string): Promise<{ port: number; close(): void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    if (banner) s.write(banner);
    s.on('data', (d) => s.write(d));
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

/** Opens a CONNECT tunnel through the proxy; resolves with the socket once established. */
function connectTunnel(proxyPort: number, target: string): Promise<{ socket: net.Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(proxyPort, '127.0.0.1', () => socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`));
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      const head = buf.subarray(0, end).toString();
      if (!head.startsWith('HTTP/1.1 200')) return reject(new Error(`CONNECT refused: ${head}`));
      resolve({ socket, rest: buf.subarray(end + 4) });
    };
    socket.on('data', onData);
    socket.on('error', reject);
  });
}

function readUntil(socket: net.Socket, initial: Buffer, want: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = initial.toString();
    if (text.includes(want)) return resolve(text);
    const timer = setTimeout(() => reject(new Error(`no "${want}" in "${text}"`)), 5000);
    socket.on('data', (d) => {
      text += d.toString();
      if (text.includes(want)) {
        clearTimeout(timer);
        resolve(text);
      }
    });
  });
}

/** A websocket-ish server: completes the Upgrade handshake, then echoes raw bytes. */
async function upgradeEcho(): Promise<{ port: number; close(): void }> {
  const { createHash } = await import('node:crypto');
  const http = await import('node:http');
  const server = http.createServer((_req, res) => res.end('not an upgrade'));
  server.on('upgrade', (req, socket: net.Socket) => {
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\nx-path: ${req.url}\r\n\r\n`);
    socket.on('data', (d) => socket.write(d));
    socket.on('error', () => undefined);
  });
  const sockets = new Set<net.Socket>();
  server.on('upgrade', (_req, socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

describe('proxy protocols', () => {
  let mesh: Mesh;
  let proxy: TestProxy;
  let web: Backend;
  let greeterV1: GrpcBackend;
  let extra: { port: number; close(): void };
  let echo: { port: number; close(): void };
  let banner: { port: number; close(): void };
  let ws: { port: number; close(): void };
  let all: ConfigResource[];

  before(async () => {
    web = await startBackend('web-v1');
    greeterV1 = await startGrpcBackend({ name: 'greeter-1', version: 'v1' });
    extra = await startExtraServer();
    echo = await tcpEcho();
    banner = await tcpEcho('220 hello from the server\r\n');
    ws = await upgradeEcho();
    const resources: ConfigResource[] = [
      ...serviceWithBackends('web', 8080, [{ backend: web }]),
      kubeService('greeter', [{ name: 'grpc', port: 50051 }], { app: 'greeter' }),
      workloadEntry('greeter-1', { address: '127.0.0.1', labels: { app: 'greeter' }, ports: { grpc: greeterV1.port } }),
      kubeService('extra', [{ name: 'grpc', port: 50052 }], { app: 'extra' }),
      workloadEntry('extra-1', { address: '127.0.0.1', labels: { app: 'extra' }, ports: { grpc: extra.port } }),
      kubeService('echo', [{ name: 'tcp', port: 9000 }], { app: 'echo' }),
      workloadEntry('echo-1', { address: '127.0.0.1', labels: { app: 'echo' }, ports: { tcp: echo.port } }),
      kubeService('smtp', [{ name: 'tcp-smtp', port: 2525 }], { app: 'smtp' }),
      workloadEntry('smtp-1', { address: '127.0.0.1', labels: { app: 'smtp' }, ports: { 'tcp-smtp': banner.port } }),
      kubeService('chat', [{ name: 'http', port: 8081 }], { app: 'chat' }),
      workloadEntry('chat-1', { address: '127.0.0.1', labels: { app: 'chat' }, ports: { http: ws.port } }),
      virtualService('greeter', { hosts: ['greeter'], http: [{ route: [{ destination: { host: 'greeter' } }], headers: { response: { set: { 'x-via': 'weft' } } } }] }),
    ];
    all = resources;
    mesh = await startMesh(resources);
    proxy = await startTestProxy(mesh, { name: 'client', address: '127.0.0.1' });
  });

  after(async () => {
    await proxy?.close();
    await mesh?.close();
    await web?.close();
    await greeterV1?.close();
    extra?.close();
    echo?.close();
    banner?.close();
    ws?.close();
  });

  it('upgrades websocket connections and carries their bytes both ways', async () => {
    const socket = net.connect(proxy.outboundPort, '127.0.0.1');
    try {
      await new Promise((r) => socket.once('connect', r));
      socket.write('GET /socket HTTP/1.1\r\nHost: chat:8081\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
      const head = await readUntil(socket, Buffer.alloc(0), '\r\n\r\n');
      assert.match(head, /^HTTP\/1\.1 101/);
      assert.match(head, /sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/i);
      assert.match(head, /x-path: \/socket/);
      socket.write('frame-bytes');
      assert.match(await readUntil(socket, Buffer.alloc(0), 'frame-bytes'), /frame-bytes/);
    } finally {
      socket.destroy();
    }
  });

  it('serves HTTP/2 cleartext clients (prior knowledge) and forwards to HTTP/1.1 upstreams', async () => {
    const session = http2.connect(`http://127.0.0.1:${proxy.outboundPort}`);
    try {
      for (let i = 0; i < 3; i++) {
        const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = session.request({ ':method': 'POST', ':path': `/h2/${i}`, ':authority': 'web:8080', 'content-type': 'text/plain' });
          let status = 0;
          let body = '';
          req.on('response', (h) => (status = Number(h[':status'])));
          req.on('data', (d) => (body += d));
          req.on('end', () => resolve({ status, body }));
          req.on('error', reject);
          req.end(`payload-${i}`);
        });
        assert.equal(status, 200);
        const echoed = JSON.parse(body);
        assert.equal(echoed.backend, 'web-v1');
        assert.equal(echoed.path, `/h2/${i}`);
        assert.equal(echoed.body, `payload-${i}`);
        assert.equal(echoed.headers.host, 'web:8080');
      }
      assert.equal(proxy.records.at(-1)?.protocol, 'HTTP/2');
    } finally {
      session.close();
    }
  });

  it('carries gRPC unary calls to an HTTP/2 upstream, with metadata and response headers', async () => {
    const client = new grpc.Client(`127.0.0.1:${proxy.outboundPort}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'greeter:50051' });
    try {
      const md = new grpc.Metadata();
      md.set('x-user', 'ada');
      for (let i = 0; i < 5; i++) {
        const reply = JSON.parse((await unary(client, '/weft.test.Whoami/Whoami', Buffer.from('{}'), md)).toString()) as WhoamiReply;
        assert.deepEqual(reply, { name: 'greeter-1', version: 'v1', user: 'ada' });
      }
      assert.equal(proxy.records.at(-1)?.upstreamCluster, 'outbound|50051||greeter.default.svc.cluster.local');
    } finally {
      client.close();
    }
  });

  it('streams gRPC responses and passes error statuses (trailers) through', async () => {
    const client = new grpc.Client(`127.0.0.1:${proxy.outboundPort}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'extra:50052' });
    try {
      const items = await new Promise<string[]>((resolve, reject) => {
        const out: string[] = [];
        const call = client.makeServerStreamRequest('/weft.test.Extra/Count', passthrough, passthrough, Buffer.from('5'));
        call.on('data', (d: Buffer) => out.push(d.toString()));
        call.on('end', () => resolve(out));
        call.on('error', reject);
      });
      assert.deepEqual(items, ['1', '2', '3', '4', '5']);
      await assert.rejects(unary(client, '/weft.test.Extra/Fail', Buffer.from('')), (err: grpc.ServiceError) => {
        assert.equal(err.code, grpc.status.FAILED_PRECONDITION);
        assert.equal(err.details, 'not today');
        return true;
      });
    } finally {
      client.close();
    }
  });

  it('carries bidirectional gRPC streams message by message (no request buffering)', async () => {
    const client = new grpc.Client(`127.0.0.1:${proxy.outboundPort}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'extra:50052' });
    try {
      const call = client.makeBidiStreamRequest('/weft.test.Extra/Chat', passthrough, passthrough);
      const replies: string[] = [];
      const next = () => new Promise<string>((resolve, reject) => {
        call.once('data', (d: Buffer) => resolve(d.toString()));
        call.once('error', reject);
      });
      // Each message waits for its echo: a proxy that waited for the whole request would hang.
      for (const word of ['one', 'two', 'three']) {
        const reply = next();
        call.write(Buffer.from(word));
        replies.push(await reply);
      }
      call.end();
      assert.deepEqual(replies, ['echo:one', 'echo:two', 'echo:three']);
    } finally {
      client.close();
    }
  });

  it('answers gRPC clients in gRPC: an unknown service port is UNAVAILABLE, not an HTML page', async () => {
    mesh.publish([
      ...serviceWithBackends('web', 8080, [{ backend: web }]),
      kubeService('greeter', [{ name: 'grpc', port: 50051 }], { app: 'nobody' }),
    ]);
    await mesh.converged();
    const client = new grpc.Client(`127.0.0.1:${proxy.outboundPort}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'greeter:50051' });
    try {
      await assert.rejects(unary(client, '/weft.test.Whoami/Whoami', Buffer.from('{}')), (err: grpc.ServiceError) => {
        assert.equal(err.code, grpc.status.UNAVAILABLE);
        assert.equal(err.details, 'no healthy upstream');
        return true;
      });
    } finally {
      client.close();
      mesh.publish(all);
      await mesh.converged();
    }
  });

  it('lets gRPC clients use the proxy as HTTP_PROXY (CONNECT tunnel to the service)', async () => {
    const saved = process.env.http_proxy;
    process.env.http_proxy = `http://127.0.0.1:${proxy.outboundPort}`;
    let client: grpc.Client;
    try {
      client = new grpc.Client('greeter:50051', grpc.credentials.createInsecure());
    } finally {
      if (saved === undefined) delete process.env.http_proxy;
      else process.env.http_proxy = saved;
    }
    try {
      const reply = JSON.parse((await unary(client, '/weft.test.Whoami/Whoami', Buffer.from('{}'))).toString()) as WhoamiReply;
      assert.equal(reply.name, 'greeter-1');
    } finally {
      client.close();
    }
  });

  it('forwards TCP services as raw streams through CONNECT', async () => {
    const { socket, rest } = await connectTunnel(proxy.outboundPort, 'echo:9000');
    try {
      socket.write('ping-1\n');
      assert.match(await readUntil(socket, rest, 'ping-1'), /ping-1/);
      const big = 'x'.repeat(256 * 1024);
      socket.write(big);
      const got = await readUntil(socket, Buffer.alloc(0), 'x'.repeat(1024));
      assert.ok(got.length > 0);
    } finally {
      socket.destroy();
    }
  });

  it('forwards server-first TCP protocols (the server speaks before the client)', async () => {
    const { socket, rest } = await connectTunnel(proxy.outboundPort, 'smtp:2525');
    try {
      assert.match(await readUntil(socket, rest, 'hello'), /220 hello from the server/);
    } finally {
      socket.destroy();
    }
  });
});
