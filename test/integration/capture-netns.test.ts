// Transparent capture (issue 10), as root on Linux: two workloads in their own network namespaces
// on the test's own bridge (10.250.91.0/24), each with `weft run --netns` (capture rules, hosts
// file, `weft proxy --capture`), the apps unchanged. Curl in one namespace reaches the other by
// name through both sidecars with mutual TLS; an opaque TCP service and a server-first one work;
// REGISTRY_ONLY blocks an unknown address; STRICT refuses a plaintext peer; stopping removes
// every namespace, veth, rule and the bridge.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { requireCapturePrerequisites } from '../support/capture-prerequisites';
import { waitFor } from '../support/wait-for';

const REPO = path.resolve(__dirname, '../../..');
const WEFT = path.join(REPO, 'bin', 'weft');
const BRIDGE = 'weftcap91';
const BRIDGE_CIDR = '10.250.91.1/24';
const GATEWAY = '10.250.91.1';
const SERVER_IP = '10.250.91.10';
const CLIENT_IP = '10.250.91.11';
const NS_SERVER = 'weftcap91-server';
const NS_CLIENT = 'weftcap91-client';

const CONFIG = `
apiVersion: v1
kind: Service
metadata: {name: hello}
spec:
  selector: {app: hello}
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: hello}
  ports: [{name: tcp-echo, port: 7000}]
---
apiVersion: v1
kind: Service
metadata: {name: banner}
spec:
  selector: {app: hello}
  ports: [{name: tcp-banner, port: 2525}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: hello-v1}
spec: {address: ${SERVER_IP}, labels: {app: hello, version: v1}, serviceAccount: hello}
---
apiVersion: v1
kind: Service
metadata: {name: sleep}
spec:
  selector: {app: sleep}
  ports: [{name: http, port: 80}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: sleep}
spec: {address: ${CLIENT_IP}, labels: {app: sleep}, serviceAccount: sleep}
`;

// The server app: HTTP on 8080, a TCP echo on 7000, and a server-first protocol on 2525 (it
// speaks first, like SMTP or MySQL) — listening on every address, knowing nothing of the mesh.
const SERVER_APP = `
const http = require('node:http'), net = require('node:net');
http.createServer((q, r) => r.end('hello from ' + q.headers.host + '\\n')).listen(8080);
net.createServer((s) => s.pipe(s)).listen(7000);
net.createServer((s) => { s.write('220 banner ready\\r\\n'); s.on('data', (d) => s.end('250 ' + d)); }).listen(2525);
`;

// Runs in the client namespace as an ordinary (captured) process: prints what it got.
const CLIENT = `
const net = require('node:net');
const [host, port, send, timeoutMs] = process.argv.slice(1);
const started = Date.now();
const s = net.connect(Number(port), host);
let got = '';
s.setTimeout(Number(timeoutMs || 5000), () => { console.log(JSON.stringify({ error: 'timeout', got })); process.exit(0); });
s.on('connect', () => { if (send) s.write(send); });
s.on('data', (d) => { got += d; if (!send || got.includes(send)) { console.log(JSON.stringify({ got, ms: Date.now() - started })); s.destroy(); } });
s.on('error', (e) => { console.log(JSON.stringify({ error: e.code || e.message, got })); });
s.on('close', () => { if (!got) console.log(JSON.stringify({ error: 'closed', got })); });
`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

function httpGet(url: string, timeoutMs = 3000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    // A new connection each time (no keep-alive): policy applies to connections as they are made.
    const req = http.get(url, { timeout: timeoutMs, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** A command inside the client namespace, as a captured (non-proxy) process. */
function inClient(args: string[], timeoutMs = 20_000): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('ip', ['netns', 'exec', NS_CLIENT, ...args], { encoding: 'utf8', timeout: timeoutMs });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function tcpFromClient(host: string, port: number, send: string, timeoutMs = 5000): { got?: string; error?: string; ms?: number } {
  const r = inClient([process.execPath, '-e', CLIENT, host, String(port), send, String(timeoutMs)], timeoutMs + 15_000);
  const line = r.stdout.trim().split('\n')[0];
  return line ? JSON.parse(line) : { error: `no output: ${r.stderr}` };
}

function curlFromClient(url: string): { status: number | null; stdout: string; stderr: string } {
  return inClient(['curl', '-sS', '-m', '5', url]);
}

/** curl in the client namespace without blocking this process (which may be the server). */
function curlFromClientAsync(url: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', NS_CLIENT, 'curl', '-sS', '-m', '5', url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

function netnsList(): string {
  return spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
}

describe('transparent capture in network namespaces (weft run --netns)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-capture-'));
  const configDir = path.join(dir, 'config');
  const stateDir = path.join(dir, 'state');
  const children: ChildProcess[] = [];
  const logs = new Map<string, string>();
  let httpPort = 0;
  let xdsPort = 0;
  let secureXdsPort = 0;
  let hostNatBefore = '';

  const start = (name: string, args: string[]): ChildProcess => {
    const child = spawn(process.execPath, [WEFT, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    logs.set(name, '');
    const keep = (d: Buffer) => logs.set(name, ((logs.get(name) ?? '') + d.toString()).slice(-20_000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    children.push(child);
    return child;
  };
  const runArgs = (workload: string, netnsName: string) => [
    'run', '--netns', '--workload', workload, '--netns-name', netnsName, '--bridge', BRIDGE, '--bridge-address', BRIDGE_CIDR,
    '--control', `127.0.0.1:${httpPort}`, '--xds', `127.0.0.1:${secureXdsPort}`, '--xds-auth', 'mutual-tls', '--state-dir', stateDir,
  ];
  const logTail = () => [...logs.entries()].map(([n, l]) => `--- ${n}\n${l.slice(-3000)}`).join('\n');
  const stopAll = async () => {
    await Promise.all(
      [...children].reverse().map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const t = setTimeout(() => c.kill('SIGKILL'), 20_000);
            c.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            c.kill('SIGTERM');
          }),
      ),
    );
    children.length = 0;
  };

  before(async () => {
    requireCapturePrerequisites();
    hostNatBefore = spawnSync('iptables', ['-t', 'nat', '-S'], { encoding: 'utf8' }).stdout;
    fs.mkdirSync(configDir, { recursive: true });
    fs.writeFileSync(path.join(configDir, 'mesh.yaml'), CONFIG);
    [httpPort, xdsPort, secureXdsPort] = [await freePort(), await freePort(), await freePort()];
    start('control', [
      'control', '--config-dir', configDir, '--state-dir', stateDir, '--http-address', `127.0.0.1:${httpPort}`,
      '--xds-address', `127.0.0.1:${xdsPort}`, '--secure-xds-address', `127.0.0.1:${secureXdsPort}`,
    ]);
    await waitFor(async () => (await httpGet(`http://127.0.0.1:${httpPort}/ready`)).status === 200, { timeoutMs: 60_000, intervalMs: 200, message: logTail });
    start('hello', [...runArgs('hello-v1', NS_SERVER), '--', process.execPath, '-e', SERVER_APP]);
    start('sleep', [...runArgs('sleep', NS_CLIENT), '--', 'sleep', '3600']);
    for (const ip of [SERVER_IP, CLIENT_IP]) {
      await waitFor(async () => (await httpGet(`http://${ip}:15021/healthz/ready`)).status === 200, {
        timeoutMs: 120_000,
        intervalMs: 250,
        message: () => `sidecar on ${ip} ready\n${logTail()}`,
      });
    }
    // The server app is up once its port answers through the mesh.
    // curl exits 0 on a 503 too: wait for the service's own answer, through both sidecars.
    await waitFor(() => /hello from hello:8080/.test(curlFromClient('http://hello:8080/').stdout), { timeoutMs: 60_000, intervalMs: 500, message: logTail });
  });

  after(async () => {
    await stopAll();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('an unchanged client reaches a service in another namespace by name, through both sidecars with mutual TLS', async () => {
    const r = curlFromClient('http://hello:8080/');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /hello from hello:8080/);
    // The server's sidecar saw it arrive over mutual TLS from the client's identity.
    const stats = (await httpGet(`http://${SERVER_IP}:15090/stats/prometheus`)).body;
    const line = stats.split('\n').find((l) => l.startsWith('istio_requests_total{') && l.includes('reporter="destination"') && l.includes('source_workload="sleep"'));
    assert.ok(line, `no destination-reported request from sleep in:\n${stats.slice(0, 2000)}`);
    assert.match(line, /connection_security_policy="mutual_tls"/);
    assert.match(line, /destination_service="hello.default.svc.cluster.local"/);
    // The namespace resolves every form of the name.
    const hosts = inClient(['getent', 'hosts', 'hello.default.svc.cluster.local']);
    assert.match(hosts.stdout, /^240\.240\./);
  });

  it('an opaque TCP service works, and a server-first protocol gets its banner without waiting for sniffing', () => {
    const echo = tcpFromClient('echo', 7000, 'ping-tcp');
    assert.equal(echo.error, undefined, JSON.stringify(echo));
    assert.equal(echo.got, 'ping-tcp');
    const banner = tcpFromClient('banner', 2525, '', 4000);
    assert.equal(banner.error, undefined, JSON.stringify(banner));
    assert.match(banner.got!, /^220 banner ready/);
    // Sniffing would have held the connection for the 5 s sniff timeout.
    assert.ok(banner.ms! < 4000, `banner took ${banner.ms} ms`);
  });

  it('outboundTrafficPolicy: ALLOW_ANY passes an unknown address through, REGISTRY_ONLY blocks it', async () => {
    // An address outside the mesh: a server on the host, at the bridge address.
    const outside = http.createServer((_q, r) => r.end('outside\n'));
    await new Promise<void>((resolve) => outside.listen(26091, GATEWAY, resolve));
    try {
      const open = await curlFromClientAsync(`http://${GATEWAY}:26091/`);
      assert.equal(open.status, 0, open.stderr);
      assert.equal(open.stdout, 'outside\n');
      fs.writeFileSync(
        path.join(configDir, 'sidecar.yaml'),
        'apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default, namespace: default}\nspec:\n  outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n',
      );
      await waitFor(async () => (await curlFromClientAsync(`http://${GATEWAY}:26091/`)).status !== 0, { timeoutMs: 30_000, intervalMs: 300, message: 'REGISTRY_ONLY in effect' });
      // Mesh services still work.
      assert.equal(curlFromClient('http://hello:8080/').status, 0);
    } finally {
      outside.close();
      fs.rmSync(path.join(configDir, 'sidecar.yaml'), { force: true });
    }
  });

  it('PeerAuthentication STRICT refuses a plaintext peer connecting straight to the app port', async () => {
    // PERMISSIVE: a plaintext client on the host (another network namespace) is accepted.
    const plain = await httpGet(`http://${SERVER_IP}:8080/`);
    assert.match(plain.body, /hello from/);
    fs.writeFileSync(
      path.join(configDir, 'strict.yaml'),
      'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec:\n  mtls: {mode: STRICT}\n',
    );
    try {
      await waitFor(async () => httpGet(`http://${SERVER_IP}:8080/`).then(() => false, () => true), { timeoutMs: 30_000, intervalMs: 300, message: 'STRICT in effect' });
      // The app port cannot be reached around the sidecar, and mesh clients still get through.
      await assert.rejects(httpGet(`http://${SERVER_IP}:8080/`));
      const viaMesh = curlFromClient('http://hello:8080/');
      assert.equal(viaMesh.status, 0, viaMesh.stderr);
      assert.match(viaMesh.stdout, /hello from hello:8080/);
    } finally {
      fs.rmSync(path.join(configDir, 'strict.yaml'), { force: true });
    }
  });

  it('stopping removes the namespaces, veths, rules and the bridge it created', async () => {
    await stopAll();
    assert.doesNotMatch(netnsList(), new RegExp(`${NS_SERVER}|${NS_CLIENT}`));
    assert.equal(spawnSync('ip', ['link', 'show', 'dev', BRIDGE]).status, 1, 'bridge removed');
    assert.equal(fs.existsSync(`/etc/netns/${NS_SERVER}`), false);
    // Only this test's rules: other tests (weft demo --netns on its own bridge) may run meanwhile.
    const ours = (rules: string) => rules.split('\n').filter((l) => l.includes(BRIDGE) || l.includes('10.250.91.')).join('\n');
    const hostNatAfter = spawnSync('iptables', ['-t', 'nat', '-S'], { encoding: 'utf8' }).stdout;
    assert.equal(ours(hostNatAfter), '', hostNatAfter);
    assert.equal(ours(hostNatAfter), ours(hostNatBefore));
  });
});
