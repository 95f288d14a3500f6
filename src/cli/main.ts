// The `weft` command: one entry point, one small module per subcommand, loaded only when used (so
// `weft get` does not load the control plane). Exit status: 0 ok, 1 error, 2 usage.
import { CliError, UsageError } from './cli-errors';
import { processIo, type CliIo } from './cli-io';

const VERSION: string = require('../../../package.json').version;

interface Command {
  summary: string;
  /** The command's usage text and runner, loaded on demand. */
  load(): Promise<{ usage: string; run(argv: string[], io: CliIo): Promise<number> }>;
}

const COMMANDS: Record<string, Command> = {
  control: {
    summary: 'run the control plane (xDS on 127.0.0.1:15010, CA and mTLS xDS on :15012, HTTP on :15014)',
    load: async () => {
      const m = await import('./control');
      return { usage: m.CONTROL_USAGE, run: (argv) => m.runControl(argv) };
    },
  },
  demo: {
    summary: 'run the Bookinfo sample as a mesh on this machine (gateway on 127.0.0.1:8080)',
    load: async () => {
      const m = await import('./demo');
      return { usage: m.DEMO_USAGE, run: m.runDemo };
    },
  },
  proxy: {
    summary: 'run the Weft proxy for a WorkloadEntry (sidecar) or as a gateway',
    load: async () => {
      const m = await import('./proxy');
      return { usage: m.PROXY_USAGE, run: m.runProxy };
    },
  },
  iptables: {
    summary: 'install (or --cleanup) the iptables rules that capture a network namespace into its sidecar',
    async load() {
      const m = await import('./iptables');
      return { usage: m.IPTABLES_USAGE, run: m.runIptables };
    },
  },
  run: {
    summary: 'run your own application beside a sidecar for a WorkloadEntry (HTTP_PROXY set)',
    load: async () => {
      const m = await import('./run');
      return { usage: m.RUN_USAGE, run: m.runRun };
    },
  },
  apply: {
    summary: 'validate and apply resources to the running control plane',
    load: async () => {
      const m = await import('./apply');
      return { usage: m.APPLY_USAGE, run: m.runApply };
    },
  },
  get: {
    summary: 'list resources the control plane accepted (table, yaml, json)',
    load: async () => {
      const m = await import('./get');
      return { usage: m.GET_USAGE, run: m.runGet };
    },
  },
  delete: {
    summary: 'delete resources by file or by kind and name',
    load: async () => {
      const m = await import('./delete');
      return { usage: m.DELETE_USAGE, run: m.runDelete };
    },
  },
  history: {
    summary: 'list config versions: every accepted change, with its source and message',
    load: async () => {
      const m = await import('./history');
      return { usage: m.HISTORY_USAGE, run: m.runHistory };
    },
  },
  diff: {
    summary: 'show what changed between two config versions (default: the last change)',
    load: async () => {
      const m = await import('./diff');
      return { usage: m.DIFF_USAGE, run: m.runDiff };
    },
  },
  rollback: {
    summary: 'restore an earlier config version as a new one (default: undo the last change)',
    load: async () => {
      const m = await import('./rollback');
      return { usage: m.ROLLBACK_USAGE, run: m.runRollback };
    },
  },
  rollout: {
    summary: 'shift a service to a new subset step by step, rolling back when it gets worse',
    load: async () => {
      const m = await import('./rollout');
      return { usage: m.ROLLOUT_USAGE, run: m.runRollout };
    },
  },
  route: {
    summary: 'what-if: how a request would be routed (proxy, VirtualService rule, destinations, policies)',
    load: async () => {
      const m = await import('./route');
      return { usage: m.ROUTE_USAGE, run: m.runRoute };
    },
  },
  'proxy-status': {
    summary: 'every connected proxy and its xDS sync state (SYNCED, STALE, NACK)',
    load: async () => {
      const m = await import('./proxy-status');
      return { usage: m.PROXY_STATUS_USAGE, run: m.runProxyStatus };
    },
  },
  dashboard: {
    summary: "print (or --open) the URL of the control plane's dashboard: service graph, signals, sync",
    load: async () => {
      const m = await import('./dashboard');
      return { usage: m.DASHBOARD_USAGE, run: m.runDashboard };
    },
  },
  'proxy-config': {
    summary: "a proxy's clusters, listeners, routes or endpoints, from its admin endpoint",
    load: async () => {
      const m = await import('./proxy-config');
      return { usage: m.PROXY_CONFIG_USAGE, run: m.runProxyConfig };
    },
  },
  analyze: {
    summary: 'validate Istio YAML files or directories offline',
    load: async () => {
      const m = await import('./analyze');
      return {
        usage: m.ANALYZE_USAGE,
        run: async (argv, io) => {
          if (argv.length === 0) throw new UsageError('give one or more files or directories', m.ANALYZE_USAGE);
          return m.runAnalyze(argv, (line) => io.out(line + '\n'));
        },
      };
    },
  },
  token: {
    summary: 'write a bootstrap token file for a gateway or other proxy without a WorkloadEntry',
    load: async () => {
      const m = await import('./token');
      return { usage: m.TOKEN_USAGE, run: m.runToken };
    },
  },
  version: {
    summary: 'print the client and control plane versions',
    load: async () => {
      const m = await import('./version');
      return { usage: m.VERSION_USAGE, run: m.runVersion };
    },
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}   ${c.summary}`);
  return `weft — a service mesh that speaks Istio

Usage: weft <command> [options]

Commands:
${lines.join('\n')}

Commands that talk to a running control plane take --control HOST:PORT (or $WEFT_CONTROL;
default 127.0.0.1:15014).
Run 'weft <command> --help' for a command's options.
`;
}

/** `--help` / `-h` anywhere before a `--`. */
function wantsHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const topic = name === 'help' && rest[0] ? COMMANDS[rest[0]] : undefined;
    io.out(topic ? (await topic.load()).usage : usage());
    return 0;
  }
  if (name === '--version') {
    io.out(`weft ${VERSION}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.err(`weft: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  const { usage: commandUsage, run } = await command.load();
  if (wantsHelp(rest)) {
    io.out(commandUsage);
    return 0;
  }
  try {
    return await run(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`error: ${err.message}\n\n${err.usage ?? commandUsage}`);
      return err.exitCode;
    }
    if (err instanceof CliError) {
      io.err(err.bare ? `${err.message}\n` : `error: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`weft: ${err.message}\n`);
      process.exit(1);
    },
  );
}
