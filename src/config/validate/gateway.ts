// Gateway (networking.istio.io): structural schema plus Istio's ValidateGateway semantics (servers, ports,
// hosts in namespace/host form, server TLS settings).
import type { GatewayServer, ServerTLSSettings } from '../resources';
import { childPath, indexPath, ProblemCode, type ProblemCollector } from '../problems';
import {
  ipAddressError,
  isHttpProtocol,
  isTlsProtocol,
  namespaceSlashHostErrors,
  parseProtocol,
  portError,
  UNIX_ADDRESS_PREFIX,
  unixAddressError,
} from './formats';
import { arrayOf, boolean, enumOf, integer, mapOf, object, string, type Schema } from './schema';
import { protocolName, report } from './shared-fields';

// ---------------------------------------------------------------------------------------------
// Server TLS settings (also used by Sidecar ingress listeners)

const TLS_VERSIONS = ['TLS_AUTO', 'TLSV1_0', 'TLSV1_1', 'TLSV1_2', 'TLSV1_3'];

/** Cipher suites Envoy's BoringSSL accepts (Istio's security.IsValidCipherSuite). */
const VALID_CIPHER_SUITES = new Set([
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-PSK-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES128-SHA',
  'ECDHE-RSA-AES128-SHA',
  'ECDHE-PSK-AES128-CBC-SHA',
  'ECDHE-ECDSA-AES256-SHA',
  'ECDHE-RSA-AES256-SHA',
  'ECDHE-PSK-AES256-CBC-SHA',
  'AES128-GCM-SHA256',
  'AES256-GCM-SHA384',
  'AES128-SHA',
  'PSK-AES128-CBC-SHA',
  'AES256-SHA',
  'PSK-AES256-CBC-SHA',
  'DES-CBC3-SHA',
]);

function isValidCipherSuite(suite: string): boolean {
  // "[A|B]" is an equal-preference group.
  const group = /^\[(.*)\]$/.exec(suite);
  return group ? group[1].split('|').every((s) => VALID_CIPHER_SUITES.has(s)) : VALID_CIPHER_SUITES.has(suite);
}

interface ServerTls extends ServerTLSSettings {
  caCrl?: string;
  credentialNames?: string[];
  tlsCertificates?: { serverCertificate?: string; privateKey?: string; caCertificates?: string }[];
}

function checkServerTls(tls: ServerTls, path: string, problems: ProblemCollector): void {
  const at = (field: string) => childPath(path, field);
  const mode = tls.mode ?? 'PASSTHROUGH';
  if ((tls.minProtocolVersion === 'TLSV1_0' || tls.minProtocolVersion === 'TLSV1_1') && !tls.cipherSuites?.length) {
    problems.warn(
      ProblemCode.SuspiciousConfig,
      at('minProtocolVersion'),
      'TLS version below TLSV1_2 require setting compatible ciphers as by default they no longer include compatible ciphers.',
    );
  }
  const seen = new Set<string>();
  const invalid: string[] = [];
  const duplicates: string[] = [];
  for (const suite of tls.cipherSuites ?? []) {
    if (!isValidCipherSuite(suite)) invalid.push(suite);
    else if (seen.has(suite)) duplicates.push(suite);
    seen.add(suite);
  }
  if (invalid.length)
    problems.warn(ProblemCode.SuspiciousConfig, at('cipherSuites'), `ignoring invalid cipher suites: [${invalid.sort().join(' ')}]`);
  if (duplicates.length)
    problems.warn(ProblemCode.SuspiciousConfig, at('cipherSuites'), `ignoring duplicate cipher suites: [${duplicates.sort().join(' ')}]`);

  if (mode === 'ISTIO_MUTUAL') {
    // ISTIO_MUTUAL uses the mesh's own certificates.
    const forbidden: [keyof ServerTls, string][] = [
      ['serverCertificate', 'server certificate'],
      ['privateKey', 'private key'],
      ['caCertificates', 'CA bundle'],
      ['tlsCertificates', 'tlsCertificates'],
      ['credentialName', 'credentialName'],
      ['credentialNames', 'credentialNames'],
    ];
    for (const [field, what] of forbidden) {
      const value = tls[field];
      if (value !== undefined && value !== '' && !(Array.isArray(value) && value.length === 0)) {
        problems.error(ProblemCode.ConflictingFields, at(field), `ISTIO_MUTUAL TLS cannot have associated ${what}`);
      }
    }
    return;
  }
  if (mode === 'PASSTHROUGH' || mode === 'AUTO_PASSTHROUGH') {
    if (
      tls.caCrl ||
      tls.serverCertificate ||
      tls.privateKey ||
      tls.caCertificates ||
      tls.tlsCertificates?.length ||
      tls.credentialName ||
      tls.credentialNames?.length
    ) {
      problems.warn(ProblemCode.SuspiciousConfig, path, `${mode} mode does not use certificates, they will be ignored`);
    }
  }
  const sources = [
    tls.serverCertificate && tls.privateKey,
    tls.credentialName,
    tls.credentialNames?.length,
    tls.tlsCertificates?.length,
  ].filter(Boolean).length;
  if (sources > 1) {
    problems.error(
      ProblemCode.ConflictingFields,
      path,
      'only one of credentialName, credentialNames, serverCertificate/privateKey, tlsCertificates should be specified',
    );
  }
  const terminates = mode === 'SIMPLE' || mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL';
  if (terminates && (tls.credentialName || tls.credentialNames?.length)) {
    // Certificates come from the named secret.
    checkCrl(tls, mode, path, problems);
    return;
  }
  if (terminates) {
    const prefix = mode === 'SIMPLE' ? 'SIMPLE TLS' : 'MUTUAL TLS';
    if (mode !== 'SIMPLE' && !tls.caCertificates)
      problems.error(
        ProblemCode.MissingRequiredField,
        at('caCertificates'),
        `${prefix} requires a client CA bundle (caCertificates), or set credentialName`,
      );
    if ((tls.tlsCertificates?.length ?? 0) > 2)
      problems.warn(ProblemCode.SuspiciousConfig, at('tlsCertificates'), `${prefix} can support up to 2 server certificates`);
    if (tls.tlsCertificates?.length) {
      tls.tlsCertificates.forEach((cert, i) => {
        const certPath = indexPath(at('tlsCertificates'), i);
        if (!cert.serverCertificate)
          problems.error(
            ProblemCode.MissingRequiredField,
            childPath(certPath, 'serverCertificate'),
            `${prefix} requires a server certificate`,
          );
        if (!cert.privateKey)
          problems.error(ProblemCode.MissingRequiredField, childPath(certPath, 'privateKey'), `${prefix} requires a private key`);
      });
    } else {
      if (!tls.serverCertificate)
        problems.error(
          ProblemCode.MissingRequiredField,
          at('serverCertificate'),
          `${prefix} requires a server certificate (serverCertificate), or set credentialName`,
        );
      if (!tls.privateKey)
        problems.error(
          ProblemCode.MissingRequiredField,
          at('privateKey'),
          `${prefix} requires a private key (privateKey), or set credentialName`,
        );
    }
  }
  checkCrl(tls, mode, path, problems);
}

function checkCrl(tls: ServerTls, mode: string, path: string, problems: ProblemCollector): void {
  if (!tls.caCrl) return;
  if (tls.credentialName)
    problems.error(
      ProblemCode.ConflictingFields,
      childPath(path, 'caCrl'),
      'CRL is not supported with credentialName. CRL has to be specified in the credential',
    );
  if (mode === 'SIMPLE') problems.error(ProblemCode.ConflictingFields, childPath(path, 'caCrl'), 'CRL is not supported with SIMPLE TLS');
}

export const serverTlsSchema: Schema = object<ServerTls>(
  {
    httpsRedirect: boolean(),
    mode: enumOf(['PASSTHROUGH', 'SIMPLE', 'MUTUAL', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL', 'OPTIONAL_MUTUAL']),
    serverCertificate: string(),
    privateKey: string(),
    caCertificates: string(),
    caCrl: string(),
    credentialName: string(),
    credentialNames: arrayOf(string()),
    tlsCertificates: arrayOf(object({ serverCertificate: string(), privateKey: string(), caCertificates: string() })),
    subjectAltNames: arrayOf(string()),
    verifyCertificateSpki: arrayOf(string()),
    verifyCertificateHash: arrayOf(string()),
    minProtocolVersion: enumOf(TLS_VERSIONS),
    maxProtocolVersion: enumOf(TLS_VERSIONS),
    cipherSuites: arrayOf(string()),
  },
  { check: checkServerTls },
);

/** Istio's Port message (Gateway servers, Sidecar listeners). */
export function portSchema(): Schema {
  return object({ number: integer({ min: 0 }), protocol: protocolName(), name: string(), targetPort: integer({ min: 0 }) });
}

// ---------------------------------------------------------------------------------------------
// Servers

function checkServer(server: GatewayServer, path: string, problems: ProblemCollector): void {
  const at = (field: string) => childPath(path, field);
  const port = server.port;
  const bind = server.bind ?? '';
  let portValid = true;
  if (!port.protocol || !parseProtocol(port.protocol)) {
    // protocolName() already reports unknown protocols; an empty one is also invalid on a gateway.
    if (!port.protocol)
      problems.error(
        ProblemCode.MissingRequiredField,
        childPath(at('port'), 'protocol'),
        'protocol is required; use HTTP, HTTPS, HTTP2, GRPC, TCP, TLS, MONGO, REDIS or MYSQL',
      );
    portValid = false;
  }
  if ((port.number ?? 0) > 0 || !bind.startsWith(UNIX_ADDRESS_PREFIX)) {
    const error = portError(port.number ?? 0);
    if (error) {
      problems.error(ProblemCode.InvalidValue, childPath(at('port'), 'number'), error);
      portValid = false;
    }
  }
  if ((port.targetPort ?? 0) > 0) {
    problems.error(ProblemCode.InvalidValue, childPath(at('port'), 'targetPort'), 'targetPort has no impact on Gateways');
    portValid = false;
  }
  if (!port.name) {
    problems.error(ProblemCode.MissingRequiredField, childPath(at('port'), 'name'), 'port name must be set');
    portValid = false;
  }
  if (bind.startsWith(UNIX_ADDRESS_PREFIX)) {
    report(problems, at('bind'), unixAddressError(bind.slice(UNIX_ADDRESS_PREFIX.length)));
    if ((port.number ?? 0) !== 0)
      problems.error(ProblemCode.InvalidValue, childPath(at('port'), 'number'), 'port number must be 0 for unix domain socket');
  } else if (bind !== '') {
    report(problems, at('bind'), ipAddressError(bind));
  }
  server.hosts.forEach((host, i) => {
    for (const message of namespaceSlashHostErrors(host, true))
      problems.error(ProblemCode.InvalidValue, indexPath(at('hosts'), i), message);
  });
  if (!portValid) return;
  const tls = server.tls;
  if (isTlsProtocol(port.protocol) && !tls) {
    problems.error(
      ProblemCode.MissingRequiredField,
      at('tls'),
      `server must have TLS settings for HTTPS/TLS protocols (port ${port.name})`,
    );
  } else if (!isTlsProtocol(port.protocol) && tls) {
    if (isHttpProtocol(port.protocol)) {
      // A plain-text HTTP server may only carry httpsRedirect.
      const passthrough = (tls.mode ?? 'PASSTHROUGH') === 'PASSTHROUGH' || tls.mode === 'AUTO_PASSTHROUGH';
      if (!passthrough || tls.caCertificates || tls.privateKey || tls.serverCertificate) {
        problems.error(
          ProblemCode.ConflictingFields,
          at('tls'),
          'server cannot have TLS settings for plain text HTTP ports (only httpsRedirect is allowed)',
        );
      }
    } else {
      problems.error(ProblemCode.ConflictingFields, at('tls'), 'server cannot have TLS settings for non HTTPS/TLS ports');
    }
  }
  if (!isHttpProtocol(port.protocol) && tls?.httpsRedirect) {
    problems.warn(
      ProblemCode.SuspiciousConfig,
      childPath(at('tls'), 'httpsRedirect'),
      'tls.httpsRedirect should only be used with http servers',
    );
  }
}

const serverSchema: Schema = object<GatewayServer>(
  {
    port: portSchema(),
    bind: string(),
    hosts: arrayOf(string()),
    tls: serverTlsSchema,
    defaultEndpoint: string(),
    name: string(),
  },
  { required: ['port', 'hosts'], check: checkServer },
);

export const gatewaySpec: Schema = object(
  {
    servers: arrayOf(serverSchema, {
      check: (servers, path, problems) => {
        const names = new Map<string, number>();
        (servers as GatewayServer[]).forEach((server, i) => {
          if (!server.port) return;
          const name = server.port.name ?? '';
          if (names.has(name)) {
            problems.error(
              ProblemCode.DuplicateEntry,
              childPath(childPath(indexPath(path, i), 'port'), 'name'),
              `port names in servers must be unique: duplicate name ${name}`,
            );
          }
          names.set(name, i);
        });
      },
    }),
    selector: mapOf(string()),
  },
  { required: ['servers'] },
);
