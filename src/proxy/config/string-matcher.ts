// envoy.type.matcher.v3.StringMatcher and the route HeaderMatcher / QueryParameterMatcher,
// compiled once into predicates the request path only calls.
import { compileRe2, join, regexMatcher, type Json, type Problems } from './validation';

export type StringPredicate = (value: string) => boolean;

/** Compiles a StringMatcher (`exact|prefix|suffix|contains|safe_regex`, `ignore_case`). */
export function compileStringMatcher(m: Json | undefined, problems: Problems, path: string): StringPredicate {
  if (!m) {
    problems.add(path, 'string matcher is required');
    return () => false;
  }
  problems.fields(m, path, ['exact', 'prefix', 'suffix', 'contains', 'safe_regex', 'ignore_case']);
  const ignoreCase = m.ignore_case === true;
  const fold = (s: string) => (ignoreCase ? s.toLowerCase() : s);
  if (typeof m.exact === 'string') {
    const want = fold(m.exact);
    return ignoreCase ? (v) => v.toLowerCase() === want : (v) => v === want;
  }
  if (typeof m.prefix === 'string') {
    const want = fold(m.prefix);
    return ignoreCase ? (v) => v.toLowerCase().startsWith(want) : (v) => v.startsWith(want);
  }
  if (typeof m.suffix === 'string') {
    const want = fold(m.suffix);
    return ignoreCase ? (v) => v.toLowerCase().endsWith(want) : (v) => v.endsWith(want);
  }
  if (typeof m.contains === 'string') {
    const want = fold(m.contains);
    return ignoreCase ? (v) => v.toLowerCase().includes(want) : (v) => v.includes(want);
  }
  if (m.safe_regex) {
    // Envoy: ignore_case has no effect on safe_regex.
    const re = regexMatcher(m.safe_regex, problems, join(path, 'safe_regex'));
    return re ? (v) => re.test(v) : () => false;
  }
  // An empty StringMatcher: Envoy's proto validation requires one of the match kinds. An
  // exact match on "" is what protobuf decoding makes of `exact: ""`, so accept that reading.
  if ('exact' in m || Object.keys(m).length === 0) return (v) => v === '';
  problems.add(path, 'string matcher has no match kind');
  return () => false;
}

/** Value of a header as the route matcher sees it; undefined when the header is absent. */
export type HeaderLookup = (name: string) => string | undefined;

export interface HeaderPredicate {
  name: string;
  test(lookup: HeaderLookup): boolean;
}

/** Compiles envoy.config.route.v3.HeaderMatcher (also used by retriable_headers). */
export function compileHeaderMatcher(h: Json, problems: Problems, path: string): HeaderPredicate {
  problems.fields(h, path, [
    'name',
    'exact_match',
    'safe_regex_match',
    'range_match',
    'present_match',
    'prefix_match',
    'suffix_match',
    'contains_match',
    'string_match',
    'invert_match',
    'treat_missing_header_as_empty',
  ]);
  const name = String(h.name ?? '').toLowerCase();
  if (!name) problems.add(join(path, 'name'), 'header name is required');
  const invert = h.invert_match === true;
  const missingAsEmpty = h.treat_missing_header_as_empty === true;
  let valueTest: StringPredicate | undefined;
  let presentOnly: boolean | undefined;
  if (h.string_match) valueTest = compileStringMatcher(h.string_match, problems, join(path, 'string_match'));
  else if (typeof h.exact_match === 'string') valueTest = (v) => v === h.exact_match;
  else if (typeof h.prefix_match === 'string') valueTest = (v) => v.startsWith(h.prefix_match);
  else if (typeof h.suffix_match === 'string') valueTest = (v) => v.endsWith(h.suffix_match);
  else if (typeof h.contains_match === 'string') valueTest = (v) => v.includes(h.contains_match);
  else if (h.safe_regex_match) {
    const re = regexMatcher(h.safe_regex_match, problems, join(path, 'safe_regex_match'));
    valueTest = re ? (v) => re.test(v) : () => false;
  } else if (h.range_match) {
    const start = Number(h.range_match.start ?? 0);
    const end = Number(h.range_match.end ?? 0);
    valueTest = (v) => {
      if (!/^-?\d+$/.test(v)) return false;
      const n = Number(v);
      return n >= start && n < end;
    };
  } else if ('present_match' in h) presentOnly = h.present_match !== false;
  else presentOnly = true; // no match specifier: Envoy matches on presence

  const test = (lookup: HeaderLookup): boolean => {
    let value = lookup(name);
    if (value === undefined && missingAsEmpty) value = '';
    let matched: boolean;
    if (presentOnly !== undefined) matched = (value !== undefined) === presentOnly;
    else matched = value !== undefined && valueTest!(value);
    return invert ? !matched : matched;
  };
  return { name, test };
}

export interface QueryPredicate {
  name: string;
  test(query: ReadonlyMap<string, string>): boolean;
}

/** Compiles envoy.config.route.v3.QueryParameterMatcher. */
export function compileQueryMatcher(q: Json, problems: Problems, path: string): QueryPredicate {
  problems.fields(q, path, ['name', 'string_match', 'present_match']);
  const name = String(q.name ?? '');
  if (!name) problems.add(join(path, 'name'), 'query parameter name is required');
  if (q.string_match) {
    const valueTest = compileStringMatcher(q.string_match, problems, join(path, 'string_match'));
    return { name, test: (query) => query.has(name) && valueTest(query.get(name)!) };
  }
  // present_match (true) or nothing at all: the parameter must be present.
  return { name, test: (query) => query.has(name) };
}

/** A regex that must match anywhere in the value (RegexMatchAndSubstitute uses unanchored). */
export function compileSubstitution(
  m: Json | undefined,
  problems: Problems,
  path: string,
): { pattern: RegExp; substitution: string } | undefined {
  if (!m) return undefined;
  problems.fields(m, path, ['pattern', 'substitution']);
  const pattern = m.pattern ? regexMatcher(m.pattern, problems, join(path, 'pattern'), false) : undefined;
  if (!pattern) {
    if (!m.pattern) problems.add(join(path, 'pattern'), 'pattern is required');
    return undefined;
  }
  // RE2 substitution uses \1 for groups; JS uses $1. Escape literal "$" first.
  const substitution = String(m.substitution ?? '')
    .replace(/\$/g, '$$$$')
    .replace(/\\(\d)/g, '$$$1');
  return { pattern: new RegExp(pattern.source, 'g'), substitution };
}

export { compileRe2 };
