// `weft iptables`: istio-iptables for Weft — installs (or with --cleanup removes) the NAT rules
// that redirect a network namespace's TCP into its sidecar (src/capture/iptables-rules.ts).
import { captureRules, DEFAULT_PROXY_ID, parseCidrList, parsePortList, ruleText, type CaptureRulesOptions } from '../capture/iptables-rules';
import { CliError, parseCommandArgs, UsageError } from './cli-errors';
import type { CliIo } from './cli-io';

export const IPTABLES_USAGE = `Usage: weft iptables [options]            install capture in this network namespace
       weft iptables --cleanup [--dry-run]  remove exactly what it installed

Like Istio's istio-iptables (REDIRECT mode), in the nat table of the current network namespace
(run it inside the workload's namespace, e.g. \`ip netns exec NS weft iptables ...\`): outbound TCP
goes to the sidecar's 15001, inbound TCP to 15006, except the proxy's own traffic (owner uid/gid),
the app's loopback traffic, the proxy's ports, and what the lists below exclude. Rules live in
Weft's own chains WEFT_OUTPUT, WEFT_REDIRECT, WEFT_INBOUND and WEFT_IN_REDIRECT, jumped to from
OUTPUT and PREROUTING. IPv4 only. Needs root (CAP_NET_ADMIN) and iptables.

Options:
  -p, --envoy-port PORT                 outbound capture port (default 15001)
  -z, --inbound-capture-port PORT       inbound capture port (default 15006)
  -u, --proxy-uid UIDS                  the proxy's uid(s), comma list; "" for none (default 1337)
  -g, --proxy-gid GIDS                  the proxy's gid(s), comma list (default: the uids)
  -i, --include-outbound-ip-ranges L    CIDRs to capture, or "*" (default "*")
  -x, --exclude-outbound-ip-ranges L    CIDRs never captured
  -b, --include-inbound-ports L         inbound ports to capture, or "*" (default "*")
  -d, --exclude-inbound-ports L         inbound ports never captured (15000, 15001, 15006, 15008,
                                        15020, 15021, 15090 always are)
  -o, --exclude-outbound-ports L        outbound ports never captured
      --cleanup                         remove Weft's chains and the jumps to them
      --dry-run                         print the iptables commands instead of running them
`;

function ids(text: string, flag: string): number[] {
  if (text.trim() === '') return [];
  return text.split(',').map((p) => {
    const n = Number(p.trim());
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag}: "${p.trim()}" is not a numeric id`, IPTABLES_USAGE);
    return n;
  });
}

function port(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UsageError(`${flag}: "${text}" is not a port`, IPTABLES_USAGE);
  return n;
}

/** The rules' options from istio-iptables' flags (shared with `weft run --netns`). */
export function captureOptionsFromFlags(v: Record<string, string | boolean | undefined>): CaptureRulesOptions {
  const str = (k: string, d: string) => (typeof v[k] === 'string' ? (v[k] as string) : d);
  try {
    const proxyUids = ids(str('proxy-uid', String(DEFAULT_PROXY_ID)), '--proxy-uid');
    const gidText = typeof v['proxy-gid'] === 'string' ? (v['proxy-gid'] as string) : proxyUids.join(',');
    const options: CaptureRulesOptions = {
      outboundPort: port(str('envoy-port', '15001'), '--envoy-port'),
      inboundPort: port(str('inbound-capture-port', '15006'), '--inbound-capture-port'),
      proxyUids,
      proxyGids: ids(gidText, '--proxy-gid'),
      includeOutboundCidrs: parseCidrList(str('include-outbound-ip-ranges', '*'), '--include-outbound-ip-ranges', true),
      excludeOutboundCidrs: parseCidrList(str('exclude-outbound-ip-ranges', ''), '--exclude-outbound-ip-ranges', false) as string[],
      includeInboundPorts: parsePortList(str('include-inbound-ports', '*'), '--include-inbound-ports', true),
      excludeInboundPorts: parsePortList(str('exclude-inbound-ports', ''), '--exclude-inbound-ports', false) as number[],
      excludeOutboundPorts: parsePortList(str('exclude-outbound-ports', ''), '--exclude-outbound-ports', false) as number[],
    };
    if (options.proxyUids.length === 0 && options.proxyGids.length === 0) {
      throw new UsageError("give the proxy's --proxy-uid or --proxy-gid: without one the proxy's own traffic would be captured too", IPTABLES_USAGE);
    }
    return options;
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new UsageError((err as Error).message, IPTABLES_USAGE);
  }
}

export const CAPTURE_FLAG_OPTIONS = {
  'envoy-port': { type: 'string', short: 'p' },
  'inbound-capture-port': { type: 'string', short: 'z' },
  'proxy-uid': { type: 'string', short: 'u' },
  'proxy-gid': { type: 'string', short: 'g' },
  'include-outbound-ip-ranges': { type: 'string', short: 'i' },
  'exclude-outbound-ip-ranges': { type: 'string', short: 'x' },
  'include-inbound-ports': { type: 'string', short: 'b' },
  'exclude-inbound-ports': { type: 'string', short: 'd' },
  'exclude-outbound-ports': { type: 'string', short: 'o' },
} as const;

export async function runIptables(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs(argv, { ...CAPTURE_FLAG_OPTIONS, cleanup: { type: 'boolean' }, 'dry-run': { type: 'boolean' } }, IPTABLES_USAGE);
  const { cleanupRules } = await import('../capture/iptables-rules');
  const { installCapture, removeCapture, IptablesError } = await import('../capture/iptables');
  try {
    if (values.cleanup) {
      if (values['dry-run']) {
        const { jumps, chains } = cleanupRules();
        for (const r of [...jumps, ...chains]) io.out(ruleText('iptables', r) + '\n');
        return 0;
      }
      const ran = removeCapture();
      io.out(ran.length ? `weft iptables: removed capture (${ran.length} commands)\n` : 'weft iptables: no capture rules were installed\n');
      return 0;
    }
    const options = captureOptionsFromFlags(values);
    if (values['dry-run']) {
      for (const r of captureRules(options)) io.out(ruleText('iptables', r) + '\n');
      return 0;
    }
    const rules = installCapture(options);
    io.out(`weft iptables: installed capture (${rules.length} commands): outbound -> ${options.outboundPort}, inbound -> ${options.inboundPort}\n`);
    return 0;
  } catch (err) {
    if (err instanceof IptablesError) throw new CliError(err.message);
    throw err;
  }
}
