// Debouncing of snapshot pushes, as Istio's pilot does it: wait for a quiet period after the
// latest change, but never longer than a maximum delay since the first change of the burst.

export interface DebounceOptions {
  /** Quiet period: fire this long after the latest event (Istio PILOT_DEBOUNCE_AFTER, 100ms). */
  afterMs: number;
  /** Upper bound from the first event of a burst under constant churn (PILOT_DEBOUNCE_MAX, 1s). */
  maxMs: number;
}

export interface DebouncedBurst<T> {
  /** The latest value of the burst; earlier ones are superseded. */
  latest: T;
  /** How many events were merged. */
  merged: number;
  /** When the first event of the burst arrived (ms since epoch). */
  firstAt: number;
}

/** Merges bursts of values into one call of `fire` with the latest; one burst at a time. */
export class Debouncer<T> {
  private pending: DebouncedBurst<T> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: DebounceOptions,
    private readonly fire: (burst: DebouncedBurst<T>) => void,
  ) {
    if (!(options.afterMs >= 0) || !(options.maxMs >= options.afterMs)) {
      throw new Error(`invalid debounce settings: afterMs=${options.afterMs} maxMs=${options.maxMs} (need 0 <= afterMs <= maxMs)`);
    }
  }

  push(value: T, now = Date.now()): void {
    if (this.pending) {
      this.pending.latest = value;
      this.pending.merged++;
    } else {
      this.pending = { latest: value, merged: 1, firstAt: now };
    }
    if (this.timer) clearTimeout(this.timer);
    const deadline = Math.min(now + this.options.afterMs, this.pending.firstAt + this.options.maxMs);
    this.timer = setTimeout(() => this.flush(), Math.max(0, deadline - now));
  }

  /** Fires the pending burst now, if there is one. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const burst = this.pending;
    this.pending = undefined;
    if (burst) this.fire(burst);
  }

  /** Drops the pending burst without firing. */
  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = undefined;
  }

  get isPending(): boolean {
    return this.pending !== undefined;
  }
}
