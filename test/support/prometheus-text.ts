// The Prometheus text exposition (0.0.4) read strictly, for tests: the dashboard's parser
// (src/dashboard/prometheus-text.ts) does the lines and label escapes, and any line it could not
// read is an error here; on top, what a scraper rejects about the whole exposition: samples of
// an undeclared or non-contiguous family, a TYPE after its samples, the same series twice.
import { parsePrometheusText as parseLines, type Sample } from '../../src/dashboard/prometheus-text';

export type { Sample };

export interface Exposition {
  types: Map<string, string>;
  help: Map<string, string>;
  samples: Sample[];
}

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

/** Line numbers of `# TYPE` declarations, to tell a TYPE that follows its own samples. */
function typeLines(text: string): Map<string, number> {
  const lines = new Map<string, number>();
  text.split('\n').forEach((line, i) => {
    const m = /^# TYPE (\S+) /.exec(line);
    if (m) {
      if (lines.has(m[1])) throw new Error(`TYPE twice for ${m[1]}`);
      lines.set(m[1], i);
    }
  });
  return lines;
}

export function parsePrometheusText(text: string): Exposition {
  const parsed = parseLines(text);
  if (parsed.problems.length) throw new Error(parsed.problems.map((p) => `line ${p.line}: ${p.message}`).join('\n'));
  const declaredAt = typeLines(text);
  const sampleLines: number[] = [];
  text.split('\n').forEach((line, i) => {
    if (line !== '' && !line.startsWith('#')) sampleLines.push(i);
  });
  const seenSeries = new Set<string>();
  const finishedFamilies = new Set<string>();
  let currentFamily: string | undefined;
  parsed.samples.forEach((s, index) => {
    const family = familyOf(s.name, parsed.types);
    if (!parsed.types.has(family)) throw new Error(`sample of undeclared family ${family}: ${s.name}`);
    if ((declaredAt.get(family) ?? 0) > sampleLines[index]) throw new Error(`TYPE after samples of ${family}`);
    if (family !== currentFamily) {
      if (finishedFamilies.has(family)) throw new Error(`family ${family} is not contiguous`);
      if (currentFamily) finishedFamilies.add(currentFamily);
      currentFamily = family;
    }
    const key = `${s.name}{${Object.entries(s.labels).sort().map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}}`;
    if (seenSeries.has(key)) throw new Error(`series twice: ${key}`);
    seenSeries.add(key);
  });
  return { types: parsed.types, help: parsed.help, samples: parsed.samples };
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
