// Istio's value formats: DNS names and wildcard hosts, label selectors, IPs and CIDRs, ports, durations,
// protocols, header names and values, RE2 regexes. Each check returns an error message, or undefined.
// Ported from istio/istio pkg/config/validation (validation.go, agent/validation.go, labels/instance.go).
import { isIP } from 'node:net';

// ---------------------------------------------------------------------------------------------
// DNS names

const DNS1123_LABEL = /^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const WILDCARD_LABEL = /^(\*|(\*|\*-)?[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)$/;
const LABEL_MAX = 63;

/** A DNS-1123 label as Istio checks it (letters of either case, digits, inner '-'; at most 63). */
export function isDns1123Label(value: string): boolean {
  return value.length <= LABEL_MAX && DNS1123_LABEL.test(value);
}

function isWildcardDns1123Label(value: string): boolean {
  return value.length <= LABEL_MAX && WILDCARD_LABEL.test(value);
}

/** Kubernetes object names: lowercase DNS-1123 subdomain, at most 253 characters. */
export function kubernetesNameError(name: string): string | undefined {
  if (name.length > 253) return `name ${JSON.stringify(name)} is longer than 253 characters`;
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(name)) {
    return `name ${JSON.stringify(name)} must be a lowercase DNS-1123 subdomain (letters, digits, '-' and '.', starting and ending with a letter or digit)`;
  }
  return undefined;
}

/** Kubernetes namespaces and names that must be a lowercase DNS-1123 label (no dots). */
export function kubernetesLabelNameError(name: string, what = 'name'): string | undefined {
  if (name.length > LABEL_MAX || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name)) {
    return `${what} ${JSON.stringify(name)} must be a lowercase DNS-1123 label (at most 63 letters, digits and '-', no dots)`;
  }
  return undefined;
}

/** Kubernetes Service names: DNS-1035 label (must start with a letter). */
export function dns1035LabelError(name: string, what = 'name'): string | undefined {
  if (name.length > LABEL_MAX || !/^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(name)) {
    return `${what} ${JSON.stringify(name)} must be a DNS-1035 label (lowercase letters, digits and '-', starting with a letter, at most 63)`;
  }
  return undefined;
}

function dns1123PreconditionError(name: string): string | undefined {
  if (name.length > 255) return `domain name ${JSON.stringify(name)} too long (max 255)`;
  if (name.length === 0) return 'empty domain name not allowed';
  return undefined;
}

function dns1123LabelsError(domain: string): string | undefined {
  const parts = domain.split('.');
  const topLevel = parts[parts.length - 1];
  if (/^[-+]?\d+$/.test(topLevel)) {
    return `domain name ${JSON.stringify(domain)} invalid (top level domain ${JSON.stringify(topLevel)} cannot be all-numeric)`;
  }
  for (let i = 0; i < parts.length; i++) {
    // The last label may be empty, for unambiguous names like `istio.io.`
    if (i === parts.length - 1 && parts[i] === '') return undefined;
    if (!isDns1123Label(parts[i])) return `domain name ${JSON.stringify(domain)} invalid (label ${JSON.stringify(parts[i])} invalid)`;
  }
  return undefined;
}

/** Istio's ValidateFQDN. */
export function fqdnError(fqdn: string): string | undefined {
  return dns1123PreconditionError(fqdn) ?? dns1123LabelsError(fqdn);
}

/** Istio's ValidateWildcardDomain: an FQDN whose first label may be a wildcard ('*', '*.example.com', '*-foo.bar'). */
export function wildcardDomainError(domain: string): string | undefined {
  const precondition = dns1123PreconditionError(domain);
  if (precondition) return precondition;
  const dot = domain.indexOf('.');
  const first = dot < 0 ? domain : domain.slice(0, dot);
  if (!isWildcardDns1123Label(first)) return `domain name ${JSON.stringify(domain)} invalid (label ${JSON.stringify(first)} invalid)`;
  return dot < 0 ? undefined : dns1123LabelsError(domain.slice(dot + 1));
}

/** Istio's ValidatePartialWildCard: only a leading '*.' or a lone '*' may hold a wildcard. */
export function partialWildcardError(host: string): string | undefined {
  if (host.includes('*') && host.length !== 1 && !host.startsWith('*.')) return `partial wildcard ${JSON.stringify(host)} not allowed`;
  return undefined;
}

/**
 * ValidateWildcardDomainForVirtualServiceBoundToGateway: like wildcardDomainError, but SNI hosts may use
 * the auto-generated `outbound_.<PORT>_._.<HOSTNAME>` form (AUTO_PASSTHROUGH gateways).
 */
export function gatewayBoundHostError(domain: string, sni: boolean): string | undefined {
  const precondition = dns1123PreconditionError(domain);
  if (precondition) return precondition;
  if (sni && domain.startsWith('outbound_')) {
    const parts = domain.split('_');
    if (parts.length < 4) return `domain name ${domain} invalid, should follow 'outbound_.<PORT>_._.<HOSTNAME>' format`;
    const port = parts[1].replace(/^\.+|\.+$/g, '');
    const hostname = parts[3].replace(/^\.+|\.+$/g, '');
    if (!/[0-9]/.test(port))
      return `domain name ${JSON.stringify(domain)} invalid (label ${JSON.stringify(port)} invalid). should follow outbound_.<PORT>_._.<HOSTNAME> format`;
    if (!/[a-zA-Z]/.test(hostname))
      return `domain name ${JSON.stringify(domain)} invalid (label ${JSON.stringify(hostname)} invalid). should follow outbound_.<PORT>_._.<HOSTNAME> format`;
    return undefined;
  }
  return wildcardDomainError(domain);
}

/**
 * Hosts in Gateway servers and Sidecar egress listeners: `namespace/dnsName` (required for Sidecar;
 * Gateways also accept a bare dnsName). Istio's ValidateNamespaceSlashWildcardHostname.
 */
export function namespaceSlashHostErrors(host: string, isGateway: boolean): string[] {
  const slash = host.indexOf('/');
  if (slash < 0) {
    if (isGateway) return gatewayOrSidecarHostPartErrors(host, true);
    return ['host must be of form namespace/dnsName'];
  }
  const namespace = host.slice(0, slash);
  const dnsName = host.slice(slash + 1);
  const errors: string[] = [];
  if (!namespace || !dnsName) errors.push('config namespace and dnsName in host entry cannot be empty');
  if (namespace !== '*' && namespace !== '.' && (isGateway || namespace !== '~') && !isDns1123Label(namespace)) {
    errors.push(`invalid namespace value ${JSON.stringify(namespace)} in ${isGateway ? 'gateway' : 'sidecar'}`);
  }
  errors.push(...gatewayOrSidecarHostPartErrors(dnsName, isGateway));
  return errors;
}

function gatewayOrSidecarHostPartErrors(hostname: string, isGateway: boolean): string[] {
  const errors: string[] = [];
  if (hostname !== '*' && !hostname.includes('.')) errors.push('short names (non FQDN) are not allowed');
  const domainError = wildcardDomainError(hostname);
  // Gateways also accept an IP address as the host.
  if (domainError && !(isGateway && isIpAddress(hostname))) errors.push(domainError);
  const partial = partialWildcardError(hostname);
  if (partial) errors.push(partial);
  return errors;
}

// ---------------------------------------------------------------------------------------------
// Host names as Istio compares them (pkg/config/host.Name)

function isWildcardHost(host: string): boolean {
  return host.startsWith('*');
}

/** host.Name.Matches: true when the two hosts (either may be a wildcard) can select the same name. */
export function hostsOverlap(a: string, b: string): boolean {
  const aWild = isWildcardHost(a);
  const bWild = isWildcardHost(b);
  if (aWild && bWild) {
    const aSuffix = a.slice(1);
    const bSuffix = b.slice(1);
    return aSuffix.length > bSuffix.length ? aSuffix.endsWith(bSuffix) : bSuffix.endsWith(aSuffix);
  }
  if (aWild) return b.endsWith(a.slice(1));
  if (bWild) return a.endsWith(b.slice(1));
  return a === b;
}

/** host.Name.SubsetOf: every name `a` selects is also selected by `b`. */
export function hostIsSubsetOf(a: string, b: string): boolean {
  if (isWildcardHost(a)) return isWildcardHost(b) && a.slice(1).endsWith(b.slice(1));
  if (isWildcardHost(b)) return a.endsWith(b.slice(1));
  return a === b;
}

// ---------------------------------------------------------------------------------------------
// Addresses and ports

export function isIpAddress(value: string): boolean {
  return isIP(value) !== 0;
}

export function ipAddressError(value: string): string | undefined {
  return isIpAddress(value) ? undefined : `${value} is not a valid IP`;
}

/** An IP or a CIDR block (Istio's ValidateIPSubnet). */
export function ipSubnetError(subnet: string): string | undefined {
  const parts = subnet.split('/');
  if (parts.length === 2) {
    const family = isIP(parts[0]);
    const bits = /^\d{1,3}$/.test(parts[1]) ? Number(parts[1]) : -1;
    if (family === 0 || bits < 0 || bits > (family === 4 ? 32 : 128)) return `${subnet} is not a valid CIDR block`;
    return undefined;
  }
  return ipAddressError(subnet);
}

export function portError(port: number): string | undefined {
  if (Number.isInteger(port) && port >= 1 && port <= 65535) return undefined;
  return `port number ${port} must be in the range 1..65535`;
}

export const UNIX_ADDRESS_PREFIX = 'unix://';

/** The part after unix:// must be an absolute file path or an abstract socket (@name). */
export function unixAddressError(address: string): string | undefined {
  if (address.length === 0) return 'unix address must not be empty';
  if (address.startsWith('@')) return undefined;
  if (!address.startsWith('/') || address.endsWith('/')) return `${address} is not an absolute path to a file`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Labels (pkg/config/labels: Kubernetes label syntax)

const QUALIFIED_NAME = '(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]';
const DNS_LABEL_FMT = '[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?';
const LABEL_KEY = new RegExp(`^(${DNS_LABEL_FMT}(?:\\.${DNS_LABEL_FMT})*/)?(${QUALIFIED_NAME})$`);
const LABEL_VALUE = new RegExp(`^(${QUALIFIED_NAME})?$`);

export function labelKeyError(key: string): string | undefined {
  const match = LABEL_KEY.exec(key);
  if (!match) return `invalid label key ${JSON.stringify(key)}`;
  if (match[1] && match[1].length - 1 > 253) return `invalid label key ${JSON.stringify(key)} (DNS prefix is too long)`;
  if (match[2].length > LABEL_MAX) return `invalid label key ${JSON.stringify(key)} (name is too long)`;
  return undefined;
}

export function labelValueError(value: string): string | undefined {
  if (!LABEL_VALUE.test(value)) return `invalid label value ${JSON.stringify(value)}`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Durations (Go's time.ParseDuration, which Kubernetes' CEL duration() and Istio use)

const NANOS_PER_UNIT: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n,
  μs: 1_000n,
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

/** Parses "1h30m", "1.5s", "100ms", "0" into nanoseconds; undefined when malformed. */
export function parseDurationNanos(text: string): bigint | undefined {
  let rest = text;
  let sign = 1n;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest[0] === '-') sign = -1n;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0n;
  if (rest === '') return undefined;
  const component = /^(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)/;
  let total = 0n;
  while (rest.length > 0) {
    const match = component.exec(rest);
    if (!match || (match[1] === '' && (match[2] === undefined || match[2] === ''))) return undefined;
    const unit = NANOS_PER_UNIT[match[3]];
    total += BigInt(match[1] || '0') * unit;
    if (match[2]) total += (BigInt(match[2]) * unit) / 10n ** BigInt(match[2].length);
    rest = rest.slice(match[0].length);
  }
  return sign * total;
}

/** Milliseconds (possibly fractional), or undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const nanos = parseDurationNanos(text);
  return nanos === undefined ? undefined : Number(nanos) / 1e6;
}

// ---------------------------------------------------------------------------------------------
// Protocols (pkg/config/protocol)

const PROTOCOLS: Record<string, string> = {
  tcp: 'TCP',
  udp: 'UDP',
  grpc: 'GRPC',
  'grpc-web': 'GRPC-Web',
  http: 'HTTP',
  http_proxy: 'HTTP_PROXY',
  http2: 'HTTP2',
  https: 'HTTPS',
  tls: 'TLS',
  mongo: 'Mongo',
  redis: 'Redis',
  mysql: 'MySQL',
};

/** Canonical protocol name, case-insensitively, or undefined when Istio does not know it. */
export function parseProtocol(name: string): string | undefined {
  return PROTOCOLS[name.toLowerCase()];
}

export function protocolError(name: string): string | undefined {
  if (name === '' || parseProtocol(name)) return undefined;
  return `unsupported protocol ${JSON.stringify(name)}; use one of HTTP, HTTPS, HTTP2, GRPC, GRPC-WEB, TCP, TLS, UDP, MONGO, REDIS, MYSQL`;
}

export function isHttpProtocol(name: string | undefined): boolean {
  const p = name ? parseProtocol(name) : undefined;
  return p === 'HTTP' || p === 'HTTP2' || p === 'HTTP_PROXY' || p === 'GRPC' || p === 'GRPC-Web';
}

export function isTlsProtocol(name: string | undefined): boolean {
  const p = name ? parseProtocol(name) : undefined;
  return p === 'HTTPS' || p === 'TLS';
}

// ---------------------------------------------------------------------------------------------
// HTTP headers

const TOKEN = /^[!#$%&'*+\-.^_`|~A-Za-z0-9]+$/;
const PSEUDO_HEADERS = new Set([':method', ':scheme', ':authority', ':path', ':status']);

/** Header names in route matches: an RFC 7230 token, a pseudo header, or a JWT claim (@request.auth.claims.x). */
export function matchHeaderNameError(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  if (isJwtClaimHeader(name) || PSEUDO_HEADERS.has(name)) return undefined;
  if (!TOKEN.test(name)) return `header name ${name} is not a valid header name`;
  return undefined;
}

export function isJwtClaimHeader(name: string): boolean {
  return /^@request\.auth\.claims(\.|\[)./.test(name);
}

/** Request header add/set: no pseudo headers except :authority (validated separately). */
export function requestHeaderOperationNameError(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  if (isInternalHeader(name) && !isAuthorityHeader(name)) return `invalid header ${JSON.stringify(name)}: header cannot have ":" prefix`;
  return undefined;
}

/** Request header removal and all response header operations. */
export function headerOperationNameError(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  if (name.toLowerCase() === 'host') return `invalid header ${JSON.stringify(name)}: cannot set Host header`;
  if (isInternalHeader(name)) return `invalid header ${JSON.stringify(name)}: header cannot have ":" prefix`;
  return undefined;
}

export function isInternalHeader(name: string): boolean {
  return name.startsWith(':') || name.toLowerCase() === 'host';
}

export function isAuthorityHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return lower === ':authority' || lower === 'host';
}

/** CORS allow/expose header names: a token or '*'. */
export function corsHeaderNameError(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  if (name === '*' || TOKEN.test(name)) return undefined;
  return `header name ${name} is not a valid header name`;
}

/**
 * Envoy header values: no control characters, and '%' only as '%%' or around a command such as
 * %HOSTNAME% or %REQ(x-foo)% (Envoy's custom header formatter).
 */
export function headerValueError(value: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000A-\u001F\u007F]/.test(value))
    return `header value configuration ${JSON.stringify(value)} contains control characters`;
  for (let i = 0; i < value.length; i++) {
    if (value[i] !== '%') continue;
    if (value[i + 1] === '%') {
      i++;
      continue;
    }
    const end = value.indexOf('%', i + 1);
    if (end < 0)
      return `header value configuration ${JSON.stringify(value)} has an unterminated '%'; write '%%' for a literal percent sign`;
    const command = value.slice(i + 1, end);
    if (!/^[A-Z][A-Z0-9_]*(\(.*\))?(:\d+)?$/.test(command)) {
      return `header value configuration ${JSON.stringify(value)} has an invalid %${command}% command; write '%%' for a literal percent sign`;
    }
    i = end;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Regular expressions: Istio and Envoy use RE2

const MAX_REGEX_LENGTH = 1024;

/**
 * Checks that `pattern` is a valid RE2 regex. RE2 differs from JavaScript: it has no lookaround or
 * backreferences, and writes named groups as (?P<name>...) and flags as (?i). We reject what RE2
 * rejects, translate what differs, and let JavaScript's parser catch the remaining syntax errors.
 */
export function re2Error(pattern: string): string | undefined {
  const hint = 'Istio uses RE2 syntax (https://github.com/google/re2/wiki/Syntax)';
  if (pattern.length > MAX_REGEX_LENGTH) return `regex is too large, max length allowed is ${MAX_REGEX_LENGTH}`;
  if (/\(\?(=|!|<=|<!)/.test(pattern))
    return `regex ${JSON.stringify(pattern)} uses lookahead or lookbehind, which RE2 does not support; ${hint}`;
  if (/(^|[^\\])\\[1-9]/.test(pattern)) return `regex ${JSON.stringify(pattern)} uses a backreference, which RE2 does not support; ${hint}`;
  let flags = '';
  let translated = pattern.replace(/\(\?P</g, '(?<');
  const leadingFlags = /^\(\?([imsU]+)\)/.exec(translated);
  if (leadingFlags) {
    flags = [...new Set(leadingFlags[1].replace(/U/g, ''))].join('');
    translated = translated.slice(leadingFlags[0].length);
  }
  translated = translated.replace(/\(\?[imsU-]+:/g, '(?:').replace(/\(\?[imsU-]+\)/g, '');
  try {
    new RegExp(translated, flags);
    return undefined;
  } catch (err) {
    return `invalid regex ${JSON.stringify(pattern)}: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}; ${hint}`;
  }
}

// ---------------------------------------------------------------------------------------------
// exportTo (pkg/config/visibility)

/** Istio's validateExportTo: '.', '*', '~' (ServiceEntry only) or namespaces, without duplicates or mixes. */
export function exportToErrors(namespace: string, exportTo: readonly string[], isServiceEntry: boolean): string[] {
  const errors: string[] = [];
  const seen = new Set<string>();
  for (const entry of exportTo) {
    const key = entry === '.' ? namespace : entry;
    if (seen.has(key)) {
      errors.push(
        key !== entry
          ? `duplicate entries in exportTo: . and current namespace ${namespace}`
          : `duplicate entries in exportTo for entry ${entry}`,
      );
      continue;
    }
    if (entry === '~' && !isServiceEntry) {
      errors.push('exportTo "~" (no one) is only allowed on a ServiceEntry');
      continue;
    }
    if (key !== '*' && key !== '~' && !isDns1123Label(key)) {
      errors.push(`invalid exportTo value ${JSON.stringify(entry)}: must be ".", "*" or a namespace name`);
      continue;
    }
    seen.add(key);
  }
  if (seen.has('*') && exportTo.length > 1) errors.push('cannot have both public (*) and non-public exportTo values for a resource');
  if (seen.has('~') && exportTo.length > 1) errors.push('cannot export service entry to no one (~) and someone');
  return errors;
}
