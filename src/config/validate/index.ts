// Validation of one parsed document into a typed ConfigResource: the envelope (apiVersion, kind, metadata)
// here, the spec by the kind's own validator. Every problem is collected; warnings are kept apart.
import { apiVersionsOf, kindByName, lookupKind, type KindInfo } from '../kinds';
import type { ParsedDocument } from '../parse';
import { ProblemCode, ProblemCollector, type ConfigProblem } from '../problems';
import type { ConfigResource, ObjectMeta, ResourceKind } from '../resources';
import { authorizationPolicySpec } from './authorizationpolicy';
import { destinationRuleSpec } from './destinationrule';
import { dns1035LabelError, kubernetesLabelNameError, kubernetesNameError } from './formats';
import { gatewaySpec } from './gateway';
import { peerAuthenticationSpec } from './peerauthentication';
import { requestAuthenticationSpec } from './requestauthentication';
import { anyValue, arrayOf, describeValue, integer, isPlainObject, mapOf, object, string, type Schema } from './schema';
import { serviceSpec } from './service';
import { serviceEntrySpec } from './serviceentry';
import { labelMap } from './shared-fields';
import { sidecarSpec } from './sidecar';
import { telemetrySpec } from './telemetry';
import { virtualServiceSpec } from './virtualservice';
import { workloadEntrySpec } from './workloadentry';

export type ValidationResult =
  | { valid: true; resource: ConfigResource; warnings: ConfigProblem[] }
  | { valid: false; errors: ConfigProblem[]; warnings: ConfigProblem[] };

interface KindValidator {
  spec: Schema;
  /** Istio CRDs require spec; a core Service may omit it. */
  specRequired: boolean;
  /** metadata.name rule for this kind. */
  nameError: (name: string) => string | undefined;
}

const VALIDATORS: Record<ResourceKind, KindValidator> = {
  VirtualService: istio(virtualServiceSpec),
  DestinationRule: istio(destinationRuleSpec),
  // Gateway names are referenced as `namespace/name` from VirtualServices, so Istio forbids dots.
  Gateway: { spec: gatewaySpec, specRequired: true, nameError: (name) => kubernetesLabelNameError(name, 'gateway name') },
  ServiceEntry: istio(serviceEntrySpec),
  WorkloadEntry: istio(workloadEntrySpec),
  Sidecar: istio(sidecarSpec),
  Service: { spec: serviceSpec, specRequired: false, nameError: (name) => dns1035LabelError(name, 'service name') },
  PeerAuthentication: istio(peerAuthenticationSpec),
  AuthorizationPolicy: istio(authorizationPolicySpec),
  RequestAuthentication: istio(requestAuthenticationSpec),
  Telemetry: istio(telemetrySpec),
};

function istio(spec: Schema): KindValidator {
  return { spec, specRequired: true, nameError: kubernetesNameError };
}

/** ObjectMeta as Kubernetes serves it; fields Weft does not use are accepted and dropped. */
const metadataSchema: Schema = object({
  name: string(),
  namespace: string(),
  labels: labelMap(),
  annotations: mapOf(string()),
  resourceVersion: string(),
  uid: string(),
  generation: integer(),
  generateName: string(),
  creationTimestamp: anyValue(),
  deletionTimestamp: anyValue(),
  deletionGracePeriodSeconds: integer(),
  ownerReferences: arrayOf(anyValue()),
  finalizers: arrayOf(string()),
  managedFields: arrayOf(anyValue()),
  selfLink: string(),
});

const TOP_LEVEL_FIELDS = new Set(['apiVersion', 'kind', 'metadata', 'spec', 'status']);

/**
 * Validates one document. Unknown kinds are not errors: they come back as
 * `{ valid: false, errors: [], warnings: [UnknownKind] }` so callers can tell "skipped" from "invalid".
 */
export function validateResource(doc: ParsedDocument): ValidationResult {
  const { origin, raw } = doc;
  const problems = new ProblemCollector({ kind: '', namespace: '', name: '', file: origin.file, document: origin.document }, doc.locate);

  if (!isPlainObject(raw)) {
    problems.error(
      ProblemCode.MalformedDocument,
      '',
      `a resource must be a YAML mapping with apiVersion, kind, metadata and spec; got ${describeValue(raw)}`,
    );
    return invalid(problems);
  }
  const metadata = isPlainObject(raw.metadata) ? raw.metadata : undefined;
  const name = typeof metadata?.name === 'string' ? metadata.name : '';
  const namespace = typeof metadata?.namespace === 'string' && metadata.namespace !== '' ? metadata.namespace : 'default';
  const kind = typeof raw.kind === 'string' ? raw.kind : '';
  problems.subject = { ...problems.subject, kind, namespace, name };

  if (!kind) {
    problems.error(
      ProblemCode.MalformedDocument,
      'kind',
      raw.kind === undefined ? 'kind is required' : `kind must be a string, got ${describeValue(raw.kind)}`,
    );
  }
  if (typeof raw.apiVersion !== 'string' || raw.apiVersion === '') {
    problems.error(
      ProblemCode.MalformedDocument,
      'apiVersion',
      raw.apiVersion === undefined ? 'apiVersion is required' : `apiVersion must be a string, got ${describeValue(raw.apiVersion)}`,
    );
  }
  if (!kind) return invalid(problems);

  const info = kindByName(kind);
  if (!info) return unknownKind(kind, raw.apiVersion, problems);
  const validator = VALIDATORS[info.kind];

  if (typeof raw.apiVersion === 'string' && raw.apiVersion !== '') checkApiVersion(info, raw.apiVersion, problems);
  for (const key of Object.keys(raw)) {
    if (!TOP_LEVEL_FIELDS.has(key))
      problems.error(ProblemCode.UnknownField, key, `unknown field "${key}"; a resource has apiVersion, kind, metadata, spec (and status)`);
  }
  checkMetadata(raw.metadata, validator, problems);

  if (raw.spec === undefined || raw.spec === null) {
    if (validator.specRequired) problems.error(ProblemCode.MissingRequiredField, 'spec', `spec is required for a ${info.kind}`);
  } else {
    validator.spec.validate(raw.spec, 'spec', problems);
  }

  if (problems.errors.length > 0) return invalid(problems);
  const resource: ConfigResource = {
    apiVersion: raw.apiVersion as string,
    kind: info.kind,
    metadata: objectMeta(metadata ?? {}, name, namespace),
    spec: (withoutNulls(raw.spec) ?? {}) as ConfigResource['spec'],
    origin,
  };
  return { valid: true, resource, warnings: problems.warnings };
}

function invalid(problems: ProblemCollector): ValidationResult {
  return { valid: false, errors: problems.errors, warnings: problems.warnings };
}

function unknownKind(kind: string, apiVersion: unknown, problems: ProblemCollector): ValidationResult {
  const suggestion = lookupKind(kind);
  const hint = suggestion ? `; did you mean "${suggestion.kind}"? (kinds are case-sensitive)` : '';
  const version = typeof apiVersion === 'string' ? ` (${apiVersion})` : '';
  problems.warn(ProblemCode.UnknownKind, 'kind', `kind ${kind}${version} is not one Weft reads; the document is skipped${hint}`);
  return { valid: false, errors: [], warnings: problems.warnings };
}

function checkApiVersion(info: KindInfo, apiVersion: string, problems: ProblemCollector): void {
  const served = apiVersionsOf(info);
  if (served.includes(apiVersion)) return;
  problems.error(
    ProblemCode.UnsupportedApiVersion,
    'apiVersion',
    `apiVersion ${apiVersion} is not served for ${info.kind}; use one of ${served.join(', ')}`,
  );
}

function checkMetadata(metadata: unknown, validator: KindValidator, problems: ProblemCollector): void {
  if (metadata === undefined || metadata === null) {
    problems.error(ProblemCode.InvalidMetadata, 'metadata', 'metadata is required (with at least a name)');
    return;
  }
  if (!metadataSchema.validate(metadata, 'metadata', problems)) return;
  const meta = metadata as Record<string, unknown>;
  if (typeof meta.name !== 'string' || meta.name === '') {
    problems.error(ProblemCode.InvalidMetadata, 'metadata.name', 'metadata.name is required');
  } else {
    const error = validator.nameError(meta.name);
    if (error) problems.error(ProblemCode.InvalidMetadata, 'metadata.name', error);
  }
  if (typeof meta.namespace === 'string' && meta.namespace !== '') {
    const error = kubernetesLabelNameError(meta.namespace, 'namespace');
    if (error) problems.error(ProblemCode.InvalidMetadata, 'metadata.namespace', error);
  }
}

function objectMeta(metadata: Record<string, unknown>, name: string, namespace: string): ObjectMeta {
  const meta: ObjectMeta = { name, namespace };
  if (isPlainObject(metadata.labels)) meta.labels = { ...(metadata.labels as Record<string, string>) };
  if (isPlainObject(metadata.annotations)) meta.annotations = { ...(metadata.annotations as Record<string, string>) };
  if (typeof metadata.resourceVersion === 'string') meta.resourceVersion = metadata.resourceVersion;
  if (typeof metadata.creationTimestamp === 'string') meta.creationTimestamp = metadata.creationTimestamp;
  else if (metadata.creationTimestamp instanceof Date) meta.creationTimestamp = metadata.creationTimestamp.toISOString();
  return meta;
}

/** A deep copy with null fields removed (the API server prunes them), so consumers never see null. */
function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (isPlainObject(value)) {
    const copy: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) if (v !== null && v !== undefined) copy[key] = withoutNulls(v);
    return copy;
  }
  return value;
}
