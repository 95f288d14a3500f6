// WorkloadEntry (networking.istio.io): structural schema plus Istio's validateWorkloadEntry semantics.
// ServiceEntry endpoints share the same shape and checks.
import type { WorkloadEntrySpec } from '../resources';
import { childPath, ProblemCode, type ProblemCollector } from '../problems';
import { fqdnError, isIpAddress, portError, UNIX_ADDRESS_PREFIX, unixAddressError } from './formats';
import { integer, mapOf, object, string, type Schema } from './schema';
import { labelMap, portNameError, report } from './shared-fields';

export const workloadEntryFields = {
  address: string(),
  ports: mapOf(integer(), { key: (name, path, problems) => report(problems, path, portNameError(name)) }),
  labels: labelMap(),
  network: string(),
  locality: string(),
  weight: integer({ min: 0, max: 4294967295 }),
  serviceAccount: string(),
};

export interface WorkloadEntryContext {
  /** Names of the owning ServiceEntry's ports; endpoint ports must use them. */
  servicePorts?: ReadonlySet<string>;
  /** Whether the address may be a host name (DNS resolution) rather than an IP. */
  allowFqdnAddress: boolean;
}

/** Istio's validateWorkloadEntry. */
export function checkWorkloadEntry(
  entry: WorkloadEntrySpec,
  path: string,
  problems: ProblemCollector,
  context: WorkloadEntryContext,
): void {
  const address = entry.address ?? '';
  const addressPath = childPath(path, 'address');
  if (address === '') {
    if (!entry.network) {
      problems.error(
        ProblemCode.MissingRequiredField,
        addressPath,
        'address is required (or set network for a workload in another network)',
      );
      return;
    }
    problems.warn(ProblemCode.SuspiciousConfig, addressPath, `address is unset with network ${JSON.stringify(entry.network)}`);
  }
  const ports = entry.ports ?? {};
  const isUnix = address.startsWith(UNIX_ADDRESS_PREFIX);
  if (isUnix) {
    report(problems, addressPath, unixAddressError(address.slice(UNIX_ADDRESS_PREFIX.length)));
    if (Object.keys(ports).length > 0)
      problems.error(ProblemCode.ConflictingFields, childPath(path, 'ports'), `unix endpoint ${address} must not include ports`);
  } else if (address !== '' && !isIpAddress(address)) {
    if (!context.allowFqdnAddress) {
      problems.error(
        ProblemCode.InvalidValue,
        addressPath,
        `endpoint address ${JSON.stringify(address)} is not a valid IP address (STATIC resolution needs IPs or unix:// paths)`,
      );
    } else if (fqdnError(address)) {
      problems.error(
        ProblemCode.InvalidValue,
        addressPath,
        `endpoint address ${JSON.stringify(address)} is not a valid FQDN or an IP address`,
      );
    }
  }
  for (const [name, port] of Object.entries(ports)) {
    const at = childPath(childPath(path, 'ports'), name);
    if (context.servicePorts && !context.servicePorts.has(name)) {
      problems.error(
        ProblemCode.InvalidValue,
        at,
        `endpoint port ${name} is not defined by the service entry (its ports are: ${[...context.servicePorts].join(', ') || 'none'})`,
      );
    }
    report(problems, at, portError(port));
  }
  if (isUnix && context.servicePorts && context.servicePorts.size !== 1) {
    problems.error(ProblemCode.InvalidValue, addressPath, 'exactly 1 service port required for unix endpoints');
  }
}

export const workloadEntrySpec: Schema = object<WorkloadEntrySpec>(workloadEntryFields, {
  check: (entry, path, problems) => checkWorkloadEntry(entry, path, problems, { allowFqdnAddress: true }),
});
