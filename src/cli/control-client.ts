// The CLI's side of the config API: where the control plane is (--control, WEFT_CONTROL, or
// 127.0.0.1:15014), JSON requests to it, and errors an operator can act on.
import * as http from 'node:http';
import { CliError, UsageError } from './cli-errors';

export const DEFAULT_CONTROL_ADDRESS = '127.0.0.1:15014';

/** The shared `--control` option, for parseArgs. */
export const CONTROL_OPTION = { control: { type: 'string' } } as const;

export const CONTROL_HELP = `      --control HOST:PORT  control plane HTTP address (default $WEFT_CONTROL, else ${DEFAULT_CONTROL_ADDRESS})`;

/** A non-2xx answer: the status, and the JSON body's error, hint and details. */
export class ApiError extends CliError {
  constructor(
    readonly status: number,
    message: string,
    readonly body: Record<string, unknown>,
  ) {
    super(message);
  }
}

export interface HttpAddress {
  host: string;
  port: number;
  /** As given (for messages). */
  text: string;
}

/** Parses HOST:PORT (also `[v6]:PORT` and an `http://` prefix), or throws a UsageError. */
export function parseHostPort(value: string, what: string, usage?: string): HttpAddress {
  const text = value.replace(/^https?:\/\//, '').replace(/\/+$/, '');
  const m = /^(\[[^\]]+\]|[^:[\]]+):(\d+)$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port > 0 && port < 65536)) throw new UsageError(`${what} "${value}" is not HOST:PORT`, usage);
  return { host: m[1].replace(/^\[|\]$/g, ''), port, text };
}

export function resolveControlAddress(flag: string | undefined, env: NodeJS.ProcessEnv, usage?: string): HttpAddress {
  const value = flag ?? (env.WEFT_CONTROL || DEFAULT_CONTROL_ADDRESS);
  return parseHostPort(value, flag !== undefined ? '--control' : env.WEFT_CONTROL ? 'WEFT_CONTROL' : 'address', usage);
}

export interface RawResponse {
  status: number;
  contentType: string;
  text: string;
}

/**
 * One HTTP request. Connection failures become CliErrors built by `unreachable`, so each caller
 * can say what it was trying to reach and what to do about it.
 */
export function httpRequest(
  address: HttpAddress,
  method: string,
  path: string,
  options: { body?: string; contentType?: string; timeoutMs?: number; unreachable: (cause: string) => CliError },
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { accept: 'application/json' };
    if (options.body !== undefined) {
      headers['content-type'] = options.contentType ?? 'application/yaml';
      headers['content-length'] = Buffer.byteLength(options.body);
    }
    const req = http.request({ host: address.host, port: address.port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), text: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', (err) => reject(options.unreachable(err.message)));
    });
    const timeoutMs = options.timeoutMs ?? 30_000;
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs / 1000}s`), { code: 'ETIMEDOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => reject(options.unreachable(describeConnectError(err))));
    req.end(options.body);
  });
}

function describeConnectError(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'unknown host';
    case 'ECONNRESET':
      return 'connection reset';
    default:
      return err.message;
  }
}

export class ControlClient {
  constructor(
    readonly address: HttpAddress,
    private readonly timeoutMs = 30_000,
  ) {}

  static fromFlag(flag: string | undefined, env: NodeJS.ProcessEnv, usage?: string): ControlClient {
    return new ControlClient(resolveControlAddress(flag, env, usage));
  }

  private unreachable = (cause: string): CliError => {
    const detail = cause === 'connection refused' ? '' : `: ${cause}`;
    return new CliError(`cannot reach the control plane at ${this.address.text}${detail} (hint: is \`weft control\` running? use --control HOST:PORT)`);
  };

  /** Sends a request and returns the decoded JSON body of a 2xx answer; throws ApiError otherwise. */
  async request<T>(method: string, path: string, body?: { text: string; contentType: string }): Promise<T> {
    const res = await httpRequest(this.address, method, path, {
      body: body?.text,
      contentType: body?.contentType,
      timeoutMs: this.timeoutMs,
      unreachable: this.unreachable,
    });
    let decoded: unknown;
    try {
      decoded = JSON.parse(res.text);
    } catch {
      const first = res.text.split('\n')[0].slice(0, 200);
      throw new CliError(
        `${this.address.text} answered ${method} ${path} with ${res.status} and no JSON ("${first}") (hint: is this a weft control plane of this version? use --control HOST:PORT)`,
      );
    }
    if (res.status >= 200 && res.status < 300) return decoded as T;
    const obj = (typeof decoded === 'object' && decoded !== null ? decoded : {}) as Record<string, unknown>;
    const message = typeof obj.error === 'string' ? obj.error : `${method} ${path} answered ${res.status}`;
    throw new ApiError(res.status, message, obj);
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }
}

/** `error (hint: ...)` from an ApiError body, for one-line messages. */
export function withHint(err: ApiError): string {
  return typeof err.body.hint === 'string' ? `${err.message} (hint: ${err.body.hint})` : err.message;
}
