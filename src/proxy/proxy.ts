// The Weft proxy: wires the ADS client to the compiled config, the listeners, the clusters and
// the admin/stats/health servers. `startProxy` is the whole public API (the CLI wraps it).
//
// Config flow: each xDS response is compiled (every error collected) and applied; valid
// resources take effect, invalid ones keep their last good version, and the response is NACKed
// with all errors. Listener and cluster updates happen in place so in-flight requests finish on
// the config they started with. Losing the control plane changes nothing that is serving.
import type * as http from 'node:http';
import * as net from 'node:net';
import { createLogger, type Logger } from '../log/logger';
import { SHORT_TYPE_NAMES, TypeUrl } from '../xds/protos';
import { AccessLogWriters, type RequestRecord } from './access-log';
import { boundPort, createAdminHandler, createHealthHandler, createPrometheusHandler, listenHttp, type ServerState } from './admin';
import { compileCluster } from './config/cluster';
import { compileLoadAssignment } from './config/endpoints';
import { compileListener } from './config/listener';
import type { CompiledCluster, CompiledListener, CompiledRouteConfig } from './config/model';
import { compileRouteConfig } from './config/route-config';
import type { Json, Validation } from './config/validation';
import type { HttpRuntime } from './http/http-stream';
import { ListenerManager } from './listener/listener-manager';
import type { Destination } from './listener/listener-server';
import { ProxyStats } from './stats';
import { ClusterManager } from './upstream/cluster-manager';
import { XdsClient, type ReceivedResource } from './xds-client';

export interface ProxyPorts {
  /** Port for the listener LDS puts on 15001 (virtualOutbound). */
  outbound: number;
  /** Port for the listener LDS puts on 15006 (virtualInbound). */
  inbound: number;
  admin: number;
  stats: number;
  health: number;
}

export const DEFAULT_PORTS: ProxyPorts = Object.freeze({ outbound: 15001, inbound: 15006, admin: 15000, stats: 15090, health: 15021 });

export interface ProxyOptions {
  /** Control plane ADS address, host:port (plaintext gRPC). */
  xdsAddress: string;
  /** xDS node: Istio-style id (`sidecar~IP~NAME.NS~NS.svc.cluster.local`) and metadata. */
  node: { id: string; cluster?: string; metadata?: Record<string, unknown> };
  /** The workload's address: 0.0.0.0 listeners bind here. */
  bindAddress: string;
  /** Any subset; 0 picks a free port (tests). */
  ports?: Partial<ProxyPorts>;
  /** Listener port -> port to bind instead (e.g. a gateway's 80 -> 8080, or 0 in tests). */
  listenerPorts?: Record<number, number>;
  logger?: Logger;
  /** Called for every finished request and TCP connection (tests, telemetry). */
  onRequest?: (record: RequestRecord) => void;
  /** ADS reconnect backoff. */
  xdsBackoff?: { initialMs: number; maxMs: number };
  /** How long to wait for RDS/EDS after the first LDS/CDS before reporting ready anyway (Envoy: 15s). */
  initialFetchTimeoutMs?: number;
  /** Drain time for listeners removed or rebound by an update. */
  listenerDrainMs?: number;
  /** Original destination of captured connections (SO_ORIGINAL_DST), when available. */
  originalDestination?: (socket: net.Socket) => Destination | undefined;
  /** Random source for routing decisions (tests). */
  random?: () => number;
}

export interface RunningProxy {
  /** Resolves once the first configuration is applied and every listener is bound. */
  readonly ready: Promise<void>;
  /** Resolves when the proxy has shut down (after close() or /quitquitquit). */
  readonly closed: Promise<void>;
  /** Actual ports of the admin, stats and health servers. */
  readonly ports: { admin: number; stats: number; health: number };
  /** Address the admin server is bound to (loopback). */
  readonly adminAddress: string;
  state(): ServerState;
  /** Bound port of a listener by name (e.g. "virtualOutbound"), once bound. */
  listenerPort(name: string): number | undefined;
  listeners(): { name: string; address: string; port: number }[];
  /** The applied xDS resources and versions (the admin /config_dump body). */
  configDump(): unknown;
  /** Per xDS type: accepted version and last NACK error. */
  xdsStatus(): ReturnType<XdsClient['status']>;
  /** Stop accepting, let in-flight requests finish within `graceMs`, then stop. */
  close(graceMs?: number): Promise<void>;
}

interface Applied<T> {
  compiled: T;
  version: string;
  raw: Json;
  lastUpdated: string;
}

function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1' || address === 'localhost';
}

export async function startProxy(options: ProxyOptions): Promise<RunningProxy> {
  const logger = (options.logger ?? createLogger()).child({ component: 'proxy', node: options.node.id });
  const ports: ProxyPorts = { ...DEFAULT_PORTS, ...options.ports };
  const random = options.random ?? Math.random;
  const stats = new ProxyStats();
  const clusters = new ClusterManager(random);
  const accessLogs = new AccessLogWriters();
  const routes = new Map<string, Applied<CompiledRouteConfig>>();
  const listeners = new Map<string, Applied<CompiledListener>>();
  const clusterConfigs = new Map<string, Applied<CompiledCluster>>();
  const endpointRaw = new Map<string, { version: string; raw: Json; lastUpdated: string }>();
  const runtime: HttpRuntime = {
    clusters,
    routeConfig: (name) => routes.get(name)?.compiled,
    stats,
    accessLogs,
    onRequest: options.onRequest,
    random,
    logger,
    activeFaults: { count: 0 },
  };
  const portOverrides = new Map<number, number>(Object.entries(options.listenerPorts ?? {}).map(([k, v]) => [Number(k), v]));
  if (!portOverrides.has(15001)) portOverrides.set(15001, ports.outbound);
  if (!portOverrides.has(15006)) portOverrides.set(15006, ports.inbound);
  const listenerManager = new ListenerManager(
    { bindAddress: options.bindAddress, portOverrides, drainMs: options.listenerDrainMs ?? 5_000 },
    { runtime, originalDestination: options.originalDestination },
  );

  let state: ServerState = 'PRE_INITIALIZING';
  let resolveReady!: () => void;
  let rejectReady!: (err: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  ready.catch(() => undefined);
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  let ldsReceived = false;
  let cdsReceived = false;
  let initialTimer: NodeJS.Timeout | null = null;

  const checkReady = () => {
    if (state !== 'PRE_INITIALIZING' || !ldsReceived || !cdsReceived) return;
    const routesMissing = [...listeners.values()].some((l) => l.compiled.routeConfigNames.some((n) => !routes.has(n)));
    if ((routesMissing || !clusters.allWarmed()) && initialTimer) return;
    if (initialTimer) clearTimeout(initialTimer);
    initialTimer = null;
    state = 'LIVE';
    logger.info('proxy_ready', { listeners: listenerManager.bound() });
    resolveReady();
  };
  const startInitialTimer = () => {
    if (initialTimer || state !== 'PRE_INITIALIZING' || !ldsReceived || !cdsReceived) return;
    initialTimer = setTimeout(() => {
      initialTimer = null;
      logger.warn('initial_fetch_timeout', { hint: 'some RDS/EDS resources never arrived; serving with what there is' });
      checkReady();
    }, options.initialFetchTimeoutMs ?? 15_000);
  };

  const now = () => new Date().toISOString();
  const noteType = (type: TypeUrl, version: string, errors: string[]) => {
    const s = stats.xdsType(SHORT_TYPE_NAMES[type]);
    s.update_attempt++;
    if (errors.length) s.update_rejected++;
    else {
      s.update_success++;
      s.version = version;
    }
  };

  /** Compiles a state-of-the-world set; invalid resources keep their last good version. */
  function compileAll<T>(
    resources: ReceivedResource[],
    version: string,
    compile: (raw: Json, version: string) => Validation<T>,
    previous: Map<string, Applied<T>>,
    kind: string,
    errors: string[],
  ): Map<string, Applied<T>> {
    const next = new Map<string, Applied<T>>();
    for (const r of resources) {
      if (next.has(r.name)) {
        errors.push(`${kind} "${r.name}": duplicate name in one response`);
        continue;
      }
      const prev = previous.get(r.name);
      const result = compile(r.raw, version);
      if (result.valid) {
        // Unchanged resources keep their compiled form (and their last_updated).
        const same = prev && JSON.stringify(prev.raw) === JSON.stringify(r.raw);
        next.set(r.name, same ? { ...prev!, version } : { compiled: result.result, version, raw: r.raw, lastUpdated: now() });
      } else {
        errors.push(...result.errors);
        if (prev) next.set(r.name, prev);
      }
    }
    return next;
  }

  const xds: XdsClient = new XdsClient({
    address: options.xdsAddress,
    node: options.node,
    logger,
    backoff: options.xdsBackoff,
    onConnectionChange: (up) => {
      stats.controlPlaneConnected = up;
    },
    handlers: {
      [TypeUrl.Cluster]: (version, resources) => {
        const errors: string[] = [];
        const next = compileAll(resources, version, compileCluster, clusterConfigs, 'Cluster', errors);
        clusters.applyClusters(new Map([...next].map(([k, v]) => [k, v.compiled])));
        clusterConfigs.clear();
        for (const [k, v] of next) clusterConfigs.set(k, v);
        const edsNames = clusters.edsServiceNames();
        for (const key of endpointRaw.keys()) if (!edsNames.includes(key)) endpointRaw.delete(key);
        xds.subscribe(TypeUrl.ClusterLoadAssignment, edsNames);
        cdsReceived = true;
        noteType(TypeUrl.Cluster, version, errors);
        startInitialTimer();
        checkReady();
        return errors;
      },
      [TypeUrl.ClusterLoadAssignment]: (version, resources) => {
        const errors: string[] = [];
        for (const r of resources) {
          const result = compileLoadAssignment(r.raw, version);
          if (!result.valid) {
            errors.push(...result.errors);
            continue;
          }
          const prev = endpointRaw.get(r.name);
          if (prev && JSON.stringify(prev.raw) === JSON.stringify(r.raw)) {
            prev.version = version;
            continue;
          }
          clusters.applyAssignment(result.result);
          endpointRaw.set(r.name, { version, raw: r.raw, lastUpdated: now() });
        }
        noteType(TypeUrl.ClusterLoadAssignment, version, errors);
        checkReady();
        return errors;
      },
      [TypeUrl.Listener]: async (version, resources) => {
        const errors: string[] = [];
        const next = compileAll(resources, version, compileListener, listeners, 'Listener', errors);
        const { errors: bindErrors, applied } = await listenerManager.apply(new Map([...next].map(([k, v]) => [k, v.compiled])));
        errors.push(...bindErrors);
        const previous = new Map(listeners);
        listeners.clear();
        for (const [k, v] of next) {
          const compiled = applied.get(k);
          if (compiled === v.compiled) listeners.set(k, v);
          else if (compiled && previous.get(k)?.compiled === compiled) listeners.set(k, previous.get(k)!);
        }
        const routeNames = new Set<string>();
        for (const l of listeners.values()) for (const n of l.compiled.routeConfigNames) routeNames.add(n);
        for (const name of routes.keys()) if (!routeNames.has(name)) routes.delete(name);
        xds.subscribe(TypeUrl.RouteConfiguration, routeNames);
        ldsReceived = true;
        noteType(TypeUrl.Listener, version, errors);
        startInitialTimer();
        checkReady();
        return errors;
      },
      [TypeUrl.RouteConfiguration]: (version, resources) => {
        const errors: string[] = [];
        for (const r of resources) {
          const prev = routes.get(r.name);
          if (prev && JSON.stringify(prev.raw) === JSON.stringify(r.raw)) {
            prev.version = version;
            continue;
          }
          const result = compileRouteConfig(r.raw, version);
          if (result.valid) routes.set(r.name, { compiled: result.result, version, raw: r.raw, lastUpdated: now() });
          else errors.push(...result.errors);
        }
        noteType(TypeUrl.RouteConfiguration, version, errors);
        checkReady();
        return errors;
      },
    },
  });

  // Admin on loopback only; health and Prometheus on the workload address.
  const adminHost = isLoopback(options.bindAddress) ? options.bindAddress : '127.0.0.1';
  let closing: Promise<void> | null = null;
  const configDump = () => ({
    configs: [
      {
        '@type': 'type.googleapis.com/envoy.admin.v3.BootstrapConfigDump',
        bootstrap: { node: { id: options.node.id, cluster: options.node.cluster, metadata: options.node.metadata, user_agent_name: 'weft' } },
      },
      {
        '@type': 'type.googleapis.com/envoy.admin.v3.ClustersConfigDump',
        version_info: stats.xdsType('CDS').version,
        dynamic_active_clusters: [...clusterConfigs.values()].map((c) => ({
          version_info: c.version,
          cluster: { '@type': TypeUrl.Cluster, ...c.raw },
          last_updated: c.lastUpdated,
        })),
      },
      {
        '@type': 'type.googleapis.com/envoy.admin.v3.ListenersConfigDump',
        version_info: stats.xdsType('LDS').version,
        dynamic_listeners: [...listeners.values()].map((l) => ({
          name: l.compiled.name,
          active_state: { version_info: l.version, listener: { '@type': TypeUrl.Listener, ...l.raw }, last_updated: l.lastUpdated },
        })),
      },
      {
        '@type': 'type.googleapis.com/envoy.admin.v3.RoutesConfigDump',
        dynamic_route_configs: [...routes.values()].map((r) => ({
          version_info: r.version,
          route_config: { '@type': TypeUrl.RouteConfiguration, ...r.raw },
          last_updated: r.lastUpdated,
        })),
      },
      {
        '@type': 'type.googleapis.com/envoy.admin.v3.EndpointsConfigDump',
        dynamic_endpoint_configs: [...endpointRaw.values()].map((e) => ({
          version_info: e.version,
          endpoint_config: { '@type': TypeUrl.ClusterLoadAssignment, ...e.raw },
          last_updated: e.lastUpdated,
        })),
      },
    ],
    xds_status: xds.status(),
  });
  const adminSource = {
    state: () => state,
    configDump,
    stats,
    clusters,
    listeners: () => listenerManager.bound(),
    serverInfo: () => ({ version: 'weft/0.1.0', state, node: options.node, uptime_seconds: Math.round(process.uptime()), xds: xds.status() }),
    quit: () => void close(5_000),
    drainListeners: () => listenerManager.drain(),
  };
  const servers: http.Server[] = [];
  try {
    servers.push(await listenHttp(createAdminHandler(adminSource), adminHost, ports.admin));
    servers.push(await listenHttp(createPrometheusHandler(stats, clusters), options.bindAddress, ports.stats));
    servers.push(await listenHttp(createHealthHandler(() => state), options.bindAddress, ports.health));
  } catch (err) {
    for (const s of servers) s.close();
    throw new Error(`cannot start the proxy's admin/stats/health servers on ${options.bindAddress}: ${(err as Error).message}`);
  }
  const [adminServer, statsServer, healthServer] = servers;

  async function close(graceMs = 5_000): Promise<void> {
    if (closing) return closing;
    closing = (async () => {
      state = 'DRAINING';
      logger.info('proxy_draining', { grace_ms: graceMs });
      if (initialTimer) clearTimeout(initialTimer);
      rejectReady(new Error('proxy closed before it was ready'));
      xds.close();
      // Past the grace period the listeners cut their connections; each stream then aborts its
      // upstream request itself.
      await listenerManager.close(graceMs);
      clusters.close();
      accessLogs.close();
      await Promise.all(servers.map((s) => new Promise<void>((r) => {
        s.close(() => r());
        s.closeAllConnections();
      })));
      logger.info('proxy_stopped');
      resolveClosed();
    })();
    return closing;
  }

  xds.start();
  return {
    ready,
    closed,
    ports: { admin: boundPort(adminServer), stats: boundPort(statsServer), health: boundPort(healthServer) },
    adminAddress: adminHost,
    state: () => state,
    listenerPort: (name) => listenerManager.port(name),
    listeners: () => listenerManager.bound(),
    configDump,
    xdsStatus: () => xds.status(),
    close,
  };
}
