import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { EventLoopDelay } from '../../../src/proxy/event-loop-delay';
import { ProxyStats } from '../../../src/proxy/stats';
import { ClusterManager } from '../../../src/proxy/upstream/cluster-manager';
import { waitFor } from '../../support/wait-for';

describe('event loop delay', () => {
  it('reports a stall of the event loop in the window that saw it', async () => {
    const delay = new EventLoopDelay(500);
    try {
      // The histogram samples from the loop's next turns on: let one window complete first.
      await waitFor(() => delay.lastWindow().p50 > 0, { timeoutMs: 5_000, message: 'a first window' });
      const until = Date.now() + 200;
      while (Date.now() < until) {
        // hold the event loop, as a long GC pause or a large synchronous render would
      }
      await waitFor(() => delay.lastWindow().max >= 150, { timeoutMs: 5_000, intervalMs: 20, message: () => `a window with the 200 ms stall: ${JSON.stringify(delay.lastWindow())}` });
      // Windows roll: a later quiet window no longer shows the stall.
      await waitFor(() => delay.lastWindow().max < 150, { timeoutMs: 5_000, message: () => `a quiet window: ${JSON.stringify(delay.lastWindow())}` });
    } finally {
      delay.close();
    }
  });

  it('is in /stats and /stats/prometheus', () => {
    const stats = new ProxyStats();
    stats.eventLoop = { lastWindow: () => ({ p50: 0.5, p99: 12, max: 42.5, windowMs: 10_000 }) };
    const clusters = new ClusterManager(Math.random);
    const prom = stats.renderPrometheus(clusters);
    assert.match(prom, /^# TYPE weft_event_loop_delay_seconds gauge$/m);
    assert.match(prom, /^weft_event_loop_delay_seconds\{quantile="0.99"\} 0.012$/m);
    assert.match(prom, /^weft_event_loop_delay_seconds\{quantile="1"\} 0.0425$/m);
    assert.match(stats.renderText(clusters), /^weft\.event_loop_delay_max_ms: 42\.5$/m);
  });
});
