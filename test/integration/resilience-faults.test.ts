// DestinationRule resilience proven by breaking things on purpose: a Weft proxy configured by the
// real ADS server, upstream endpoints as real processes, and a bounded fortio-style load. One of
// three endpoints is killed mid-run; one answers 500s; one is slow; one refuses connections; all
// fail at once; and an upstream closes keep-alive connections as requests arrive. Each test prints
// its numbers (requests sent, failed, retried, time to eject) and checks the response flags and
// Envoy counters the proxy keeps for them.
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { ConfigResource } from '../../src/config/resources';
import { startBackendProcess, type BackendMode, type BackendProcess } from '../support/backend-process';
import { formatLoadResult, runLoad, type LoadResult } from '../support/load-client';
import { destinationRule, kubeService, virtualService, workloadEntry } from '../support/mesh-resources';
import { clusterHosts, clusterStat, watchEjections } from '../support/proxy-admin';
import { countBy, startMesh, startTestProxy, type Mesh, type TestProxy } from './proxy-harness';

const CLUSTER = (name: string) => `outbound|8080||${name}.default.svc.cluster.local`;

/** A Service on 8080 whose endpoints are the given processes (or bare address:port pairs). */
function service(name: string, endpoints: { name: string; address: string; port: number }[]): ConfigResource[] {
  return [
    kubeService(name, [{ name: 'http', port: 8080 }], { app: name }),
    ...endpoints.map((e) => workloadEntry(`${name}-${e.name}`, { address: e.address, labels: { app: name }, ports: { http: e.port } })),
  ];
}

function report(title: string, lines: Record<string, string | number>): void {
  const text = Object.entries(lines)
    .map(([k, v]) => `  ${k}: ${v}`)
    .join('\n');
  process.stdout.write(`\n[${title}]\n${text}\n`);
}

describe('resilience under real faults', () => {
  let mesh: Mesh;
  let proxy: TestProxy;
  let admin: string;
  const processes: BackendProcess[] = [];

  async function backends(prefix: string, modes: BackendMode[], subnet: number): Promise<BackendProcess[]> {
    const list = await Promise.all(modes.map((mode, i) => startBackendProcess(`${prefix}${i + 1}`, `127.0.${subnet}.${i + 1}`, mode)));
    processes.push(...list);
    return list;
  }

  async function configure(resources: ConfigResource[]): Promise<void> {
    mesh.publish(resources);
    await mesh.converged();
  }

  function load(host: string, o: Partial<Parameters<typeof runLoad>[0]> = {}): Promise<LoadResult> {
    return runLoad({ address: '127.0.0.1', port: proxy.outboundPort, url: '/', host, connections: 8, requests: 1000, maxDurationMs: 30_000, ...o });
  }

  before(async () => {
    mesh = await startMesh([]);
    proxy = await startTestProxy(mesh, { name: 'client', address: '127.0.0.1' });
    admin = `${proxy.proxy.adminAddress}:${proxy.proxy.ports.admin}`;
  });

  after(async () => {
    await proxy?.close();
    await mesh?.close();
    await Promise.all(processes.map((p) => p.stop()));
  });

  it('kills one of three endpoints mid-run: the proxy ejects it and, with retries, no request fails', async () => {
    const ends = await backends('kill', ['ok', 'ok', 'ok'], 61);
    const name = 'killtest';
    await configure([
      ...service(name, ends),
      destinationRule(name, {
        host: name,
        trafficPolicy: {
          loadBalancer: { simple: 'ROUND_ROBIN' },
          outlierDetection: { consecutive5xxErrors: 3, interval: '1s', baseEjectionTime: '30s', maxEjectionPercent: 50 },
        },
      }),
      virtualService(name, { hosts: [name], http: [{ route: [{ destination: { host: name } }], retries: { attempts: 3, retryOn: 'connect-failure,refused-stream,reset,gateway-error' } }] }),
    ]);
    const victim = ends[0];
    const watch = watchEjections(admin, CLUSTER(name), `${victim.address}:${victim.port}`, { maxMs: 60_000 });
    let killedAt = 0;
    const from = proxy.records.length;
    const result = await load(`${name}:8080`, {
      connections: 8,
      requests: 3000,
      onResponse: (n) => {
        if (n === 600 && !killedAt) {
          killedAt = performance.now();
          victim.kill('SIGKILL');
        }
      },
    });
    await watch.stop();
    const records = proxy.records.slice(from);
    const retried = records.filter((r) => r.attempts > 1).length;
    const ejectedAt = watch.events.find((e) => e.ejected)?.at;
    // Requests that started once the ejection was visible (epoch time of that moment).
    const afterEjection = ejectedAt === undefined ? [] : records.filter((r) => r.startTime >= Date.now() - (performance.now() - ejectedAt));
    report('kill one of three endpoints mid-run', {
      'requests sent': result.sent,
      failed: result.failed,
      'requests retried': retried,
      'upstream_rq_retry': await clusterStat(admin, CLUSTER(name), 'upstream_rq_retry'),
      'upstream_cx_connect_fail': await clusterStat(admin, CLUSTER(name), 'upstream_cx_connect_fail'),
      'time to eject (ms, from the kill)': ejectedAt ? (ejectedAt - killedAt).toFixed(0) : 'never',
      'attempt flags': JSON.stringify(countBy(records.flatMap((r) => r.flags), (f) => f)),
    });
    process.stdout.write(formatLoadResult('load', result) + '\n');
    assert.ok(killedAt > 0, 'the endpoint was killed mid-run');
    assert.equal(result.completed, result.sent);
    assert.equal(result.failed, 0, JSON.stringify(result.codes));
    assert.ok(retried > 0, 'some requests needed a retry');
    assert.ok(ejectedAt !== undefined, 'the killed endpoint was ejected');
    assert.equal(await clusterStat(admin, CLUSTER(name), 'outlier_detection.ejections_enforced_consecutive_5xx'), 1);
    assert.ok(afterEjection.length > 0 && afterEjection.every((r) => r.upstreamHost !== `${victim.address}:${victim.port}`), 'nothing went to it once ejected');
    const hosts = await clusterHosts(admin, CLUSTER(name));
    assert.deepEqual(hosts.map((h) => h.ejected), [true, false, false]);
  });

  it('ejects an endpoint answering 500s within the interval and takes it back after baseEjectionTime, for longer each time', async () => {
    const ends = await backends('err', ['ok', 'ok', 'status:500'], 62);
    const name = 'errtest';
    const baseMs = 1500;
    const intervalMs = 500;
    await configure([
      ...service(name, ends),
      destinationRule(name, {
        host: name,
        trafficPolicy: {
          loadBalancer: { simple: 'ROUND_ROBIN' },
          outlierDetection: { consecutive5xxErrors: 3, interval: `${intervalMs}ms`, baseEjectionTime: `${baseMs}ms`, maxEjectionPercent: 50 },
        },
      }),
      // No retries: every 500 reaches the client and is counted.
      virtualService(name, { hosts: [name], http: [{ route: [{ destination: { host: name } }], retries: { attempts: 0 } }] }),
    ]);
    const bad = ends[2];
    const watch = watchEjections(admin, CLUSTER(name), `${bad.address}:${bad.port}`, { maxMs: 30_000 });
    // The 500s clients see come in bursts: the endpoint's streak until it is ejected. The gap to
    // the next burst is how long it stayed ejected (a return and a new ejection can fall between
    // two polls of /clusters; the clients' view cannot miss them).
    const bursts: { first: number; last: number; count: number }[] = [];
    const result = await load(`${name}:8080`, {
      connections: 4,
      requests: 200_000,
      maxDurationMs: 20_000,
      onResponse: (_n, sample) => {
        if (sample.status !== 500) return;
        const last = bursts.at(-1);
        if (last && sample.at - last.last < intervalMs) {
          last.last = sample.at;
          last.count++;
        } else bursts.push({ first: sample.at, last: sample.at, count: 1 });
      },
      // Ejected, back, ejected again (for longer), back again.
      until: () => bursts.length >= 3,
    });
    await watch.stop();
    const ejections = bursts.slice(0, -1).map((b, i) => bursts[i + 1].first - b.last);
    const seenEjected = watch.events.find((e) => e.ejected);
    report('an endpoint answering 500s', {
      'requests sent': result.sent,
      'failed (500s seen by clients)': result.failed,
      '500s per burst before each ejection': bursts.map((b) => b.count).join(', '),
      'time to eject (ms, first to last 500 of the first burst)': bursts[0] ? (bursts[0].last - bursts[0].first).toFixed(0) : 'never',
      'ejected for (ms)': ejections.map((e) => e.toFixed(0)).join(', '),
      'outlier_detection.ejections_enforced_total': await clusterStat(admin, CLUSTER(name), 'outlier_detection.ejections_enforced_total'),
    });
    process.stdout.write(formatLoadResult('load', result) + '\n');
    assert.equal(bursts.length, 3, `bursts of 500s: ${JSON.stringify(bursts)}`);
    assert.ok(seenEjected, '/clusters showed the endpoint ejected');
    // Envoy ejects on the third consecutive 5xx itself, well within one interval.
    assert.ok(bursts[0].last - bursts[0].first < intervalMs, `ejected ${(bursts[0].last - bursts[0].first).toFixed(0)} ms after the first 500`);
    // Back on the first interval tick after baseEjectionTime; twice as long the second time.
    const [first, second] = ejections;
    assert.ok(first >= baseMs - 50 && first <= baseMs + intervalMs + 400, `first ejection ${first.toFixed(0)} ms`);
    assert.ok(second >= 2 * baseMs - 50 && second <= 2 * baseMs + intervalMs + 400, `second ejection ${second.toFixed(0)} ms`);
    assert.ok(result.failed < result.completed / 10, `${result.failed} of ${result.completed} failed`);
    assert.deepEqual(Object.keys(result.codes).sort(), ['200', '500']);
  });

  it('a slow endpoint trips perTryTimeout and the retry succeeds elsewhere', async () => {
    const ends = await backends('slow', ['ok', 'ok', 'delay:5000'], 63);
    const name = 'slowtest';
    await configure([
      ...service(name, ends),
      destinationRule(name, {
        host: name,
        trafficPolicy: {
          loadBalancer: { simple: 'ROUND_ROBIN' },
          // Timeouts count as 504s: three in a row eject the slow endpoint.
          outlierDetection: { consecutive5xxErrors: 3, interval: '1s', baseEjectionTime: '30s', maxEjectionPercent: 50 },
        },
      }),
      virtualService(name, {
        hosts: [name],
        http: [{ route: [{ destination: { host: name } }], retries: { attempts: 2, perTryTimeout: '250ms', retryOn: 'gateway-error,connect-failure,reset' } }],
      }),
    ]);
    const slow = ends[2];
    const watch = watchEjections(admin, CLUSTER(name), `${slow.address}:${slow.port}`, { maxMs: 60_000 });
    const from = proxy.records.length;
    const start = performance.now();
    const result = await load(`${name}:8080`, { connections: 6, requests: 600 });
    await watch.stop();
    const records = proxy.records.slice(from);
    const retried = records.filter((r) => r.attempts > 1);
    const perTry = await clusterStat(admin, CLUSTER(name), 'upstream_rq_per_try_timeout');
    report('a slow endpoint (5 s) with perTryTimeout 250ms', {
      'requests sent': result.sent,
      failed: result.failed,
      'requests retried': retried.length,
      'per-try timeouts': perTry,
      'time to eject (ms, from the start)': watch.events[0] ? (watch.events[0].at - start).toFixed(0) : 'never',
      'slowest retried request (ms)': Math.max(...retried.map((r) => r.durationMs)).toFixed(0),
    });
    process.stdout.write(formatLoadResult('load', result) + '\n');
    assert.equal(result.failed, 0, JSON.stringify(result.codes));
    assert.ok(perTry >= 1 && perTry === retried.length, `${perTry} per-try timeouts, ${retried.length} retried requests`);
    for (const r of retried) {
      assert.ok(r.durationMs >= 240 && r.durationMs < 2500, `retried request took ${r.durationMs} ms`);
      assert.notEqual(r.upstreamHost, `${slow.address}:${slow.port}`, 'answered by another endpoint');
      assert.deepEqual(r.flags, [], 'a successful retry carries no flag');
    }
    assert.ok(watch.events[0]?.ejected, 'the slow endpoint was ejected (timeouts count as 504)');
    assert.equal(result.maxMs < 2500, true, `slowest response ${result.maxMs.toFixed(0)} ms`);
  });

  it('a connection-refusing endpoint is retried on another host (Istio’s default retry policy)', async () => {
    const ends = await backends('refuse', ['ok', 'ok'], 64);
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.64.9', r));
    const refusing = { name: 'refusing', address: '127.0.64.9', port: (closed.address() as net.AddressInfo).port };
    await new Promise<void>((r) => closed.close(() => r()));
    const name = 'refusetest';
    // No VirtualService: Istio's default route retries connect-failure twice, on other hosts.
    await configure([...service(name, [...ends, refusing]), destinationRule(name, { host: name, trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN' } } })]);
    const from = proxy.records.length;
    const result = await load(`${name}:8080`, { connections: 4, requests: 600 });
    const records = proxy.records.slice(from);
    const retried = records.filter((r) => r.attempts > 1);
    const connectFail = await clusterStat(admin, CLUSTER(name), 'upstream_cx_connect_fail');
    report('a connection-refusing endpoint', {
      'requests sent': result.sent,
      failed: result.failed,
      'requests retried': retried.length,
      upstream_cx_connect_fail: connectFail,
      upstream_rq_retry: await clusterStat(admin, CLUSTER(name), 'upstream_rq_retry'),
    });
    process.stdout.write(formatLoadResult('load', result) + '\n');
    assert.equal(result.failed, 0, JSON.stringify(result.codes));
    assert.ok(retried.length > 0 && connectFail >= retried.length, `${retried.length} retried, ${connectFail} connect failures`);
    for (const r of retried) assert.notEqual(r.upstreamHost, `${refusing.address}:${refusing.port}`);
    assert.ok(records.every((r) => r.flags.length === 0), 'every request ended well');
  });

  it('bounds retries with maxRetries: when every endpoint fails, retries cannot multiply the load', async () => {
    const ends = await backends('down', ['status:503', 'status:503', 'status:503'], 65);
    const name = 'downtest';
    await configure([
      ...service(name, ends),
      destinationRule(name, { host: name, trafficPolicy: { connectionPool: { http: { maxRetries: 2 } } } }),
      virtualService(name, { hosts: [name], http: [{ route: [{ destination: { host: name } }], retries: { attempts: 10, retryOn: '5xx' } }] }),
    ]);
    const from = proxy.records.length;
    const result = await load(`${name}:8080`, { connections: 16, requests: 800 });
    const records = proxy.records.slice(from);
    const upstream = await clusterStat(admin, CLUSTER(name), 'upstream_rq_total');
    const overflow = await clusterStat(admin, CLUSTER(name), 'upstream_rq_retry_overflow');
    report('every endpoint failing, attempts 10, maxRetries 2', {
      'requests sent': result.sent,
      failed: result.failed,
      'upstream requests': upstream,
      'amplification (upstream / sent)': (upstream / result.sent).toFixed(2),
      upstream_rq_retry: await clusterStat(admin, CLUSTER(name), 'upstream_rq_retry'),
      upstream_rq_retry_overflow: overflow,
      'without the breaker it would be': `${11 * result.sent} upstream requests`,
    });
    assert.equal(result.failed, result.sent);
    assert.deepEqual(Object.keys(result.codes), ['503']);
    assert.ok(overflow > 0, 'the retry circuit breaker overflowed');
    assert.ok(upstream < 2 * result.sent, `${upstream} upstream requests for ${result.sent}`);
    assert.ok(records.every((r) => r.flags.includes('URX')), 'every answer says its retries were spent or refused');
  });

  it('retries an idempotent request once when a reused connection is closed under it (the keep-alive race)', async () => {
    // The upstream answers the first request of each connection and closes the connection when
    // the second arrives, without a byte of response: what a server closing an idle keep-alive
    // connection looks like to a client that just sent on it.
    let requests = 0;
    const server = net.createServer((socket) => {
      let served = 0;
      let buffered = '';
      socket.on('data', (d) => {
        buffered += d.toString('latin1');
        while (buffered.includes('\r\n\r\n')) {
          const head = buffered.slice(0, buffered.indexOf('\r\n\r\n'));
          const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
          if (buffered.length < head.length + 4 + length) return;
          buffered = buffered.slice(head.length + 4 + length);
          requests++;
          if (served++ > 0) {
            socket.destroy();
            return;
          }
          socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
        }
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.66.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const name = 'racetest';
    await configure([
      ...service(name, [{ name: 'one', address: '127.0.66.1', port }]),
      virtualService(name, { hosts: [name], http: [{ route: [{ destination: { host: name } }], retries: { attempts: 0 } }] }),
    ]);
    try {
      const from = proxy.records.length;
      const gets = await load(`${name}:8080`, { connections: 1, requests: 40 });
      const getRecords = proxy.records.slice(from);
      const posts = await load(`${name}:8080`, { connections: 1, requests: 10, method: 'POST' });
      const postRecords = proxy.records.slice(from + getRecords.length);
      report('keep-alive race (upstream closes reused connections)', {
        'GETs sent': gets.sent,
        'GETs failed': gets.failed,
        'GETs sent twice': getRecords.filter((r) => r.attempts === 2).length,
        'POSTs sent': posts.sent,
        'POSTs failed (503 UC, not retried)': posts.failed,
        'upstream requests': requests,
      });
      assert.equal(gets.failed, 0);
      assert.ok(getRecords.some((r) => r.attempts === 2), 'some GETs met a closed connection and went again');
      assert.ok(getRecords.every((r) => r.attempts <= 2 && r.flags.length === 0));
      // POST is not idempotent: a POST that met a closing connection is Istio's classic 503 UC.
      const raced = postRecords.filter((r) => r.status === 503);
      assert.ok(raced.length > 0 && raced.every((r) => r.flags.includes('UC') && r.attempts === 1), JSON.stringify(postRecords.map((r) => [r.status, r.flags])));
    } finally {
      server.close();
    }
  });
});
