// Interop proof with a client nobody here wrote: a proxyless gRPC client (@grpc/grpc-js-xds, in a
// child process) resolves `xds:///whoami...` through Weft's ADS server and routes calls to real
// gRPC backends by Istio VirtualService weights and header matches, and follows a weight change.
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import type { ConfigResource } from '../../src/config/resources';
import { startAdsHarness, type AdsHarness } from '../support/ads-harness';
import { startGrpcBackend, type GrpcBackend } from '../support/grpc-backends';
import { GrpcXdsClientProcess } from '../support/grpc-xds-client-process';
import type { CallTally } from '../support/grpc-xds-client';
import { destinationRule, kubeService, SnapshotSequence, virtualService, workloadEntry } from '../support/mesh-resources';

const SERVICE_PORT = 7070;
const TARGET = `xds:///whoami.default.svc.cluster.local:${SERVICE_PORT}`;
const CLIENT_NODE_ID = 'sidecar~127.0.0.1~client.default~default.svc.cluster.local';

/** Whoami behind a Kubernetes Service with a `grpc` port; v1/v2 split by weight, testers pinned to v2. */
function whoamiMesh(backends: readonly GrpcBackend[], weights: [number, number]): ConfigResource[] {
  return [
    kubeService('whoami', [{ name: 'grpc', port: SERVICE_PORT }], { app: 'whoami' }),
    ...backends.map((b) =>
      workloadEntry(b.name, { address: b.host, ports: { grpc: b.port }, labels: { app: 'whoami', version: b.version }, serviceAccount: 'whoami' }),
    ),
    destinationRule('whoami', {
      host: 'whoami',
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: { version: 'v2' } },
      ],
    }),
    virtualService('whoami', {
      hosts: ['whoami'],
      http: [
        { match: [{ headers: { 'x-user': { exact: 'tester' } } }], route: [{ destination: { host: 'whoami', subset: 'v2' } }] },
        {
          route: [
            { destination: { host: 'whoami', subset: 'v1' }, weight: weights[0] },
            { destination: { host: 'whoami', subset: 'v2' }, weight: weights[1] },
          ],
        },
      ],
    }),
  ];
}

function share(tally: CallTally, version: string): number {
  const total = Object.values(tally.byVersion).reduce((a, b) => a + b, 0);
  return total === 0 ? 0 : (tally.byVersion[version] ?? 0) / total;
}

function describeTally(tally: CallTally): string {
  return `${JSON.stringify(tally.byVersion)}, ${tally.failed} failed ${JSON.stringify(tally.errors)}`;
}

describe('proxyless gRPC (@grpc/grpc-js-xds) against the ADS server', { timeout: 90_000 }, () => {
  const snapshots = new SnapshotSequence();
  const backends: GrpcBackend[] = [];
  let harness: AdsHarness;
  let client: GrpcXdsClientProcess;

  before(async () => {
    backends.push(
      await startGrpcBackend({ name: 'whoami-v1', version: 'v1' }),
      await startGrpcBackend({ name: 'whoami-v2-a', version: 'v2' }),
      await startGrpcBackend({ name: 'whoami-v2-b', version: 'v2' }),
    );
    harness = await startAdsHarness({ initial: snapshots.next(whoamiMesh(backends, [80, 20])), debounceAfterMs: 20, debounceMaxMs: 200 });
    client = await GrpcXdsClientProcess.start({
      xdsAddress: harness.address,
      target: TARGET,
      nodeId: CLIENT_NODE_ID,
      nodeMetadata: { GENERATOR: 'grpc', NAMESPACE: 'default' },
    });
  });

  after(async () => {
    await client?.stop();
    await harness?.close();
    await Promise.all(backends.map((b) => b.close()));
  });

  it('resolves the service over xDS and splits calls 80/20 by VirtualService weight', async (t: TestContext) => {
    // One call first: it waits for xDS resolution, and fails fast (with the reason) if there is none.
    const started = performance.now();
    const first = await client.call(1, { deadlineMs: 15_000 });
    assert.equal(first.failed, 0, `first call failed: ${describeTally(first)}\nclient stderr:\n${client.stderr.slice(-3000)}`);
    t.diagnostic(`xDS resolution + first call: ${(performance.now() - started).toFixed(0)}ms`);
    const batchStarted = performance.now();
    const tally = await client.call(400, { deadlineMs: 3000 });
    t.diagnostic(`400 calls: ${(performance.now() - batchStarted).toFixed(0)}ms, ${describeTally(tally)}`);
    assert.equal(tally.failed, 0, `calls failed: ${describeTally(tally)}`);
    const v1 = share(tally, 'v1');
    assert.ok(Math.abs(v1 - 0.8) <= 0.08, `v1 got ${(v1 * 100).toFixed(1)}% of calls, want 80±8: ${describeTally(tally)}`);
    // Both v2 endpoints serve (EDS carried the whole subset).
    assert.ok(backends[1].calls > 0 && backends[2].calls > 0, `v2 endpoints used: ${backends[1].calls}, ${backends[2].calls}`);
    // The proxyless client shows up in sync status like any proxy.
    const status = harness.server.syncStatus().find((s) => s.id === CLIENT_NODE_ID);
    assert.equal(status?.type, 'proxyless');
    assert.equal(status?.state, 'SYNCED');
    // gRPC asks for its listener by name (no wildcard) and accepted everything it was sent.
    assert.deepEqual(status?.types.find((x) => x.type === 'LDS')?.resourceNames, [TARGET.slice('xds:///'.length)]);
    assert.deepEqual(status?.types.map((x) => x.type), ['CDS', 'EDS', 'LDS', 'RDS']);
    assert.deepEqual(harness.logsOf('xds.nack'), []);
  });

  it('routes every call carrying x-user: tester to v2, ahead of the weighted route', async () => {
    const tally = await client.call(100, { metadata: { 'x-user': 'tester' }, deadlineMs: 3000 });
    assert.equal(tally.failed, 0, `calls failed: ${describeTally(tally)}`);
    assert.deepEqual(tally.byVersion, { v2: 100 });
  });

  it('follows a weight change pushed as a new snapshot', async (t: TestContext) => {
    const change = snapshots.next(whoamiMesh(backends, [20, 80]));
    const publishedAt = performance.now();
    harness.server.publish(change);
    await harness.server.waitForConvergence({ version: change.version, minProxies: 1, timeoutMs: 10_000 });
    const convergedMs = performance.now() - publishedAt;
    const tally = await client.call(400, { deadlineMs: 3000 });
    t.diagnostic(`weight change publish->ACK ${convergedMs.toFixed(0)}ms (debounce 20ms); then ${describeTally(tally)}`);
    assert.equal(tally.failed, 0, `calls failed: ${describeTally(tally)}`);
    const v1 = share(tally, 'v1');
    assert.ok(Math.abs(v1 - 0.2) <= 0.08, `v1 got ${(v1 * 100).toFixed(1)}% of calls after the change, want 20±8: ${describeTally(tally)}`);
    const rds = harness.server
      .syncStatus()
      .find((s) => s.id === CLIENT_NODE_ID)
      ?.types.find((x) => x.type === 'RDS');
    assert.equal(rds?.versionAcked, change.version);
  });
});
