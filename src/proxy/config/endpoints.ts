// ClusterLoadAssignment (EDS, or a cluster's inline load_assignment) -> CompiledLoadAssignment.
import type { CompiledEndpoint, CompiledLoadAssignment, HealthStatus } from './model';
import { endpointPeer } from '../telemetry/peer-metadata';
import type { TransportSocketMetadata } from './upstream-tls';
import { join, Problems, wrapped, type Json, type Validation } from './validation';

/** The metadata namespace transport_socket_matches are matched against (Envoy's name). */
export const TRANSPORT_SOCKET_MATCH_METADATA = 'envoy.transport_socket_match';

/** `metadata.filter_metadata['envoy.transport_socket_match']` of an endpoint or locality. */
function transportSocketMatchMetadata(metadata: Json | undefined, problems: Problems, path: string): Readonly<Record<string, unknown>> | undefined {
  if (!metadata) return undefined;
  // Other namespaces (istio workload names, lb subsets) are for filters the proxy does not run.
  problems.fields(metadata, path, ['filter_metadata'], ['typed_filter_metadata']);
  const value = (metadata.filter_metadata as Json | undefined)?.[TRANSPORT_SOCKET_MATCH_METADATA];
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    problems.add(join(join(path, 'filter_metadata'), TRANSPORT_SOCKET_MATCH_METADATA), 'must be a struct');
    return undefined;
  }
  return Object.freeze({ ...(value as Record<string, unknown>) });
}

const HEALTH: ReadonlySet<string> = new Set(['HEALTHY', 'UNHEALTHY', 'DRAINING', 'TIMEOUT', 'DEGRADED', 'UNKNOWN']);

/** Reads envoy.config.core.v3.Address (socket addresses only). */
export function socketAddress(a: Json | undefined, problems: Problems, path: string): { address: string; port: number } | undefined {
  if (!a) {
    problems.add(path, 'address is required');
    return undefined;
  }
  problems.fields(a, path, ['socket_address']);
  const s = a.socket_address as Json | undefined;
  if (!s) {
    problems.add(path, 'only socket_address is supported (pipe and internal addresses are not)');
    return undefined;
  }
  const sp = join(path, 'socket_address');
  problems.fields(s, sp, ['address', 'port_value', 'protocol', 'ipv4_compat'], ['resolver_name']);
  if (s.protocol && s.protocol !== 'TCP') problems.add(join(sp, 'protocol'), `protocol ${s.protocol} is not supported`);
  if (s.named_port) problems.add(join(sp, 'named_port'), 'named ports are not supported');
  if (!s.address) problems.add(join(sp, 'address'), 'address is required');
  return { address: String(s.address ?? ''), port: Number(s.port_value ?? 0) };
}

export function compileLoadAssignmentInto(
  raw: Json,
  problems: Problems,
  path: string,
): CompiledEndpoint[] {
  problems.fields(raw, path, ['cluster_name', 'endpoints', 'policy']);
  if (raw.policy) {
    problems.fields(raw.policy, join(path, 'policy'), [], ['overprovisioning_factor', 'endpoint_stale_after', 'weighted_priority_health']);
    if (raw.policy.drop_overloads?.length) problems.add(join(path, 'policy.drop_overloads'), 'drop_overloads is not supported');
  }
  const endpoints: CompiledEndpoint[] = [];
  ((raw.endpoints ?? []) as Json[]).forEach((group, gi) => {
    const gp = join(join(path, 'endpoints'), gi);
    problems.fields(group, gp, ['locality', 'lb_endpoints', 'priority', 'metadata', 'load_balancing_weight'], ['proximity']);
    // Read only by locality-weighted clusters; a locality with weight 0 gets no traffic there.
    const groupWeight = wrapped<number>(group.load_balancing_weight);
    const localityWeight = groupWeight === undefined ? undefined : Number(groupWeight);
    const localityMatch = transportSocketMatchMetadata(group.metadata, problems, join(gp, 'metadata'));
    const loc = group.locality as Json | undefined;
    const locality = loc ? [loc.region, loc.zone, loc.sub_zone].filter(Boolean).join('/') : undefined;
    const priority = Number(group.priority ?? 0);
    ((group.lb_endpoints ?? []) as Json[]).forEach((e, ei) => {
      const ep = join(join(gp, 'lb_endpoints'), ei);
      problems.fields(e, ep, ['endpoint', 'health_status', 'load_balancing_weight', 'metadata']);
      const endpointMatch = transportSocketMatchMetadata(e.metadata, problems, join(ep, 'metadata'));
      const peer = endpointPeer((e.metadata as Json | undefined)?.filter_metadata);
      const endpoint = (e.endpoint ?? {}) as Json;
      problems.fields(endpoint, join(ep, 'endpoint'), ['address', 'hostname'], ['health_check_config', 'additional_addresses']);
      const addr = socketAddress(endpoint.address, problems, join(ep, 'endpoint.address'));
      if (!addr) return;
      const health = (e.health_status ?? 'UNKNOWN') as HealthStatus;
      if (!HEALTH.has(health)) problems.add(join(ep, 'health_status'), `unknown health status "${health}"`);
      const weight = Number(wrapped<number>(e.load_balancing_weight) ?? 1);
      if (weight < 1) problems.add(join(ep, 'load_balancing_weight'), 'weight must be at least 1');
      endpoints.push({
        address: addr.address,
        port: addr.port,
        weight: Math.max(1, weight),
        health,
        hostname: endpoint.hostname || undefined,
        locality,
        ...(localityWeight !== undefined ? { localityWeight } : {}),
        priority,
        ...(endpointMatch || localityMatch ? { transportSocketMetadata: { endpoint: endpointMatch, locality: localityMatch } as TransportSocketMetadata } : {}),
        ...(peer ? { peer } : {}),
      });
    });
  });
  return endpoints;
}

/** Validates and compiles one ClusterLoadAssignment. */
export function compileLoadAssignment(raw: Json, version: string): Validation<CompiledLoadAssignment> {
  const clusterName = String(raw.cluster_name ?? '');
  const problems = new Problems(`ClusterLoadAssignment "${clusterName}"`);
  if (!clusterName) problems.add('cluster_name', 'cluster_name is required');
  const endpoints = compileLoadAssignmentInto(raw, problems, '');
  return problems.result(Object.freeze({ clusterName, version, endpoints, raw }));
}
