// Validation of received xDS resources into the proxy's compiled model: the `{valid, result |
// errors}` shape (as grpc-js-xds does) and the small readers every compiler shares. Every error
// names the resource and the field path, so a NACK tells the operator exactly what was refused.

export type Validation<T> = { valid: true; result: T } | { valid: false; errors: string[] };

/** A JSON object in Envoy's config_dump form (snake_case, "@type" on Any). */
export type Json = Record<string, any>;

/**
 * Collects every problem found in one resource. Paths are field paths inside the resource
 * (`virtual_hosts[0].routes[2].route.timeout`); messages are prefixed with the resource.
 */
export class Problems {
  readonly errors: string[] = [];
  constructor(readonly resource: string) {}

  add(path: string, message: string): void {
    this.errors.push(`${this.resource}: ${path ? path + ': ' : ''}${message}`);
  }

  get ok(): boolean {
    return this.errors.length === 0;
  }

  /**
   * Reports every present field of `obj` not in `supported`. Fields in `ignored` are accepted
   * because they change nothing the proxy does (stat names, metadata, deprecated no-ops).
   */
  fields(obj: Json | undefined, path: string, supported: readonly string[], ignored: readonly string[] = []): void {
    if (!obj || typeof obj !== 'object') return;
    for (const key of Object.keys(obj)) {
      if (key === '@type' || supported.includes(key) || ignored.includes(key)) continue;
      if (isEmptyValue(obj[key])) continue;
      this.add(join(path, key), 'field is not supported by the Weft proxy');
    }
  }

  result<T>(value: T): Validation<T> {
    return this.ok ? { valid: true, result: value } : { valid: false, errors: this.errors };
  }
}

function isEmptyValue(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return true;
  if (Array.isArray(v)) return v.length === 0;
  return false;
}

export function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}

/** The type URL of a google.protobuf.Any in JSON form (decoded or left as raw bytes). */
export function anyTypeUrl(any: Json | undefined): string | undefined {
  if (!any) return undefined;
  return (any['@type'] as string | undefined) ?? (any.type_url as string | undefined);
}

/** The short message name of an Any: `envoy.extensions.filters.http.fault.v3.HTTPFault`. */
export function anyTypeName(any: Json | undefined): string | undefined {
  const url = anyTypeUrl(any);
  return url ? url.slice(url.lastIndexOf('/') + 1) : undefined;
}

/** Whether the Any was decoded (its message type is known to the codec). */
export function anyIsDecoded(any: Json | undefined): boolean {
  return !!any && typeof any['@type'] === 'string';
}

/** Milliseconds of a Duration in JSON form ("1.5s"); undefined when absent. */
export function durationMs(value: unknown, problems: Problems, path: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') {
    const m = /^(-?\d+(?:\.\d+)?)s$/.exec(value);
    if (m) {
      const ms = Number(m[1]) * 1000;
      if (ms < 0) {
        problems.add(path, `negative duration "${value}"`);
        return undefined;
      }
      return Math.round(ms * 1000) / 1000;
    }
  } else if (typeof value === 'object') {
    const v = value as { seconds?: number; nanos?: number };
    return Number(v.seconds ?? 0) * 1000 + Number(v.nanos ?? 0) / 1e6;
  }
  problems.add(path, `invalid duration ${JSON.stringify(value)}`);
  return undefined;
}

const DENOMINATORS: Record<string, number> = { HUNDRED: 100, TEN_THOUSAND: 10_000, MILLION: 1_000_000 };

/** envoy.type.v3.FractionalPercent as a probability in [0, 1]. Absent numerator means 0. */
export function fractionalPercent(value: Json | undefined, problems: Problems, path: string): number {
  if (!value) return 0;
  problems.fields(value, path, ['numerator', 'denominator']);
  const denominator = DENOMINATORS[value.denominator ?? 'HUNDRED'];
  if (!denominator) {
    problems.add(join(path, 'denominator'), `unknown denominator "${value.denominator}"`);
    return 0;
  }
  return Math.min(1, Number(value.numerator ?? 0) / denominator);
}

/** envoy.config.core.v3.RuntimeFractionalPercent: the runtime key is ignored (no runtime). */
export function runtimeFractionalPercent(value: Json | undefined, problems: Problems, path: string): number {
  if (!value) return 1;
  problems.fields(value, path, ['default_value'], ['runtime_key']);
  return fractionalPercent(value.default_value, problems, join(path, 'default_value'));
}

/** A wrapper (UInt32Value etc.) arrives as a plain value; tolerate the `{value}` form too. */
export function wrapped<T>(value: unknown): T | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'object' && 'value' in (value as object)) return (value as { value: T }).value;
  return value as T;
}

/** A JS RegExp equivalent of an RE2 pattern, anchored for a full match as Envoy's safe_regex. */
export function compileRe2(regex: unknown, problems: Problems, path: string, anchored = true): RegExp | undefined {
  if (typeof regex !== 'string') {
    problems.add(path, 'regex is required');
    return undefined;
  }
  // RE2 features JS lacks or spells differently: named groups (?P<n>...), \C, \z.
  const translated = regex.replace(/\(\?P</g, '(?<').replace(/\\z/g, '$');
  if (/\\C/.test(translated)) {
    problems.add(path, `regex "${regex}" uses \\C, which the Weft proxy cannot honour`);
    return undefined;
  }
  try {
    return new RegExp(anchored ? `^(?:${translated})$` : translated);
  } catch (err) {
    problems.add(path, `invalid regex "${regex}": ${(err as Error).message}`);
    return undefined;
  }
}

/** envoy.type.matcher.v3.RegexMatcher: `{google_re2?, regex}`. */
export function regexMatcher(value: Json | undefined, problems: Problems, path: string, anchored = true): RegExp | undefined {
  if (!value) {
    problems.add(path, 'regex matcher is required');
    return undefined;
  }
  problems.fields(value, path, ['regex'], ['google_re2']);
  return compileRe2(value.regex, problems, join(path, 'regex'), anchored);
}
