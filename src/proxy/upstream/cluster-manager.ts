// All live clusters of the proxy, updated from CDS (state of the world) and EDS (per cluster).
// Updates never drop in-flight requests: unchanged hosts keep their connections, replaced ones
// finish what they carry before closing.
import { isDeepStrictEqual } from 'node:util';
import type { CompiledCluster, CompiledLoadAssignment } from '../config/model';
import type { SecureContextCache } from '../identity/secure-contexts';
import type { Host } from './host';
import { UpstreamCluster } from './upstream-cluster';

export class ClusterManager {
  private readonly clusters = new Map<string, UpstreamCluster>();
  /** Last EDS assignment per service name, kept across cluster updates. */
  private readonly assignments = new Map<string, CompiledLoadAssignment>();

  constructor(
    private readonly random: () => number = Math.random,
    /** Resolves SDS secrets of upstream TLS settings (the proxy's identity); absent: files only. */
    private readonly contexts?: SecureContextCache,
  ) {}

  get(name: string): UpstreamCluster | undefined {
    return this.clusters.get(name);
  }

  all(): IterableIterator<UpstreamCluster> {
    return this.clusters.values();
  }

  get size(): number {
    return this.clusters.size;
  }

  /** EDS service names of the current EDS clusters (the EDS subscription). */
  edsServiceNames(): string[] {
    const names = new Set<string>();
    for (const c of this.clusters.values()) if (c.config.type === 'EDS' && c.config.edsServiceName) names.add(c.config.edsServiceName);
    return [...names].sort();
  }

  /** Whether every EDS cluster has received its endpoints. */
  allWarmed(): boolean {
    for (const c of this.clusters.values()) if (!c.warmed) return false;
    return true;
  }

  /** Applies the complete set of clusters (CDS is state of the world: absent ones are removed). */
  applyClusters(next: ReadonlyMap<string, CompiledCluster>): void {
    for (const [name, config] of next) {
      const prev = this.clusters.get(name);
      if (prev && isDeepStrictEqual(prev.config.raw, config.raw)) continue; // only the version moved
      const cluster = new UpstreamCluster(config, prev, this.random, this.contexts);
      const candidates = prev?.hosts ?? [];
      let leftovers: Host[] = [...candidates];
      if (config.loadAssignment) {
        leftovers = cluster.setEndpoints(config.loadAssignment.endpoints, config.version, candidates);
      } else if (config.type === 'EDS') {
        const assignment = this.assignments.get(config.edsServiceName ?? name);
        if (assignment) leftovers = cluster.setEndpoints(assignment.endpoints, assignment.version, candidates);
      } else if (config.type === 'ORIGINAL_DST' && prev?.config.type === 'ORIGINAL_DST') {
        cluster.hosts = prev.hosts;
        leftovers = [];
      }
      prev?.stopTimers();
      for (const h of leftovers) void h.close();
      this.clusters.set(name, cluster);
    }
    for (const [name, cluster] of this.clusters) {
      if (!next.has(name)) {
        this.clusters.delete(name);
        cluster.close();
      }
    }
    // Forget assignments no cluster uses any more.
    const used = new Set(this.edsServiceNames());
    for (const key of this.assignments.keys()) if (!used.has(key)) this.assignments.delete(key);
  }

  /** Applies one EDS assignment to every cluster that uses its service name. */
  applyAssignment(assignment: CompiledLoadAssignment): void {
    this.assignments.set(assignment.clusterName, assignment);
    for (const c of this.clusters.values()) {
      if (c.config.type !== 'EDS' || c.config.edsServiceName !== assignment.clusterName) continue;
      for (const h of c.setEndpoints(assignment.endpoints, assignment.version)) void h.close();
    }
  }

  /** Drops the assignment of a service no longer subscribed. */
  removeAssignment(serviceName: string): void {
    this.assignments.delete(serviceName);
  }

  assignment(serviceName: string): CompiledLoadAssignment | undefined {
    return this.assignments.get(serviceName);
  }

  close(): void {
    for (const c of this.clusters.values()) c.close();
    this.clusters.clear();
  }
}
