// All listeners of the proxy, updated from LDS (state of the world): new ones bind, changed ones
// swap config in place (same address: connections and in-flight requests carry on) or rebind,
// removed ones drain. Listeners with bind_to_port false are kept for original-destination hand-off.
import type { CompiledListener } from '../config/model';
import { ListenerServer, type Destination, type ListenerDependencies } from './listener-server';
import type { DownstreamTlsStats } from './tls-terminator';

export interface ListenerBindPolicy {
  /** Address that 0.0.0.0 / :: listeners bind (the workload's address). */
  bindAddress: string;
  /** Listener port -> port to bind instead (0: any free port). */
  portOverrides: ReadonlyMap<number, number>;
  /** How long a removed or rebound listener's in-flight requests may take. */
  drainMs: number;
}

/** Where a listener binds: 0.0.0.0 / :: mean the workload's address; ports may be overridden. */
export function listenerBindAddress(l: CompiledListener, policy: Pick<ListenerBindPolicy, 'bindAddress' | 'portOverrides'>): { address: string; port: number } {
  const wildcard = l.address === '0.0.0.0' || l.address === '::' || l.address === '';
  const address = wildcard ? policy.bindAddress : l.address;
  const port = policy.portOverrides.get(l.port) ?? l.port;
  return { address, port };
}

/**
 * The bind_to_port=false listener an original-destination hand-off goes to: the one for exactly
 * `dest`, else the wildcard one on its port.
 */
export function findVirtualListener(virtual: readonly CompiledListener[], dest: Destination): CompiledListener | undefined {
  let wildcard: CompiledListener | undefined;
  for (const l of virtual) {
    if (l.port !== dest.port) continue;
    if (l.address === dest.ip) return l;
    if (l.address === '0.0.0.0' || l.address === '::') wildcard = l;
  }
  return wildcard;
}

export class ListenerManager {
  private readonly servers = new Map<string, ListenerServer>();
  private virtual: CompiledListener[] = [];
  private readonly retiring = new Set<Promise<void>>();

  constructor(
    private readonly policy: ListenerBindPolicy,
    private readonly deps: Omit<ListenerDependencies, 'virtualListenerFor'>,
  ) {}

  private bindFor(l: CompiledListener): { address: string; port: number } {
    return listenerBindAddress(l, this.policy);
  }

  virtualListenerFor(dest: Destination): CompiledListener | undefined {
    return findVirtualListener(this.virtual, dest);
  }

  /**
   * Applies the complete listener set. Returns one error per listener that could not be bound
   * (it is left out; a previous generation on another address keeps serving), for the NACK.
   */
  async apply(next: ReadonlyMap<string, CompiledListener>): Promise<{ errors: string[]; applied: Map<string, CompiledListener> }> {
    const errors: string[] = [];
    const applied = new Map<string, CompiledListener>();
    const virtual: CompiledListener[] = [];
    const deps: ListenerDependencies = { ...this.deps, virtualListenerFor: (d) => this.virtualListenerFor(d) };
    for (const [name, listener] of next) {
      if (!listener.bindToPort) {
        virtual.push(listener);
        applied.set(name, listener);
        const old = this.servers.get(name);
        if (old) this.retire(name, old);
        continue;
      }
      const bind = this.bindFor(listener);
      const existing = this.servers.get(name);
      if (existing && existing.bindAddress === bind.address && (existing.bindPort === bind.port || (bind.port === 0 && existing.port > 0))) {
        existing.config = listener; // in place: later requests see the new config
        applied.set(name, listener);
        continue;
      }
      const server = new ListenerServer(listener, bind.address, bind.port, deps);
      try {
        await server.listen();
        if (existing) this.retire(name, existing);
        this.servers.set(name, server);
        applied.set(name, listener);
      } catch (err) {
        errors.push(`Listener "${name}": cannot bind ${bind.address}:${bind.port}: ${(err as Error).message}`);
        // The previous generation, if any, keeps serving.
        if (existing) applied.set(name, existing.config);
      }
    }
    this.virtual = virtual;
    for (const [name, server] of this.servers) if (!applied.has(name)) this.retire(name, server);
    return { errors, applied };
  }

  private retire(name: string, server: ListenerServer): void {
    if (this.servers.get(name) === server) this.servers.delete(name);
    const p = server.close(this.policy.drainMs).finally(() => this.retiring.delete(p));
    this.retiring.add(p);
  }

  /** Bound listeners: name, address and actual port. */
  bound(): { name: string; address: string; port: number }[] {
    return [...this.servers.entries()].map(([name, s]) => ({ name, address: s.bindAddress, port: s.port }));
  }

  port(name: string): number | undefined {
    return this.servers.get(name)?.port;
  }

  /** Downstream TLS counters per bound listener (only listeners that terminated TLS). */
  tlsStats(): { name: string; stats: DownstreamTlsStats }[] {
    return [...this.servers.entries()].filter(([, s]) => Object.values(s.tlsStats).some((v) => v > 0)).map(([name, s]) => ({ name, stats: s.tlsStats }));
  }

  drain(): void {
    for (const s of this.servers.values()) s.drain();
  }

  async close(graceMs: number): Promise<void> {
    const all = [...this.servers.values()].map((s) => s.close(graceMs));
    this.servers.clear();
    await Promise.all([...all, ...this.retiring]);
  }
}
