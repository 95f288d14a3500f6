// Child processes a test starts (sidecars, gateways, `weft` commands): each keeps the tail of its
// output for failure messages, and all of them stop together (SIGTERM, SIGKILL after a grace).
import { spawn, type ChildProcess } from 'node:child_process';

interface Entry {
  name: string;
  child: ChildProcess;
  output: string[];
}

export class ChildProcesses {
  private readonly entries: Entry[] = [];

  /** `maxChunks`: how much of each process's output is kept for `logs()`. */
  constructor(private readonly maxChunks = 200) {}

  /** Starts `node ...args` (stdout and stderr kept). */
  start(name: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
    const child = spawn(process.execPath, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const entry: Entry = { name, child, output: [] };
    const keep = (d: Buffer) => {
      entry.output.push(d.toString());
      if (entry.output.length > this.maxChunks) entry.output.shift();
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    this.entries.push(entry);
    return child;
  }

  /** Every process's recent output, for a failing wait's message. */
  logs(): string {
    return this.entries.map((e) => `--- ${e.name}\n${e.output.join('')}`).join('\n');
  }

  /** SIGTERM to all, SIGKILL to any still running after `graceMs`; resolves when all exited. */
  stopAll(graceMs = 5000): Promise<void> {
    return Promise.all(
      this.entries.map(
        ({ child }) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const force = setTimeout(() => child.kill('SIGKILL'), graceMs);
            child.once('exit', () => {
              clearTimeout(force);
              resolve();
            });
            child.kill('SIGTERM');
          }),
      ),
    ).then(() => undefined);
  }
}
