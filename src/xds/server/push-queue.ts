// Bounded-concurrency iteration that keeps the event loop responsive: at most `concurrency` tasks
// in flight, and a macrotask yield whenever the synchronous work since the last one exceeds a
// time slice (so a push to thousands of proxies never starves stream reads, timers or health checks).
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';

export interface BoundedRunOptions {
  concurrency: number;
  /** Yield to the event loop after this many milliseconds of uninterrupted work. */
  sliceMs: number;
  /** Checked before each task; when true, the remaining items are skipped. */
  stopped?: () => boolean;
}

export async function forEachBounded<T>(
  items: readonly T[],
  run: (item: T) => Promise<void> | void,
  options: BoundedRunOptions,
): Promise<void> {
  let next = 0;
  let sliceStart = performance.now();
  const worker = async () => {
    while (next < items.length && !options.stopped?.()) {
      if (performance.now() - sliceStart >= options.sliceMs) {
        await yieldToEventLoop();
        sliceStart = performance.now();
        continue; // re-check: another worker may have taken the remaining items meanwhile
      }
      const item = items[next++];
      await run(item);
    }
  };
  const workers = Math.max(1, Math.min(options.concurrency, items.length));
  await Promise.all(Array.from({ length: workers }, worker));
}
