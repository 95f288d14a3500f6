// The Weft proxy: wires the ADS client to the compiled config, the listeners, the clusters and
// the admin/stats/health servers. `startProxy` is the whole public API (the CLI wraps it).
//
// Config flow: each xDS response is compiled (every error collected) and applied; valid
// resources take effect, invalid ones keep their last good version, and the response is NACKed
// with all errors. Listener and cluster updates happen in place so in-flight requests finish on
// the config they started with. Losing the control plane changes nothing that is serving.
//
// Identity: the certificate agent (identity/) gets the workload certificate from the control
// plane's CA into the secret store, which serves the SDS names `default` and `ROOTCA` that TLS
// settings refer to. Config naming them is refused (NACK) when there is no agent, and the proxy is
// not ready until the secrets it needs are there.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import type * as http from 'node:http';
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { AUTHORIZATION_METADATA } from '../ca/ca-protocol';
import { createLogger, type Logger } from '../log/logger';
import { SHORT_TYPE_NAMES, TypeUrl } from '../xds/protos';
import { AccessLogWriters, type RequestRecord } from './access-log';
import { boundPort, startAdminServers, type AdminSource, type ServerState } from './admin';
import { compileCluster } from './config/cluster';
import { secretRefsOf, type SdsSecretRef } from './config/common-tls-context';
import { compileLoadAssignment } from './config/endpoints';
import { compileListener } from './config/listener';
import type { CompiledCluster, CompiledListener, CompiledRouteConfig } from './config/model';
import { compileRouteConfig } from './config/route-config';
import type { Json, Validation } from './config/validation';
import { caChannelOptions, CertificateAgent, type AgentStatus } from './identity/certificate-agent';
import { certsView, SecretStore, secretsConfigDump } from './identity/secret-store';
import { SecureContextCache } from './identity/secure-contexts';
import { spiffeId } from '../ca/spiffe';
import type { HttpRuntime } from './http/http-stream';
import { ListenerManager } from './listener/listener-manager';
import type { Destination } from './listener/listener-server';
import { EventLoopDelay } from './event-loop-delay';
import { ProxyStats } from './stats';
import { Tracer } from './tracing/tracer';
import { ProxyTelemetry } from './telemetry/proxy-telemetry';
import { ClusterManager } from './upstream/cluster-manager';
import { XdsClient, type ReceivedResource, type ResourceHandler } from './xds-client';

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

/** The workload identity agent: where the CA is and what the proxy proves itself with. */
export interface ProxyIdentityOptions {
  /** host:port of the CA (the control plane's secure port). */
  caAddress: string;
  /** The mesh root certificate (PEM file): trusted for the CA and the control plane. */
  rootCertPath: string;
  /** The workload's bootstrap token (JWT file). */
  tokenPath: string;
  /** Default "cluster.local". */
  trustDomain?: string;
  namespace: string;
  serviceAccount: string;
  /** Requested certificate lifetime (the CA may shorten it). Default 24h. */
  certTtlSeconds?: number;
  /** Retry backoff of failed CA requests (ms). */
  backoff?: { initialMs: number; maxMs: number };
}

/** ADS over the control plane's secure port: TLS verified with the mesh root, the workload certificate as client certificate, and the bootstrap token. */
export interface XdsMutualTls {
  rootCertPath: string;
  tokenPath: string;
  /** Name the control plane's certificate is checked against (default: the IP, or istiod.istio-system.svc). */
  serverName?: string;
}

export interface ProxyOptions {
  /** Control plane ADS address, host:port. */
  xdsAddress: string;
  /** Mutual TLS on the ADS channel; absent: plaintext. Needs the workload certificate (identity or secrets). */
  xdsMutualTls?: XdsMutualTls;
  /** Run the certificate agent; absent: no agent (config needing SDS `default`/`ROOTCA` is refused unless `secrets` serves them). */
  identity?: ProxyIdentityOptions;
  /** A secret store filled by the caller instead of the agent (tests, or certificates managed elsewhere). */
  secrets?: SecretStore;
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
  /** Istio's standard metrics and metadata exchange (default true); false: neither (benchmarks). */
  telemetry?: boolean;
  /** Where config comes from (default: the ADS client). Multi-process proxies (workers/) plug in here. */
  configSource?: ConfigSourceFactory;
  /** false: compile and check listeners (NACKing as usual) but bind none: worker processes serve them. */
  serveListeners?: boolean;
  /** false: no admin, stats or health servers (a worker process: its primary serves them). */
  adminServers?: boolean;
}

/** What feeds compiled config into a proxy: the ADS client, or (in a worker process) its primary. */
export interface ConfigSource {
  start(): void;
  close(): void;
  /** The EDS/RDS names the applied config refers to. */
  subscribe(type: TypeUrl, names: Iterable<string>): void;
  /** Connect now if waiting (the certificate the channel needs arrived). */
  retryNow(): void;
  status(): ReturnType<XdsClient['status']>;
}

export interface ConfigSourceInit {
  /** Per xDS type: compiles and applies one resource set, returning every error (empty: ACK). */
  handlers: Partial<Record<TypeUrl, ResourceHandler>>;
  onConnectionChange(up: boolean): void;
  /** The ADS client startProxy makes by default, with these handlers (a primary wraps them). */
  xds(handlers: Partial<Record<TypeUrl, ResourceHandler>>): XdsClient;
  /** The resources of one type in effect now, as received (invalid ones are never here). */
  applied(type: TypeUrl): ReceivedResource[];
}

export type ConfigSourceFactory = (init: ConfigSourceInit) => ConfigSource;

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
  /** The SDS secrets the proxy serves (`default`, `ROOTCA`), when it has an identity. */
  readonly secrets: SecretStore | undefined;
  /** The certificate agent's state, when it runs. */
  identityStatus(): AgentStatus | undefined;
  /** Stop accepting, let in-flight requests finish within `graceMs`, then stop. */
  close(graceMs?: number): Promise<void>;
  /** What the admin endpoints show (a multi-process primary serves it with its workers' stats merged). */
  readonly admin: AdminSource;
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
  const eventLoop = new EventLoopDelay();
  stats.eventLoop = eventLoop;
  const secrets = options.secrets ?? (options.identity ? new SecretStore() : undefined);
  const secureContexts = new SecureContextCache(secrets);
  const agent = options.identity
    ? new CertificateAgent({
        caAddress: options.identity.caAddress,
        rootCertPath: options.identity.rootCertPath,
        tokenPath: options.identity.tokenPath,
        identity: spiffeId(options.identity.trustDomain ?? 'cluster.local', options.identity.namespace, options.identity.serviceAccount),
        ttlSeconds: options.identity.certTtlSeconds ?? 24 * 3600,
        store: secrets!,
        logger,
        backoff: options.identity.backoff,
        random,
      })
    : undefined;
  if (options.xdsMutualTls && !secrets) {
    throw new Error('mutual TLS to the control plane needs the workload certificate: enable the identity agent (a CA address) or use a plaintext xDS address');
  }
  const clusters = new ClusterManager(random, secureContexts);
  const accessLogs = new AccessLogWriters();
  const telemetry =
    options.telemetry === false
      ? undefined
      : new ProxyTelemetry({ node: options.node, clusters, principal: () => secrets?.certificate('default')?.facts.uriSans[0] });
  stats.istio = telemetry?.metrics;
  const routes = new Map<string, Applied<CompiledRouteConfig>>();
  const listeners = new Map<string, Applied<CompiledListener>>();
  const clusterConfigs = new Map<string, Applied<CompiledCluster>>();
  const endpointRaw = new Map<string, { version: string; raw: Json; lastUpdated: string }>();
  const tracer = new Tracer({ nodeId: options.node.id, clusters, logger, random });
  const runtime: HttpRuntime = {
    clusters,
    routeConfig: (name) => routes.get(name)?.compiled,
    stats,
    accessLogs,
    onRequest: options.onRequest,
    random,
    logger,
    activeFaults: { count: 0 },
    telemetry,
    tracer,
  };
  const portOverrides = new Map<number, number>(Object.entries(options.listenerPorts ?? {}).map(([k, v]) => [Number(k), v]));
  if (!portOverrides.has(15001)) portOverrides.set(15001, ports.outbound);
  if (!portOverrides.has(15006)) portOverrides.set(15006, ports.inbound);
  const listenerManager = new ListenerManager(
    { bindAddress: options.bindAddress, portOverrides, drainMs: options.listenerDrainMs ?? 5_000 },
    { runtime, originalDestination: options.originalDestination, secureContexts },
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

  /** SDS secrets the applied config names (clusters' and listeners' TLS). */
  const neededSecrets = (): Set<string> => {
    const names = new Set<string>();
    for (const c of clusterConfigs.values()) for (const r of clusterSecretRefs(c.compiled)) names.add(r.name);
    for (const l of listeners.values()) for (const r of listenerSecretRefs(l.compiled)) names.add(r.name);
    return names;
  };
  let waitingForSecretsLogged = false;
  const checkReady = () => {
    if (state !== 'PRE_INITIALIZING' || !ldsReceived || !cdsReceived) return;
    // Unlike RDS/EDS, no timeout makes the proxy ready without the certificates its config needs
    // (Istio's SDS initial_fetch_timeout is 0s: wait).
    const missing = [...neededSecrets()].filter((n) => !secrets?.has(n));
    if (missing.length) {
      if (!waitingForSecretsLogged) logger.info('waiting_for_secrets', { secrets: missing, identity: agent?.status().identity });
      waitingForSecretsLogged = true;
      return;
    }
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

  /** Config naming SDS secrets that nothing here serves is refused, naming the field. */
  const withSecretsCheck =
    <T>(compile: (raw: Json, version: string) => Validation<T>, refsOf: (compiled: T) => SdsSecretRef[], kind: string) =>
    (raw: Json, version: string): Validation<T> => {
      const result = compile(raw, version);
      if (!result.valid) return result;
      const errors = refsOf(result.result)
        .filter((r) => !secrets?.serves(r.name))
        .map(
          (r) =>
            `${kind} "${raw.name ?? ''}": ${r.path}: SDS secret "${r.name}" comes from the proxy's identity agent, which is disabled (hint: give weft proxy a CA address instead of --ca-address none)`,
        );
      return errors.length ? { valid: false, errors } : result;
    };
  const compileClusterChecked = withSecretsCheck(compileCluster, clusterSecretRefs, 'Cluster');
  const compileListenerChecked = withSecretsCheck(compileListener, listenerSecretRefs, 'Listener');

  const onConnectionChange = (up: boolean) => {
    stats.controlPlaneConnected = up;
  };
  const makeXdsClient = (handlers: Partial<Record<TypeUrl, ResourceHandler>>) =>
    new XdsClient({
      address: options.xdsAddress,
      security: options.xdsMutualTls ? xdsChannelSecurity(options.xdsAddress, options.xdsMutualTls, secrets!, logger) : undefined,
      node: options.node,
      logger,
      backoff: options.xdsBackoff,
      onConnectionChange,
      handlers,
    });
  const appliedResources = (type: TypeUrl): ReceivedResource[] => {
    const map: Map<string, { raw: Json }> =
      type === TypeUrl.Cluster ? clusterConfigs : type === TypeUrl.Listener ? listeners : type === TypeUrl.RouteConfiguration ? routes : endpointRaw;
    return [...map].map(([name, a]) => ({ name, raw: a.raw }));
  };
  const handlers: Partial<Record<TypeUrl, ResourceHandler>> = {
    [TypeUrl.Cluster]: (version, resources) => {
      const errors: string[] = [];
      const next = compileAll(resources, version, compileClusterChecked, clusterConfigs, 'Cluster', errors);
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
      const next = compileAll(resources, version, compileListenerChecked, listeners, 'Listener', errors);
      const compiledListeners = new Map([...next].map(([k, v]) => [k, v.compiled]));
      const { errors: bindErrors, applied } =
        options.serveListeners === false ? { errors: [], applied: compiledListeners } : await listenerManager.apply(compiledListeners);
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
  };
  const xds: ConfigSource = options.configSource
    ? options.configSource({ handlers, onConnectionChange, xds: makeXdsClient, applied: appliedResources })
    : makeXdsClient(handlers);

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
      secretsConfigDump(secrets),
    ],
    xds_status: xds.status(),
  });
  const adminSource: AdminSource = {
    state: () => state,
    configDump,
    stats,
    clusters,
    listeners: () => listenerManager.bound(),
    serverInfo: () => ({ version: 'weft/0.1.0', state, node: options.node, uptime_seconds: Math.round(process.uptime()), xds: xds.status(), identity: agent?.status() }),
    certs: () => certsView(secrets),
    extraStats: () => [...tlsStatLines(listenerManager), ...tracer.statLines()],
    quit: () => void close(5_000),
    drainListeners: () => listenerManager.drain(),
  };
  const adminServers = options.adminServers === false ? undefined : await startAdminServers(adminSource, { adminHost, bindAddress: options.bindAddress, ports });
  const servers: http.Server[] = adminServers ? [adminServers.admin, adminServers.stats, adminServers.health] : [];

  async function close(graceMs = 5_000): Promise<void> {
    if (closing) return closing;
    closing = (async () => {
      state = 'DRAINING';
      logger.info('proxy_draining', { grace_ms: graceMs });
      if (initialTimer) clearTimeout(initialTimer);
      rejectReady(new Error('proxy closed before it was ready'));
      xds.close();
      agent?.close();
      eventLoop.close();
      // Past the grace period the listeners cut their connections; each stream then aborts its
      // upstream request itself.
      await listenerManager.close(graceMs);
      clusters.close();
      accessLogs.close();
      await tracer.close();
      await Promise.all(servers.map((s) => new Promise<void>((r) => {
        s.close(() => r());
        s.closeAllConnections();
      })));
      logger.info('proxy_stopped');
      resolveClosed();
    })();
    return closing;
  }

  secrets?.on('update', (name) => {
    checkReady();
    // mutual-TLS xDS waits for the first certificate: connect as soon as it is there.
    if (name === 'default' && options.xdsMutualTls) xds.retryNow();
  });
  agent?.start();
  xds.start();
  return {
    ready,
    closed,
    ports: adminServers
      ? { admin: boundPort(adminServers.admin), stats: boundPort(adminServers.stats), health: boundPort(adminServers.health) }
      : { admin: 0, stats: 0, health: 0 },
    adminAddress: adminHost,
    state: () => state,
    listenerPort: (name) => listenerManager.port(name),
    listeners: () => listenerManager.bound(),
    configDump,
    xdsStatus: () => xds.status(),
    secrets,
    identityStatus: () => agent?.status(),
    close,
    admin: adminSource,
  };
}

function clusterSecretRefs(c: CompiledCluster): SdsSecretRef[] {
  return [...secretRefsOf(c.tls), ...(c.transportSocketMatches ?? []).flatMap((m) => secretRefsOf(m.tls))];
}

function listenerSecretRefs(l: CompiledListener): SdsSecretRef[] {
  return [...l.filterChains, ...(l.defaultFilterChain ? [l.defaultFilterChain] : [])].flatMap((c) => secretRefsOf(c.tls));
}

/** Envoy's listener.<name>.ssl.* counters for /stats. */
function tlsStatLines(listenerManager: ListenerManager): string[] {
  const lines: string[] = [];
  for (const { name, stats } of listenerManager.tlsStats()) {
    const p = `listener.${name}.ssl`;
    lines.push(`${p}.handshake: ${stats.handshakes}`, `${p}.session_reused: ${stats.sessionReused}`, `${p}.connection_error: ${stats.connectionErrors}`);
    lines.push(`${p}.fail_verify_no_cert: ${stats.noCertificate}`);
    lines.push(`${p}.fail_verify_error: ${stats.verifyErrors}`, `${p}.secret_not_ready: ${stats.secretNotReady}`);
  }
  return lines;
}

/**
 * ADS over mutual TLS: the mesh root verifies the control plane, the workload certificate (the
 * store's current `default`) authenticates the proxy, and the bootstrap token goes along as
 * Istio's agent sends it. The key follows the certificate version, so a rotation makes the next
 * stream use the new certificate.
 */
function xdsChannelSecurity(address: string, m: XdsMutualTls, secrets: SecretStore, logger: Logger) {
  return {
    credentials: () => {
      const cert = secrets.certificate('default');
      if (!cert) return undefined;
      let root: Buffer;
      try {
        root = fs.readFileSync(m.rootCertPath);
      } catch (err) {
        logger.warn('xds_root_unreadable', { path: m.rootCertPath, error: (err as Error).message });
        return undefined;
      }
      return {
        key: `${cert.version}:${createHash('sha256').update(root).digest('hex')}`,
        credentials: grpc.credentials.createSsl(root, Buffer.from(cert.privateKeyPem), Buffer.from(cert.certChainPem)),
        channelOptions: caChannelOptions(address, m.serverName),
      };
    },
    metadata: () => {
      const metadata = new grpc.Metadata();
      try {
        metadata.set(AUTHORIZATION_METADATA, `Bearer ${fs.readFileSync(m.tokenPath, 'utf8').trim()}`);
      } catch {
        // The client certificate is enough for the control plane; the token is a second credential.
      }
      return metadata;
    },
  };
}
