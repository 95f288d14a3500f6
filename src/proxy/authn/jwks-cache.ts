// Remote JWKS for jwt_authn providers: fetched by the proxy itself over HTTP(S) with undici (the
// provider's cluster name is not used), one fetch at a time per URI however many requests wait,
// cached for cache_duration, refetched when it expires and, at most once per interval, when a
// token names a key id the cached set lacks (keys rotated before the cache expired). Owned by the
// proxy's runtime, so it outlives config generations: an LDS push does not refetch.
import type { request as undiciRequest } from 'undici';
import { parseJwks, type RemoteJwksSource } from '../config/jwt-authn';
import { KeySet } from './jwt-verifier';

/** Why a JWKS could not be had; `message` is the status the 401 carries. */
export class JwksFetchError extends Error {
  readonly code = 'JWKS_FETCH_FAILED';
  constructor(
    message: string,
    readonly uri: string,
  ) {
    super(message);
  }
}

export type JwksFetcher = (uri: string, timeoutMs: number) => Promise<string>;

/** GET `uri` (no keep-alive: nothing outlives the fetch); a non-200 answer is a failure. */
export const fetchJwksText: JwksFetcher = async (uri, timeoutMs) => {
  // Loaded on first use: undici is 20 MB of every proxy's memory, and only JWKS fetches need it.
  const request = (require('undici') as { request: typeof undiciRequest }).request;
  const res = await request(uri, {
    method: 'GET',
    headers: { accept: 'application/json' },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    reset: true,
    signal: AbortSignal.timeout(Math.max(1, timeoutMs)),
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
  return text;
};

interface Entry {
  keys?: KeySet;
  expiresAt: number;
  inflight?: Promise<KeySet>;
  /** Last refetch caused by an unknown kid. */
  kidRefetchAt: number;
  /** async_fetch: no background refetch before this after a failure. */
  retryAfter: number;
}

export interface JwksCacheOptions {
  fetch?: JwksFetcher;
  now?: () => number;
  /** Minimum time between refetches caused by unknown key ids. Default 30 s. */
  unknownKidRefetchIntervalMs?: number;
  /** Called after each fetch (stats). */
  onFetch?: (ok: boolean) => void;
}

export class JwksCache {
  private readonly entries = new Map<string, Entry>();
  private readonly fetchText: JwksFetcher;
  private readonly now: () => number;
  private readonly kidInterval: number;

  constructor(private readonly options: JwksCacheOptions = {}) {
    this.fetchText = options.fetch ?? fetchJwksText;
    this.now = options.now ?? Date.now;
    this.kidInterval = options.unknownKidRefetchIntervalMs ?? 30_000;
  }

  private entry(uri: string): Entry {
    let e = this.entries.get(uri);
    if (!e) {
      e = { expiresAt: 0, kidRefetchAt: -Infinity, retryAfter: 0 };
      this.entries.set(uri, e);
    }
    return e;
  }

  /**
   * The key set for `source`: the cached one while fresh (synchronously), otherwise a fetch.
   * With async_fetch an expired set keeps serving while it is refetched in the background.
   * Rejects with JwksFetchError when there is no usable set.
   */
  get(source: RemoteJwksSource, onFetch?: (ok: boolean) => void): KeySet | Promise<KeySet> {
    const e = this.entry(source.uri);
    const now = this.now();
    if (e.keys && now < e.expiresAt) return e.keys;
    if (e.keys && source.asyncFetch) {
      if (!e.inflight && now >= e.retryAfter) {
        this.fetch(source, e, onFetch).catch(() => {
          e.retryAfter = this.now() + source.asyncFetch!.failedRefetchMs;
        });
      }
      return e.keys;
    }
    return this.fetch(source, e, onFetch);
  }

  /**
   * A token named key id `kid` that the cached set lacks: refetch now unless that was done less
   * than the interval ago. Resolves with the new set, or undefined when no refetch happened.
   */
  async refetchForUnknownKid(source: RemoteJwksSource, onFetch?: (ok: boolean) => void): Promise<KeySet | undefined> {
    const e = this.entry(source.uri);
    const now = this.now();
    if (now - e.kidRefetchAt < this.kidInterval) return undefined;
    e.kidRefetchAt = now;
    try {
      return await this.fetch(source, e, onFetch);
    } catch {
      return undefined;
    }
  }

  private fetch(source: RemoteJwksSource, e: Entry, onFetch?: (ok: boolean) => void): Promise<KeySet> {
    if (e.inflight) return e.inflight;
    const attempt = async (): Promise<KeySet> => {
      let lastError: unknown;
      for (let i = 0; i <= source.retries; i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, source.retryBackoffMs));
        try {
          const text = await this.fetchText(source.uri, source.timeoutMs);
          const parsed = parseJwks(text);
          if (!parsed.keys) throw new JwksFetchError(parsed.error ?? 'Jwks is an invalid JSON', source.uri);
          return new KeySet(parsed.keys);
        } catch (err) {
          lastError = err;
        }
      }
      // An unusable document keeps its own status; anything else is Envoy's JwksFetchFail.
      if (lastError instanceof JwksFetchError) throw lastError;
      throw new JwksFetchError('Jwks remote fetch is failed', source.uri);
    };
    const p = attempt().then(
      (keys) => {
        e.keys = keys;
        e.expiresAt = this.now() + source.cacheDurationMs;
        e.inflight = undefined;
        (onFetch ?? this.options.onFetch)?.(true);
        return keys;
      },
      (err: unknown) => {
        e.inflight = undefined;
        (onFetch ?? this.options.onFetch)?.(false);
        throw err;
      },
    );
    e.inflight = p;
    return p;
  }
}
