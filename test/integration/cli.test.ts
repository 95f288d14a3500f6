// The `weft` command as a user runs it: real child processes of bin/weft.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { waitFor } from '../support/wait-for';

const REPO = path.resolve(__dirname, '../../..');
const WEFT = path.join(REPO, 'bin', 'weft');

function weft(args: string[], cwd = REPO) {
  const r = spawnSync(process.execPath, [WEFT, ...args], { cwd, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('weft analyze', () => {
  it('passes the Bookinfo platform and Istio sample networking YAML', () => {
    const r = weft(['analyze', 'examples/bookinfo/platform', 'examples/bookinfo/networking/destination-rule-all.yaml', 'examples/bookinfo/networking/virtual-service-all-v1.yaml']);
    // Istio's sample defines subsets (ratings v2, details v2) that our platform does not run:
    // the analyzer warns about those, and there are no errors.
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^0 error\(s\)/m);
    assert.doesNotMatch(r.stdout, /^Error/m);
  });

  it('prints one line per problem with kind, name, file and field path, and exits 1', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-analyze-'));
    try {
      fs.writeFileSync(
        path.join(dir, 'bad.yaml'),
        [
          'apiVersion: networking.istio.io/v1',
          'kind: VirtualService',
          'metadata: {name: reviews, namespace: prod}',
          'spec:',
          '  hosts: [reviews]',
          '  http:',
          '  - route:',
          '    - destination: {host: reviews, subset: v9}',
          '      weight: -5',
        ].join('\n'),
      );
      const r = weft(['analyze', dir]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const lines = r.stdout.trim().split('\n');
      const weightLine = lines.find((l) => l.includes('spec.http[0].route[0].weight'));
      assert.ok(weightLine, `no line for the weight: ${r.stdout}`);
      assert.match(weightLine!, /VirtualService/);
      assert.match(weightLine!, /prod\/reviews/);
      assert.match(weightLine!, /bad\.yaml/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports cross-resource problems: a subset no DestinationRule defines, a missing Gateway', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-analyze-'));
    try {
      fs.copyFileSync(path.join(REPO, 'examples/bookinfo/platform/bookinfo-services.yaml'), path.join(dir, 'services.yaml'));
      fs.writeFileSync(
        path.join(dir, 'vs.yaml'),
        [
          'apiVersion: networking.istio.io/v1',
          'kind: VirtualService',
          'metadata: {name: reviews}',
          'spec:',
          '  hosts: [reviews]',
          '  gateways: [mesh, no-such-gateway]',
          '  http:',
          '  - route:',
          '    - destination: {host: reviews, subset: v1}',
        ].join('\n'),
      );
      const r = weft(['analyze', dir]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stdout, /IST0101.*subset/);
      assert.match(r.stdout, /IST0101.*no-such-gateway/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails clearly on a path that does not exist', () => {
    const r = weft(['analyze', 'no/such/dir']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no such file or directory/);
  });
});

describe('weft control', () => {
  it('starts, becomes ready, and exits cleanly on SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      [WEFT, 'control', '--config-dir', 'examples/bookinfo/platform', '--xds-address', '127.0.0.1:0', '--http-address', '127.0.0.1:0', '--secure-xds-address', '127.0.0.1:0'],
      { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WEFT_STATE_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'weft-cli-state-')) } },
    );
    let logs = '';
    child.stderr.on('data', (d) => (logs += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      let httpAddress = '';
      await waitFor(
        () => {
          const ready = logs.split('\n').find((l) => l.includes('"control_plane_ready"'));
          if (ready) httpAddress = JSON.parse(ready).http;
          return Boolean(ready);
        },
        { timeoutMs: 15_000, message: () => `control plane never logged ready: ${logs}` },
      );
      const res = await fetch(`http://${httpAddress}/ready`);
      assert.equal(res.status, 200);
      // every log line is one JSON object
      for (const line of logs.trim().split('\n')) assert.doesNotThrow(() => JSON.parse(line), line);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
    assert.match(logs, /"control_plane_stopped"/);
  });

  it('refuses a missing config directory with a hint', () => {
    const r = weft(['control', '--config-dir', '/no/such/dir', '--xds-address', '127.0.0.1:0', '--http-address', '127.0.0.1:0']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /does not exist.*hint/);
  });

  it('prints help and rejects unknown commands', () => {
    assert.match(weft(['--help']).stdout, /Commands:/);
    assert.match(weft(['control', '--help']).stdout, /--config-dir/);
    const r = weft(['frobnicate']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command/);
  });
});
