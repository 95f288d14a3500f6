// Control-plane benchmark: a mesh of N services (default 1,000, three endpoints each; every service
// has a DestinationRule with two subsets, every tenth a VirtualService) pushed to P simulated
// proxies (default 2,000) on real gRPC ADS streams. The proxies are spread over several
// load-client child processes (ads-load-client.ts, which ACK like Envoy), since one Node process
// cannot keep up with 2,000 streams. Each run starts a fresh ADS server and translator and measures
// time to first full config for all proxies, then convergence (change published -> every proxy
// ACKed, as the server sees it) for a VirtualService change and for an endpoint-only change, the
// bytes pushed, and the control plane's RSS and CPU. Prints medians over runs and writes
// bench/results/control-plane.json.
//   node dist/bench/control-plane-push.js [--services 1000] [--endpoints 3] [--proxies 2000]
//     [--runs 1] [--changes 3] [--clients 4] [--all-endpoints] [--max-seconds 900]
//     [--profile-changes FILE.cpuprofile]  (CPU profile of the control plane during the changes only)
import { spawn, type ChildProcess } from 'node:child_process';
import * as inspector from 'node:inspector';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { ConfigResource } from '../src/config/resources';
import { silentLogger } from '../src/log/logger';
import { createSnapshot, type MeshSnapshot } from '../src/model/snapshot';
import { encodeResource } from '../src/xds/protos';
import { AdsServer, type PushEvent } from '../src/xds/server/ads-server';
import { createTranslator, parseProxyNode } from '../src/xds/translate';

/** What differs between the snapshots of one run. */
interface MeshEdits {
  /** Timeout of svc-0's VirtualService (the "VirtualService change" edits it). */
  vsTimeout: string;
  /** Address generation of svc-1's first endpoint (the "endpoint-only change": a pod replaced). */
  movedEndpoint: number;
  /** Every endpoint address shifted by this much (the optional "all endpoints" change). */
  addressShift: number;
}

function address(n: number): string {
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

function meshResources(services: number, endpointsPerService: number, edits: MeshEdits): ConfigResource[] {
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
          http: [
            {
              route: [
                { destination: { host: name, subset: 'v1' }, weight: 90 },
                { destination: { host: name, subset: 'v2' }, weight: 10 },
              ],
              timeout: s === 0 ? edits.vsTimeout : '3s',
            },
          ],
        },
      } as ConfigResource);
    }
    for (let e = 0; e < endpointsPerService; e++) {
      const n = s * endpointsPerService + e + edits.addressShift;
      const moved = s === 1 && e === 0 && edits.movedEndpoint > 0;
      out.push({
        apiVersion: 'networking.istio.io/v1',
        kind: 'WorkloadEntry',
        metadata: { name: `${name}-${e}`, namespace: 'default' },
        spec: {
          address: moved ? `10.250.${(edits.movedEndpoint >> 8) & 255}.${edits.movedEndpoint & 255}` : address(n),
          labels: { app: name, version: e === 0 ? 'v2' : 'v1' },
        },
      } as ConfigResource);
    }
  }
  return out;
}

function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function timeIt<T>(fn: () => T): [T, number] {
  const t = process.hrtime.bigint();
  const v = fn();
  return [v, Number(process.hrtime.bigint() - t) / 1e6];
}

function cpuMs(): number {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
}

const MiB = 1024 * 1024;

/** Every load-client child of this process, stopped however the benchmark ends. */
const children = new Set<ChildProcess>();
function stopChildren(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  }
  children.clear();
}
process.on('exit', stopChildren);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    stopChildren();
    process.exit(130);
  });
}

interface ClientStats {
  reconnects?: number;
  responses: number;
  bytes: number;
  byType: Record<string, number>;
  cpuMs: number;
  rss: number;
}

interface LoadClient {
  child: ChildProcess;
  fullConfig: Promise<void>;
  last: ClientStats;
}

function startLoadClient(address: string, count: number, first: number, timeoutMs: number): LoadClient {
  const script = path.join(__dirname, 'ads-load-client.js');
  const child = spawn(process.execPath, [script, address, String(count), String(first)], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, WEFT_LOAD_CLIENT_MAX_S: String(Math.ceil(timeoutMs / 1000) + 60) },
  });
  children.add(child);
  const client: LoadClient = { child, fullConfig: Promise.resolve(), last: { responses: 0, bytes: 0, byType: {}, cpuMs: 0, rss: 0 } };
  client.fullConfig = new Promise<void>((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new Error(`load client ${first}..${first + count - 1}: no full config within ${timeoutMs} ms`)), timeoutMs);
    child.stdout!.on('data', (d) => {
      buffer += d;
      let i;
      while ((i = buffer.indexOf('\n')) >= 0) {
        const line = JSON.parse(buffer.slice(0, i));
        buffer = buffer.slice(i + 1);
        if (line.event === 'all_full_config') {
          clearTimeout(timer);
          resolve();
        }
        if (line.event === 'stats') client.last = line;
      }
    });
    child.on('exit', (code, signal) => {
      children.delete(child);
      clearTimeout(timer);
      reject(new Error(`load client ${first}.. exited (${code ?? signal})`));
    });
  });
  client.fullConfig.catch(() => undefined);
  return client;
}

/** Asks every client for a fresh stats line and waits for it (bounded). */
async function refreshStats(clients: LoadClient[]): Promise<void> {
  await Promise.all(
    clients.map(
      (c) =>
        new Promise<void>((resolve) => {
          const before = c.last;
          const timer = setTimeout(resolve, 3000);
          const poll = setInterval(() => {
            if (c.last !== before) {
              clearInterval(poll);
              clearTimeout(timer);
              resolve();
            }
          }, 20);
          timer.unref();
          c.child.stdin!.write('report\n');
        }),
    ),
  );
}

interface ChangeResult {
  ms: number;
  cpuMs: number;
  bytes: number;
  responses: number;
  pushes: Record<string, number>;
}

interface RunResult {
  firstFullConfigMs: number;
  connectCpuMs: number;
  connectBytes: number;
  rssAfterConnect: number;
  peakRss: number;
  virtualService: ChangeResult[];
  endpoint: ChangeResult[];
  allEndpoints: ChangeResult[];
  cpuMs: number;
  clientCpuMs: number;
  clientBytes: number;
  clientResponses: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      services: { type: 'string', default: '1000' },
      endpoints: { type: 'string', default: '3' },
      proxies: { type: 'string', default: '2000' },
      runs: { type: 'string', default: '1' },
      changes: { type: 'string', default: '3' },
      clients: { type: 'string', default: '4' },
      'all-endpoints': { type: 'boolean', default: false },
      'max-seconds': { type: 'string', default: '900' },
      'push-concurrency': { type: 'string' },
      'profile-changes': { type: 'string' },
    },
  });
  const services = Number(values.services);
  const endpoints = Number(values.endpoints);
  const proxies = Number(values.proxies);
  const runs = Number(values.runs);
  const changes = Number(values.changes);
  const clientCount = Math.max(1, Math.min(Number(values.clients), proxies));
  const maxMs = Number(values['max-seconds']) * 1000;
  const benchStarted = Date.now();
  const remainingMs = () => Math.max(1000, maxMs - (Date.now() - benchStarted));
  // The whole benchmark is bounded: past the deadline it stops its children and fails.
  setTimeout(() => {
    console.error(`control-plane benchmark: not finished within ${values['max-seconds']} s, stopping`);
    stopChildren();
    process.exit(2);
  }, maxMs).unref();

  const load = os.loadavg();
  console.log(
    `control-plane benchmark: ${services} services x ${endpoints} endpoints, ${proxies} proxies over ${clientCount} load-client processes, ` +
      `${runs} runs x ${changes} changes, node ${process.version}, ${os.cpus().length} CPUs, load average ${load.map((l) => l.toFixed(2)).join(' ')}`,
  );

  // 1. Snapshot build (validation is per file and excluded; this is registry + freeze).
  const base: MeshEdits = { vsTimeout: '3s', movedEndpoint: 0, addressShift: 0 };
  const buildTimes: number[] = [];
  let snapshot!: MeshSnapshot;
  for (let i = 0; i < Math.max(3, runs); i++) {
    const [s, ms] = timeIt(() => createSnapshot({ sequence: 1, reason: 'bench', resources: meshResources(services, endpoints, base) }));
    snapshot = s;
    buildTimes.push(ms);
  }

  // 2. Cold translation of one sidecar (a fresh translator each time), and the encoded size of what it gets.
  const proxy = parseProxyNode({ id: 'sidecar~127.1.0.1~load-0.default~default.svc.cluster.local', metadata: { NAMESPACE: 'default', WORKLOAD_NAME: 'load-0' } });
  const translateTimes: number[] = [];
  let generated = createTranslator()(snapshot, proxy);
  for (let i = 0; i < 3; i++) {
    const translate = createTranslator();
    const [g, ms] = timeIt(() => translate(snapshot, proxy));
    generated = g;
    translateTimes.push(ms);
  }
  let bytesPerSidecar = 0;
  let resourcesPerSidecar = 0;
  const bytesByType: Record<string, number> = {};
  const [, encodeMs] = timeIt(() => {
    for (const [typeUrl, byName] of Object.entries(generated)) {
      for (const r of byName.values()) {
        const n = encodeResource(typeUrl, r).length;
        bytesPerSidecar += n;
        bytesByType[typeUrl.split('.').pop()!] = (bytesByType[typeUrl.split('.').pop()!] ?? 0) + n;
        resourcesPerSidecar++;
      }
    }
  });

  // 3. Push to real ADS streams: one fresh server, translator and set of clients per run.
  const results: RunResult[] = [];
  let sequence = 1;
  for (let run = 0; run < runs; run++) {
    const translate = createTranslator();
    const ads = new AdsServer({
      generate: translate,
      parseNode: parseProxyNode,
      logger: silentLogger,
      debounceAfterMs: 10,
      debounceMaxMs: 100,
      pushConcurrency: values['push-concurrency'] ? Number(values['push-concurrency']) : undefined,
    });
    const port = await ads.listen('127.0.0.1:0');
    const edits: MeshEdits = { ...base };
    ads.publish(createSnapshot({ sequence: sequence++, reason: 'bench', resources: meshResources(services, endpoints, edits) }));
    let pushBytes = 0;
    let pushResponses = 0;
    const pushTypes: Record<string, number> = {};
    const onPush = (e: PushEvent) => {
      pushBytes += e.bytes;
      pushResponses += e.typeUrls.length;
      for (const t of e.typeUrls) pushTypes[t.split('.').pop()!] = (pushTypes[t.split('.').pop()!] ?? 0) + 1;
    };
    ads.events.on('push', onPush);
    let peakRss = process.memoryUsage().rss;
    const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 200);

    const cpuStart = cpuMs();
    const startedAt = Date.now();
    const clients: LoadClient[] = [];
    const per = Math.ceil(proxies / clientCount);
    for (let c = 0, first = 0; first < proxies; c++, first += per) {
      clients.push(startLoadClient(`127.0.0.1:${port}`, Math.min(per, proxies - first), first, remainingMs()));
    }
    const progress = setInterval(() => {
      const full = clients.reduce((n, c) => n + ((c.last as unknown as { full?: number }).full ?? 0), 0);
      const mib = clients.reduce((n, c) => n + c.last.bytes, 0) / MiB;
      const reconnects = clients.reduce((n, c) => n + (c.last.reconnects ?? 0), 0);
      console.error(
        `    ... ${((Date.now() - startedAt) / 1000).toFixed(0)} s: ${ads.connectedProxies} connected, ${full} with full config, ` +
          `${mib.toFixed(0)} MiB received, ${reconnects} streams reopened, CP RSS ${(process.memoryUsage.rss() / MiB).toFixed(0)} MiB`,
      );
    }, 15_000);
    await Promise.all(clients.map((c) => c.fullConfig)).finally(() => clearInterval(progress));
    const firstFullConfigMs = Date.now() - startedAt;
    await ads.waitForConvergence({ minProxies: proxies, timeoutMs: remainingMs() });
    const connectCpuMs = cpuMs() - cpuStart;
    const connectBytes = pushBytes;
    const rssAfterConnect = process.memoryUsage().rss;

    const converge = async (label: string): Promise<ChangeResult> => {
      for (const k of Object.keys(pushTypes)) delete pushTypes[k];
      pushBytes = 0;
      pushResponses = 0;
      const next = createSnapshot({ sequence: sequence++, reason: label, resources: meshResources(services, endpoints, edits) });
      const cpu0 = cpuMs();
      const t0 = process.hrtime.bigint();
      ads.publish(next);
      await ads.waitForConvergence({ version: next.version, minProxies: proxies, timeoutMs: Math.min(120_000, remainingMs()) });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      return { ms, cpuMs: cpuMs() - cpu0, bytes: pushBytes, responses: pushResponses, pushes: { ...pushTypes } };
    };
    const result: RunResult = {
      firstFullConfigMs,
      connectCpuMs,
      connectBytes,
      rssAfterConnect,
      peakRss: 0,
      virtualService: [],
      endpoint: [],
      allEndpoints: [],
      cpuMs: 0,
      clientCpuMs: 0,
      clientBytes: 0,
      clientResponses: 0,
    };
    const session = values['profile-changes'] && run === 0 ? new inspector.Session() : undefined;
    if (session) {
      session.connect();
      await new Promise((r) => session.post('Profiler.enable', () => session.post('Profiler.start', r)));
    }
    for (let i = 0; i < changes; i++) {
      // Let the machine settle between changes (the previous push's garbage, the clients' ACK burst).
      await new Promise((r) => setTimeout(r, 300));
      edits.vsTimeout = `${4 + run * changes + i}s`;
      result.virtualService.push(await converge('virtualservice change'));
      await new Promise((r) => setTimeout(r, 300));
      edits.movedEndpoint++;
      result.endpoint.push(await converge('endpoint change'));
    }
    if (values['all-endpoints']) {
      await new Promise((r) => setTimeout(r, 300));
      edits.addressShift += 7;
      result.allEndpoints.push(await converge('every endpoint changed'));
    }
    if (session) {
      await new Promise<void>((resolve) =>
        session.post('Profiler.stop', (err, res) => {
          if (!err) fs.writeFileSync(values['profile-changes']!, JSON.stringify(res.profile));
          session.disconnect();
          resolve();
        }),
      );
    }
    result.cpuMs = cpuMs() - cpuStart;
    clearInterval(rssTimer);
    result.peakRss = Math.max(peakRss, process.memoryUsage().rss);
    await refreshStats(clients);
    for (const c of clients) {
      result.clientCpuMs += c.last.cpuMs;
      result.clientBytes += c.last.bytes;
      result.clientResponses += c.last.responses;
    }
    ads.events.off('push', onPush);
    for (const c of clients) c.child.stdin!.end();
    stopChildren();
    await ads.close(100);
    results.push(result);
    const vs = median(result.virtualService.map((r) => r.ms));
    const eds = median(result.endpoint.map((r) => r.ms));
    console.log(
      `  run ${run + 1}: first full config ${firstFullConfigMs} ms, VirtualService change ${vs.toFixed(0)} ms, endpoint change ${eds.toFixed(0)} ms` +
        `${result.allEndpoints.length ? `, every endpoint changed ${result.allEndpoints[0].ms.toFixed(0)} ms` : ''}` +
        `, RSS ${(rssAfterConnect / MiB).toFixed(0)} MiB (peak ${(result.peakRss / MiB).toFixed(0)}), CPU ${(result.cpuMs / 1000).toFixed(1)} s` +
        ` (load clients ${(result.clientCpuMs / 1000).toFixed(1)} s), load average ${os.loadavg()[0].toFixed(2)}`,
    );
    // Give the kernel and the collector a moment before the next run's connect storm.
    await new Promise((r) => setTimeout(r, 500));
  }

  const all = (pick: (r: RunResult) => ChangeResult[]) => results.flatMap(pick);
  const vsAll = all((r) => r.virtualService);
  const edsAll = all((r) => r.endpoint);
  const allEdsAll = all((r) => r.allEndpoints);
  const fmtPushes = (list: ChangeResult[]) => (list.length ? JSON.stringify(list[list.length - 1].pushes) : '');
  const fmtChange = (list: ChangeResult[]) =>
    `${median(list.map((r) => r.ms)).toFixed(0)} ms (min ${Math.min(...list.map((r) => r.ms)).toFixed(0)}, max ${Math.max(...list.map((r) => r.ms)).toFixed(0)}; ` +
    `CPU ${median(list.map((r) => r.cpuMs)).toFixed(0)} ms; ${(median(list.map((r) => r.bytes)) / MiB).toFixed(1)} MiB in ${median(list.map((r) => r.responses))} responses ${fmtPushes(list)})`;
  const rows: [string, string][] = [
    ['snapshot build (registry), median', `${median(buildTimes).toFixed(1)} ms`],
    ['translate one sidecar (cold), median', `${median(translateTimes).toFixed(1)} ms`],
    [
      'resources per sidecar / encoded size',
      `${resourcesPerSidecar} / ${(bytesPerSidecar / 1024).toFixed(0)} KiB (${Object.entries(bytesByType)
        .map(([k, v]) => `${k} ${(v / 1024).toFixed(0)}`)
        .join(', ')}; encode ${encodeMs.toFixed(0)} ms)`,
    ],
    [`first full config on ${proxies} proxies, median`, `${median(results.map((r) => r.firstFullConfigMs))} ms (runs: ${results.map((r) => r.firstFullConfigMs).join(', ')})`],
    [`  bytes pushed / CP CPU for it`, `${(median(results.map((r) => r.connectBytes)) / MiB).toFixed(0)} MiB / ${(median(results.map((r) => r.connectCpuMs)) / 1000).toFixed(1)} s`],
    [`VirtualService change -> all ACKed, median of ${vsAll.length}`, fmtChange(vsAll)],
    [`endpoint-only change -> all ACKed, median of ${edsAll.length}`, fmtChange(edsAll)],
    ...(allEdsAll.length ? [[`every endpoint changed -> all ACKed, median of ${allEdsAll.length}`, fmtChange(allEdsAll)] as [string, string]] : []),
    ['control-plane RSS after connect / peak, median', `${(median(results.map((r) => r.rssAfterConnect)) / MiB).toFixed(0)} / ${(median(results.map((r) => r.peakRss)) / MiB).toFixed(0)} MiB`],
    ['control-plane CPU (user+sys) per run, median', `${(median(results.map((r) => r.cpuMs)) / 1000).toFixed(1)} s`],
    ['load clients CPU per run / bytes received, median', `${(median(results.map((r) => r.clientCpuMs)) / 1000).toFixed(1)} s / ${(median(results.map((r) => r.clientBytes)) / MiB).toFixed(0)} MiB`],
    ['load average at the end (1/5/15 min)', os.loadavg().map((l) => l.toFixed(2)).join(' ')],
  ];
  const width = Math.max(...rows.map((r) => r[0].length));
  for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${v}`);
  const outDir = path.join(__dirname, '..', '..', 'bench', 'results');
  fs.mkdirSync(outDir, { recursive: true });
  const summarize = (list: ChangeResult[]) =>
    list.length
      ? {
          medianMs: median(list.map((r) => r.ms)),
          samplesMs: list.map((r) => Math.round(r.ms * 10) / 10),
          medianCpuMs: median(list.map((r) => r.cpuMs)),
          medianBytes: median(list.map((r) => r.bytes)),
          medianResponses: median(list.map((r) => r.responses)),
          pushes: list[list.length - 1].pushes,
        }
      : undefined;
  fs.writeFileSync(
    path.join(outDir, 'control-plane.json'),
    JSON.stringify(
      {
        at: new Date().toISOString(),
        node: process.version,
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model,
        loadAverageAtStart: load,
        loadAverageAtEnd: os.loadavg(),
        services,
        endpoints,
        proxies,
        loadClientProcesses: clientCount,
        runs,
        changesPerRun: changes,
        snapshotBuildMs: median(buildTimes),
        translateSidecarMs: median(translateTimes),
        resourcesPerSidecar,
        bytesPerSidecar,
        firstFullConfigMs: median(results.map((r) => r.firstFullConfigMs)),
        firstFullConfigSamplesMs: results.map((r) => r.firstFullConfigMs),
        connectBytes: median(results.map((r) => r.connectBytes)),
        connectCpuMs: median(results.map((r) => r.connectCpuMs)),
        virtualServiceConvergenceMs: median(vsAll.map((r) => r.ms)),
        endpointConvergenceMs: median(edsAll.map((r) => r.ms)),
        virtualServiceChange: summarize(vsAll),
        endpointChange: summarize(edsAll),
        allEndpointsChange: summarize(allEdsAll),
        rssBytes: median(results.map((r) => r.rssAfterConnect)),
        peakRssBytes: median(results.map((r) => r.peakRss)),
        cpuMsPerRun: median(results.map((r) => r.cpuMs)),
        loadClientCpuMsPerRun: median(results.map((r) => r.clientCpuMs)),
        loadClientBytesPerRun: median(results.map((r) => r.clientBytes)),
        targets: {
          endpointConvergenceMs: 200,
          virtualServiceConvergenceMs: 1000,
          rssBytes: 1024 * MiB,
        },
      },
      null,
      2,
    ) + '\n',
  );
}

main().then(
  () => {
    stopChildren();
    process.exit(0);
  },
  (err) => {
    console.error(err);
    stopChildren();
    process.exit(1);
  },
);
