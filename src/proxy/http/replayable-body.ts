// A request body that can be read more than once while it streams: for retries (a new attempt
// replays what was sent) and for mirroring (the shadow gets a copy). Bytes are kept up to a
// limit, as Envoy buffers up to per_request_buffer_limit_bytes; past it, replays are refused.
import { Readable } from 'node:stream';

export class ReplayableBody {
  private chunks: Buffer[] = [];
  private size = 0;
  private ended = false;
  private failed: Error | null = null;
  private overflowed = false;
  private readonly live = new Set<Readable>();
  /** The reader whose backpressure paces the source (the current attempt). */
  private primary: Readable | null = null;
  private started = false;

  constructor(
    private readonly source: Readable,
    private readonly limit: number,
  ) {}

  private start(): void {
    if (this.started) return;
    this.started = true;
    this.source.on('data', (chunk: Buffer) => {
      this.size += chunk.length;
      if (!this.overflowed) {
        if (this.size > this.limit) {
          this.overflowed = true;
          this.chunks = [];
        } else this.chunks.push(chunk);
      }
      for (const r of this.live) {
        if (!r.push(chunk) && r === this.primary) this.source.pause();
      }
    });
    this.source.once('end', () => {
      this.ended = true;
      for (const r of this.live) r.push(null);
      this.live.clear();
    });
    this.source.once('error', (err) => this.fail(err));
    this.source.once('aborted', () => this.fail(new Error('request aborted')));
    this.source.once('close', () => {
      if (!this.ended) this.fail(new Error('request aborted'));
    });
  }

  private fail(err: Error): void {
    if (this.ended || this.failed) return;
    this.failed = err;
    for (const r of this.live) r.destroy(err);
    this.live.clear();
  }

  /** Total bytes received so far. */
  get bytes(): number {
    return this.size;
  }

  /** Whether a new reader can still see the whole body from its start. */
  get replayable(): boolean {
    return !this.overflowed && !this.failed;
  }

  /** The whole body if it has fully arrived within the limit. */
  complete(): Buffer | null {
    if (!this.ended || this.overflowed) return null;
    return this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.size);
  }

  /**
   * A reader from the first byte. `primary` readers pace the source; others (mirrors) follow
   * without slowing it. Throws once the buffer overflowed (the start is gone).
   */
  reader(primary: boolean): Readable | Buffer {
    if (!this.replayable && this.started) throw new Error('request body exceeded the buffer limit; it cannot be replayed');
    this.start();
    const done = this.complete();
    if (done) return done;
    const r = new Readable({
      read: () => {
        if (r === this.primary && this.source.isPaused()) this.source.resume();
      },
    });
    for (const c of this.chunks) r.push(c);
    if (this.ended) r.push(null);
    else this.live.add(r);
    r.once('close', () => this.live.delete(r));
    if (primary) {
      this.primary = r;
      // A previous primary (an abandoned attempt) must not hold the source paused.
      if (this.source.isPaused()) this.source.resume();
    }
    return r;
  }
}
