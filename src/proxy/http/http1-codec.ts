// HTTP/1.1 on the wire for both sides of the proxy: Node's own llhttp parser (the one node:http
// runs, with its request-smuggling checks) driven directly, and request/response heads written as
// one latin1 string. This replaces node:http and undici on the request path because the layers
// between them and the socket cost more than the parsing: measured side by side on one pinned
// core, a raw-socket proxy on this parser used about half the CPU per request of node:http
// downstream with undici upstream (docs/PERFORMANCE.md).
import { HOP_BY_HOP } from '../upstream/upstream-call';

interface NativeParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | NativeParseError;
  finish(): undefined | NativeParseError;
  close(): void;
  [slot: number]: unknown;
}

interface NativeParseError extends Error {
  code: string;
  reason?: string;
  bytesParsed: number;
}

interface NativeParserClass {
  new (): NativeParser;
  REQUEST: number;
  RESPONSE: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kOnExecute: number;
}

// `_http_common` is how node:http itself reaches the parser; it has been stable across Node
// releases, and the test suite pins the behaviour we rely on.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const common = require('_http_common') as { HTTPParser: NativeParserClass; methods: string[] };
const HTTPParser = common.HTTPParser;
const METHODS = common.methods;
const K_ON_HEADERS = HTTPParser.kOnHeaders | 0;
const K_ON_HEADERS_COMPLETE = HTTPParser.kOnHeadersComplete | 0;
const K_ON_BODY = HTTPParser.kOnBody | 0;
const K_ON_MESSAGE_COMPLETE = HTTPParser.kOnMessageComplete | 0;
const K_ON_EXECUTE = HTTPParser.kOnExecute | 0;
const NO_RESOURCE = {};

/** One parsed message head. Header names as received (any case), values as received. */
export interface MessageHead {
  versionMinor: number;
  /** Flat `[name, value, ...]`. */
  rawHeaders: string[];
  /** Requests. */
  method: string;
  url: string;
  /** Responses. */
  status: number;
  upgrade: boolean;
  keepAlive: boolean;
}

/** What a parser reports. `onHead` returns BODY, SKIP_BODY (a HEAD response) or UPGRADE. */
export interface MessageEvents {
  onHead(head: MessageHead): number;
  onBody(chunk: Buffer): void;
  /** Trailers (chunked messages), raw case; null when there were none. */
  onComplete(trailers: string[] | null): void;
}

export const BODY = 0;
export const SKIP_BODY = 1;
export const UPGRADE = 2;

export class ParseError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A request or response parser over one connection. Heads with many headers arrive in pieces
 * (kOnHeaders) before kOnHeadersComplete; trailers arrive the same way before the message ends.
 */
export class Http1Parser {
  private readonly native: NativeParser;
  private partialHeaders: string[] | null = null;
  private partialUrl = '';
  private closed = false;

  constructor(kind: 'request' | 'response', events: MessageEvents, maxHeaderSize = 0) {
    const p = new HTTPParser();
    p.initialize(kind === 'request' ? HTTPParser.REQUEST : HTTPParser.RESPONSE, NO_RESOURCE, maxHeaderSize, 0);
    p[K_ON_HEADERS] = (headers: string[], url: string) => {
      if (headers.length) (this.partialHeaders ??= []).push(...headers);
      if (url) this.partialUrl += url;
    };
    p[K_ON_HEADERS_COMPLETE] = (
      _major: number,
      minor: number,
      headers: string[] | undefined,
      method: number | undefined,
      url: string | undefined,
      status: number | undefined,
      _statusMessage: string | undefined,
      upgrade: boolean,
      keepAlive: boolean,
    ): number => {
      let raw = headers;
      if (!raw) raw = this.partialHeaders ?? [];
      else if (this.partialHeaders) raw = this.partialHeaders.concat(raw);
      this.partialHeaders = null;
      const target = url ?? this.partialUrl;
      this.partialUrl = '';
      return events.onHead({
        versionMinor: minor,
        rawHeaders: raw,
        method: method === undefined ? '' : METHODS[method],
        url: target,
        status: status ?? 0,
        upgrade,
        keepAlive,
      });
    };
    p[K_ON_BODY] = (chunk: Buffer) => events.onBody(chunk);
    p[K_ON_MESSAGE_COMPLETE] = () => {
      const trailers = this.partialHeaders;
      this.partialHeaders = null;
      events.onComplete(trailers && trailers.length ? trailers : null);
    };
    p[K_ON_EXECUTE] = () => undefined;
    this.native = p;
  }

  /** Parses `data`; returns the bytes consumed (fewer than given after an upgrade head). */
  execute(data: Buffer): number {
    if (this.closed) return 0;
    const r = this.native.execute(data);
    if (typeof r !== 'number') throw new ParseError(r.code, r.reason || r.message);
    return r;
  }

  /** The peer closed: a message delimited by the connection's end completes here. */
  finish(): void {
    if (this.closed) return;
    const r = this.native.finish();
    if (r) throw new ParseError(r.code, r.reason || r.message);
  }

  /** Frees the native parser. Never from inside one of its callbacks (it would crash the process). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.close();
  }
}

/** Lower-case names, hop-by-hop headers dropped: the form the rest of the proxy works with. */
export function normalizeHeaderList(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (HOP_BY_HOP.has(name)) continue;
    out.push(name, raw[i + 1]);
  }
  return out;
}

/** Single-valued fields whose repeats node:http drops (the first one counts); kept for the same behaviour. */
const FIRST_WINS = new Set([
  'age',
  'authorization',
  'content-length',
  'content-type',
  'etag',
  'expires',
  'from',
  'host',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'referer',
  'retry-after',
  'server',
  'user-agent',
]);

/**
 * Lower-case request header map as node:http builds it: repeated fields become one
 * comma-separated value (RFC 9110 5.3), cookies are joined with "; ", set-cookie stays a list,
 * and repeats of single-valued fields are dropped.
 */
export function headerListToMap(raw: string[]): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    const value = raw[i + 1];
    const prev = out[name];
    if (prev === undefined) out[name] = name === 'set-cookie' ? [value] : value;
    else if (Array.isArray(prev)) prev.push(value);
    else if (FIRST_WINS.has(name)) continue;
    else out[name] = name === 'cookie' ? `${prev}; ${value}` : `${prev}, ${value}`;
  }
  return out;
}

const INVALID_VALUE = /[\r\n\0]/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** A header that would break the message framing (CR, LF or NUL in a value, or a name that is no token). */
export class InvalidHeaderError extends Error {
  readonly code = 'WEFT_INVALID_HEADER';
}

/**
 * `name: value\r\n` lines for a header map (undefined skipped, arrays repeated). Names and values
 * written by config edits or filters are checked here, once, where they meet the wire.
 */
export function serializeHeaderMap(headers: Record<string, string | string[] | undefined>, skip?: ReadonlySet<string>): string {
  let out = '';
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || (skip !== undefined && skip.has(name))) continue;
    if (!TOKEN.test(name)) throw new InvalidHeaderError(`invalid header name ${JSON.stringify(name)}`);
    if (typeof value === 'string') {
      if (INVALID_VALUE.test(value)) throw new InvalidHeaderError(`invalid value for header ${name}`);
      out += name + ': ' + value + '\r\n';
    } else {
      for (const v of value) {
        if (INVALID_VALUE.test(v)) throw new InvalidHeaderError(`invalid value for header ${name}`);
        out += name + ': ' + v + '\r\n';
      }
    }
  }
  return out;
}

/** `name: value\r\n` lines for a flat header list. */
export function serializeHeaderList(list: readonly string[]): string {
  let out = '';
  for (let i = 0; i + 1 < list.length; i += 2) {
    const name = list[i];
    const value = String(list[i + 1]);
    if (!TOKEN.test(name)) throw new InvalidHeaderError(`invalid header name ${JSON.stringify(name)}`);
    if (INVALID_VALUE.test(value)) throw new InvalidHeaderError(`invalid value for header ${name}`);
    out += name + ': ' + value + '\r\n';
  }
  return out;
}

/** Chunked transfer coding of one chunk's framing: `<hex length>\r\n`. */
export function chunkHeader(length: number): string {
  return length.toString(16) + '\r\n';
}

export const LAST_CHUNK = '0\r\n\r\n';
