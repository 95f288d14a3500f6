// Kubernetes core/v1 Service: how a service is declared on plain machines. Checks the parts Kubernetes'
// own validation enforces and Weft relies on: ports, port names, target ports, selector labels.
import type { KubeServicePort, KubeServiceSpec } from '../resources';
import { childPath, indexPath, ProblemCode, type ProblemCollector } from '../problems';
import { ipAddressError, kubernetesLabelNameError, portError } from './formats';
import { anyValue, arrayOf, boolean, enumOf, integer, intOrString, object, string, type Schema } from './schema';
import { labelMap, report } from './shared-fields';

/** IANA_SVC_NAME: a named container port, e.g. "http" (at most 15 characters, at least one letter). */
function ianaServiceNameError(name: string): string | undefined {
  if (name.length > 15 || !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(name) || name.includes('--') || !/[a-z]/.test(name)) {
    return `targetPort ${JSON.stringify(name)} must be a port number or an IANA service name (at most 15 lowercase letters, digits and '-', with a letter)`;
  }
  return undefined;
}

const servicePortSchema: Schema = object<KubeServicePort & { nodePort?: number }>(
  {
    name: string(),
    protocol: enumOf(['TCP', 'UDP', 'SCTP']),
    appProtocol: string(),
    port: integer(),
    targetPort: intOrString({
      check: (target, path, problems) =>
        report(problems, path, typeof target === 'number' ? portError(target) : ianaServiceNameError(target)),
    }),
    nodePort: integer({ min: 0, max: 65535 }),
  },
  {
    required: ['port'],
    check: (port, path, problems) => {
      report(problems, childPath(path, 'port'), portError(port.port));
      if (port.name) report(problems, childPath(path, 'name'), kubernetesLabelNameError(port.name, 'port name'));
    },
  },
);

function checkService(spec: KubeServiceSpec & { externalName?: string }, path: string, problems: ProblemCollector): void {
  const ports = spec.ports ?? [];
  const headless = spec.clusterIP === 'None';
  if (ports.length === 0 && !headless && spec.type !== 'ExternalName') {
    problems.error(
      ProblemCode.MissingRequiredField,
      childPath(path, 'ports'),
      'ports is required (at least one port), unless the service is headless (clusterIP: None) or ExternalName',
    );
  }
  const names = new Set<string>();
  const portProtocols = new Set<string>();
  ports.forEach((port, i) => {
    const at = indexPath(childPath(path, 'ports'), i);
    if (ports.length > 1 && !port.name) {
      problems.error(
        ProblemCode.MissingRequiredField,
        childPath(at, 'name'),
        'port name is required when a service has more than one port',
      );
    }
    if (port.name) {
      if (names.has(port.name))
        problems.error(ProblemCode.DuplicateEntry, childPath(at, 'name'), `duplicate port name ${JSON.stringify(port.name)}`);
      names.add(port.name);
    }
    const key = `${port.port}/${port.protocol ?? 'TCP'}`;
    if (portProtocols.has(key)) problems.error(ProblemCode.DuplicateEntry, at, `duplicate port ${key}`);
    portProtocols.add(key);
  });
  if (spec.type === 'ExternalName' && !spec.externalName) {
    problems.error(
      ProblemCode.MissingRequiredField,
      childPath(path, 'externalName'),
      'externalName is required for an ExternalName service',
    );
  }
  if (spec.clusterIP && spec.clusterIP !== 'None') report(problems, childPath(path, 'clusterIP'), ipAddressError(spec.clusterIP));
}

export const serviceSpec: Schema = object(
  {
    ports: arrayOf(servicePortSchema),
    selector: labelMap(),
    clusterIP: string(),
    clusterIPs: arrayOf(string()),
    type: enumOf(['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName']),
    externalIPs: arrayOf(string()),
    sessionAffinity: enumOf(['None', 'ClientIP']),
    sessionAffinityConfig: anyValue(),
    loadBalancerIP: string(),
    loadBalancerSourceRanges: arrayOf(string()),
    loadBalancerClass: string(),
    externalName: string(),
    externalTrafficPolicy: enumOf(['Cluster', 'Local']),
    internalTrafficPolicy: enumOf(['Cluster', 'Local']),
    healthCheckNodePort: integer(),
    publishNotReadyAddresses: boolean(),
    ipFamilies: arrayOf(enumOf(['IPv4', 'IPv6'])),
    ipFamilyPolicy: enumOf(['SingleStack', 'PreferDualStack', 'RequireDualStack']),
    allocateLoadBalancerNodePorts: boolean(),
    trafficDistribution: string(),
  },
  { check: checkService },
);
