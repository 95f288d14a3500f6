// The Weft proxy as an ingress gateway (router node) with the real control plane: Gateway
// servers become listeners; HTTP routes from bound VirtualServices, TLS passthrough by SNI, and
// TCP forwarding.
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'undici';
import { createLogger } from '../../src/log/logger';
import { startProxy, type RunningProxy } from '../../src/proxy/proxy';
import { gateway, kubeService, virtualService, workloadEntry } from '../support/mesh-resources';
import { serviceWithBackends, startBackend, startMesh, type Backend, type Mesh } from './proxy-harness';

/** The bytes of a genuine TLS ClientHello for `servername` (captured from node:tls). */
async function clientHello(servername: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((s) => {
      s.once('data', (d) => {
        resolve(d);
        s.destroy();
        server.close();
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const c = tls.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, servername, rejectUnauthorized: false });
      c.on('error', () => undefined);
    });
    server.on('error', reject);
  });
}

/** A raw TCP server that answers every connection with its name, then echoes. */
async function namedEcho(name: string): Promise<{ port: number; close(): void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.once('data', (d) => {
      s.write(`${name}:${d.length}`);
      s.on('data', (more) => s.write(more));
    });
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

function exchange(port: number, payload: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(payload));
    let text = '';
    s.on('data', (d) => {
      text += d.toString('latin1');
      if (text.includes(':')) {
        s.destroy();
        resolve(text);
      }
    });
    s.on('error', reject);
    setTimeout(() => reject(new Error(`no answer, got "${text}"`)), 5000).unref();
  });
}

describe('proxy as an ingress gateway', () => {
  let mesh: Mesh;
  let gw: RunningProxy;
  let productpage: Backend;
  let secureA: { port: number; close(): void };
  let secureB: { port: number; close(): void };
  let tcpBackend: { port: number; close(): void };

  before(async () => {
    productpage = await startBackend('productpage-v1');
    secureA = await namedEcho('secure-a');
    secureB = await namedEcho('secure-b');
    tcpBackend = await namedEcho('tcp-echo');
    mesh = await startMesh([
      ...serviceWithBackends('productpage', 9080, [{ backend: productpage }]),
      kubeService('secure-a', [{ name: 'https', port: 443 }], { app: 'secure-a' }),
      workloadEntry('secure-a-1', { address: '127.0.0.1', labels: { app: 'secure-a' }, ports: { https: secureA.port } }),
      kubeService('secure-b', [{ name: 'https', port: 443 }], { app: 'secure-b' }),
      workloadEntry('secure-b-1', { address: '127.0.0.1', labels: { app: 'secure-b' }, ports: { https: secureB.port } }),
      kubeService('echo', [{ name: 'tcp', port: 9000 }], { app: 'echo' }),
      workloadEntry('echo-1', { address: '127.0.0.1', labels: { app: 'echo' }, ports: { tcp: tcpBackend.port } }),
      gateway('istio-system/ingress', {
        selector: { istio: 'ingressgateway' },
        servers: [
          { port: { number: 8080, name: 'http', protocol: 'HTTP' }, hosts: ['*'] },
          { port: { number: 8444, name: 'tls', protocol: 'TLS' }, hosts: ['*.secure.example'], tls: { mode: 'PASSTHROUGH' } },
          { port: { number: 31400, name: 'tcp', protocol: 'TCP' }, hosts: ['*'] },
          // TLS termination is not implemented yet: this listener must be refused on its own.
          { port: { number: 8443, name: 'https', protocol: 'HTTPS' }, hosts: ['bookinfo.example.com'], tls: { mode: 'SIMPLE', credentialName: 'bookinfo-cert' } },
        ],
      }),
      virtualService('frontend', {
        hosts: ['*'],
        gateways: ['istio-system/ingress'],
        http: [
          { match: [{ uri: { exact: '/productpage' } }, { uri: { prefix: '/static' } }], route: [{ destination: { host: 'productpage', port: { number: 9080 } } }] },
        ],
      }),
      virtualService('secure', {
        hosts: ['a.secure.example', 'b.secure.example'],
        gateways: ['istio-system/ingress'],
        tls: [
          { match: [{ port: 8444, sniHosts: ['a.secure.example'] }], route: [{ destination: { host: 'secure-a', port: { number: 443 } } }] },
          { match: [{ port: 8444, sniHosts: ['b.secure.example'] }], route: [{ destination: { host: 'secure-b', port: { number: 443 } } }] },
        ],
      }),
      virtualService('tcp', {
        hosts: ['*'],
        gateways: ['istio-system/ingress'],
        tcp: [{ match: [{ port: 31400 }], route: [{ destination: { host: 'echo', port: { number: 9000 } } }] }],
      }),
    ]);
    gw = await startProxy({
      xdsAddress: mesh.ads.address,
      node: {
        id: 'router~127.0.0.1~ingress-7d9.istio-system~istio-system.svc.cluster.local',
        metadata: { NAMESPACE: 'istio-system', LABELS: { istio: 'ingressgateway' } },
      },
      bindAddress: '127.0.0.1',
      ports: { admin: 0, stats: 0, health: 0 },
      listenerPorts: { 8080: 0, 8443: 0, 8444: 0, 31400: 0 },
      logger: createLogger({ level: 'error' }),
      xdsBackoff: { initialMs: 50, maxMs: 500 },
    });
    await gw.ready;
  });

  after(async () => {
    await gw?.close(200);
    await mesh?.close();
    await productpage?.close();
    secureA?.close();
    secureB?.close();
    tcpBackend?.close();
  });

  it('binds one listener per Gateway server port, refusing only the one it cannot serve', () => {
    const names = gw.listeners().map((l) => l.name).sort();
    assert.deepEqual(names, ['0.0.0.0_31400', '0.0.0.0_8080', '0.0.0.0_8444']);
    const lds = gw.xdsStatus().LDS;
    // credentialName: a Secret the control plane would push over ADS, which the proxy does not take.
    assert.match(String(lds.lastError), /^Listener "0\.0\.0\.0_8443": filter_chains\[0\]\.transport_socket\.typed_config\.common_tls_context\.tls_certificate_sds_secret_configs\[0\]\.sds_config: SDS secret "kubernetes:\/\/bookinfo-cert" is to be delivered over ADS/);
  });

  it('routes HTTP from bound VirtualServices, 404 for paths no route takes', async () => {
    const pool = new Pool(`http://127.0.0.1:${gw.listenerPort('0.0.0.0_8080')}`);
    try {
      const ok = await pool.request({ method: 'GET', path: '/productpage', headers: { host: 'bookinfo.example.com' } });
      const body = (await ok.body.json()) as { backend: string; headers: Record<string, string> };
      assert.equal(ok.statusCode, 200);
      assert.equal(body.backend, 'productpage-v1');
      assert.equal(body.headers.host, 'bookinfo.example.com');
      const missing = await pool.request({ method: 'GET', path: '/admin', headers: { host: 'bookinfo.example.com' } });
      await missing.body.dump();
      assert.equal(missing.statusCode, 404);
    } finally {
      await pool.close();
    }
  });

  it('passes TLS through by SNI without terminating it', async () => {
    const port = gw.listenerPort('0.0.0.0_8444')!;
    const helloA = await clientHello('a.secure.example');
    const helloB = await clientHello('b.secure.example');
    assert.equal(await exchange(port, helloA), `secure-a:${helloA.length}`);
    assert.equal(await exchange(port, helloB), `secure-b:${helloB.length}`);
  });

  it('forwards TCP server ports', async () => {
    const port = gw.listenerPort('0.0.0.0_31400')!;
    assert.equal(await exchange(port, Buffer.from('hello')), 'tcp-echo:5');
  });
});
