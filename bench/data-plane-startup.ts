// The data-plane benchmark's start-up row: how long a Weft proxy takes from spawn to ready with
// its full config from the control plane, and its RSS then. Each start spawns
// `bin/weft proxy --gateway` (pinned to the proxy CPU, on its own loopback address 127.0.0.5, with
// the same Gateway and VirtualService as the `weft` row: labels istio=bench-gateway; plaintext ADS
// and no identity, --ca-address none, since nothing it routes needs mesh mTLS), polls its
// health endpoint http://127.0.0.5:15021/healthz/ready every 5 ms until it answers 200 (the proxy
// reports ready once it has its listeners, clusters, routes and endpoints: src/proxy/proxy.ts),
// reads its VmRSS, checks that a request through its listener is answered 200 by the backend, and
// stops it before the next start. The control plane is warm (it has served the other gateways).
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { HOST, fmt, httpGetStatus, median, pinned, renderTable, startProcess, statusKb, stopProcess, type Pinning } from './data-plane-lib';
import { PROXY_NODE_FLAGS } from '../src/proxy/node-flags';

export const STARTUP_HOST = '127.0.0.5';
export const STARTUP_ROW = 'weft gateway start-up';

export interface StartupRun {
  /** Spawn to the first 200 from /healthz/ready. */
  readyMs: number;
  rssAtReadyMb: number;
  /** Whether the first request through its listener, right after ready, was answered 200. */
  routedOk: boolean;
}

export interface StartupOptions {
  starts: number;
  pin: Pinning;
  weftBin: string;
  xdsPort: number;
  /** The gateway's HTTP listener port (the `weft` row's Gateway server). */
  listenerPort: number;
  logDir: string;
  telemetry: 'on' | 'off';
}

export async function measureStartups(o: StartupOptions): Promise<StartupRun[]> {
  const runs: StartupRun[] = [];
  const readyUrl = `http://${STARTUP_HOST}:15021/healthz/ready`;
  const logFile = path.join(o.logDir, 'weft-startup.log');
  for (let i = 0; i < o.starts; i++) {
    const startedAt = performance.now();
    const proxy = startProcess(
      STARTUP_ROW,
      ...pinned(o.pin, o.pin.proxyCpu, process.execPath, [
        ...PROXY_NODE_FLAGS, o.weftBin, 'proxy', '--gateway', 'bench-gateway-startup', '--labels', 'istio=bench-gateway',
        '--address', STARTUP_HOST, '--xds', `${HOST}:${o.xdsPort}`, '--ca-address', 'none', '--telemetry', o.telemetry, '--drain-seconds', '0', '--log-level', 'warn']),
      logFile,
    );
    try {
      const deadline = startedAt + 30_000;
      let readyMs = NaN;
      let last = '';
      while (performance.now() < deadline) {
        if (proxy.child.exitCode !== null || proxy.child.signalCode !== null) throw new Error(`the start-up proxy exited (${proxy.child.exitCode ?? proxy.child.signalCode}); see ${logFile}`);
        const status = await httpGetStatus(readyUrl, 500);
        if (status === 200) {
          readyMs = performance.now() - startedAt;
          break;
        }
        last = String(status);
        await new Promise((r) => setTimeout(r, 5));
      }
      if (!Number.isFinite(readyMs)) throw new Error(`the start-up proxy was not ready at ${readyUrl} within 30 s (last: ${last}); see ${logFile}`);
      const rssAtReadyMb = statusKb(proxy.child.pid!, 'VmRSS') / 1024;
      const routedOk = (await httpGetStatus(`http://${STARTUP_HOST}:${o.listenerPort}/`, 5_000)) === 200;
      runs.push({ readyMs, rssAtReadyMb, routedOk });
      process.stdout.write(`start-up ${i + 1}/${o.starts}: ready in ${fmt(readyMs, 1)} ms, RSS ${fmt(rssAtReadyMb, 1)} MB${routedOk ? '' : ', first request NOT answered 200'}\n`);
    } finally {
      await stopProcess(proxy);
    }
  }
  return runs;
}

export function summarizeStartups(runs: StartupRun[]) {
  const ready = runs.map((r) => r.readyMs);
  return {
    starts: runs.length,
    readyMsMedian: median(ready),
    readyMsMin: Math.min(...ready),
    readyMsMax: Math.max(...ready),
    rssAtReadyMbMedian: median(runs.map((r) => r.rssAtReadyMb)),
    routedOk: runs.filter((r) => r.routedOk).length,
  };
}

export function startupTable(runs: StartupRun[]): string {
  const s = summarizeStartups(runs);
  return renderTable(
    ['', 'starts', 'ready ms (median)', 'min ms', 'max ms', 'RSS at ready MB', 'first request 200'],
    [[STARTUP_ROW, String(s.starts), fmt(s.readyMsMedian, 1), fmt(s.readyMsMin, 1), fmt(s.readyMsMax, 1), fmt(s.rssAtReadyMbMedian, 1), `${s.routedOk}/${s.starts}`]],
  );
}
