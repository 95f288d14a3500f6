// Istio's MeshConfig from a file (`weft control --mesh-config FILE`): the YAML under the `mesh`
// key of the `istio` ConfigMap, or that ConfigMap itself. Validated like a resource (every problem,
// with its field path and line), mapped onto the MeshConfig the snapshot carries, and watched: a
// valid change becomes a new snapshot, an invalid one is reported and the last good config stays.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Logger } from '../log/logger';
import {
  DEFAULT_MESH_CONFIG,
  meshExtensionProviders,
  type DefaultProviders,
  type ExtensionProvider,
  type MeshConfig,
  type PathNormalization,
  type ProxyConfigDefaults,
} from '../model/snapshot';
import { parseYamlDocuments } from './parse';
import { childPath, formatProblem, indexPath, ProblemCode, ProblemCollector, type ConfigProblem } from './problems';
import { kubernetesLabelNameError } from './validate/formats';
import { anyValue, arrayOf, boolean, duration, enumOf, integer, isPlainObject, mapOf, number, object, string, type Schema } from './validate/schema';

export type MeshConfigLoad =
  | { valid: true; meshConfig: MeshConfig; warnings: ConfigProblem[] }
  | { valid: false; errors: ConfigProblem[]; warnings: ConfigProblem[] };

/** The problems' subject: `MeshConfig <file name>`. */
const SUBJECT_KIND = 'MeshConfig';

const NO_EFFECT = 'accepted for compatibility with Istio; it has no effect in Weft';

/** A field Istio defines that Weft reads but does not act on: accepted, with a warning. */
function ignored(): Schema {
  return {
    typeName: 'any',
    validate: (_value, at, problems) => {
      problems.warn(ProblemCode.SuspiciousConfig, at, NO_EFFECT);
      return true;
    },
  };
}

function ignoredFields(names: readonly string[]): Record<string, Schema> {
  return Object.fromEntries(names.map((n) => [n, ignored()]));
}

/** Istio tracing providers (and other kinds) Weft accepts in the file but cannot serve. */
const UNSUPPORTED_PROVIDER_KINDS = [
  'zipkin',
  'datadog',
  'lightstep',
  'skywalking',
  'stackdriver',
  'envoyExtAuthzHttp',
  'envoyExtAuthzGrpc',
  'envoyHttpAls',
  'envoyTcpAls',
  'envoyOtelAls',
  'sds',
] as const;

const PROVIDER_KINDS = ['opentelemetry', 'envoyFileAccessLog', 'prometheus', ...UNSUPPORTED_PROVIDER_KINDS] as const;

const headerSchema = object<{ name?: string; value?: string; envName?: string }>(
  { name: string(), value: string(), envName: string() },
  { required: ['name'], oneOf: [['value', 'envName']] },
);

const openTelemetrySchema = object<{ http?: unknown; grpc?: unknown }>(
  {
    service: string(),
    port: integer({ min: 1, max: 65535 }),
    maxTagLength: integer({ min: 0 }),
    http: object({ path: string(), timeout: duration(), headers: arrayOf(headerSchema) }),
    grpc: anyValue(),
    resourceDetectors: ignored(),
    dynatraceSampler: ignored(),
  },
  {
    required: ['service', 'port'],
    oneOf: [['http', 'grpc']],
    check: (p, at, problems) => {
      if (p.http === undefined) {
        problems.error(
          ProblemCode.InvalidValue,
          p.grpc === undefined ? at : childPath(at, 'grpc'),
          'Weft proxies export traces over OTLP/HTTP only; add http: {path: /v1/traces} (the collector\'s OTLP/HTTP port, usually 4318)',
        );
      }
    },
  },
);

const fileAccessLogSchema = object(
  {
    path: string(),
    logFormat: object({ text: string(), labels: mapOf(string()) }, { oneOf: [['text', 'labels']] }),
  },
  { required: ['path'] },
);

const extensionProviderSchema = object<Record<string, unknown>>(
  {
    name: string(),
    opentelemetry: openTelemetrySchema,
    envoyFileAccessLog: fileAccessLogSchema,
    prometheus: object({}),
    ...Object.fromEntries(UNSUPPORTED_PROVIDER_KINDS.map((k) => [k, anyValue()])),
  },
  {
    required: ['name'],
    oneOf: [PROVIDER_KINDS],
    check: (p, at, problems) => {
      const kind = PROVIDER_KINDS.find((k) => p[k] !== undefined);
      if (!kind) {
        problems.error(ProblemCode.MissingRequiredField, at, `an extension provider needs one of ${PROVIDER_KINDS.join(', ')}`);
      } else if ((UNSUPPORTED_PROVIDER_KINDS as readonly string[]).includes(kind)) {
        problems.warn(
          ProblemCode.SuspiciousConfig,
          childPath(at, kind),
          `${kind} providers are not supported by Weft (tracing: opentelemetry; access logs: envoyFileAccessLog); Telemetry naming "${String(p.name)}" gets nothing from it`,
        );
      }
    },
  },
);

const customTagSchema = object(
  {
    literal: object({ value: string() }, { required: ['value'] }),
    environment: object({ name: string(), defaultValue: string() }, { required: ['name'] }),
    header: object({ name: string(), defaultValue: string() }, { required: ['name'] }),
  },
  { oneOf: [['literal', 'environment', 'header']] },
);

const proxyConfigSchema = object({
  meshId: string(),
  tracing: object({
    sampling: number({ min: 0, max: 100 }),
    customTags: mapOf(customTagSchema),
    maxPathTagLength: integer({ min: 0 }),
    ...ignoredFields(['zipkin', 'lightstep', 'datadog', 'stackdriver', 'openCensusAgent', 'tlsSettings', 'enableIstioTags']),
  }),
  ...ignoredFields([
    'discoveryAddress',
    'proxyMetadata',
    'holdApplicationUntilProxyStarts',
    'concurrency',
    'drainDuration',
    'terminationDrainDuration',
    'proxyStatsMatcher',
    'statusPort',
    'controlPlaneAuthPolicy',
    'tracingServiceName',
    'envoyAccessLogService',
    'envoyMetricsService',
    'extraStatTags',
    'gatewayTopology',
    'image',
    'privateKeyProvider',
    'proxyHeaders',
    'readinessProbe',
    'serviceCluster',
    'configPath',
    'binaryPath',
    'statNameLength',
    'interceptionMode',
    'sds',
    'caCertificatesPem',
  ]),
});

const stringList = () => arrayOf(string());

/** Istio's MeshConfig as Weft reads it; unknown fields are errors, Istio fields Weft ignores warnings. */
const meshConfigSchema = object(
  {
    trustDomain: string({
      check: (v, at, problems) => {
        if (v === '') problems.error(ProblemCode.InvalidValue, at, 'trustDomain must not be empty');
      },
    }),
    rootNamespace: string({
      check: (v, at, problems) => {
        const error = kubernetesLabelNameError(v, 'rootNamespace');
        if (error) problems.error(ProblemCode.InvalidValue, at, error);
      },
    }),
    enableAutoMtls: boolean(),
    outboundTrafficPolicy: object({ mode: enumOf(['ALLOW_ANY', 'REGISTRY_ONLY']) }),
    pathNormalization: object({ normalization: enumOf(['DEFAULT', 'NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES']) }),
    accessLogFile: string(),
    accessLogEncoding: enumOf(['TEXT', 'JSON']),
    accessLogFormat: string(),
    enableTracing: boolean(),
    defaultConfig: proxyConfigSchema,
    extensionProviders: arrayOf(extensionProviderSchema),
    defaultProviders: object({ tracing: stringList(), accessLogging: stringList(), metrics: stringList() }),
    ...ignoredFields([
      'enablePrometheusMerge',
      'ingressClass',
      'ingressService',
      'ingressControllerMode',
      'ingressSelector',
      'connectTimeout',
      'protocolDetectionTimeout',
      'tcpKeepalive',
      'dnsRefreshRate',
      'localityLbSetting',
      'h2UpgradePolicy',
      'inboundClusterStatName',
      'outboundClusterStatName',
      'certificates',
      'serviceSettings',
      'defaultServiceExportTo',
      'defaultVirtualServiceExportTo',
      'defaultDestinationRuleExportTo',
      'verifyCertificateAtClient',
      'discoverySelectors',
      'enableEnvoyAccessLogService',
      'trustDomainAliases',
      'caCertificates',
      'inboundTrafficPolicy',
      'meshMTLS',
      'tlsDefaults',
      'configSources',
      'serviceScopeConfigs',
    ]),
  },
  { check: checkProviderReferences },
);

/** Provider names are unique, and defaultProviders name providers that exist (built-ins included). */
function checkProviderReferences(
  mesh: { extensionProviders?: { name: string }[]; defaultProviders?: Record<string, string[] | undefined> },
  at: string,
  problems: ProblemCollector,
): void {
  const providers = mesh.extensionProviders ?? [];
  const seen = new Set<string>();
  providers.forEach((p, i) => {
    const key = p.name.toLowerCase();
    if (seen.has(key)) {
      problems.error(ProblemCode.DuplicateEntry, childPath(indexPath(childPath(at, 'extensionProviders'), i), 'name'), `extension provider "${p.name}" is defined twice`);
    }
    seen.add(key);
  });
  const known = meshExtensionProviders({ ...DEFAULT_MESH_CONFIG, extensionProviders: providers as ExtensionProvider[] });
  for (const [use, names] of Object.entries(mesh.defaultProviders ?? {})) {
    (names ?? []).forEach((name, i) => {
      const provider = known.find((p) => p.name.toLowerCase() === name.toLowerCase());
      const field = indexPath(childPath(childPath(at, 'defaultProviders'), use), i);
      if (!provider) {
        const names = known.map((p) => p.name).join(', ');
        problems.error(ProblemCode.ReferencedResourceNotFound, field, `no extension provider named "${name}" (defined: ${names})`);
      } else if (use === 'tracing' && !provider.opentelemetry) {
        problems.warn(ProblemCode.SuspiciousConfig, field, `provider "${name}" cannot trace in Weft (only opentelemetry providers can)`);
      } else if (use === 'accessLogging' && !provider.envoyFileAccessLog) {
        problems.warn(ProblemCode.SuspiciousConfig, field, `provider "${name}" cannot write access logs in Weft (only envoyFileAccessLog providers can)`);
      }
    });
  }
}

/**
 * Parses and validates mesh config YAML. `file` names the origin in problems. An empty file is
 * Istio's defaults (Weft's, where they differ: see DEFAULT_MESH_CONFIG).
 */
export function parseMeshConfig(text: string, file: string): MeshConfigLoad {
  const subject = { kind: SUBJECT_KIND, namespace: '', name: path.basename(file), file };
  const parsed = parseYamlDocuments(text, { file, source: 'file' });
  const syntax = parsed.problems.filter((p) => p.severity === 'error').map((p) => ({ ...p, kind: SUBJECT_KIND, name: subject.name }));
  if (syntax.length) return { valid: false, errors: syntax, warnings: [] };
  if (parsed.documents.length > 1) {
    const problems = new ProblemCollector({ ...subject, document: parsed.documents[1].origin.document });
    problems.error(ProblemCode.MalformedDocument, '', 'a mesh config file holds one YAML document');
    return { valid: false, errors: problems.errors, warnings: [] };
  }
  const doc = parsed.documents[0];
  let raw: unknown = doc?.raw ?? {};
  let problems = new ProblemCollector(subject, doc?.locate);
  if (isPlainObject(raw) && raw.kind === 'ConfigMap') {
    // The istio ConfigMap itself: the mesh config is the YAML text under data.mesh.
    const data = isPlainObject(raw.data) ? raw.data : {};
    if (typeof data.mesh !== 'string') {
      problems.error(ProblemCode.MissingRequiredField, 'data.mesh', 'a ConfigMap mesh config needs the mesh config YAML as a string in data.mesh');
      return { valid: false, errors: problems.errors, warnings: problems.warnings };
    }
    try {
      raw = parseYaml(data.mesh) ?? {};
    } catch (err) {
      problems.error(ProblemCode.YamlSyntaxError, 'data.mesh', `YAML syntax error in data.mesh: ${(err as Error).message.split('\n')[0]}`);
      return { valid: false, errors: problems.errors, warnings: problems.warnings };
    }
    // Positions inside the embedded text are not the file's; report paths only.
    problems = new ProblemCollector(subject);
  }
  if (!isPlainObject(raw)) {
    problems.error(ProblemCode.MalformedDocument, '', 'a mesh config must be a YAML mapping of MeshConfig fields (trustDomain, defaultConfig, ...)');
    return { valid: false, errors: problems.errors, warnings: problems.warnings };
  }
  meshConfigSchema.validate(raw, '', problems);
  if (problems.errors.length) return { valid: false, errors: problems.errors, warnings: problems.warnings };
  return { valid: true, meshConfig: toMeshConfig(raw), warnings: problems.warnings };
}

/** Reads and parses a mesh config file; an unreadable file is an error problem. */
export function loadMeshConfigFile(file: string): MeshConfigLoad {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const problems = new ProblemCollector({ kind: SUBJECT_KIND, namespace: '', name: path.basename(file), file });
    problems.error(ProblemCode.MalformedDocument, '', `cannot read the mesh config file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    return { valid: false, errors: problems.errors, warnings: [] };
  }
  return parseMeshConfig(text, file);
}

type Raw = Record<string, unknown>;

/** The validated YAML onto Weft's MeshConfig (defaults for what the file leaves out). */
function toMeshConfig(raw: Raw): MeshConfig {
  const out: Record<string, unknown> = { ...DEFAULT_MESH_CONFIG };
  const set = (key: keyof MeshConfig | string, value: unknown) => {
    if (value !== undefined && value !== null) out[key] = value;
  };
  set('trustDomain', raw.trustDomain);
  set('rootNamespace', raw.rootNamespace);
  set('enableAutoMtls', raw.enableAutoMtls);
  set('outboundTrafficPolicy', (raw.outboundTrafficPolicy as Raw | undefined)?.mode);
  const normalization = (raw.pathNormalization as Raw | undefined)?.normalization as PathNormalization | undefined;
  if (normalization) set('pathNormalization', { normalization });
  set('accessLogFile', raw.accessLogFile);
  set('accessLogEncoding', raw.accessLogEncoding);
  set('accessLogFormat', raw.accessLogFormat);
  set('enableTracing', raw.enableTracing);
  set('defaultConfig', proxyConfigDefaults(raw.defaultConfig as Raw | undefined));
  set('extensionProviders', (raw.extensionProviders as Raw[] | undefined)?.map(extensionProvider));
  set('defaultProviders', defaultProviders(raw.defaultProviders as Raw | undefined));
  return deepFreeze(out as unknown as MeshConfig);
}

function proxyConfigDefaults(raw: Raw | undefined): ProxyConfigDefaults | undefined {
  if (!raw) return undefined;
  const out: ProxyConfigDefaults = {};
  if (typeof raw.meshId === 'string') out.meshId = raw.meshId;
  const tracing = raw.tracing as Raw | undefined;
  if (tracing) {
    out.tracing = {};
    if (typeof tracing.sampling === 'number') out.tracing.sampling = tracing.sampling;
    if (typeof tracing.maxPathTagLength === 'number') out.tracing.maxPathTagLength = tracing.maxPathTagLength;
    if (tracing.customTags) out.tracing.customTags = tracing.customTags as NonNullable<NonNullable<ProxyConfigDefaults['tracing']>['customTags']>;
  }
  return out;
}

function extensionProvider(raw: Raw): ExtensionProvider {
  const name = String(raw.name);
  if (raw.opentelemetry) return { name, opentelemetry: raw.opentelemetry as ExtensionProvider['opentelemetry'] };
  if (raw.envoyFileAccessLog) return { name, envoyFileAccessLog: raw.envoyFileAccessLog as ExtensionProvider['envoyFileAccessLog'] };
  if (raw.prometheus) return { name, prometheus: {} };
  return { name, unsupported: UNSUPPORTED_PROVIDER_KINDS.find((k) => raw[k] !== undefined) ?? 'unknown' };
}

function defaultProviders(raw: Raw | undefined): DefaultProviders | undefined {
  if (!raw) return undefined;
  const out: { -readonly [K in keyof DefaultProviders]: string[] } = {};
  for (const use of ['tracing', 'accessLogging', 'metrics'] as const) if (Array.isArray(raw[use])) out[use] = [...(raw[use] as string[])];
  return out;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}

export interface MeshConfigFileOptions {
  file: string;
  logger: Logger;
  /** Called with each valid change (not for the initial load). */
  onChange: (meshConfig: MeshConfig) => void;
  /** Quiet period after the last file event before re-reading. Default 50 ms. */
  settleMs?: number;
}

/**
 * A watched mesh config file. `load()` reads it once (the control plane refuses to start on an
 * invalid one); `watch()` then re-reads it on every change, calling onChange for a valid new
 * config and logging the problems of an invalid one while the last good config stays current.
 */
export class MeshConfigFile {
  readonly file: string;
  private last: MeshConfig = DEFAULT_MESH_CONFIG;
  private hash = '';
  private watcher?: fs.FSWatcher;
  private timer?: NodeJS.Timeout;
  /** Problems of the last rejected version, until a valid one replaces it (for /debug). */
  rejected: ConfigProblem[] = [];

  constructor(private readonly options: MeshConfigFileOptions) {
    this.file = path.resolve(options.file);
  }

  current(): MeshConfig {
    return this.last;
  }

  /** Reads the file now; a valid config becomes current. */
  load(): MeshConfigLoad {
    const text = this.read();
    const result = text === undefined ? loadMeshConfigFile(this.file) : parseMeshConfig(text, this.file);
    this.hash = text === undefined ? '' : hashOf(text);
    if (result.valid) {
      this.last = result.meshConfig;
      this.rejected = [];
    }
    for (const w of result.warnings) this.options.logger.warn('mesh_config_warning', { file: this.file, problem: formatProblem(w) });
    return result;
  }

  /** Watches the file's directory (editors replace files rather than write them in place). */
  watch(): void {
    const dir = path.dirname(this.file);
    const base = path.basename(this.file);
    this.watcher = fs.watch(dir, (_event, name) => {
      if (name === null || name === base) this.schedule();
    });
    this.watcher.on('error', (err) => this.options.logger.error('mesh_config_watch_failed', { file: this.file, error: err }));
  }

  close(): void {
    this.watcher?.close();
    if (this.timer) clearTimeout(this.timer);
  }

  /** Re-reads the file; returns whether a new valid config was applied. */
  reload(): boolean {
    const text = this.read();
    if (text === undefined) {
      this.options.logger.warn('mesh_config_unreadable', { file: this.file, hint: 'the last good mesh config keeps serving' });
      return false;
    }
    const hash = hashOf(text);
    if (hash === this.hash) return false;
    this.hash = hash;
    const result = parseMeshConfig(text, this.file);
    for (const w of result.warnings) this.options.logger.warn('mesh_config_warning', { file: this.file, problem: formatProblem(w) });
    if (!result.valid) {
      this.rejected = result.errors;
      for (const e of result.errors) {
        this.options.logger.warn('mesh_config_rejected', { file: this.file, lastGoodServing: true, problem: formatProblem(e) });
      }
      return false;
    }
    const previous = this.last;
    this.last = result.meshConfig;
    this.rejected = [];
    if (previous.trustDomain !== result.meshConfig.trustDomain) {
      this.options.logger.warn('mesh_config_trust_domain_changed', {
        file: this.file,
        from: previous.trustDomain,
        to: result.meshConfig.trustDomain,
        hint: 'the CA keeps issuing for the trust domain it started with; restart weft control to change it',
      });
    }
    this.options.onChange(result.meshConfig);
    return true;
  }

  private read(): string | undefined {
    try {
      return fs.readFileSync(this.file, 'utf8');
    } catch {
      return undefined;
    }
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      try {
        this.reload();
      } catch (err) {
        this.options.logger.error('mesh_config_reload_failed', { file: this.file, error: err });
      }
    }, this.options.settleMs ?? 50);
  }
}

function hashOf(text: string): string {
  return createHash('sha1').update(text).digest('hex');
}
