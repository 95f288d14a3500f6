// How long the proxy's event loop was held up: Node's event-loop delay histogram, read and reset
// every window, so /stats and /stats/prometheus show the last full window's p50, p99 and max. A
// request that arrives while the loop is busy (a GC pause, a large scrape, a burst) waits that
// long; this is what tells such stalls apart from the kernel's scheduling (docs/PERFORMANCE.md).
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

export interface EventLoopDelayWindow {
  /** Milliseconds. */
  p50: number;
  p99: number;
  max: number;
  /** Length of the window the figures cover (ms). */
  windowMs: number;
}

export class EventLoopDelay {
  private readonly histogram: IntervalHistogram;
  private readonly timer: NodeJS.Timeout;
  private last: EventLoopDelayWindow;

  constructor(readonly windowMs = 10_000) {
    this.histogram = monitorEventLoopDelay({ resolution: 10 });
    this.histogram.enable();
    this.last = { p50: 0, p99: 0, max: 0, windowMs };
    this.timer = setInterval(() => this.roll(), windowMs);
    this.timer.unref();
  }

  /** The last complete window. */
  lastWindow(): EventLoopDelayWindow {
    return this.last;
  }

  private roll(): void {
    const h = this.histogram;
    // The histogram is in nanoseconds; an empty one reports NaN percentiles.
    const ms = (ns: number) => (Number.isFinite(ns) ? Math.round(ns / 1e4) / 100 : 0);
    this.last = { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max), windowMs: this.windowMs };
    h.reset();
  }

  close(): void {
    clearInterval(this.timer);
    this.histogram.disable();
  }
}
