// `weft proxy` and `weft run` as a user meshes their own service: a real control plane, the real
// sidecar process, and an application that only knows HTTP_PROXY and mesh names.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control/control-plane';
import { silentLogger } from '../../src/log/logger';

const REPO = path.resolve(__dirname, '../../..');
const WEFT = path.join(REPO, 'bin', 'weft');

const CONFIG = `
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 8080}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: echo-v1}
spec: {address: 127.0.31.1, labels: {app: echo, version: v1}}
---
apiVersion: v1
kind: Service
metadata: {name: client}
spec:
  selector: {app: client}
  ports: [{name: http, port: 8080}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client-v1}
spec: {address: 127.0.31.2, labels: {app: client, version: v1}, serviceAccount: client}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo}
spec:
  hosts: [echo]
  http:
  - route:
    - destination: {host: echo}
      headers:
        request:
          set: {x-routed-by: weft}
`;

// The user's application: calls http://echo:8080 through whatever HTTP_PROXY says, prints the answer.
const APP = `
const http = require('node:http');
const proxy = new URL(process.env.HTTP_PROXY);
const req = http.request({ host: proxy.hostname, port: proxy.port, path: 'http://echo:8080/hello', headers: { host: 'echo:8080' } }, (res) => {
  let body = '';
  res.on('data', (d) => (body += d));
  res.on('end', () => { console.log(JSON.stringify({ status: res.statusCode, body, bind: process.env.BIND_ADDRESS })); process.exit(0); });
});
req.on('error', (e) => { console.error(e.message); process.exit(3); });
req.end();
`;

function weftAsync(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [WEFT, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('weft run', () => {
  let dir: string;
  let stateDir: string;
  let cp: ControlPlane;
  let echo: http.Server;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-run-'));
    fs.writeFileSync(path.join(dir, 'mesh.yaml'), CONFIG);
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-run-state-'));
    cp = new ControlPlane({
      configDir: dir,
      stateDir,
      xdsAddress: '127.0.0.1:0',
      secureXdsAddress: '127.0.0.1:0',
      httpAddress: '127.0.0.1:0',
      logger: silentLogger,
      pushDebounceMs: 10,
    });
    await cp.start();
    echo = http.createServer((req, res) => res.end(`echo saw ${req.url} routed-by=${req.headers['x-routed-by']}`));
    await new Promise<void>((resolve) => echo.listen(8080, '127.0.31.1', resolve));
  });

  after(async () => {
    await new Promise((resolve) => echo.close(resolve));
    await cp.stop(100);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  it("runs the user's app beside its sidecar, which routes by mesh name per the VirtualService", async () => {
    const child = spawn(
      process.execPath,
      [
        WEFT, 'run', '--workload', 'client-v1', '--xds', `127.0.0.1:${cp.secureXdsPort}`, '--xds-auth', 'mutual-tls', '--state-dir', stateDir,
        '--control', `127.0.0.1:${cp.httpPort}`, '--', process.execPath, '-e', APP,
      ],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.on('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    assert.equal(code, 0, `weft run exited ${code}: ${stdout}\n${stderr}`);
    const answer = JSON.parse(stdout.trim().split('\n').filter((l) => l.startsWith('{"status"')).pop()!);
    assert.equal(answer.status, 200);
    assert.equal(answer.body, 'echo saw /hello routed-by=weft');
    // the app listens on its private address; the sidecar owns the workload address
    assert.equal(answer.bind, '127.128.31.2');
    // the sidecar it started has stopped with it
    assert.equal(spawnSync('pgrep', ['-f', 'proxy --workload client-v1'], { encoding: 'utf8' }).stdout.trim(), '');
  });

  it('refuses an unknown workload and a missing command clearly', async () => {
    // async: the control plane lives in this process and must keep answering
    const unknown = await weftAsync(['run', '--workload', 'nope', '--control', `127.0.0.1:${cp.httpPort}`, '--', 'true']);
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /WorkloadEntry default\/nope not found/);
    const noCommand = await weftAsync(['run', '--workload', 'client-v1']);
    assert.equal(noCommand.status, 2);
    assert.match(noCommand.stderr, /give the command to run after --/);
  });
});
