// The proxy's identity agent against the real control plane (CA on the secure port, bootstrap
// tokens in the state directory): a proxy gets a certificate for exactly its SPIFFE id, a proxy
// holding another workload's token gets none, certificates rotate under load between two
// sidecars with zero failed requests, renewal and xDS reconnection work on the certificate alone,
// and `weft proxy` wires it all from its flags.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, Pool, request } from 'undici';
import { rootCertPath, workloadTokenPath } from '../../src/ca/state-paths';
import { ControlPlane } from '../../src/control/control-plane';
import { createLogger } from '../../src/log/logger';
import { startProxy, type ProxyIdentityOptions, type RunningProxy } from '../../src/proxy/proxy';
import {
  edsCluster,
  httpConnectionManager,
  istioDownstreamTls,
  istioTransportSocketMatches,
  listener,
  loadAssignment,
  startStaticAds,
  staticCluster,
  testLogger,
  type StaticAds,
} from '../support/static-ads';
import { waitFor } from '../support/wait-for';
import { runWeft, WEFT } from './cli-harness';
import { sidecarNodeId, startBackend, type Backend, type BackendEcho } from './proxy-harness';

const PLATFORM = `
apiVersion: v1
kind: Service
metadata: {name: server, namespace: default}
spec:
  selector: {app: server}
  ports: [{name: http, port: 19980}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: server, namespace: default}
spec: {address: 127.0.0.1, labels: {app: server}, serviceAccount: server}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client, namespace: default}
spec: {address: 127.0.0.1, labels: {app: client}, serviceAccount: client}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: cli-sidecar, namespace: default}
spec: {address: 127.0.77.3, labels: {app: cli-sidecar}, serviceAccount: cli-sidecar}
`;

const id = (sa: string) => `spiffe://cluster.local/ns/default/sa/${sa}`;
const SNI = 'outbound_.19980_._.server.default.svc.cluster.local';

describe('proxy identity from the control plane CA', () => {
  let configDir: string;
  let stateDir: string;
  let cp: ControlPlane;
  let securePort: number;
  let ads: StaticAds;
  let backend: Backend;
  const proxies: RunningProxy[] = [];
  const children: ChildProcess[] = [];

  async function startControlPlane(secureXdsAddress: string): Promise<ControlPlane> {
    const plane = new ControlPlane({
      configDir,
      xdsAddress: '127.0.0.1:0',
      httpAddress: '127.0.0.1:0',
      secureXdsAddress,
      stateDir,
      logger: createLogger({ level: process.env.WEFT_TEST_LOGS === '1' ? 'debug' : 'error', write: (l) => process.stderr.write(l + '\n') }),
      pushDebounceMs: 10,
    });
    await plane.start();
    return plane;
  }

  const identity = (serviceAccount: string, workload: string, ttlSeconds = 3600, backoff = { initialMs: 100, maxMs: 500 }): ProxyIdentityOptions => ({
    caAddress: `127.0.0.1:${securePort}`,
    rootCertPath: rootCertPath(stateDir),
    tokenPath: workloadTokenPath(stateDir, 'default', workload),
    namespace: 'default',
    serviceAccount,
    certTtlSeconds: ttlSeconds,
    backoff,
  });

  async function sidecar(name: string, ident: ProxyIdentityOptions, extra: Parameters<typeof startProxy>[0] extends infer O ? Partial<O> : never = {}): Promise<RunningProxy> {
    const proxy = await startProxy({
      xdsAddress: ads.address,
      node: { id: sidecarNodeId(name, '127.0.0.1'), metadata: { NAMESPACE: 'default', WORKLOAD_NAME: name, INSTANCE_IPS: '127.0.0.1' } },
      bindAddress: '127.0.0.1',
      ports: { outbound: 0, inbound: 0, admin: 0, stats: 0, health: 0 },
      identity: ident,
      logger: testLogger(),
      xdsBackoff: { initialMs: 50, maxMs: 500 },
      initialFetchTimeoutMs: 3000,
      ...extra,
    });
    proxies.push(proxy);
    return proxy;
  }

  /** The server side: an mTLS-only inbound chain in front of the backend (its peer as a header). */
  const serverConfig = () => ({
    clusters: [staticCluster('inbound|19980||', '127.0.0.1', backend.port)],
    listeners: [
      listener('virtualInbound', 15006, [
        {
          filter_chain_match: { transport_protocol: 'tls' },
          transport_socket: istioDownstreamTls(),
          filters: [httpConnectionManager('inbound_19980', 'inbound|19980||', { requestHeadersToAdd: { 'x-peer-uri-san': '%DOWNSTREAM_PEER_URI_SAN%' } })],
        },
      ]),
    ],
  });

  /** The client side: auto mTLS to the server sidecar; upstream connections recycled every 25 requests. */
  const clientConfig = (serverInboundPort: number) => ({
    clusters: [edsCluster('outbound|19980||server', { transport_socket_matches: istioTransportSocketMatches(SNI, [id('server')]), max_requests_per_connection: 25 })],
    endpoints: [loadAssignment('outbound|19980||server', [{ address: '127.0.0.1', port: serverInboundPort, tlsMode: 'istio' }])],
    listeners: [listener('virtualOutbound', 15001, [{ filters: [httpConnectionManager('outbound', 'outbound|19980||server', { retry: { retry_on: 'connect-failure', num_retries: 2 } })] }])],
  });

  before(async () => {
    configDir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-identity-config-'));
    stateDir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'weft-identity-state-')), 'state');
    fs.writeFileSync(path.join(configDir, 'platform.yaml'), PLATFORM);
    cp = await startControlPlane('127.0.0.1:0');
    securePort = cp.secureXdsPort;
    backend = await startBackend('server-app');
    ads = await startStaticAds();
  });

  after(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    for (const p of proxies) await p.close(200);
    await ads?.close();
    await backend?.close();
    await cp?.stop(500);
    fs.rmSync(configDir, { recursive: true, force: true });
    fs.rmSync(path.dirname(stateDir), { recursive: true, force: true });
  });

  it('gets a certificate for exactly its SPIFFE id, chained to the mesh root', async () => {
    await ads.set('server', serverConfig());
    const server = await sidecar('server', identity('server', 'server'));
    await server.ready;
    const cert = server.secrets!.certificate('default')!;
    assert.deepEqual(cert.facts.uriSans, [id('server')]);
    const root = new X509Certificate(fs.readFileSync(rootCertPath(stateDir)));
    assert.ok(new X509Certificate(cert.certChainPem).verify(root.publicKey));
    assert.equal(server.secrets!.validation('ROOTCA')!.trustedCaPem.trim(), root.toString().trim());
    assert.equal(server.identityStatus()?.state, 'ready');
  });

  it('gets no certificate with another workload\'s token, and is not ready', async () => {
    await ads.set('impostor', serverConfig());
    // Claims the server's identity but holds the client's token.
    const impostor = await sidecar('impostor', { ...identity('server', 'client'), tokenPath: workloadTokenPath(stateDir, 'default', 'client') });
    const status = await waitFor(() => (impostor.identityStatus()?.lastError ? impostor.identityStatus() : undefined), { timeoutMs: 10_000, message: 'the CA answered' });
    assert.match(status.lastError!, /sa\/server.*sa\/client|sa\/client.*sa\/server/);
    assert.equal(status.state, 'retrying');
    assert.equal(impostor.secrets!.certificate('default'), undefined);
    await waitFor(() => impostor.xdsStatus().LDS?.received, { message: 'config received' });
    assert.equal(impostor.state(), 'PRE_INITIALIZING', 'its inbound chain needs a certificate it does not have');
  });

  it('rotates short-lived certificates under load with zero failed requests', async (t) => {
    await ads.set('rot-server', serverConfig());
    const server = await sidecar('rot-server', identity('server', 'server', 4));
    await server.ready;
    await ads.set('rot-client', clientConfig(server.listenerPort('virtualInbound')!));
    const client = await sidecar('rot-client', identity('client', 'client', 4));
    await client.ready;
    const serials = { server: new Set<string>(), client: new Set<string>() };
    const track = (proxy: RunningProxy, into: Set<string>) => {
      const note = () => {
        const c = proxy.secrets!.certificate('default');
        if (c) into.add(c.facts.serialNumber);
      };
      note();
      proxy.secrets!.on('update', note);
    };
    track(server, serials.server);
    track(client, serials.client);

    const url = `http://127.0.0.1:${client.listenerPort('virtualOutbound')}`;
    const keepAlive = new Pool(url, { connections: 4 });
    const failures: string[] = [];
    const peers = new Set<string>();
    let sent = 0;
    let ok = 0;
    const MIN = 2_000;
    const MAX = 40_000;
    // Runs until at least MIN requests went through and both sides rotated twice (three
    // certificates each), never past MAX.
    const enough = () => sent >= MAX || (sent >= MIN && serials.server.size >= 3 && serials.client.size >= 3);
    const send = async (fresh: boolean) => {
      sent++;
      const path = `/load/${sent}`;
      const client_ = fresh ? new Client(url) : undefined;
      try {
        const r = await (client_ ?? keepAlive).request({ method: 'GET', path, headers: { host: 'server' } });
        const body = await r.body.text();
        if (r.statusCode !== 200) failures.push(`${path}: ${r.statusCode} ${body.slice(0, 200)}`);
        else {
          ok++;
          peers.add(String((JSON.parse(body) as BackendEcho).headers['x-peer-uri-san']));
        }
      } catch (err) {
        failures.push(`${path}: ${(err as Error).message}`);
      } finally {
        await client_?.close();
      }
    };
    const worker = async (fresh: boolean) => {
      while (!enough()) await send(fresh);
    };
    const started = Date.now();
    try {
      await Promise.all([worker(false), worker(false), worker(false), worker(false), worker(true)]);
    } finally {
      await keepAlive.close();
    }
    const seconds = (Date.now() - started) / 1000;
    t.diagnostic(`${ok} requests in ${seconds.toFixed(1)}s; server certificates ${serials.server.size}, client certificates ${serials.client.size}`);
    assert.deepEqual(failures.slice(0, 10), [], `${failures.length} of ${sent} requests failed`);
    assert.ok(ok >= MIN, `${ok} requests in ${seconds}s`);
    assert.ok(serials.server.size >= 3, `server certificates: ${[...serials.server].join(', ')} (${seconds}s)`);
    assert.ok(serials.client.size >= 3, `client certificates: ${[...serials.client].join(', ')} (${seconds}s)`);
    assert.deepEqual([...peers], [id('client')], 'every request reached the server over mTLS as the client');
    assert.ok((client.identityStatus()?.rotations ?? 0) >= 2);
  });

  it('renews with its certificate alone, and reconnects xDS over mutual TLS with the rotated one', async () => {
    // A token of its own, so that removing it later does not disturb other tests.
    const token = await cp.createToken({ namespace: 'default', serviceAccount: 'client', workload: 'xds-client' });
    const node = { id: sidecarNodeId('client', '127.0.0.1'), metadata: { NAMESPACE: 'default', WORKLOAD_NAME: 'client', INSTANCE_IPS: '127.0.0.1', SERVICE_ACCOUNT: 'client', LABELS: { app: 'client' } } };
    const proxy = await sidecar('xds-client', { ...identity('client', 'xds-client', 4), tokenPath: token.path }, {
      xdsAddress: `127.0.0.1:${securePort}`,
      xdsMutualTls: { rootCertPath: rootCertPath(stateDir), tokenPath: token.path },
      node,
      listenerPorts: { 19980: 0 },
    });
    await proxy.ready;
    assert.ok(proxy.xdsStatus().CDS.received);
    const first = proxy.secrets!.certificate('default')!;
    // From now on only the certificate can authenticate the proxy.
    fs.rmSync(token.path);
    await waitFor(() => proxy.secrets!.certificate('default')!.version >= first.version + 2, { timeoutMs: 15_000, message: 'two renewals on the certificate alone' });
    await waitFor(() => first.facts.notAfter.getTime() < Date.now(), { timeoutMs: 10_000, message: 'the first certificate expired' });
    // A new control plane on the same port and state: the proxy's stream breaks and reconnects.
    await cp.stop(100);
    cp = await startControlPlane(`127.0.0.1:${securePort}`);
    const versionBefore = proxy.xdsStatus().CDS.version;
    await waitFor(() => proxy.xdsStatus().CDS.received && proxy.xdsStatus().CDS.version !== '' && cp.ads.syncStatus().some((s) => s.id === node.id), {
      timeoutMs: 15_000,
      message: `xDS reconnected to the new control plane (CDS was ${versionBefore})`,
    });
  });

  it('`weft proxy` gets its identity and serves mTLS config from its flags', async () => {
    const child = spawn(
      process.execPath,
      // The secure port is not 15012 here, so mutual TLS is asked for.
      [WEFT, 'proxy', '--workload', 'cli-sidecar', '--xds', `127.0.0.1:${securePort}`, '--xds-auth', 'mutual-tls', '--control', `127.0.0.1:${cp.httpPort}`, '--state-dir', stateDir, '--cert-ttl', '1h', '--log-level', 'warn'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(child);
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    await waitFor(
      async () => {
        const r = await request('http://127.0.77.3:15021/healthz/ready');
        await r.body.text();
        return r.statusCode === 200;
      },
      { timeoutMs: 20_000, intervalMs: 100, message: () => `weft proxy never became ready: ${output.slice(-2000)}` },
    );
    const secret = await runWeft(['proxy-config', 'secret', '--admin', '127.0.77.3:15000']);
    assert.equal(secret.code, 0, secret.stderr);
    assert.match(secret.stdout, new RegExp(`^default\\s+Cert Chain\\s+ACTIVE\\s+true\\s+[0-9a-f]+\\s+\\S+\\s+\\S+\\s+${id('cli-sidecar')}$`, 'm'));
    assert.match(secret.stdout, /^ROOTCA\s+CA\s+ACTIVE\s+true/m);
    const dump = JSON.parse(await (await request('http://127.0.77.3:15000/config_dump')).body.text());
    const bootstrap = dump.configs.find((c: { '@type': string }) => c['@type'].endsWith('BootstrapConfigDump'));
    assert.equal(bootstrap.bootstrap.node.metadata.INTERCEPTION_MODE, 'NONE');
    assert.equal(bootstrap.bootstrap.node.metadata.WEFT_APP_ADDRESS, '127.128.77.3');
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });
});
