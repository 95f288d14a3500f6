// A worker process of a multi-process proxy (`weft proxy --concurrency N`): node:cluster forks it
// from the primary (workers/primary.ts). It runs the same startProxy as a single-process proxy,
// with two differences: its config source is the primary (over IPC, in place of the ADS client),
// and it serves no admin/stats/health ports (the primary does, merging every worker's stats). Its
// data listeners are shared with the other workers: node:cluster hands them the primary's
// listening sockets. Access logs and traces are written from here.
import { createLogger, type Logger } from '../../log/logger';
import { SHORT_TYPE_NAMES } from '../../xds/protos';
import { clustersJson, localStatsLines, renderClusters } from '../admin';
import { SecretStore } from '../identity/secret-store';
import { startProxy, type ConfigSource, type ConfigSourceInit, type RunningProxy } from '../proxy';
import type { FromWorker, ToWorker, WorkerView } from './protocol';

type ConfigMessage = Extract<ToWorker, { kind: 'config' }>;

/**
 * The worker's ConfigSource: resource sets the primary accepted, applied in arrival order by the
 * same handlers the ADS client would call; each result (errors such as a port that cannot be
 * bound) goes back to the primary, which NACKs with them. Subscriptions are the primary's business.
 */
export class IpcConfigSource implements ConfigSource {
  private handlers: ConfigSourceInit['handlers'] = {};
  private started = false;
  private closed = false;
  private readonly buffered: ConfigMessage[] = [];
  private queue: Promise<void> = Promise.resolve();
  private readonly states = new Map<string, { version: string; lastError?: string; received: boolean }>();

  constructor(
    private readonly reply: (seq: number, errors: string[]) => void,
    private readonly log: Logger,
  ) {}

  bind(init: ConfigSourceInit): this {
    this.handlers = init.handlers;
    return this;
  }

  deliver(message: ConfigMessage): void {
    if (this.started) this.enqueue(message);
    else this.buffered.push(message);
  }

  private enqueue(m: ConfigMessage): void {
    this.queue = this.queue.then(async () => {
      if (this.closed) return;
      const short = SHORT_TYPE_NAMES[m.type] ?? m.type;
      let errors: string[];
      try {
        const handler = this.handlers[m.type];
        errors = handler ? await handler(m.version, m.resources) : [`resource type ${m.type} is not supported by the Weft proxy`];
      } catch (err) {
        errors = [`applying ${short} ${m.version} failed: ${(err as Error).message}`];
      }
      const state = this.states.get(short) ?? { version: '', received: false };
      state.received = true;
      if (errors.length === 0) {
        state.version = m.version;
        state.lastError = undefined;
      } else {
        state.lastError = errors.join('; ');
        this.log.warn('worker_config_errors', { type: short, version: m.version, errors });
      }
      this.states.set(short, state);
      this.reply(m.seq, errors);
    });
  }

  start(): void {
    this.started = true;
    for (const m of this.buffered.splice(0)) this.enqueue(m);
  }

  close(): void {
    this.closed = true;
  }

  subscribe(): void {
    // The primary subscribes from its own (identical) config.
  }

  retryNow(): void {}

  status(): ReturnType<ConfigSource['status']> {
    return Object.fromEntries(this.states);
  }
}

function send(message: FromWorker): void {
  if (process.connected) process.send!(message);
}

function render(proxy: RunningProxy, view: WorkerView): string {
  const a = proxy.admin;
  switch (view) {
    case 'stats':
      return localStatsLines(a).join('\n');
    case 'prometheus':
      return a.stats.renderPrometheus(a.clusters);
    case 'clusters':
      return renderClusters(a.clusters);
    case 'clusters-json':
      return JSON.stringify(clustersJson(a.clusters));
  }
}

/** Runs this process as a worker: waits for `start`, then serves until `shutdown` or the primary goes away. */
export function runWorker(): void {
  let proxy: RunningProxy | undefined;
  let source: IpcConfigSource | undefined;
  let secrets: SecretStore | undefined;
  let log: Logger = createLogger();
  let stopping = false;
  // Early secrets and config wait for the proxy (IPC keeps their order).
  const early: ToWorker[] = [];
  const stop = (graceMs: number, code: number) => {
    if (stopping) return;
    stopping = true;
    void (proxy ? proxy.close(graceMs) : Promise.resolve()).finally(() => process.exit(code));
  };
  // Signals go to the primary, which drains the workers itself (a terminal's ^C reaches every
  // process of the group: the workers must not die before they are told to drain).
  process.on('SIGTERM', () => undefined);
  process.on('SIGINT', () => undefined);
  // The primary is gone: nobody will send config or ask for stats again.
  process.on('disconnect', () => stop(1_000, 0));

  const handle = (m: ToWorker) => {
    switch (m.kind) {
      case 'secret':
        secrets?.setCertificate(m.name, m.certChainPem, m.privateKeyPem);
        return;
      case 'trusted-ca':
        secrets?.setTrustedCa(m.name, m.trustedCaPem);
        return;
      case 'config':
        source?.deliver(m);
        return;
      case 'render':
        if (proxy) send({ kind: 'rendered', seq: m.seq, body: render(proxy, m.view) });
        else early.push(m);
        return;
      case 'drain-listeners':
        proxy?.admin.drainListeners();
        return;
      case 'shutdown':
        log.info('worker_draining', { grace_ms: m.graceMs });
        stop(m.graceMs, 0);
        return;
      case 'start':
        return;
    }
  };

  process.on('message', (m: ToWorker) => {
    if (m.kind !== 'start') {
      if (!source && m.kind !== 'shutdown') early.push(m);
      else handle(m);
      return;
    }
    const o = m.options;
    log = createLogger({ level: o.logLevel, fields: { worker: m.index } });
    secrets = o.secrets ? new SecretStore() : undefined;
    source = new IpcConfigSource((seq, errors) => send({ kind: 'applied', seq, errors, listeners: proxy?.listeners() ?? [] }), log);
    const configSource = source;
    // Secrets and config sent before `start` (renders wait for the proxy).
    for (const e of early.splice(0)) handle(e);
    startProxy({
      xdsAddress: '',
      node: o.node,
      bindAddress: o.bindAddress,
      ports: { ...o.ports, admin: 0, stats: 0, health: 0 },
      listenerPorts: o.listenerPorts,
      telemetry: o.telemetry,
      initialFetchTimeoutMs: o.initialFetchTimeoutMs,
      listenerDrainMs: o.listenerDrainMs,
      secrets,
      logger: log,
      configSource: (init) => configSource.bind(init),
      adminServers: false,
    }).then(
      (p) => {
        proxy = p;
        for (const e of early.splice(0)) handle(e);
        p.ready.then(
          () => send({ kind: 'ready', listeners: p.listeners() }),
          () => undefined,
        );
      },
      (err: Error) => {
        send({ kind: 'failed', error: err.message });
        process.exit(1);
      },
    );
  });
}

if (require.main === module) runWorker();
