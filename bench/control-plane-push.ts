// Control-plane benchmark: build and push snapshots for a mesh of N services (default 1,000, three
// endpoints each) to P simulated proxies on real gRPC ADS streams (a child process that ACKs like
// Envoy). Prints medians and writes bench/results/control-plane.json.
//   node dist/bench/control-plane-push.js [--services 1000] [--proxies 100] [--runs 5]
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { ConfigResource } from '../src/config/resources';
import { silentLogger } from '../src/log/logger';
import { createSnapshot, type MeshSnapshot } from '../src/model/snapshot';
import { encodeResource } from '../src/xds/protos';
import { AdsServer } from '../src/xds/server/ads-server';
import { createTranslator, parseProxyNode, translateForProxy } from '../src/xds/translate';

function meshResources(services: number, endpointsPerService: number, routeTimeout: string, addressShift = 0): ConfigResource[] {
  const out: ConfigResource[] = [];
  for (let s = 0; s < services; s++) {
    const name = `svc-${s}`;
    out.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace: 'default' },
      spec: { selector: { app: name }, ports: [{ name: 'http', port: 9080 }] },
    } as ConfigResource);
    out.push({
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name, namespace: 'default' },
      spec: { host: name, subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] },
    } as ConfigResource);
    if (s % 10 === 0) {
      out.push({
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name, namespace: 'default' },
        spec: {
          hosts: [name],
          http: [{ route: [{ destination: { host: name, subset: 'v1' }, weight: 90 }, { destination: { host: name, subset: 'v2' }, weight: 10 }], timeout: routeTimeout }],
        },
      } as ConfigResource);
    }
    for (let e = 0; e < endpointsPerService; e++) {
      const n = s * endpointsPerService + e + addressShift;
      out.push({
        apiVersion: 'networking.istio.io/v1',
        kind: 'WorkloadEntry',
        metadata: { name: `${name}-${e}`, namespace: 'default' },
        spec: { address: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`, labels: { app: name, version: e === 0 ? 'v2' : 'v1' } },
      } as ConfigResource);
    }
  }
  return out;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function timeIt<T>(fn: () => T): [T, number] {
  const t = process.hrtime.bigint();
  const v = fn();
  return [v, Number(process.hrtime.bigint() - t) / 1e6];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      services: { type: 'string', default: '1000' },
      endpoints: { type: 'string', default: '3' },
      proxies: { type: 'string', default: '100' },
      runs: { type: 'string', default: '5' },
    },
  });
  const services = Number(values.services);
  const endpoints = Number(values.endpoints);
  const proxies = Number(values.proxies);
  const runs = Number(values.runs);
  console.log(`control-plane benchmark: ${services} services x ${endpoints} endpoints, ${proxies} proxies, node ${process.version}`);

  // 1. Snapshot build (validation is per file and excluded; this is registry + freeze).
  const resources = meshResources(services, endpoints, '3s');
  const buildTimes: number[] = [];
  let snapshot!: MeshSnapshot;
  for (let i = 0; i < runs; i++) {
    const [s, ms] = timeIt(() => createSnapshot({ sequence: 1, reason: 'bench', resources: meshResources(services, endpoints, '3s') }));
    snapshot = s;
    buildTimes.push(ms);
  }

  // 2. Translation for one sidecar, and encoding of everything it gets.
  const proxy = parseProxyNode({ id: 'sidecar~127.1.0.1~load-0.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default' } });
  // A fresh translator each time: the cold cost, paid once per group of proxies with the same
  // inputs (the shared translator would answer a repeat from its memo in ~0 ms).
  const translateTimes: number[] = [];
  let generated = createTranslator()(snapshot, proxy);
  for (let i = 0; i < runs; i++) {
    const translate = createTranslator();
    const [g, ms] = timeIt(() => translate(snapshot, proxy));
    generated = g;
    translateTimes.push(ms);
  }
  let bytes = 0;
  let count = 0;
  const [, encodeMs] = timeIt(() => {
    for (const [typeUrl, byName] of Object.entries(generated)) {
      for (const r of byName.values()) {
        bytes += encodeResource(typeUrl, r).length;
        count++;
      }
    }
  });

  // 3. Push to real ADS streams.
  const ads = new AdsServer({ generate: translateForProxy, parseNode: parseProxyNode, logger: silentLogger, debounceAfterMs: 10, debounceMaxMs: 100 });
  const port = await ads.listen('127.0.0.1:0');
  ads.publish(snapshot);
  const clientScript = path.join(__dirname, 'ads-load-client.js');
  const startedAt = Date.now();
  const child = spawn(process.execPath, [clientScript, `127.0.0.1:${port}`, String(proxies)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let lastStats = { responses: 0, bytes: 0 };
  const firstFull = new Promise<number>((resolve) => {
    let buffer = '';
    child.stdout.on('data', (d) => {
      buffer += d;
      let i;
      while ((i = buffer.indexOf('\n')) >= 0) {
        const line = JSON.parse(buffer.slice(0, i));
        buffer = buffer.slice(i + 1);
        if (line.event === 'all_full_config') resolve(Date.now() - startedAt);
        if (line.event === 'stats') lastStats = line;
      }
    });
  });
  const firstFullMs = await firstFull;
  await ads.waitForConvergence({ minProxies: proxies, timeoutMs: 120_000 });
  const rssAfterConnect = process.memoryUsage().rss;

  const converge = async (label: string, resourcesForChange: ConfigResource[], sequence: number) => {
    const pushes: Record<string, number> = {};
    const onPush = (e: { typeUrls: string[] }) => {
      for (const t of e.typeUrls) pushes[t.split('.').pop()!] = (pushes[t.split('.').pop()!] ?? 0) + 1;
    };
    ads.events.on('push', onPush);
    const next = createSnapshot({ sequence, reason: label, resources: resourcesForChange });
    const t0 = Date.now();
    ads.publish(next);
    await ads.waitForConvergence({ version: next.version, minProxies: proxies, timeoutMs: 120_000 });
    const ms = Date.now() - t0;
    ads.events.off('push', onPush);
    return { ms, pushes };
  };
  const vsTimes: number[] = [];
  const edsTimes: number[] = [];
  let vsPushes = {};
  let edsPushes = {};
  let seq = 2;
  let shift = 0;
  for (let i = 0; i < Math.max(1, Math.min(runs, 3)); i++) {
    const timeout = `${4 + i}s`;
    const vs = await converge('virtualservice change', meshResources(services, endpoints, timeout, shift), seq++);
    vsTimes.push(vs.ms);
    vsPushes = vs.pushes;
    shift += 7;
    const eds = await converge('endpoint change', meshResources(services, endpoints, timeout, shift), seq++);
    edsTimes.push(eds.ms);
    edsPushes = eds.pushes;
  }
  const cpu = process.cpuUsage();
  const rows: [string, string][] = [
    ['snapshot build (registry), median', `${median(buildTimes).toFixed(1)} ms`],
    ['translate one sidecar (cold), median', `${median(translateTimes).toFixed(1)} ms`],
    ['resources per sidecar / encoded size', `${count} / ${(bytes / 1024).toFixed(0)} KiB (encode ${encodeMs.toFixed(0)} ms)`],
    [`first full config on ${proxies} proxies`, `${firstFullMs} ms`],
    ['VirtualService change -> all ACKed, median', `${median(vsTimes)} ms  (pushes ${JSON.stringify(vsPushes)})`],
    ['endpoint-only change -> all ACKed, median', `${median(edsTimes)} ms  (pushes ${JSON.stringify(edsPushes)})`],
    ['bytes pushed in total', `${(lastStats.bytes / 1024 / 1024).toFixed(1)} MiB in ${lastStats.responses} responses (last client report)`],
    ['control-plane RSS after connect', `${(rssAfterConnect / 1024 / 1024).toFixed(0)} MiB`],
    ['control-plane CPU (user+sys, whole run)', `${((cpu.user + cpu.system) / 1e6).toFixed(1)} s`],
  ];
  const width = Math.max(...rows.map((r) => r[0].length));
  for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${v}`);
  const outDir = path.join(__dirname, '..', '..', 'bench', 'results');
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(
    path.join(outDir, 'control-plane.json'),
    JSON.stringify(
      {
        at: new Date().toISOString(),
        node: process.version,
        services,
        endpoints,
        proxies,
        snapshotBuildMs: median(buildTimes),
        translateSidecarMs: median(translateTimes),
        resourcesPerSidecar: count,
        bytesPerSidecar: bytes,
        firstFullConfigMs: firstFullMs,
        virtualServiceConvergenceMs: median(vsTimes),
        endpointConvergenceMs: median(edsTimes),
        virtualServicePushes: vsPushes,
        endpointPushes: edsPushes,
        rssBytes: rssAfterConnect,
      },
      null,
      2,
    ) + '\n',
  );
  child.kill('SIGTERM');
  await ads.close(100);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
