// Trace context on the wire: W3C Trace Context (traceparent, tracestate) and Zipkin's B3
// (x-b3-traceid / x-b3-spanid / x-b3-parentspanid / x-b3-sampled / x-b3-flags, and the single
// `b3` header). Extraction prefers W3C, then single b3, then multi-header B3; injection writes
// both W3C and multi-header B3 (and rewrites a `b3` header that came in) so applications that
// propagate either keep the trace together.
import { randomFillSync } from 'node:crypto';

type Headers = Record<string, string | string[] | undefined>;

/** A position in a trace: ids as lowercase hex (32 and 16 digits). */
export interface SpanContext {
  readonly traceId: string;
  readonly spanId: string;
  /** The caller's sampling decision; undefined: none was made (B3 "defer", or no context). */
  readonly sampled: boolean | undefined;
  /** W3C tracestate, passed along untouched. */
  readonly traceState?: string;
}

/** What arrived with a request: a parent span, or only a sampling decision (b3: 0 / 1 / d). */
export interface ExtractedContext {
  readonly parent?: SpanContext;
  readonly sampled?: boolean;
}

const HEX = /^[0-9a-f]+$/;
const ZERO_TRACE = '00000000000000000000000000000000';
const ZERO_SPAN = '0000000000000000';

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function isTraceId(id: string): boolean {
  return id.length === 32 && HEX.test(id) && id !== ZERO_TRACE;
}

function isSpanId(id: string): boolean {
  return id.length === 16 && HEX.test(id) && id !== ZERO_SPAN;
}

/**
 * W3C traceparent: `version-traceid-parentid-flags`. Version ff is invalid; version 00 has exactly
 * four fields; a later version may append fields (its first four are read). Uppercase hex is
 * invalid, as the spec says.
 */
export function parseTraceparent(value: string | undefined): { traceId: string; spanId: string; sampled: boolean } | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v.length < 55 || v[2] !== '-' || v[35] !== '-' || v[52] !== '-') return undefined;
  const version = v.slice(0, 2);
  if (!HEX.test(version) || version === 'ff') return undefined;
  if (version === '00' ? v.length !== 55 : v.length > 55 && v[55] !== '-') return undefined;
  const traceId = v.slice(3, 35);
  const spanId = v.slice(36, 52);
  const flags = v.slice(53, 55);
  if (!isTraceId(traceId) || !isSpanId(spanId) || !HEX.test(flags)) return undefined;
  return { traceId, spanId, sampled: (parseInt(flags, 16) & 1) === 1 };
}

/** B3 sampling states: 1 / true / d (debug) sample, 0 / false do not; anything else defers. */
function b3Sampled(value: string | undefined): boolean | undefined {
  switch (value?.trim().toLowerCase()) {
    case '1':
    case 'true':
    case 'd':
      return true;
    case '0':
    case 'false':
      return false;
    default:
      return undefined;
  }
}

/** B3 trace ids are 64 or 128 bits; a 64-bit one is left-padded to 128 (Zipkin's rule). */
function b3TraceId(value: string | undefined): string | undefined {
  const id = value?.trim().toLowerCase();
  if (!id) return undefined;
  const padded = id.length === 16 ? `0000000000000000${id}` : id;
  return isTraceId(padded) ? padded : undefined;
}

function b3SpanId(value: string | undefined): string | undefined {
  const id = value?.trim().toLowerCase();
  return id && isSpanId(id) ? id : undefined;
}

/** Single-header B3: `{traceId}-{spanId}[-{sampled}[-{parentSpanId}]]`, or just `{sampled}`. */
export function parseB3Single(value: string | undefined): ExtractedContext | undefined {
  if (value === undefined) return undefined;
  const parts = value.trim().split('-');
  if (parts.length === 1) {
    const sampled = b3Sampled(parts[0]);
    return sampled === undefined ? undefined : { sampled };
  }
  const traceId = b3TraceId(parts[0]);
  const spanId = b3SpanId(parts[1]);
  if (!traceId || !spanId || parts.length > 4) return undefined;
  const sampled = parts.length >= 3 ? b3Sampled(parts[2]) : undefined;
  return { parent: { traceId, spanId, sampled }, ...(sampled !== undefined ? { sampled } : {}) };
}

/** Multi-header B3. x-b3-flags: 1 (debug) means sampled. */
function parseB3Multi(headers: Headers): ExtractedContext | undefined {
  const flags = first(headers['x-b3-flags']);
  const sampledHeader = first(headers['x-b3-sampled']);
  const sampled = flags?.trim() === '1' ? true : b3Sampled(sampledHeader);
  const traceId = b3TraceId(first(headers['x-b3-traceid']));
  const spanId = b3SpanId(first(headers['x-b3-spanid']));
  if (traceId && spanId) return { parent: { traceId, spanId, sampled }, ...(sampled !== undefined ? { sampled } : {}) };
  return sampled !== undefined ? { sampled } : undefined;
}

/** The incoming trace context, W3C first; `{}` when the request carries none. */
export function extractContext(headers: Headers): ExtractedContext {
  const tp = parseTraceparent(first(headers.traceparent));
  if (tp) {
    const raw = headers.tracestate;
    const traceState = Array.isArray(raw) ? raw.join(',') : raw;
    return { parent: { ...tp, ...(traceState ? { traceState } : {}) }, sampled: tp.sampled };
  }
  if (headers.b3 !== undefined) {
    const single = parseB3Single(first(headers.b3));
    if (single) return single;
  }
  if (headers['x-b3-traceid'] !== undefined || headers['x-b3-sampled'] !== undefined || headers['x-b3-flags'] !== undefined) {
    return parseB3Multi(headers) ?? {};
  }
  return {};
}

/**
 * Writes `ctx` (the span the next hop should name as its parent) into request headers: W3C
 * traceparent/tracestate and multi-header B3, with x-b3-parentspanid = `parentSpanId` when known.
 * A single `b3` header already present is rewritten so it never contradicts the others.
 */
export function injectContext(headers: Headers, ctx: SpanContext, parentSpanId?: string): void {
  const sampled = ctx.sampled === true;
  headers.traceparent = `00-${ctx.traceId}-${ctx.spanId}-${sampled ? '01' : '00'}`;
  if (ctx.traceState) headers.tracestate = ctx.traceState;
  else if (headers.tracestate !== undefined) headers.tracestate = undefined;
  headers['x-b3-traceid'] = ctx.traceId;
  headers['x-b3-spanid'] = ctx.spanId;
  headers['x-b3-sampled'] = sampled ? '1' : '0';
  if (parentSpanId) headers['x-b3-parentspanid'] = parentSpanId;
  else if (headers['x-b3-parentspanid'] !== undefined) headers['x-b3-parentspanid'] = undefined;
  // A debug flag would force sampling downstream against this hop's decision.
  if (headers['x-b3-flags'] !== undefined) headers['x-b3-flags'] = undefined;
  if (headers.b3 !== undefined) headers.b3 = `${ctx.traceId}-${ctx.spanId}-${sampled ? '1' : '0'}${parentSpanId ? `-${parentSpanId}` : ''}`;
}

/**
 * Random ids from a pooled buffer: one randomFillSync per 512 ids instead of one call per id,
 * since every traced request (sampled or not) needs one or two.
 */
export class IdGenerator {
  private readonly pool = Buffer.alloc(4096);
  private offset = this.pool.length;

  private hex(bytes: number): string {
    if (this.offset + bytes > this.pool.length) {
      randomFillSync(this.pool);
      this.offset = 0;
    }
    const id = this.pool.toString('hex', this.offset, this.offset + bytes);
    this.offset += bytes;
    return id;
  }

  traceId(): string {
    const id = this.hex(16);
    return id === ZERO_TRACE ? this.traceId() : id;
  }

  spanId(): string {
    const id = this.hex(8);
    return id === ZERO_SPAN ? this.spanId() : id;
  }
}
