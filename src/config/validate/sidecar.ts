// Sidecar (networking.istio.io): structural schema plus Istio's ValidateSidecar semantics (ingress and
// egress listeners, namespace/dnsName egress hosts, outbound traffic policy).
import type { Destination, IstioEgressListener, IstioIngressListener, ServerTLSSettings } from '../resources';
import { childPath, indexPath, ProblemCode, type ProblemCollector } from '../problems';
import {
  fqdnError,
  ipAddressError,
  isDns1123Label,
  isHttpProtocol,
  isTlsProtocol,
  namespaceSlashHostErrors,
  portError,
  UNIX_ADDRESS_PREFIX,
  unixAddressError,
} from './formats';
import { arrayOf, enumOf, mapOf, object, string, type Schema } from './schema';
import { connectionPoolSchema } from './destinationrule';
import { portSchema, serverTlsSchema } from './gateway';
import { report } from './shared-fields';
import { destinationSchema } from './virtualservice';

type SidecarPort = { number?: number; protocol?: string; name?: string; targetPort?: number };

interface IngressListener extends Omit<IstioIngressListener, 'port'> {
  port?: SidecarPort;
  tls?: ServerTLSSettings & { credentialNames?: string[]; tlsCertificates?: unknown[] };
  connectionPool?: { http?: unknown; tcp?: unknown };
}

interface EgressListener extends Omit<IstioEgressListener, 'port'> {
  port?: SidecarPort;
}

interface SidecarShape {
  workloadSelector?: { labels?: Record<string, string> };
  ingress?: IngressListener[];
  egress?: EgressListener[];
  outboundTrafficPolicy?: { mode?: string; egressProxy?: Destination };
  inboundConnectionPool?: unknown;
}

const CAPTURE_MODES = ['DEFAULT', 'IPTABLES', 'NONE'];

function checkPortName(port: SidecarPort, path: string, problems: ProblemCollector): void {
  // The protocol itself is checked by the port schema; an empty one means "detect".
  if (port.name && !isDns1123Label(port.name))
    problems.error(ProblemCode.InvalidValue, childPath(path, 'name'), `invalid port name: ${port.name}`);
}

function checkIngress(listener: IngressListener, path: string, problems: ProblemCollector, seenPorts: Set<number>): void {
  const at = (field: string) => childPath(path, field);
  const port = listener.port;
  if (!port) {
    problems.error(ProblemCode.MissingRequiredField, at('port'), 'sidecar: port is required for ingress listeners');
    return;
  }
  if ((port.targetPort ?? 0) > 0)
    problems.error(ProblemCode.InvalidValue, childPath(at('port'), 'targetPort'), 'targetPort has no impact on Sidecars');
  checkPortName(port, at('port'), problems);
  report(problems, childPath(at('port'), 'number'), portError(port.number ?? 0));
  if (listener.bind) report(problems, at('bind'), ipAddressError(listener.bind));
  if (seenPorts.has(port.number ?? 0))
    problems.error(ProblemCode.DuplicateEntry, childPath(at('port'), 'number'), 'sidecar: ports on IP bound listeners must be unique');
  seenPorts.add(port.number ?? 0);

  const endpoint = listener.defaultEndpoint ?? '';
  if (endpoint.startsWith(UNIX_ADDRESS_PREFIX)) {
    report(problems, at('defaultEndpoint'), unixAddressError(endpoint.slice(UNIX_ADDRESS_PREFIX.length)));
  } else if (endpoint !== '') {
    checkDefaultEndpoint(endpoint, at('defaultEndpoint'), problems);
  }

  const tls = listener.tls;
  if (tls) {
    const tlsAt = (field: string) => childPath(at('tls'), field);
    if (tls.subjectAltNames?.length)
      problems.error(ProblemCode.InvalidValue, tlsAt('subjectAltNames'), 'sidecar: subjectAltNames is not supported in ingress tls');
    if (tls.httpsRedirect) problems.error(ProblemCode.InvalidValue, tlsAt('httpsRedirect'), 'sidecar: httpsRedirect is not supported');
    if (tls.credentialName)
      problems.error(ProblemCode.InvalidValue, tlsAt('credentialName'), 'sidecar: credentialName is not currently supported');
    if (tls.credentialNames?.length)
      problems.error(ProblemCode.InvalidValue, tlsAt('credentialNames'), 'sidecar: credentialNames is not currently supported');
    if (tls.tlsCertificates?.length)
      problems.error(ProblemCode.InvalidValue, tlsAt('tlsCertificates'), 'sidecar: tlsCertificates is not currently supported');
    if (tls.mode === 'ISTIO_MUTUAL' || tls.mode === 'AUTO_PASSTHROUGH') {
      problems.error(
        ProblemCode.InvalidValue,
        tlsAt('mode'),
        `configuration is invalid: cannot set mode to ${tls.mode} in sidecar ingress tls`,
      );
    }
    if (!isTlsProtocol(port.protocol))
      problems.error(ProblemCode.ConflictingFields, at('tls'), 'server cannot have TLS settings for non HTTPS/TLS ports');
  }
  if (listener.connectionPool?.http && !isHttpProtocol(port.protocol)) {
    problems.warn(
      ProblemCode.SuspiciousConfig,
      childPath(at('connectionPool'), 'http'),
      `sidecar: HTTP connection pool settings are configured for port ${port.number} (${JSON.stringify(port.name ?? '')}) but its protocol is not HTTP (${port.protocol ?? ''}); only TCP settings will apply`,
    );
  }
}

/** defaultEndpoint: 127.0.0.1:PORT, 0.0.0.0:PORT, [::1]:PORT, [::]:PORT, :PORT or unix://path. */
function checkDefaultEndpoint(endpoint: string, path: string, problems: ProblemCollector): void {
  const match = /^(?:\[([^\]]*)\]|([^:[\]]*)):([^:]*)$/.exec(endpoint);
  if (!match) {
    problems.error(
      ProblemCode.InvalidValue,
      path,
      `sidecar: defaultEndpoint ${JSON.stringify(endpoint)} must be of form 127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:<port>, [::]:<port> or unix://filepath`,
    );
    return;
  }
  const host = match[1] ?? match[2] ?? '';
  if (host !== '' && !['127.0.0.1', '0.0.0.0', '::1', '::'].includes(host)) {
    problems.error(
      ProblemCode.InvalidValue,
      path,
      'sidecar: defaultEndpoint must be of form 127.0.0.1:<port>,0.0.0.0:<port>,[::1]:port,[::]:port,unix://filepath or unset',
    );
  }
  const port = match[3];
  if (!/^\d+$/.test(port)) problems.error(ProblemCode.InvalidValue, path, `sidecar: defaultEndpoint port (${port}) is not a number`);
  else report(problems, path, portError(Number(port)));
}

function checkEgress(listeners: EgressListener[], path: string, problems: ProblemCollector): void {
  const seenPorts = new Set<number>();
  const seenSockets = new Set<string>();
  let catchAllFound = false;
  listeners.forEach((listener, index) => {
    const at = (field: string) => childPath(indexPath(path, index), field);
    const port = listener.port;
    if (!port) {
      // Only one listener may omit its port, and it must come last.
      if (catchAllFound)
        problems.error(ProblemCode.DuplicateEntry, indexPath(path, index), 'sidecar: egress can have only one listener with empty port');
      else if (index !== listeners.length - 1)
        problems.error(
          ProblemCode.InvalidValue,
          indexPath(path, index),
          'sidecar: the egress listener with empty port should be the last listener in the list',
        );
      else catchAllFound = true;
    } else {
      if ((port.targetPort ?? 0) > 0)
        problems.error(ProblemCode.InvalidValue, childPath(at('port'), 'targetPort'), 'targetPort has no impact on Sidecars');
      checkPortName(port, at('port'), problems);
      const bind = listener.bind ?? '';
      if ((port.number ?? 0) === 0) {
        if (!bind.startsWith(UNIX_ADDRESS_PREFIX)) {
          problems.error(ProblemCode.InvalidValue, at('bind'), 'sidecar: ports with 0 value must have a unix domain socket bind address');
        } else {
          report(problems, at('bind'), unixAddressError(bind.slice(UNIX_ADDRESS_PREFIX.length)));
        }
        const mode = listener.captureMode ?? 'DEFAULT';
        if (mode !== 'DEFAULT' && mode !== 'NONE')
          problems.error(
            ProblemCode.InvalidValue,
            at('captureMode'),
            'sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners',
          );
        if (seenSockets.has(bind))
          problems.error(ProblemCode.DuplicateEntry, at('bind'), 'sidecar: unix domain socket values for listeners must be unique');
        seenSockets.add(bind);
      } else {
        report(problems, childPath(at('port'), 'number'), portError(port.number ?? 0));
        if (bind) report(problems, at('bind'), ipAddressError(bind));
        if (seenPorts.has(port.number ?? 0))
          problems.error(
            ProblemCode.DuplicateEntry,
            childPath(at('port'), 'number'),
            'sidecar: ports on IP bound listeners must be unique',
          );
        seenPorts.add(port.number ?? 0);
      }
    }
    checkEgressHosts(listener.hosts ?? [], at('hosts'), problems);
  });
}

function checkEgressHosts(hosts: string[], path: string, problems: ProblemCollector): void {
  if (hosts.length === 0) {
    problems.error(ProblemCode.MissingRequiredField, path, 'sidecar: egress listener must contain at least one host');
    return;
  }
  const byNamespace = new Map<string, Set<string>>();
  hosts.forEach((host, i) => {
    const at = indexPath(path, i);
    const slash = host.indexOf('/');
    if (slash >= 0) {
      const namespace = host.slice(0, slash) === '.' ? problems.subject.namespace : host.slice(0, slash);
      const dnsName = host.slice(slash + 1);
      const seen = byNamespace.get(namespace) ?? new Set<string>();
      const duplicate = dnsName !== '*' ? seen.has(dnsName) || seen.has('*') : seen.size > 0;
      if (duplicate) problems.warn(ProblemCode.DuplicateEntry, at, `duplicated egress host: ${host}`);
      seen.add(dnsName);
      byNamespace.set(namespace, seen);
    }
    for (const message of namespaceSlashHostErrors(host, false)) problems.error(ProblemCode.InvalidValue, at, message);
  });
  if (byNamespace.get('*')?.has('*') && byNamespace.size !== 1) {
    problems.warn(ProblemCode.SuspiciousConfig, path, '`*/*` host selects all resources, no other hosts can be added');
  }
}

function checkSidecar(sidecar: SidecarShape, path: string, problems: ProblemCollector): void {
  const at = (field: string) => childPath(path, field);
  if (!sidecar.egress?.length && !sidecar.ingress?.length && !sidecar.outboundTrafficPolicy && !sidecar.inboundConnectionPool) {
    problems.error(
      ProblemCode.MissingRequiredField,
      path,
      'sidecar: empty configuration provided; set ingress, egress, outboundTrafficPolicy or inboundConnectionPool',
    );
  }
  const selector = sidecar.workloadSelector;
  if (selector) {
    const labels = selector.labels ?? {};
    for (const [key, value] of Object.entries(labels)) {
      const labelPath = childPath(childPath(at('workloadSelector'), 'labels'), key);
      if (key === '') problems.error(ProblemCode.InvalidValue, labelPath, `empty key is not supported in selector: "=${value}"`);
      if (key.includes('*') || value.includes('*'))
        problems.error(ProblemCode.InvalidValue, labelPath, `wildcard is not supported in selector: "${key}=${value}"`);
    }
    if (Object.keys(labels).length === 0) {
      problems.warn(
        ProblemCode.SuspiciousConfig,
        at('workloadSelector'),
        'sidecar: workload selector specified without labels, will be applied to all services in namespace',
      );
    }
  }
  const ingressPorts = new Set<number>();
  (sidecar.ingress ?? []).forEach((listener, i) => checkIngress(listener, indexPath(at('ingress'), i), problems, ingressPorts));
  checkEgress(sidecar.egress ?? [], at('egress'), problems);

  const policy = sidecar.outboundTrafficPolicy;
  if (policy?.egressProxy) {
    const proxyPath = childPath(at('outboundTrafficPolicy'), 'egressProxy');
    if ((policy.mode ?? 'REGISTRY_ONLY') !== 'ALLOW_ANY') {
      problems.error(
        ProblemCode.ConflictingFields,
        proxyPath,
        'sidecar: egressProxy must be set only with ALLOW_ANY outboundTrafficPolicy mode',
      );
    } else {
      report(problems, childPath(proxyPath, 'host'), fqdnError(policy.egressProxy.host));
      if (!policy.egressProxy.port)
        problems.error(ProblemCode.MissingRequiredField, childPath(proxyPath, 'port'), 'sidecar: egressProxy port must be non-nil');
    }
  }
}

export const sidecarSpec: Schema = object<SidecarShape>(
  {
    workloadSelector: object({ labels: mapOf(string()) }),
    ingress: arrayOf(
      object({
        port: portSchema(),
        bind: string(),
        captureMode: enumOf(CAPTURE_MODES),
        defaultEndpoint: string(),
        tls: serverTlsSchema,
        connectionPool: connectionPoolSchema,
      }),
    ),
    egress: arrayOf(object({ port: portSchema(), bind: string(), captureMode: enumOf(CAPTURE_MODES), hosts: arrayOf(string()) })),
    inboundConnectionPool: connectionPoolSchema,
    outboundTrafficPolicy: object({ mode: enumOf(['REGISTRY_ONLY', 'ALLOW_ANY']), egressProxy: destinationSchema }),
  },
  { check: checkSidecar },
);
