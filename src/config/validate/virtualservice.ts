// VirtualService (networking.istio.io): structural schema plus Istio's ValidateVirtualService semantics
// (pkg/config/validation/validation.go and virtualservice.go).
import type {
  CorsPolicy,
  Destination,
  HTTPDirectResponse,
  HTTPFaultInjection,
  HTTPRedirect,
  HTTPRewrite,
  HTTPRetry,
  HTTPRoute,
  StringMatch,
} from '../resources';
import { childPath, indexPath, ProblemCode, type ProblemCollector } from '../problems';
import {
  corsHeaderNameError,
  fqdnError,
  gatewayBoundHostError,
  headerOperationNameError,
  headerValueError,
  hostIsSubsetOf,
  hostsOverlap,
  ipSubnetError,
  isAuthorityHeader,
  isDns1123Label,
  isIpAddress,
  isJwtClaimHeader,
  matchHeaderNameError,
  portError,
  re2Error,
  requestHeaderOperationNameError,
  wildcardDomainError,
} from './formats';
import { arrayOf, boolean, duration, enumOf, integer, isPlainObject, mapOf, number, object, string, type Schema } from './schema';
import { exportToList, labelMap, report } from './shared-fields';

type Json = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// String matches

type StringMatchPlace =
  'uri' | 'scheme' | 'method' | 'authority' | 'headers' | 'queryParams' | 'withoutHeaders' | 'corsPolicy.allowOrigins';

function stringMatch(place: StringMatchPlace): Schema {
  return object<StringMatch>(
    { exact: string(), prefix: string(), regex: string() },
    { oneOf: [['exact', 'prefix', 'regex']], check: (match, path, problems) => checkStringMatch(match, place, path, problems) },
  );
}

function checkStringMatch(match: StringMatch, place: StringMatchPlace, path: string, problems: ProblemCollector): void {
  if (place === 'corsPolicy.allowOrigins' && !match.exact && !match.prefix && !match.regex) {
    problems.error(ProblemCode.InvalidValue, path, `'' is not a valid match type for CORS allow origins`);
    return;
  }
  // uri allows an empty prefix (match everything); Envoy's StringMatcher forbids it elsewhere.
  if (match.prefix === '' && place !== 'uri') {
    problems.error(ProblemCode.InvalidValue, childPath(path, 'prefix'), `"${place}": prefix string match should not be empty`);
  }
  if (match.regex !== undefined) {
    // In withoutHeaders, '*' is not a regex but "header present".
    if (place === 'withoutHeaders' && match.regex === '*') return;
    if (match.regex === '') {
      problems.error(ProblemCode.InvalidValue, childPath(path, 'regex'), `"${place}": regex string match should not be empty`);
    } else {
      report(problems, childPath(path, 'regex'), re2Error(match.regex));
    }
  }
}

function headerMatchMap(place: 'headers' | 'withoutHeaders'): Schema {
  return mapOf(stringMatch(place), {
    key: (name, path, problems) => {
      report(problems, path, matchHeaderNameError(name));
      if (name !== name.toLowerCase() && !isJwtClaimHeader(name)) {
        problems.warn(
          ProblemCode.SuspiciousConfig,
          path,
          `header name ${JSON.stringify(name)} has upper-case letters; HTTP header names are matched in lower case, write ${JSON.stringify(name.toLowerCase())}`,
        );
      }
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Destinations

function checkDestination(destination: Destination, path: string, problems: ProblemCollector): void {
  const hostPath = childPath(path, 'host');
  if (destination.host === '*') problems.error(ProblemCode.InvalidValue, hostPath, 'invalid destination host *');
  else report(problems, hostPath, wildcardDomainError(destination.host));
  if (destination.subset && !isDns1123Label(destination.subset)) {
    problems.error(ProblemCode.InvalidValue, childPath(path, 'subset'), `subset name is invalid: ${destination.subset}`);
  }
  if (destination.port) report(problems, childPath(childPath(path, 'port'), 'number'), portError(destination.port.number ?? 0));
}

/** istio.networking.v1alpha3.Destination, also used by Sidecar's egressProxy. */
export const destinationSchema: Schema = object<Destination>(
  { host: string(), subset: string(), port: object({ number: integer({ min: 0 }) }) },
  { required: ['host'], check: checkDestination },
);

// ---------------------------------------------------------------------------------------------
// Header manipulation

function headerOperations(direction: 'request' | 'response'): Schema {
  const nameError = direction === 'request' ? requestHeaderOperationNameError : headerOperationNameError;
  const valueMap = mapOf(string({ check: (value, path, problems) => report(problems, path, headerValueError(value)) }), {
    key: (name, path, problems) => report(problems, path, nameError(name)),
  });
  return object({
    set: valueMap,
    add: valueMap,
    remove: arrayOf(string({ check: (name, path, problems) => report(problems, path, headerOperationNameError(name)) })),
  });
}

const headersSchema: Schema = object({ request: headerOperations('request'), response: headerOperations('response') });

// ---------------------------------------------------------------------------------------------
// Route destinations and weights

function checkTotalWeight(destinations: unknown[], path: string, problems: ProblemCollector): void {
  const total = destinations.reduce<number>((sum, d) => sum + (((d as Json).weight as number | undefined) ?? 0), 0);
  if (destinations.length > 1 && total === 0) {
    problems.error(ProblemCode.InvalidValue, path, 'total destination weight = 0; give at least one destination a positive weight');
  }
}

const httpRouteDestination: Schema = object(
  { destination: destinationSchema, weight: integer({ min: 0, max: 2147483647 }), headers: headersSchema },
  { required: ['destination'] },
);

const routeDestination: Schema = object(
  { destination: destinationSchema, weight: integer({ min: 0, max: 2147483647 }) },
  { required: ['destination'] },
);

// ---------------------------------------------------------------------------------------------
// HTTP match requests

function checkGatewayNames(names: string[], path: string, problems: ProblemCollector): void {
  names.forEach((gateway, i) => {
    const at = indexPath(path, i);
    const slash = gateway.indexOf('/');
    if (slash < 0) {
      if (gateway.includes('.')) {
        const [name, namespace] = gateway.split('.');
        problems.warn(
          ProblemCode.DeprecatedField,
          at,
          `using legacy gatewayName format ${JSON.stringify(gateway)}; prefer the <namespace>/<name> format: "${namespace}/${name}"`,
        );
      }
      report(problems, at, fqdnError(gateway));
      return;
    }
    const namespace = gateway.slice(0, slash);
    const name = gateway.slice(slash + 1);
    if (!namespace || !name) problems.error(ProblemCode.InvalidValue, at, 'config namespace and gateway name cannot be empty');
    if (!isDns1123Label(namespace))
      problems.error(ProblemCode.InvalidValue, at, `invalid value for namespace: ${JSON.stringify(namespace)}`);
    if (!isDns1123Label(name)) problems.error(ProblemCode.InvalidValue, at, `invalid value for gateway name: ${JSON.stringify(name)}`);
  });
}

const gatewayNames: Schema = arrayOf(string(), { check: (names, path, problems) => checkGatewayNames(names as string[], path, problems) });

const sourceNamespace: Schema = string({
  check: (ns, path, problems) => {
    if (ns !== '' && !isDns1123Label(ns)) problems.error(ProblemCode.InvalidValue, path, `sourceNamespace match ${ns} is invalid`);
  },
});

const matchPort: Schema = integer({
  check: (port, path, problems) => {
    if (port !== 0) report(problems, path, portError(port));
  },
});

const httpMatchRequest: Schema = object({
  name: string(),
  uri: stringMatch('uri'),
  scheme: stringMatch('scheme'),
  method: stringMatch('method'),
  authority: stringMatch('authority'),
  headers: headerMatchMap('headers'),
  port: matchPort,
  sourceLabels: labelMap(),
  gateways: gatewayNames,
  queryParams: mapOf(stringMatch('queryParams')),
  ignoreUriCase: boolean(),
  withoutHeaders: headerMatchMap('withoutHeaders'),
  sourceNamespace,
  statPrefix: string(),
});

// ---------------------------------------------------------------------------------------------
// HTTP route actions

const redirectSchema: Schema = object<HTTPRedirect>(
  {
    uri: string(),
    authority: string(),
    port: integer(),
    derivePort: enumOf(['FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT']),
    scheme: string(),
    redirectCode: integer(),
  },
  {
    oneOf: [['port', 'derivePort']],
    check: (redirect, path, problems) => {
      if (!redirect.uri && !redirect.authority && redirect.port === undefined && !redirect.derivePort && !redirect.scheme) {
        problems.error(ProblemCode.MissingRequiredField, path, 'redirect must specify URI, authority, scheme, or port');
      }
      if (redirect.redirectCode && (redirect.redirectCode < 300 || redirect.redirectCode > 399)) {
        problems.error(
          ProblemCode.InvalidValue,
          childPath(path, 'redirectCode'),
          `${redirect.redirectCode} is not a valid redirect code, must be 3xx`,
        );
      }
      if (redirect.scheme && redirect.scheme !== 'http' && redirect.scheme !== 'https') {
        problems.error(ProblemCode.InvalidValue, childPath(path, 'scheme'), 'invalid redirect scheme, must be "http" or "https"');
      }
      if (redirect.port !== undefined && redirect.port > 0) report(problems, childPath(path, 'port'), portError(redirect.port));
    },
  },
);

const KB = 1024;
const MB = 1024 * KB;

function checkHttpStatus(status: number, path: string, problems: ProblemCollector): void {
  if (status < 200 || status > 599) problems.error(ProblemCode.InvalidValue, path, `HTTP status ${status} is not in range 200-599`);
}

const directResponseSchema: Schema = object<HTTPDirectResponse>(
  { status: integer(), body: object({ string: string(), bytes: string() }, { oneOf: [['string', 'bytes']] }) },
  {
    required: ['status'],
    check: (response, path, problems) => {
      checkHttpStatus(response.status, childPath(path, 'status'), problems);
      const body = response.body;
      const size =
        body?.string !== undefined
          ? Buffer.byteLength(body.string)
          : body?.bytes !== undefined
            ? Buffer.from(body.bytes, 'base64').length
            : 0;
      if (size > MB) {
        problems.error(
          ProblemCode.InvalidValue,
          childPath(path, 'body'),
          'large direct_responses may impact control plane performance, must be less than 1MB',
        );
      } else if (size > 100 * KB) {
        problems.warn(ProblemCode.SuspiciousConfig, childPath(path, 'body'), 'large direct_responses may impact control plane performance');
      }
    },
  },
);

const rewriteSchema: Schema = object<HTTPRewrite>(
  { uri: string(), authority: string(), uriRegexRewrite: object({ match: string(), rewrite: string() }) },
  {
    check: (rewrite, path, problems) => {
      if (rewrite.uri && rewrite.uriRegexRewrite) {
        problems.error(
          ProblemCode.ConflictingFields,
          childPath(path, 'uriRegexRewrite'),
          'rewrite may only contain one of uri or uriRegexRewrite',
        );
      }
      if (!rewrite.uri && !rewrite.uriRegexRewrite && !rewrite.authority) {
        problems.error(ProblemCode.MissingRequiredField, path, 'rewrite must specify at least one of uri, uriRegexRewrite, or authority');
      }
      const regexRewrite = rewrite.uriRegexRewrite;
      if (regexRewrite) {
        const at = childPath(path, 'uriRegexRewrite');
        if (!regexRewrite.match || !regexRewrite.rewrite) {
          problems.error(ProblemCode.MissingRequiredField, at, 'uriRegexRewrite requires both rewrite and match fields to be specified');
        } else {
          report(problems, childPath(at, 'match'), re2Error(regexRewrite.match));
        }
      }
    },
  },
);

/** Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on policies. */
const RETRY_ON_POLICIES = new Set([
  '5xx',
  'gateway-error',
  'reset',
  'reset-before-request',
  'connect-failure',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
  'retriable-headers',
  'envoy-ratelimited',
  'http3-post-connect-failure',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
]);

/** Status codes Go's net/http names (Istio accepts a numeric retryOn only when http.StatusText knows it). */
const KNOWN_HTTP_STATUS = new Set([
  100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403, 404,
  405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 418, 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, 500, 501, 502,
  503, 504, 505, 506, 507, 508, 510, 511,
]);

const retriesSchema: Schema = object<HTTPRetry & { backoff?: string }>(
  {
    attempts: integer({ min: 0 }),
    perTryTimeout: duration(),
    retryOn: string(),
    retryRemoteLocalities: boolean(),
    retryIgnorePreviousHosts: boolean(),
    backoff: duration(),
  },
  {
    check: (retries, path, problems) => {
      if (
        (retries.attempts ?? 0) === 0 &&
        (retries.perTryTimeout !== undefined || retries.retryOn || retries.retryRemoteLocalities !== undefined)
      ) {
        problems.error(
          ProblemCode.ConflictingFields,
          childPath(path, 'attempts'),
          'http retry policy configured when attempts are set to 0 (disabled)',
        );
      }
      if (retries.retryOn) {
        for (const policy of retries.retryOn.split(',')) {
          const asStatus = /^\d+$/.test(policy) ? Number(policy) : NaN;
          if (!KNOWN_HTTP_STATUS.has(asStatus) && !RETRY_ON_POLICIES.has(policy)) {
            const spaceHint = policy !== policy.trim() ? ' (no spaces around commas)' : '';
            problems.error(
              ProblemCode.InvalidValue,
              childPath(path, 'retryOn'),
              `${JSON.stringify(policy)} is not a valid retryOn policy${spaceHint}; use Envoy's policies (5xx, gateway-error, reset, connect-failure, retriable-4xx, refused-stream, retriable-status-codes, ...) or HTTP status codes`,
            );
          }
        }
      }
    },
  },
);

/** gRPC status names Istio accepts for abort.grpcStatus (pkg/util/grpc). */
const GRPC_STATUS = new Set([
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
]);

/** Fault percentages: 0, or within [0.0001, 100]. */
const faultPercentage: Schema = object(
  { value: number() },
  {
    check: (p: { value?: number }, path, problems) => {
      const value = p.value ?? 0;
      if (value < 0 || value > 100 || (value > 0 && value < 0.0001)) {
        problems.error(
          ProblemCode.InvalidValue,
          childPath(path, 'value'),
          `percentage ${value} is neither 0.0, nor in range [0.0001, 100.0]`,
        );
      }
    },
  },
);

const faultSchema: Schema = object<HTTPFaultInjection>(
  {
    delay: object(
      { fixedDelay: duration(), exponentialDelay: duration(), percentage: faultPercentage, percent: integer({ min: 0, max: 100 }) },
      {
        oneOf: [['fixedDelay', 'exponentialDelay']],
        check: (delay: { fixedDelay?: string; exponentialDelay?: string }, path, problems) => {
          if (delay.exponentialDelay !== undefined) {
            problems.error(
              ProblemCode.InvalidValue,
              childPath(path, 'exponentialDelay'),
              'exponentialDelay not supported yet; use fixedDelay',
            );
          } else if (delay.fixedDelay === undefined) {
            problems.error(ProblemCode.MissingRequiredField, childPath(path, 'fixedDelay'), 'a delay needs fixedDelay');
          }
        },
      },
    ),
    abort: object(
      { httpStatus: integer(), grpcStatus: string(), http2Error: string(), percentage: faultPercentage },
      {
        oneOf: [['httpStatus', 'grpcStatus', 'http2Error']],
        check: (abort: { httpStatus?: number; grpcStatus?: string; http2Error?: string }, path, problems) => {
          if (abort.grpcStatus !== undefined) {
            if (!GRPC_STATUS.has(abort.grpcStatus)) {
              problems.error(
                ProblemCode.InvalidValue,
                childPath(path, 'grpcStatus'),
                `gRPC status ${JSON.stringify(abort.grpcStatus)} is not supported; use a name like NOT_FOUND or UNAVAILABLE (https://github.com/grpc/grpc/blob/master/doc/statuscodes.md)`,
              );
            }
          } else if (abort.http2Error !== undefined) {
            problems.error(ProblemCode.InvalidValue, childPath(path, 'http2Error'), 'HTTP/2 abort fault injection not supported yet');
          } else if (abort.httpStatus !== undefined) {
            checkHttpStatus(abort.httpStatus, childPath(path, 'httpStatus'), problems);
          } else {
            problems.warn(ProblemCode.SuspiciousConfig, path, 'abort configured, but error type not set; set httpStatus or grpcStatus');
          }
        },
      },
    ),
  },
  {
    check: (fault, path, problems) => {
      if (!fault.abort && !fault.delay)
        problems.error(ProblemCode.MissingRequiredField, path, 'HTTP fault injection must have an abort and/or a delay');
    },
  },
);

const CORS_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', '*']);

const corsHeaderNames: Schema = arrayOf(string({ check: (name, path, problems) => report(problems, path, corsHeaderNameError(name)) }));

const corsPolicySchema: Schema = object<CorsPolicy>(
  {
    allowOrigin: arrayOf(string()),
    allowOrigins: arrayOf(stringMatch('corsPolicy.allowOrigins')),
    allowMethods: arrayOf(
      string({
        check: (method, path, problems) => {
          if (!CORS_METHODS.has(method))
            problems.error(ProblemCode.InvalidValue, path, `${JSON.stringify(method)} is not a supported HTTP method`);
        },
      }),
    ),
    allowHeaders: corsHeaderNames,
    exposeHeaders: corsHeaderNames,
    maxAge: duration({ secondsPrecision: true }),
    allowCredentials: boolean(),
    unmatchedPreflights: enumOf(['UNSPECIFIED', 'FORWARD', 'IGNORE']),
  },
  { deprecated: { allowOrigin: 'use allowOrigins' } },
);

const mirrorPercentage: Schema = object(
  { value: number() },
  {
    check: (p: { value?: number }, path, problems) => {
      const value = p.value ?? 0;
      if (value > 100)
        problems.error(
          ProblemCode.InvalidValue,
          childPath(path, 'value'),
          `mirror percentage must have a max value of 100 (it has ${value})`,
        );
      if (value < 0)
        problems.error(
          ProblemCode.InvalidValue,
          childPath(path, 'value'),
          `mirror percentage must have a min value of 0 (it has ${value})`,
        );
    },
  },
);

// ---------------------------------------------------------------------------------------------
// HTTP routes

/** validateHTTPRouteConflict: what an HTTP route may combine. */
function checkHttpRouteActions(http: HTTPRoute, path: string, problems: ProblemCollector): void {
  const at = (field: string) => childPath(path, field);
  const hasRoute = (http.route?.length ?? 0) > 0;
  if (http.delegate) {
    // A root route only delegates.
    if (http.redirect)
      problems.error(
        ProblemCode.ConflictingFields,
        at('redirect'),
        `root HTTP route${http.name ? ` ${http.name}` : ''} must not specify redirect`,
      );
    if (http.route)
      problems.error(
        ProblemCode.ConflictingFields,
        at('route'),
        `root HTTP route${http.name ? ` ${http.name}` : ''} must not specify route`,
      );
    return;
  }
  if (http.redirect) {
    if (hasRoute) problems.error(ProblemCode.ConflictingFields, at('redirect'), 'HTTP route cannot contain both route and redirect');
    if (http.fault) problems.error(ProblemCode.ConflictingFields, at('fault'), 'HTTP route cannot contain both fault and redirect');
    if (http.rewrite)
      problems.error(ProblemCode.ConflictingFields, at('rewrite'), 'HTTP route rule cannot contain both rewrite and redirect');
    if (http.directResponse)
      problems.error(
        ProblemCode.ConflictingFields,
        at('directResponse'),
        'HTTP route rule cannot contain both directResponse and redirect',
      );
  } else if (http.directResponse) {
    if (hasRoute)
      problems.error(ProblemCode.ConflictingFields, at('directResponse'), 'HTTP route cannot contain both route and directResponse');
    if (http.fault) problems.error(ProblemCode.ConflictingFields, at('fault'), 'HTTP route cannot contain both fault and directResponse');
    if (http.rewrite)
      problems.error(ProblemCode.ConflictingFields, at('rewrite'), 'HTTP route rule cannot contain both rewrite and directResponse');
  } else if (!hasRoute) {
    problems.error(ProblemCode.MissingRequiredField, at('route'), 'HTTP route, redirect or directResponse is required');
  }
  if (http.mirror && (http.mirrors?.length ?? 0) > 0) {
    problems.error(ProblemCode.ConflictingFields, at('mirrors'), 'HTTP route cannot contain both mirror and mirrors');
  }
}

/** validateAuthorityRewrite: the authority may be rewritten in one place only. */
function checkAuthorityRewrite(http: HTTPRoute, path: string, problems: ProblemCollector): void {
  let current = http.rewrite?.authority ?? '';
  const request = http.headers?.request;
  for (const [operation, headers] of [
    ['set', request?.set],
    ['add', request?.add],
  ] as const) {
    for (const [name, value] of Object.entries(headers ?? {})) {
      if (!isAuthorityHeader(name)) continue;
      if (current) {
        const at = childPath(childPath(childPath(childPath(path, 'headers'), 'request'), operation), name);
        problems.error(
          ProblemCode.ConflictingFields,
          at,
          `authority header cannot be set multiple times: have ${JSON.stringify(current)}, attempting to set ${JSON.stringify(value)}`,
        );
        return;
      }
      current = value;
    }
  }
}

const httpRoute: Schema = object<HTTPRoute & { mirrorPercent?: number }>(
  {
    name: string(),
    match: arrayOf(httpMatchRequest),
    route: arrayOf(httpRouteDestination, { check: checkTotalWeight }),
    redirect: redirectSchema,
    directResponse: directResponseSchema,
    delegate: object({ name: string(), namespace: string() }),
    rewrite: rewriteSchema,
    timeout: duration(),
    retries: retriesSchema,
    fault: faultSchema,
    mirror: destinationSchema,
    mirrors: arrayOf(object({ destination: destinationSchema, percentage: mirrorPercentage }, { required: ['destination'] })),
    mirrorPercent: integer({ min: 0, max: 100 }),
    mirrorPercentage,
    corsPolicy: corsPolicySchema,
    headers: headersSchema,
  },
  {
    deprecated: { mirrorPercent: 'use mirrorPercentage' },
    check: (http, path, problems) => {
      checkHttpRouteActions(http, path, problems);
      checkAuthorityRewrite(http, path, problems);
    },
  },
);

// ---------------------------------------------------------------------------------------------
// TCP and TLS routes

const l4MatchFields = {
  destinationSubnets: arrayOf(string({ check: (subnet, path, problems) => report(problems, path, ipSubnetError(subnet)) })),
  port: matchPort,
  sourceLabels: labelMap(),
  gateways: gatewayNames,
  sourceNamespace,
  sourceSubnet: string(),
};

const tcpRoute: Schema = object(
  { match: arrayOf(object(l4MatchFields)), route: arrayOf(routeDestination, { check: checkTotalWeight }) },
  { required: ['route'] },
);

const tlsRoute: Schema = object(
  {
    match: arrayOf(object({ ...l4MatchFields, sniHosts: arrayOf(string()) }, { required: ['sniHosts'] })),
    route: arrayOf(routeDestination, { check: checkTotalWeight }),
  },
  { required: ['match', 'route'] },
);

// ---------------------------------------------------------------------------------------------
// The VirtualService as a whole

interface VirtualServiceShape {
  hosts?: unknown;
  gateways?: unknown;
  http?: unknown;
  tls?: unknown;
  tcp?: unknown;
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function objects(value: unknown): Json[] {
  return Array.isArray(value) ? value.filter(isPlainObject) : [];
}

/**
 * Checks that need the whole resource: hosts against gateway binding, delegate rules, SNI hosts,
 * JWT-claim routing and unreachable rules. Written defensively: it also runs when some nested
 * field has a type error, so those errors do not hide these.
 */
function checkVirtualService(vs: VirtualServiceShape, path: string, problems: ProblemCollector): void {
  const at = (...segments: (string | number)[]) =>
    segments.reduce<string>((p, s) => (typeof s === 'number' ? indexPath(p, s) : childPath(p, s)), path);
  const hosts = strings(vs.hosts);
  const gateways = strings(vs.gateways);
  const http = objects(vs.http);
  const tls = objects(vs.tls);
  const tcp = objects(vs.tcp);

  if (hosts.length === 0) {
    // No hosts: a delegate VirtualService, which only other VirtualServices' routes can use.
    if (gateways.length > 0)
      problems.error(ProblemCode.ConflictingFields, at('gateways'), 'delegate virtual service (no hosts) must have no gateways specified');
    if (tls.length > 0)
      problems.error(ProblemCode.ConflictingFields, at('tls'), 'delegate virtual service (no hosts) must have no tls route specified');
    if (tcp.length > 0)
      problems.error(ProblemCode.ConflictingFields, at('tcp'), 'delegate virtual service (no hosts) must have no tcp route specified');
    http.forEach((route, i) => {
      if (route.delegate !== undefined && route.delegate !== null)
        problems.error(ProblemCode.ConflictingFields, at('http', i, 'delegate'), 'delegate HTTP route cannot contain delegate');
    });
  }

  const appliesToGateway = gateways.length > 0 && !gateways.includes('mesh');
  const appliesToMesh = !appliesToGateway;

  if (!appliesToGateway) {
    http.forEach((route, i) =>
      objects(route.match).forEach((match, j) => {
        for (const field of ['headers', 'withoutHeaders'] as const) {
          for (const key of Object.keys(isPlainObject(match[field]) ? (match[field] as Json) : {})) {
            if (isJwtClaimHeader(key)) {
              problems.error(
                ProblemCode.InvalidValue,
                at('http', i, 'match', j, field, key),
                `JWT claim based routing (key: ${key}) is only supported for gateway, found no gateways: [${gateways.join(' ')}]`,
              );
            }
          }
        }
      }),
    );
  }

  const sni = tls.some((route) => objects(route.match).some((m) => strings(m.sniHosts).length > 0));
  let allHostsValid = true;
  hosts.forEach((host, i) => {
    const error = appliesToGateway ? gatewayBoundHostError(host, sni) : wildcardDomainError(host);
    if (error) {
      if (!isIpAddress(host)) {
        problems.error(ProblemCode.InvalidValue, at('hosts', i), error);
        allHostsValid = false;
      }
    } else if (appliesToMesh && host === '*') {
      problems.error(
        ProblemCode.InvalidValue,
        at('hosts', i),
        'wildcard host * is not allowed for virtual services bound to the mesh gateway',
      );
      allHostsValid = false;
    }
  });
  if (allHostsValid) {
    for (let i = 0; i < hosts.length; i++) {
      for (let j = i + 1; j < hosts.length; j++) {
        if (hostsOverlap(hosts[i], hosts[j])) {
          problems.error(ProblemCode.DuplicateEntry, at('hosts', j), `duplicate hosts in virtual service: ${hosts[i]} & ${hosts[j]}`);
        }
      }
    }
  }

  if (http.length === 0 && tcp.length === 0 && tls.length === 0) {
    problems.error(ProblemCode.MissingRequiredField, path, 'http, tcp or tls must be provided in virtual service');
  }

  tls.forEach((route, i) =>
    objects(route.match).forEach((match, j) =>
      strings(match.sniHosts).forEach((sniHost, k) =>
        checkSniHost(sniHost, hosts, appliesToGateway, at('tls', i, 'match', j, 'sniHosts', k), problems),
      ),
    ),
  );

  reportUnreachableRules('http', http, path, problems);
  reportUnreachableRules('tcp', tcp, path, problems);
  reportUnreachableRules('tls', tls, path, problems);
}

function checkSniHost(sniHost: string, hosts: string[], appliesToGateway: boolean, path: string, problems: ProblemCollector): void {
  const error = appliesToGateway ? gatewayBoundHostError(sniHost, true) : wildcardDomainError(sniHost);
  if (error) {
    if (isIpAddress(sniHost)) {
      problems.warn(
        ProblemCode.SuspiciousConfig,
        path,
        `using an IP address (${JSON.stringify(sniHost)}) goes against SNI spec and most clients do not support this`,
      );
    } else {
      problems.error(ProblemCode.InvalidValue, path, error);
    }
    return;
  }
  if (!hosts.some((host) => hostIsSubsetOf(sniHost, host))) {
    problems.error(
      ProblemCode.InvalidValue,
      path,
      `SNI host ${JSON.stringify(sniHost)} is not a compatible subset of any of the virtual service hosts: [${hosts.join(', ')}]`,
    );
  }
}

/**
 * Istio's analyzeUnreachable{HTTP,TCP,TLS}Rules: a rule after a match-all rule is never reached, and
 * a match identical to an earlier one (ignoring its name) is never used.
 */
function reportUnreachableRules(field: 'http' | 'tcp' | 'tls', routes: Json[], path: string, problems: ProblemCollector): void {
  const seen = new Map<string, number>();
  let catchAll = -1;
  routes.forEach((route, i) => {
    const routePath = indexPath(childPath(path, field), i);
    const label = typeof route.name === 'string' && route.name ? JSON.stringify(route.name) : `#${i}`;
    const matches = Array.isArray(route.match) ? route.match : [];
    if (matches.length === 0) {
      if (catchAll >= 0)
        problems.warn(
          ProblemCode.VirtualServiceUnreachableRule,
          routePath,
          `virtualService rule ${label} not used (only the last rule can have no matches)`,
        );
      catchAll = i;
      return;
    }
    if (catchAll >= 0) {
      problems.warn(
        ProblemCode.VirtualServiceUnreachableRule,
        routePath,
        `virtualService rule ${label} not used (route without matches defined before)`,
      );
      return;
    }
    let duplicates = 0;
    matches.forEach((match, j) => {
      const key = canonicalMatch(match);
      const earlier = seen.get(key);
      if (earlier !== undefined) {
        duplicates++;
        const matchLabel = isPlainObject(match) && typeof match.name === 'string' && match.name ? JSON.stringify(match.name) : `#${j}`;
        problems.warn(
          ProblemCode.VirtualServiceIneffectiveMatch,
          indexPath(childPath(routePath, 'match'), j),
          `virtualService rule ${label} match ${matchLabel} is not used (duplicate/overlapping match in rule #${earlier})`,
        );
      } else {
        seen.set(key, i);
      }
    });
    if (duplicates === matches.length)
      problems.warn(
        ProblemCode.VirtualServiceUnreachableRule,
        routePath,
        `virtualService rule ${label} not used (all matches used by prior rules)`,
      );
  });
}

/** JSON of a match with sorted keys and without its name, for comparing matches. */
function canonicalMatch(match: unknown): string {
  const sortKeys = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(sortKeys);
    if (isPlainObject(value)) {
      return Object.fromEntries(
        Object.keys(value)
          .sort()
          .map((k) => [k, sortKeys(value[k])]),
      );
    }
    return value;
  };
  const withoutName = isPlainObject(match) ? { ...match, name: undefined } : match;
  return JSON.stringify(sortKeys(withoutName));
}

const virtualServiceObject: Schema = object({
  hosts: arrayOf(string()),
  gateways: gatewayNames,
  http: arrayOf(httpRoute),
  tls: arrayOf(tlsRoute),
  tcp: arrayOf(tcpRoute),
  exportTo: exportToList(false),
});

export const virtualServiceSpec: Schema = {
  typeName: 'object',
  validate(value, path, problems) {
    const ok = virtualServiceObject.validate(value, path, problems);
    if (ok) checkVirtualService(value as VirtualServiceShape, path, problems);
    return ok;
  },
};
