// A parser for Prometheus' text exposition format (version 0.0.4, what Envoy's /stats/prometheus
// and Weft's proxies serve): `# HELP`/`# TYPE` lines and samples `name{l="v",...} value [ts]`.
// prom-client only writes this format, so the dashboard reads it with this small scanner.
// Spec: https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
  /** Milliseconds since the epoch, when the line carries one. */
  timestampMs?: number;
}

export interface ParseProblem {
  /** 1-based line number. */
  line: number;
  message: string;
}

export interface ParsedExposition {
  samples: Sample[];
  /** Metric family name -> declared type. */
  types: Map<string, MetricType>;
  help: Map<string, string>;
  /** Lines that could not be read; every other line is still returned. */
  problems: ParseProblem[];
}

const METRIC_TYPES = new Set<MetricType>(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

class LineError extends Error {}

/**
 * Reads a whole exposition. A malformed line is reported in `problems` and skipped, so one bad
 * series from a proxy does not hide the rest of its metrics.
 */
export function parsePrometheusText(text: string): ParsedExposition {
  const out: ParsedExposition = { samples: [], types: new Map(), help: new Map(), problems: [] };
  let lineNo = 0;
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    lineNo++;
    const line = text.charCodeAt(end - 1) === 13 ? text.slice(start, end - 1) : text.slice(start, end);
    start = end + 1;
    try {
      readLine(line, out);
    } catch (err) {
      if (!(err instanceof LineError)) throw err;
      out.problems.push({ line: lineNo, message: err.message });
    }
    if (end === text.length) break;
  }
  return out;
}

function readLine(line: string, out: ParsedExposition): void {
  let i = skipSpaces(line, 0);
  if (i === line.length) return;
  if (line[i] === '#') {
    readComment(line.slice(i + 1), out);
    return;
  }
  const nameEnd = scanMetricName(line, i);
  if (nameEnd === i) throw new LineError(`expected a metric name at column ${i + 1}`);
  const name = line.slice(i, nameEnd);
  i = skipSpaces(line, nameEnd);
  const labels: Record<string, string> = {};
  if (line[i] === '{') i = readLabels(line, i + 1, labels);
  i = skipSpaces(line, i);
  const valueEnd = scanToken(line, i);
  if (valueEnd === i) throw new LineError(`${name}: missing value`);
  const value = parseValue(line.slice(i, valueEnd));
  if (value === undefined) throw new LineError(`${name}: "${line.slice(i, valueEnd)}" is not a number`);
  i = skipSpaces(line, valueEnd);
  const sample: Sample = { name, labels, value };
  if (i < line.length) {
    const tsEnd = scanToken(line, i);
    const ts = Number(line.slice(i, tsEnd));
    if (!Number.isInteger(ts)) throw new LineError(`${name}: "${line.slice(i, tsEnd)}" is not a timestamp`);
    sample.timestampMs = ts;
    if (skipSpaces(line, tsEnd) !== line.length) throw new LineError(`${name}: unexpected text after the timestamp`);
  }
  out.samples.push(sample);
}

function readComment(rest: string, out: ParsedExposition): void {
  const m = /^\s+(HELP|TYPE)\s+([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\s+(.*))?$/.exec(rest);
  // Any other comment (including OpenMetrics' "# EOF") is free text.
  if (!m) return;
  const [, keyword, name, body = ''] = m;
  if (keyword === 'HELP') {
    out.help.set(name, body.replace(/\\(\\|n)/g, (_, c: string) => (c === 'n' ? '\n' : '\\')));
    return;
  }
  const type = body.trim() as MetricType;
  if (!METRIC_TYPES.has(type)) throw new LineError(`# TYPE ${name}: unknown type "${body.trim()}"`);
  out.types.set(name, type);
}

/** Reads `name="value",...}` from just after the `{`; returns the index after the `}`. */
function readLabels(line: string, i: number, labels: Record<string, string>): number {
  for (;;) {
    i = skipSpaces(line, i);
    if (line[i] === '}') return i + 1;
    const nameEnd = scanLabelName(line, i);
    if (nameEnd === i) throw new LineError(`expected a label name or "}" at column ${i + 1}`);
    const labelName = line.slice(i, nameEnd);
    i = skipSpaces(line, nameEnd);
    if (line[i] !== '=') throw new LineError(`label ${labelName}: expected "=" at column ${i + 1}`);
    i = skipSpaces(line, i + 1);
    if (line[i] !== '"') throw new LineError(`label ${labelName}: expected a quoted value at column ${i + 1}`);
    let value = '';
    i++;
    for (;;) {
      if (i >= line.length) throw new LineError(`label ${labelName}: unterminated value`);
      const c = line[i];
      if (c === '"') break;
      if (c === '\\') {
        const next = line[i + 1];
        if (next === 'n') value += '\n';
        else if (next === '\\' || next === '"') value += next;
        else throw new LineError(`label ${labelName}: invalid escape "\\${next ?? ''}"`);
        i += 2;
        continue;
      }
      value += c;
      i++;
    }
    labels[labelName] = value;
    i = skipSpaces(line, i + 1);
    if (line[i] === ',') {
      i++;
      continue;
    }
    if (line[i] === '}') return i + 1;
    throw new LineError(`after label ${labelName}: expected "," or "}" at column ${i + 1}`);
  }
}

/** Go's ParseFloat forms Prometheus writes: decimals, exponents, NaN, +Inf, -Inf. */
function parseValue(token: string): number | undefined {
  const lower = token.toLowerCase();
  if (lower === 'nan') return NaN;
  if (lower === '+inf' || lower === 'inf') return Infinity;
  if (lower === '-inf') return -Infinity;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(token)) return undefined;
  return Number(token);
}

function skipSpaces(line: string, i: number): number {
  while (i < line.length && (line[i] === ' ' || line[i] === '\t')) i++;
  return i;
}

function scanToken(line: string, i: number): number {
  while (i < line.length && line[i] !== ' ' && line[i] !== '\t') i++;
  return i;
}

function scanMetricName(line: string, i: number): number {
  const first = line.charCodeAt(i);
  if (!(isLetter(first) || first === 95 || first === 58)) return i;
  i++;
  while (i < line.length) {
    const c = line.charCodeAt(i);
    if (!(isLetter(c) || isDigit(c) || c === 95 || c === 58)) break;
    i++;
  }
  return i;
}

function scanLabelName(line: string, i: number): number {
  const first = line.charCodeAt(i);
  if (!(isLetter(first) || first === 95)) return i;
  i++;
  while (i < line.length) {
    const c = line.charCodeAt(i);
    if (!(isLetter(c) || isDigit(c) || c === 95)) break;
    i++;
  }
  return i;
}

function isLetter(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
