// A strict parser of the Prometheus text exposition format (0.0.4) for tests: metric families
// with their HELP and TYPE, samples with unescaped labels. It throws on what a scraper would
// reject: malformed lines or label escapes, samples of an undeclared or non-contiguous family, a
// TYPE after its samples, the same series twice.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  types: Map<string, string>;
  help: Map<string, string>;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count'];

function familyOf(name: string, types: Map<string, string>): string {
  for (const suffix of HISTOGRAM_SUFFIXES) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      if (types.get(base) === 'histogram' || types.get(base) === 'summary') return base;
    }
  }
  return name;
}

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new Error(`bad labels in: ${line}`);
    const name = text.slice(i, eq).trim();
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name)) throw new Error(`bad label name "${name}" in: ${line}`);
    if (text[eq + 1] !== '"') throw new Error(`label value not quoted in: ${line}`);
    let value = '';
    let j = eq + 2;
    for (;;) {
      if (j >= text.length) throw new Error(`unterminated label value in: ${line}`);
      const c = text[j];
      if (c === '\\') {
        const next = text[j + 1];
        if (next === 'n') value += '\n';
        else if (next === '\\' || next === '"') value += next;
        else throw new Error(`bad escape \\${next} in: ${line}`);
        j += 2;
      } else if (c === '"') {
        j++;
        break;
      } else {
        value += c;
        j++;
      }
    }
    if (name in labels) throw new Error(`label ${name} twice in: ${line}`);
    labels[name] = value;
    if (text[j] === ',') j++;
    else if (j < text.length) throw new Error(`expected "," after label ${name} in: ${line}`);
    i = j;
  }
  return labels;
}

export function parsePrometheusText(text: string): Exposition {
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  const seenSeries = new Set<string>();
  const finishedFamilies = new Set<string>();
  let currentFamily: string | undefined;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) continue; // a comment
      const [, kind, name, rest] = m;
      if (!NAME.test(name)) throw new Error(`bad metric name in: ${line}`);
      if (kind === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) throw new Error(`bad type in: ${line}`);
        if (types.has(name)) throw new Error(`TYPE twice for ${name}`);
        if (samples.some((s) => familyOf(s.name, types) === name)) throw new Error(`TYPE after samples of ${name}`);
        types.set(name, rest);
      } else help.set(name, rest);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`malformed sample line: ${line}`);
    const [, name, labelText, valueText] = m;
    const value = valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity : Number(valueText);
    if (Number.isNaN(value) && valueText !== 'NaN') throw new Error(`bad value in: ${line}`);
    const labels = labelText ? parseLabels(labelText, line) : {};
    const family = familyOf(name, types);
    if (!types.has(family)) throw new Error(`sample of undeclared family ${family}: ${line}`);
    if (family !== currentFamily) {
      if (finishedFamilies.has(family)) throw new Error(`family ${family} is not contiguous`);
      if (currentFamily) finishedFamilies.add(currentFamily);
      currentFamily = family;
    }
    const key = `${name}{${Object.entries(labels).sort().map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}}`;
    if (seenSeries.has(key)) throw new Error(`series twice: ${key}`);
    seenSeries.add(key);
    samples.push({ name, labels, value });
  }
  return { types, help, samples };
}

/** Samples named `name` whose labels include every pair of `match`. */
export function findSamples(e: Exposition, name: string, match: Record<string, string> = {}): Sample[] {
  return e.samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

/** The value of the one sample named `name` matching `match` (throws unless exactly one). */
export function sampleValue(e: Exposition, name: string, match: Record<string, string> = {}): number {
  const found = findSamples(e, name, match);
  if (found.length !== 1) {
    const near = e.samples.filter((s) => s.name === name).map((s) => JSON.stringify(s.labels));
    throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(match)}; there are:\n${near.join('\n')}`);
  }
  return found[0].value;
}
