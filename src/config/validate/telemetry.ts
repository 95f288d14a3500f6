// Telemetry (telemetry.istio.io): schema plus Istio's ValidateTelemetry — one target kind, one
// tracing entry, sampling percentages in 0..100, one type per custom tag, metric overrides on
// Istio's metric names, and access-log filters Weft can honour (CEL is not evaluated: only the
// constant expressions "true" and "false" are accepted).
import type {
  TelemetryAccessLogging,
  TelemetryCustomTag,
  TelemetryMetrics,
  TelemetryMetricsOverride,
  TelemetrySpec,
  TelemetryTracing,
} from '../resources';
import { childPath, indexPath, ProblemCode, type ProblemCollector } from '../problems';
import { arrayOf, boolean, duration, enumOf, mapOf, number, object, string, type Schema } from './schema';
import { checkOneTargetKind, policyTargetFields } from './policy-targets';

const WORKLOAD_MODES = ['CLIENT_AND_SERVER', 'CLIENT', 'SERVER'] as const;

/** Istio's MetricSelector.IstioMetric. */
export const ISTIO_METRICS = [
  'ALL_METRICS',
  'REQUEST_COUNT',
  'REQUEST_DURATION',
  'REQUEST_SIZE',
  'RESPONSE_SIZE',
  'TCP_OPENED_CONNECTIONS',
  'TCP_CLOSED_CONNECTIONS',
  'TCP_SENT_BYTES',
  'TCP_RECEIVED_BYTES',
  'GRPC_REQUEST_MESSAGES',
  'GRPC_RESPONSE_MESSAGES',
] as const;

const providerRefs = () => arrayOf(object({ name: string() }, { required: ['name'] }));

const customTagSchema: Schema = object<TelemetryCustomTag>(
  {
    literal: object({ value: string() }, { required: ['value'] }),
    environment: object({ name: string(), defaultValue: string() }, { required: ['name'] }),
    header: object({ name: string(), defaultValue: string() }, { required: ['name'] }),
    formatter: object({ value: string() }),
  },
  {
    oneOf: [['literal', 'environment', 'header', 'formatter']],
    check: (tag, path, problems) => {
      const t = tag as TelemetryCustomTag & { formatter?: unknown };
      if (t.formatter !== undefined) {
        problems.error(
          ProblemCode.InvalidValue,
          childPath(path, 'formatter'),
          'formatter custom tags (access-log command operators) are not supported by Weft; use literal, environment or header',
        );
      } else if (!t.literal && !t.environment && !t.header) {
        problems.error(ProblemCode.MissingRequiredField, path, 'a custom tag needs one of literal, environment or header');
      }
    },
  },
);

const tracingSchema: Schema = object<TelemetryTracing>(
  {
    match: object({ mode: enumOf(WORKLOAD_MODES) }),
    providers: providerRefs(),
    randomSamplingPercentage: number({ min: 0, max: 100 }),
    disableSpanReporting: boolean(),
    customTags: mapOf(customTagSchema, {
      key: (key, path, problems) => {
        if (key === '') problems.error(ProblemCode.InvalidValue, path, 'custom tag names must not be empty');
      },
    }),
    useRequestIdForTraceSampling: boolean(),
    enableIstioTags: boolean(),
    disableContextPropagation: boolean(),
  },
  {
    check: (tracing, path, problems) => {
      if ((tracing.providers?.length ?? 0) > 1) {
        problems.warn(
          ProblemCode.SuspiciousConfig,
          childPath(path, 'providers'),
          'only one tracing provider per workload mode is supported (Istio and Weft use the first)',
        );
      }
    },
  },
);

/** CEL Weft can honour without evaluating CEL: a constant. */
const TRIVIAL_FILTERS = new Set(['true', 'false']);

const accessLoggingSchema: Schema = object<TelemetryAccessLogging>(
  {
    match: object({ mode: enumOf(WORKLOAD_MODES) }),
    providers: providerRefs(),
    disabled: boolean(),
    filter: object<{ expression?: string }>(
      { expression: string() },
      {
        check: (filter, path, problems) => {
          const expression = (filter.expression ?? '').trim();
          if (expression !== '' && !TRIVIAL_FILTERS.has(expression)) {
            problems.error(
              ProblemCode.InvalidValue,
              childPath(path, 'expression'),
              `CEL filter ${JSON.stringify(filter.expression)} is not supported: Weft proxies do not evaluate CEL ` +
                '(only the constants "true" and "false" are accepted); remove the filter, or turn logging off with disabled: true',
            );
          }
        },
      },
    ),
  },
);

const tagOverrideSchema: Schema = object<{ operation?: string; value?: string }>(
  { operation: enumOf(['UPSERT', 'REMOVE']), value: string() },
  {
    check: (o, path, problems) => {
      const op = o.operation ?? 'UPSERT';
      if (op === 'REMOVE' && o.value !== undefined && o.value !== '') {
        problems.error(ProblemCode.ConflictingFields, childPath(path, 'value'), 'value must not be set when operation is REMOVE');
      } else if (op === 'UPSERT' && (o.value === undefined || o.value === '')) {
        problems.error(ProblemCode.MissingRequiredField, childPath(path, 'value'), 'value must be set when operation is UPSERT');
      }
    },
  },
);

const metricsOverrideSchema: Schema = object<TelemetryMetricsOverride>({
  match: object(
    { metric: enumOf(ISTIO_METRICS), customMetric: string(), mode: enumOf(WORKLOAD_MODES) },
    { oneOf: [['metric', 'customMetric']] },
  ),
  disabled: boolean(),
  tagOverrides: mapOf(tagOverrideSchema),
});

const metricsSchema: Schema = object<TelemetryMetrics>({
  providers: providerRefs(),
  overrides: arrayOf(metricsOverrideSchema),
  reportingInterval: duration(),
});

export const telemetrySpec: Schema = object<TelemetrySpec>(
  {
    ...policyTargetFields,
    tracing: arrayOf(tracingSchema),
    accessLogging: arrayOf(accessLoggingSchema),
    metrics: arrayOf(metricsSchema),
  },
  {
    check: (spec, path, problems) => {
      checkOneTargetKind(spec, path, problems);
      checkTracingCount(spec, path, problems);
      checkServiceTargets(spec, path, problems);
    },
  },
);

/** Istio: "multiple tracing is not currently supported". */
function checkTracingCount(spec: TelemetrySpec, path: string, problems: ProblemCollector): void {
  if ((spec.tracing?.length ?? 0) > 1) {
    problems.error(ProblemCode.InvalidValue, indexPath(childPath(path, 'tracing'), 1), 'multiple tracing entries are not supported; use one');
  }
}

/** Service (and ServiceEntry) targets are for waypoint proxies, which Weft does not run. */
function checkServiceTargets(spec: TelemetrySpec, path: string, problems: ProblemCollector): void {
  const refs = [...(spec.targetRef ? [spec.targetRef] : []), ...(spec.targetRefs ?? [])];
  if (refs.some((r) => r.kind !== 'Gateway' && r.kind !== 'GatewayClass')) {
    problems.warn(
      ProblemCode.SuspiciousConfig,
      childPath(path, spec.targetRef ? 'targetRef' : 'targetRefs'),
      'targetRefs to a Service or ServiceEntry apply to waypoint proxies, which Weft does not run; this Telemetry applies to none of its proxies',
    );
  }
}
