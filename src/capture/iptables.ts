// Runs the capture rules (iptables-rules.ts) with the system's iptables, in the current network
// namespace or, with `netns`, inside a named one (`ip netns exec`). Failures are errors that say
// what the kernel or the tool said and what to do about it.
import { spawnSync } from 'node:child_process';
import { CHAINS, captureRules, cleanupRules, ruleText, type CaptureRulesOptions, type Rule } from './iptables-rules';

export class IptablesError extends Error {
  readonly code = 'ERR_WEFT_IPTABLES';
}

export interface IptablesTarget {
  /** Run inside this named network namespace (ip netns exec); default: the current one. */
  netns?: string;
  /** The iptables command (default "iptables"). */
  command?: string;
}

function argvFor(target: IptablesTarget, rule: Rule): string[] {
  const cmd = target.command ?? 'iptables';
  return target.netns ? ['ip', 'netns', 'exec', target.netns, cmd, ...rule] : [cmd, ...rule];
}

function hintFor(stderr: string): string {
  if (/permission denied|you must be root|Operation not permitted/i.test(stderr)) {
    return 'hint: changing netfilter rules needs root (CAP_NET_ADMIN) in this network namespace';
  }
  if (/table does not exist|can't initialize|Could not fetch rule set|Protocol not supported|No such file or directory.*nf_tables/i.test(stderr)) {
    return "hint: the kernel's NAT table is not available (modules nf_nat / iptable_nat, or nf_tables)";
  }
  if (/No chain\/target\/match by that name|Couldn't load (match|target)/i.test(stderr)) {
    return 'hint: a netfilter extension (REDIRECT, owner) is missing from this kernel';
  }
  return '';
}

/** Runs one rule; returns stderr on failure (never throws for a failed rule). */
function run(target: IptablesTarget, rule: Rule): { ok: boolean; stderr: string } {
  const [cmd, ...args] = argvFor(target, rule);
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) {
    const missing = (r.error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new IptablesError(
      missing ? `${cmd} not found (hint: install it, e.g. \`apt-get install iptables\`${cmd === 'ip' ? ' iproute2' : ''})` : `cannot run ${cmd}: ${r.error.message}`,
    );
  }
  return { ok: r.status === 0, stderr: (r.stderr ?? '').trim() };
}

/** Whether Weft's chains are present (so capture is installed, fully or in part). */
export function captureInstalled(target: IptablesTarget = {}): boolean {
  return run(target, ['-t', 'nat', '-n', '-L', CHAINS.output]).ok || run(target, ['-t', 'nat', '-n', '-L', CHAINS.inbound]).ok;
}

/** Installs capture. Refuses when Weft's chains already exist; on a failed rule removes what it added. */
export function installCapture(options: CaptureRulesOptions, target: IptablesTarget = {}): Rule[] {
  const probe = run(target, ['-t', 'nat', '-n', '-L', 'OUTPUT']);
  if (!probe.ok) throw new IptablesError(`cannot read the nat table: ${probe.stderr} ${hintFor(probe.stderr)}`.trim());
  if (captureInstalled(target)) {
    throw new IptablesError(`capture rules are already installed here (chain ${CHAINS.output}) (hint: \`weft iptables --cleanup\` first)`);
  }
  const rules = captureRules(options);
  for (const rule of rules) {
    const r = run(target, rule);
    if (!r.ok) {
      removeCapture(target);
      throw new IptablesError(`${ruleText(target.command ?? 'iptables', rule)} failed: ${r.stderr} ${hintFor(r.stderr)}`.trim());
    }
  }
  return rules;
}

/** Removes exactly what installCapture added (whatever of it is there). Returns what it ran. */
export function removeCapture(target: IptablesTarget = {}): Rule[] {
  const { jumps, chains } = cleanupRules();
  const ran: Rule[] = [];
  for (const jump of jumps) {
    // A jump may have been added once; delete until it is gone (at most a few times).
    for (let i = 0; i < 8 && run(target, jump).ok; i++) ran.push(jump);
  }
  for (const rule of chains) {
    const r = run(target, rule);
    if (r.ok) ran.push(rule);
    else if (!/No chain\/target\/match|does not exist|No such file/i.test(r.stderr)) {
      throw new IptablesError(`${ruleText(target.command ?? 'iptables', rule)} failed: ${r.stderr} ${hintFor(r.stderr)}`.trim());
    }
  }
  return ran;
}

/** `iptables-save -t nat` of the target namespace (tests compare before/after). */
export function saveNatTable(target: IptablesTarget = {}): string {
  const args = target.netns ? ['netns', 'exec', target.netns, 'iptables-save', '-t', 'nat'] : ['-t', 'nat'];
  const r = spawnSync(target.netns ? 'ip' : 'iptables-save', args, { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new IptablesError(`iptables-save failed: ${r.error?.message ?? r.stderr}`);
  return r.stdout;
}
