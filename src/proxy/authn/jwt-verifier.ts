// JWT checks as Envoy's jwt_verify_lib makes them, with its status messages (they are the 401
// bodies Istio users know): parsing the three sections, time constraints with clock skew,
// audiences, and the JWS signature against a key set (keys chosen by kid, alg and key type;
// the signature itself checked by jose).
import type * as Jose from 'jose';
import type { JsonWebKey } from '../config/jwt-authn';

let joseModule: typeof Jose | undefined;
/** jose is loaded on the first token to verify: proxies without RequestAuthentication never pay its memory. */
function jose(): typeof Jose {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (joseModule ??= require('jose') as typeof Jose);
}

/** jwt_verify_lib's status strings for the outcomes Weft produces. */
export const JwtStatus = {
  Ok: 'OK',
  JwtMissed: 'Jwt is missing',
  JwtNotYetValid: 'Jwt not yet valid',
  JwtExpired: 'Jwt is expired',
  JwtBadFormat: 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections',
  JwtHeaderParseErrorBadBase64: 'Jwt header is an invalid Base64url encoded',
  JwtHeaderParseErrorBadJson: 'Jwt header is an invalid JSON',
  JwtHeaderBadAlg: 'Jwt header [alg] field is required and must be a string',
  JwtHeaderNotImplementedAlg: 'Jwt header [alg] is not supported',
  JwtHeaderBadKid: 'Jwt header [kid] field is not a string',
  JwtPayloadParseErrorBadBase64: 'Jwt payload is an invalid Base64url encoded',
  JwtPayloadParseErrorBadJson: 'Jwt payload is an invalid JSON',
  JwtPayloadParseErrorIssNotString: 'Jwt payload [iss] field is not a string',
  JwtPayloadParseErrorSubNotString: 'Jwt payload [sub] field is not a string',
  JwtPayloadParseErrorIatNotInteger: 'Jwt payload [iat] field is not an integer',
  JwtPayloadParseErrorNbfNotInteger: 'Jwt payload [nbf] field is not an integer',
  JwtPayloadParseErrorExpNotInteger: 'Jwt payload [exp] field is not an integer',
  JwtPayloadParseErrorJtiNotString: 'Jwt payload [jti] field is not a string',
  JwtPayloadParseErrorAudNotString: 'Jwt payload [aud] field is not a string or string list',
  JwtSignatureParseErrorBadBase64: 'Jwt signature is an invalid Base64url encoded',
  JwtUnknownIssuer: 'Jwt issuer is not configured',
  JwtAudienceNotAllowed: 'Audiences in Jwt are not allowed',
  JwtVerificationFail: 'Jwt verification fails',
  JwksNoValidKeys: "Jwks doesn't have any valid public key",
  JwksKidAlgMismatch: "Jwks doesn't have key to match kid or alg from Jwt",
  JwksFetchFail: 'Jwks remote fetch is failed',
} as const;
export type JwtStatus = (typeof JwtStatus)[keyof typeof JwtStatus] | string;

const SUPPORTED_ALGS = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'HS256', 'HS384', 'HS512', 'EdDSA']);
const BASE64URL = /^[A-Za-z0-9_-]*={0,2}$/;

/** A token split and decoded (not yet verified). */
export interface ParsedJwt {
  token: string;
  alg: string;
  kid?: string;
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  /** The payload section as sent (base64url): what forward_payload_header carries. */
  payloadBase64url: string;
  /** The payload JSON text. */
  payloadJson: string;
  iss: string;
  sub: string;
  audiences: readonly string[];
  exp: number;
  nbf: number;
}

function decodeSection(section: string): string | undefined {
  if (!BASE64URL.test(section)) return undefined;
  return Buffer.from(section, 'base64url').toString('utf8');
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Splits and decodes a JWT; returns the jwt_verify_lib status of the first problem found. */
export function parseJwt(token: string): ParsedJwt | { error: string } {
  const parts = token.split('.');
  if (parts.length !== 3) return { error: JwtStatus.JwtBadFormat };
  const headerText = decodeSection(parts[0]);
  if (headerText === undefined) return { error: JwtStatus.JwtHeaderParseErrorBadBase64 };
  const header = parseObject(headerText);
  if (!header) return { error: JwtStatus.JwtHeaderParseErrorBadJson };
  if (typeof header.alg !== 'string') return { error: JwtStatus.JwtHeaderBadAlg };
  if (!SUPPORTED_ALGS.has(header.alg)) return { error: JwtStatus.JwtHeaderNotImplementedAlg };
  if (header.kid !== undefined && typeof header.kid !== 'string') return { error: JwtStatus.JwtHeaderBadKid };
  const payloadJson = decodeSection(parts[1]);
  if (payloadJson === undefined) return { error: JwtStatus.JwtPayloadParseErrorBadBase64 };
  const payload = parseObject(payloadJson);
  if (!payload) return { error: JwtStatus.JwtPayloadParseErrorBadJson };
  if (payload.iss !== undefined && typeof payload.iss !== 'string') return { error: JwtStatus.JwtPayloadParseErrorIssNotString };
  if (payload.sub !== undefined && typeof payload.sub !== 'string') return { error: JwtStatus.JwtPayloadParseErrorSubNotString };
  for (const [claim, status] of [
    ['iat', JwtStatus.JwtPayloadParseErrorIatNotInteger],
    ['nbf', JwtStatus.JwtPayloadParseErrorNbfNotInteger],
    ['exp', JwtStatus.JwtPayloadParseErrorExpNotInteger],
  ] as const) {
    const v = payload[claim];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v))) return { error: status };
  }
  if (payload.jti !== undefined && typeof payload.jti !== 'string') return { error: JwtStatus.JwtPayloadParseErrorJtiNotString };
  let audiences: string[] = [];
  if (typeof payload.aud === 'string') audiences = [payload.aud];
  else if (Array.isArray(payload.aud) && payload.aud.every((a) => typeof a === 'string')) audiences = payload.aud as string[];
  else if (payload.aud !== undefined) return { error: JwtStatus.JwtPayloadParseErrorAudNotString };
  if (!BASE64URL.test(parts[2])) return { error: JwtStatus.JwtSignatureParseErrorBadBase64 };
  return {
    token,
    alg: header.alg,
    kid: header.kid as string | undefined,
    header,
    payload,
    payloadBase64url: parts[1],
    payloadJson,
    iss: (payload.iss as string | undefined) ?? '',
    sub: (payload.sub as string | undefined) ?? '',
    audiences,
    exp: Math.floor((payload.exp as number | undefined) ?? 0),
    nbf: Math.floor((payload.nbf as number | undefined) ?? 0),
  };
}

/** exp and nbf against `nowSeconds`, each allowed `skewSeconds` of slack (0 = claim absent). */
export function checkTime(jwt: ParsedJwt, nowSeconds: number, skewSeconds: number): JwtStatus | undefined {
  if (jwt.nbf && nowSeconds + skewSeconds < jwt.nbf) return JwtStatus.JwtNotYetValid;
  if (jwt.exp && nowSeconds > jwt.exp + skewSeconds) return JwtStatus.JwtExpired;
  return undefined;
}

/** jwt_verify_lib's CheckAudience: compared without an http(s):// scheme or a trailing slash. */
function sanitizeAudience(aud: string): string {
  let a = aud;
  if (a.startsWith('http://')) a = a.slice(7);
  else if (a.startsWith('https://')) a = a.slice(8);
  return a.endsWith('/') ? a.slice(0, -1) : a;
}

export function audiencesAllowed(jwt: ParsedJwt, configured: readonly string[]): boolean {
  if (configured.length === 0) return true;
  const allowed = new Set(configured.map(sanitizeAudience));
  return jwt.audiences.some((a) => allowed.has(sanitizeAudience(a)));
}

const VERIFIED_TOKENS_PER_SET = 256;

/** The key type an algorithm family needs. */
function keyTypeFor(alg: string): string {
  if (alg.startsWith('RS') || alg.startsWith('PS')) return 'RSA';
  if (alg.startsWith('ES')) return 'EC';
  if (alg.startsWith('HS')) return 'oct';
  return 'OKP';
}

/**
 * An immutable set of JSON Web Keys with their imported forms cached, verifying signatures the
 * way jwt_verify_lib picks keys: a key whose kid differs from the token's (both set) is skipped,
 * so is one whose alg differs or whose type does not fit the algorithm; no key left means
 * "Jwks doesn't have key to match kid or alg from Jwt", keys tried and failed mean
 * "Jwt verification fails".
 */
export class KeySet {
  private readonly imported = new Map<string, Promise<unknown>>();
  /**
   * Tokens whose signature this set verified, oldest first. The set is immutable (a refetched
   * JWKS is a new KeySet), so remembering is exactly re-verifying, minus ~0.2-0.4 ms of WebCrypto
   * per request for a client that reuses its token. Time and audience are checked every time.
   */
  private readonly verified = new Set<string>();
  readonly kids: ReadonlySet<string>;

  constructor(readonly keys: readonly JsonWebKey[]) {
    this.kids = new Set(keys.map((k) => k.kid).filter((k): k is string => typeof k === 'string'));
  }

  hasKid(kid: string): boolean {
    return this.kids.has(kid);
  }

  private importKey(index: number, alg: string): Promise<unknown> {
    const cacheKey = `${index}|${alg}`;
    let p = this.imported.get(cacheKey);
    if (!p) {
      p = jose().importJWK(this.keys[index] as Parameters<typeof Jose.importJWK>[0], alg).catch((err: unknown) => err instanceof Error ? err : new Error(String(err)));
      this.imported.set(cacheKey, p);
    }
    return p;
  }

  async verify(jwt: ParsedJwt): Promise<JwtStatus> {
    if (this.verified.has(jwt.token)) return JwtStatus.Ok;
    const status = await this.verifyWithKeys(jwt);
    if (status === JwtStatus.Ok) {
      if (this.verified.size >= VERIFIED_TOKENS_PER_SET) this.verified.delete(this.verified.values().next().value as string);
      this.verified.add(jwt.token);
    }
    return status;
  }

  private async verifyWithKeys(jwt: ParsedJwt): Promise<JwtStatus> {
    const type = keyTypeFor(jwt.alg);
    let matched = false;
    for (let i = 0; i < this.keys.length; i++) {
      const jwk = this.keys[i];
      if (jwt.kid && jwk.kid && jwk.kid !== jwt.kid) continue;
      if (jwk.alg && jwk.alg !== jwt.alg) continue;
      if (jwk.kty !== type) continue;
      matched = true;
      const key = await this.importKey(i, jwt.alg);
      if (key instanceof Error) continue;
      try {
        await jose().compactVerify(jwt.token, key as Parameters<typeof Jose.compactVerify>[1], { algorithms: [jwt.alg] });
        return JwtStatus.Ok;
      } catch {
        // try the next key
      }
    }
    return matched ? JwtStatus.JwtVerificationFail : JwtStatus.JwksKidAlgMismatch;
  }
}
