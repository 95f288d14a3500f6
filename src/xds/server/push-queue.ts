// Bounded-concurrency iteration that keeps the event loop responsive: at most `concurrency` tasks
// in flight, and a macrotask yield whenever the synchronous work since the last one exceeds a
// time slice (so a push to thousands of proxies never starves stream reads, timers or health checks).
import { performance } from 'node:perf_hooks';

export interface BoundedRunOptions {
  concurrency: number;
  /** Yield to the event loop after this many milliseconds of uninterrupted work. */
  sliceMs: number;
  /** Checked before each task; when true, the remaining items are skipped. */
  stopped?: () => boolean;
}

/**
 * Runs `run` over `items`. The synchronous part of a task should be short (one proxy); the time
 * slice is shared by all workers, and a yield is shared too: every worker that finds the slice
 * used up waits for the same setImmediate, and the slice restarts once, when it fires. (Restarting
 * it per resumed worker would let N workers each take a full slice in one event-loop turn.)
 */
export async function forEachBounded<T>(
  items: readonly T[],
  run: (item: T) => Promise<void> | void,
  options: BoundedRunOptions,
): Promise<void> {
  let next = 0;
  let sliceStart = performance.now();
  let pendingYield: Promise<void> | undefined;
  const yieldTurn = () =>
    (pendingYield ??= new Promise<void>((resolve) =>
      setImmediate(() => {
        pendingYield = undefined;
        sliceStart = performance.now();
        resolve();
      }),
    ));
  const worker = async () => {
    while (next < items.length && !options.stopped?.()) {
      if (performance.now() - sliceStart >= options.sliceMs) {
        await yieldTurn();
        continue; // re-check: the slice may be used up again by the workers resumed before this one
      }
      const item = items[next++];
      await run(item);
    }
  };
  const workers = Math.max(1, Math.min(options.concurrency, items.length));
  await Promise.all(Array.from({ length: workers }, worker));
}

/**
 * A FIFO of short synchronous jobs, run in time slices with a macrotask yield between slices. For
 * work that arrives in bursts from I/O callbacks (a reconnect storm of a thousand proxies each
 * asking for config), which would otherwise all run inside one event-loop turn.
 */
export class TimeSlicedQueue {
  private jobs: (() => void)[] = [];
  private head = 0;
  private scheduled = false;

  constructor(
    private readonly sliceMs: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  push(job: () => void): void {
    this.jobs.push(job);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  get size(): number {
    return this.jobs.length - this.head;
  }

  clear(): void {
    this.jobs = [];
    this.head = 0;
  }

  private drain(): void {
    const started = performance.now();
    while (this.head < this.jobs.length && performance.now() - started < this.sliceMs) {
      const job = this.jobs[this.head++];
      try {
        job();
      } catch (err) {
        this.onError(err);
      }
    }
    if (this.head < this.jobs.length) {
      setImmediate(() => this.drain());
      return;
    }
    this.jobs = [];
    this.head = 0;
    this.scheduled = false;
  }
}
