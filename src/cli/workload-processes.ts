// What `weft run` (both modes) needs to supervise a workload's sidecar and application: when the
// sidecar is ready, and how a child process ended as a shell exit code.
import type { ChildProcess } from 'node:child_process';
import * as http from 'node:http';

/** The sidecar's readiness endpoint (health port 15021 on the workload's address) answers 200. */
export function sidecarReady(address: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(`http://${address}:15021/healthz/ready`, { timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** The child's exit code; a signal counts as 143 (128 + SIGTERM) and a failed spawn as 127, like a shell. */
export function exitCodeOf(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    if (child.signalCode !== null) return resolve(128 + 15);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + 15 : 1)));
    child.once('error', () => resolve(127));
  });
}
