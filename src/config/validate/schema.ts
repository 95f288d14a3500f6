// A small field-schema language for Istio's structural schemas: typed fields, required fields, unknown-field
// rejection and semantic checks, all reporting into a ProblemCollector with field paths.
//
// Each kind describes its spec with these builders (object, arrayOf, mapOf, string, integer, ...).
// `check` hooks carry the semantics Istio's Go validation adds on top of the CRD schema; they run only
// when the object they belong to is structurally sound, so they can trust field types.
import { childPath, indexPath, ProblemCode, type ProblemCollector } from '../problems';
import { parseDurationNanos } from './formats';

export interface Schema {
  /** Short type name for messages: 'string', 'integer', 'object', ... */
  readonly typeName: string;
  /** Validates `value` (never null/undefined) at `path`; returns false when the value has the wrong shape. */
  validate(value: unknown, path: string, problems: ProblemCollector): boolean;
}

/** A semantic check over an already shape-checked value. */
export type Check<T> = (value: T, path: string, problems: ProblemCollector) => void;

// ---------------------------------------------------------------------------------------------
// Scalars

export function string(opts: { check?: Check<string> } = {}): Schema {
  return scalar('string', (v): v is string => typeof v === 'string', opts.check);
}

export function boolean(): Schema {
  return scalar('boolean', (v): v is boolean => typeof v === 'boolean');
}

export function integer(opts: { min?: number; max?: number; check?: Check<number> } = {}): Schema {
  return scalar(
    'integer',
    (v): v is number => typeof v === 'number' && Number.isInteger(v),
    (value, path, problems) => {
      checkRange(value, opts.min, opts.max, path, problems);
      opts.check?.(value, path, problems);
    },
  );
}

export function number(opts: { min?: number; max?: number; check?: Check<number> } = {}): Schema {
  return scalar(
    'number',
    (v): v is number => typeof v === 'number' && Number.isFinite(v),
    (value, path, problems) => {
      checkRange(value, opts.min, opts.max, path, problems);
      opts.check?.(value, path, problems);
    },
  );
}

/** Kubernetes IntOrString (e.g. a Service's targetPort). */
export function intOrString(opts: { check?: Check<number | string> } = {}): Schema {
  const isIntOrString = (v: unknown): v is number | string => typeof v === 'string' || (typeof v === 'number' && Number.isInteger(v));
  return scalar('integer or string', isIntOrString, opts.check);
}

/** A protobuf enum written by name. `deprecated` maps a value to the hint shown when it is used. */
export function enumOf(values: readonly string[], opts: { deprecated?: Record<string, string> } = {}): Schema {
  return scalar(
    'string',
    (v): v is string => typeof v === 'string',
    (value, path, problems) => {
      if (!values.includes(value)) {
        problems.error(ProblemCode.InvalidValue, path, `${JSON.stringify(value)} is not one of ${values.join(', ')}`);
      } else if (opts.deprecated?.[value]) {
        problems.warn(ProblemCode.DeprecatedField, path, `${value} is deprecated: ${opts.deprecated[value]}`);
      }
    },
  );
}

export interface DurationOptions {
  /** Accept "0s" (e.g. a TCP idle timeout of 0 disables it). */
  allowZero?: boolean;
  /** Only check the format (fields Istio does not range-check, like a cookie's ttl). */
  formatOnly?: boolean;
  /** Require whole seconds (CORS maxAge). */
  secondsPrecision?: boolean;
}

/**
 * A protobuf Duration as Istio's CRDs accept it: a Go duration string ("3s", "1.5s", "100ms", "1m", "1h30m").
 * Istio requires >= 1ms and millisecond precision (agent.ValidateDuration).
 */
export function duration(opts: DurationOptions = {}): Schema {
  return scalar(
    'duration string',
    (v): v is string => typeof v === 'string',
    (value, path, problems) => {
      const nanos = parseDurationNanos(value);
      if (nanos === undefined) {
        problems.error(
          ProblemCode.InvalidValue,
          path,
          `${JSON.stringify(value)} is not a duration; use a number with a unit, like "3s", "1.5s", "100ms", "1m" or "1h"`,
        );
        return;
      }
      if (opts.formatOnly) return;
      if (nanos === 0n && opts.allowZero) return;
      if (nanos < MILLISECOND) {
        problems.error(ProblemCode.InvalidValue, path, `duration ${value} must be at least 1ms`);
      } else if (nanos % MILLISECOND !== 0n) {
        problems.error(
          ProblemCode.InvalidValue,
          path,
          `duration ${value} is finer than a millisecond; only millisecond precision is supported`,
        );
      } else if (opts.secondsPrecision && nanos % SECOND !== 0n) {
        problems.error(ProblemCode.InvalidValue, path, `duration ${value} must be whole seconds`);
      }
    },
  );
}

const MILLISECOND = 1_000_000n;
const SECOND = 1_000_000_000n;

/** Any JSON value (e.g. `x-kubernetes-preserve-unknown-fields` blocks such as status). */
export function anyValue(): Schema {
  return { typeName: 'any', validate: () => true };
}

function scalar<T>(typeName: string, isType: (v: unknown) => v is T, check?: Check<T>): Schema {
  return {
    typeName,
    validate(value, path, problems) {
      if (!isType(value)) {
        problems.structural(ProblemCode.WrongType, path, `must be ${article(typeName)} ${typeName}, got ${describeValue(value)}`);
        return false;
      }
      check?.(value, path, problems);
      return true;
    },
  };
}

function checkRange(value: number, min: number | undefined, max: number | undefined, path: string, problems: ProblemCollector) {
  if ((min !== undefined && value < min) || (max !== undefined && value > max)) {
    const range =
      min !== undefined && max !== undefined ? `in the range ${min}..${max}` : min !== undefined ? `at least ${min}` : `at most ${max}`;
    problems.error(ProblemCode.InvalidValue, path, `${value} must be ${range}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Collections

export function arrayOf(item: Schema, opts: { check?: Check<unknown[]> } = {}): Schema {
  return {
    typeName: 'list',
    validate(value, path, problems) {
      if (!Array.isArray(value)) {
        problems.structural(ProblemCode.WrongType, path, `must be a list, got ${describeValue(value)}`);
        return false;
      }
      const before = problems.structuralFailures;
      value.forEach((element, i) => {
        const at = indexPath(path, i);
        if (element === null || element === undefined) {
          problems.structural(ProblemCode.WrongType, at, `list entries may not be null`);
        } else {
          item.validate(element, at, problems);
        }
      });
      if (problems.structuralFailures === before) opts.check?.(value, path, problems);
      return true;
    },
  };
}

/** A map with string keys (YAML mapping), e.g. labels or header matches. */
export function mapOf(valueSchema: Schema, opts: { key?: Check<string>; check?: Check<Record<string, unknown>> } = {}): Schema {
  return {
    typeName: 'map',
    validate(value, path, problems) {
      if (!isPlainObject(value)) {
        problems.structural(ProblemCode.WrongType, path, `must be a map, got ${describeValue(value)}`);
        return false;
      }
      const before = problems.structuralFailures;
      for (const [key, element] of Object.entries(value)) {
        const at = childPath(path, key);
        opts.key?.(key, at, problems);
        if (element === null || element === undefined) {
          problems.structural(ProblemCode.WrongType, at, `map values may not be null`);
        } else {
          valueSchema.validate(element, at, problems);
        }
      }
      if (problems.structuralFailures === before) opts.check?.(value, path, problems);
      return true;
    },
  };
}

export interface ObjectOptions<T> {
  /** Fields that must be present (and, for strings and lists, non-empty). */
  required?: readonly string[];
  /** Groups of fields of which at most one may be set (protobuf oneofs). */
  oneOf?: readonly (readonly string[])[];
  /** Fields that still work but are deprecated, with the hint to show. */
  deprecated?: Readonly<Record<string, string>>;
  /** Semantic checks, run when every field has the right type and the required ones are present. */
  check?: Check<T>;
}

/**
 * A protobuf message as JSON. Unknown fields are errors (Istio's structural CRD schemas reject them),
 * and null fields count as absent, as the Kubernetes API server prunes them.
 */
export function object<T = Record<string, unknown>>(fields: Readonly<Record<string, Schema>>, opts: ObjectOptions<T> = {}): Schema {
  const known = Object.keys(fields);
  return {
    typeName: 'object',
    validate(value, path, problems) {
      if (!isPlainObject(value)) {
        problems.structural(ProblemCode.WrongType, path, `must be an object, got ${describeValue(value)}`);
        return false;
      }
      const before = problems.structuralFailures;
      for (const [key, fieldValue] of Object.entries(value)) {
        const at = childPath(path, key);
        const schema = fields[key];
        if (!schema) {
          problems.error(ProblemCode.UnknownField, at, unknownFieldMessage(key, known));
          continue;
        }
        if (fieldValue === null || fieldValue === undefined) continue;
        schema.validate(fieldValue, at, problems);
        const hint = opts.deprecated?.[key];
        if (hint) problems.warn(ProblemCode.DeprecatedField, at, `${key} is deprecated: ${hint}`);
      }
      // A missing required field skips this object's own check (which may rely on it) but not its
      // ancestors' checks, which only read it optionally.
      let missingRequired = false;
      for (const key of opts.required ?? []) {
        if (isAbsentOrEmpty(value[key])) {
          problems.error(ProblemCode.MissingRequiredField, childPath(path, key), `${key} is required`);
          missingRequired = true;
        }
      }
      for (const group of opts.oneOf ?? []) {
        const set = group.filter((key) => value[key] !== undefined && value[key] !== null);
        if (set.length > 1) {
          problems.error(
            ProblemCode.ConflictingFields,
            childPath(path, set[1]),
            `only one of ${group.join(', ')} may be set (found ${set.join(' and ')})`,
          );
        }
      }
      if (!missingRequired && problems.structuralFailures === before) opts.check?.(value as unknown as T, path, problems);
      return true;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Shared wording

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isAbsentOrEmpty(value: unknown): boolean {
  return value === undefined || value === null || value === '' || (Array.isArray(value) && value.length === 0);
}

export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)}`;
  return `${typeof value} ${String(value)}`;
}

function article(typeName: string): string {
  return /^[aeiou]/.test(typeName) ? 'an' : 'a';
}

function unknownFieldMessage(key: string, known: readonly string[]): string {
  const suggestion = closestName(key, known);
  const hint = suggestion ? `; did you mean "${suggestion}"?` : known.length ? `; known fields: ${known.join(', ')}` : '';
  return `unknown field "${key}"${hint}`;
}

/** The known name within a small edit distance (or differing only in case), to suggest for a typo. */
function closestName(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    if (candidate.toLowerCase() === key.toLowerCase()) return candidate;
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  return bestDistance <= Math.max(1, Math.floor(key.length / 3)) ? best : undefined;
}

/** Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent swaps cost 1. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}
