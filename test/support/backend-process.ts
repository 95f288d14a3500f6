// Upstream endpoints as real processes, for fault tests that kill, stop or slow one down:
// `node dist/test/support/backend-process.js NAME ADDRESS PORT MODE` serves HTTP/1.1 on
// ADDRESS:PORT (PORT 0: any) and prints `{"listening":PORT}` once bound. MODE says how it answers:
// `ok` (200, `{"backend":NAME}`), `status:CODE`, or `delay:MS` (200 after MS milliseconds).
// startBackendProcess() spawns one and waits until it listens.
import { spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';

export type BackendMode = 'ok' | `status:${number}` | `delay:${number}`;

export interface BackendProcess {
  name: string;
  address: string;
  port: number;
  child: ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, then waits for the exit (SIGKILL after 5 s). */
  stop(): Promise<void>;
}

export function startBackendProcess(name: string, address: string, mode: BackendMode = 'ok', port = 0): Promise<BackendProcess> {
  const child = spawn(process.execPath, [path.join(__dirname, 'backend-process.js'), name, address, String(port), mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`backend ${name} did not start within 10s: ${stderr}`));
    }, 10_000);
    const early = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`backend ${name} exited (${code}) before listening: ${stderr}`));
    };
    child.once('exit', early);
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /\{"listening":(\d+)\}/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.off('exit', early);
      resolve({
        name,
        address,
        port: Number(m[1]),
        child,
        exited,
        kill: (signal = 'SIGKILL') => {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        },
        stop: async () => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          const force = setTimeout(() => child.kill('SIGKILL'), 5000);
          child.kill('SIGTERM');
          await exited;
          clearTimeout(force);
        },
      });
    });
  });
}

function main(argv: string[]): void {
  const [name, address, port, mode] = argv;
  const [kind, arg] = (mode ?? 'ok').split(':');
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const answer = (status: number) => {
        const body = JSON.stringify({ backend: name, path: req.url });
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-backend': name });
        res.end(body);
      };
      if (kind === 'status') answer(Number(arg));
      else if (kind === 'delay') {
        const t = setTimeout(() => answer(200), Number(arg));
        res.on('close', () => clearTimeout(t));
      } else answer(200);
    });
  });
  server.keepAliveTimeout = 30_000;
  server.listen(Number(port), address, () => process.stdout.write(JSON.stringify({ listening: (server.address() as AddressInfo).port }) + '\n'));
  process.on('SIGTERM', () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}

if (require.main === module) main(process.argv.slice(2));
