// Cross-resource analysis of a full set of valid resources, like `istioctl analyze`: references that do not
// resolve (subsets, gateways, hosts, delegates), conflicting mesh VirtualServices, subsets selecting nothing.
import type {
  ConfigResource,
  DestinationRuleSpec,
  KubeServiceSpec,
  ServiceEntrySpec,
  VirtualServiceSpec,
  WorkloadEntrySpec,
} from './resources';
import { childPath, indexPath, ProblemCode, type ConfigProblem } from './problems';
import { toFqdn as resolveShortHost } from '../registry/hosts';
import { hostIsSubsetOf } from './validate/formats';

export interface AnalyzeOptions {
  /** The mesh's DNS suffix: short host `reviews` in namespace `default` becomes `reviews.default.svc.<suffix>`. */
  domainSuffix?: string;
}

const MESH_GATEWAY = 'mesh';

/**
 * Istio's ResolveShortnameToFQDN (pkg/config/model.go): '*' and IP addresses stay as they are; a name
 * without any dot gets `.<namespace>.svc.<domainSuffix>`; anything with a dot is taken as fully qualified.
 * So 'reviews' in 'default' is 'reviews.default.svc.cluster.local', but 'reviews.prod' stays 'reviews.prod'.
 */
/** Istio's short-name rule; one implementation, in the registry. */
export { resolveShortHost };

export function analyzeResources(resources: readonly ConfigResource[], opts: AnalyzeOptions = {}): ConfigProblem[] {
  const mesh = indexMesh(resources, opts.domainSuffix ?? 'cluster.local');
  const problems: ConfigProblem[] = [];
  for (const vs of mesh.virtualServices) checkVirtualServiceReferences(vs, mesh, problems);
  reportConflictingMeshHosts(mesh, problems);
  for (const rule of mesh.destinationRules) checkSubsetsSelectWorkloads(rule, mesh, problems);
  return problems;
}

// ---------------------------------------------------------------------------------------------
// What the resources declare

/** A service the registry would know: from a Kubernetes Service or a ServiceEntry host. */
interface KnownService {
  host: string;
  /** Label sets of the service's known workloads. */
  workloads: () => Record<string, string>[];
}

interface IndexedDestinationRule {
  resource: ConfigResource<'DestinationRule'>;
  host: string;
}

interface MeshIndex {
  domainSuffix: string;
  services: KnownService[];
  gateways: Set<string>;
  virtualServiceKeys: Set<string>;
  virtualServices: ConfigResource<'VirtualService'>[];
  destinationRules: IndexedDestinationRule[];
}

function indexMesh(resources: readonly ConfigResource[], domainSuffix: string): MeshIndex {
  const workloadEntries = resources.filter(isKind('WorkloadEntry'));
  const selectWorkloads = (namespace: string, selector: Record<string, string> | undefined) => () =>
    selector && Object.keys(selector).length > 0
      ? workloadEntries
          .filter((we) => we.metadata.namespace === namespace && labelsMatch(selector, (we.spec as WorkloadEntrySpec).labels ?? {}))
          .map((we) => (we.spec as WorkloadEntrySpec).labels ?? {})
      : [];

  const services: KnownService[] = [];
  for (const r of resources) {
    if (r.kind === 'Service') {
      const spec = r.spec as KubeServiceSpec;
      services.push({
        host: `${r.metadata.name}.${r.metadata.namespace}.svc.${domainSuffix}`,
        workloads: selectWorkloads(r.metadata.namespace, spec.selector),
      });
    } else if (r.kind === 'ServiceEntry') {
      const spec = r.spec as ServiceEntrySpec;
      const workloads = spec.workloadSelector
        ? selectWorkloads(r.metadata.namespace, spec.workloadSelector.labels)
        : () => (spec.endpoints ?? []).map((e) => e.labels ?? {});
      for (const host of spec.hosts) services.push({ host: resolveShortHost(host, r.metadata.namespace, domainSuffix), workloads });
    }
  }

  const gateways = new Set(resources.filter(isKind('Gateway')).map((g) => `${g.metadata.namespace}/${g.metadata.name}`));
  const virtualServices = resources.filter(isKind('VirtualService'));
  const destinationRules = resources.filter(isKind('DestinationRule')).map((resource) => ({
    resource,
    host: resolveShortHost((resource.spec as DestinationRuleSpec).host, resource.metadata.namespace, domainSuffix),
  }));
  return {
    domainSuffix,
    services,
    gateways,
    virtualServiceKeys: new Set(virtualServices.map((vs) => `${vs.metadata.namespace}/${vs.metadata.name}`)),
    virtualServices,
    destinationRules,
  };
}

function isKind<K extends ConfigResource['kind']>(kind: K) {
  return (r: ConfigResource): r is ConfigResource<K> => r.kind === kind;
}

function labelsMatch(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** Services whose host is `fqdn`, or whose wildcard host covers it. */
function servicesFor(fqdn: string, mesh: MeshIndex): KnownService[] {
  return mesh.services.filter((s) => s.host === fqdn || (s.host.startsWith('*') && hostIsSubsetOf(fqdn, s.host)));
}

function problemAbout(
  resource: ConfigResource,
  code: string,
  severity: ConfigProblem['severity'],
  path: string,
  message: string,
): ConfigProblem {
  const problem: ConfigProblem = {
    code,
    severity,
    kind: resource.kind,
    namespace: resource.metadata.namespace,
    name: resource.metadata.name,
    path,
    message,
  };
  if (resource.origin?.file !== undefined) problem.file = resource.origin.file;
  if (resource.origin?.document !== undefined) problem.document = resource.origin.document;
  return problem;
}

// ---------------------------------------------------------------------------------------------
// VirtualService references: gateways, destination hosts and subsets, delegates

/** Istio's resolveGatewayName: `name`, `ns/name`, `./name` or legacy `name.ns.svc...` to `ns/name`. */
function resolveGatewayRef(ref: string, namespace: string): string {
  const slash = ref.indexOf('/');
  if (slash >= 0) return ref.slice(0, slash) === '.' ? `${namespace}/${ref.slice(slash + 1)}` : ref;
  const dot = ref.indexOf('.');
  if (dot < 0) return `${namespace}/${ref}`;
  const rest = ref.slice(dot + 1);
  const nextDot = rest.indexOf('.');
  return `${nextDot < 0 ? rest : rest.slice(0, nextDot)}/${ref.slice(0, dot)}`;
}

interface DestinationRef {
  host: string;
  subset?: string;
  path: string;
}

function destinationsOf(spec: VirtualServiceSpec): DestinationRef[] {
  const refs: DestinationRef[] = [];
  const add = (destination: { host: string; subset?: string } | undefined, path: string) => {
    if (destination) refs.push({ host: destination.host, subset: destination.subset, path });
  };
  (spec.http ?? []).forEach((http, i) => {
    const routePath = indexPath('spec.http', i);
    (http.route ?? []).forEach((r, j) => add(r.destination, childPath(indexPath(childPath(routePath, 'route'), j), 'destination')));
    add(http.mirror, childPath(routePath, 'mirror'));
    (http.mirrors ?? []).forEach((m, j) => add(m.destination, childPath(indexPath(childPath(routePath, 'mirrors'), j), 'destination')));
  });
  for (const field of ['tcp', 'tls'] as const) {
    (spec[field] ?? []).forEach((route, i) =>
      (route.route ?? []).forEach((r, j) =>
        add(r.destination, childPath(indexPath(childPath(indexPath(`spec.${field}`, i), 'route'), j), 'destination')),
      ),
    );
  }
  return refs;
}

function gatewayRefsOf(spec: VirtualServiceSpec): { ref: string; path: string }[] {
  const refs = (spec.gateways ?? []).map((ref, i) => ({ ref, path: indexPath('spec.gateways', i) }));
  (spec.http ?? []).forEach((http, i) =>
    (http.match ?? []).forEach((m, j) =>
      (m.gateways ?? []).forEach((ref, k) =>
        refs.push({ ref, path: indexPath(childPath(indexPath(childPath(indexPath('spec.http', i), 'match'), j), 'gateways'), k) }),
      ),
    ),
  );
  for (const field of ['tcp', 'tls'] as const) {
    (spec[field] ?? []).forEach((route, i) =>
      (route.match ?? []).forEach((m, j) =>
        (m.gateways ?? []).forEach((ref, k) =>
          refs.push({ ref, path: indexPath(childPath(indexPath(childPath(indexPath(`spec.${field}`, i), 'match'), j), 'gateways'), k) }),
        ),
      ),
    );
  }
  return refs;
}

function checkVirtualServiceReferences(vs: ConfigResource<'VirtualService'>, mesh: MeshIndex, problems: ConfigProblem[]): void {
  const spec = vs.spec;
  const namespace = vs.metadata.namespace;

  for (const { ref, path } of gatewayRefsOf(spec)) {
    if (ref === MESH_GATEWAY) continue;
    const key = resolveGatewayRef(ref, namespace);
    if (!mesh.gateways.has(key)) {
      problems.push(
        problemAbout(
          vs,
          ProblemCode.ReferencedResourceNotFound,
          'error',
          path,
          `Referenced gateway not found: ${JSON.stringify(ref)} (looked for Gateway ${key})`,
        ),
      );
    }
  }

  for (const { host, subset, path } of destinationsOf(spec)) {
    const fqdn = resolveShortHost(host, namespace, mesh.domainSuffix);
    if (servicesFor(fqdn, mesh).length === 0) {
      const resolved = fqdn !== host ? ` (resolved to ${fqdn})` : '';
      problems.push(
        problemAbout(
          vs,
          ProblemCode.ReferencedResourceNotFound,
          'warning',
          childPath(path, 'host'),
          `Referenced host not found: ${JSON.stringify(host)}${resolved}; declare it with a Service or ServiceEntry`,
        ),
      );
    }
    if (subset) {
      const defined = mesh.destinationRules.some(
        (dr) =>
          (dr.host === fqdn || (dr.host.startsWith('*') && hostIsSubsetOf(fqdn, dr.host))) &&
          (dr.resource.spec.subsets ?? []).some((s) => s.name === subset),
      );
      if (!defined) {
        problems.push(
          problemAbout(
            vs,
            ProblemCode.ReferencedResourceNotFound,
            'error',
            childPath(path, 'subset'),
            `Referenced host+subset in destinationrule not found: "${host}+${subset}"; no DestinationRule for ${fqdn} defines subset ${subset}`,
          ),
        );
      }
    }
  }

  (spec.http ?? []).forEach((http, i) => {
    if (!http.delegate?.name) return;
    const key = `${http.delegate.namespace || namespace}/${http.delegate.name}`;
    if (!mesh.virtualServiceKeys.has(key)) {
      problems.push(
        problemAbout(
          vs,
          ProblemCode.ReferencedResourceNotFound,
          'error',
          childPath(indexPath('spec.http', i), 'delegate'),
          `Referenced virtualservice not found: ${JSON.stringify(key)}`,
        ),
      );
    }
  });
}

// ---------------------------------------------------------------------------------------------
// IST0109: two VirtualServices bound to the mesh gateway for the same host

function isBoundToMesh(spec: VirtualServiceSpec): boolean {
  return !spec.gateways?.length || spec.gateways.includes(MESH_GATEWAY);
}

/** The namespace a VirtualService is visible in, or '*' when exported to all. */
function exportScope(vs: ConfigResource<'VirtualService'>): string {
  const exportTo = vs.spec.exportTo ?? [];
  const namespace = vs.metadata.namespace;
  return exportTo.length > 0 && exportTo.every((e) => e === '.' || e === namespace) ? namespace : '*';
}

/**
 * Istio's ConflictingMeshGatewayHostsAnalyzer. Only the mesh gateway: VirtualServices bound to the
 * same ingress gateway are merged by Istio, which is documented behaviour, not a conflict.
 */
function reportConflictingMeshHosts(mesh: MeshIndex, problems: ConfigProblem[]): void {
  const byHost = new Map<string, { vs: ConfigResource<'VirtualService'>; scope: string; hostIndex: number }[]>();
  for (const vs of mesh.virtualServices) {
    if (!isBoundToMesh(vs.spec)) continue;
    const scope = exportScope(vs);
    (vs.spec.hosts ?? []).forEach((host, hostIndex) => {
      const fqdn = resolveShortHost(host, vs.metadata.namespace, mesh.domainSuffix);
      const entries = byHost.get(fqdn) ?? [];
      entries.push({ vs, scope, hostIndex });
      byHost.set(fqdn, entries);
    });
  }
  for (const [host, entries] of byHost) {
    for (const entry of entries) {
      // Two namespace-private VirtualServices in different namespaces never meet.
      const conflicting = entries.filter((other) => other.scope === '*' || entry.scope === '*' || other.scope === entry.scope);
      if (conflicting.length < 2) continue;
      const names = conflicting.map((c) => `${c.vs.metadata.namespace}/${c.vs.metadata.name}`).join(',');
      problems.push(
        problemAbout(
          entry.vs,
          ProblemCode.ConflictingMeshGatewayVirtualServiceHosts,
          'warning',
          indexPath('spec.hosts', entry.hostIndex),
          `The VirtualServices ${names} associated with mesh gateway define the same host ${host} which can lead to undefined behavior. This can be fixed by merging the conflicting VirtualServices into a single resource.`,
        ),
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// IST0173: DestinationRule subsets that select none of the service's workloads

/**
 * Reports a subset whose labels match none of the known workloads (WorkloadEntries selected by the
 * Service or ServiceEntry, or a ServiceEntry's inline endpoints). When a service has no known
 * workloads at all there is nothing to compare with, and nothing is reported.
 */
function checkSubsetsSelectWorkloads(rule: IndexedDestinationRule, mesh: MeshIndex, problems: ConfigProblem[]): void {
  const workloads = servicesFor(rule.host, mesh).flatMap((s) => s.workloads());
  if (workloads.length === 0) return;
  (rule.resource.spec.subsets ?? []).forEach((subset, i) => {
    const labels = subset.labels ?? {};
    if (Object.keys(labels).length === 0 || workloads.some((w) => labelsMatch(labels, w))) return;
    const selector = Object.entries(labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    problems.push(
      problemAbout(
        rule.resource,
        ProblemCode.DestinationRuleSubsetNotSelectPods,
        'warning',
        indexPath('spec.subsets', i),
        `DestinationRule ${rule.resource.metadata.namespace}/${rule.resource.metadata.name} for subset ${subset.name} does not select any workload of ${rule.host} (labels ${selector})`,
      ),
    );
  });
}
