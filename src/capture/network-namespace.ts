// Network namespaces for captured workloads (`weft run --netns`): a bridge the tool manages
// (default `weft0`, 10.250.0.1/24), and per workload a namespace with a veth pair whose inside end
// is `eth0` with the WorkloadEntry's address and a default route via the bridge. The control
// plane keeps listening on the host's loopback: DNAT on the bridge (route_localnet on the bridge
// only) makes <bridge address>:<port> reach 127.0.0.1:<port> for the control plane's ports, so
// sidecars inside namespaces dial `istiod.istio-system.svc` (the hosts file maps it to the
// bridge address). Everything created here is named for Weft and removed by the same module.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export class NetnsError extends Error {
  readonly code = 'ERR_WEFT_NETNS';
}

export interface BridgeSpec {
  /** Interface name (at most 15 characters). */
  name: string;
  /** The bridge's own address (the namespaces' gateway). */
  address: string;
  /** Prefix length of the bridge network. */
  prefixLength: number;
}

export const DEFAULT_BRIDGE: BridgeSpec = { name: 'weft0', address: '10.250.0.1', prefixLength: 24 };

/** Parses `10.250.0.1/24` into a bridge spec with `name`. */
export function parseBridge(name: string, cidr: string): BridgeSpec {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(cidr);
  if (!m || Number(m[2]) < 8 || Number(m[2]) > 30) throw new NetnsError(`bridge address "${cidr}" is not ADDRESS/PREFIX (e.g. 10.250.0.1/24)`);
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name)) throw new NetnsError(`bridge name "${name}" is not an interface name of at most 15 characters`);
  return { name, address: m[1], prefixLength: Number(m[2]) };
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, o) => (n << 8) + Number(o), 0) >>> 0;
}

/** Whether `ip` is a host address of the bridge's network other than the bridge's own. */
export function inBridgeNetwork(bridge: BridgeSpec, ip: string): boolean {
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) return false;
  const mask = bridge.prefixLength === 0 ? 0 : (~0 << (32 - bridge.prefixLength)) >>> 0;
  const net = ipToInt(bridge.address) & mask;
  const host = ipToInt(ip);
  return (host & mask) === net && host !== ipToInt(bridge.address) && (host & ~mask) !== 0 && (host | mask) >>> 0 !== 0xffffffff;
}

interface Run {
  ok: boolean;
  stdout: string;
  stderr: string;
}

function sh(cmd: string, args: string[]): Run {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) {
    if ((r.error as NodeJS.ErrnoException).code === 'ENOENT') throw new NetnsError(`${cmd} not found (hint: apt-get install ${cmd === 'ip' ? 'iproute2' : cmd})`);
    throw new NetnsError(`cannot run ${cmd}: ${r.error.message}`);
  }
  return { ok: r.status === 0, stdout: r.stdout ?? '', stderr: (r.stderr ?? '').trim() };
}

function must(cmd: string, args: string[]): string {
  const r = sh(cmd, args);
  if (!r.ok) {
    const hint = /Operation not permitted|Permission denied/i.test(r.stderr) ? ' (hint: network namespaces need root, CAP_SYS_ADMIN and CAP_NET_ADMIN)' : '';
    throw new NetnsError(`${cmd} ${args.join(' ')} failed: ${r.stderr}${hint}`);
  }
  return r.stdout;
}

function linkExists(name: string): boolean {
  return sh('ip', ['link', 'show', 'dev', name]).ok;
}

/** The host nat chain holding the bridge's DNAT to the control plane (iptables names: 28 chars). */
function bridgeChain(bridge: BridgeSpec): string {
  return `WEFT_BR_${bridge.name}`.slice(0, 28);
}

/**
 * Creates the bridge when missing (tolerating a concurrent creator) and makes the control plane's
 * loopback ports reachable at the bridge address. Returns whether this call created it.
 */
export function ensureBridge(bridge: BridgeSpec, controlPorts: readonly number[]): boolean {
  let created = false;
  if (!linkExists(bridge.name)) {
    const r = sh('ip', ['link', 'add', bridge.name, 'type', 'bridge']);
    if (!r.ok && !/File exists/.test(r.stderr)) throw new NetnsError(`cannot create bridge ${bridge.name}: ${r.stderr} (hint: needs root)`);
    created = r.ok;
  }
  const addr = sh('ip', ['addr', 'add', `${bridge.address}/${bridge.prefixLength}`, 'dev', bridge.name]);
  if (!addr.ok && !/File exists|already assigned/.test(addr.stderr)) throw new NetnsError(`cannot address bridge ${bridge.name}: ${addr.stderr}`);
  must('ip', ['link', 'set', bridge.name, 'up']);
  // Packets arriving on this bridge (only) may be DNATed to 127.0.0.1.
  try {
    fs.writeFileSync(`/proc/sys/net/ipv4/conf/${bridge.name}/route_localnet`, '1');
  } catch (err) {
    throw new NetnsError(`cannot set route_localnet on ${bridge.name}: ${(err as Error).message}`);
  }
  const chain = bridgeChain(bridge);
  const n = sh('iptables', ['-t', 'nat', '-N', chain]);
  if (!n.ok && !/exists/i.test(n.stderr)) throw new NetnsError(`iptables -t nat -N ${chain} failed: ${n.stderr}`);
  const jump = ['-t', 'nat', 'PREROUTING', '-i', bridge.name, '-j', chain];
  if (!sh('iptables', [jump[0], jump[1], '-C', ...jump.slice(2)]).ok) must('iptables', [jump[0], jump[1], '-A', ...jump.slice(2)]);
  for (const port of controlPorts) {
    const rule = [chain, '-d', `${bridge.address}/32`, '-p', 'tcp', '--dport', String(port), '-j', 'DNAT', '--to-destination', `127.0.0.1:${port}`];
    if (!sh('iptables', ['-t', 'nat', '-C', ...rule]).ok) must('iptables', ['-t', 'nat', '-A', ...rule]);
  }
  return created;
}

/** Deletes the bridge and its host rules when no veth is attached any more. Returns whether it did. */
export function removeBridgeIfUnused(bridge: BridgeSpec): boolean {
  if (!linkExists(bridge.name)) return false;
  const ports = sh('ip', ['-o', 'link', 'show', 'master', bridge.name]);
  if (ports.ok && ports.stdout.trim() !== '') return false;
  const chain = bridgeChain(bridge);
  while (sh('iptables', ['-t', 'nat', '-D', 'PREROUTING', '-i', bridge.name, '-j', chain]).ok) {
    /* every copy of the jump */
  }
  sh('iptables', ['-t', 'nat', '-F', chain]);
  sh('iptables', ['-t', 'nat', '-X', chain]);
  sh('ip', ['link', 'del', bridge.name]);
  return true;
}

export interface WorkloadNamespace {
  name: string;
  address: string;
  /** Host end of the veth pair. */
  hostVeth: string;
  /** Whether this process created the namespace (and so removes it). */
  created: boolean;
}

/** `ip netns` names: letters, digits, `-`, `_`, `.`. */
export function namespaceNameFor(workload: string, namespace: string): string {
  const base = `weft-${namespace === 'default' ? '' : `${namespace}-`}${workload}`.replace(/[^A-Za-z0-9_.-]/g, '-');
  return base.length <= 48 ? base : `${base.slice(0, 39)}-${createHash('sha256').update(base).digest('hex').slice(0, 8)}`;
}

export function namespaceExists(name: string): boolean {
  return fs.existsSync(path.join('/run/netns', name));
}

/**
 * Creates namespace `name` with `address` on eth0 (veth to the bridge) and a default route via
 * the bridge; joins it as it is when it already exists (created: false).
 */
export function createWorkloadNamespace(name: string, address: string, bridge: BridgeSpec): WorkloadNamespace {
  const tag = createHash('sha256').update(name).digest('hex').slice(0, 8);
  const hostVeth = `wv${tag}`;
  if (namespaceExists(name)) return { name, address, hostVeth, created: false };
  if (!inBridgeNetwork(bridge, address)) {
    throw new NetnsError(`the workload's address ${address} is not in the bridge network ${bridge.address}/${bridge.prefixLength} (hint: give the WorkloadEntry an address there, or pick the bridge with --bridge-address)`);
  }
  const peer = `wp${tag}`;
  must('ip', ['netns', 'add', name]);
  try {
    if (linkExists(hostVeth)) sh('ip', ['link', 'del', hostVeth]); // left by a crashed run
    must('ip', ['link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', peer]);
    must('ip', ['link', 'set', peer, 'netns', name]);
    must('ip', ['link', 'set', hostVeth, 'master', bridge.name]);
    must('ip', ['link', 'set', hostVeth, 'up']);
    must('ip', ['-n', name, 'link', 'set', peer, 'name', 'eth0']);
    must('ip', ['-n', name, 'addr', 'add', `${address}/${bridge.prefixLength}`, 'dev', 'eth0']);
    must('ip', ['-n', name, 'link', 'set', 'eth0', 'up']);
    must('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    must('ip', ['-n', name, 'route', 'add', 'default', 'via', bridge.address]);
  } catch (err) {
    removeWorkloadNamespace({ name, address, hostVeth, created: true });
    throw err;
  }
  return { name, address, hostVeth, created: true };
}

/** Deleting the namespace deletes its veth pair and its iptables rules; then its /etc/netns files. */
export function removeWorkloadNamespace(ns: WorkloadNamespace): void {
  if (!ns.created) return;
  sh('ip', ['netns', 'del', ns.name]);
  if (linkExists(ns.hostVeth)) sh('ip', ['link', 'del', ns.hostVeth]);
  fs.rmSync(path.join('/etc/netns', ns.name), { recursive: true, force: true });
}

/** Writes /etc/netns/<name>/hosts, which `ip netns exec <name>` bind-mounts over /etc/hosts. */
export function writeNamespaceHosts(name: string, text: string): void {
  const dir = path.join('/etc/netns', name);
  fs.mkdirSync(dir, { recursive: true });
  // In place, not by rename: processes already in the namespace hold a bind mount of this inode.
  fs.writeFileSync(path.join(dir, 'hosts'), text, { mode: 0o644 });
}
