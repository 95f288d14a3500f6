// The primary of a multi-process proxy (`weft proxy --concurrency N`, Envoy's --concurrency): one
// process owns the control-plane side — the ADS stream (one xDS node, one connection), the
// certificate agent, the admin (15000), Prometheus (15090) and health (15021) servers — and N
// worker processes (node:cluster, worker.ts) serve the data listeners, sharing the listening
// sockets. With SCHED_NONE the kernel hands each connection to a worker directly (no hop through
// the primary); NODE_CLUSTER_SCHED_POLICY=rr selects Node's round robin instead.
//
// Config has one compile/apply path: the primary runs startProxy itself with its listeners
// compiled but not bound, so it validates every response exactly as a single process does; after
// applying one it sends every worker the resources now in effect for that type (as received,
// never the invalid ones), the workers apply them with the same handlers and report what failed
// there (a port they cannot bind), and the primary ACKs or NACKs with all of it. A new or
// restarted worker is sent the secrets and everything in effect. Ready when every worker is.
import cluster, { type Worker } from 'node:cluster';
import type * as http from 'node:http';
import * as path from 'node:path';
import type { LogLevel } from '../../log/logger';
import { createLogger } from '../../log/logger';
import { SHORT_TYPE_NAMES, TypeUrl } from '../../xds/protos';
import { boundPort, localStatsLines, startAdminServers, type AdminSource, type ServerState } from '../admin';
import { DEFAULT_PORTS, startProxy, type ConfigSourceInit, type ProxyOptions, type RunningProxy } from '../proxy';
import type { ReceivedResource, ResourceHandler } from '../xds-client';
import { mergeClustersJson, mergeClustersText, mergePrometheus, mergeStatsLines } from './merge-stats';
import type { BoundListener, FromWorker, ToWorker, WorkerView } from './protocol';
import { PROXY_NODE_FLAGS } from '../node-flags';

export interface MultiProcessOptions extends ProxyOptions {
  /** Worker processes serving the data listeners (>= 1). */
  concurrency: number;
  /** Workers' log level (their lines carry `worker`: the slot index). */
  logLevel?: LogLevel;
  /** Longest wait for a worker's answer (config applied, stats rendered). Default 10 s. */
  workerTimeoutMs?: number;
}

/** Envoy's push order: a replacement worker gets clusters and endpoints before the listeners that use them. */
const REPLAY_ORDER = [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration] as const;

interface Slot {
  index: number;
  worker?: Worker;
  ready: boolean;
  listeners: BoundListener[];
  restarts: number;
  startedAt: number;
  /** Quick deaths in a row: the restart backoff. */
  failures: number;
  seq: number;
  pending: Map<number, { resolve(value: unknown): void; reject(err: Error): void; timer: NodeJS.Timeout }>;
  exited?: Promise<void>;
}

export async function startMultiProcessProxy(options: MultiProcessOptions): Promise<RunningProxy> {
  if (!cluster.isPrimary) throw new Error('startMultiProcessProxy runs in the primary process');
  const n = options.concurrency;
  if (!Number.isInteger(n) || n < 1) throw new Error(`concurrency must be a positive integer, not ${n}`);
  const logger = (options.logger ?? createLogger()).child({ component: 'workers', node: options.node.id });
  const timeoutMs = options.workerTimeoutMs ?? 10_000;
  const ports = { ...DEFAULT_PORTS, ...options.ports };

  // Node reads the policy when the first worker is forked; its own env knob wins (to compare).
  if (!process.env.NODE_CLUSTER_SCHED_POLICY) cluster.schedulingPolicy = cluster.SCHED_NONE;
  cluster.setupPrimary({ exec: path.join(__dirname, 'worker.js'), args: [], execArgv: [...process.execArgv.filter((a) => !a.startsWith('--max-semi-space-size')), ...PROXY_NODE_FLAGS] });

  const slots: Slot[] = Array.from({ length: n }, (_, index) => ({
    index,
    ready: false,
    listeners: [],
    restarts: 0,
    startedAt: 0,
    failures: 0,
    seq: 0,
    pending: new Map(),
  }));
  let closing: Promise<void> | null = null;
  let main: RunningProxy | undefined;
  /** Per type: the version of the last set sent (what a new worker is replayed with). */
  const versions = new Map<TypeUrl, string>();
  let applied: ConfigSourceInit['applied'] | undefined;

  const live = () => slots.filter((s) => s.worker && !s.worker.isDead());
  const post = (slot: Slot, message: ToWorker) => {
    if (slot.worker?.isConnected()) slot.worker.send(message);
  };
  /** Sends a request that a worker answers (config applied, view rendered); rejects past the timeout or if it dies. */
  const ask = <T>(slot: Slot, make: (seq: number) => ToWorker): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const seq = ++slot.seq;
      const timer = setTimeout(() => {
        slot.pending.delete(seq);
        reject(new Error(`worker ${slot.index} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      slot.pending.set(seq, { resolve: resolve as (v: unknown) => void, reject, timer });
      post(slot, make(seq));
    });

  const sendSecrets = (slot: Slot) => {
    for (const s of main?.secrets?.all() ?? []) {
      if (s.kind === 'certificate') post(slot, { kind: 'secret', name: s.name, certChainPem: s.certChainPem, privateKeyPem: s.privateKeyPem });
      else post(slot, { kind: 'trusted-ca', name: s.name, trustedCaPem: s.trustedCaPem });
    }
  };

  /** Sends one type's resources to every worker; resolves with the errors they found that the primary did not. */
  const broadcast = async (type: TypeUrl, version: string, resources: ReceivedResource[]): Promise<string[]> => {
    const results = await Promise.all(
      live().map((slot) =>
        ask<string[]>(slot, (seq) => ({ kind: 'config', seq, type, version, resources })).catch((err: Error) => {
          logger.warn('worker_config_unanswered', { worker: slot.index, type: SHORT_TYPE_NAMES[type], version, error: err.message });
          return [] as string[];
        }),
      ),
    );
    return [...new Set(results.flat())];
  };

  /** The ADS client, with each handler followed by the workers applying what the primary accepted. */
  const configSource = (init: ConfigSourceInit) => {
    applied = init.applied;
    const wrapped: Partial<Record<TypeUrl, ResourceHandler>> = {};
    for (const type of REPLAY_ORDER) {
      const handler = init.handlers[type];
      if (!handler) continue;
      wrapped[type] = async (version, resources) => {
        const errors = await handler(version, resources);
        versions.set(type, version);
        let accepted = init.applied(type);
        // EDS and RDS responses name their resources (absence is no removal): send those; CDS and
        // LDS are the whole set.
        if (type === TypeUrl.ClusterLoadAssignment || type === TypeUrl.RouteConfiguration) {
          const named = new Set(resources.map((r) => r.name));
          accepted = accepted.filter((r) => named.has(r.name));
        }
        const workerErrors = await broadcast(type, version, accepted);
        return [...errors, ...workerErrors.filter((e) => !errors.includes(e))];
      };
    }
    return init.xds(wrapped);
  };

  // The primary's own proxy: ADS, identity, validation; no data listeners, no servers (below).
  const mainStarted = startProxy({ ...options, logger: options.logger, serveListeners: false, adminServers: false, configSource });

  let resolveReady!: () => void;
  let rejectReady!: (err: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  ready.catch(() => undefined);
  let everReady = false;
  const checkReady = () => {
    if (everReady || closing || main?.state() !== 'LIVE' || !slots.every((s) => s.ready)) return;
    everReady = true;
    logger.info('workers_ready', { concurrency: n, pids: slots.map((s) => s.worker?.process.pid) });
    resolveReady();
  };

  const workerOptions = {
    node: options.node,
    bindAddress: options.bindAddress,
    ports: { outbound: ports.outbound, inbound: ports.inbound },
    listenerPorts: options.listenerPorts,
    telemetry: options.telemetry,
    initialFetchTimeoutMs: options.initialFetchTimeoutMs,
    listenerDrainMs: options.listenerDrainMs,
    secrets: Boolean(options.secrets || options.identity),
    logLevel: options.logLevel ?? 'info',
  };

  const fork = (slot: Slot) => {
    const worker = cluster.fork({ WEFT_WORKER_INDEX: String(slot.index) });
    slot.worker = worker;
    slot.ready = false;
    slot.listeners = [];
    slot.startedAt = Date.now();
    slot.exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', (m: FromWorker) => {
      if (slot.worker !== worker) return;
      switch (m.kind) {
        case 'ready':
          slot.ready = true;
          slot.listeners = m.listeners;
          checkReady();
          return;
        case 'applied':
        case 'rendered': {
          const p = slot.pending.get(m.seq);
          if (!p) return;
          slot.pending.delete(m.seq);
          clearTimeout(p.timer);
          if (m.kind === 'applied') {
            if (m.listeners.length) slot.listeners = m.listeners;
            p.resolve(m.errors);
          } else p.resolve(m.body);
          return;
        }
        case 'failed':
          logger.error('worker_failed', { worker: slot.index, pid: worker.process.pid, error: m.error });
          return;
      }
    });
    worker.once('exit', (code, signal) => {
      if (slot.worker !== worker) return;
      slot.worker = undefined;
      slot.ready = false;
      for (const [seq, p] of slot.pending) {
        clearTimeout(p.timer);
        p.reject(new Error(`worker ${slot.index} exited`));
        slot.pending.delete(seq);
      }
      if (closing) return;
      const lived = Date.now() - slot.startedAt;
      slot.failures = lived < 5_000 ? slot.failures + 1 : 0;
      const delay = slot.failures <= 1 ? 0 : Math.min(100 * 2 ** (slot.failures - 2), 10_000);
      slot.restarts++;
      logger.error('worker_exited', { worker: slot.index, pid: worker.process.pid, code, signal, lived_ms: lived, restarts: slot.restarts, restart_in_ms: delay });
      setTimeout(() => {
        if (!closing) fork(slot);
      }, delay).unref();
    });
    // The worker's start, then what it needs to serve: secrets first, then the config in effect.
    post(slot, { kind: 'start', index: slot.index, options: workerOptions });
    sendSecrets(slot);
    if (applied) {
      const fetch = applied;
      for (const type of REPLAY_ORDER) {
        const version = versions.get(type);
        if (version === undefined) continue;
        void ask<string[]>(slot, (seq) => ({ kind: 'config', seq, type, version, resources: fetch(type) })).then(
          (errors) => errors.length && logger.warn('worker_config_errors', { worker: slot.index, type: SHORT_TYPE_NAMES[type], version, errors }),
          () => undefined,
        );
      }
    }
  };

  for (const slot of slots) fork(slot);
  try {
    main = await mainStarted;
  } catch (err) {
    closing = Promise.resolve();
    for (const s of slots) s.worker?.kill('SIGKILL');
    throw err;
  }
  const primary = main;
  // Certificates the agent gets or renews reach every worker (Envoy's SDS push to its workers).
  primary.secrets?.on('update', () => {
    for (const slot of live()) sendSecrets(slot);
  });
  for (const slot of live()) sendSecrets(slot);
  primary.ready.then(checkReady, () => undefined);

  const state = (): ServerState => {
    if (closing) return 'DRAINING';
    const local = primary.state();
    if (local !== 'LIVE') return local;
    return slots.every((s) => s.ready) ? 'LIVE' : 'PRE_INITIALIZING';
  };
  const workerListeners = () => slots.find((s) => s.ready)?.listeners ?? slots.find((s) => s.listeners.length)?.listeners ?? [];

  /** Each live worker's rendering of `view` (a worker that cannot answer is left out, and logged). */
  const renderAll = async (view: WorkerView): Promise<string[]> => {
    const bodies = await Promise.all(
      live().map((slot) =>
        ask<string>(slot, (seq) => ({ kind: 'render', seq, view })).catch((err: Error) => {
          logger.warn('worker_stats_unanswered', { worker: slot.index, error: err.message });
          return undefined;
        }),
      ),
    );
    return bodies.filter((b): b is string => b !== undefined);
  };
  /** `?worker=N`: that worker's own view, unmerged. */
  const one = (query: URLSearchParams, view: WorkerView): Promise<string> | undefined => {
    const w = query.get('worker');
    if (w === null) return undefined;
    const slot = /^\d+$/.test(w) ? slots[Number(w)] : undefined;
    if (!slot) return Promise.reject(new Error(`worker must be one of 0..${n - 1}, not "${w}"`));
    if (!slot.worker || slot.worker.isDead()) return Promise.reject(new Error(`worker ${slot.index} is restarting`));
    return ask<string>(slot, (seq) => ({ kind: 'render', seq, view }));
  };

  const adminSource: AdminSource = {
    ...primary.admin,
    state,
    listeners: workerListeners,
    serverInfo: () => ({
      ...(primary.admin.serverInfo() as Record<string, unknown>),
      state: state(),
      concurrency: n,
      workers: slots.map((s) => ({ index: s.index, pid: s.worker?.process.pid, ready: s.ready, restarts: s.restarts })),
    }),
    quit: () => void close(5_000),
    drainListeners: () => {
      for (const slot of live()) post(slot, { kind: 'drain-listeners' });
    },
    workerViews: {
      statsLines: async (query) => {
        const single = one(query, 'stats');
        if (single) return (await single).split('\n');
        return mergeStatsLines(localStatsLines(primary.admin), (await renderAll('stats')).map((t) => t.split('\n')));
      },
      prometheus: async (query) => {
        const single = one(query, 'prometheus');
        if (single) return single;
        return mergePrometheus(primary.admin.stats.renderPrometheus(primary.admin.clusters), await renderAll('prometheus'));
      },
      clusters: async (query, json) => {
        const view = json ? 'clusters-json' : 'clusters';
        const single = one(query, view);
        const bodies = single ? [await single] : await renderAll(view);
        return json ? mergeClustersJson(bodies) : mergeClustersText(bodies);
      },
    },
  };
  const adminHost = primary.adminAddress;
  let servers: { admin: http.Server; stats: http.Server; health: http.Server };
  try {
    servers = await startAdminServers(adminSource, { adminHost, bindAddress: options.bindAddress, ports });
  } catch (err) {
    closing = primary.close(0);
    for (const s of slots) s.worker?.kill('SIGKILL');
    throw err;
  }

  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));

  function close(graceMs = 5_000): Promise<void> {
    if (closing) return closing;
    closing = (async () => {
      logger.info('workers_draining', { grace_ms: graceMs, workers: live().length });
      rejectReady(new Error('proxy closed before it was ready'));
      // Every worker stops accepting and lets in-flight requests finish; one that overstays is killed.
      await Promise.all(
        slots.map(async (slot) => {
          const worker = slot.worker;
          if (!worker || worker.isDead()) return;
          post(slot, { kind: 'shutdown', graceMs });
          const force = setTimeout(() => {
            logger.warn('worker_killed', { worker: slot.index, pid: worker.process.pid, hint: 'did not stop within the drain time' });
            worker.kill('SIGKILL');
          }, graceMs + 5_000);
          await slot.exited;
          clearTimeout(force);
        }),
      );
      await primary.close(0);
      await Promise.all(
        [servers.admin, servers.stats, servers.health].map(
          (s) =>
            new Promise<void>((r) => {
              s.close(() => r());
              s.closeAllConnections();
            }),
        ),
      );
      logger.info('workers_stopped');
      resolveClosed();
    })();
    return closing;
  }
  void primary.closed.then(() => void close(0));

  return {
    ready,
    closed,
    ports: { admin: boundPort(servers.admin), stats: boundPort(servers.stats), health: boundPort(servers.health) },
    adminAddress: adminHost,
    state,
    listenerPort: (name) => workerListeners().find((l) => l.name === name)?.port,
    listeners: workerListeners,
    configDump: () => primary.configDump(),
    xdsStatus: () => primary.xdsStatus(),
    secrets: primary.secrets,
    identityStatus: () => primary.identityStatus(),
    close,
    admin: adminSource,
  };
}

