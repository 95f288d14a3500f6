// `weft demo --netns` (issue 10): Bookinfo with every workload in its own network namespace,
// captured by iptables, the apps unchanged (no HTTP_PROXY, no BIND_ADDRESS). Istio's first tasks
// against it: the page through the gateway with reviews, a routing rule taking effect, STRICT
// mTLS refusing a plaintext peer; then Ctrl-C removes every namespace, rule and the bridge.
// The demo's ports are fixed (8080, 15010-15014), so this waits for the other demo test to end.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { requireCapturePrerequisites } from '../support/capture-prerequisites';
import { waitFor } from '../support/wait-for';

const REPO = path.resolve(__dirname, '../../..');
const WEFT = path.join(REPO, 'bin', 'weft');
const PAGE = 'http://127.0.0.1:8080/productpage';
const DETAILS = '10.250.0.12';

function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function reviewsServedBy(): Promise<string | undefined> {
  const res = await fetch(PAGE, { signal: AbortSignal.timeout(8000) });
  const html = await res.text();
  return /Reviews served by:\s*<?[^<]*?(reviews-v\d)/.exec(html)?.[1];
}

function apply(file: string): void {
  const r = spawnSync(process.execPath, [WEFT, 'apply', '-f', path.join(REPO, file)], { cwd: REPO, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
}

describe('weft demo --netns: Bookinfo with transparent capture', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-demo-netns-'));
  let demo: ChildProcess | undefined;
  let output = '';

  before(
    async () => {
      requireCapturePrerequisites();
      await waitFor(async () => !(await portInUse(15014)) && !(await portInUse(8080)) && !(await portInUse(15012)), {
        timeoutMs: 15 * 60_000,
        intervalMs: 1000,
        message: "the demo's ports (another demo still running)",
      });
      demo = spawn(process.execPath, [WEFT, 'demo', '--netns', '--quiet-apps', '--config-dir', path.join(dir, 'config'), '--state-dir', path.join(dir, 'state')], {
        cwd: REPO,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      demo.stdout!.on('data', (d) => (output += d));
      demo.stderr!.on('data', (d) => (output += d));
      await waitFor(() => output.includes('weft demo: ready') || demo!.exitCode !== null, { timeoutMs: 300_000, intervalMs: 250, message: () => output.slice(-4000) });
      assert.match(output, /weft demo: ready/, output.slice(-4000));
    },
    { timeout: 20 * 60_000 },
  );

  after(async () => {
    if (demo && demo.exitCode === null) {
      // Its own Ctrl-C path removes the namespaces; SIGKILL only if that hangs.
      const exited = new Promise<void>((resolve) => demo!.once('exit', () => resolve()));
      demo.kill('SIGINT');
      const timer = setTimeout(() => demo!.kill('SIGKILL'), 90_000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the page through the gateway shows reviews, from apps that only know mesh names', async () => {
    const seen = await waitFor(reviewsServedBy, { timeoutMs: 30_000, intervalMs: 500, message: 'reviews on the page' });
    assert.match(seen, /^reviews-v[123]$/);
    // Each app is in its own namespace at its own address on the bridge.
    assert.match(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout, /weft-productpage-v1/);
  });

  it('a routing rule takes effect: everything to reviews v1', async () => {
    apply('examples/bookinfo/networking/virtual-service-all-v1.yaml');
    await waitFor(
      async () => {
        for (let i = 0; i < 5; i++) if ((await reviewsServedBy()) !== 'reviews-v1') return false;
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 200, message: 'only reviews-v1' },
    );
  });

  it('STRICT mTLS refuses a plaintext peer at the app port, and the page still works', async () => {
    const plain = await fetch(`http://${DETAILS}:9080/details/0`, { signal: AbortSignal.timeout(5000) });
    assert.equal(plain.status, 200);
    apply('examples/bookinfo/security/peer-authentication-strict.yaml');
    await waitFor(
      () => fetch(`http://${DETAILS}:9080/details/0`, { signal: AbortSignal.timeout(5000), headers: { connection: 'close' } }).then(() => false, () => true),
      { timeoutMs: 30_000, intervalMs: 300, message: 'plaintext refused' },
    );
    assert.equal(await waitFor(reviewsServedBy, { timeoutMs: 30_000, intervalMs: 500 }), 'reviews-v1');
  });

  it('Ctrl-C removes every namespace, rule and the bridge', async () => {
    const exited = new Promise<void>((resolve) => demo!.once('exit', () => resolve()));
    demo!.kill('SIGINT');
    await exited;
    assert.doesNotMatch(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout, /weft-(productpage|details|reviews|ratings|httpbin)/);
    assert.equal(spawnSync('ip', ['link', 'show', 'dev', 'weft0']).status, 1, 'bridge removed');
    assert.doesNotMatch(spawnSync('iptables', ['-t', 'nat', '-S'], { encoding: 'utf8' }).stdout, /WEFT_BR_weft0/);
  });
});
