// Reading a proxy's admin endpoint the way an operator does: /stats counters, /clusters host
// health, and a watcher that records when an endpoint is ejected and when it returns.
export interface HostStatus {
  address: string;
  /** `address:port` */
  key: string;
  ejected: boolean;
  edsHealth: string;
  priority: number;
  rqTotal: number;
}

export async function adminText(admin: string, path: string): Promise<string> {
  const res = await fetch(`http://${admin}${path}`, { signal: AbortSignal.timeout(5000) });
  return res.text();
}

/** Counters and gauges of /stats whose names match `filter`, by name. */
export async function adminStats(admin: string, filter: string): Promise<Record<string, number>> {
  const text = await adminText(admin, `/stats?filter=${encodeURIComponent(filter)}`);
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const i = line.lastIndexOf(': ');
    if (i > 0) out[line.slice(0, i)] = Number(line.slice(i + 2));
  }
  return out;
}

/** One cluster's counter: `cluster.<name>.<stat>`. */
export async function clusterStat(admin: string, cluster: string, stat: string): Promise<number> {
  const name = `cluster.${cluster}.${stat}`;
  const stats = await adminStats(admin, name.replace(/[.|]/g, (c) => `\\${c}`));
  return stats[name] ?? 0;
}

/** The hosts of `cluster` from /clusters?format=json. */
export async function clusterHosts(admin: string, cluster: string): Promise<HostStatus[]> {
  const body = JSON.parse(await adminText(admin, '/clusters?format=json')) as {
    cluster_statuses: {
      name: string;
      host_statuses: {
        address: { socket_address: { address: string; port_value: number } };
        health_status: { eds_health_status: string; failed_outlier_check?: boolean };
        priority?: number;
        stats: { name: string; value: number }[];
      }[];
    }[];
  };
  const c = body.cluster_statuses.find((s) => s.name === cluster);
  return (c?.host_statuses ?? []).map((h) => ({
    address: h.address.socket_address.address,
    key: `${h.address.socket_address.address}:${h.address.socket_address.port_value}`,
    ejected: h.health_status.failed_outlier_check === true,
    edsHealth: h.health_status.eds_health_status,
    priority: h.priority ?? 0,
    rqTotal: h.stats.find((s) => s.name === 'rq_total')?.value ?? 0,
  }));
}

export interface EjectionEvent {
  /** performance.now() when the change was first seen. */
  at: number;
  ejected: boolean;
}

/**
 * Polls /clusters every `everyMs` until stop() and records each change of one host's ejection
 * state. Bounded: it stops by itself after `maxMs`.
 */
export function watchEjections(admin: string, cluster: string, hostKey: string, o: { everyMs?: number; maxMs: number }): { events: EjectionEvent[]; stop(): Promise<void> } {
  const events: EjectionEvent[] = [];
  let stopped = false;
  const deadline = performance.now() + o.maxMs;
  const loop = (async () => {
    let last = false;
    while (!stopped && performance.now() < deadline) {
      try {
        const host = (await clusterHosts(admin, cluster)).find((h) => h.key === hostKey);
        const ejected = host?.ejected ?? false;
        if (ejected !== last) {
          events.push({ at: performance.now(), ejected });
          last = ejected;
        }
      } catch {
        // The admin endpoint answers again on the next round.
      }
      await new Promise((r) => setTimeout(r, o.everyMs ?? 10));
    }
  })();
  return {
    events,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}
