// Outgoing calls of a Bookinfo service, addressed by mesh name (`http://reviews:9080/...`). With
// HTTP_PROXY set every call goes to the sidecar as a plain forward-proxy request (absolute-form
// URI, no CONNECT tunnel), so the sidecar sees HTTP and applies routes, retries and faults.
import { Agent, ProxyAgent, request, type Dispatcher } from 'undici';

export type UpstreamResult =
  | { ok: true; status: number; body: unknown }
  /** `status` is absent when no response arrived (timeout, refused, reset). */
  | { ok: false; status?: number; reason: string };

export interface GetJsonOptions {
  headers: Record<string, string>;
  /** Whole-call deadline: connect, headers and body. */
  timeoutMs: number;
}

export interface MeshClient {
  /** GET `url`; ok only for a 200 with a JSON body, as the samples treat anything else as failure. */
  getJson(url: string, options: GetJsonOptions): Promise<UpstreamResult>;
  close(): Promise<void>;
}

export function createMeshClient(httpProxy: string | undefined): MeshClient {
  const dispatcher: Dispatcher = httpProxy ? new ProxyAgent({ uri: httpProxy, proxyTunnel: false }) : new Agent();
  return {
    async getJson(url, options) {
      const signal = AbortSignal.timeout(options.timeoutMs);
      try {
        const res = await request(url, { method: 'GET', headers: { accept: 'application/json', ...options.headers }, dispatcher, signal });
        if (res.statusCode !== 200) {
          await res.body.dump();
          return { ok: false, status: res.statusCode, reason: `status ${res.statusCode}` };
        }
        const text = await res.body.text();
        try {
          return { ok: true, status: 200, body: JSON.parse(text) as unknown };
        } catch {
          return { ok: false, status: 200, reason: 'response is not JSON' };
        }
      } catch (err) {
        const reason = signal.aborted ? `timed out after ${options.timeoutMs}ms` : describeError(err);
        return { ok: false, reason };
      }
    },
    close: () => dispatcher.close(),
  };
}

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  const cause = (err as { cause?: unknown }).cause;
  const causeText = cause instanceof Error ? `: ${cause.message}` : '';
  return `${typeof code === 'string' ? code + ' ' : ''}${err.message}${causeText}`;
}
