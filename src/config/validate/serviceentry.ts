// ServiceEntry (networking.istio.io): structural schema plus Istio's ValidateServiceEntry semantics
// (hosts, addresses, ports, resolution vs endpoints, workload selector).
import type { ServiceEntrySpec, ServicePort, WorkloadEntrySpec } from '../resources';
import { childPath, indexPath, ProblemCode, type ProblemCollector } from '../problems';
import {
  fqdnError,
  ipSubnetError,
  isHttpProtocol,
  isIpAddress,
  isTlsProtocol,
  partialWildcardError,
  parseProtocol,
  portError,
  wildcardDomainError,
} from './formats';
import { arrayOf, enumOf, integer, mapOf, object, string, type Schema } from './schema';
import { exportToList, portNameError, protocolName, report } from './shared-fields';
import { checkWorkloadEntry, workloadEntryFields } from './workloadentry';

const servicePortSchema: Schema = object<ServicePort>(
  {
    number: integer({ min: 0, max: 4294967295 }),
    protocol: protocolName(),
    name: string(),
    targetPort: integer({ min: 0, max: 4294967295 }),
  },
  {
    required: ['number', 'name'],
    check: (port, path, problems) => {
      report(problems, childPath(path, 'number'), portError(port.number));
      report(problems, childPath(path, 'name'), portNameError(port.name));
      if (port.targetPort) report(problems, childPath(path, 'targetPort'), portError(port.targetPort));
    },
  },
);

/** ServiceEntry's workloadSelector (`labels`, unlike the `matchLabels` of newer APIs). */
const seWorkloadSelector: Schema = object(
  { labels: mapOf(string()) },
  {
    check: (selector: { labels?: Record<string, string> }, path, problems) => {
      const labels = selector.labels ?? {};
      for (const [key, value] of Object.entries(labels)) {
        const at = childPath(childPath(path, 'labels'), key);
        if (key === '') problems.error(ProblemCode.InvalidValue, at, `empty key is not supported in selector: "=${value}"`);
        if (key.includes('*') || value.includes('*'))
          problems.error(ProblemCode.InvalidValue, at, `wildcard is not supported in selector: "${key}=${value}"`);
      }
      if (Object.keys(labels).length === 0) {
        problems.warn(
          ProblemCode.SuspiciousConfig,
          path,
          'service entry: workload selector specified without labels, will be applied to all services in namespace',
        );
      }
    },
  },
);

function checkServiceEntry(entry: ServiceEntrySpec, path: string, problems: ProblemCollector): void {
  const at = (field: string) => childPath(path, field);
  const resolution = entry.resolution ?? 'NONE';
  const endpoints = entry.endpoints ?? [];
  const ports = entry.ports ?? [];

  if (entry.workloadSelector && entry.endpoints) {
    problems.error(
      ProblemCode.ConflictingFields,
      at('endpoints'),
      'only one of workloadSelector or endpoints is allowed in a ServiceEntry',
    );
  }

  entry.hosts.forEach((host, i) => {
    const hostPath = indexPath(at('hosts'), i);
    if (host === '*') {
      problems.error(ProblemCode.InvalidValue, hostPath, 'invalid host *: a ServiceEntry cannot capture every host');
      return;
    }
    report(problems, hostPath, wildcardDomainError(host));
    const partial = partialWildcardError(host);
    if (partial) problems.warn(ProblemCode.SuspiciousConfig, hostPath, partial);
  });

  let cidrFound = false;
  (entry.addresses ?? []).forEach((address, i) => {
    cidrFound ||= address.includes('/');
    report(problems, indexPath(at('addresses'), i), ipSubnetError(address));
  });
  if (cidrFound && resolution !== 'NONE' && resolution !== 'STATIC') {
    problems.error(ProblemCode.ConflictingFields, at('addresses'), 'CIDR addresses are allowed only for NONE/STATIC resolution types');
  }

  const portNames = new Set<string>();
  const portNumbers = new Set<number>();
  ports.forEach((port, i) => {
    if (portNames.has(port.name))
      problems.error(
        ProblemCode.DuplicateEntry,
        childPath(indexPath(at('ports'), i), 'name'),
        `service entry port name ${JSON.stringify(port.name)} already defined`,
      );
    if (portNumbers.has(port.number))
      problems.error(
        ProblemCode.DuplicateEntry,
        childPath(indexPath(at('ports'), i), 'number'),
        `service entry port ${port.number} already defined`,
      );
    portNames.add(port.name);
    portNumbers.add(port.number);
  });

  switch (resolution) {
    case 'NONE':
      if (endpoints.length > 0)
        problems.error(ProblemCode.ConflictingFields, at('endpoints'), 'no endpoints should be provided for resolution type NONE');
      if (entry.workloadSelector)
        problems.warn(
          ProblemCode.SuspiciousConfig,
          at('workloadSelector'),
          'workloadSelector should not be set when resolution mode is NONE',
        );
      break;
    case 'STATIC':
      endpoints.forEach((endpoint, i) =>
        checkWorkloadEntry(endpoint as WorkloadEntrySpec, indexPath(at('endpoints'), i), problems, {
          servicePorts: portNames,
          allowFqdnAddress: false,
        }),
      );
      break;
    case 'DNS':
    case 'DNS_ROUND_ROBIN':
      if (endpoints.length === 0) {
        entry.hosts.forEach((host, i) => {
          // '*' and malformed names are reported above; a wildcard name cannot be resolved.
          if (host !== '*' && host.startsWith('*') && !wildcardDomainError(host)) {
            problems.error(
              ProblemCode.InvalidValue,
              indexPath(at('hosts'), i),
              `hosts must be FQDN if no endpoints are provided for resolution mode ${resolution} (wildcard ${JSON.stringify(host)} cannot be resolved)`,
            );
          }
        });
      }
      if (resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1) {
        problems.error(ProblemCode.InvalidValue, at('endpoints'), `there must only be 0 or 1 endpoint for resolution mode ${resolution}`);
      }
      endpoints.forEach((endpoint, i) => checkDnsEndpoint(endpoint, indexPath(at('endpoints'), i), portNames, problems));
      if ((entry.addresses?.length ?? 0) > 0 && entry.hosts.length > 1 && ports.some((p) => isTcpOnlyProtocol(p.protocol))) {
        problems.warn(
          ProblemCode.SuspiciousConfig,
          at('hosts'),
          'service entry can not have more than one host specified simultaneously with address and tcp port',
        );
      }
      break;
  }

  // Plain TCP cannot tell hosts apart (no Host header, no SNI) unless the hosts are ignored (NONE).
  if (resolution !== 'NONE' && entry.hosts.length > 1) {
    const index = ports.findIndex((p) => !isHttpProtocol(p.protocol) && !isTlsProtocol(p.protocol));
    if (index >= 0) {
      problems.error(ProblemCode.InvalidValue, indexPath(at('ports'), index), 'multiple hosts provided with non-HTTP, non-TLS ports');
    }
  }
}

function isTcpOnlyProtocol(protocol: string | undefined): boolean {
  const p = protocol ? parseProtocol(protocol) : undefined;
  return p === 'TCP' || p === 'HTTPS' || p === 'TLS' || p === 'Mongo' || p === 'Redis' || p === 'MySQL';
}

function checkDnsEndpoint(endpoint: WorkloadEntrySpec, path: string, servicePorts: ReadonlySet<string>, problems: ProblemCollector): void {
  const address = endpoint.address ?? '';
  if (!isIpAddress(address) && fqdnError(address)) {
    problems.error(
      ProblemCode.InvalidValue,
      childPath(path, 'address'),
      `endpoint address ${JSON.stringify(address)} is not a valid FQDN or an IP address`,
    );
  }
  for (const [name, port] of Object.entries(endpoint.ports ?? {})) {
    const at = childPath(childPath(path, 'ports'), name);
    if (!servicePorts.has(name))
      problems.error(
        ProblemCode.InvalidValue,
        at,
        `endpoint port ${name} is not defined by the service entry (its ports are: ${[...servicePorts].join(', ') || 'none'})`,
      );
    report(problems, at, portError(port));
  }
}

export const serviceEntrySpec: Schema = object<ServiceEntrySpec>(
  {
    hosts: arrayOf(string()),
    addresses: arrayOf(string()),
    ports: arrayOf(servicePortSchema),
    location: enumOf(['MESH_EXTERNAL', 'MESH_INTERNAL']),
    resolution: enumOf(['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN']),
    endpoints: arrayOf(object(workloadEntryFields)),
    workloadSelector: seWorkloadSelector,
    exportTo: exportToList(true),
    subjectAltNames: arrayOf(string()),
  },
  { required: ['hosts'], check: checkServiceEntry },
);
