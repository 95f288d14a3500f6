// The CA from the command line: `weft token create` against a running control plane, and
// `weft control` started as an operator would, with its state directory and secure address.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { rootCertPath, workloadTokenPath } from '../../src/ca/state-paths';
import { ControlPlane } from '../../src/control/control-plane';
import { silentLogger } from '../../src/log/logger';
import { waitFor } from '../support/wait-for';
import { REPO, runWeft, tempConfigDir, WEFT } from './cli-harness';

function mode(file: string): number {
  return fs.statSync(file).mode & 0o777;
}

describe('weft token create', () => {
  let cp: ControlPlane;
  let bare: ControlPlane;
  let stateDir: string;
  const dirs: string[] = [];

  before(async () => {
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-token-cli-'));
    const configDir = tempConfigDir({ 'empty.yaml': '' });
    dirs.push(stateDir, configDir);
    cp = new ControlPlane({ configDir, xdsAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', stateDir, logger: silentLogger });
    bare = new ControlPlane({ configDir, xdsAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', logger: silentLogger });
    await cp.start();
    await bare.start();
  });
  after(async () => {
    await cp?.stop(200);
    await bare?.stop(200);
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('writes the token file for a gateway and prints its path', async () => {
    const r = await runWeft(['token', 'create', '-n', 'istio-system', '--service-account', 'ingress-sa', '--workload', 'ingressgateway', '--control', `127.0.0.1:${cp.httpPort}`]);
    assert.equal(r.code, 0, r.stderr);
    const file = workloadTokenPath(stateDir, 'istio-system', 'ingressgateway');
    assert.equal(r.stdout, `${file}\n`);
    assert.equal(mode(file), 0o600);
    assert.deepEqual(await cp.tokens!.verify(fs.readFileSync(file, 'utf8').trim()), { namespace: 'istio-system', serviceAccount: 'ingress-sa', workload: 'ingressgateway' });
  });

  it('prints the token and the root certificate path with -o json', async () => {
    const r = await runWeft(['token', 'create', '--workload', 'edge', '-o', 'json'], { env: { WEFT_CONTROL: `127.0.0.1:${cp.httpPort}` } });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { path: string; token: string; rootCert: string };
    assert.equal(out.path, workloadTokenPath(stateDir, 'default', 'edge'));
    assert.equal(out.rootCert, rootCertPath(stateDir));
    assert.equal((await cp.tokens!.verify(out.token)).serviceAccount, 'default');
  });

  it('explains usage mistakes and refusals', async () => {
    const noWorkload = await runWeft(['token', 'create', '--control', `127.0.0.1:${cp.httpPort}`]);
    assert.equal(noWorkload.code, 2);
    assert.match(noWorkload.stderr, /--workload NAME is required[\s\S]*Usage: weft token create/);
    const noVerb = await runWeft(['token']);
    assert.equal(noVerb.code, 2);
    const badName = await runWeft(['token', 'create', '--workload', 'Bad_Name', '--control', `127.0.0.1:${cp.httpPort}`]);
    assert.equal(badName.code, 1);
    assert.match(badName.stderr, /workload "Bad_Name" is not a Kubernetes name/);
    const noState = await runWeft(['token', 'create', '--workload', 'x', '--control', `127.0.0.1:${bare.httpPort}`]);
    assert.equal(noState.code, 1);
    assert.match(noState.stderr, /without a state directory.*hint: start weft control with --state-dir/);
  });
});

describe('weft control with the CA', () => {
  it('creates the CA in --state-dir, serves TLS on the secure address and says where in its ready line', async () => {
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-control-state-'));
    const child = spawn(
      process.execPath,
      [
        WEFT,
        'control',
        '--config-dir',
        'examples/bookinfo/platform',
        '--xds-address',
        '127.0.0.1:0',
        '--http-address',
        '127.0.0.1:0',
        '--secure-xds-address',
        '127.0.0.1:0',
        '--state-dir',
        stateDir,
        '--max-workload-cert-ttl',
        '48h',
      ],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let logs = '';
    child.stderr.on('data', (d) => (logs += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const readyLine = () => {
        const line = logs.split('\n').find((l) => l.includes('"control_plane_ready"'));
        return line ? (JSON.parse(line) as { secureXds: string; stateDir: string }) : undefined;
      };
      const ready = await Promise.race([
        exited.then((code) => assert.fail(`weft control exited with ${code}: ${logs}`)),
        waitFor(readyLine, { timeoutMs: 15_000, message: () => `control plane never logged ready: ${logs}` }),
      ]);
      assert.equal(ready.stateDir, stateDir);
      const rootPem = fs.readFileSync(rootCertPath(stateDir), 'utf8');
      // Every WorkloadEntry of the Bookinfo platform has its token before the control plane is ready.
      assert.equal(mode(workloadTokenPath(stateDir, 'default', 'productpage-v1')), 0o600);
      const [host, port] = [ready.secureXds.slice(0, ready.secureXds.lastIndexOf(':')), Number(ready.secureXds.slice(ready.secureXds.lastIndexOf(':') + 1))];
      const peer = await new Promise<tls.PeerCertificate>((resolve, reject) => {
        const conn = tls.connect({ host, port, ca: rootPem, servername: 'istiod.istio-system.svc', ALPNProtocols: ['h2'] }, () => {
          resolve(conn.getPeerCertificate());
          conn.end();
        });
        conn.on('error', reject);
      });
      assert.match(peer.subjectaltname ?? '', /DNS:istiod\.istio-system\.svc.*IP Address:127\.0\.0\.1/);
    } finally {
      child.kill('SIGTERM');
      await exited;
      fs.rmSync(stateDir, { recursive: true, force: true });
    }
    assert.equal(child.exitCode, 0, logs);
  });

  it('refuses a malformed --max-workload-cert-ttl', async () => {
    const r = await runWeft(['control', '--config-dir', 'examples/bookinfo/platform', '--max-workload-cert-ttl', 'forever']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--max-workload-cert-ttl "forever" is not a duration/);
  });
});
