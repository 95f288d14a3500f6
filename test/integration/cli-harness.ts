// Test support for the operator CLI: a real ControlPlane in this process on a temporary config
// directory (ports picked by the OS), and bin/weft run as a child process against it — the way an
// operator uses them. Children are spawned asynchronously: the control plane answering them runs
// on this process's event loop.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ControlPlane } from '../../src/control/control-plane';
import { silentLogger } from '../../src/log/logger';

export const REPO = path.resolve(__dirname, '../../..');
export const WEFT = path.join(REPO, 'bin', 'weft');

export interface WeftRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runWeft(args: readonly string[], opts: { input?: string; env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {}): Promise<WeftRun> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
  if (!opts.env?.WEFT_CONTROL) delete env.WEFT_CONTROL;
  const child = spawn(process.execPath, [WEFT, ...args], { cwd: opts.cwd ?? REPO, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  child.stdin.end(opts.input ?? '');
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`weft ${args.join(' ')} did not finish within ${timeoutMs}ms; stdout: ${stdout}; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Writes `files` (relative path -> content) into a new temporary directory. */
export function tempConfigDir(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-cli-'));
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), content);
  }
  return dir;
}

/** Every file under `dir` (relative path -> content), to prove a refused change touched nothing. */
export function readTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) walk(full);
      else out[path.relative(dir, full)] = fs.readFileSync(full, 'utf8');
    }
  };
  walk(dir);
  return out;
}

export interface TestControlPlane {
  cp: ControlPlane;
  dir: string;
  /** host:port of the HTTP address (the CLI's --control). */
  address: string;
  /** bin/weft with WEFT_CONTROL pointing at this control plane. */
  weft(args: readonly string[], opts?: { input?: string; env?: Record<string, string> }): Promise<WeftRun>;
  /** Stops and starts a new control plane on the same directory (new ports). */
  restart(): Promise<void>;
  /** Stops the control plane and removes the directory. */
  close(): Promise<void>;
}

export async function startTestControlPlane(files: Record<string, string>): Promise<TestControlPlane> {
  const dir = tempConfigDir(files);
  const start = async () => {
    const cp = new ControlPlane({ configDir: dir, xdsAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', logger: silentLogger, pushDebounceMs: 10, pushDebounceMaxMs: 50 });
    await cp.start();
    return cp;
  };
  const harness: TestControlPlane = {
    cp: await start(),
    dir,
    get address() {
      return `127.0.0.1:${harness.cp.httpPort}`;
    },
    weft: (args, opts = {}) => runWeft(args, { ...opts, env: { WEFT_CONTROL: harness.address, ...opts.env } }),
    restart: async () => {
      await harness.cp.stop(100);
      harness.cp = await start();
    },
    close: async () => {
      await harness.cp.stop(100);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return harness;
}

/** POST/GET/DELETE to the config API; returns status and parsed JSON (or text). */
export async function api(address: string, method: string, p: string, body?: string, contentType = 'application/yaml'): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://${address}${p}`, {
    method,
    ...(body !== undefined ? { body, headers: { 'content-type': contentType } } : {}),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed };
}

// ---------------------------------------------------------------------------------------------
// Fixtures: Istio's Bookinfo reviews and ratings, as a user writes them

export const SERVICES = `# Bookinfo services on plain machines
apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: ratings}
spec:
  selector: {app: ratings}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1}
spec: {address: 127.0.10.3, labels: {app: reviews, version: v1}, serviceAccount: bookinfo-reviews}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2}
spec: {address: 127.0.10.4, labels: {app: reviews, version: v2}, serviceAccount: bookinfo-reviews}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ratings-v1}
spec: {address: 127.0.10.5, labels: {app: ratings, version: v1}, serviceAccount: bookinfo-ratings}
`;

export const DESTINATION_RULES = `# Subsets, one DestinationRule per service
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews   # the one the tests rewrite
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
# ratings keeps its comment and its flow style
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings}
spec: {host: ratings, subsets: [{name: v1, labels: {version: v1}}]}
`;

export function reviewsRoute(subset: string, extra = ''): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: ${subset}
${extra}`;
}
