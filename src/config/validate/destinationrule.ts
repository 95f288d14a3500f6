// DestinationRule (networking.istio.io): structural schema plus Istio's ValidateDestinationRule semantics
// (traffic policy, load balancer, connection pool, outlier detection, client TLS, subsets).
import type {
  ClientTLSSettings,
  ConnectionPoolSettings,
  DestinationRuleSpec,
  LocalityLoadBalancerSetting,
  OutlierDetection,
  Subset,
} from '../resources';
import { childPath, indexPath, ProblemCode } from '../problems';
import { fqdnError, ipAddressError, isDns1123Label, portError, wildcardDomainError } from './formats';
import { arrayOf, boolean, duration, enumOf, integer, mapOf, number, object, string, type Schema } from './schema';
import { exportToList, labelMap, matchLabelsSelector, report } from './shared-fields';

const UINT32_MAX = 4294967295;
const INT32_MAX = 2147483647;
const nonNegativeInt32 = () => integer({ min: 0, max: INT32_MAX });

// ---------------------------------------------------------------------------------------------
// Connection pool (also used by Sidecar inbound settings)

export const connectionPoolSchema: Schema = object<ConnectionPoolSettings>(
  {
    tcp: object({
      maxConnections: nonNegativeInt32(),
      connectTimeout: duration(),
      tcpKeepalive: object({ probes: integer({ min: 0, max: UINT32_MAX }), time: duration(), interval: duration() }),
      maxConnectionDuration: duration(),
      // 0s disables the idle timeout.
      idleTimeout: duration({ allowZero: true }),
    }),
    http: object(
      {
        http1MaxPendingRequests: nonNegativeInt32(),
        http2MaxRequests: nonNegativeInt32(),
        maxRequestsPerConnection: nonNegativeInt32(),
        maxRetries: nonNegativeInt32(),
        idleTimeout: duration(),
        h2UpgradePolicy: enumOf(['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE']),
        useClientProtocol: boolean(),
        maxConcurrentStreams: nonNegativeInt32(),
        http2KeepAlive: object({ interval: duration(), timeout: duration() }),
      },
      {
        check: (http: { h2UpgradePolicy?: string; useClientProtocol?: boolean }, path, problems) => {
          if (http.h2UpgradePolicy === 'UPGRADE' && http.useClientProtocol) {
            problems.error(
              ProblemCode.ConflictingFields,
              childPath(path, 'useClientProtocol'),
              'use client protocol must not be true when h2UpgradePolicy is UPGRADE',
            );
          }
        },
      },
    ),
  },
  {
    check: (pool, path, problems) => {
      if (!pool.http && !pool.tcp)
        problems.error(ProblemCode.MissingRequiredField, path, 'connection pool must have at least one field (tcp or http)');
    },
  },
);

// ---------------------------------------------------------------------------------------------
// Load balancer

function isMaglevPrime(x: number): boolean {
  // Envoy's own primality test (source/common/common/utility.cc), so tableSize agrees with Envoy.
  if (x !== 0 && x < 4) return true;
  if (x % 2 === 0) return false;
  for (let factor = 3; factor <= Math.floor(Math.sqrt(x)); factor += 2) if (x % factor === 0) return false;
  return true;
}

const consistentHashSchema: Schema = object(
  {
    httpHeaderName: string(),
    httpCookie: object(
      {
        name: string(),
        path: string(),
        ttl: duration({ formatOnly: true }),
        attributes: arrayOf(object({ name: string(), value: string() }, { required: ['name'] })),
      },
      { required: ['name'] },
    ),
    useSourceIp: boolean(),
    httpQueryParameterName: string(),
    ringHash: object({ minimumRingSize: integer({ min: 0 }) }),
    maglev: object({ tableSize: integer({ min: 0 }) }),
    minimumRingSize: integer({ min: 0 }),
  },
  {
    oneOf: [
      ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'],
      ['ringHash', 'maglev'],
    ],
    deprecated: { minimumRingSize: "use ringHash's minimumRingSize instead" },
    check: (
      hash: {
        httpHeaderName?: string;
        httpCookie?: object;
        useSourceIp?: boolean;
        httpQueryParameterName?: string;
        ringHash?: object;
        maglev?: { tableSize?: number };
        minimumRingSize?: number;
      },
      path,
      problems,
    ) => {
      if (
        hash.httpHeaderName === undefined &&
        !hash.httpCookie &&
        hash.useSourceIp === undefined &&
        hash.httpQueryParameterName === undefined
      ) {
        problems.warn(
          ProblemCode.SuspiciousConfig,
          path,
          'consistentHash has no hash key; set one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName',
        );
      }
      if (hash.minimumRingSize && (hash.ringHash || hash.maglev)) {
        problems.error(
          ProblemCode.ConflictingFields,
          childPath(path, 'minimumRingSize'),
          'only one of minimumRingSize or maglev/ringHash can be specified',
        );
      }
      if (hash.maglev) {
        const at = childPath(childPath(path, 'maglev'), 'tableSize');
        const size = hash.maglev.tableSize ?? 0;
        if (size === 0) problems.error(ProblemCode.MissingRequiredField, at, 'tableSize must be set for maglev');
        else if (size >= 5000011) problems.error(ProblemCode.InvalidValue, at, 'tableSize must be less than 5000011 for maglev');
        else if (!isMaglevPrime(size)) problems.error(ProblemCode.InvalidValue, at, 'tableSize must be a prime number for maglev');
      }
    },
  },
);

const TOPOLOGY_LABELS = new Set(['topology.kubernetes.io/region', 'topology.kubernetes.io/zone', 'topology.istio.io/subzone']);

/** Istio's validateLocalities: wildcards only at the end, and no locality overlapping an earlier one. */
function localitiesError(localities: string[]): string | undefined {
  const regions = new Map<string, Map<string, Set<string>>>();
  for (const locality of localities) {
    const stars = (locality.match(/\*/g) ?? []).length;
    if (stars > 1 || (stars === 1 && !locality.endsWith('*')))
      return `locality ${locality} wildcard '*' number can not exceed 1 and must be in the end`;
    if (regions.has('*')) return `locality ${locality} overlap with previous specified ones`;
    const items = locality.split('/', 3);
    if (items.some((item) => item === '')) return `locality ${locality} must not contain empty region/zone/subzone info`;
    const [region, zone, subZone] = items;
    const zones = regions.get(region);
    if (items.length === 1) {
      if (zones) return `locality ${locality} overlap with previous specified ones`;
      regions.set(region, new Map([['*', new Set(['*'])]]));
    } else if (items.length === 2) {
      if (zones && (zones.has('*') || zones.has(zone))) return `locality ${locality} overlap with previous specified ones`;
      (zones ?? regions.set(region, new Map()).get(region)!).set(zone, new Set(['*']));
    } else {
      if (zones?.has('*')) return `locality ${locality} overlap with previous specified ones`;
      const subZones = zones?.get(zone);
      if (subZones && (subZones.has('*') || subZones.has(subZone))) return `locality ${locality} overlap with previous specified ones`;
      const zoneMap = zones ?? regions.set(region, new Map()).get(region)!;
      (subZones ?? zoneMap.set(zone, new Set()).get(zone)!).add(subZone);
    }
  }
  return undefined;
}

const localityLbSettingSchema: Schema = object<LocalityLoadBalancerSetting>(
  {
    distribute: arrayOf(object({ from: string(), to: mapOf(integer({ min: 0, max: UINT32_MAX })) })),
    failover: arrayOf(object({ from: string(), to: string() })),
    failoverPriority: arrayOf(string()),
    enabled: boolean(),
  },
  {
    check: (lb, path, problems) => {
      const at = (field: string) => childPath(path, field);
      const distribute = lb.distribute ?? [];
      const failover = lb.failover ?? [];
      if (distribute.length > 0 && failover.length > 0) {
        problems.error(ProblemCode.ConflictingFields, at('failover'), "can not simultaneously specify 'distribute' and 'failover'");
        return;
      }
      if (failover.length > 0) {
        const topology = (lb.failoverPriority ?? []).find((label) => TOPOLOGY_LABELS.has(label));
        if (topology)
          problems.error(
            ProblemCode.ConflictingFields,
            at('failoverPriority'),
            `can not simultaneously set 'failover' and topology label '${topology}' in 'failoverPriority'`,
          );
      }
      distribute.forEach((entry, i) => {
        const to = entry.to ?? {};
        const weights = Object.values(to);
        if (weights.some((w) => w <= 0 || w > 100)) {
          problems.error(
            ProblemCode.InvalidValue,
            childPath(indexPath(at('distribute'), i), 'to'),
            'locality weight must be in range [1, 100]',
          );
          return;
        }
        const total = weights.reduce((a, b) => a + b, 0);
        if (total !== 100)
          problems.error(
            ProblemCode.InvalidValue,
            childPath(indexPath(at('distribute'), i), 'to'),
            `total locality weight ${total} != 100`,
          );
        report(problems, childPath(indexPath(at('distribute'), i), 'to'), localitiesError(Object.keys(to)));
      });
      report(problems, at('distribute'), localitiesError(distribute.map((d) => d.from ?? '')));
      failover.forEach((entry, i) => {
        const entryPath = indexPath(at('failover'), i);
        if (entry.from === entry.to)
          problems.error(ProblemCode.InvalidValue, entryPath, 'locality lb failover settings must specify different regions');
        if ((entry.from ?? '').includes('/') || (entry.to ?? '').includes('/'))
          problems.error(ProblemCode.InvalidValue, entryPath, 'locality lb failover only specify region');
        if ((entry.from ?? '').includes('*') || (entry.to ?? '').includes('*'))
          problems.error(ProblemCode.InvalidValue, entryPath, "locality lb failover region should not contain '*' wildcard");
      });
    },
  },
);

const loadBalancerSchema: Schema = object(
  {
    simple: enumOf(['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST'], {
      deprecated: { LEAST_CONN: 'use LEAST_REQUEST' },
    }),
    consistentHash: consistentHashSchema,
    localityLbSetting: localityLbSettingSchema,
    warmupDurationSecs: duration(),
    warmup: object(
      { duration: duration(), minimumPercent: number({ min: 0, max: 100 }), aggression: number() },
      {
        required: ['duration'],
        check: (warmup: { aggression?: number }, path, problems) => {
          if (warmup.aggression !== undefined && warmup.aggression < 1)
            problems.error(ProblemCode.InvalidValue, childPath(path, 'aggression'), 'aggression should be greater than or equal to 1');
        },
      },
    ),
  },
  { oneOf: [['simple', 'consistentHash']], deprecated: { warmupDurationSecs: 'use warmup.duration' } },
);

// ---------------------------------------------------------------------------------------------
// Outlier detection

const outlierDetectionSchema: Schema = object<OutlierDetection>(
  {
    splitExternalLocalOriginErrors: boolean(),
    consecutiveLocalOriginFailures: integer({ min: 0, max: UINT32_MAX }),
    consecutiveGatewayErrors: integer({ min: 0, max: UINT32_MAX }),
    consecutive5xxErrors: integer({ min: 0, max: UINT32_MAX }),
    consecutiveErrors: integer(),
    interval: duration(),
    baseEjectionTime: duration(),
    maxEjectionPercent: integer({ min: 0, max: 100 }),
    minHealthPercent: integer({ min: 0, max: 100 }),
  },
  {
    deprecated: { consecutiveErrors: 'use consecutiveGatewayErrors or consecutive5xxErrors instead' },
    check: (outlier, path, problems) => {
      if (!outlier.splitExternalLocalOriginErrors && (outlier.consecutiveLocalOriginFailures ?? 0) > 0) {
        problems.error(
          ProblemCode.ConflictingFields,
          childPath(path, 'consecutiveLocalOriginFailures'),
          'outlier detection consecutive local origin failures is specified, but split external local origin errors is set to false',
        );
      }
    },
  },
);

// ---------------------------------------------------------------------------------------------
// Client TLS (agent.ValidateTLS)

const clientTlsSchema: Schema = object<ClientTLSSettings & { caCrl?: string }>(
  {
    mode: enumOf(['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL']),
    clientCertificate: string(),
    privateKey: string(),
    caCertificates: string(),
    credentialName: string(),
    subjectAltNames: arrayOf(string()),
    sni: string(),
    insecureSkipVerify: boolean(),
    caCrl: string(),
  },
  {
    check: (tls, path, problems) => {
      const mode = tls.mode ?? 'DISABLE';
      if (tls.insecureSkipVerify) {
        if (mode === 'SIMPLE' && (tls.caCertificates || tls.credentialName || tls.subjectAltNames)) {
          problems.error(
            ProblemCode.ConflictingFields,
            childPath(path, 'insecureSkipVerify'),
            'cannot specify caCertificates or credentialName or subjectAltNames when insecureSkipVerify is set true',
          );
        }
        if (mode === 'MUTUAL' && (tls.caCertificates || tls.subjectAltNames)) {
          problems.error(
            ProblemCode.ConflictingFields,
            childPath(path, 'insecureSkipVerify'),
            'cannot specify caCertificates or subjectAltNames when insecureSkipVerify is set true',
          );
        }
      }
      if ((mode === 'SIMPLE' || mode === 'MUTUAL') && tls.credentialName) {
        if (tls.clientCertificate || tls.caCertificates || tls.privateKey || tls.caCrl) {
          problems.error(
            ProblemCode.ConflictingFields,
            childPath(path, 'credentialName'),
            'cannot specify client certificates or CA certificate or CA CRL if credentialName is set',
          );
        }
        return;
      }
      if (mode === 'MUTUAL') {
        if (!tls.clientCertificate)
          problems.error(
            ProblemCode.MissingRequiredField,
            childPath(path, 'clientCertificate'),
            'client certificate required for mutual tls (or set credentialName)',
          );
        if (!tls.privateKey)
          problems.error(
            ProblemCode.MissingRequiredField,
            childPath(path, 'privateKey'),
            'private key required for mutual tls (or set credentialName)',
          );
      }
    },
  },
);

// ---------------------------------------------------------------------------------------------
// Traffic policy

const portLevelPolicy: Schema = object(
  {
    port: object({ number: integer({ min: 0 }) }),
    loadBalancer: loadBalancerSchema,
    connectionPool: connectionPoolSchema,
    outlierDetection: outlierDetectionSchema,
    tls: clientTlsSchema,
  },
  {
    check: (
      policy: { port?: { number?: number }; loadBalancer?: object; connectionPool?: object; outlierDetection?: object; tls?: object },
      path,
      problems,
    ) => {
      if (!policy.port) problems.error(ProblemCode.MissingRequiredField, childPath(path, 'port'), 'portTrafficPolicy must have valid port');
      else report(problems, childPath(childPath(path, 'port'), 'number'), portError(policy.port.number ?? 0));
      if (!policy.loadBalancer && !policy.connectionPool && !policy.outlierDetection && !policy.tls) {
        problems.error(ProblemCode.MissingRequiredField, path, 'port traffic policy must have at least one field');
      }
    },
  },
);

const tunnelSchema: Schema = object(
  { protocol: string(), targetHost: string(), targetPort: integer({ min: 0, max: UINT32_MAX }) },
  {
    required: ['targetHost', 'targetPort'],
    check: (tunnel: { protocol?: string; targetHost: string; targetPort: number }, path, problems) => {
      if (tunnel.protocol && tunnel.protocol !== 'CONNECT' && tunnel.protocol !== 'POST') {
        problems.error(ProblemCode.InvalidValue, childPath(path, 'protocol'), 'tunnel protocol must be "CONNECT" or "POST"');
      }
      const fqdn = fqdnError(tunnel.targetHost);
      const ip = ipAddressError(tunnel.targetHost);
      if (fqdn && ip)
        problems.error(
          ProblemCode.InvalidValue,
          childPath(path, 'targetHost'),
          `tunnel target host must be valid FQDN or IP address: ${fqdn}; ${ip}`,
        );
      report(problems, childPath(path, 'targetPort'), portError(tunnel.targetPort));
    },
  },
);

const trafficPolicySchema: Schema = object(
  {
    loadBalancer: loadBalancerSchema,
    connectionPool: connectionPoolSchema,
    outlierDetection: outlierDetectionSchema,
    tls: clientTlsSchema,
    portLevelSettings: arrayOf(portLevelPolicy),
    tunnel: tunnelSchema,
    proxyProtocol: object({ version: enumOf(['V1', 'V2']) }),
    retryBudget: object({ percent: number({ min: 0, max: 100 }), minRetryConcurrency: integer({ min: 0, max: UINT32_MAX }) }),
  },
  {
    check: (policy: Record<string, unknown>, path, problems) => {
      if (Object.values(policy).every((v) => v === undefined || v === null)) {
        problems.error(ProblemCode.MissingRequiredField, path, 'traffic policy must have at least one field');
      }
      if (policy.tunnel && policy.proxyProtocol)
        problems.error(
          ProblemCode.ConflictingFields,
          childPath(path, 'proxyProtocol'),
          'tunnel and proxyProtocol must not be set together',
        );
      const lb = policy.loadBalancer as { localityLbSetting?: LocalityLoadBalancerSetting } | undefined;
      const locality = lb?.localityLbSetting;
      if (locality && ((locality.failover?.length ?? 0) > 0 || (locality.failoverPriority?.length ?? 0) > 0) && !policy.outlierDetection) {
        problems.warn(
          ProblemCode.SuspiciousConfig,
          childPath(childPath(path, 'loadBalancer'), 'localityLbSetting'),
          'outlier detection policy must be provided for failover',
        );
      }
    },
  },
);

// ---------------------------------------------------------------------------------------------
// The DestinationRule as a whole

const subsetSchema: Schema = object<Subset>(
  { name: string(), labels: labelMap(), trafficPolicy: trafficPolicySchema },
  {
    required: ['name'],
    check: (subset, path, problems) => {
      if (!isDns1123Label(subset.name))
        problems.error(
          ProblemCode.InvalidValue,
          childPath(path, 'name'),
          `subset name is invalid: ${subset.name} (must be a DNS-1123 label)`,
        );
    },
  },
);

export const destinationRuleSpec: Schema = object<DestinationRuleSpec>(
  {
    host: string({ check: (host, path, problems) => report(problems, path, wildcardDomainError(host)) }),
    trafficPolicy: trafficPolicySchema,
    subsets: arrayOf(subsetSchema, {
      check: (subsets, path, problems) => {
        const names = new Set<string>();
        (subsets as Subset[]).forEach((subset, i) => {
          if (names.has(subset.name))
            problems.error(ProblemCode.DuplicateEntry, childPath(indexPath(path, i), 'name'), `duplicate subset names: ${subset.name}`);
          names.add(subset.name);
        });
      },
    }),
    exportTo: exportToList(false),
    workloadSelector: matchLabelsSelector('matchLabels'),
  },
  {
    required: ['host'],
    check: (rule, path, problems) => {
      // A DestinationRule with a workload selector applies to workloads of its own namespace only.
      const exportTo = rule.exportTo ?? [];
      if (rule.workloadSelector && exportTo.length > 0) {
        const namespace = problems.subject.namespace;
        const keys = new Set(exportTo.map((e) => (e === '.' ? namespace : e)));
        const at = childPath(path, 'exportTo');
        if (!keys.has(namespace))
          problems.error(
            ProblemCode.InvalidValue,
            at,
            'destination rule with workload selector cannot have exportTo beyond current namespace',
          );
        else if (keys.size > 1)
          problems.error(ProblemCode.InvalidValue, at, 'destination rule with workload selector cannot have multiple entries in exportTo');
      }
    },
  },
);
