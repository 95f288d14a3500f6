// Shared by the data-plane benchmark's modules (data-plane.ts and the rows in data-plane-*.ts):
// child processes (every one tracked and stopped on exit, failure and Ctrl-C), pinning, the two
// measurements of a row (saturation with an external load generator, fixed rate with
// fixed-rate-client.ts in its own process), /proc readings, templates and formatting.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { FixedRateOptions, FixedRateResult, FixedRateRequest } from './fixed-rate-client';

export const REPO = path.resolve(__dirname, '..', '..');
export const HOST = '127.0.0.1';

/** An Istio Gateway serving every host on one port, selecting the proxy labelled istio=<name>. */
export function gatewayYaml(name: string, port: number, protocol: 'HTTP' | 'GRPC' | 'TCP'): string {
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ${name}, namespace: default}
spec:
  selector: {istio: ${name}}
  servers:
  - port: {number: ${port}, name: ${protocol.toLowerCase()}, protocol: ${protocol}}
    hosts: ["*"]
`;
}
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

// ---------------------------------------------------------------------------------------------
// Child processes: every one is tracked and stopped on exit, failure, SIGINT and SIGTERM.

export interface Managed {
  name: string;
  child: ChildProcess;
  exited: Promise<void>;
}

const managed = new Set<Managed>();

function track(name: string, child: ChildProcess): Managed {
  const m: Managed = { name, child, exited: new Promise((resolve) => child.once('exit', () => resolve())) };
  managed.add(m);
  void m.exited.then(() => managed.delete(m));
  return m;
}

export function startProcess(name: string, command: string, args: string[], logFile?: string): Managed {
  const out = logFile ? fs.openSync(logFile, 'a') : 'ignore';
  const child = spawn(command, args, { stdio: ['ignore', out, out], cwd: REPO });
  if (typeof out === 'number') fs.closeSync(out);
  child.once('error', (err) => console.error(`bench: ${name} failed to start: ${err.message}`));
  return track(name, child);
}

function startProcessPiped(command: string, args: string[]): Managed {
  return track(command, spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO }));
}

/** Children of `pid` (nginx workers), from /proc. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // the process exited while we looked
    }
  }
  return out;
}

export async function stopProcess(m: Managed, graceMs = 3_000): Promise<void> {
  if (m.child.exitCode !== null || m.child.signalCode !== null) return;
  const workers = m.child.pid ? childPids(m.child.pid) : [];
  m.child.kill('SIGTERM');
  const timedOut = await Promise.race([m.exited.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), graceMs))]);
  if (timedOut) m.child.kill('SIGKILL');
  await m.exited;
  for (const pid of workers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone, as expected
    }
  }
}

export async function stopAll(): Promise<void> {
  await Promise.all([...managed].reverse().map((m) => stopProcess(m)));
}

export function killAllNow(): void {
  for (const m of managed) {
    if (m.child.exitCode !== null || m.child.signalCode !== null || !m.child.pid) continue;
    for (const pid of [...childPids(m.child.pid), m.child.pid]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

/** Runs a command to completion (killed after timeoutMs), collecting its output. */
export function run(command: string, args: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const m = startProcessPiped(command, args);
    let stdout = '';
    let stderr = '';
    m.child.stdout!.on('data', (d) => (stdout += d));
    m.child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => m.child.kill('SIGKILL'), timeoutMs);
    m.child.once('error', reject);
    m.child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Pinning and /proc.

export interface Pinning {
  enabled: boolean;
  proxyCpu: string;
  loadCpu: string;
  note: string;
}

export function pinned(pin: Pinning, cpu: string, command: string, args: string[]): [string, string[]] {
  return pin.enabled ? ['taskset', ['-c', cpu, command, ...args]] : [command, args];
}

/** utime + stime of a process in microseconds (all its threads). */
export function cpuMicros(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLK_TCK;
}

export function statusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) : NaN;
}

export const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

export function median(values: number[]): number {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

// ---------------------------------------------------------------------------------------------
// A row's target and its two measurements.

export interface SaturationResult {
  rps: number;
  requests: number;
  errors: number;
  cpuUsPerRequest: number;
}

/** The saturation load generator for a target: wrk (HTTP/1.1, and L4 rows) by default; h2load for gRPC. */
export interface Saturator {
  tool: string;
  args(t: Target, seconds: number, connections: number): string[];
  /** Completed requests, their rate, and every error the tool (and its output) can tell. */
  parse(stdout: string): { rps: number; requests: number; errors: number };
}

export interface Target {
  name: string;
  url: string;
  /** Host header to send (the sidecar pair routes by it); default: the URL's. */
  host?: string;
  /** Processes whose CPU and memory are "the proxy" (nginx: master + worker); empty for direct. */
  pids: () => number[];
  /** Default: wrk. */
  saturator?: Saturator;
  /** What the fixed-rate client sends; default: HTTP/1.1 GET, 200 expected. */
  request?: FixedRateRequest;
}

export const wrk: Saturator = {
  tool: 'wrk',
  args: (t, seconds, connections) => ['-t1', `-c${connections}`, `-d${seconds}s`, ...(t.host ? ['-H', `Host: ${t.host}`] : []), t.url],
  parse(stdout) {
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
    const requests = Number(/(\d+) requests in/.exec(stdout)?.[1]);
    const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
    const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
    return { rps, requests, errors: non2xx + (socket ? sum(socket.slice(1).map(Number)) : 0) };
  },
};

const proxyCpu = (t: Target) => sum(t.pids().map(cpuMicros));

export async function saturate(t: Target, pin: Pinning, seconds: number, connections: number): Promise<SaturationResult> {
  const tool = t.saturator ?? wrk;
  const before = proxyCpu(t);
  const [cmd, args] = pinned(pin, pin.loadCpu, tool.tool, tool.args(t, seconds, connections));
  const { stdout, stderr, code } = await run(cmd, args, (seconds + 15) * 1000);
  const after = proxyCpu(t);
  if (code !== 0) throw new Error(`${tool.tool} against ${t.name} exited with ${code}: ${stderr.trim() || stdout.trim().split('\n').slice(-3).join(' / ')}`);
  const { rps, requests, errors } = tool.parse(stdout);
  return { rps, requests, errors, cpuUsPerRequest: t.pids().length ? (after - before) / requests : NaN };
}

export interface FixedRateRun extends FixedRateResult {
  /** Proxy CPU over the measured window as a fraction of one core. */
  proxyCores: number;
}

export async function fixedRate(t: Target, pin: Pinning, rate: number, seconds: number, connections: number): Promise<FixedRateRun> {
  const client = path.join(__dirname, 'fixed-rate-client.js');
  const options: FixedRateOptions = { url: t.url, rate, seconds, connections, host: t.host, request: t.request };
  const before = proxyCpu(t);
  const startedAt = performance.now();
  const [cmd, args] = pinned(pin, pin.loadCpu, process.execPath, [client, JSON.stringify(options)]);
  const { stdout, stderr, code } = await run(cmd, args, (seconds + 20) * 1000);
  const elapsedUs = (performance.now() - startedAt) * 1000;
  const after = proxyCpu(t);
  if (code !== 0) throw new Error(`fixed-rate client against ${t.name} exited with ${code}: ${stderr.trim()}`);
  const result = JSON.parse(stdout.trim().split('\n').pop()!) as FixedRateResult;
  return { ...result, proxyCores: t.pids().length ? (after - before) / elapsedUs : NaN };
}

// ---------------------------------------------------------------------------------------------
// Set-up helpers.

/** One GET; its status, or the error's message. */
export function httpGetStatus(url: string, timeoutMs: number, host?: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: timeoutMs, headers: host ? { host } : undefined }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve(err.message));
  });
}

export async function waitForHttp200(url: string, what: string, timeoutMs: number, logFile?: string, host?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const status = await httpGetStatus(url, 1000, host);
    if (status === 200) return;
    last = String(status);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not answer 200 at ${url} within ${timeoutMs} ms (last: ${last})${logFile ? `; see ${logFile}` : ''}`);
}

export function portFree(port: number, host = HOST): Promise<boolean> {
  return new Promise((resolve) => {
    const server = http.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** Throws when any of the ports is taken. */
export async function requirePortsFree(ports: readonly (readonly [string, number])[], what: string): Promise<void> {
  for (const [host, port] of ports) {
    if (!(await portFree(port, host))) throw new Error(`port ${host}:${port} (${what}) is in use (hint: is another benchmark or a weft proxy running?)`);
  }
}

export function findNginx(): string {
  for (const candidate of ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx']) if (fs.existsSync(candidate)) return candidate;
  const which = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return which.stdout.trim();
  throw new Error('nginx not found (hint: run `bash bench/install-tools.sh` as root)');
}

export function fillTemplate(file: string, values: Record<string, string>): string {
  return fs.readFileSync(file, 'utf8').replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    if (!(key in values)) throw new Error(`${file}: no value for {{${key}}}`);
    return values[key];
  });
}

/** Writes `<work>/<name>.conf` from bench/nginx/<template> and starts nginx on it, pinned to `cpu`. */
export function startNginx(nginxBin: string, pin: Pinning, cpu: string, work: string, name: string, template: string, values: Record<string, string>): Managed {
  const conf = path.join(work, `${name}.conf`);
  fs.writeFileSync(conf, fillTemplate(path.join(REPO, 'bench/nginx', template), { PREFIX: work, ...values }));
  return startProcess(name, ...pinned(pin, cpu, nginxBin, ['-p', work, '-c', conf]), path.join(work, `${name}.log`));
}

// ---------------------------------------------------------------------------------------------
// Formatting.

export const fmt = (v: number, digits = 0) => (Number.isFinite(v) ? v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '-');
export const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}x` : '-');

/** Right-aligned columns, the first left-aligned, a dashed rule under the header. */
export function renderTable(header: string[], lines: string[][]): string {
  const all = [header, ...lines];
  const widths = header.map((_, i) => Math.max(...all.map((l) => l[i].length)));
  const render = (l: string[]) => l.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  return [render(header), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(render)].join('\n');
}
