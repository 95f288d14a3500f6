// Merging the stats of a multi-process proxy: every worker renders its own (the same code as a
// single process), the primary adds its own control-plane series, and series with the same name
// and labels are combined. Envoy's workers share one stats store; this gives the same totals.
//
// How a series combines (Envoy's gauge "import modes", by name):
// - control plane (xDS update counters, control_plane.connected_state): the primary's value only —
//   workers apply what the primary accepted, so their own copies would count each update N times;
// - config gauges every worker holds alike (cluster membership), circuit-breaker "open" flags and
//   the event loop's delay: the largest value;
// - everything else (counters, histogram buckets/sum/count, activity gauges): the workers' sum.
// Counters of a worker that died are lost with it (its replacement starts at zero).

type Rule = 'primary' | 'max' | 'sum';

const PRIMARY = /^(cluster_manager\.cds|listener_manager\.lds|weft\.eds|weft\.rds)\.|^(envoy_)?control_plane[._]connected_state$/;
const MAX = /membership_(total|healthy|degraded)$|_open$|event_loop_delay/;

function ruleOf(name: string): Rule {
  if (PRIMARY.test(name)) return 'primary';
  if (MAX.test(name)) return 'max';
  return 'sum';
}

/** Series -> value, combining the workers' by rule; the primary's own series only where the rule says. */
class SeriesMerger {
  private readonly values = new Map<string, number | string>();

  /** The primary's sample: kept for control-plane series; others only reserve their place (0 when no worker has them). */
  primary(name: string, series: string, value: string): void {
    if (ruleOf(name) === 'primary') this.values.set(series, value);
    else if (!this.values.has(series)) this.values.set(series, 0);
  }

  /** A worker's sample: the first worker showing a series sets it, the next ones combine by rule. */
  worker(name: string, series: string, value: string): void {
    const rule = ruleOf(name);
    if (rule === 'primary') return;
    const n = Number(value);
    const prev = this.touched.has(series) ? this.values.get(series) : undefined;
    this.touched.add(series);
    if (typeof prev === 'number' && !Number.isNaN(n)) this.values.set(series, rule === 'max' ? Math.max(prev, n) : prev + n);
    else if (prev === undefined) this.values.set(series, Number.isNaN(n) ? value : n);
  }

  private readonly touched = new Set<string>();

  entries(): IterableIterator<[string, number | string]> {
    return this.values.entries();
  }

  get(series: string): number | string | undefined {
    return this.values.get(series);
  }
}

/** Envoy's /stats text (`name: value` lines): the primary's lines and each worker's, merged and sorted. */
export function mergeStatsLines(primary: string[], workers: string[][]): string[] {
  const merger = new SeriesMerger();
  const split = (line: string): [string, string] | undefined => {
    const i = line.indexOf(': ');
    return i > 0 ? [line.slice(0, i), line.slice(i + 2)] : undefined;
  };
  for (const line of primary) {
    const nv = split(line);
    if (nv) merger.primary(nv[0], nv[0], nv[1]);
  }
  for (const lines of workers) {
    for (const line of lines) {
      const nv = split(line);
      if (nv) merger.worker(nv[0], nv[0], nv[1]);
    }
  }
  return [...merger.entries()].map(([name, v]) => `${name}: ${v}`).sort();
}

interface Family {
  /** `# HELP` and `# TYPE`, as the first text declaring them has them. */
  header: Map<string, string>;
  series: string[];
}

/**
 * Prometheus text (what /stats/prometheus serves: `# HELP`/`# TYPE`, then `name{labels} value`
 * lines): families in first-seen order, each with its series (the primary's first, then new ones
 * as the workers show them), values merged per series.
 */
export function mergePrometheus(primary: string, workers: string[]): string {
  const families = new Map<string, Family>();
  const merger = new SeriesMerger();
  const known = new Set<string>();
  const familyOf = (name: string): Family => {
    let f = families.get(name);
    if (!f) {
      f = { header: new Map(), series: [] };
      families.set(name, f);
    }
    return f;
  };
  const read = (text: string, sample: (name: string, series: string, value: string) => void) => {
    let current: string | undefined;
    for (const line of text.split('\n')) {
      if (!line) continue;
      if (line.startsWith('#')) {
        const m = /^#\s+(HELP|TYPE)\s+(\S+)/.exec(line);
        if (!m) continue;
        current = m[2];
        const f = familyOf(current);
        if (!f.header.has(m[1])) f.header.set(m[1], line);
        continue;
      }
      const space = line.lastIndexOf(' ');
      if (space <= 0) continue;
      const series = line.slice(0, space);
      const brace = series.indexOf('{');
      const name = brace < 0 ? series : series.slice(0, brace);
      if (!known.has(series)) {
        known.add(series);
        familyOf(current && name.startsWith(current) ? current : name).series.push(series);
      }
      sample(name, series, line.slice(space + 1));
    }
  };
  read(primary, (name, series, value) => merger.primary(name, series, value));
  for (const text of workers) read(text, (name, series, value) => merger.worker(name, series, value));
  const out: string[] = [];
  for (const f of families.values()) {
    out.push(...f.header.values());
    for (const series of f.series) out.push(`${series} ${merger.get(series)}`);
  }
  return out.join('\n') + '\n';
}

/** Per-host counters of /clusters: summed over workers; every other fact is the first worker's. */
const HOST_COUNTERS = new Set(['cx_active', 'cx_connect_fail', 'cx_total', 'rq_active', 'rq_error', 'rq_success', 'rq_timeout', 'rq_total']);

/** Envoy's /clusters text (`cluster::[host::]stat::value`) of each worker, merged. */
export function mergeClustersText(workers: string[]): string {
  const values = new Map<string, string>();
  for (const text of workers) {
    for (const line of text.split('\n')) {
      if (!line) continue;
      const i = line.lastIndexOf('::');
      if (i < 0) continue;
      const key = line.slice(0, i);
      const value = line.slice(i + 2);
      const stat = key.slice(key.lastIndexOf('::') + 2);
      const prev = values.get(key);
      if (prev === undefined) values.set(key, value);
      else if (HOST_COUNTERS.has(stat)) values.set(key, String(Number(prev) + Number(value)));
      else if (stat === 'health_flags' && value !== 'healthy') {
        // A host ejected by one worker's outlier detection: show it (flags of every worker).
        const flags = new Set([...(prev === 'healthy' ? [] : prev.split('/').filter(Boolean)), ...value.split('/').filter(Boolean)]);
        values.set(key, [...flags].map((f) => `/${f}`).join(''));
      }
    }
  }
  return [...values].map(([k, v]) => `${k}::${v}`).join('\n') + '\n';
}

interface HostJson {
  address: { socket_address: { address: string; port_value: number } };
  stats: { name: string; value: number; type?: string }[];
  health_status: { failed_outlier_check?: boolean };
}

/** /clusters?format=json of each worker, merged the same way. */
export function mergeClustersJson(workers: string[]): string {
  const parsed = workers.map((w) => JSON.parse(w) as { cluster_statuses: { name: string; host_statuses: HostJson[] }[] });
  if (parsed.length === 0) return JSON.stringify({ cluster_statuses: [] }, null, 2);
  const [base, ...rest] = parsed;
  const hostKey = (h: HostJson) => `${h.address.socket_address.address}:${h.address.socket_address.port_value}`;
  for (const other of rest) {
    for (const c of other.cluster_statuses) {
      const mine = base.cluster_statuses.find((b) => b.name === c.name);
      if (!mine) {
        base.cluster_statuses.push(c);
        continue;
      }
      for (const h of c.host_statuses) {
        const target = mine.host_statuses.find((m) => hostKey(m) === hostKey(h));
        if (!target) {
          mine.host_statuses.push(h);
          continue;
        }
        for (const s of h.stats) {
          const t = target.stats.find((x) => x.name === s.name);
          if (t) t.value += s.value;
          else target.stats.push(s);
        }
        if (h.health_status.failed_outlier_check) target.health_status.failed_outlier_check = true;
      }
    }
  }
  return JSON.stringify(base, null, 2);
}
