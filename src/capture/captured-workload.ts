// Sets up and tears down one captured workload (what `weft run --netns` does around the
// processes): the bridge, the workload's network namespace, its hosts file and its capture rules.
// Teardown removes exactly what setup created: the namespace (and with it the veth pair and the
// rules) when it created it, only the rules when it joined an existing namespace, and the bridge
// when no other workload uses it.
import { installCapture, removeCapture } from './iptables';
import type { CaptureRulesOptions } from './iptables-rules';
import { hostsFileText, meshHostsEntries, type HostsEntry, type HostsService } from './mesh-hosts';
import {
  createWorkloadNamespace,
  ensureBridge,
  removeBridgeIfUnused,
  removeWorkloadNamespace,
  writeNamespaceHosts,
  type BridgeSpec,
  type WorkloadNamespace,
} from './network-namespace';

/** Names the sidecar dials the control plane by from inside a namespace (its serving certificate has them). */
export const CONTROL_PLANE_HOST = 'istiod.istio-system.svc';
const CONTROL_PLANE_ALIASES = [CONTROL_PLANE_HOST, 'weft-control'];

/** The proxy's group: the capture rules let its traffic out untouched (the app runs as another group). */
export const PROXY_GID = 1337;

export interface CapturedWorkloadOptions {
  netnsName: string;
  /** The WorkloadEntry's address (eth0 in the namespace). */
  address: string;
  workloadNamespace: string;
  bridge: BridgeSpec;
  /** Control plane ports on the host's loopback that namespaces must reach at the bridge address. */
  controlPorts: readonly number[];
  services: readonly HostsService[];
  rules: CaptureRulesOptions;
}

export class CapturedWorkload {
  private removed = false;
  private hostsText = '';

  private constructor(
    readonly ns: WorkloadNamespace,
    private readonly options: CapturedWorkloadOptions,
  ) {}

  /** Creates (or joins) the namespace and installs the rules; on failure undoes what it did. */
  static setUp(o: CapturedWorkloadOptions): CapturedWorkload {
    ensureBridge(o.bridge, o.controlPorts);
    let ns: WorkloadNamespace | undefined;
    try {
      ns = createWorkloadNamespace(o.netnsName, o.address, o.bridge);
      const w = new CapturedWorkload(ns, o);
      w.updateServices(o.services);
      installCapture(o.rules, { netns: ns.name });
      return w;
    } catch (err) {
      if (ns) {
        if (ns.created) removeWorkloadNamespace(ns);
        else removeCapture({ netns: ns.name });
      }
      removeBridgeIfUnused(o.bridge);
      throw err;
    }
  }

  /** Rewrites the namespace's hosts file when the mesh's services changed. */
  updateServices(services: readonly HostsService[]): boolean {
    const extra: HostsEntry[] = [{ address: this.options.bridge.address, names: CONTROL_PLANE_ALIASES }];
    const text = hostsFileText({
      hostname: this.ns.name,
      ownAddress: this.options.address,
      extra,
      mesh: meshHostsEntries(services, this.options.workloadNamespace),
    });
    if (text === this.hostsText) return false;
    writeNamespaceHosts(this.ns.name, text);
    this.hostsText = text;
    return true;
  }

  /** `ip netns exec` prefix for commands in the namespace. */
  exec(): string[] {
    return ['ip', 'netns', 'exec', this.ns.name];
  }

  tearDown(): void {
    if (this.removed) return;
    this.removed = true;
    if (this.ns.created) removeWorkloadNamespace(this.ns);
    else removeCapture({ netns: this.ns.name });
    removeBridgeIfUnused(this.options.bridge);
  }
}
