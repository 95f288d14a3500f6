// Waiting on a condition with a deadline: the only way tests wait for things to settle (never a
// fixed sleep). Polls until the condition returns a truthy value, which is returned.

export interface WaitForOptions {
  /** Give up after this long. Default 5000. */
  timeoutMs?: number;
  /** Poll interval. Default 20. */
  intervalMs?: number;
  /** What was awaited, for the timeout error; a function is evaluated only on timeout. */
  message?: string | (() => string);
}

/**
 * Resolves with the first truthy value `condition` returns. A condition that throws counts as
 * "not yet"; the last error is reported if the deadline passes.
 */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  options: WaitForOptions = {},
): Promise<NonNullable<T>> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const intervalMs = options.intervalMs ?? 20;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value as NonNullable<T>;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, Math.max(0, deadline - Date.now()))));
  }
  const what = typeof options.message === 'function' ? options.message() : (options.message ?? 'condition not met');
  const cause = lastError ? ` (last error: ${(lastError as Error).message ?? lastError})` : '';
  throw new Error(`timed out after ${timeoutMs}ms: ${what}${cause}`);
}

/** Resolves with the first event (of an EventEmitter-like source) whose payload satisfies `match`. */
export function waitForEvent<A extends unknown[]>(
  source: { on(event: string, listener: (...args: A) => void): unknown; off(event: string, listener: (...args: A) => void): unknown },
  event: string,
  match: (...args: A) => boolean = () => true,
  options: { timeoutMs?: number; message?: string } = {},
): Promise<A> {
  const timeoutMs = options.timeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    const listener = (...args: A) => {
      if (!match(...args)) return;
      clearTimeout(timer);
      source.off(event, listener);
      resolve(args);
    };
    const timer = setTimeout(() => {
      source.off(event, listener);
      reject(new Error(`timed out after ${timeoutMs}ms waiting for "${event}"${options.message ? `: ${options.message}` : ''}`));
    }, timeoutMs);
    source.on(event, listener);
  });
}
